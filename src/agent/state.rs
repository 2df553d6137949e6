//! What the agent keeps under its data directory, every write atomic
//! (write a temporary file, fsync it, rename it over the old one, fsync the
//! directory), so that a crash at any moment leaves the old or the new
//! state, never a mix:
//!
//! ```text
//! DIR/state.json                      node id, session credential, trusted keys, module slots
//! DIR/running-hook.json               the hook running now (its process group), while it runs
//! DIR/modules/{name}/{version}/artifact
//! DIR/modules/{name}/{version}/hooks.json
//! DIR/modules/{name}/current -> {version}
//! DIR/modules/{name}/standby -> {version}
//! ```

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use hotswap_actors::domain::{ModuleHooks, ModuleSlots};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentState {
    /// The host's node id: chosen once, kept for good.
    pub node_id: Uuid,
    /// The credential the server gave at enrolment.
    pub session: Option<String>,
    /// PEM public keys signatures are checked against, as the server sent
    /// them over an authenticated session.
    pub trusted_keys: Vec<String>,
    pub accept_bare_signatures: bool,
    pub modules: BTreeMap<String, ModuleSlots>,
}

/// The data directory.
#[derive(Debug, Clone)]
pub struct DataDir(pub PathBuf);

impl DataDir {
    pub fn state_file(&self) -> PathBuf {
        self.0.join("state.json")
    }

    /// Where the hook running now is recorded (`running_hook`).
    pub fn running_hook(&self) -> super::running_hook::RunningHook {
        super::running_hook::RunningHook::in_dir(&self.0)
    }

    pub fn module_dir(&self, module: &str) -> PathBuf {
        self.0.join("modules").join(module)
    }

    pub fn version_dir(&self, module: &str, version: &str) -> PathBuf {
        self.module_dir(module).join(version)
    }

    pub fn artifact(&self, module: &str, version: &str) -> PathBuf {
        self.version_dir(module, version).join("artifact")
    }

    /// The state kept, or a fresh one with a new node id (saved at once).
    pub fn load_or_create(&self) -> Result<AgentState, String> {
        // Only the agent's user may look inside: the state holds the session
        // credential, which downloads the tenant's artifacts.
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.0)
            .map_err(|e| format!("cannot create {}: {e}", self.0.display()))?;
        match std::fs::read(self.state_file()) {
            Ok(bytes) => {
                serde_json::from_slice(&bytes).map_err(|e| format!("{} is damaged: {e}", self.state_file().display()))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let state = AgentState {
                    node_id: Uuid::new_v4(),
                    session: None,
                    trusted_keys: Vec::new(),
                    accept_bare_signatures: false,
                    modules: BTreeMap::new(),
                };
                self.save(&state)?;
                Ok(state)
            }
            Err(e) => Err(format!("cannot read {}: {e}", self.state_file().display())),
        }
    }

    pub fn save(&self, state: &AgentState) -> Result<(), String> {
        self.prepare(state)?.commit()
    }

    /// Writes `state` beside the state file, on disk but not in place yet:
    /// [`PreparedState::commit`] puts it in place. Lets the slow part (the
    /// file's fsync) run while the outcome it records is still being made.
    pub fn prepare(&self, state: &AgentState) -> Result<PreparedState, String> {
        let bytes = serde_json::to_vec_pretty(state).map_err(|e| e.to_string())?;
        let path = self.state_file();
        let temporary = write_temporary(&path, &bytes)?;
        Ok(PreparedState { temporary: Some(temporary), path })
    }

    /// The hooks stored with a staged version; `None` when its `hooks.json`
    /// is missing or unreadable.
    pub fn hooks_of(&self, module: &str, version: &str) -> Option<ModuleHooks> {
        std::fs::read(self.version_dir(module, version).join("hooks.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
    }

    /// Points `DIR/modules/{module}/{link}` at `version` (or removes it),
    /// replacing the old link in one rename, durably.
    pub fn set_link(&self, module: &str, link: &str, version: Option<&str>) -> Result<(), String> {
        sync_dir(&self.swap_link(module, link, version)?)
    }

    /// [`Self::set_link`] without the directory's fsync: readers see the new
    /// link at once; it is durable once the directory answered is synced.
    pub fn swap_link(&self, module: &str, link: &str, version: Option<&str>) -> Result<PathBuf, String> {
        let dir = self.module_dir(module);
        let path = dir.join(link);
        let Some(version) = version else {
            return match std::fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    Err(format!("cannot remove {}: {e}", path.display()))
                }
                _ => Ok(dir),
            };
        };
        let temporary = dir.join(format!(".{link}.{}", Uuid::new_v4().simple()));
        std::os::unix::fs::symlink(version, &temporary).map_err(|e| format!("cannot link {}: {e}", path.display()))?;
        std::fs::rename(&temporary, &path).map_err(|e| format!("cannot switch {}: {e}", path.display()))?;
        Ok(dir)
    }

    /// The version a link points at, if any.
    /// Modules that have a directory on disk (staged at least once).
    pub fn module_names(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(self.0.join("modules")) else { return Vec::new() };
        entries.filter_map(|e| e.ok()).filter_map(|e| e.file_name().into_string().ok()).collect()
    }

    pub fn link(&self, module: &str, link: &str) -> Option<String> {
        let target = std::fs::read_link(self.module_dir(module).join(link)).ok()?;
        Some(target.to_string_lossy().into_owned())
    }
}

