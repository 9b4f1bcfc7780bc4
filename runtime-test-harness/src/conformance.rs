//! `conformance` and `check`.
//!
//! Conformance runs each library in a child process of this binary, so a
//! plugin that crashes is reported as failing instead of ending the run.
//! The checks: the full symbol set of its kind (both source generations),
//! a readable version, calls on unknown ids refused, bad configs refused
//! without a crash and with an error logged, open, a second open of a live
//! id refused, undecodable input refused, close clean, a second close refused.

use crate::connector_file::ConnectorFile;
use crate::inspect::inspect_loaded;
use crate::library::{self, Library, SinkApi, SourceApi, SourceProtocol};
use crate::pipeline::{open_sink, open_source};
use crate::plugin_log::{self, log_callback};
use crate::source_runner;
use crate::state_file::StateFile;
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckResult {
    pub name: String,
    pub ok: bool,
    pub detail: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LibraryConformance {
    pub path: String,
    pub kind: Option<String>,
    pub version: Option<String>,
    pub ok: bool,
    pub checks: Vec<CheckResult>,
    /// Checks that need an open instance, not run because no connector
    /// file gave a config that opens (the library needs settings).
    #[serde(default)]
    pub not_run: Vec<String>,
}

struct Checks {
    results: Vec<CheckResult>,
    with_connector: bool,
    not_run: Vec<String>,
}

const SINK_NEEDS_OPEN: [&str; 4] = [
    "second open of a live id refused",
    "undecodable batch refused",
    "close",
    "second close refused",
];
const SOURCE_NEEDS_OPEN: [&str; 5] = [
    "second open of a live id refused",
    "poll loop starts",
    "result for a batch not in flight refused",
    "close",
    "second close refused",
];

/// An `open` that failed. With a connector file that is a failure. Without
/// one the library needs settings, and refusing an empty config with a
/// logged error is what it should do: the checks that need an open
/// instance are then listed as not run, never counted as passed.
fn open_failed(checks: &mut Checks, error: String, needs_open: &[&str]) {
    let errors = logged_errors();
    if checks.with_connector {
        checks.record("open", false, format!("{error}; errors: {errors:?}"));
        return;
    }
    let detail = match errors.first() {
        Some(line) => format!("{error}; logged: {line}"),
        None => format!("{error}; but nothing was logged at ERROR"),
    };
    checks.record(
        "an empty config (no --connector) refused with a logged error",
        !errors.is_empty(),
        detail,
    );
    checks
        .not_run
        .extend(needs_open.iter().map(|name| name.to_string()));
}

impl Checks {
    fn record(&mut self, name: &str, ok: bool, detail: impl Into<String>) -> bool {
        self.results.push(CheckResult {
            name: name.to_string(),
            ok,
            detail: detail.into(),
        });
        ok
    }
}

const NOT_JSON: &str = "{not json";
const NOT_A_TABLE: &str = "\"conformance: not a table\"";
const UNUSED_ID: u32 = u32::MAX - 7;
const CLOSE_LIMIT: Duration = Duration::from_secs(15);

/// The error lines the plugin logged since the last call.
fn logged_errors() -> Vec<String> {
    plugin_log::take()
        .into_iter()
        .filter(|line| line.level == "ERROR")
        .map(|line| line.message)
        .collect()
}

fn check_bad_config(
    checks: &mut Checks,
    name: &str,
    open: impl Fn(&str) -> Result<u32, String>,
    config: &str,
) {
    logged_errors();
    match open(config) {
        Ok(_) => {
            checks.record(name, false, format!("open accepted {config}"));
        }
        Err(code) => {
            let errors = logged_errors();
            let detail = match errors.first() {
                Some(line) => format!("{code}; logged: {line}"),
                None => format!("{code}; but nothing was logged at ERROR"),
            };
            checks.record(name, !errors.is_empty(), detail);
        }
    }
}

/// Calls `close` on a thread so a plugin that hangs is reported, not waited on forever.
fn close_within(close: library::Close, id: u32) -> Result<i32, String> {
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        // SAFETY: plain call with an id.
        let _ = sender.send(unsafe { close(id) });
    });
    receiver
        .recv_timeout(CLOSE_LIMIT)
        .map_err(|_| format!("close did not return within {CLOSE_LIMIT:?}"))
}

