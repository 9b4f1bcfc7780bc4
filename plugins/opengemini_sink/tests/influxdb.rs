//! The sink against a real InfluxDB 1.6 (the Debian package), the stand-in
//! for openGemini's write and query API, started per test on free loopback
//! ports and driven through the real harness binary. Points are read back
//! through `/query`; request counts come from InfluxDB's `/debug/vars`.

use iggy_connector_sdk::{Schema, TopicMetadata};
use iggy_harness::library::{self, SinkApi};
use iggy_harness::pipeline::open_sink;
use iggy_harness::plugin_log;
use iggy_harness::sink_runner::{EncodedBatch, call_consume, encode_batch};
use iggy_harness::topic_io::generated_payload;
use iggy_harness_store::StoredMessage;
use iggy_harness_test_support::influxdb::{InfluxOptions, InfluxServer};
use iggy_harness_test_support::metrics::{Scrape, scrape_while_running};
use iggy_harness_test_support::process::{signal, wait_until};
use iggy_harness_test_support::*;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::time::{Duration, Instant};

fn sink_library() -> PathBuf {
    plugin("iggy_connector_opengemini_sink")
}

fn connection(server: &InfluxServer, database: &str) -> String {
    format!(
        "url = \"{}\"\ndatabase = \"{database}\"\ntimeout = \"5s\"\n",
        server.url()
    )
}

/// A sink connector file whose stream has its own `schema` and batch length.
fn sink_with_schema(
    ws: &Workspace,
    key: &str,
    topic: &str,
    (schema, batch_length): (&str, usize),
    plugin_config: &str,
) {
    let streams = sink_stream(topic, schema, batch_length);
    ws.connector_file("sink", key, &sink_library(), &streams, plugin_config);
}

