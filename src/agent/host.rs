//! The host's side of each command: stage a version (download, checks,
//! files), activate it (hooks around an atomic `current` link swap, then the
//! health check), switch to standby, restore, verify. A failing step leaves
//! the version that served before serving, and the state file says so.

use std::collections::HashMap;
use std::sync::Arc;

use hotswap_actors::domain::{AgentCommand, ArtifactInfo, ModuleHooks, ModuleSlots, NodeMetrics, VersionSlot};

use super::artifact::{self, Expected};
use super::hooks::{self, HealthOutput, HookCall};
use super::phases::Phases;
use super::prune;
use super::settings::AgentConfig;
use super::state::{sync_dir, write_all_atomically, AgentState, DataDir};

/// The staged files being written while the command goes on.
type PendingWrite = actix_web::rt::task::JoinHandle<Result<(), String>>;

/// A version taking over from another (or from none).
struct Activation<'a> {
    module: &'a str,
    old: Option<&'a str>,
    new: &'a str,
}

pub struct Host {
    pub dir: DataDir,
    pub state: AgentState,
    pub node: String,
    pub config: Arc<AgentConfig>,
    pub client: awc::Client,
    /// The server instance of the current session: artifacts come from it.
    pub server: std::rc::Rc<std::cell::RefCell<String>>,
    /// What the last health hook said (error rate, latency), and whether it failed.
    pub health: HealthOutput,
    pub problems: Vec<String>,
    /// The phases of the command in progress, timed.
    pub phases: Phases,
    /// Each staged version's hooks as last read from its `hooks.json`, so
    /// that the four hook runs of a deployment read the file once, not four
    /// times. Forgotten when the file is rewritten; see [`Self::hooks_of`].
    pub known_hooks: HashMap<(String, String), ModuleHooks>,
}

/// Versions whose hooks are remembered at most; more empties the memory
/// (a host holds a few versions per module, so this is rarely reached).
const KNOWN_HOOKS_LIMIT: usize = 64;

impl Host {
    pub async fn apply(
        &mut self,
        command: AgentCommand,
        artifact: Option<ArtifactInfo>,
        hooks: ModuleHooks,
    ) -> Result<ModuleSlots, String> {
        self.phases = Phases::default();
        let (name, module) = (command_name(&command), command.module().to_string());
        let outcome = self.carry_out(command, artifact, hooks).await;
        self.phases.log(name, &module, &outcome);
        outcome
    }

    async fn carry_out(
        &mut self,
        command: AgentCommand,
        artifact: Option<ArtifactInfo>,
        hooks: ModuleHooks,
    ) -> Result<ModuleSlots, String> {
        match command {
            AgentCommand::Load { module, version, digest, standby } => {
                let info = artifact.ok_or("the load command carries no artifact description")?;
                self.load(&module, &version, digest.as_deref(), standby, &info, &hooks).await
            }
            AgentCommand::SwitchToStandby { module, version } => {
                self.switch(&module, &version, artifact.as_ref(), &hooks).await
            }
            AgentCommand::Restore { module, slots } => self.restore(&module, slots, artifact.as_ref(), &hooks).await,
            AgentCommand::Verify { module, version } => {
                let slots = self.slots(&module);
                if slots.active_version() != Some(version.as_str()) {
                    return Err(format!("runs {} of {module}", slots.active_version().unwrap_or("nothing")));
                }
                self.check_health(&module, &version).await?;
                Ok(slots)
            }
        }
    }

    /// Makes the state file agree with the `current` links. An agent killed
    /// mid-activation (after the link swap, before the state was saved)
    /// left the link on the new version while the file still names the old
    /// one, and so does someone who changed the link by hand: the link is
    /// what serves, so it is what the host reports; the server then
    /// restores or keeps it as the desired state says.
    pub fn settle(&mut self) -> Result<(), String> {
        let mut next = self.state.clone();
        let mut modules = self.dir.module_names();
        modules.extend(next.modules.keys().cloned());
        modules.sort();
        modules.dedup();
        for module in modules {
            let linked = self.dir.link(&module, "current");
            let slots = next.modules.entry(module.clone()).or_default();
            if linked.as_deref() == slots.active_version() {
                continue;
            }
            // Which of the two happened cannot be told from here: say both.
            let (recorded, serving) =
                (slots.active_version().unwrap_or("nothing"), linked.as_deref().unwrap_or("nothing"));
            tracing::warn!(%module, %recorded, %serving,
                "the current link serves {serving} but the state file records {recorded} (changed by hand, or an \
                 activation cut off); reporting the version the link serves");
            slots.previous = slots.active.take();
            slots.active = linked.map(VersionSlot::plain);
        }
        next.modules.retain(|_, slots| !slots.is_empty());
        if next.modules != self.state.modules {
            self.dir.save(&next)?;
            self.state = next;
        }
        Ok(())
    }

