//! What the Flink source's integration tests share: the recorded fixtures,
//! a replay of Flink's SQL Gateway (and of the REST calls records mode
//! makes) on a loopback port, and the harness runs.
//!
//! The replay serves only what a real gateway cannot be made to show (see
//! `records_replay.rs`). It answers with the responses recorded from a real
//! Flink 1.20.3 gateway (`tests/fixtures/gw-*`) and enforces the rules seen
//! while recording: only the current result token (answered with the same
//! page again) or the next one is accepted, any other is HTTP 500 with the
//! recorded stack trace; NOT_READY keeps the token; a streaming query's
//! pages follow its recorded fetch log; a bounded one ends with EOS; every
//! error is a 500 with `{"errors": [...]}`; an unknown session is the
//! recorded "does not exist" 500.
// Each test binary uses a different part of this module.
#![allow(dead_code)]

pub mod shared;

use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub const KEY: &str = "flink_source";
pub const TOPIC: &str = "flink";

/// A recorded exchange's response body.
pub fn fixture(name: &str) -> Value {
    fixture_file(name)["response"].clone()
}

/// A whole recorded file (`{request, status, response}` or a fetch log).
pub fn fixture_file(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/{name}.json", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The session every recorded statement ran in (gw-03).
pub fn session_handle() -> String {
    fixture("gw-03-open-session")["sessionHandle"]
        .as_str()
        .expect("recorded session handle")
        .to_string()
}

#[derive(Debug, Clone)]
enum End {
    /// A streaming query: empty pages once the recorded ones are served.
    Quiet,
    /// A bounded query: EOS after the pages.
    Eos(Value),
}

/// One query's recorded pages, in token order, as the replay serves them.
#[derive(Debug, Clone)]
pub struct QueryScript {
    pub operation: String,
    pub job_id: String,
    not_ready: usize,
    pages: VecDeque<Value>,
    empty: Value,
    end: End,
}

impl QueryScript {
    /// A query as recorded: `prefix` is e.g. `gw-21-select-1s-checkpoint`;
    /// pages come from its fetch log, with the recorded page files where the
    /// log says rows came, and the recorded empty page elsewhere. The script
    /// stops before the first page with rows whose content was not recorded.
    pub fn recorded(prefix: &str) -> Self {
        let execute = fixture(&format!("{prefix}-execute"));
        let operation = execute["operationHandle"]
            .as_str()
            .expect("operation")
            .to_string();
        let log = fixture_file(&format!("{prefix}-fetchlog"));
        let entries = log.as_array().expect("fetch log");
        let page_file = |index: usize| {
            let path = format!(
                "{}/tests/fixtures/{prefix}-page{index:03}.json",
                env!("CARGO_MANIFEST_DIR")
            );
            std::path::Path::new(&path)
                .is_file()
                .then(|| fixture(&format!("{prefix}-page{index:03}")))
        };
        let mut not_ready = 0;
        let mut pages = VecDeque::new();
        let mut empty = None;
        let mut end = End::Quiet;
        for (index, entry) in entries.iter().enumerate() {
            let rows = entry["rows"].as_u64().unwrap_or(0);
            match entry["resultType"].as_str() {
                Some("NOT_READY") => not_ready += 1,
                Some("EOS") => {
                    end = End::Eos(page_file(index).expect("recorded EOS page"));
                    break;
                }
                _ => {
                    let page = match page_file(index) {
                        Some(page) => page,
                        None if rows == 0 => match &empty {
                            Some(empty) => Value::clone(empty),
                            None => panic!("{prefix}: no recorded empty page before entry {index}"),
                        },
                        None => break,
                    };
                    if rows == 0 && empty.is_none() {
                        empty = Some(page.clone());
                    }
                    pages.push_back(page);
                }
            }
        }
        let empty = empty.expect("a recorded empty page");
        let job_id = pages
            .iter()
            .find_map(|page| page["jobID"].as_str())
            .expect("job id")
            .to_string();
        Self {
            operation,
            job_id,
            not_ready,
            pages,
            empty,
            end,
        }
    }

    pub fn rows(&self) -> usize {
        self.pages.iter().map(rows_of).sum()
    }

    /// Appends columns (name, logical type, one value per row of each page)
    /// to every page, as a table with metadata columns would return them.
    pub fn with_columns(
        mut self,
        columns: &[(&str, Value)],
        values: impl Fn(usize) -> Vec<Value>,
    ) -> Self {
        let mut row_number = 0;
        for page in self.pages.iter_mut().chain([&mut self.empty]) {
            let Some(results) = page.get_mut("results") else {
                continue;
            };
            for (name, logical_type) in columns {
                results["columns"]
                    .as_array_mut()
                    .expect("columns")
                    .push(json!({"name": name, "logicalType": logical_type, "comment": null}));
            }
            for row in results["data"].as_array_mut().expect("data") {
                row["fields"]
                    .as_array_mut()
                    .expect("fields")
                    .extend(values(row_number));
                row_number += 1;
            }
        }
        self
    }
}

fn rows_of(page: &Value) -> usize {
    page["results"]["data"].as_array().map_or(0, Vec::len)
}

/// One request the replay received.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    pub path: String,
    pub authorization: Option<String>,
    pub body: Value,
}

