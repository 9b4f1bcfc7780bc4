//! Behaviour only openGemini shows, against a FAKE openGemini: no openGemini
//! server can run here, so a small HTTP server in the test (std
//! `TcpListener` on 127.0.0.1, one thread per connection, scripted answers)
//! replays what openGemini's source shows it answers: its
//! `X-Geminidb-Version` header, 503 "request throttled" from its write
//! limiter, 401 before the lockout after five failed logins, 403 "disable
//! write!", 400 for bad lines and partial writes, 404 for a missing
//! database. The sink is driven through the real harness binary.

use iggy_harness_test_support::*;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A request as the fake saw it.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    target: String,
    body: Vec<u8>,
    at: Instant,
}

impl Seen {
    fn is_data_write(&self) -> bool {
        self.method == "POST" && self.target.starts_with("/write") && !self.body.is_empty()
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

struct Reply {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: String,
    delay: Duration,
}

impl Reply {
    fn status(status: u16, body: &str) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: body.into(),
            delay: Duration::ZERO,
        }
    }

    fn header(mut self, name: &'static str, value: &str) -> Self {
        self.headers.push((name, value.into()));
        self
    }
}

/// Answers a request given how many data writes came before it.
type Script = dyn Fn(&Seen, usize) -> Reply + Send + Sync;

/// Accepts the sink's empty check write at open, leaving the rest to `script`.
fn open_ok(
    script: impl Fn(&Seen, usize) -> Reply + Send + Sync + 'static,
) -> impl Fn(&Seen, usize) -> Reply + Send + Sync + 'static {
    move |seen, earlier| match seen.target.starts_with("/write") && seen.body.is_empty() {
        true => Reply::status(204, ""),
        false => script(seen, earlier),
    }
}

struct FakeGemini {
    port: u16,
    seen: Arc<Mutex<Vec<Seen>>>,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

impl FakeGemini {
    /// `/ping` answers 204 (every answer has openGemini's version header);
    /// `script` answers the rest.
    fn start(script: impl Fn(&Seen, usize) -> Reply + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("fake listens");
        listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let port = listener.local_addr().expect("fake address").port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let script: Arc<Script> = Arc::new(script);
        let accept = {
            let (seen, stop) = (Arc::clone(&seen), Arc::clone(&stop));
            std::thread::spawn(move || {
                // Bounded: the test drops the fake (stop) or 120 s pass.
                let until = Instant::now() + Duration::from_secs(120);
                while !stop.load(Ordering::Relaxed) && Instant::now() < until {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            let (seen, script) = (Arc::clone(&seen), Arc::clone(&script));
                            std::thread::spawn(move || serve(stream, &seen, &*script));
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(2)),
                    }
                }
            })
        };
        Self {
            port,
            seen,
            stop,
            accept: Some(accept),
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    fn data_writes(&self) -> Vec<Seen> {
        self.seen()
            .into_iter()
            .filter(Seen::is_data_write)
            .collect()
    }
}

impl Drop for FakeGemini {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
    }
}

/// One request per connection (`Connection: close`), read with a deadline.
fn serve(mut stream: TcpStream, seen: &Mutex<Vec<Seen>>, script: &Script) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let mut data = Vec::new();
    let mut buffer = [0u8; 16 * 1024];
    let head_end = loop {
        if let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
        match stream.read(&mut buffer) {
            Ok(0) | Err(_) => return,
            Ok(n) => data.extend_from_slice(&buffer[..n]),
        }
    };
    let head = String::from_utf8_lossy(&data[..head_end]).into_owned();
    let length: usize = head
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .unwrap_or(0);
    while data.len() < head_end + length {
        match stream.read(&mut buffer) {
            Ok(0) | Err(_) => return,
            Ok(n) => data.extend_from_slice(&buffer[..n]),
        }
    }
    let mut words = head.split_whitespace();
    let request = Seen {
        method: words.next().unwrap_or_default().to_string(),
        target: words.next().unwrap_or_default().to_string(),
        body: data[head_end..head_end + length].to_vec(),
        at: Instant::now(),
    };
    let reply = {
        let mut seen = seen.lock().unwrap();
        let earlier = seen.iter().filter(|s| s.is_data_write()).count();
        seen.push(request.clone());
        if request.target.starts_with("/ping") {
            Reply::status(204, "")
        } else {
            script(&request, earlier)
        }
    };
    std::thread::sleep(reply.delay);
    let mut answer = format!(
        "HTTP/1.1 {} Fake\r\nContent-Length: {}\r\nConnection: close\r\nX-Geminidb-Version: 1.2.0\r\n",
        reply.status,
        reply.body.len()
    );
    for (name, value) in &reply.headers {
        answer.push_str(&format!("{name}: {value}\r\n"));
    }
    answer.push_str("\r\n");
    answer.push_str(&reply.body);
    let _ = stream.write_all(answer.as_bytes());
}

