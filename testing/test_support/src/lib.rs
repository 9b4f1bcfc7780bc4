//! Helpers for tests that drive plugins through the real harness binary:
//! the built harness and plugin libraries (found beside the running test,
//! in `target/<profile>`, after `cargo build --workspace`), connector files
//! in temp dirs, harness runs with JSON reports, and real servers started on
//! loopback and stopped by PID.

mod background;
pub mod flink;
pub mod influxdb;
pub mod kafka;
pub mod metrics;
pub mod nats;
pub mod perf;
pub mod pravega;
pub mod process;
pub mod s2;

pub use background::BackgroundRun;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// `target/<profile>`: test binaries run from its `deps/` folder.
pub fn build_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    exe.parent()
        .and_then(Path::parent)
        .expect("test binaries live in target/<profile>/deps")
        .to_path_buf()
}

/// The built `iggy-harness` binary; fails loudly when absent.
pub fn harness_binary() -> PathBuf {
    let path = build_dir().join("iggy-harness");
    assert!(
        path.is_file(),
        "{} is missing: build the workspace first (`cargo build --workspace`)",
        path.display()
    );
    path
}

/// A workspace plugin library; fails loudly when absent.
pub fn plugin(name: &str) -> PathBuf {
    let path = build_dir().join(format!("lib{name}.so"));
    assert!(
        path.is_file(),
        "{} is missing: build the test plugins first (`cargo build --workspace`)",
        path.display()
    );
    path
}

pub fn testkit_sink() -> PathBuf {
    plugin("iggy_connector_testkit_sink")
}

pub fn testkit_source() -> PathBuf {
    plugin("iggy_connector_testkit_source")
}

pub fn legacy_v1_source() -> PathBuf {
    plugin("legacy_v1_source")
}

pub struct Workspace {
    pub dir: tempfile::TempDir,
}

impl Default for Workspace {
    fn default() -> Self {
        Self::new()
    }
}

impl Workspace {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn connectors(&self) -> PathBuf {
        let dir = self.path("connectors");
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// Writes a sink connector file reading JSON from `orders/topic`.
    pub fn sink(&self, key: &str, library: &Path, topic: &str, plugin_config: &str) {
        let streams = sink_stream(topic, "json", 100);
        self.connector_file("sink", key, library, &streams, plugin_config);
    }

    /// Writes a source connector file producing JSON to `orders/topic`.
    pub fn source(&self, key: &str, library: &Path, topic: &str, plugin_config: &str) {
        let streams = source_stream(topic, "json");
        self.connector_file("source", key, library, &streams, plugin_config);
    }

    /// Writes testkit sink `key` over `orders/topic` recording what it takes
    /// into `<key>.jsonl` in the workspace, then the config lines `extra`;
    /// the record's path (see [`recorded`]).
    pub fn recording_sink(&self, key: &str, topic: &str, extra: &str) -> PathBuf {
        let record = self.path(&format!("{key}.jsonl"));
        let config = format!("record_path = \"{}\"\n{extra}", record.display());
        self.sink(key, &testkit_sink(), topic, &config);
        record
    }

    /// Writes connector file `<key>.toml` of `kind` (`sink` or `source`)
    /// for `library` (a path, or a bare name the harness resolves), with
    /// `streams` (its `[[streams]]` tables, e.g. [`sink_stream`]s) and the
    /// `[plugin_config]` lines.
    pub fn connector_file(
        &self,
        kind: &str,
        key: &str,
        library: &Path,
        streams: &str,
        plugin_config: &str,
    ) {
        let text = connector_text(kind, key, library, streams, plugin_config);
        std::fs::write(self.connectors().join(format!("{key}.toml")), text).unwrap();
    }

    /// `check` of connector file `<key>.toml`, with a JSON report.
    pub fn check(&self, key: &str) -> Output {
        self.check_with_env(key, &[])
    }

    /// [`Workspace::check`] with environment variables set for the harness
    /// (and so for the plugin).
    pub fn check_with_env(&self, key: &str, env: &[(&str, &str)]) -> Output {
        let file = self.connectors().join(format!("{key}.toml"));
        Command::new(harness_binary())
            .args(["--json", "check", file.to_str().expect("UTF-8 path")])
            .envs(env.iter().copied())
            .current_dir(self.dir.path())
            .output()
            .expect("harness runs")
    }