struct Operation {
    script: QueryScript,
    session: String,
    current: u64,
    served: BTreeMap<u64, Value>,
    closed: bool,
}

#[derive(Default)]
struct State {
    queries: VecDeque<QueryScript>,
    sessions: BTreeSet<String>,
    operations: BTreeMap<String, Operation>,
    received: Vec<Received>,
    rejected: Vec<String>,
    fail_once: BTreeSet<u64>,
    required_authorization: Option<String>,
}

/// The replay server; stopped (and its thread joined) on drop.
pub struct Replay {
    pub port: u16,
    scheme: &'static str,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Replay {
    /// Serves `queries` to the statements submitted, in order.
    pub fn start(queries: Vec<QueryScript>) -> Self {
        Self::start_with(queries, None)
    }

    /// The same over TLS (`tests/fixtures/tls`: a test CA, a server
    /// certificate for 127.0.0.1), requiring a client certificate from that
    /// CA when `client_auth`.
    pub fn start_tls(queries: Vec<QueryScript>, client_auth: bool) -> Self {
        Self::start_with(queries, Some(tls_config(client_auth)))
    }

    fn start_with(queries: Vec<QueryScript>, tls: Option<Arc<rustls::ServerConfig>>) -> Self {
        let scheme = if tls.is_some() { "https" } else { "http" };
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind replay");
        let port = listener.local_addr().expect("replay address").port();
        listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let state = Arc::new(Mutex::new(State {
            queries: queries.into(),
            ..State::default()
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let state = Arc::clone(&state);
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || serve(listener, tls, state, stop))
        };
        Self {
            port,
            scheme,
            state,
            stop,
            thread: Some(thread),
        }
    }

    pub fn url(&self) -> String {
        format!("{}://127.0.0.1:{}", self.scheme, self.port)
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Answers 401 unless the `Authorization` header is exactly this.
    pub fn require_authorization(&self, value: &str) {
        self.state().required_authorization = Some(value.to_string());
    }

    /// The first fetch of each of these tokens fails with a recorded 500.
    pub fn fail_once_at(&self, tokens: &[u64]) {
        self.state().fail_once.extend(tokens);
    }

    pub fn received(&self) -> Vec<Received> {
        self.state().received.clone()
    }

    /// Fetches the gateway refused for breaking its token rule.
    pub fn rejected(&self) -> Vec<String> {
        self.state().rejected.clone()
    }

    /// The statements of configure-session calls, in order.
    pub fn configured(&self) -> Vec<String> {
        self.received()
            .iter()
            .filter(|r| r.path.ends_with("/configure-session"))
            .filter_map(|r| r.body["statement"].as_str().map(str::to_string))
            .collect()
    }

    /// The bodies of statement submissions, in order.
    pub fn submitted(&self) -> Vec<Value> {
        self.received()
            .iter()
            .filter(|r| r.method == "POST" && r.path.ends_with("/statements"))
            .map(|r| r.body.clone())
            .collect()
    }

    /// The result tokens fetched, in order.
    pub fn fetched_tokens(&self) -> Vec<u64> {
        self.received()
            .iter()
            .filter_map(|r| r.path.split("/result/").nth(1))
            .filter_map(|rest| rest.split('?').next()?.parse().ok())
            .collect()
    }
}

impl Drop for Replay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Accepts until stopped (or ten minutes, so a lost test cannot hang).
fn serve(
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
) {
    let deadline = Instant::now() + Duration::from_secs(600);
    while !stop.load(Ordering::SeqCst) && Instant::now() < deadline {
        match listener.accept() {
            Ok((stream, _)) => {
                let served = stream
                    .set_nonblocking(false)
                    .and_then(|()| stream.set_read_timeout(Some(Duration::from_secs(5))))
                    .and_then(|()| match &tls {
                        None => handle(stream, &state),
                        Some(config) => {
                            let connection = rustls::ServerConnection::new(Arc::clone(config))
                                .map_err(std::io::Error::other)?;
                            let mut tls_stream = rustls::StreamOwned::new(connection, stream);
                            handle(&mut tls_stream, &state)?;
                            tls_stream.conn.send_close_notify();
                            tls_stream.flush()
                        }
                    });
                if let Err(error) = served {
                    eprintln!("replay: {error}");
                }
            }
            Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(2));
            }
            Err(error) => eprintln!("replay accept: {error}"),
        }
    }
}

