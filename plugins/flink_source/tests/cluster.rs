//! The plugin against a REAL Flink 1.20 session cluster (from the PyPI
//! package apache-flink, Java 17) on loopback, driven through the real
//! harness binary. One cluster, started by the first scenario, serves every
//! scenario of this binary (`common::shared`: its JVMs are stopped by PID
//! when the binary ends), with two jobs of its own running throughout: the
//! one scenarios discover and one they must leave out. A scenario that
//! stops or fails a job submits its own, and cancels what still runs of it
//! at its end. The jobs are `tests/flink/IggyTestJob.java`, compiled here
//! with javac. Without Java or pyflink every scenario fails. Records mode
//! against a real SQL Gateway in front of such a cluster is in `gateway.rs`.

mod common;

use common::shared::{self, CancelJobs, Started, Turn, Turns};
use common::*;
use iggy_harness_test_support::flink::{FlinkCluster, run_for};
use iggy_harness_test_support::{Workspace, plugin};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

const ENTRY: &str = "iggytest.IggyTestJob";
/// The shared job the scenarios discover by its name.
const ORDERS: &str = "iggy-test-orders";
/// The shared job no scenario's pattern matches.
const OTHER: &str = "other-job";

struct Cluster {
    flink: FlinkCluster,
    jar_id: String,
    /// The ids of the `ORDERS` and `OTHER` jobs.
    orders: String,
    other: String,
}

/// The cluster every scenario shares, with the test job's jar uploaded
/// and `ORDERS` running with checkpoints, `OTHER` beside it.
fn cluster() -> &'static Cluster {
    static CLUSTER: Started<Cluster> = Started::new();
    shared::servers(&CLUSTER, "the Flink cluster", |dir| {
        let flink = FlinkCluster::start(dir);
        let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/flink/IggyTestJob.java");
        let jar = flink.compile_job(&source, dir);
        let jar_id = flink.upload_jar(&jar);
        let mut cluster = Cluster {
            flink,
            jar_id,
            orders: String::new(),
            other: String::new(),
        };
        cluster.orders = cluster.submit(&[
            "--name",
            ORDERS,
            "--source-name",
            "kafka-orders",
            "--checkpoint-ms",
            "300",
        ]);
        cluster.other = cluster.submit(&["--name", OTHER, "--checkpoint-ms", "300"]);
        cluster.wait_running_with_checkpoints(&cluster.orders, 2);
        cluster
    })
}

static TURNS: Turns = Turns::new();