    /// [`Workspace::check`] of a connector that must not open (exit code
    /// 1); its JSON report as text.
    pub fn failed_check(&self, key: &str) -> String {
        let output = self.check(key);
        let text = String::from_utf8_lossy(&output.stdout).into_owned();
        assert_eq!(output.status.code(), Some(1), "{key}: {text}");
        text
    }

    /// For each case `(plugin_config, expected)`, `write(key, plugin_config)`
    /// makes connector file `case<i>`, and `check` must refuse it with a
    /// report that names `expected` and shows none of `secrets`.
    pub fn assert_each_refused<C: AsRef<str>, E: AsRef<str>>(
        &self,
        cases: &[(C, E)],
        secrets: &[&str],
        write: impl Fn(&str, &str),
    ) {
        for (index, (config, expected)) in cases.iter().enumerate() {
            let key = format!("case{index}");
            write(&key, config.as_ref());
            let text = self.failed_check(&key);
            assert!(text.contains(expected.as_ref()), "case {index}: {text}");
            for secret in secrets {
                assert!(
                    !text.contains(secret),
                    "case {index} shows a secret: {text}"
                );
            }
        }
    }

    pub fn harness(&self, args: &[&str]) -> Output {
        Command::new(harness_binary())
            .args(args)
            .current_dir(self.dir.path())
            .output()
            .expect("harness runs")
    }

    /// The arguments of `run` over this workspace's connectors with its disk
    /// store and state dir, ending as `end` says (`--exit-when-idle`,
    /// `--duration`, …).
    pub fn run_args(&self, end: &[&str]) -> Vec<String> {
        let path = |dir: PathBuf| dir.to_str().expect("utf-8 path").to_string();
        let mut args = vec![
            "--json".to_string(),
            "run".to_string(),
            "--connectors-dir".to_string(),
            path(self.connectors()),
            "--data-dir".to_string(),
            path(self.path("data")),
            "--state-dir".to_string(),
            path(self.path("state")),
        ];
        args.extend(end.iter().map(|arg| arg.to_string()));
        args
    }

    /// `run` ending as `end` says; its output and JSON report.
    pub fn run_ending(&self, end: &[&str]) -> (Output, serde_json::Value) {
        let args = self.run_args(end);
        let output = self.harness(&args.iter().map(String::as_str).collect::<Vec<_>>());
        let report = json_report(&output);
        (output, report)
    }

    /// `run` that stops once idle for 700 ms (60 s at most).
    pub fn run(&self, extra: &[&str]) -> (Output, serde_json::Value) {
        self.run_ending(&until_idle("700ms", extra))
    }

    /// [`Workspace::run`] that must succeed (see [`assert_ran`]).
    pub fn run_ok(&self, extra: &[&str]) -> (Output, serde_json::Value) {
        let (output, report) = self.run(extra);
        assert_ran(&output, &report);
        (output, report)
    }

    pub fn produce(&self, topic: &str, count: u64) {
        let count = count.to_string();
        let extra = ["--generate", &count, "--payload-size", "64"];
        succeeded("produce", self.on_topic("produce", topic, &extra));
    }

    /// Appends JSON lines (`envelope`: `{"id","headers","payload"}` objects) to a topic.
    pub fn produce_lines(&self, topic: &str, lines: &str, envelope: bool) {
        succeeded("produce", self.try_produce_lines(topic, lines, envelope));
    }

    /// [`Workspace::produce_lines`] that may fail: the harness's output.
    pub fn try_produce_lines(&self, topic: &str, lines: &str, envelope: bool) -> Output {
        let input = self.path("produce-input.jsonl");
        std::fs::write(&input, lines).unwrap();
        let mut extra = vec!["--file", input.to_str().unwrap()];
        if envelope {
            extra.push("--envelope");
        }
        self.on_topic("produce", topic, &extra)
    }

    /// The topic's messages as dumped JSON lines.
    pub fn dump(&self, topic: &str) -> Vec<serde_json::Value> {
        lines(&succeeded("dump", self.on_topic("dump", topic, &[])).stdout)
    }

