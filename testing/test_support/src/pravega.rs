//! A real Pravega: the standalone cluster published on Maven Central
//! (`io.pravega:pravega-standalone` 0.13.0: ZooKeeper, controller and
//! segment store in one JVM, in-memory storage), started from the classpath
//! scripts/install-test-deps resolves, on free loopback ports, stopped by PID.
//!
//! The standalone keeps events in memory only: a killed server comes back
//! empty. Outage tests that need the events to survive freeze it instead.

use crate::process::{
    ServerProcess, dies_with_parent, free_port, installed_classpath, server_process_methods,
};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const INSTALL_HINT: &str =
    "run scripts/install-test-deps (resolves io.pravega:pravega-standalone with Maven)";
const MAIN_CLASS: &str = "io.pravega.local.LocalPravegaEmulator";
/// What the emulator logs once the controller and segment store both serve.
const READY_LINE: &str = "Pravega Sandbox is running locally now";
/// What it logs when it gives up starting.
const FAILED_LINE: &str = "Exception occurred running emulator";
const START_LIMIT: Duration = Duration::from_secs(120);

pub struct PravegaServer {
    pub controller_port: u16,
    segment_store_port: u16,
    zk_port: u16,
    dir: PathBuf,
    process: ServerProcess,
}

impl PravegaServer {
    /// A server of this test's own, under `dir`.
    pub fn start(dir: &Path) -> Self {
        let mut server = Self {
            controller_port: free_port(),
            segment_store_port: free_port(),
            zk_port: free_port(),
            dir: dir.to_path_buf(),
            process: ServerProcess::idle("Pravega standalone", &dir.join("pravega.log")),
        };
        server.launch();
        server
    }

    /// One server for every test of this test binary (each test takes a
    /// scope of its own): a start costs 20-30 s and a JVM. It is started from
    /// a thread that never ends and asks the kernel to kill the JVM when this
    /// process exits, so it is stopped even though a static is never dropped.
    pub fn shared() -> &'static PravegaServer {
        static SHARED: OnceLock<PravegaServer> = OnceLock::new();
        SHARED.get_or_init(|| {
            let (sender, receiver) = std::sync::mpsc::channel();
            std::thread::Builder::new()
                .name("pravega-keeper".into())
                .spawn(move || {
                    let _ = sender.send(Self::start(&shared_dir()));
                    loop {
                        std::thread::park();
                    }
                })
                .expect("keeper thread");
            receiver
                .recv()
                .unwrap_or_else(|_| panic!("the shared Pravega server did not start"))
        })
    }

    fn launch(&mut self) {
        let properties = self.dir.join("pravega-standalone.properties");
        // Each key is SingleNodeConfig's "singlenode." prefix plus its name.
        let settings = format!(
            "singlenode.zk.port={}\nsinglenode.controller.rpc.port={}\nsinglenode.segmentStore.port={}\n\
             singlenode.controller.rest.enable=false\nsinglenode.admin.gateway.enable=false\n\
             singlenode.security.auth.enable=false\nsinglenode.security.tls.enable=false\n",
            self.zk_port, self.controller_port, self.segment_store_port
        );
        std::fs::write(&properties, settings).expect("pravega properties");
        let work = self.dir.join("pravega-work");
        std::fs::create_dir_all(&work).expect("pravega work dir");
        let mut command = Command::new("java");
        command
            .current_dir(&work)
            .arg("-Xmx768m")
            .arg("-XX:+UseSerialGC")
            .arg(format!("-Djava.io.tmpdir={}", work.display()))
            .arg(format!(
                "-Dsinglenode.configurationFile={}",
                properties.display()
            ))
            .arg("-cp")
            .arg(installed_classpath(
                "Pravega standalone",
                "pravega",
                INSTALL_HINT,
            ))
            .arg(MAIN_CLASS);
        dies_with_parent(&mut command);
        self.process
            .start_until_logged(command, READY_LINE, FAILED_LINE, START_LIMIT);
    }

    pub fn controller_uri(&self) -> String {
        format!("tcp://127.0.0.1:{}", self.controller_port)
    }

    // A kill loses every event; a restart comes back empty on the same ports.
    server_process_methods!(restartable);
}

/// A scope name no other test or run uses, `iggy-<test>-…`: tests on a
/// shared server each take a scope of their own.
pub fn fresh_scope(test: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("a clock after 1970")
        .as_nanos();
    format!("iggy-{test}-{}-{nanos}", std::process::id())
}

/// The shared server's dir, named by this process; the dirs of test
/// processes that have ended are removed first (no drop ever runs for it).
fn shared_dir() -> PathBuf {
    const PREFIX: &str = "iggy-pravega-shared-";
    let temp = std::env::temp_dir();
    for entry in std::fs::read_dir(&temp).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let ended = name
            .strip_prefix(PREFIX)
            .and_then(|pid| pid.parse::<u32>().ok())
            .is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists());
        if ended {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
    let dir = temp.join(format!("{PREFIX}{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("shared Pravega dir");
    dir
}
