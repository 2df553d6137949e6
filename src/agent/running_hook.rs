//! The hook running now, recorded under the data directory
//! (`DIR/running-hook.json`) for as long as it runs. Each hook runs in a
//! process group of its own; an agent that is SIGKILLed (or crashes) mid-hook
//! does not take that group with it: the hook, reparented to init, would go
//! on and finish after the restarted agent had reported the host and been
//! restored (an `activate` of the new version completing on a host restored
//! to the old one). The next agent to start on the data directory ends that
//! group before it does anything else ([`RunningHook::end_left_over`]).
//!
//! The record names the group's leader with its start time and the boot it
//! started in, so that a process id reused since (after a reboot, or by
//! another process once the whole group is gone) is never signalled.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// What is recorded of a running hook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Record {
    /// The hook's process group: its shell's process id.
    group: u32,
    /// The shell's start time, in clock ticks since boot (`/proc/PID/stat`).
    started: u64,
    /// `/proc/sys/kernel/random/boot_id` when the hook started.
    boot: String,
}

/// `DIR/running-hook.json`.
#[derive(Debug, Clone)]
pub struct RunningHook {
    path: PathBuf,
}

impl RunningHook {
    pub fn in_dir(data_dir: &Path) -> RunningHook {
        RunningHook { path: data_dir.join("running-hook.json") }
    }

    /// Records the hook whose shell (and process group) is `group`, just
    /// started. Not synced: a host that crashes takes the hook with it, so
    /// the record only has to outlive the agent's process, not the machine.
    pub fn started(&self, group: u32) {
        let record = identify(group).map(|(started, boot)| Record { group, started, boot });
        let written = match record {
            Some(record) => serde_json::to_vec(&record)
                .map_err(|e| e.to_string())
                .and_then(|bytes| std::fs::write(&self.path, bytes).map_err(|e| e.to_string())),
            // Gone already (it ended at once): nothing can be left over.
            None => return,
        };
        if let Err(e) = written {
            tracing::warn!(path = %self.path.display(), error = %e,
                "could not record the running hook; if the agent is killed during it, the next start cannot end it");
        }
    }

    /// The hook ended (or was ended): nothing is left running.
    pub fn ended(&self) {
        let _ = std::fs::remove_file(&self.path);
    }

    /// Kills the process group of a hook an earlier agent process left
    /// running (it was killed mid-hook), if that group is still the one
    /// recorded, and forgets the record. Answers what it did, for the log.
    pub fn end_left_over(&self) -> Option<String> {
        let bytes = std::fs::read(&self.path).ok()?;
        self.ended();
        let record: Record = serde_json::from_slice(&bytes).ok()?;
        let own_group = rustix::process::getpgrp().as_raw_pid() as u32;
        // The shell started the group; while any member lives, its id is not
        // given to another process. The leader still there under another
        // start time, or another boot, is someone else's process.
        let same = match identify(record.group) {
            Some((started, boot)) => started == record.started && boot == record.boot,
            None => boot_id().as_deref() == Some(record.boot.as_str()),
        };
        if !same || record.group <= 1 || record.group == own_group {
            return None;
        }
        kill_group(record.group).then(|| format!("process group {}", record.group))
    }
}

/// A process's start time and the current boot's id, if the process exists.
fn identify(pid: u32) -> Option<(u64, String)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name, in parentheses, may hold spaces: fields are counted
    // after its closing parenthesis, where the third field (state) begins.
    let after_name = stat.rsplit_once(')')?.1;
    let started = after_name.split_whitespace().nth(19)?.parse().ok()?;
    Some((started, boot_id()?))
}

fn boot_id() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok().map(|id| id.trim().to_string())
}

/// Sends SIGKILL to every process of `group`; answers whether any was there.
fn kill_group(group: u32) -> bool {
    #[cfg(target_os = "linux")]
    if let Some(pid) = rustix::process::Pid::from_raw(group as i32) {
        return rustix::process::kill_process_group(pid, rustix::process::Signal::KILL).is_ok();
    }
    let _ = group;
    false
}

#[cfg(test)]
mod tests {
    use std::process::{Command, Stdio};

    use super::*;

    /// Whether `pid` runs (a zombie waiting to be reaped does not).
    fn alive(pid: u32) -> bool {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .is_ok_and(|stat| stat.rsplit(')').next().is_some_and(|rest| !rest.trim_start().starts_with('Z')))
    }

    /// A process group of its own with a shell and a child it started.
    fn hook_like_group() -> std::process::Child {
        use std::os::unix::process::CommandExt;
        Command::new("/bin/sh").args(["-c", "sleep 60 & wait"]).process_group(0).stdin(Stdio::null()).spawn().unwrap()
    }

    #[test]
    fn a_hook_left_by_a_killed_agent_is_ended_with_its_group() {
        let dir = tempfile::tempdir().unwrap();
        let running = RunningHook::in_dir(dir.path());
        let mut shell = hook_like_group();
        running.started(shell.id());
        assert!(dir.path().join("running-hook.json").exists());
        assert_eq!(running.end_left_over(), Some(format!("process group {}", shell.id())));
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(shell.wait().unwrap().signal(), Some(9), "the hook's shell was killed");
        assert!(!dir.path().join("running-hook.json").exists(), "the record is forgotten");
    }

    #[test]
    fn a_record_naming_a_process_that_started_later_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let running = RunningHook::in_dir(dir.path());
        let mut shell = hook_like_group();
        let (started, boot) = identify(shell.id()).unwrap();
        // The same process id, started at another time: a reused id.
        let record = Record { group: shell.id(), started: started + 1, boot };
        std::fs::write(dir.path().join("running-hook.json"), serde_json::to_vec(&record).unwrap()).unwrap();
        assert_eq!(running.end_left_over(), None);
        assert!(alive(shell.id()), "another process's group is not signalled");
        let _ = kill_group(shell.id());
        shell.wait().unwrap();
    }

    #[test]
    fn an_ended_hook_leaves_nothing_to_end() {
        let dir = tempfile::tempdir().unwrap();
        let running = RunningHook::in_dir(dir.path());
        let mut shell = hook_like_group();
        running.started(shell.id());
        running.ended();
        assert_eq!(running.end_left_over(), None);
        let _ = kill_group(shell.id());
        shell.wait().unwrap();
    }
}