/// `check` on one connector file: exit code and the JSON report as text.
fn check(ws: &Workspace, key: &str) -> (Option<i32>, String) {
    let output = ws.check(key);
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

fn count(server: &InfluxServer, database: &str, query: &str) -> u64 {
    server
        .select(database, query)
        .first()
        .and_then(|row| row.get("count"))
        .and_then(Value::as_u64)
        .unwrap_or(0)
}

const REGIONS: [&str; 3] = ["eu", "us", "ap"];

#[test]
fn json_messages_become_points_with_tags_fields_and_iggy_times() {
    let ws = Workspace::new();
    let server = InfluxServer::start(ws.dir.path());
    server.execute("CREATE DATABASE \"shop\"");
    let lines: String = (0..300)
        .map(|i| {
            let region = REGIONS[i % 3];
            let envelope = json!({
                "headers": {"tenant": "acme corp"},
                "payload": {
                    "order": i,
                    "region": region,
                    "amount": i as f64 * 1.5 + 0.25,
                    "paid": i % 2 == 0,
                    "note": format!("line {i}\nnext, \"quoted\" \\ end"),
                    "customer": {"name": format!("c{i}"), "vip": i % 5 == 0},
                    "items": [i, i + 1],
                    "gone": null,
                },
            });
            format!("{envelope}\n")
        })
        .collect();
    ws.produce_lines("created", &lines, true);
    let config = format!(
        "{}[plugin_config.mapping]\nmeasurement = \"orders\"\ntags = [\"region\"]\nheader_tags = [\"tenant\"]\nmetadata_tags = [\"topic\", \"partition\"]\n",
        connection(&server, "shop")
    );
    ws.sink("to_gemini", &sink_library(), "created", &config);
    let (_, report) = ws.run_ok(&[]);
    assert_eq!(connector(&report, "to_gemini")["messages_out"], 300);

    let messages = ws.dump("created");
    let mut rows = server.select("shop", "SELECT * FROM orders");
    assert_eq!(rows.len(), 300, "one point per message");
    rows.sort_by_key(|row| row["order"].as_u64());
    for (i, (row, message)) in rows.iter().zip(&messages).enumerate() {
        let offset = message["offset"].as_u64().unwrap();
        assert_eq!(offset, i as u64);
        // The Iggy time (µs), plus the offset in the nanoseconds.
        let expected_time = message["timestamp"].as_u64().unwrap() * 1000 + offset % 1000;
        assert_eq!(row["time"], json!(expected_time), "row {i}");
        assert_eq!(row["region"], json!(REGIONS[i % 3]));
        assert_eq!(row["tenant"], json!("acme corp"));
        assert_eq!(row["iggy_topic"], json!("created"));
        assert_eq!(row["iggy_partition"], json!("1"));
        assert_eq!(row["amount"].as_f64(), Some(i as f64 * 1.5 + 0.25));
        assert_eq!(row["paid"], json!(i % 2 == 0));
        // Line breaks travel as the two characters `\n`.
        assert_eq!(
            row["note"],
            json!(format!("line {i}\\nnext, \"quoted\" \\ end"))
        );
        assert_eq!(row["customer_name"], json!(format!("c{i}")));
        assert_eq!(row["customer_vip"], json!(i % 5 == 0));
        assert_eq!(row["items"], json!(format!("[{i},{}]", i + 1)));
        assert!(!row.contains_key("gone"), "null fields are left out");
    }
    // Integers stay integers: an integer field rejects a float.
    let types = server.select("shop", "SHOW FIELD KEYS FROM orders");
    let type_of = |key: &str| {
        types
            .iter()
            .find(|row| row["fieldKey"] == key)
            .map(|row| row["fieldType"].clone())
    };
    assert_eq!(type_of("order"), Some(json!("integer")));
    assert_eq!(type_of("amount"), Some(json!("float")));
}

#[test]
fn payload_times_are_written_in_the_configured_precision() {
    let ws = Workspace::new();
    let server = InfluxServer::start(ws.dir.path());
    server.execute("CREATE DATABASE \"metrics\"");
    let lines: String = (0..50)
        .map(|i| {
            format!(
                "{{\"host\":\"h{}\",\"at\":{},\"cpu\":{i}.5}}\n",
                i % 2,
                1_700_000_000_000u64 + i
            )
        })
        .collect();
    ws.produce_lines("cpu", &lines, false);
    let config = format!(
        "{}precision = \"us\"\n[plugin_config.mapping]\nmeasurement = \"cpu\"\ntimestamp_field = \"at\"\ntimestamp_unit = \"ms\"\ntags = [\"host\"]\n",
        connection(&server, "metrics")
    );
    ws.sink("cpu", &sink_library(), "cpu", &config);
    ws.run_ok(&[]);
    let rows = server.select("metrics", "SELECT * FROM cpu");
    assert_eq!(rows.len(), 50);
    for row in rows {
        let cpu = row["cpu"].as_f64().unwrap();
        let i = cpu.floor() as u64;
        assert_eq!(row["time"], json!((1_700_000_000_000u64 + i) * 1_000_000));
        assert_eq!(row["host"], json!(format!("h{}", i % 2)));
        assert!(
            !row.contains_key("at"),
            "the time field is not also a field"
        );
    }
}

#[test]
fn credentials_are_checked_at_open_and_never_shown() {
    let ws = Workspace::new();
    let password = "Adm1n-pass!";
    let server = InfluxServer::start_with_auth(ws.dir.path(), "admin", password);
    server.execute("CREATE DATABASE \"secure\"");
    ws.produce("created", 40);
    for (key, scheme) in [("basic", "basic"), ("query", "query")] {
        let config = format!(
            "{}username = \"admin\"\npassword = \"{password}\"\nauth_scheme = \"{scheme}\"\n[plugin_config.mapping]\nmeasurement = \"with_{key}\"\n",
            connection(&server, "secure")
        );
        ws.sink(key, &sink_library(), "created", &config);
    }
    let (output, _) = ws.run_ok(&[]);
    assert_eq!(
        count(&server, "secure", "SELECT COUNT(seq) FROM with_basic"),
        40
    );
    assert_eq!(
        count(&server, "secure", "SELECT COUNT(seq) FROM with_query"),
        40
    );
    assert!(!stderr(&output).contains(password));

    let before = server.http_stat("authFail");
    let wrong = "Wr0ng-pass?";
    let cases = [
        format!("username = \"admin\"\npassword = \"{wrong}\"\n"),
        format!("username = \"admin\"\npassword = \"{wrong}\"\nauth_scheme = \"query\"\n"),
        String::new(),
    ];
    for (index, credentials) in cases.iter().enumerate() {
        let key = format!("refused{index}");
        let config = format!("{}{credentials}", connection(&server, "secure"));
        ws.sink(&key, &sink_library(), "created", &config);
        let (code, text) = check(&ws, &key);
        assert_eq!(code, Some(1), "case {index}: {text}");
        assert!(text.contains("answered 401"), "case {index}: {text}");
        assert!(text.contains("not retried"), "case {index}: {text}");
        assert!(!text.contains(wrong) && !text.contains(password), "{text}");
    }
    assert_eq!(
        server.http_stat("authFail") - before,
        3,
        "one login per refused open: credentials are never retried"
    );
}

#[test]
fn gzip_requests_are_written() {
    let ws = Workspace::new();
    let server = InfluxServer::start(ws.dir.path());
    server.execute("CREATE DATABASE \"packed\"");
    ws.produce("created", 500);
    let config = format!("{}gzip = true\n", connection(&server, "packed"));
    ws.sink("gzip", &sink_library(), "created", &config);
    ws.run_ok(&[]);
    assert_eq!(
        count(&server, "packed", "SELECT COUNT(seq) FROM created"),
        500
    );
    let rows = server.select("packed", "SELECT seq FROM created WHERE seq = 123");
    assert_eq!(rows.len(), 1);
}

#[test]
fn a_missing_database_is_created_when_allowed_and_named_otherwise() {
    let ws = Workspace::new();
    let server = InfluxServer::start(ws.dir.path());
    ws.produce("created", 20);
    ws.sink(
        "strict",
        &sink_library(),
        "created",
        &connection(&server, "fresh"),
    );
    let (code, text) = check(&ws, "strict");
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("database `fresh` does not take writes"),
        "{text}"
    );
    assert!(text.contains("set create_database = true"), "{text}");
    std::fs::remove_file(ws.connectors().join("strict.toml")).unwrap();

    let config = format!("{}create_database = true\n", connection(&server, "fresh"));
    ws.sink("creator", &sink_library(), "created", &config);
    let (output, _) = ws.run_ok(&[]);
    assert!(stderr(&output).contains("created database `fresh`"));
    assert_eq!(
        count(&server, "fresh", "SELECT COUNT(seq) FROM created"),
        20
    );
}

