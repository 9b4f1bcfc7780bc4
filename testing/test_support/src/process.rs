//! Real servers for tests: free loopback ports, processes started with their
//! output in a log file, readiness by TCP connect, and a stop by PID that
//! always runs (on drop too).

use std::collections::BTreeSet;
use std::collections::hash_map::RandomState;
use std::fs::File;
use std::hash::{BuildHasher, Hasher};
use std::io::{Read, Seek, SeekFrom};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Where picked ports start; they end below the kernel's ephemeral range.
const LOWEST_PORT: u16 = 10_000;

/// A port that was free a moment ago on 127.0.0.1, for a server to bind.
/// It is taken below the kernel's ephemeral range: a port the kernel hands
/// out (`bind` to port 0) can go to another test's outgoing connection before
/// the server binds it. No port is handed out twice in one process.
pub fn free_port() -> u16 {
    static HANDED_OUT: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());
    let ephemeral = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|text| text.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32_768);
    let span = u64::from(ephemeral.saturating_sub(LOWEST_PORT).max(1000));
    let start = RandomState::new().build_hasher().finish();
    let mut handed_out = HANDED_OUT.lock().unwrap_or_else(PoisonError::into_inner);
    (0..span)
        .map(|step| LOWEST_PORT + (start.wrapping_add(step) % span) as u16)
        .find(|port| !handed_out.contains(port) && TcpListener::bind(("127.0.0.1", *port)).is_ok())
        .inspect(|port| {
            handed_out.insert(*port);
        })
        .expect("a free loopback port below the ephemeral range")
}

/// Where scripts/install-test-deps puts the servers it builds or downloads
/// through a package client: the user's cache, so a second run is fast.
pub fn install_root() -> Option<PathBuf> {
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))
        .map(|cache| cache.join("iggy-connectors"))
}

/// The classpath scripts/install-test-deps resolved with Maven into
/// `<install root>/<dir>/classpath.txt`; a loud failure naming `server`
/// and how to install it when absent.
pub fn installed_classpath(server: &str, dir: &str, install: &str) -> String {
    let file = install_root()
        .map(|root| root.join(dir).join("classpath.txt"))
        .unwrap_or_default();
    let classpath = std::fs::read_to_string(&file).unwrap_or_default();
    assert!(
        !classpath.trim().is_empty(),
        "{server} is not installed ({} is missing); {install}",
        file.display()
    );
    classpath.trim().to_string()
}

/// The first existing path among `candidates`, or a loud failure saying how to install it.
pub fn require_binary(name: &str, candidates: &[&str], install: &str) -> PathBuf {
    candidates
        .iter()
        .map(PathBuf::from)
        .find(|path| path.is_file())
        .unwrap_or_else(|| panic!("{name} is not installed (looked in {candidates:?}); {install}"))
}