/// A new state file written and synced beside the old one; dropped without
/// [`Self::commit`], it is removed and the old state stays.
pub struct PreparedState {
    temporary: Option<PathBuf>,
    path: PathBuf,
}

impl PreparedState {
    /// Renames the new state over the old one and syncs the directory.
    pub fn commit(mut self) -> Result<(), String> {
        let Some(temporary) = self.temporary.take() else { return Ok(()) };
        place(&temporary, &self.path)?;
        let dir = self.path.parent().ok_or_else(|| format!("{} has no directory", self.path.display()))?;
        sync_dir(dir)
    }
}

impl Drop for PreparedState {
    fn drop(&mut self) {
        if let Some(temporary) = self.temporary.take() {
            let _ = std::fs::remove_file(temporary);
        }
    }
}

/// Writes files of one directory so that readers see each old or new file,
/// whole: every temporary file is written first, then each is fsynced,
/// renamed into place, and the directory is fsynced once for all of them.
///
/// The fsyncs run one after another on this thread: once every file is
/// written, the first fsync's journal commit carries the others' blocks on a
/// journaling filesystem, so the later ones find little left to wait for,
/// and a thread per file would cost more CPU to start than the overlap saves.
pub fn write_all_atomically(dir: &Path, files: &[(PathBuf, bytes::Bytes)]) -> Result<(), String> {
    if files.is_empty() {
        return Ok(());
    }
    if let Some((path, _)) = files.iter().find(|(path, _)| path.parent() != Some(dir)) {
        return Err(format!("{} is not in {}", path.display(), dir.display()));
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let mut written: Vec<(PathBuf, std::fs::File)> = Vec::new();
    for (path, bytes) in files {
        match create_temporary(path, bytes, Readers::Everyone) {
            Ok(temporary) => written.push(temporary),
            Err(e) => {
                remove_temporaries(&written);
                return Err(e);
            }
        }
    }
    let synced: Result<(), String> = written.iter().try_for_each(|(temporary, file)| {
        file.sync_all().map_err(|e| format!("cannot sync {}: {e}", temporary.display()))
    });
    if let Err(e) = synced {
        remove_temporaries(&written);
        return Err(e);
    }
    for ((temporary, _), (path, _)) in written.iter().zip(files) {
        place(temporary, path)?;
    }
    sync_dir(dir)
}

/// Writes and fsyncs a temporary file beside `path`; answers its path.
fn write_temporary(path: &Path, bytes: &[u8]) -> Result<PathBuf, String> {
    let (temporary, file) = create_temporary(path, bytes, Readers::AgentOnly)?;
    file.sync_all().map_err(|e| {
        let _ = std::fs::remove_file(&temporary);
        format!("cannot write {}: {e}", path.display())
    })?;
    Ok(temporary)
}

/// Who may read a file the agent writes.
#[derive(Clone, Copy)]
enum Readers {
    /// The state file, which holds the session credential (mode 0600).
    AgentOnly,
    /// Artifacts and their hooks, which hooks run as other users may read (the umask decides).
    Everyone,
}

/// A temporary file beside `path` holding `bytes`, not synced yet.
fn create_temporary(path: &Path, bytes: &[u8], readers: Readers) -> Result<(PathBuf, std::fs::File), String> {
    let dir = path.parent().ok_or_else(|| format!("{} has no directory", path.display()))?;
    let temporary = dir.join(format!(".tmp.{}", Uuid::new_v4().simple()));
    let mode = match readers {
        Readers::AgentOnly => 0o600,
        Readers::Everyone => 0o666,
    };
    let write = || -> std::io::Result<std::fs::File> {
        let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(mode).open(&temporary)?;
        file.write_all(bytes)?;
        Ok(file)
    };
    match write() {
        Ok(file) => Ok((temporary, file)),
        Err(e) => {
            let _ = std::fs::remove_file(&temporary);
            Err(format!("cannot write {}: {e}", path.display()))
        }
    }
}

/// Removes the temporary files of a write that failed.
fn remove_temporaries(written: &[(PathBuf, std::fs::File)]) {
    for (temporary, _) in written {
        let _ = std::fs::remove_file(temporary);
    }
}

/// Renames a synced temporary file over `path`.
fn place(temporary: &Path, path: &Path) -> Result<(), String> {
    std::fs::rename(temporary, path).map_err(|e| {
        let _ = std::fs::remove_file(temporary);
        format!("cannot write {}: {e}", path.display())
    })
}

pub fn sync_dir(dir: &Path) -> Result<(), String> {
    std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(|e| format!("cannot sync {}: {e}", dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn only_the_agents_user_reads_the_state_and_its_credential() {
        let root = tempfile::tempdir().unwrap();
        let data = DataDir(root.path().join("agent"));
        let mut state = data.load_or_create().unwrap();
        let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&root.path().join("agent")), 0o700);
        assert_eq!(mode(&data.state_file()), 0o600);
        state.session = Some("hss_credential".into());
        data.save(&state).unwrap();
        assert_eq!(mode(&data.state_file()), 0o600, "a later save keeps it private");
    }
}