    /// Deletes the versions of `module` this host no longer needs (the
    /// serving, previous and standby ones stay, with `keep_versions` others:
    /// see `prune`), off the async threads.
    pub async fn prune(&mut self, module: &str) {
        let (dir, name, slots, keep) =
            (self.dir.clone(), module.to_string(), self.slots(module), self.config.keep_versions);
        match actix_web::rt::task::spawn_blocking(move || prune::prune(&dir, &name, &slots, keep)).await {
            Ok(outcome) => self.pruned(module, outcome),
            Err(e) => tracing::warn!(%module, error = %e, "removing old versions did not finish"),
        }
    }

    /// [`Self::prune`] for every module, at start-up.
    pub fn prune_all(&mut self) {
        for module in self.dir.module_names() {
            let outcome = prune::prune(&self.dir, &module, &self.slots(&module), self.config.keep_versions);
            self.pruned(&module, outcome);
        }
    }

    fn pruned(&mut self, module: &str, (removed, failed): (Vec<String>, Vec<String>)) {
        for version in removed {
            tracing::info!(%module, %version, "removed a version this host no longer needs from disk");
            self.known_hooks.remove(&(module.to_string(), version));
        }
        for failure in failed {
            tracing::warn!(error = %failure, "could not remove an old version from disk");
        }
    }

    pub fn slots(&self, module: &str) -> ModuleSlots {
        self.state.modules.get(module).cloned().unwrap_or_default()
    }

    /// Host figures for the report: sysinfo's CPU and memory (when enabled)
    /// and the health hook's error rate and latency.
    pub fn metrics(&self, system: &mut sysinfo::System) -> NodeMetrics {
        let (cpu, memory) = if self.config.host_metrics {
            system.refresh_cpu_usage();
            system.refresh_memory();
            let total = system.total_memory().max(1) as f64;
            (system.global_cpu_usage() as f64, 100.0 * system.used_memory() as f64 / total)
        } else {
            (0.0, 0.0)
        };
        NodeMetrics {
            cpu_usage: cpu,
            memory_usage: memory,
            latency_ms: self.health.latency_ms.unwrap_or_default(),
            error_rate: self.health.error_rate.unwrap_or_default(),
            requests_per_second: 0.0,
        }
    }

    async fn load(
        &mut self,
        module: &str,
        version: &str,
        digest: Option<&str>,
        standby: bool,
        info: &ArtifactInfo,
        hooks: &ModuleHooks,
    ) -> Result<ModuleSlots, String> {
        let current = self.slots(module);
        let held = if standby { current.standby.as_ref() } else { current.active.as_ref() };
        if held.is_some_and(|s| s.version == version) {
            return Ok(current);
        }
        let write = self.stage(module, version, digest, info, hooks).await?;
        let mut next = current.clone();
        if standby {
            self.stored(write).await?;
            self.run_hook("prepare_standby", module, version).await?;
            self.dir.set_link(module, "standby", Some(version))?;
            self.phases.end("link");
            next.standby = Some(VersionSlot::plain(version));
            return self.save(module, next).await;
        }
        next.previous = current.active.clone();
        next.active = Some(VersionSlot::plain(version));
        let activation = Activation { module, old: current.active_version(), new: version };
        self.activate(activation, Some(write), Some(next.clone())).await?;
        Ok(next)
    }