#[test]
fn a_type_conflict_is_permanent_reported_with_offsets_and_not_retried() {
    let ws = Workspace::new();
    let server = InfluxServer::start(ws.dir.path());
    server.execute("CREATE DATABASE \"typed\"");
    let lines: String = (0..10)
        .map(|i| match i {
            5 => "{\"v\":\"five\"}\n".to_string(),
            _ => format!("{{\"v\":{i}}}\n"),
        })
        .collect();
    ws.produce_lines("created", &lines, false);
    // One request per batch, so the whole batch is refused together.
    ws.sink(
        "typed",
        &sink_library(),
        "created",
        &connection(&server, "typed"),
    );
    let before = server.http_stat("writeReq");
    // Offsets committed after a successful consume, so the harness delivers
    // the refused batch again.
    let (output, report) = ws.run(&["--commit", "after-consume", "--max-attempts", "2"]);
    assert_eq!(output.status.code(), Some(1), "{report}");
    let log = stderr(&output);
    assert!(log.contains("partial write"), "{log}");
    assert!(log.contains("(offsets 0..=9) was refused"), "{log}");
    let failure = connector(&report, "typed")["failure"].as_str().unwrap();
    assert!(failure.contains("failed 2 times"), "{failure}");
    // The open probe, then one request per consume: the sink never retries a 400.
    assert_eq!(server.http_stat("writeReq") - before, 3);
    // InfluxDB keeps the points of a partial write that had no conflict.
    assert_eq!(count(&server, "typed", "SELECT COUNT(v) FROM created"), 9);
}

#[test]
fn requests_hold_at_most_batch_size_points() {
    let ws = Workspace::new();
    let server = InfluxServer::start(ws.dir.path());
    server.execute("CREATE DATABASE \"split\"");
    ws.produce("created", 250);
    let config = format!("{}batch_size = 7\n", connection(&server, "split"));
    ws.sink("split", &sink_library(), "created", &config);
    let before = server.http_stat("writeReq");
    ws.run_ok(&[]);
    assert_eq!(
        count(&server, "split", "SELECT COUNT(seq) FROM created"),
        250
    );
    // Iggy batches of 100, 100, 50: 15 + 15 + 8 requests, plus the open probe.
    assert_eq!(server.http_stat("writeReq") - before, 39);
}