/// Reads one request, answers it; the connection then closes.
fn handle(mut stream: impl Read + Write, state: &Mutex<State>) -> std::io::Result<()> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 8192];
    let (head_end, content_length) = loop {
        let read = stream.read(&mut chunk)?;
        if read == 0 {
            return Ok(());
        }
        buffer.extend_from_slice(&chunk[..read]);
        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buffer[..end]).to_string();
            let length = head
                .lines()
                .filter_map(|line| line.split_once(':'))
                .find(|(name, _)| name.trim().eq_ignore_ascii_case("content-length"))
                .and_then(|(_, value)| value.trim().parse::<usize>().ok())
                .unwrap_or(0);
            break (end + 4, length.min(1 << 20));
        }
        if buffer.len() > 1 << 20 {
            return Err(std::io::Error::other("request head too large"));
        }
    };
    while buffer.len() < head_end + content_length {
        let read = stream.read(&mut chunk)?;
        if read == 0 {
            break;
        }
        buffer.extend_from_slice(&chunk[..read]);
    }
    let head = String::from_utf8_lossy(&buffer[..head_end]).to_string();
    let mut lines = head.lines();
    let mut request_line = lines.next().unwrap_or_default().split_whitespace();
    let method = request_line.next().unwrap_or_default().to_string();
    let target = request_line.next().unwrap_or_default().to_string();
    let authorization = lines
        .filter_map(|line| line.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("authorization"))
        .map(|(_, value)| value.trim().to_string());
    let body_end = buffer.len().min(head_end + content_length);
    let body: Value = serde_json::from_slice(&buffer[head_end..body_end]).unwrap_or(Value::Null);
    let (status, answer) = {
        let mut state = state.lock().unwrap_or_else(|e| e.into_inner());
        state.received.push(Received {
            method: method.clone(),
            path: target.clone(),
            authorization: authorization.clone(),
            body,
        });
        match &state.required_authorization {
            Some(required) if authorization.as_ref() != Some(required) => {
                (401, json!({"errors": ["Unauthorized"]}))
            }
            _ => route(&mut state, &method, &target),
        }
    };
    let text = answer.to_string();
    write!(
        stream,
        "HTTP/1.1 {status} X\r\nContent-Type: application/json; charset=UTF-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
        text.len()
    )?;
    stream.flush()
}

fn route(state: &mut State, method: &str, target: &str) -> (u16, Value) {
    let path = target.split('?').next().unwrap_or_default();
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match (method, segments.as_slice()) {
        ("GET", ["api_versions"]) => (200, fixture("gw-02-api-versions")),
        ("POST", ["v3", "sessions"]) => {
            let answer = fixture("gw-03-open-session");
            state.sessions.insert(session_handle());
            (200, answer)
        }
        (_, ["v3", "sessions", session, rest @ ..]) => {
            if !state.sessions.contains(*session) {
                return (500, fixture("gw-63-unknown-session"));
            }
            session_route(state, method, session, rest)
        }
        // Checkpoints, no savepoint: a bounded query's job ended by itself.
        ("GET", ["jobs", job, "checkpoints"]) if known(state, job) => {
            (200, fixture("rest-insert-30-checkpoints"))
        }
        _ => not_found(path),
    }
}

fn known(state: &State, job: &str) -> bool {
    state
        .operations
        .values()
        .any(|operation| operation.script.job_id == job)
}

/// Flink's answer to a path it does not serve.
fn not_found(path: &str) -> (u16, Value) {
    (404, json!({"errors": [format!("Not found: {path}")]}))
}

