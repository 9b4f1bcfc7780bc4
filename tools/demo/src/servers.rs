//! The systems the pipeline talks to, each a real server started on a free
//! loopback port under the run's temp dir and stopped by PID when dropped.
//! Flink joins only when Java, the PyPI Flink distribution and the SQL
//! Gateway jar are present,
//! Pravega only when Java and its standalone's classpath are.

use iggy_harness_test_support::flink::{FlinkCluster, SqlGateway, installed_sql_gateway_opt_dir};
use iggy_harness_test_support::influxdb::InfluxServer;
use iggy_harness_test_support::nats::NatsServer;
use iggy_harness_test_support::pravega::PravegaServer;
use iggy_harness_test_support::process::install_root;
use iggy_harness_test_support::s2::S2Lite;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

/// The basin the shipped S2 connector files name.
pub const S2_BASIN: &str = "iggy-orders";
/// Fields in drop order: the gateway stops before the cluster it submits to.
pub struct Flink {
    pub gateway: SqlGateway,
    pub cluster: FlinkCluster,
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
            (true, None) => Some(timed("Flink session cluster and SQL Gateway", || {
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
    if installed_sql_gateway_opt_dir().is_none() {
        return Some("the SQL Gateway jar is not installed (scripts/install-test-deps)".into());
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

/// A session cluster with its SQL Gateway in front, for the Flink source's
/// records mode; its monitor mode watches the query's job on the cluster.
fn start_flink(dir: &Path) -> Flink {
    let cluster = FlinkCluster::start(dir);
    let gateway = SqlGateway::start(&cluster, dir);
    Flink { gateway, cluster }
}