#[test]
fn bodies_over_the_server_limit_are_split_after_413() {
    let ws = Workspace::new();
    let server = InfluxServer::start_with(
        ws.dir.path(),
        &InfluxOptions {
            max_body_size: Some(8192),
            ..InfluxOptions::default()
        },
    );
    server.execute("CREATE DATABASE \"small\"");
    ws.produce("created", 300);
    ws.sink(
        "halves",
        &sink_library(),
        "created",
        &connection(&server, "small"),
    );
    let before = server.http_stat("writeReq");
    let (_, report) = ws.run_ok(&[]);
    assert_eq!(
        count(&server, "small", "SELECT COUNT(seq) FROM created"),
        300
    );
    // ~13 KiB per batch of 100: 413, then two halves; plus the open probe.
    assert_eq!(server.http_stat("writeReq") - before, 10);
    assert_eq!(connector(&report, "halves")["retries"], 0);
}

#[test]
fn a_replayed_topic_overwrites_its_points_instead_of_adding_any() {
    let ws = Workspace::new();
    let server = InfluxServer::start(ws.dir.path());
    server.execute("CREATE DATABASE \"replay\"");
    ws.produce("created", 1000);
    let config = connection(&server, "replay");
    ws.sink("first", &sink_library(), "created", &config);
    // Every second batch is delivered twice, as after a crash before the commit.
    ws.run_ok(&["--fault", "redeliver-every=2"]);
    let query = "SELECT COUNT(seq) FROM created";
    assert_eq!(count(&server, "replay", query), 1000);

    // Another consumer group replays the whole topic.
    std::fs::remove_file(ws.connectors().join("first.toml")).unwrap();
    ws.sink("second", &sink_library(), "created", &config);
    let before = server.http_stat("writeReq");
    let (_, report) = ws.run_ok(&[]);
    assert_eq!(connector(&report, "second")["messages_out"], 1000);
    assert!(
        server.http_stat("writeReq") - before >= 10,
        "the replay was written"
    );
    assert_eq!(
        count(&server, "replay", query),
        1000,
        "and changed no count"
    );
    let sums = server.select("replay", "SELECT SUM(seq) FROM created");
    assert_eq!(sums[0]["sum"], json!(999 * 1000 / 2));
}

#[test]
fn text_payloads_pass_through_and_bad_records_are_reported() {
    let ws = Workspace::new();
    let server = InfluxServer::start(ws.dir.path());
    server.execute("CREATE DATABASE \"lines\"");
    // produce_lines stores each line as one message; JSON strings carry
    // the multi-line texts.
    let texts = [
        "disk,host=a used=1i 1700000000000000000",
        "disk,host=b used=2i 1700000000000000000\ndisk,host=c used=3i 1700000000000000000",
        "disk,host=d used=4u 1700000000000000000",
        "disk,host=e used=5i",
        "disk,host=f free=\"x\" 1700000000000000000\nnot a line",
    ];
    let lines: String = texts
        .iter()
        .map(|text| format!("{{\"payload\":{}}}\n", json!(text)))
        .collect();
    ws.produce_lines("raw", &lines, true);
    sink_with_schema(
        &ws,
        "text",
        "raw",
        ("text", 100),
        &connection(&server, "lines"),
    );
    let (output, _) = ws.run_ok(&[]);
    let log = stderr(&output);
    assert!(
        log.contains("offset 2 of orders/raw partition 1 is not written: line 1")
            && log.contains("unsigned"),
        "{log}"
    );
    assert!(
        log.contains("offset 4 of orders/raw partition 1 is not written: line 2"),
        "{log}"
    );
    let rows = server.select("lines", "SELECT used FROM disk GROUP BY host");
    let hosts: Vec<&str> = rows.iter().filter_map(|r| r["host"].as_str()).collect();
    assert_eq!(hosts, ["a", "b", "c", "e"]);
    let message_time = ws.dump("raw")[3]["timestamp"].as_u64().unwrap() * 1000 + 3;
    assert_eq!(
        rows[3]["time"],
        json!(message_time),
        "a line without a time gets the message's"
    );
}