    /// Downloads and checks the artifact unless a checked copy is on disk,
    /// then starts writing its files (off the async thread): the write goes
    /// on while the old version is deactivated, and [`Self::stored`] awaits it.
    async fn stage(
        &mut self,
        module: &str,
        version: &str,
        digest: Option<&str>,
        info: &ArtifactInfo,
        hooks: &ModuleHooks,
    ) -> Result<PendingWrite, String> {
        let path = self.dir.artifact(module, version);
        // Read and hashed off the async thread: an artifact may be large.
        let (staged, wanted) = (path.clone(), info.sha256.clone());
        let on_disk = actix_web::rt::task::spawn_blocking(move || {
            let bytes = bytes::Bytes::from(std::fs::read(staged).ok()?);
            Some((crate::crypto::sha256_hex(&bytes).eq_ignore_ascii_case(&wanted), bytes))
        })
        .await
        .map_err(|e| format!("reading the staged artifact did not finish: {e}"))?;
        let mut fresh = false;
        let bytes = match on_disk {
            Some((true, bytes)) => bytes,
            found => {
                if found.is_some() {
                    tracing::warn!(%module, %version, "the artifact on disk no longer has its SHA-256 (changed since it was staged); fetching it again");
                }
                fresh = true;
                let session = self.state.session.clone().ok_or("the agent has no session credential yet")?;
                let server = self.server.borrow().clone();
                artifact::download(&self.client, &server, &session, module, version).await?
            }
        };
        self.phases.end(if fresh { "download" } else { "read" });
        let (keys, bare, require) =
            (self.state.trusted_keys.clone(), self.state.accept_bare_signatures, self.config.require_signatures);
        let (module_name, version_name, digest, info, signed_hooks) =
            (module.to_string(), version.to_string(), digest.map(str::to_string), info.clone(), hooks.clone());
        let checked = bytes.clone();
        let verdict = actix_web::rt::task::spawn_blocking(move || {
            artifact::verify(
                &checked,
                &Expected {
                    module: &module_name,
                    version: &version_name,
                    digest: digest.as_deref(),
                    info: &info,
                    hooks: &signed_hooks,
                    trusted_keys: &keys,
                    accept_bare_signatures: bare,
                    require_signature: require,
                },
            )
        })
        .await
        .map_err(|e| format!("the artifact check did not finish: {e}"))?;
        self.phases.end("verify");
        if let Err(e) = verdict {
            tracing::warn!(%module, %version, error = %e, "artifact refused");
            return Err(e);
        }
        let hooks_json = serde_json::to_vec(hooks).map_err(|e| e.to_string())?;
        let version_dir = self.dir.version_dir(module, version);
        let hooks_path = version_dir.join("hooks.json");
        // What is on disk already stays; the rest is written with one fsync
        // of the version's directory for both files.
        let mut files = Vec::new();
        if fresh {
            files.push((path, bytes));
        }
        if std::fs::read(&hooks_path).ok().as_deref() != Some(hooks_json.as_slice()) {
            // Read again from disk once the new file is in place.
            self.known_hooks.remove(&(module.to_string(), version.to_string()));
            files.push((hooks_path, bytes::Bytes::from(hooks_json)));
        }
        Ok(actix_web::rt::task::spawn_blocking(move || write_all_atomically(&version_dir, &files)))
    }

    /// Waits for the staged files to be on disk.
    async fn stored(&mut self, write: PendingWrite) -> Result<(), String> {
        let stored = write.await.map_err(|e| format!("storing the artifact did not finish: {e}"))?;
        self.phases.end("files");
        stored
    }

