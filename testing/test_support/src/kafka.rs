//! A real Apache Kafka: the 4.1.1 broker published on Maven Central
//! (`org.apache.kafka:kafka_2.13`), one node that is both broker and KRaft
//! controller (Kafka 4 has no ZooKeeper mode), started from the classpath
//! scripts/install-test-deps resolves, on free loopback ports, with its log
//! dirs in the test's temp dir, stopped by PID (and killed by the kernel if
//! the test process dies first).
//!
//! Also where the same script puts Flink's Kafka table connector and its
//! runtime jars, for a test Flink cluster's lib dir.

use crate::process::{
    ServerProcess, dies_with_parent, free_port, installed_classpath, server_process_methods,
};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const INSTALL_HINT: &str =
    "run scripts/install-test-deps (resolves org.apache.kafka:kafka_2.13 with Maven)";
const NAME: &str = "Kafka broker";
/// The storage tool behind `kafka-storage.sh`: a KRaft log dir must be
/// formatted with a cluster id before the first start.
const STORAGE_TOOL: &str = "kafka.tools.StorageTool";
const MAIN_CLASS: &str = "kafka.Kafka";
/// What the server logs once the broker serves requests.
const READY_LINE: &str = "Kafka Server started";
/// What `kafka.Kafka` logs when it gives up starting.
const FAILED_LINE: &str = "Exiting Kafka";
const START_LIMIT: Duration = Duration::from_secs(90);
/// The broker logs through Log4j 2 and has no configuration of its own on
/// its classpath; without one only errors would be logged and the ready
/// line never seen.
const LOG_CONFIG: &str = "appender.out.type = Console\nappender.out.name = out\n\
    appender.out.layout.type = PatternLayout\nappender.out.layout.pattern = [%d] %p %m (%c)%n\n\
    rootLogger.level = INFO\nrootLogger.appenderRef.out.ref = out\n";

pub struct KafkaServer {
    pub port: u16,
    process: ServerProcess,
}

impl KafkaServer {
    /// Formats a fresh single-node KRaft cluster under `dir` and starts it;
    /// panics with the reason and the log's end if it does not come up.
    pub fn start(dir: &Path) -> Self {
        let port = free_port();
        let controller_port = free_port();
        let classpath = installed_classpath(NAME, "kafka", INSTALL_HINT);
        let properties = dir.join("kafka-server.properties");
        std::fs::write(
            &properties,
            server_properties(port, controller_port, &dir.join("kafka-data")),
        )
        .expect("kafka server.properties");
        let log_config = dir.join("kafka-log4j2.properties");
        std::fs::write(&log_config, LOG_CONFIG).expect("kafka log config");
        let cluster_id = storage_tool(&classpath, &["random-uuid"]);
        let properties_arg = properties.to_str().expect("utf-8 path");
        storage_tool(
            &classpath,
            &["format", "-t", cluster_id.trim(), "-c", properties_arg],
        );
        let mut command = Command::new("java");
        command
            .current_dir(dir)
            .args(["-Xmx512m", "-XX:+UseSerialGC"])
            .arg(format!("-Djava.io.tmpdir={}", dir.display()))
            .arg(format!(
                "-Dlog4j2.configurationFile={}",
                log_config.display()
            ))
            .arg("-cp")
            .arg(&classpath)
            .arg(MAIN_CLASS)
            .arg(&properties);
        dies_with_parent(&mut command);
        let mut process = ServerProcess::idle(NAME, &dir.join("kafka.log"));
        process.start_until_logged(command, READY_LINE, FAILED_LINE, START_LIMIT);
        Self { port, process }
    }

    /// `host:port` for clients' `bootstrap.servers`.
    pub fn bootstrap_servers(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    server_process_methods!();
}

/// One node as broker and controller, loopback listeners only, every
/// internal topic with one replica (the defaults want three brokers).
fn server_properties(port: u16, controller_port: u16, data: &Path) -> String {
    format!(
        "process.roles=broker,controller\nnode.id=1\n\
         controller.quorum.voters=1@127.0.0.1:{controller_port}\n\
         listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}\n\
         advertised.listeners=PLAINTEXT://127.0.0.1:{port}\n\
         controller.listener.names=CONTROLLER\ninter.broker.listener.name=PLAINTEXT\n\
         listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT\n\
         log.dirs={data}\nnum.partitions=1\n\
         offsets.topic.replication.factor=1\n\
         transaction.state.log.replication.factor=1\ntransaction.state.log.min.isr=1\n\
         share.coordinator.state.topic.replication.factor=1\nshare.coordinator.state.topic.min.isr=1\n\
         group.initial.rebalance.delay.ms=0\n",
        data = data.display()
    )
}

/// Runs the storage tool to its end; its standard output.
fn storage_tool(classpath: &str, args: &[&str]) -> String {
    let output = Command::new("java")
        .args(["-Xmx256m", "-cp", classpath, STORAGE_TOOL])
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run the Kafka storage tool: {e}"));
    assert!(
        output.status.success(),
        "the Kafka storage tool failed ({args:?}): {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Flink's Kafka table connector (3.4.0-1.20) and its runtime jars, as a
/// Flink deployment puts them into `lib/`; a loud failure when absent.
pub fn flink_connector_jars() -> Vec<PathBuf> {
    let dir = crate::process::install_root()
        .map(|root| root.join("kafka/flink-lib"))
        .unwrap_or_default();
    let mut jars: Vec<PathBuf> = std::fs::read_dir(&dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|x| x == "jar"))
        .collect();
    jars.sort();
    assert!(
        jars.iter().any(|jar| jar
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with("flink-connector-kafka"))),
        "Flink's Kafka connector is not installed (no flink-connector-kafka jar in {}); \
         run scripts/install-test-deps (resolves org.apache.flink:flink-connector-kafka:3.4.0-1.20 with Maven)",
        dir.display()
    );
    jars
}