fn sink_library() -> PathBuf {
    plugin("iggy_connector_opengemini_sink")
}

/// Fast retries so the tests stay short; Retry-After still wins.
const QUICK_RETRY: &str =
    "[plugin_config.retry]\nmax_attempts = 4\ninitial_delay = \"20ms\"\nmax_delay = \"200ms\"\n";

fn config(urls: &[String], extra: &str) -> String {
    let urls: Vec<String> = urls.iter().map(|u| format!("\"{u}\"")).collect();
    format!(
        "urls = [{}]\ndatabase = \"metrics\"\n{extra}{QUICK_RETRY}",
        urls.join(", ")
    )
}

#[test]
fn throttled_writes_wait_for_retry_after_then_succeed() {
    let fake = FakeGemini::start(open_ok(|_, earlier| match earlier {
        0 | 1 => Reply::status(503, "request throttled").header("Retry-After", "1"),
        _ => Reply::status(204, ""),
    }));
    let ws = Workspace::new();
    ws.produce("created", 20);
    ws.sink(
        "throttled",
        &sink_library(),
        "created",
        &config(&[fake.url()], ""),
    );
    let (output, report) = ws.run_ok(&[]);
    let log = stderr(&output);
    assert!(
        log.contains(&format!("{} is openGemini 1.2.0", fake.url())),
        "the version header names the server: {log}"
    );
    assert!(log.contains("request throttled"), "{log}");
    let writes = fake.data_writes();
    assert_eq!(writes.len(), 3, "two throttled attempts, then the write");
    assert!(writes.iter().all(|w| w.body == writes[0].body));
    assert_eq!(writes[0].text().lines().count(), 20);
    for pair in writes.windows(2) {
        let waited = pair[1].at - pair[0].at;
        assert!(
            waited >= Duration::from_millis(950),
            "Retry-After honoured: {waited:?}"
        );
    }
    // The sink retried by itself: the harness saw one successful batch.
    assert_eq!(connector(&report, "throttled")["retries"], 0);
}

#[test]
fn a_refused_login_at_open_is_tried_once() {
    let fake = FakeGemini::start(|_, _| Reply::status(401, "authorization failed"));
    let ws = Workspace::new();
    let secret = "Wr0ng-pass!";
    ws.sink(
        "locked",
        &sink_library(),
        "created",
        &config(
            &[fake.url()],
            &format!("username = \"writer\"\npassword = \"{secret}\"\n"),
        ),
    );
    let text = ws.failed_check("locked");
    assert!(
        text.contains("answered 401: authorization failed"),
        "{text}"
    );
    assert!(
        text.contains("locks a user out after 5 failed logins"),
        "{text}"
    );
    assert!(!text.contains(secret), "{text}");
    let writes = fake
        .seen()
        .iter()
        .filter(|s| s.target.starts_with("/write"))
        .count();
    assert_eq!(writes, 1, "one failed login, not five");
}

#[test]
fn writes_refused_mid_run_are_not_retried() {
    let secret = "S3cret-pass!";
    for (status, body) in [(401, "authorization failed"), (403, "disable write!")] {
        let fake = FakeGemini::start(open_ok(move |_, _| Reply::status(status, body)));
        let ws = Workspace::new();
        ws.produce("created", 10);
        ws.sink(
            "refused",
            &sink_library(),
            "created",
            &config(
                &[fake.url()],
                &format!("username = \"writer\"\npassword = \"{secret}\"\n"),
            ),
        );
        let (output, report) = ws.run(&["--max-attempts", "1", "--commit", "after-consume"]);
        assert_eq!(output.status.code(), Some(1), "{status}: {report}");
        let log = stderr(&output);
        assert!(log.contains(&format!("answered {status}: {body}")), "{log}");
        assert!(
            log.contains("locks a user out after 5 failed logins"),
            "{log}"
        );
        assert!(!log.contains(secret), "{log}");
        assert_eq!(fake.data_writes().len(), 1, "{status} is not retried");
    }
}