fn session_route(state: &mut State, method: &str, session: &str, rest: &[&str]) -> (u16, Value) {
    match (method, rest) {
        ("DELETE", []) => {
            state.sessions.remove(session);
            (200, fixture("gw-53-close-operation"))
        }
        ("POST", ["heartbeat"]) => (200, fixture("gw-05-heartbeat")),
        ("POST", ["configure-session"]) => (200, fixture("gw-10-configure-session")),
        ("POST", ["statements"]) => {
            let Some(script) = state.queries.pop_front() else {
                return (500, fixture("gw-61-bad-sql-fetch"));
            };
            let handle = script.operation.clone();
            state.operations.insert(
                handle.clone(),
                Operation {
                    script,
                    session: session.to_string(),
                    current: 0,
                    served: BTreeMap::new(),
                    closed: false,
                },
            );
            (200, json!({ "operationHandle": handle }))
        }
        ("GET", ["operations", operation, "status"]) => match state.operations.get(*operation) {
            Some(op) if !op.closed => (200, json!({ "status": "FINISHED" })),
            _ => (500, fixture("gw-63-unknown-session")),
        },
        ("DELETE", ["operations", operation, "close"]) => {
            match state.operations.get_mut(*operation) {
                Some(op) => {
                    op.closed = true;
                    (200, fixture("gw-53-close-operation"))
                }
                None => (500, fixture("gw-63-unknown-session")),
            }
        }
        ("GET", ["operations", operation, "result", token]) => {
            let token: u64 = token.parse().unwrap_or(u64::MAX);
            fetch(state, operation, token)
        }
        _ => not_found(&rest.join("/")),
    }
}

fn fetch(state: &mut State, operation: &str, token: u64) -> (u16, Value) {
    let State {
        operations,
        rejected,
        fail_once,
        ..
    } = state;
    let Some(op) = operations.get_mut(operation).filter(|op| !op.closed) else {
        return (500, fixture("gw-63-unknown-session"));
    };
    if token != op.current && token != op.current + 1 {
        rejected.push(format!(
            "token {token} fetched while the current one is {}",
            op.current
        ));
        return (500, fixture("gw-31-token-previous"));
    }
    if fail_once.remove(&token) {
        return (500, fixture("gw-31-token-previous"));
    }
    op.current = token;
    if let Some(page) = op.served.get(&token) {
        return (200, page.clone());
    }
    let uri = |t: u64| {
        format!(
            "/v3/sessions/{}/operations/{operation}/result/{t}?rowFormat=JSON",
            op.session
        )
    };
    if token == 0 && op.script.not_ready > 0 {
        op.script.not_ready -= 1;
        return (
            200,
            json!({"resultType": "NOT_READY", "nextResultUri": uri(0)}),
        );
    }
    let mut page = match op.script.pages.pop_front() {
        Some(page) => page,
        None => match &op.script.end {
            End::Eos(eos) => eos.clone(),
            End::Quiet => op.script.empty.clone(),
        },
    };
    if page["resultType"] == "EOS" {
        if let Some(fields) = page.as_object_mut() {
            fields.remove("nextResultUri");
        }
    } else {
        page["nextResultUri"] = uri(token + 1).into();
    }
    op.served.insert(token, page.clone());
    (200, page)
}

/// A file of the test PKI in `tests/fixtures/tls`.
pub fn tls_file(name: &str) -> String {
    format!("{}/tests/fixtures/tls/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn tls_config(client_auth: bool) -> Arc<rustls::ServerConfig> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let certs = |name: &str| {
        CertificateDer::pem_file_iter(tls_file(name))
            .expect("test certificate")
            .collect::<Result<Vec<_>, _>>()
            .expect("test certificate")
    };
    let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .expect("TLS versions");
    let builder = if client_auth {
        let mut roots = rustls::RootCertStore::empty();
        for cert in certs("ca.pem") {
            roots.add(cert).expect("test CA");
        }
        let verifier =
            rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .expect("client verifier");
        builder.with_client_cert_verifier(verifier)
    } else {
        builder.with_no_client_auth()
    };
    let key = PrivateKeyDer::from_pem_file(tls_file("server.key")).expect("test server key");
    Arc::new(
        builder
            .with_single_cert(certs("server.pem"), key)
            .expect("server certificate"),
    )
}

/// `[plugin_config]` body for records mode against `replay` (gateway and
/// REST); `extra` top-level settings replace the fast test defaults.
pub fn records_config(replay: &Replay, records: &str, extra: &str) -> String {
    let defaults = [
        "poll_interval_ms = 20",
        "max_poll_interval_ms = 100",
        "metrics_log_interval = \"1s\"",
    ];
    let mut top: Vec<String> = defaults
        .iter()
        .filter(|line| {
            let key = line.split(' ').next().unwrap_or_default();
            !extra.lines().any(|l| l.starts_with(&format!("{key} ")))
        })
        .map(|line| line.to_string())
        .collect();
    top.push(extra.to_string());
    format!(
        "flink_cluster_url = \"{url}\"\nsql_gateway_url = \"{url}\"\n{}\n\
         [plugin_config.retry]\nmax_attempts = 3\ninitial_delay = \"20ms\"\nmax_delay = \"50ms\"\n\n\
         [plugin_config.records]\n{records}\n",
        top.join("\n"),
        url = replay.url()
    )
}