    /// Deactivates `old`, points `current` at `new`, activates it and checks
    /// its health; on any failure after the deactivation, `old` is put back.
    ///
    /// The disk is waited for only where the order needs it: the staged
    /// files (`write`, if still being written) are awaited after the old
    /// version's deactivation, before the link names the new one; the link's
    /// directory is synced, and the new state file (for `next`, the module's
    /// slots on success) written and synced beside the old one, while the new
    /// version's hooks run; the state file is put in place once the link is
    /// durable and the hooks passed. Without `next` the caller saves the state.
    async fn activate(
        &mut self,
        Activation { module, old, new }: Activation<'_>,
        write: Option<PendingWrite>,
        next: Option<ModuleSlots>,
    ) -> Result<(), String> {
        if write.is_none() && !self.dir.artifact(module, new).exists() {
            return Err(format!("{module} {new} is not staged on this host"));
        }
        if let Some(old) = old {
            if let Err(e) = self.run_hook("deactivate", module, old).await {
                // Nothing is left writing in the background once the step is answered.
                if let Some(write) = write {
                    let _ = write.await;
                }
                return Err(e);
            }
        }
        if let Some(write) = write {
            if let Err(e) = self.stored(write).await {
                return Err(self.reactivate(module, old, e).await);
            }
        }
        let dir = self.dir.swap_link(module, "current", Some(new))?;
        let link_synced = actix_web::rt::task::spawn_blocking(move || sync_dir(&dir));
        let prepared = next.map(|slots| {
            let (state, dir) = (self.next_state(module, &slots), self.dir.clone());
            actix_web::rt::task::spawn_blocking(move || dir.prepare(&state).map(|prepared| (prepared, state)))
        });
        self.phases.end("link");
        let mut outcome = match self.run_hook("activate", module, new).await {
            Ok(_) => self.check_health(module, new).await,
            Err(e) => Err(e),
        };
        let synced = link_synced.await.map_err(|e| format!("syncing the link did not finish: {e}")).and_then(|s| s);
        outcome = outcome.and(synced);
        let prepared = match prepared {
            Some(prepared) => {
                let ready = prepared.await.map_err(|e| format!("writing the state did not finish: {e}"));
                Some(ready.and_then(|r| r))
            }
            None => None,
        };
        self.phases.end("durable");
        if let Err(e) = outcome {
            // A prepared state file is dropped (removed) unused.
            drop(prepared);
            tracing::warn!(%module, version = %new, error = %e, "activation failed; putting the previous version back");
            self.dir.set_link(module, "current", old)?;
            return Err(self.reactivate(module, old, e).await);
        }
        if let Some(prepared) = prepared {
            let (prepared, state) = prepared?;
            actix_web::rt::task::spawn_blocking(move || prepared.commit())
                .await
                .map_err(|e| format!("saving the state did not finish: {e}"))??;
            self.state = state;
            self.phases.end("state");
        }
        Ok(())
    }

    /// After a failed activation: runs `old`'s `activate` hook again, so that
    /// the version that served before serves again. Answers the error to report.
    async fn reactivate(&mut self, module: &str, old: Option<&str>, failure: String) -> String {
        let Some(old) = old else { return failure };
        match self.run_hook("activate", module, old).await {
            Ok(_) => failure,
            Err(again) => format!("{failure}; and re-activating {old} failed too: {again}"),
        }
    }

    /// Before a version already on disk serves again (a restore, a
    /// blue-green switch): its artifact is checked as a fresh download is
    /// (the registry's SHA-256, a signature by a key this agent trusts), and
    /// fetched again when the copy on disk no longer matches (it changed
    /// since it was staged). Without the registry's description (the server
    /// sent none: the version is no longer registered) it is not activated.
    async fn recheck(
        &mut self,
        module: &str,
        version: &str,
        artifact: Option<&ArtifactInfo>,
        hooks: &ModuleHooks,
    ) -> Result<PendingWrite, String> {
        let info = artifact.ok_or_else(|| {
            format!(
                "refused to activate {module} {version} unchecked: the server sent no SHA-256 for it \
                 (is it still in the module registry?)"
            )
        })?;
        self.stage(module, version, None, info, hooks).await
    }

    async fn switch(
        &mut self,
        module: &str,
        version: &str,
        artifact: Option<&ArtifactInfo>,
        hooks: &ModuleHooks,
    ) -> Result<ModuleSlots, String> {
        let current = self.slots(module);
        if current.active_version() == Some(version) {
            return Ok(current);
        }
        if current.standby.as_ref().map(|s| s.version.as_str()) != Some(version) {
            return Err(format!("has no standby {module} {version} to switch to"));
        }
        let write = self.recheck(module, version, artifact, hooks).await?;
        let activation = Activation { module, old: current.active_version(), new: version };
        self.activate(activation, Some(write), None).await?;
        self.dir.set_link(module, "standby", current.active_version())?;
        let next = ModuleSlots {
            active: current.standby.clone(),
            previous: current.active.clone(),
            standby: current.active.clone(),
        };
        self.save(module, next).await
    }