fn check_sink(checks: &mut Checks, api: &SinkApi, config: &str) {
    let garbage = [0xffu8; 8];
    // SAFETY: valid buffers for the call.
    let code = unsafe {
        (api.consume)(
            UNUSED_ID,
            garbage.as_ptr(),
            8,
            garbage.as_ptr(),
            8,
            garbage.as_ptr(),
            8,
        )
    };
    // SAFETY: plain call with an id.
    let close_code = unsafe { (api.close)(UNUSED_ID) };
    checks.record(
        "unknown id refused",
        code == -1 && close_code == -1,
        format!("consume {code}, close {close_code}"),
    );
    check_bad_config(
        checks,
        "config that is not JSON refused",
        |c| open_sink(api, c),
        NOT_JSON,
    );
    check_bad_config(
        checks,
        "config of the wrong shape refused",
        |c| open_sink(api, c),
        NOT_A_TABLE,
    );
    let id = match open_sink(api, config) {
        Ok(id) => id,
        Err(error) => return open_failed(checks, error, &SINK_NEEDS_OPEN),
    };
    checks.record("open", true, format!("id {id}"));
    // SAFETY: valid buffer for the call.
    let again = unsafe { (api.open)(id, config.as_ptr(), config.len(), log_callback) };
    checks.record(
        "second open of a live id refused",
        again == -1,
        format!("returned {again}"),
    );
    // SAFETY: valid buffers for the call.
    let code = unsafe {
        (api.consume)(
            id,
            garbage.as_ptr(),
            8,
            garbage.as_ptr(),
            8,
            garbage.as_ptr(),
            8,
        )
    };
    checks.record(
        "undecodable batch refused",
        code == -1,
        format!("returned {code}"),
    );
    finish_close(checks, api.close, id);
}

fn check_source(checks: &mut Checks, api: &SourceApi, config: &str) {
    // SAFETY: plain calls with ids; the callbacks are functions of this binary.
    let codes = unsafe {
        let handle = match api.protocol {
            SourceProtocol::V2 { handle, .. } => handle(UNUSED_ID, source_runner::send_v2),
            SourceProtocol::V1 { handle } => handle(UNUSED_ID, source_runner::send_v1),
        };
        let result = match api.protocol {
            SourceProtocol::V2 { result, .. } => result(UNUSED_ID, 1, 0),
            SourceProtocol::V1 { .. } => -1,
        };
        (handle, result, (api.close)(UNUSED_ID))
    };
    checks.record(
        "unknown id refused",
        codes == (-1, -1, -1),
        format!(
            "handle {}, batch_result {}, close {}",
            codes.0, codes.1, codes.2
        ),
    );
    check_bad_config(
        checks,
        "config that is not JSON refused",
        |c| open_source(api, c, None),
        NOT_JSON,
    );
    check_bad_config(
        checks,
        "config of the wrong shape refused",
        |c| open_source(api, c, None),
        NOT_A_TABLE,
    );
    let id = match open_source(api, config, None) {
        Ok(id) => id,
        Err(error) => return open_failed(checks, error, &SOURCE_NEEDS_OPEN),
    };
    checks.record("open", true, format!("id {id}"));
    // SAFETY: valid buffer for the call.
    let again = unsafe {
        (api.open)(
            id,
            config.as_ptr(),
            config.len(),
            std::ptr::null(),
            0,
            log_callback,
        )
    };
    checks.record(
        "second open of a live id refused",
        again == -1,
        format!("returned {again}"),
    );
    // Nothing is registered for this id, so every batch is refused (a Nack).
    let started = source_runner::handle(api, id);
    checks.record(
        "poll loop starts",
        started == 0,
        format!("returned {started}"),
    );
    if let SourceProtocol::V2 { result, .. } = api.protocol {
        // SAFETY: plain call with values.
        let code = unsafe { result(id, u64::MAX, 0) };
        checks.record(
            "result for a batch not in flight refused",
            code == -1,
            format!("returned {code}"),
        );
    }
    std::thread::sleep(Duration::from_millis(200));
    finish_close(checks, api.close, id);
}

fn finish_close(checks: &mut Checks, close: library::Close, id: u32) {
    let started = Instant::now();
    match close_within(close, id) {
        Ok(code) => {
            checks.record(
                "close",
                code == 0,
                format!("returned {code} in {:?}", started.elapsed()),
            );
            // SAFETY: plain call with an id.
            let again = unsafe { close(id) };
            checks.record(
                "second close refused",
                again == -1,
                format!("returned {again}"),
            );
        }
        Err(error) => {
            checks.record("close", false, error);
        }
    }
}