#[test]
fn concurrent_lanes_keep_the_last_version_of_each_point() {
    let ws = Workspace::new();
    let server = InfluxServer::start(ws.dir.path());
    server.execute("CREATE DATABASE \"lanes\"");
    // One Iggy batch of 4000 messages: 1000 points (sensor, time), each
    // written four times with a growing value; the last version must win
    // although the batch goes out as concurrent requests.
    let lines: String = (0..4000u64)
        .map(|n| {
            let payload = json!({"sensor": n % 40, "at": 1_700_000_000_000u64 + n % 1000, "v": n});
            format!("{}\n", json!({ "payload": payload }))
        })
        .collect();
    ws.produce_lines("readings", &lines, true);
    let config = format!(
        "{}batch_size = 1000\nwrite_concurrency = 2\n[plugin_config.mapping]\nmeasurement = \"m\"\n\
         tags = [\"sensor\"]\ntimestamp_field = \"at\"\n",
        connection(&server, "lanes")
    );
    sink_with_schema(&ws, "lanes", "readings", ("json", 4000), &config);
    let before = server.http_stat("writeReq");
    let (_, report) = ws.run_ok(&[]);
    assert_eq!(connector(&report, "lanes")["messages_out"], 4000);
    let rows = server.select("lanes", "SELECT COUNT(v), MIN(v), SUM(v) FROM m");
    assert_eq!(rows[0]["count"], 1000);
    assert_eq!(rows[0]["min"], 3000, "every point holds its last version");
    assert_eq!(rows[0]["sum"], (3000..4000u64).sum::<u64>());
    // Two lanes of ~2000 points, each in requests of at most 1000.
    let requests = server.http_stat("writeReq") - before;
    assert!((5..=6).contains(&requests), "{requests} requests");
}

#[test]
fn pipelined_writes_have_every_point_written_by_close() {
    let ws = Workspace::new();
    let server = InfluxServer::start(ws.dir.path());
    server.execute("CREATE DATABASE \"piped\"");
    ws.produce("created", 1000);
    let config = format!("{}pipelined_writes = true\n", connection(&server, "piped"));
    ws.sink("piped", &sink_library(), "created", &config);
    let (_, report) = ws.run_ok(&[]);
    assert_eq!(connector(&report, "piped")["messages_out"], 1000);
    assert_eq!(
        count(&server, "piped", "SELECT COUNT(seq) FROM created"),
        1000
    );
}

#[test]
fn bad_messages_are_skipped_and_the_rest_written_when_offsets_commit_on_poll() {
    let ws = Workspace::new();
    let server = InfluxServer::start(ws.dir.path());
    server.execute("CREATE DATABASE \"mixed\"");
    let oversized = "x".repeat(1_100_000);
    let lines: String = (0..20u64)
        .map(|i| {
            let payload = match i {
                3 => json!("not json {"),
                7 => json!([1, 2, 3]),
                11 => json!({"gone": null}),
                15 => json!({ "v": i, "note": oversized }),
                _ => json!({ "v": i }),
            };
            format!("{}\n", json!({ "payload": payload }))
        })
        .collect();
    ws.produce_lines("mixed", &lines, true);
    let config = format!(
        "{}[plugin_config.mapping]\nmeasurement = \"m\"\n",
        connection(&server, "mixed")
    );
    ws.sink("mixed", &sink_library(), "mixed", &config);
    let (output, report) = ws.run_ok(&["--commit", "on-poll"]);
    let sink = connector(&report, "mixed");
    assert_eq!(sink["messages_out"], 20, "{report}");
    assert_eq!(sink["errors"], 0, "{report}");
    let log = stderr(&output);
    // The SDK leaves out what does not decode as JSON; the sink what
    // cannot be a point; each is named by partition and offset.
    assert!(
        log.contains("of orders/mixed partition 1 do not decode as json")
            && log.contains("(offsets 3;"),
        "{log}"
    );
    for (offset, reason) in [(7, "not an object"), (11, "no fields"), (15, "limit")] {
        let line = format!("offset {offset} of orders/mixed partition 1 is not written");
        assert!(
            log.lines().any(|l| l.contains(&line) && l.contains(reason)),
            "{offset}: {log}"
        );
    }
    let rows = server.select("mixed", "SELECT v FROM m");
    let written: Vec<u64> = rows.iter().filter_map(|r| r["v"].as_u64()).collect();
    let expected: Vec<u64> = (0..20).filter(|i| ![3, 7, 11, 15].contains(i)).collect();
    assert_eq!(sorted(written), expected);
}