    /// `command` (`produce`, `dump`) on `orders/topic` of this workspace's
    /// disk store, then `extra`.
    fn on_topic(&self, command: &str, topic: &str, extra: &[&str]) -> Output {
        let data = self.path("data");
        let mut args = vec![
            command,
            "--data-dir",
            data.to_str().unwrap(),
            "--stream",
            "orders",
            "--topic",
            topic,
        ];
        args.extend_from_slice(extra);
        self.harness(&args)
    }
}

/// `output`, once it is known to be a success of `what`.
fn succeeded(what: &str, output: Output) -> Output {
    assert!(
        output.status.success(),
        "{what} failed: {}",
        stderr(&output)
    );
    output
}

/// A connector file: connector `key` of `kind` (`sink` or `source`) for
/// `library` (a path, or a bare name the harness resolves), its `[[streams]]`
/// tables `streams`, then the `[plugin_config]` lines (and any tables after
/// them).
pub fn connector_text(
    kind: &str,
    key: &str,
    library: &Path,
    streams: &str,
    plugin_config: &str,
) -> String {
    format!(
        "type = \"{kind}\"\nkey = \"{key}\"\nenabled = true\nversion = 0\nname = \"{key}\"\npath = \"{}\"\n\n\
         {streams}[plugin_config]\n{plugin_config}\n",
        library.display()
    )
}

/// A sink's `[[streams]]` table: `orders/topic` read as `schema` in
/// batches of `batch_length`, polled every 2 ms.
pub fn sink_stream(topic: &str, schema: &str, batch_length: usize) -> String {
    format!(
        "[[streams]]\nstream = \"orders\"\ntopics = [\"{topic}\"]\nschema = \"{schema}\"\n\
         batch_length = {batch_length}\npoll_interval = \"2ms\"\n\n"
    )
}

/// A source's `[[streams]]` table: producing `schema` to `orders/topic`.
pub fn source_stream(topic: &str, schema: &str) -> String {
    format!("[[streams]]\nstream = \"orders\"\ntopic = \"{topic}\"\nschema = \"{schema}\"\n\n")
}

pub fn lines(bytes: &[u8]) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(bytes)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON line {l}: {e}")))
        .collect()
}

/// The `seq` of each recorded or dumped message, in order.
pub fn seqs(messages: &[serde_json::Value], payload_is_text: bool) -> Vec<u64> {
    messages
        .iter()
        .map(|m| {
            let payload = if payload_is_text {
                serde_json::from_str::<serde_json::Value>(
                    m["payload"].as_str().expect("text payload"),
                )
                .unwrap()
            } else {
                m["payload"].clone()
            };
            payload["seq"].as_u64().expect("seq")
        })
        .collect()
}

/// A harness command's standard error, as text.
pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The JSON report a harness command (`--json`) printed; panics with its
/// log if there is none.
pub fn json_report(output: &Output) -> serde_json::Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "the harness printed no JSON report ({e}); status {}; stderr:\n{}",
            output.status,
            stderr(output)
        )
    })
}

/// The run succeeded; else its report and log say why.
pub fn assert_ran(output: &Output, report: &serde_json::Value) {
    assert!(output.status.success(), "{report}\n{}", stderr(output));
}

pub fn connector<'a>(report: &'a serde_json::Value, key: &str) -> &'a serde_json::Value {
    report["connectors"]
        .as_array()
        .and_then(|all| all.iter().find(|c| c["key"] == key))
        .unwrap_or_else(|| panic!("no connector {key} in {report}"))
}

/// An integer header of a dumped message (dumped as `int64: 42`).
pub fn int_header(message: &serde_json::Value, name: &str) -> i64 {
    message["headers"][name]
        .as_str()
        .and_then(|value| value.rsplit(' ').next())
        .and_then(|number| number.parse().ok())
        .unwrap_or_else(|| panic!("no integer header {name}: {message}"))
}

pub fn recorded(path: &Path) -> Vec<serde_json::Value> {
    lines(&std::fs::read(path).unwrap_or_default())
}

/// How many whole lines a sink that is still running has recorded so far:
/// a poll can land between the two halves of a write, so a trailing line
/// without its newline is not counted (or parsed) yet.
pub fn recorded_so_far(path: &Path) -> usize {
    let bytes = std::fs::read(path).unwrap_or_default();
    let whole = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    lines(&bytes[..whole]).len()
}

/// How a `run` ends once nothing has moved for `idle` (or after 60 s), then `extra`.
pub fn until_idle<'a>(idle: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    until_idle_within(idle, "60s", extra)
}

/// [`until_idle`] with a longer bound than 60 s, `limit` (`120s`), for
/// runs that wait on a slow server.
pub fn until_idle_within<'a>(idle: &'a str, limit: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut end = vec!["--exit-when-idle", idle, "--duration", limit];
    end.extend_from_slice(extra);
    end
}

pub fn sorted(mut values: Vec<u64>) -> Vec<u64> {
    values.sort_unstable();
    values
}

/// The middle of a few benchmark runs: on a shared machine the mean
/// follows whatever else ran at the time.
pub fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}
