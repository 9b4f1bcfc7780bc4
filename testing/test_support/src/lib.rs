//! Helpers for tests that drive plugins through the real harness binary:
//! the built harness and plugin libraries (found beside the running test,
//! in `target/<profile>`, after `cargo build --workspace`), connector files
//! in temp dirs, harness runs with JSON reports, and real servers started on
//! loopback and stopped by PID.

pub mod flink;
pub mod influxdb;
pub mod kafka;
pub mod metrics;
pub mod nats;
pub mod perf;
pub mod pravega;
pub mod process;
pub mod s2;

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

    /// Writes a sink connector file reading `stream/topic`.
    pub fn sink(&self, key: &str, library: &Path, topic: &str, plugin_config: &str) {
        let text = format!(
            "type = \"sink\"\nkey = \"{key}\"\nenabled = true\nversion = 0\nname = \"{key}\"\npath = \"{}\"\n\n\
             [[streams]]\nstream = \"orders\"\ntopics = [\"{topic}\"]\nschema = \"json\"\nbatch_length = 100\npoll_interval = \"2ms\"\n\n\
             [plugin_config]\n{plugin_config}\n",
            library.display()
        );
        std::fs::write(self.connectors().join(format!("{key}.toml")), text).unwrap();
    }

    /// Writes a source connector file producing to `stream/topic`.
    pub fn source(&self, key: &str, library: &Path, topic: &str, plugin_config: &str) {
        let text = format!(
            "type = \"source\"\nkey = \"{key}\"\nenabled = true\nversion = 0\nname = \"{key}\"\npath = \"{}\"\n\n\
             [[streams]]\nstream = \"orders\"\ntopic = \"{topic}\"\nschema = \"json\"\n\n\
             [plugin_config]\n{plugin_config}\n",
            library.display()
        );
        std::fs::write(self.connectors().join(format!("{key}.toml")), text).unwrap();
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
        let report = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
            panic!(
                "run printed no JSON report ({e}); status {}; stderr:\n{}",
                output.status,
                String::from_utf8_lossy(&output.stderr)
            )
        });
        (output, report)
    }

    /// `run` that stops once idle for 700 ms (60 s at most).
    pub fn run(&self, extra: &[&str]) -> (Output, serde_json::Value) {
        self.run_ending(&until_idle("700ms", extra))
    }

    pub fn produce(&self, topic: &str, count: u64) {
        let data = self.path("data");
        let output = self.harness(&[
            "produce",
            "--data-dir",
            data.to_str().unwrap(),
            "--stream",
            "orders",
            "--topic",
            topic,
            "--generate",
            &count.to_string(),
            "--payload-size",
            "64",
        ]);
        assert!(
            output.status.success(),
            "produce failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// Appends JSON lines (`envelope`: `{"id","headers","payload"}` objects) to a topic.
    pub fn produce_lines(&self, topic: &str, lines: &str, envelope: bool) {
        let data = self.path("data");
        let input = self.path("produce-input.jsonl");
        std::fs::write(&input, lines).unwrap();
        let mut args = vec![
            "produce",
            "--data-dir",
            data.to_str().unwrap(),
            "--stream",
            "orders",
            "--topic",
            topic,
            "--file",
            input.to_str().unwrap(),
        ];
        if envelope {
            args.push("--envelope");
        }
        let output = self.harness(&args);
        assert!(
            output.status.success(),
            "produce failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// The topic's messages as dumped JSON lines.
    pub fn dump(&self, topic: &str) -> Vec<serde_json::Value> {
        let data = self.path("data");
        let output = self.harness(&[
            "dump",
            "--data-dir",
            data.to_str().unwrap(),
            "--stream",
            "orders",
            "--topic",
            topic,
        ]);
        assert!(
            output.status.success(),
            "dump failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        lines(&output.stdout)
    }
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

pub fn connector<'a>(report: &'a serde_json::Value, key: &str) -> &'a serde_json::Value {
    report["connectors"]
        .as_array()
        .and_then(|all| all.iter().find(|c| c["key"] == key))
        .unwrap_or_else(|| panic!("no connector {key} in {report}"))
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
    let mut end = vec!["--exit-when-idle", idle, "--duration", "60s"];
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