    async fn restore(
        &mut self,
        module: &str,
        wanted: ModuleSlots,
        artifact: Option<&ArtifactInfo>,
        hooks: &ModuleHooks,
    ) -> Result<ModuleSlots, String> {
        let current = self.slots(module);
        if current == wanted {
            return Ok(current);
        }
        match (current.active_version(), wanted.active_version()) {
            (old, Some(target)) if old != Some(target) => {
                let write = self.recheck(module, target, artifact, hooks).await?;
                self.activate(Activation { module, old, new: target }, Some(write), None).await?
            }
            (Some(old), None) => {
                self.run_hook("deactivate", module, old).await?;
                self.dir.set_link(module, "current", None)?;
            }
            _ => {}
        }
        self.dir.set_link(module, "standby", wanted.standby.as_ref().map(|s| s.version.as_str()))?;
        self.save(module, wanted).await
    }

    async fn check_health(&mut self, module: &str, version: &str) -> Result<(), String> {
        match self.run_hook("health", module, version).await {
            Ok(stdout) => {
                self.health = hooks::health_output(&stdout);
                self.problems.clear();
                Ok(())
            }
            Err(e) => {
                self.problems = vec![e.clone()];
                Err(e)
            }
        }
    }

    async fn run_hook(&mut self, hook: &'static str, module: &str, version: &str) -> Result<String, String> {
        let stored = self.hooks_of(module, version);
        let hooks = self.config.hooks.get(module).map(|o| o.or(&stored)).unwrap_or(stored);
        let command = match hook {
            "activate" => hooks.activate,
            "deactivate" => hooks.deactivate,
            "health" => hooks.health,
            _ => hooks.prepare_standby,
        };
        let artifact = self.dir.artifact(module, version);
        let call =
            HookCall { hook, command: command.as_deref(), module, version, node: &self.node, artifact: &artifact };
        let outcome = hooks::run(call, self.config.hook_timeout, &self.dir.running_hook()).await;
        self.phases.end(hook);
        outcome
    }

    /// A staged version's hooks, from memory or else from its `hooks.json`
    /// (a version's hooks change only when [`Self::stage`] rewrites the file).
    fn hooks_of(&mut self, module: &str, version: &str) -> ModuleHooks {
        let key = (module.to_string(), version.to_string());
        if let Some(hooks) = self.known_hooks.get(&key) {
            return hooks.clone();
        }
        // A version with no readable hooks runs none, and is read again next time.
        let Some(hooks) = self.dir.hooks_of(module, version) else { return ModuleHooks::default() };
        if self.known_hooks.len() >= KNOWN_HOOKS_LIMIT {
            self.known_hooks.clear();
        }
        self.known_hooks.insert(key, hooks.clone());
        hooks
    }

    /// Records the module's new slots durably before they are reported.
    async fn save(&mut self, module: &str, slots: ModuleSlots) -> Result<ModuleSlots, String> {
        let (next, dir) = (self.next_state(module, &slots), self.dir.clone());
        let saved = actix_web::rt::task::spawn_blocking(move || dir.save(&next).map(|()| next))
            .await
            .map_err(|e| format!("saving the state did not finish: {e}"))?;
        self.state = saved?;
        self.phases.end("state");
        Ok(slots)
    }

    /// The state with `module`'s slots replaced (removed when empty).
    fn next_state(&self, module: &str, slots: &ModuleSlots) -> AgentState {
        let mut next = self.state.clone();
        if slots.is_empty() {
            next.modules.remove(module);
        } else {
            next.modules.insert(module.to_string(), slots.clone());
        }
        next
    }
}

/// The command's name in the phase log.
fn command_name(command: &AgentCommand) -> &'static str {
    match command {
        AgentCommand::Load { standby: true, .. } => "load-standby",
        AgentCommand::Load { .. } => "load",
        AgentCommand::SwitchToStandby { .. } => "switch",
        AgentCommand::Restore { .. } => "restore",
        AgentCommand::Verify { .. } => "verify",
    }
}