#[test]
fn bad_requests_are_reported_with_offsets_and_not_retried() {
    let fake = FakeGemini::start(open_ok(|_, _| {
        Reply::status(
            400,
            "{\"error\":\"partial write: field type conflict: input field \\\"seq\\\" on measurement \\\"created\\\" is type integer, already exists as type float dropped=5\"}",
        )
    }));
    let ws = Workspace::new();
    ws.produce("created", 10);
    ws.sink(
        "bad",
        &sink_library(),
        "created",
        &config(&[fake.url()], "batch_size = 5\n"),
    );
    let (output, report) = ws.run(&["--max-attempts", "1", "--commit", "after-consume"]);
    assert_eq!(output.status.code(), Some(1), "{report}");
    let log = stderr(&output);
    assert!(log.contains("(offsets 0..=4) was refused"), "{log}");
    assert!(log.contains("(offsets 5..=9) was refused"), "{log}");
    assert!(log.contains("field type conflict"), "{log}");
    assert!(log.contains("10 points in 2 request(s) refused"), "{log}");
    assert_eq!(fake.data_writes().len(), 2, "both requests sent once");
}

#[test]
fn only_valid_lines_reach_the_server() {
    // openGemini may drop the good lines after a bad one and still answer
    // 204, so the fake accepts everything: only the sink's own checks keep
    // bad lines away.
    let fake = FakeGemini::start(|_, _| Reply::status(204, ""));
    let ws = Workspace::new();
    let long_name = format!("{} v=8 8", "m".repeat(300));
    let texts = [
        "cpu,host=a v=1 1",
        "cpu,host=b v=2u 2",
        "cpu,host=c s=\"broken\nstring\" 3",
        "cpu,host=d\\",
        "cpu,host=e v=NaN 5",
        "cpu,host=f v=6i 6\ncpu,host=g v=7i 7",
        &long_name,
        "cpu,host=h v=9 99999999999999999999",
    ];
    let lines: String = texts
        .iter()
        .map(|text| format!("{{\"payload\":{}}}\n", serde_json::json!(text)))
        .collect();
    ws.produce_lines("raw", &lines, true);
    ws.connector_file(
        "sink",
        "lines",
        &sink_library(),
        &sink_stream("raw", "text", 100),
        &config(&[fake.url()], ""),
    );
    let (output, _) = ws.run_ok(&[]);
    let sent: Vec<String> = fake
        .data_writes()
        .iter()
        .flat_map(|w| w.text().lines().map(str::to_owned).collect::<Vec<_>>())
        .collect();
    assert_eq!(
        sent,
        ["cpu,host=a v=1 1", "cpu,host=f v=6i 6", "cpu,host=g v=7i 7"]
    );
    let log = stderr(&output);
    for (offset, reason) in [
        (1, "unsigned"),
        (2, "no closing quote"),
        (3, "ends with a backslash"),
        (4, "not a number"),
        (6, "300 bytes"),
        (7, "not an integer"),
    ] {
        let prefix = format!("offset {offset} of orders/raw partition 1 is not written");
        let line = log.lines().find(|l| l.contains(&prefix));
        assert!(
            line.is_some_and(|l| l.contains(reason)),
            "offset {offset} ({reason}): {log}"
        );
    }
}

#[test]
fn a_database_dropped_after_open_is_created_again_on_404() {
    let fake = FakeGemini::start(open_ok(|seen, earlier| {
        if seen.target.starts_with("/query") {
            return Reply::status(200, "{\"results\":[{\"statement_id\":0}]}");
        }
        match earlier {
            0 => Reply::status(404, "{\"error\":\"database not found: \\\"metrics\\\"\"}"),
            _ => Reply::status(204, ""),
        }
    }));
    let ws = Workspace::new();
    ws.produce("created", 10);
    ws.sink(
        "creator",
        &sink_library(),
        "created",
        &config(&[fake.url()], "create_database = true\n"),
    );
    ws.run_ok(&[]);
    let calls: Vec<String> = fake
        .seen()
        .iter()
        .filter(|s| s.method == "POST" && !s.body.is_empty() || s.target.starts_with("/query"))
        .map(|s| s.target.split('?').next().unwrap_or_default().to_string())
        .collect();
    assert_eq!(calls, ["/write", "/query", "/write"]);
    let create = fake
        .seen()
        .into_iter()
        .find(|s| s.target.starts_with("/query"))
        .unwrap();
    assert!(
        create.target.contains("q=CREATE+DATABASE+%22metrics%22"),
        "{}",
        create.target
    );
}

