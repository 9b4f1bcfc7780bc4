//! `iggy-harness run` in the background, for tests that act on a run
//! while it moves data.

use crate::{Workspace, harness_binary, process, until_idle};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

/// `iggy-harness run` over a workspace's connectors (disk store, state
/// dir) started in the background, for tests that act while it runs: kill
/// it (SIGKILL, by PID) mid-run, take a server away under it, scrape its
/// plugins' endpoints. Killed when dropped.
pub struct BackgroundRun {
    child: Option<Child>,
}

impl BackgroundRun {
    /// Ends by itself once nothing has moved for `idle` (or after 60 s).
    pub fn start(ws: &Workspace, idle: &str, extra: &[&str]) -> Self {
        Self::ending(ws, &until_idle(idle, extra))
    }

    /// Ends as `end` says (`--duration`, …); its output is kept for `wait`.
    pub fn ending(ws: &Workspace, end: &[&str]) -> Self {
        Self::spawn(ws, end, Stdio::piped)
    }

    /// [`BackgroundRun::ending`] with its output thrown away, for a run
    /// whose log nobody reads.
    pub fn ending_unread(ws: &Workspace, end: &[&str]) -> Self {
        Self::spawn(ws, end, Stdio::null)
    }

    fn spawn(ws: &Workspace, end: &[&str], output: fn() -> Stdio) -> Self {
        let child = Command::new(harness_binary())
            .args(ws.run_args(end))
            .current_dir(ws.dir.path())
            .stdout(output())
            .stderr(output())
            .spawn()
            .expect("harness starts");
        Self { child: Some(child) }
    }

    /// SIGKILL, as a crash would, and reaps it.
    pub fn kill(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|child| matches!(child.try_wait(), Ok(None)))
    }

    /// How the run exited, if it did within `limit` of `started`; a run
    /// still going then is killed (see [`process::exit_within`]).
    pub fn exit_within(&mut self, started: Instant, limit: Duration) -> Option<ExitStatus> {
        let child = self.child.as_mut().expect("started");
        process::exit_within(child, started, limit)
    }

    /// Waits for the run to end by itself (`--duration` bounds it).
    pub fn wait(mut self) -> Output {
        self.child
            .take()
            .expect("running")
            .wait_with_output()
            .expect("harness output")
    }
}

impl Drop for BackgroundRun {
    fn drop(&mut self) {
        self.stop();
    }
}