/// Runs every check in this process (the child side).
pub fn check_in_process(path: &Path, connector: Option<&Path>) -> LibraryConformance {
    plugin_log::echo_from(5);
    let mut checks = Checks {
        results: Vec::new(),
        with_connector: connector.is_some(),
        not_run: Vec::new(),
    };
    let mut report = LibraryConformance {
        path: path.display().to_string(),
        kind: None,
        version: None,
        ok: false,
        checks: vec![],
        not_run: vec![],
    };
    let library: Arc<Library> = match library::load(path) {
        Ok(library) => library,
        Err(error) => {
            checks.record("loads", false, error);
            report.checks = checks.results;
            return report;
        }
    };
    checks.record("loads", true, "");
    let inspected = inspect_loaded(&library);
    report.kind = inspected.kind.map(str::to_string);
    let complete = inspected.kind.is_some() && inspected.missing.is_empty();
    let detail = match inspected.missing.is_empty() {
        true => format!("exports {}", inspected.generations.join(" + ")),
        false => format!("missing {}", inspected.missing.join(", ")),
    };
    checks.record(
        "exports every symbol of its kind (sources: v1 and v2)",
        complete,
        detail,
    );
    let version_ok = inspected
        .version
        .as_ref()
        .is_ok_and(|v| !v.is_empty() && v.len() <= 64);
    checks.record(
        "version readable",
        version_ok,
        format!("{:?}", inspected.version),
    );
    report.version = inspected.version.ok();
    let config = match connector.map(ConnectorFile::read).transpose() {
        Ok(file) => file.map(|f| f.plugin_config_json()).transpose(),
        Err(error) => Err(error),
    };
    let config = match config {
        Ok(config) => config.unwrap_or_else(|| "null".to_string()),
        Err(error) => {
            checks.record("connector file readable", false, error);
            report.checks = checks.results;
            return report;
        }
    };
    match inspected.kind {
        Some("sink") => match library.sink_api() {
            Ok(api) => check_sink(&mut checks, &api, &config),
            Err(error) => _ = checks.record("sink entry points", false, error),
        },
        Some(_) => match library.source_api() {
            Ok(api) => check_source(&mut checks, &api, &config),
            Err(error) => _ = checks.record("source entry points", false, error),
        },
        None => {}
    }
    report.ok = checks.results.iter().all(|c| c.ok);
    report.checks = checks.results;
    report.not_run = checks.not_run;
    report
}

/// Runs the checks for one library in a child process of this binary.
pub fn check_isolated(path: &Path, connector: Option<&Path>) -> LibraryConformance {
    let crashed = |detail: String| LibraryConformance {
        path: path.display().to_string(),
        kind: None,
        version: None,
        ok: false,
        not_run: vec![],
        checks: vec![CheckResult {
            name: "runs without crashing the host".into(),
            ok: false,
            detail,
        }],
    };
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(error) => return crashed(format!("cannot find this binary: {error}")),
    };
    let mut command = Command::new(exe);
    command
        .args(["conformance", "--in-process", "--json"])
        .arg(path);
    if let Some(connector) = connector {
        command.arg("--connector").arg(connector);
    }
    let output = match command.output() {
        Ok(output) => output,
        Err(error) => return crashed(format!("cannot start the check: {error}")),
    };
    match serde_json::from_slice::<Vec<LibraryConformance>>(&output.stdout) {
        Ok(mut reports) if reports.len() == 1 => reports.remove(0),
        _ => crashed(format!(
            "the checking process ended with {} and no report; stderr: {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
                .lines()
                .rev()
                .take(3)
                .collect::<Vec<_>>()
                .join(" | ")
        )),
    }
}

pub fn print(report: &LibraryConformance) {
    let verdict = if report.ok { "PASS" } else { "FAIL" };
    println!(
        "{verdict} {} ({}, version {})",
        report.path,
        report.kind.as_deref().unwrap_or("unknown kind"),
        report.version.as_deref().unwrap_or("?")
    );
    for check in &report.checks {
        println!(
            "  [{}] {}: {}",
            if check.ok { "ok" } else { "FAIL" },
            check.name,
            check.detail
        );
    }
    for name in &report.not_run {
        println!("  [--] {name}: not run (needs a connector file whose config opens: --connector)");
    }
}

#[derive(Debug, Serialize)]
pub struct CheckReport {
    pub key: String,
    pub path: String,
    pub open_code: Option<i32>,
    pub close_code: Option<i32>,
    pub ok: bool,
    pub error: Option<String>,
    /// Problems the runtime would only show once data flows.
    #[serde(default)]
    pub warnings: Vec<String>,
    pub log: Vec<plugin_log::LogLine>,
}

/// `check`: opens one connector with its file's config (and saved state), then closes it.
pub fn check_connector(file_path: &Path, state_dir: &Path) -> CheckReport {
    let mut report = CheckReport {
        key: String::new(),
        path: file_path.display().to_string(),
        open_code: None,
        close_code: None,
        ok: false,
        error: None,
        warnings: vec![],
        log: vec![],
    };
    let result = (|| -> Result<(), String> {
        let file = ConnectorFile::read(file_path)?;
        report.key = file.key.clone();
        report.warnings.extend(file.schema_mismatch());
        let library = library::load(&library::resolve_path(&file.path)?)?;
        let config = file.plugin_config_json()?;
        let (id, close) = match file.kind {
            crate::connector_file::ConnectorKind::Sink => {
                let api = library.sink_api()?;
                (open_sink(&api, &config), api.close)
            }
            crate::connector_file::ConnectorKind::Source => {
                let api = library.source_api()?;
                let state = StateFile::new(state_dir, &file.key).load()?;
                (open_source(&api, &config, state.as_deref()), api.close)
            }
        };
        let id = id?;
        report.open_code = Some(0);
        let code = close_within(close, id)?;
        report.close_code = Some(code);
        if code != 0 {
            return Err(format!("close returned {code}"));
        }
        Ok(())
    })();
    report.ok = result.is_ok();
    report.error = result.err();
    report.log = plugin_log::take();
    report
}
