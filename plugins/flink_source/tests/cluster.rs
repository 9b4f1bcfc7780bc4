//! The plugin against a REAL Flink 1.20 session cluster (from the PyPI
//! package apache-flink, Java 17) on loopback, driven through the real
//! harness binary. One cluster serves every scenario, so they run as the
//! steps of one test; the cluster's JVMs are stopped by PID when the test
//! ends, passes or not. The jobs are `tests/flink/IggyTestJob.java`,
//! compiled here with javac. Without Java or pyflink the test fails.
//! Records mode against a real SQL Gateway in front of such a cluster is in
//! `gateway.rs`.

mod common;

use common::*;
use iggy_harness_test_support::flink::{FlinkCluster, run_for};
use iggy_harness_test_support::{Workspace, plugin};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

const ENTRY: &str = "iggytest.IggyTestJob";

struct Cluster {
    flink: FlinkCluster,
    jar_id: String,
}

impl Cluster {
    fn submit(&self, args: &[&str]) -> String {
        self.flink.run_jar(&self.jar_id, ENTRY, args)
    }

    fn wait(&self, what: &str, limit: Duration, done: impl FnMut(&FlinkCluster) -> bool) {
        assert!(
            self.flink.wait_until(limit, done),
            "{what} did not happen within {limit:?}; logs:\n{}",
            self.flink.log_tail()
        );
    }

    fn completed_checkpoints(&self, job: &str) -> u64 {
        self.flink.get(&format!("/jobs/{job}/checkpoints")).1["counts"]["completed"]
            .as_u64()
            .unwrap_or(0)
    }

    fn wait_running_with_checkpoints(&self, job: &str, checkpoints: u64) {
        self.wait(
            &format!("job {job} running with {checkpoints} checkpoints"),
            Duration::from_secs(60),
            |_| {
                self.flink.job_state(job) == "RUNNING"
                    && self.completed_checkpoints(job) >= checkpoints
            },
        );
    }

    /// Triggers a savepoint (or stops the job with one) and waits for its path.
    fn savepoint(&self, job: &str, stop: bool) -> String {
        let (path, body) = if stop {
            (format!("/jobs/{job}/stop"), json!({"drain": false}))
        } else {
            (
                format!("/jobs/{job}/savepoints"),
                json!({"cancel-job": false}),
            )
        };
        let (status, answer) = self.flink.post_json(&path, &body);
        assert_eq!(status, 202, "{path}: {answer}");
        let request = answer["request-id"]
            .as_str()
            .expect("request id")
            .to_string();
        let mut location = None;
        self.wait("savepoint", Duration::from_secs(60), |flink| {
            let (_, status) = flink.get(&format!("/jobs/{job}/savepoints/{request}"));
            location = status["operation"]["location"].as_str().map(str::to_string);
            status["status"]["id"] == "COMPLETED"
        });
        location.expect("savepoint location")
    }
}

fn monitor_config(cluster: &FlinkCluster, monitor: &str) -> String {
    format!(
        "flink_cluster_url = \"{}\"\npoll_interval_ms = 300\nmetrics_log_interval = \"2s\"\n\n[plugin_config.monitor]\nmetrics_interval = \"1s\"\n{monitor}\n",
        cluster.rest_url()
    )
}

fn events<'a>(messages: &'a [Value], kind: &str) -> Vec<&'a Value> {
    messages
        .iter()
        .filter(|m| m["payload"]["event"] == kind)
        .collect()
}

fn checkpoint_ids(messages: &[Value]) -> Vec<i64> {
    events(messages, "checkpoint_completed")
        .iter()
        .map(|m| {
            m["payload"]["checkpoint_id"]
                .as_i64()
                .expect("checkpoint id")
        })
        .collect()
}

fn ids(messages: &[Value]) -> BTreeSet<String> {
    messages
        .iter()
        .map(|m| m["id"].as_str().expect("id").to_string())
        .collect()
}

fn step(name: &str) {
    eprintln!("== cluster step: {name}");
}

