//! What the sink's tests against a real Pravega share: connector files, messages
//! with a tenant header, reading a stream back through the Pravega source,
//! and a harness run in the background that a test can watch and outlast.

#![allow(dead_code)] // each test binary uses its own part

use iggy_connector_pravega_common::client::{NewEvent, PravegaClient, ScalingPolicy, StartAt};
use iggy_connector_pravega_common::{PravegaConnection, RealClient};
use iggy_harness_test_support::process::{exit_within, wait_until};
use iggy_harness_test_support::*;
use serde_json::Value;
use std::collections::BTreeMap;
use std::fs::File;
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

pub const SINK: &str = "to_pravega";

/// The connection keys of a `[plugin_config]`, short client time limits.
pub fn connection(uri: &str, scope: &str, stream: &str) -> String {
    format!(
        "controller_uri = \"{uri}\"\nscope = \"{scope}\"\nstream = \"{stream}\"\nrequest_timeout = \"5s\"\nmax_retries = 3\n"
    )
}

/// Messages `numbers` to topic `out`: payload `{"n": n}`, header `tenant`
/// = `t{n % 3}`.
pub fn produce(ws: &Workspace, numbers: std::ops::Range<u64>) {
    let lines: String = numbers
        .map(|n| {
            format!(
                "{{\"headers\":{{\"tenant\":\"t{}\"}},\"payload\":{{\"n\":{n}}}}}\n",
                n % 3
            )
        })
        .collect();
    ws.produce_lines("out", &lines, true);
}

/// The sink `SINK` over topic `out` with the connection keys and `settings`.
pub fn sink(ws: &Workspace, uri: &str, scope: &str, stream: &str, settings: &str) {
    ws.sink(
        SINK,
        &plugin("iggy_connector_pravega_sink"),
        "out",
        &format!("{}{settings}", connection(uri, scope, stream)),
    );
}

/// Reads `scope/stream` from its head through the Pravega source into a
/// topic of its own (the sink's connector file is set aside first); the
/// messages with their `pravega-*` headers.
pub fn read_back(ws: &Workspace, uri: &str, scope: &str, stream: &str) -> Vec<Value> {
    read_back_into(ws, uri, scope, stream, &format!("back-{stream}"))
}

/// `read_back` into `topic`, by a source connector (and so a reader group
/// and saved state) of that topic's own.
fn read_back_into(ws: &Workspace, uri: &str, scope: &str, stream: &str, topic: &str) -> Vec<Value> {
    let _ = std::fs::remove_file(ws.connectors().join(format!("{SINK}.toml")));
    let key = format!("from_{topic}");
    let source = format!(
        "{}schema = \"json\"\npoll_wait = \"200ms\"",
        connection(uri, scope, stream)
    );
    ws.source(
        &key,
        &plugin("iggy_connector_pravega_source"),
        topic,
        &source,
    );
    // Longer idle than `Workspace::run` allows: a reader group takes a while to start.
    let (output, report) = ws.run_ending(&until_idle_within("5s", "120s", &[]));
    assert_ran(&output, &report);
    // Shown with a failing test: what the source met while reading.
    for line in stderr(&output).lines().filter(|l| l.contains("WARN")) {
        eprintln!("reading {scope}/{stream} back: {line}");
    }
    std::fs::remove_file(ws.connectors().join(format!("{key}.toml"))).unwrap();
    ws.dump(topic)
}

/// The `n` of every event of `scope/stream`, sorted, read back until
/// `whole` holds for them (3 reads at most, each from the head by a new
/// reader group). The source is only the means of looking here: a read
/// that came back short while a later one is whole shows the events were
/// in Pravega, and the output says so loudly; short every time fails the
/// caller's assertions.
pub fn numbers_read_back(
    ws: &Workspace,
    (uri, scope, stream): (&str, &str, &str),
    whole: impl Fn(&[u64]) -> bool,
) -> Vec<u64> {
    let mut read = Vec::new();
    for attempt in 1..=3 {
        let topic = format!("back-{stream}-{attempt}");
        read = numbers(&read_back_into(ws, uri, scope, stream, &topic));
        if whole(&read) {
            break;
        }
        eprintln!(
            "SHORT READ: {scope}/{stream} read back as {} events on read {attempt} of 3",
            read.len()
        );
    }
    read
}

/// The `n` of every message read back, as read.
pub fn numbers_read(messages: &[Value]) -> Vec<u64> {
    messages
        .iter()
        .map(|m| m["payload"]["n"].as_u64().unwrap_or_else(|| panic!("{m}")))
        .collect()
}

/// Every `n` read back, sorted (duplicates kept).
pub fn numbers(messages: &[Value]) -> Vec<u64> {
    sorted(numbers_read(messages))
}

/// The counters the sink logged when it closed (`name=value …`).
pub fn closing_counters(log: &str) -> BTreeMap<String, u64> {
    counters_after(log, "Pravega sink ")
}

/// The closing counters of the sink with plugin id `id`, when a run has several.
pub fn closing_counters_of(log: &str, id: &Value) -> BTreeMap<String, u64> {
    counters_after(log, &format!("Pravega sink {id} closed: "))
}

