//! The systems the pipeline talks to, each a real server started on a free
//! loopback port under the run's temp dir and stopped by PID when dropped.
//! Flink joins only when Java and the PyPI Flink distribution are present,
//! Pravega only when Java and its standalone's classpath are.

use harness_test_support::flink::FlinkCluster;
use harness_test_support::influxdb::InfluxServer;
use harness_test_support::nats::NatsServer;
use harness_test_support::pravega::PravegaServer;
use harness_test_support::process::install_root;
use harness_test_support::s2::S2Lite;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The basin the shipped S2 connector files name.
pub const S2_BASIN: &str = "iggy-orders";
pub const FLINK_JOB_NAME: &str = "iggy-demo-job";
const FLINK_ENTRY_CLASS: &str = "iggytest.IggyTestJob";

pub struct Flink {
    pub cluster: FlinkCluster,
    pub job_id: String,
}

pub struct Servers {
    pub nats: NatsServer,
    pub influxdb: InfluxServer,
    pub s2: S2Lite,
    pub flink: Option<Flink>,
    pub pravega: Option<PravegaServer>,
}

impl Servers {
    pub fn start(dir: &Path, want_flink: bool) -> Self {
        let nats = timed("nats-server (JetStream)", || NatsServer::start(dir));
        let influxdb = timed("InfluxDB 1.x (openGemini's write API)", || {
            InfluxServer::start(dir)
        });
        let s2 = timed("s2-lite", || S2Lite::start(dir, &[S2_BASIN]));
        let flink = match (want_flink, flink_missing()) {
            (false, _) => {
                eprintln!("   Flink left out (--no-flink)");
                None
            }
            (true, Some(reason)) => {
                eprintln!("   Flink left out: {reason}");
                None
            }
            (true, None) => Some(timed("Flink session cluster and a job", || {
                start_flink(dir)
            })),
        };
        let pravega = match pravega_missing() {
            Some(reason) => {
                eprintln!("   Pravega left out: {reason}");
                None
            }
            None => Some(timed("Pravega standalone", || PravegaServer::start(dir))),
        };
        Self {
            nats,
            influxdb,
            s2,
            flink,
            pravega,
        }
    }
}

fn timed<T>(what: &str, start: impl FnOnce() -> T) -> T {
    let began = Instant::now();
    let server = start();
    eprintln!("   {what} up in {:.1}s", began.elapsed().as_secs_f64());
    server
}

fn runs(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// Why Flink cannot join, if it cannot.
fn flink_missing() -> Option<String> {
    if !runs("java", &["-version"]) || !runs("javac", &["-version"]) {
        return Some("no Java (java and javac)".into());
    }
    if !runs("python3", &["-c", "import pyflink"]) {
        return Some("the PyPI package apache-flink is not installed".into());
    }
    None
}

/// Why Pravega cannot join, if it cannot.
fn pravega_missing() -> Option<String> {
    if !runs("java", &["-version"]) {
        return Some("no Java".into());
    }
    let classpath = install_root()
        .map(|root| root.join("pravega/classpath.txt"))
        .filter(|file| file.is_file());
    if classpath.is_none() {
        return Some("the standalone is not installed (scripts/install-test-deps)".into());
    }
    None
}

/// A session cluster running the Flink source tests' small counter job,
/// which the Flink source then watches in monitor mode.
fn start_flink(dir: &Path) -> Flink {
    let cluster = FlinkCluster::start(dir);
    let source = job_source();
    let jar = cluster.compile_job(&source, dir);
    let jar_id = cluster.upload_jar(&jar);
    let job_id = cluster.run_jar(
        &jar_id,
        FLINK_ENTRY_CLASS,
        &[
            "--name",
            FLINK_JOB_NAME,
            "--sleep-ms",
            "50",
            // Checkpoint events would keep the run from ever going idle.
            "--checkpoint-ms",
            "3600000",
        ],
    );
    let running = cluster.wait_until(Duration::from_secs(60), |flink| {
        flink.job_state(&job_id) == "RUNNING"
    });
    assert!(
        running,
        "the Flink job {job_id} did not reach RUNNING in 60s; logs:\n{}",
        cluster.log_tail()
    );
    Flink { cluster, job_id }
}

fn job_source() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../plugins/flink_source/tests/flink/IggyTestJob.java")
}
