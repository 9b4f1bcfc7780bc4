//! The line each connector benchmark prints per comparison, so
//! `iggy-perf-report` can gather every benchmark's figures into one table,
//! and the set-up every benchmark shares.

use std::path::{Path, PathBuf};

/// The prefix `iggy-perf-report` looks for.
pub const MARKER: &str = "PERF-RESULT ";

/// The share of its baseline a held comparison must reach: a sink's raw
/// client on the same server, a source's raw reader that stores each batch
/// and saves its state as the runtime must.
pub const TARGET: f64 = 0.85;

/// Prints one comparison the plugin is held to [`TARGET`] in: the plugin
/// through the harness against its baseline on the same server in the same
/// run.
pub fn held(plugin: &str, variant: &str, unit: &str, baseline: f64, plugin_rate: f64) {
    print_line(plugin, variant, unit, baseline, plugin_rate, Some(TARGET));
}

/// Prints a comparison that shows a bound and is not judged: against a
/// reader that does less than the runtime must, or an opt-in mode.
pub fn bound(plugin: &str, variant: &str, unit: &str, baseline: f64, plugin_rate: f64) {
    print_line(plugin, variant, unit, baseline, plugin_rate, None);
}

/// The kind of connector a benchmark's connector file declares.
#[derive(Clone, Copy)]
pub enum Kind {
    Sink,
    Source,
}

/// Writes `<dir>/<file>.toml`: connector `bench` of `kind` for `library`
/// (a path, or a bare name the harness resolves) over the bench's topic
/// `bench/orders` as `schema`, then the `[plugin_config]` lines (and any
/// tables after them); returns its path.
pub fn connector_file(
    dir: &Path,
    file: &str,
    kind: Kind,
    library: &Path,
    schema: &str,
    plugin_config: &str,
) -> PathBuf {
    let (kind, topic) = match kind {
        Kind::Sink => ("sink", "topics = [\"orders\"]"),
        Kind::Source => ("source", "topic = \"orders\""),
    };
    let streams = format!("[[streams]]\nstream = \"bench\"\n{topic}\nschema = \"{schema}\"\n\n");
    let text = crate::connector_text(kind, "bench", library, &streams, plugin_config);
    let path = dir.join(format!("{file}.toml"));
    std::fs::write(&path, text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    path
}

fn print_line(
    plugin: &str,
    variant: &str,
    unit: &str,
    raw_rate: f64,
    plugin_rate: f64,
    target: Option<f64>,
) {
    let mut line = serde_json::json!({
        "plugin": plugin,
        "variant": variant,
        "unit": unit,
        "raw": raw_rate,
        "plugin_rate": plugin_rate,
        "ratio": plugin_rate / raw_rate,
    });
    if let Some(target) = target {
        line["target"] = target.into();
    }
    println!("{MARKER}{line}");
}

/// CPU time (user + system) a process has used so far, from
/// `/proc/<pid>/stat`; `None` for this process. On a machine with few
/// cores the client's CPU per message decides how much is left for the
/// server, so the benchmarks print it beside the rates.
pub fn cpu_seconds(pid: Option<u32>) -> f64 {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/stat"),
        None => "/proc/self/stat".to_string(),
    };
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    // The command name (field 2) may hold spaces; count fields after its `)`.
    let after_name = &text[text.rfind(')').expect("stat has a command name") + 2..];
    let ticks: f64 = after_name
        .split(' ')
        .skip(11)
        .take(2)
        .map(|field| field.parse::<f64>().expect("utime/stime"))
        .sum();
    // Linux reports these in USER_HZ, which is 100 on every supported arch.
    ticks / 100.0
}

/// CPU microseconds per item spent by this process and by a server
/// process while `run` ran, printed with `label`; returns `run`'s result.
pub fn with_cpu<T>(label: &str, server_pid: u32, items: u64, run: impl FnOnce() -> T) -> T {
    let (client, server) = (cpu_seconds(None), cpu_seconds(Some(server_pid)));
    let result = run();
    let per_item = |seconds: f64| seconds * 1e6 / items as f64;
    println!(
        "    cpu {label:<28} client {:>5.2} µs/msg, server {:>5.2} µs/msg",
        per_item(cpu_seconds(None) - client),
        per_item(cpu_seconds(Some(server_pid)) - server)
    );
    result
}

/// The message count a benchmark was given as its first argument, or `default`.
pub fn messages_arg(default: u64) -> u64 {
    std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(default)
}