#[test]
fn failover_and_round_robin_spread_writes_over_endpoints() {
    // Failover: the first endpoint hangs past the timeout, the second takes over for good.
    let slow = FakeGemini::start(open_ok(|_, _| Reply {
        delay: Duration::from_secs(3),
        ..Reply::status(204, "")
    }));
    let fast = FakeGemini::start(|_, _| Reply::status(204, ""));
    let ws = Workspace::new();
    ws.produce("created", 300);
    ws.sink(
        "failover",
        &sink_library(),
        "created",
        &config(
            &[slow.url(), fast.url()],
            "endpoint_selection = \"failover\"\ntimeout = \"300ms\"\n",
        ),
    );
    let (output, _) = ws.run_ok(&[]);
    assert_eq!(slow.data_writes().len(), 1, "one timed-out attempt");
    let lines: usize = fast
        .data_writes()
        .iter()
        .map(|w| w.text().lines().count())
        .sum();
    assert_eq!(lines, 300, "every point went to the second endpoint");
    assert_eq!(fast.data_writes().len(), 3);
    assert!(stderr(&output).contains("timed out"), "{}", stderr(&output));
    drop(slow);

    // Round robin: requests alternate; a dead endpoint's attempts move on.
    let first = FakeGemini::start(|_, _| Reply::status(204, ""));
    let second = FakeGemini::start(|_, _| Reply::status(204, ""));
    let dead = format!("http://127.0.0.1:{}", process::free_port());
    let ws = Workspace::new();
    ws.produce("created", 300);
    ws.sink(
        "spread",
        &sink_library(),
        "created",
        &config(&[first.url(), second.url(), dead], "batch_size = 10\n"),
    );
    ws.run_ok(&[]);
    let (a, b) = (first.data_writes(), second.data_writes());
    let lines: usize = a.iter().chain(&b).map(|w| w.text().lines().count()).sum();
    assert_eq!(lines, 300, "each request written once");
    assert!(
        a.len() >= 10 && b.len() >= 10,
        "{} and {}",
        a.len(),
        b.len()
    );
}

#[test]
fn pipelined_writes_report_a_failed_batch_on_the_next_call() {
    // The first batch's background write is refused; the sink learns of it
    // when the second batch arrives and fails that call. The first batch's
    // points are lost (the loss window of `pipelined_writes`); the second
    // batch was handed over anyway and is written again when the harness
    // delivers it again.
    let fake = FakeGemini::start(open_ok(|_, earlier| match earlier {
        0 => Reply::status(400, "{\"error\":\"unable to parse 'x': missing fields\"}"),
        _ => Reply::status(204, ""),
    }));
    let ws = Workspace::new();
    ws.produce("created", 200);
    ws.sink(
        "piped",
        &sink_library(),
        "created",
        &config(&[fake.url()], "pipelined_writes = true\n"),
    );
    let (output, report) = ws.run_ok(&["--commit", "after-consume"]);
    let log = stderr(&output);
    assert!(log.contains("(offsets 0..=99) was refused"), "{log}");
    assert!(
        log.contains("the previous batch, written in the background (pipelined_writes), failed"),
        "{log}"
    );
    assert_eq!(connector(&report, "piped")["retries"], 1, "{report}");
    let writes = fake.data_writes();
    assert_eq!(writes.len(), 3, "the first batch once, the second twice");
    assert_ne!(writes[0].body, writes[1].body);
    assert_eq!(writes[1].body, writes[2].body);
    assert!(
        writes[1].text().starts_with("created pad="),
        "{}",
        writes[1].text()
    );
    assert_eq!(writes[1].text().lines().count(), 100);
}