/// Points of the outage tests: small Iggy batches, so they flow for a while
/// and an outage lands in the middle of them.
const OUTAGE_POINTS: u64 = 2000;

/// Starts a background `run` (offsets committed when polled, as runtime
/// 0.5.x does) of a sink reading `created` two messages at a time with
/// request timeout `timeout`; returns once its first points are in.
fn start_flowing(
    ws: &Workspace,
    server: &InfluxServer,
    database: &str,
    timeout: &str,
) -> BackgroundRun {
    server.execute(&format!("CREATE DATABASE \"{database}\""));
    ws.produce("created", OUTAGE_POINTS);
    let config = format!(
        "url = \"{}\"\ndatabase = \"{database}\"\ntimeout = \"{timeout}\"\n",
        server.url()
    );
    sink_with_schema(ws, "outage", "created", ("json", 2), &config);
    let run = BackgroundRun::start(ws, "700ms", &["--commit", "on-poll"]);
    let query = "SELECT COUNT(seq) FROM created";
    let first = wait_until(Duration::from_secs(20), || {
        Some(count(server, database, query)).filter(|&n| n > 0)
    })
    .expect("the sink writes within 20 s");
    assert!(
        first < OUTAGE_POINTS,
        "every point was in before the outage began: nothing to show"
    );
    run
}

/// Waits for the background run to end; its stderr, after checking that
/// every point arrived and no batch failed.
fn every_point_arrived(run: BackgroundRun, server: &InfluxServer, database: &str) -> String {
    let output = run.wait();
    let report = json_report(&output);
    assert_ran(&output, &report);
    let log = stderr(&output);
    let sink = connector(&report, "outage");
    assert_eq!(sink["errors"], 0, "no batch was given up: {report}\n{log}");
    assert_eq!(sink["messages_out"], OUTAGE_POINTS, "{report}");
    assert_eq!(
        count(server, database, "SELECT COUNT(seq) FROM created"),
        OUTAGE_POINTS,
        "{log}"
    );
    let sums = server.select(database, "SELECT SUM(seq) FROM created");
    assert_eq!(sums[0]["sum"], json!((0..OUTAGE_POINTS).sum::<u64>()));
    log
}

#[test]
fn every_point_arrives_when_the_server_is_killed_and_restarted_mid_stream() {
    let ws = Workspace::new();
    let mut server = InfluxServer::start(ws.dir.path());
    let run = start_flowing(&ws, &server, "restarted", "5s");
    server.kill();
    std::thread::sleep(Duration::from_secs(15));
    server.restart();
    let log = every_point_arrived(run, &server, "restarted");
    let endpoint = format!("outage of {}", server.url());
    assert_eq!(
        log.matches(&format!("{endpoint} began")).count(),
        1,
        "the outage is reported once: {log}"
    );
    assert!(log.contains(&format!("{endpoint} ended after")), "{log}");
    assert!(log.contains("retrying"), "each attempt is logged: {log}");
}

#[test]
fn every_point_arrives_when_the_server_freezes_mid_stream() {
    let ws = Workspace::new();
    let server = InfluxServer::start(ws.dir.path());
    // A 2 s request timeout: a frozen server accepts connections but never
    // answers, so every attempt times out; five attempts would have given
    // up after ~12 s, well inside the freeze.
    let run = start_flowing(&ws, &server, "frozen", "2s");
    signal(server.pid(), "STOP");
    std::thread::sleep(Duration::from_secs(20));
    signal(server.pid(), "CONT");
    let log = every_point_arrived(run, &server, "frozen");
    assert!(
        log.contains("timed out") || log.contains("timeout"),
        "{log}"
    );
    assert!(
        log.contains(&format!("outage of {} ended after", server.url())),
        "{log}"
    );
}