fn counters_after(log: &str, marker: &str) -> BTreeMap<String, u64> {
    let line = log
        .lines()
        .rfind(|l| l.contains(marker) && l.contains(" closed: "))
        .unwrap_or_else(|| panic!("no closing counters after `{marker}`:\n{log}"));
    line.split(" closed: ")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .filter_map(|pair| pair.split_once('='))
        .map(|(name, value)| (name.to_string(), value.parse().unwrap_or(u64::MAX)))
        .collect()
}

/// Runs `work` with the client the plugins use, on `scope/stream`, in a
/// runtime of its own.
fn with_client<T>(
    (uri, scope, stream): (&str, &str, &str),
    work: impl AsyncFnOnce(RealClient) -> T,
) -> T {
    let connection: PravegaConnection = serde_json::from_value(serde_json::json!({
        "controller_uri": uri, "scope": scope, "stream": stream,
        "request_timeout": "5s", "max_retries": 3,
    }))
    .unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let client = RealClient::connect(&connection, Duration::from_secs(30)).unwrap();
        work(client).await
    })
}

/// The segments `scope/stream` has now, asked of the controller.
pub fn segments(uri: &str, scope: &str, stream: &str) -> usize {
    with_client((uri, scope, stream), async |client| {
        assert!(
            client.stream_exists().await.unwrap(),
            "{scope}/{stream} exists"
        );
        client.resolve(&StartAt::Head).await.unwrap().len()
    })
}

/// Commits one transaction of `events` to `scope/stream` with the client
/// the sink uses, as the sink would, but from outside any sink: a commit
/// whose sink never learned of it.
pub fn commit_by_hand(uri: &str, scope: &str, stream: &str, events: Vec<NewEvent>) {
    with_client((uri, scope, stream), async |client| {
        client
            .ensure_stream(ScalingPolicy::Fixed { segments: 2 })
            .await
            .unwrap();
        let mut writer = client.transactional_writer(42).await.unwrap();
        let mut transaction = writer.begin().await.unwrap();
        transaction.write_all(events).await.unwrap();
        transaction.commit(0).await.unwrap();
    });
}

/// `iggy-harness run` in the background (stdout and stderr into files, a
/// progress line a second), so a test can act on the server while
/// messages flow.
pub struct FlowingRun {
    child: Child,
    started: Instant,
    stdout: std::path::PathBuf,
    stderr: std::path::PathBuf,
}

impl FlowingRun {
    pub fn start(ws: &Workspace, end: &[&str]) -> Self {
        let stdout = ws.path("run.stdout");
        let stderr = ws.path("run.stderr");
        let mut args = ws.run_args(end);
        args.push("--progress".into());
        let child = Command::new(harness_binary())
            .args(&args)
            .current_dir(ws.dir.path())
            .stdout(File::create(&stdout).unwrap())
            .stderr(File::create(&stderr).unwrap())
            .spawn()
            .expect("the harness starts");
        Self {
            child,
            started: Instant::now(),
            stdout,
            stderr,
        }
    }

    pub fn log(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(&self.stderr).unwrap_or_default()).into_owned()
    }

    /// How many messages the sink `key` has taken in so far (its last
    /// progress line).
    pub fn taken_in_by(&self, key: &str) -> u64 {
        let marker = format!("{key} ");
        self.log()
            .lines()
            .filter(|l| l.starts_with('['))
            .filter_map(|l| l.split(&marker).nth(1)?.split('→').next()?.parse().ok())
            .next_back()
            .unwrap_or(0)
    }

    /// Waits (`limit` at most) until the sink `key` has taken in `count` messages.
    pub fn wait_for_taken_in_by(&self, key: &str, count: u64, limit: Duration) {
        let reached = wait_until(limit, || (self.taken_in_by(key) >= count).then_some(()));
        assert!(
            reached.is_some(),
            "{key} took in fewer than {count} messages within {limit:?}:\n{}",
            self.log()
        );
    }

    /// Waits until the run ends (`limit` after its start at most, else it
    /// is killed and this panics); its exit status, JSON report and log.
    pub fn finish(mut self, limit: Duration) -> (ExitStatus, Value, String) {
        let status = exit_within(&mut self.child, self.started, limit);
        let log = self.log();
        let status = status.unwrap_or_else(|| {
            panic!(
                "the run did not end within {limit:?} of its start:\n{}",
                log
            )
        });
        let stdout = std::fs::read(&self.stdout).unwrap_or_default();
        let report = serde_json::from_slice(&stdout)
            .unwrap_or_else(|e| panic!("no JSON report ({e}), status {status}:\n{log}"));
        (status, report, log)
    }

    pub fn started(&self) -> Instant {
        self.started
    }
}

impl Drop for FlowingRun {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// `read` (sorted) is `expected`; on a mismatch it says what is missing and
/// what came twice, not the whole lists.
pub fn assert_same_numbers(read: &[u64], expected: &[u64], context: &str) {
    if read == expected {
        return;
    }
    let have: std::collections::BTreeSet<u64> = read.iter().copied().collect();
    let missing: Vec<u64> = expected
        .iter()
        .copied()
        .filter(|n| !have.contains(n))
        .collect();
    let twice: Vec<u64> = read
        .windows(2)
        .filter(|w| w[0] == w[1])
        .map(|w| w[0])
        .collect();
    panic!(
        "{context}: read {} of {} expected; {} missing (first {:?}), {} twice (first {:?})",
        read.len(),
        expected.len(),
        missing.len(),
        &missing[..missing.len().min(20)],
        twice.len(),
        &twice[..twice.len().min(20)]
    );
}