pub fn header<'a>(message: &'a Value, key: &str) -> Option<&'a str> {
    message["headers"][key]
        .as_str()
        .map(|v| v.split_once(": ").map_or(v, |(_, value)| value))
}

/// `run` until nothing has moved for `idle` (the harness default, 700 ms,
/// is shorter than the empty pages a recorded query starts with), or for
/// 60 s unless `extra` sets `--duration`.
pub fn run(
    ws: &iggy_harness_test_support::Workspace,
    idle: &str,
    extra: &[&str],
) -> (std::process::Output, Value) {
    let connectors = ws.connectors();
    let data = ws.path("data");
    let state = ws.path("state");
    let mut args = vec![
        "--json",
        "run",
        "--connectors-dir",
        connectors.to_str().expect("utf-8 path"),
        "--data-dir",
        data.to_str().expect("utf-8 path"),
        "--state-dir",
        state.to_str().expect("utf-8 path"),
        "--exit-when-idle",
        idle,
    ];
    if !extra.contains(&"--duration") {
        args.extend_from_slice(&["--duration", "60s"]);
    }
    args.extend_from_slice(extra);
    let output = ws.harness(&args);
    let report = report_of(&output);
    (output, report)
}

/// `run` until the source has put out `rows` messages (for a source slow
/// to start: at most 90 s unless `extra` sets `--duration`), then until
/// nothing has moved for `idle`.
pub fn run_to_rows(
    ws: &iggy_harness_test_support::Workspace,
    rows: usize,
    idle: &str,
    extra: &[&str],
) -> (std::process::Output, Value) {
    let goal = format!("{KEY}={rows}");
    let mut args = vec!["--wait-for", goal.as_str()];
    if !extra.contains(&"--duration") {
        args.extend_from_slice(&["--duration", "90s"]);
    }
    args.extend_from_slice(extra);
    run(ws, idle, &args)
}

/// The JSON report a `run` printed; panics with its stderr when there is none.
fn report_of(output: &std::process::Output) -> Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "run printed no JSON report ({e}); status {}; stderr:\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

/// Asserts the harness run succeeded, with its output when it did not.
pub fn assert_ran(output: &std::process::Output, report: &Value) {
    assert!(
        output.status.success() && report["ok"] == true,
        "run failed: {report}\nstderr:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A `run` of at most `limit` over an endless source, which never goes
/// idle: interrupted as by Ctrl-C (the connector closes as at any end of a
/// run) once the source has put out `rows` messages, as the run's progress
/// lines tell; its output (stderr whole) and JSON report.
pub fn run_until(
    ws: &iggy_harness_test_support::Workspace,
    limit: &str,
    rows: u64,
) -> (std::process::Output, Value) {
    use std::io::BufRead;
    use std::process::{Command, Stdio};
    let args = ws.run_args(&["--duration", limit, "--progress"]);
    let mut child = Command::new(iggy_harness_test_support::harness_binary())
        .args(&args)
        .current_dir(ws.dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("harness runs");
    let mut stdout = child.stdout.take().expect("harness stdout");
    let reader = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = stdout.read_to_end(&mut bytes);
        bytes
    });
    let mut log = String::new();
    let mut interrupted = false;
    let stderr = std::io::BufReader::new(child.stderr.take().expect("harness stderr"));
    for line in stderr.lines().map_while(Result::ok) {
        if !interrupted && messages_out(&line).is_some_and(|out| out >= rows) {
            iggy_harness_test_support::process::signal(child.id(), "INT");
            interrupted = true;
        }
        log.push_str(&line);
        log.push('\n');
    }
    let status = child.wait().expect("harness ends");
    let output = std::process::Output {
        status,
        stdout: reader.join().expect("harness stdout read"),
        stderr: log.into_bytes(),
    };
    let report = report_of(&output);
    (output, report)
}

/// The source's messages out in a progress line of `run`
/// (`[  12.0s] flink_source 0→250`, maybe followed by ` (2 errors)`).
fn messages_out(line: &str) -> Option<u64> {
    let (_, counts) = line.strip_prefix('[')?.split_once("s] ")?;
    let counts = counts
        .split(" | ")
        .find_map(|part| part.strip_prefix(&format!("{KEY} ")))?;
    let (_, out) = counts.split_once('→')?;
    out.split(' ').next()?.parse().ok()
}