/// Starts a scenario: the shared cluster, its turn, and the cancelling of
/// the jobs it submits (named `jobs`) when it ends.
fn scenario(name: &str, jobs: &[&str]) -> (&'static Cluster, Turn<'static>, CancelJobs) {
    let cluster = cluster();
    let turn = TURNS.take();
    eprintln!("== cluster scenario: {name}");
    (cluster, turn, CancelJobs::named(&cluster.flink, jobs))
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

/// A monitor-mode source in `ws` watching `cluster` as `monitor` says.
fn monitor_source(ws: &Workspace, cluster: &FlinkCluster, monitor: &str) {
    let config = format!(
        "flink_cluster_url = \"{}\"\npoll_interval_ms = 300\nmetrics_log_interval = \"2s\"\n\n[plugin_config.monitor]\nmetrics_interval = \"1s\"\n{monitor}\n",
        cluster.rest_url()
    );
    ws.source(KEY, &plugin("iggy_connector_flink_source"), TOPIC, &config);
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

/// Discovery by job name: the matching job's status, its checkpoints in
/// order and a metrics sample per second, nothing of the other job.
#[test]
fn discovery_by_job_name_emits_status_checkpoints_and_metrics() {
    let (cluster, _turn, _jobs) = scenario(
        "discovery_by_job_name_emits_status_checkpoints_and_metrics",
        &[],
    );
    let orders = cluster.orders.as_str();
    let ws = Workspace::new();
    monitor_source(&ws, &cluster.flink, "job_name_pattern = \"^iggy-test-\"");
    let (output, report) = run_for(&ws, "5s");
    assert_ran(&output, &report);
    let first = ws.dump(TOPIC);
    assert!(
        first.iter().all(|m| m["payload"]["job_id"] == orders),
        "only the matching job, not {}: {first:?}",
        cluster.other
    );
    assert!(first.iter().all(|m| header(m, "job_id") == Some(orders)));
    let status = events(&first, "job_status");
    assert_eq!(status.len(), 1, "{status:?}");
    assert_eq!(status[0]["payload"]["status"], "RUNNING");
    assert_eq!(status[0]["payload"]["job_name"], ORDERS);
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
}

/// A restart emits nothing it already emitted: no second status event,
/// only checkpoints after the last one of the first run, no id twice.
#[test]
fn a_restart_emits_nothing_it_already_emitted() {
    let (cluster, _turn, _jobs) = scenario("a_restart_emits_nothing_it_already_emitted", &[]);
    let ws = Workspace::new();
    monitor_source(&ws, &cluster.flink, "job_name_pattern = \"^iggy-test-\"");
    let (output, report) = run_for(&ws, "3s");
    assert_ran(&output, &report);
    let first = ws.dump(TOPIC);
    assert_eq!(events(&first, "job_status").len(), 1, "{first:?}");
    let max_first = checkpoint_ids(&first).into_iter().max();
    assert!(
        max_first.is_some(),
        "the first run's checkpoints: {first:?}"
    );

    let (output, report) = run_for(&ws, "3s");
    assert_ran(&output, &report);
    let all = ws.dump(TOPIC);
    let second = &all[first.len()..];
    assert!(
        events(second, "job_status").is_empty(),
        "status unchanged: {second:?}"
    );
    let later = checkpoint_ids(second);
    assert!(
        !later.is_empty() && later.iter().all(|id| Some(*id) > max_first),
        "{later:?} after {max_first:?}"
    );
    assert!(ids(second).is_disjoint(&ids(&first)));
}

/// Discovery by source vertex name; a job that appears during the run; a
/// savepoint and a stop with savepoint of the watched job, and its end.
#[test]
fn discovery_by_source_name_follows_new_jobs_savepoints_and_a_stop() {
    const WATCHED: &str = "payments-job";
    const LATE: &str = "late-payments-job";
    let (cluster, _turn, _jobs) = scenario(
        "discovery_by_source_name_follows_new_jobs_savepoints_and_a_stop",
        &[WATCHED, LATE],
    );
    let watched = cluster.submit(&[
        "--name",
        WATCHED,
        "--source-name",
        "kafka-payments",
        "--checkpoint-ms",
        "300",
    ]);
    cluster.wait_running_with_checkpoints(&watched, 1);
    let ws = Workspace::new();
    monitor_source(
        &ws,
        &cluster.flink,
        "source_name_pattern = \"kafka-payments\"",
    );
    let (late, manual, stopped) = std::thread::scope(|scope| {
        let run = scope.spawn(|| run_for(&ws, "12s"));
        std::thread::sleep(Duration::from_secs(2));
        let late = cluster.submit(&[
            "--name",
            LATE,
            "--source-name",
            "kafka-payments-late",
            "--checkpoint-ms",
            "300",
        ]);
        std::thread::sleep(Duration::from_secs(2));
        let manual = cluster.savepoint(&watched, false);
        std::thread::sleep(Duration::from_secs(1));
        let stopped = cluster.savepoint(&watched, true);
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
        BTreeSet::from([watched.as_str(), late.as_str()]),
        "not {} nor {}",
        cluster.orders,
        cluster.other
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
        statuses.contains(&(watched.as_str(), "FINISHED")),
        "{statuses:?}"
    );
}

/// Discovery by job id: a failed job's exception and status, no metrics
/// sample of it.
#[test]
fn discovery_by_job_id_reports_a_failure() {
    const FAILING: &str = "failing-job";
    let (cluster, _turn, _jobs) = scenario("discovery_by_job_id_reports_a_failure", &[FAILING]);
    let failing = cluster.submit(&[
        "--name",
        FAILING,
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
    monitor_source(&ws, &cluster.flink, &format!("job_ids = [\"{failing}\"]"));
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
}