/// Polls `condition` every 20 ms until it gives a value, for at most `limit`.
pub fn wait_until<T>(limit: Duration, mut condition: impl FnMut() -> Option<T>) -> Option<T> {
    let until = Instant::now() + limit;
    loop {
        if let Some(value) = condition() {
            return Some(value);
        }
        if Instant::now() >= until {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// How `child` exited, if it did within `limit` of `started`; a child still
/// running then is killed, so a hung run fails its test instead of outliving it.
pub fn exit_within(child: &mut Child, started: Instant, limit: Duration) -> Option<ExitStatus> {
    let left = limit.saturating_sub(started.elapsed());
    let status = wait_until(left, || child.try_wait().expect("the child's status"));
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    status
}

/// Sends `signal` (a name such as `STOP`, `CONT` or `KILL`) to `pid`:
/// tests freeze a server to make it unreachable without losing its state.
pub fn signal(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill -{signal} {pid}");
}

pub fn wait_for_port(port: u16, limit: Duration) -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let until = Instant::now() + limit;
    while Instant::now() < until {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// A server process stopped by PID when dropped.
pub struct ServerProcess {
    name: String,
    child: Option<Child>,
    log: PathBuf,
}

impl ServerProcess {
    /// A server not running yet: fixtures keep one and `start` it (again
    /// after a kill) with their command.
    pub fn idle(name: &str, log: &Path) -> Self {
        Self {
            name: name.to_string(),
            child: None,
            log: log.to_path_buf(),
        }
    }

    /// Starts `command` (stopping what ran before) with stdout and stderr
    /// appended to the log.
    pub fn start(&mut self, mut command: Command) {
        self.stop();
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("server log file");
        let err = file.try_clone().expect("server log file");
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::from(file))
            .stderr(Stdio::from(err))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.name));
        self.child = Some(child);
    }

    /// The PID of the running server; panics when it is not running.
    pub fn running_pid(&self) -> u32 {
        self.pid()
            .unwrap_or_else(|| panic!("{} is not running", self.name))
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The server's log so far (for failure messages).
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// Waits until the port accepts connections; panics with the log if it never does.
    pub fn await_port(&mut self, port: u16, limit: Duration) {
        if !wait_for_port(port, limit) {
            let log = self.log_tail();
            self.stop();
            panic!(
                "{} did not listen on 127.0.0.1:{port} within {limit:?}; log:\n{log}",
                self.name
            );
        }
    }

    /// Starts `command` and waits until its log shows `ready`; panics with
    /// the log's end if it shows `failed` instead or neither within `limit`.
    /// For servers that bind their ports long before they serve.
    pub fn start_until_logged(
        &mut self,
        command: Command,
        ready: &str,
        failed: &str,
        limit: Duration,
    ) {
        let offset = std::fs::metadata(&self.log).map_or(0, |m| m.len());
        self.start(command);
        let mut log = LogFollower::from(&self.log, offset);
        let outcome = wait_until(limit, || {
            log.next_lines().and_then(|lines| {
                (lines.contains(ready) || lines.contains(failed)).then(|| lines.contains(ready))
            })
        });
        if outcome != Some(true) {
            self.stop();
            panic!(
                "{} did not start within {limit:?}; log:\n{}",
                self.name,
                self.log_tail()
            );
        }
    }

    /// Kills the process (SIGKILL) and reaps it.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The methods of a server fixture over its `process` field (a
/// [`ServerProcess`]), written once for every fixture. They are inherent
/// methods rather than a trait's so that callers (tests, benchmarks, the
/// demo) need no import for them. `restartable` adds `restart` over the
/// fixture's own `launch(&mut self)`, which starts the server again on the
/// same ports (and data, where the fixture keeps it) and waits until it serves.
macro_rules! server_process_methods {
    () => {
        /// The running server's PID (for SIGSTOP/SIGCONT and CPU figures);
        /// panics when it is not running.
        pub fn pid(&self) -> u32 {
            self.process.running_pid()
        }

        /// Kills the server (SIGKILL), as a crash would.
        pub fn kill(&mut self) {
            self.process.stop();
        }

        /// The end of the server's log (for failure messages).
        pub fn log_tail(&self) -> String {
            self.process.log_tail()
        }
    };
    (restartable) => {
        $crate::process::server_process_methods!();

        /// Kills the server and starts it again as it was.
        pub fn restart(&mut self) {
            self.kill();
            self.launch();
        }
    };
}
pub(crate) use server_process_methods;

/// Asks the kernel to kill the child with SIGKILL when this process ends:
/// a server kept in a static (shared by a test binary) is never dropped.
pub fn dies_with_parent(command: &mut Command) {
    // SAFETY: prctl is async-signal-safe and touches only this child.
    unsafe {
        command.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
}

/// The lines appended to a log since `offset`, read a poll at a time: the
/// server writes megabytes while it starts, which reading the whole file
/// at every poll would read again and again.
pub struct LogFollower {
    file: Option<File>,
    /// The start of a line not ended yet at the last read.
    partial: String,
}

impl LogFollower {
    pub fn from(path: &Path, offset: u64) -> Self {
        let file = File::open(path)
            .and_then(|mut file| file.seek(SeekFrom::Start(offset)).map(|_| file))
            .ok();
        Self {
            file,
            partial: String::new(),
        }
    }

    /// The whole lines written since the last call, if any.
    pub fn next_lines(&mut self) -> Option<String> {
        let mut bytes = Vec::new();
        self.file.as_mut()?.read_to_end(&mut bytes).ok()?;
        self.partial.push_str(&String::from_utf8_lossy(&bytes));
        let end = self.partial.rfind('\n')? + 1;
        let rest = self.partial.split_off(end);
        Some(std::mem::replace(&mut self.partial, rest))
    }
}