/// One Iggy batch of `count` generated JSON messages from offset `first`,
/// encoded as the runtime hands it to `consume`.
fn encoded_batch(first: u64, count: u64) -> EncodedBatch {
    let messages = (first..first + count)
        .map(|offset| StoredMessage {
            id: u128::from(offset) + 1,
            offset,
            checksum: 0,
            timestamp: 1_700_000_000_000_000 + offset,
            origin_timestamp: 0,
            headers: Vec::new(),
            payload: generated_payload(offset, 64),
        })
        .collect();
    let topic = TopicMetadata {
        stream: "orders".into(),
        topic: "created".into(),
    };
    encode_batch(&topic, 1, first + count - 1, Schema::Json, messages).expect("encodes")
}

/// Opens the sink in this process, as the runtime loads it, with its last
/// batch written in the background, and hands it one batch while the server
/// cannot answer (`outage` makes it so); how long `close` then took, and
/// its return code.
fn close_during_outage(
    api: &SinkApi,
    server: &mut InfluxServer,
    outage: impl FnOnce(&mut InfluxServer),
) -> (Duration, i32) {
    let config = json!({
        "url": server.url(),
        "database": "closing",
        "pipelined_writes": true,
    });
    let id = open_sink(api, &config.to_string()).expect("opens");
    outage(server);
    assert_eq!(
        call_consume(api, id, &encoded_batch(0, 50)),
        0,
        "handed over"
    );
    // Long enough for the write to be on its way to the server.
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    // SAFETY: plain call with the id of an open sink.
    let code = unsafe { (api.close)(id) };
    (started.elapsed(), code)
}

#[test]
fn close_is_bounded_while_the_server_cannot_answer() {
    let ws = Workspace::new();
    let mut server = InfluxServer::start(ws.dir.path());
    server.execute("CREATE DATABASE \"closing\"");
    let api = library::load(&sink_library())
        .and_then(|library| library.sink_api())
        .expect("the sink library loads");
    // A frozen server takes the request and never answers: the write would
    // retry, request timeout after request timeout, for 5 minutes.
    let (took, code) = close_during_outage(&api, &mut server, |s| signal(s.pid(), "STOP"));
    assert!(took < Duration::from_secs(10), "close took {took:?}");
    assert_eq!(code, 1, "the abandoned batch is reported");
    let log: Vec<String> = plugin_log::take().into_iter().map(|l| l.message).collect();
    assert!(
        log.iter()
            .any(|l| l.contains("abandoned") && l.contains("50 points (offsets 0..=49)")),
        "{log:#?}"
    );
    signal(server.pid(), "CONT");
    // A killed server refuses every connection: retried for 5 minutes too.
    let (took, code) = close_during_outage(&api, &mut server, InfluxServer::kill);
    assert!(took < Duration::from_secs(10), "close took {took:?}");
    assert_eq!(code, 1, "the abandoned batch is reported");
}

/// `metrics`: while a run writes, the sink serves its counters and batch
/// histograms in Prometheus' text format, labelled with the connector name
/// the config gives; the endpoint closes with the connector.
#[test]
fn metrics_are_served_while_the_sink_writes() {
    let ws = Workspace::new();
    let server = InfluxServer::start(ws.dir.path());
    ws.produce("created", 500);
    let port = process::free_port();
    let config = format!(
        "{}create_database = true\nmetrics = {{ address = \"127.0.0.1:{port}\", connector = \"orders_to_gemini\" }}\n",
        connection(&server, "shop")
    );
    ws.sink("to_gemini", &sink_library(), "created", &config);
    let written = |s: &Scrape| s.counter("opengemini_sink", "points_written", "orders_to_gemini");
    let (scrapes, report) = scrape_while_running(&ws, &[port], |s| written(&s[0]) == Some(500.0));
    let scrape = scrapes.first().expect("the endpoint answered");
    assert_eq!(written(scrape), Some(500.0), "{}", scrape.text);
    assert_eq!(connector(&report, "to_gemini")["messages_out"], 500);
    scrape.assert_batches("opengemini_sink", "orders_to_gemini", 500, true);
    assert_eq!(
        scrape.counter("opengemini_sink", "failed_batches", "orders_to_gemini"),
        Some(0.0)
    );
    assert_eq!(
        count(&server, "shop", "SELECT COUNT(seq) FROM created"),
        500
    );
}
