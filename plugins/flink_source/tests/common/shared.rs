//! Servers shared by every scenario of a test binary: started by the first
//! scenario that asks, kept in a static, and stopped when the binary ends.
//!
//! A static is never dropped, so the binary's end is watched from outside:
//! a small shell process (in a process group of its own, so a Ctrl-C of the
//! tests does not reach it) waits for the end of a pipe only this process
//! holds, then stops every JVM whose PID Flink's scripts wrote under the
//! servers' dir (TERM, then KILL) and removes the dir. A server started as
//! a child with `dies_with_parent` (Kafka) is killed by the kernel when the
//! thread that started it ends: the servers are started on a thread that
//! never ends.
//!
//! Scenarios run in parallel (the test harness's threads), at most
//! [`SCENARIOS_AT_ONCE`] at a time whatever the thread count: the cluster has
//! four task slots and a scenario holds up to two jobs.

use iggy_harness_test_support::flink::FlinkCluster;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Condvar, Mutex, OnceLock, PoisonError};

/// A start that succeeded, or the reason it did not (kept, so that every
/// scenario fails with it rather than starting the servers again).
pub type Started<T> = OnceLock<Result<T, String>>;

pub const SCENARIOS_AT_ONCE: usize = 2;

/// The servers `start` makes under a fresh dir, started once per binary.
/// Panics, in every scenario that asks, if they did not start.
pub fn servers<T: Send + Sync + 'static>(
    cell: &'static Started<T>,
    what: &str,
    start: fn(&Path) -> T,
) -> &'static T {
    let started = cell.get_or_init(|| {
        let dir = shared_dir();
        stop_on_exit(&dir);
        let (sender, receiver) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("shared-servers".into())
            .spawn(move || {
                let outcome = std::panic::catch_unwind(|| start(&dir)).map_err(|panic| {
                    panic
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_else(|| "a panic without a message".into())
                });
                let _ = sender.send(outcome);
                loop {
                    std::thread::park();
                }
            })
            .expect("the servers' thread");
        receiver
            .recv()
            .unwrap_or_else(|_| Err("the servers' thread ended".into()))
    });
    match started {
        Ok(servers) => servers,
        Err(reason) => panic!("{what} did not start, so no scenario of this binary runs: {reason}"),
    }
}

/// A dir of this process's own under the temp dir.
fn shared_dir() -> PathBuf {
    let binary = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "tests".into());
    let dir = std::env::temp_dir().join(format!("iggy-{binary}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("the shared servers' dir");
    dir
}

/// The watchers, with the write ends of their stdin pipes: open until this
/// process ends. They are never waited for: they outlive it.
static WATCHERS: Mutex<Vec<Child>> = Mutex::new(Vec::new());

/// Starts the watcher that stops the JVMs under `dir` once this process ends.
fn stop_on_exit(dir: &Path) {
    const SCRIPT: &str = r#"
cat > /dev/null
pids=$(cat "$1"/*/*.pid "$1"/*/*/*.pid 2>/dev/null)
[ -n "$pids" ] && kill -CONT $pids 2>/dev/null
[ -n "$pids" ] && kill -TERM $pids 2>/dev/null
for _ in $(seq 150); do
    alive=""
    for pid in $pids; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [ -z "$alive" ] && break
    sleep 0.1
done
[ -n "$pids" ] && kill -KILL $pids 2>/dev/null
rm -rf "$1"
"#;
    use std::os::unix::process::CommandExt;
    let watcher = Command::new("sh")
        .args(["-c", SCRIPT, "stop-shared-servers"])
        .arg(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .expect("the shared servers' watcher starts");
    WATCHERS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(watcher);
}

/// Lets at most [`SCENARIOS_AT_ONCE`] scenarios use the servers at a time.
pub struct Turns {
    free: Mutex<usize>,
    freed: Condvar,
}

/// A scenario's turn, given back when dropped.
pub struct Turn<'a>(&'a Turns);

impl Turns {
    pub const fn new() -> Self {
        Self {
            free: Mutex::new(SCENARIOS_AT_ONCE),
            freed: Condvar::new(),
        }
    }

    pub fn take(&self) -> Turn<'_> {
        let mut free = self.free.lock().unwrap_or_else(PoisonError::into_inner);
        while *free == 0 {
            free = self
                .freed
                .wait(free)
                .unwrap_or_else(PoisonError::into_inner);
        }
        *free -= 1;
        Turn(self)
    }
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        *self.0.free.lock().unwrap_or_else(PoisonError::into_inner) += 1;
        self.0.freed.notify_one();
    }
}

/// The ids of the cluster's jobs named `name` that have not ended.
pub fn live_jobs_named(cluster: &FlinkCluster, name: &str) -> Vec<String> {
    let (_, overview) = cluster.get("/jobs/overview");
    overview["jobs"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|job| job["name"] == name)
        .filter(|job| {
            !matches!(
                job["state"].as_str(),
                Some("FINISHED" | "FAILED" | "CANCELED" | "CANCELLING")
            )
        })
        .filter_map(|job| job["jid"].as_str().map(str::to_string))
        .collect()
}

/// Cancels, when dropped, the jobs of these names that still run: a
/// scenario's jobs must not hold the shared cluster's slots once it has
/// ended, passed or failed. The requests go on a thread of their own, so
/// one that fails while a failed scenario unwinds cannot abort the binary.
pub struct CancelJobs {
    cluster: &'static FlinkCluster,
    names: Vec<String>,
}

impl CancelJobs {
    pub fn named(cluster: &'static FlinkCluster, names: &[&str]) -> Self {
        Self {
            cluster,
            names: names.iter().map(|name| name.to_string()).collect(),
        }
    }
}

impl Drop for CancelJobs {
    fn drop(&mut self) {
        let cluster = self.cluster;
        let names = std::mem::take(&mut self.names);
        let _ = std::thread::spawn(move || {
            for name in &names {
                for job in live_jobs_named(cluster, name) {
                    cluster.cancel(&job);
                }
            }
        })
        .join();
    }
}
