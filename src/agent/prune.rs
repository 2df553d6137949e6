//! Old versions leave the disk. Every load stages a version under
//! `DIR/modules/{name}/{version}`; without pruning, a host taking a release a
//! day fills its disk with artifacts it will never serve again. The serving,
//! previous and standby versions stay (whatever the state file or a link
//! names), and so do the `keep` most recently staged others; the rest are
//! deleted. A version deleted here that a later restore needs is downloaded
//! again and checked, as any version not on disk is.

use std::collections::BTreeSet;
use std::time::SystemTime;

use hotswap_actors::domain::ModuleSlots;

use super::state::DataDir;

/// The links that name a version of a module.
const LINKS: [&str; 2] = ["current", "standby"];

/// Deletes the versions of `module` the host no longer needs; answers the
/// versions deleted, and the error of each it could not delete.
pub fn prune(dir: &DataDir, module: &str, slots: &ModuleSlots, keep: usize) -> (Vec<String>, Vec<String>) {
    let needed: BTreeSet<String> = [&slots.active, &slots.previous, &slots.standby]
        .into_iter()
        .flatten()
        .map(|slot| slot.version.clone())
        .chain(LINKS.iter().filter_map(|link| dir.link(module, link)))
        .collect();
    let Ok(entries) = std::fs::read_dir(dir.module_dir(module)) else { return (Vec::new(), Vec::new()) };
    // Version directories only: not the links, nor a link or file being
    // written (their names start with a dot).
    let mut others: Vec<(SystemTime, String)> = entries
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.file_name().into_string().ok()?)))
        .filter(|(_, version)| !version.starts_with('.') && !needed.contains(version))
        .collect();
    // Newest first: the most recently staged others are the ones kept.
    others.sort_by(|a, b| b.cmp(a));
    let (mut removed, mut failed) = (Vec::new(), Vec::new());
    for (_, version) in others.into_iter().skip(keep) {
        match std::fs::remove_dir_all(dir.version_dir(module, &version)) {
            Ok(()) => removed.push(version),
            Err(e) => failed.push(format!("{module} {version}: {e}")),
        }
    }
    (removed, failed)
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use hotswap_actors::domain::VersionSlot;

    use super::*;

    /// `versions` staged one second apart, the first the oldest.
    fn staged(dir: &DataDir, versions: &[&str]) {
        let start = SystemTime::now() - Duration::from_secs(100);
        for (i, version) in versions.iter().enumerate() {
            let path = dir.version_dir("kmod", version);
            std::fs::create_dir_all(&path).unwrap();
            std::fs::write(path.join("artifact"), version.as_bytes()).unwrap();
            let at = start + Duration::from_secs(i as u64);
            std::fs::File::open(&path).unwrap().set_modified(at).unwrap();
        }
    }

    fn on_disk(dir: &DataDir) -> BTreeSet<String> {
        std::fs::read_dir(dir.module_dir("kmod"))
            .unwrap()
            .filter_map(Result::ok)
            .filter(|e| e.file_type().unwrap().is_dir())
            .map(|e| e.file_name().into_string().unwrap())
            .collect()
    }

    fn set(versions: &[&str]) -> BTreeSet<String> {
        versions.iter().map(|v| v.to_string()).collect()
    }

    #[test]
    fn the_serving_previous_and_standby_versions_stay_with_the_newest_others() {
        let root = tempfile::tempdir().unwrap();
        let dir = DataDir(root.path().to_path_buf());
        staged(&dir, &["1.0.0", "1.1.0", "1.2.0", "1.3.0", "1.4.0", "1.5.0", "1.6.0"]);
        dir.set_link("kmod", "current", Some("1.5.0")).unwrap();
        dir.set_link("kmod", "standby", Some("1.0.0")).unwrap();
        let slots = ModuleSlots {
            active: Some(VersionSlot::plain("1.5.0")),
            previous: Some(VersionSlot::plain("1.1.0")),
            standby: Some(VersionSlot::plain("1.0.0")),
        };
        let (removed, failed) = prune(&dir, "kmod", &slots, 2);
        assert!(failed.is_empty(), "{failed:?}");
        // 1.6.0 (a failed activation, newest) and 1.4.0 are the two others kept.
        assert_eq!(set(&removed.iter().map(String::as_str).collect::<Vec<_>>()), set(&["1.2.0", "1.3.0"]));
        assert_eq!(on_disk(&dir), set(&["1.0.0", "1.1.0", "1.4.0", "1.5.0", "1.6.0"]));
        assert_eq!(dir.link("kmod", "current").as_deref(), Some("1.5.0"), "the links are left alone");
    }

    #[test]
    fn a_version_a_link_names_stays_even_when_the_state_does_not_name_it() {
        let root = tempfile::tempdir().unwrap();
        let dir = DataDir(root.path().to_path_buf());
        staged(&dir, &["1.0.0", "2.0.0", "3.0.0"]);
        // Changed by hand: the link serves 1.0.0, the state says 3.0.0.
        dir.set_link("kmod", "current", Some("1.0.0")).unwrap();
        let slots = ModuleSlots { active: Some(VersionSlot::plain("3.0.0")), ..ModuleSlots::default() };
        let (removed, _) = prune(&dir, "kmod", &slots, 0);
        assert_eq!(removed, vec!["2.0.0".to_string()]);
        assert_eq!(on_disk(&dir), set(&["1.0.0", "3.0.0"]));
    }
}