#[test]
fn against_a_real_flink_cluster() {
    let work = tempfile::tempdir().expect("temp dir");
    step("start a Flink 1.20 cluster and upload the test job");
    let flink = FlinkCluster::start(work.path());
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/flink/IggyTestJob.java");
    let jar = flink.compile_job(&source, work.path());
    let jar_id = flink.upload_jar(&jar);
    let cluster = Cluster { flink, jar_id };

    let orders = cluster.submit(&[
        "--name",
        "iggy-test-orders",
        "--source-name",
        "kafka-orders",
        "--checkpoint-ms",
        "300",
    ]);
    let other = cluster.submit(&["--name", "other-job", "--checkpoint-ms", "300"]);
    cluster.wait_running_with_checkpoints(&orders, 2);

    step("1: discovery by job name; status, checkpoint and metrics events");
    let ws = Workspace::new();
    ws.source(
        KEY,
        &plugin("iggy_connector_flink_source"),
        TOPIC,
        &monitor_config(&cluster.flink, "job_name_pattern = \"^iggy-test-\""),
    );
    let (output, report) = run_for(&ws, "5s");
    assert_ran(&output, &report);
    let first = ws.dump(TOPIC);
    assert!(
        first
            .iter()
            .all(|m| m["payload"]["job_id"] == orders.as_str()),
        "only the matching job: {first:?}"
    );
    assert!(
        first
            .iter()
            .all(|m| header(m, "job_id") == Some(orders.as_str()))
    );
    let status = events(&first, "job_status");
    assert_eq!(status.len(), 1, "{status:?}");
    assert_eq!(status[0]["payload"]["status"], "RUNNING");
    assert_eq!(status[0]["payload"]["job_name"], "iggy-test-orders");
    let checkpoints = checkpoint_ids(&first);
    assert!(checkpoints.len() >= 3, "{checkpoints:?}");
    assert!(
        checkpoints.windows(2).all(|w| w[0] < w[1]),
        "{checkpoints:?}"
    );
    let samples = events(&first, "metrics");
    assert!(
        samples.len() >= 2,
        "one sample per second: {}",
        samples.len()
    );
    let last = &samples[samples.len() - 1]["payload"];
    let vertices = last["vertices"].as_array().expect("vertices");
    let source_vertex = vertices
        .iter()
        .find(|v| v["name"] == "Source: kafka-orders")
        .unwrap_or_else(|| panic!("{last}"));
    assert_eq!(source_vertex["source"], true);
    assert!(
        source_vertex["records_out"].as_u64().unwrap_or(0) > 0,
        "{last}"
    );
    assert_eq!(source_vertex["backpressure_level"], "ok", "{last}");
    assert!(
        vertices
            .iter()
            .any(|v| v["records_in"].as_u64().unwrap_or(0) > 0),
        "{last}"
    );
    assert_eq!(ids(&first).len(), first.len(), "ids are unique");

    step("2: a restart emits nothing it already emitted");
    let (output, report) = run_for(&ws, "3s");
    assert_ran(&output, &report);
    let all = ws.dump(TOPIC);
    let second = &all[first.len()..];
    assert!(
        events(second, "job_status").is_empty(),
        "status unchanged: {second:?}"
    );
    let max_first = checkpoints.iter().max().copied().unwrap_or_default();
    let later = checkpoint_ids(second);
    assert!(
        !later.is_empty() && later.iter().all(|id| *id > max_first),
        "{later:?} after {max_first}"
    );
    assert!(ids(second).is_disjoint(&ids(&first)));

    step("3: discovery by source vertex name; a job that appears later; savepoints; stop");
    let ws = Workspace::new();
    ws.source(
        KEY,
        &plugin("iggy_connector_flink_source"),
        TOPIC,
        &monitor_config(&cluster.flink, "source_name_pattern = \"kafka-orders\""),
    );
    let (late, manual, stopped) = std::thread::scope(|scope| {
        let run = scope.spawn(|| run_for(&ws, "12s"));
        std::thread::sleep(Duration::from_secs(2));
        let late = cluster.submit(&[
            "--name",
            "late-job",
            "--source-name",
            "kafka-orders-late",
            "--checkpoint-ms",
            "300",
        ]);
        std::thread::sleep(Duration::from_secs(2));
        let manual = cluster.savepoint(&orders, false);
        std::thread::sleep(Duration::from_secs(1));
        let stopped = cluster.savepoint(&orders, true);
        let (output, report) = run.join().expect("harness run");
        assert_ran(&output, &report);
        (late, manual, stopped)
    });
    let third = ws.dump(TOPIC);
    let jobs: BTreeSet<&str> = third
        .iter()
        .filter_map(|m| m["payload"]["job_id"].as_str())
        .collect();
    assert_eq!(
        jobs,
        BTreeSet::from([orders.as_str(), late.as_str()]),
        "not {other}"
    );
    let savepoints: Vec<(&str, &str)> = events(&third, "savepoint_completed")
        .iter()
        .map(|m| {
            (
                m["payload"]["checkpoint_type"].as_str().unwrap_or_default(),
                m["payload"]["external_path"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert!(
        savepoints.contains(&("SAVEPOINT", manual.as_str())),
        "{savepoints:?}"
    );
    assert!(
        savepoints.contains(&("SYNC_SAVEPOINT", stopped.as_str())),
        "{savepoints:?}"
    );
    let statuses: Vec<(&str, &str)> = events(&third, "job_status")
        .iter()
        .map(|m| {
            (
                m["payload"]["job_id"].as_str().unwrap_or_default(),
                m["payload"]["status"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert!(
        statuses.contains(&(late.as_str(), "RUNNING")),
        "{statuses:?}"
    );
    assert!(
        statuses.contains(&(orders.as_str(), "FINISHED")),
        "{statuses:?}"
    );
    cluster.flink.cancel(&late);
    cluster.flink.cancel(&other);

    step("4: discovery by job id; a failing job's exception and status");
    let failing = cluster.submit(&[
        "--name",
        "failing-job",
        "--fail-after",
        "20",
        "--checkpoint-ms",
        "300",
    ]);
    cluster.wait(
        "the failing job to fail",
        Duration::from_secs(60),
        |flink| flink.job_state(&failing) == "FAILED",
    );
    let ws = Workspace::new();
    ws.source(
        KEY,
        &plugin("iggy_connector_flink_source"),
        TOPIC,
        &monitor_config(&cluster.flink, &format!("job_ids = [\"{failing}\"]")),
    );
    let (output, report) = run_for(&ws, "3s");
    assert_ran(&output, &report);
    let fourth = ws.dump(TOPIC);
    assert!(
        fourth
            .iter()
            .all(|m| m["payload"]["job_id"] == failing.as_str())
    );
    let status = events(&fourth, "job_status");
    assert_eq!(status.len(), 1, "{status:?}");
    assert_eq!(status[0]["payload"]["status"], "FAILED");
    let exceptions = events(&fourth, "exception");
    assert!(!exceptions.is_empty(), "{fourth:?}");
    let text = exceptions[0]["payload"].to_string();
    assert!(text.contains("iggy test job failing at 20"), "{text}");
    assert!(
        events(&fourth, "metrics").is_empty(),
        "no samples of a failed job"
    );

    step("done; the cluster is stopped by PID");
}
