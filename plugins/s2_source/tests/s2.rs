//! The source against a real S2 API server (s2-lite, started per test on a
//! free loopback port), driven through the real harness binary.

use iggy_harness_test_support::process::wait_until;
use iggy_harness_test_support::s2::{S2Lite, runtime, unreachable_connection};
use iggy_harness_test_support::*;
use s2_sdk::S2Basin;
use s2_sdk::types::{
    AppendInput, AppendRecord, AppendRecordBatch, CommandRecord, CreateStreamInput, Header,
    ReadFrom, ReadInput, ReadLimits, ReadStart, ReadStop,
};
use std::path::PathBuf;
use std::time::Duration;

const BASIN: &str = "iggy-tests";

fn source_library() -> PathBuf {
    plugin("iggy_connector_s2_source")
}

/// Writes source `from_s2` into topic `in`: the server's connection, then `settings`.
fn source_from_s2(ws: &Workspace, server: &S2Lite, settings: &str) {
    let config = format!("{}{settings}", server.connection(BASIN));
    ws.source("from_s2", &source_library(), "in", &config);
}

/// Creates `stream` (if new) and appends records `{"n": from..to}` with a header.
async fn append(basin: &S2Basin, stream: &str, range: std::ops::Range<u64>) {
    let _ = basin
        .create_stream(CreateStreamInput::new(stream.parse().unwrap()))
        .await;
    let records = range.map(|n| {
        AppendRecord::new(format!("{{\"n\":{n}}}"))
            .unwrap()
            .with_headers([Header::new("origin", "test")])
            .unwrap()
    });
    let batch = AppendRecordBatch::try_from_iter(records).unwrap();
    basin
        .stream(stream.parse().unwrap())
        .append(AppendInput::new(batch))
        .await
        .unwrap();
}

/// The `n` of each message in the topic, in order.
fn numbers(ws: &Workspace, topic: &str) -> Vec<u64> {
    ws.dump(topic)
        .iter()
        .map(|m| m["payload"]["n"].as_u64().unwrap_or_else(|| panic!("{m}")))
        .collect()
}

/// The distinct `n` of the messages, sorted; a repeated record must come
/// with the id it had the first time.
fn distinct_numbers(messages: &[serde_json::Value]) -> Vec<u64> {
    let mut by_id = std::collections::BTreeMap::new();
    for message in messages {
        let n = message["payload"]["n"].as_u64().unwrap();
        let id = message["id"].as_str().unwrap().to_string();
        assert_eq!(*by_id.entry(id).or_insert(n), n, "one id, one record");
    }
    let mut unique: Vec<u64> = by_id.into_values().collect();
    unique.sort_unstable();
    unique
}

/// Runs the source into topic `in` in the background; returns once it has
/// saved its first state (read something).
fn run_until_state_is_saved(ws: &Workspace, config: &str, idle: &str) -> BackgroundRun {
    ws.source("from_s2", &source_library(), "in", config);
    let state = ws.path("state").join("source_from_s2.state");
    let run = BackgroundRun::start(ws, idle, &[]);
    let saved = wait_until(Duration::from_secs(60), || state.is_file().then_some(()));
    assert!(saved.is_some(), "no state was saved");
    run
}

#[test]
fn sink_then_source_round_trip_keeps_bodies_and_headers() {
    let ws = Workspace::new();
    let server = S2Lite::start(ws.dir.path(), &[BASIN]);
    let lines: String = (0..300)
        .map(|n| format!("{{\"headers\":{{\"region\":\"eu\"}},\"payload\":{{\"n\":{n}}}}}\n"))
        .collect();
    ws.produce_lines("out", &lines, true);
    let sink = format!(
        "{}stream = \"round-trip\"\n[plugin_config.create_stream]",
        server.connection(BASIN)
    );
    ws.sink("to_s2", &plugin("iggy_connector_s2_sink"), "out", &sink);
    ws.run_ok(&[]);
    std::fs::remove_file(ws.connectors().join("to_s2.toml")).unwrap();
    let source = format!(
        "{}streams = [\"round-trip\"]\nschema = \"json\"",
        server.connection(BASIN)
    );
    ws.source("from_s2", &source_library(), "back", &source);
    ws.run_ok(&[]);

    let messages = ws.dump("back");
    assert_eq!(messages.len(), 300);
    for (n, message) in messages.iter().enumerate() {
        assert_eq!(message["payload"]["n"], n as u64);
        let headers = &message["headers"];
        assert_eq!(headers["region"], "string: eu", "{message}");
        assert_eq!(headers["s2-stream"], "string: round-trip", "{message}");
        assert_eq!(headers["s2-seq-num"], format!("uint64: {n}"));
        assert_eq!(
            headers["@iggy-position"],
            format!("string: orders/out/1@{n}")
        );
        assert!(headers.get("s2-timestamp").is_some(), "{message}");
    }
}

#[test]
fn start_behaviours_earliest_latest_seq_num_and_timestamp() {
    let ws = Workspace::new();
    let server = S2Lite::start(ws.dir.path(), &[BASIN]);
    let rt = runtime();
    let basin = server.basin_client(&rt, BASIN);
    rt.block_on(append(&basin, "starts", 0..10));
    std::thread::sleep(Duration::from_millis(50));
    let middle = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    std::thread::sleep(Duration::from_millis(50));
    rt.block_on(append(&basin, "starts", 10..15));
    let starts = [
        ("earliest", "\"earliest\"", (0..15).collect::<Vec<u64>>()),
        ("latest", "\"latest\"", vec![]),
        ("seq", "{ seq_num = 12 }", (12..15).collect()),
        (
            "time",
            &format!("{{ timestamp = {middle} }}"),
            (10..15).collect(),
        ),
    ];
    for (key, start, _) in &starts {
        let config = format!(
            "{}streams = [\"starts\"]\nschema = \"json\"\nstart = {start}",
            server.connection(BASIN)
        );
        ws.source(key, &source_library(), key, &config);
    }
    ws.run_ok(&[]);
    for (key, _, expected) in &starts {
        assert_eq!(&numbers(&ws, key), expected, "start {key}");
    }
    // `latest` fixed its position at the first run: what came after is read.
    rt.block_on(append(&basin, "starts", 15..18));
    ws.run_ok(&[]);
    assert_eq!(numbers(&ws, "latest"), vec![15, 16, 17]);
    assert_eq!(numbers(&ws, "seq"), (12..18).collect::<Vec<_>>());
}

#[test]
fn resumes_from_state_without_loss_or_repeat_through_nacks_and_failed_saves() {
    let ws = Workspace::new();
    let server = S2Lite::start(ws.dir.path(), &[BASIN]);
    let rt = runtime();
    let basin = server.basin_client(&rt, BASIN);
    for chunk in 0..5 {
        rt.block_on(append(&basin, "resume", chunk * 100..(chunk + 1) * 100));
    }
    source_from_s2(
        &ws,
        &server,
        "streams = [\"resume\"]\nschema = \"json\"\nbatch_size = 70",
    );
    ws.run_ok(&["--fault", "nack-every=3"]);
    assert_eq!(numbers(&ws, "in"), (0..500).collect::<Vec<_>>());
    // A restart resumes from the saved state.
    rt.block_on(append(&basin, "resume", 500..650));
    ws.run_ok(&[]);
    assert_eq!(numbers(&ws, "in"), (0..650).collect::<Vec<_>>());
}

#[test]
fn a_batch_larger_than_one_read_gathers_several_in_order() {
    let ws = Workspace::new();
    let server = S2Lite::start(ws.dir.path(), &[BASIN]);
    let rt = runtime();
    let basin = server.basin_client(&rt, BASIN);
    // S2 returns at most 1000 records per read.
    for chunk in 0..3 {
        rt.block_on(append(&basin, "large", chunk * 1000..(chunk + 1) * 1000));
    }
    source_from_s2(
        &ws,
        &server,
        "streams = [\"large\"]\nschema = \"json\"\nbatch_size = 5000\nbuffer_bytes = 4194304",
    );
    // The delayed answer gives the session time to read everything ahead of
    // the second poll, which then takes more than one read's worth.
    let (_, report) = ws.run_ok(&["--fault", "delay-result=300ms"]);
    assert_eq!(numbers(&ws, "in"), (0..3000).collect::<Vec<_>>());
    let batches = connector(&report, "from_s2")["batches"].as_u64().unwrap();
    assert!(
        (1..3).contains(&batches),
        "3000 records in reads of at most 1000 came in {batches} batches"
    );
}

#[test]
fn a_batch_stored_but_not_saved_comes_again_with_the_same_ids() {
    let ws = Workspace::new();
    let server = S2Lite::start(ws.dir.path(), &[BASIN]);
    let rt = runtime();
    let basin = server.basin_client(&rt, BASIN);
    rt.block_on(append(&basin, "resave", 0..300));
    source_from_s2(
        &ws,
        &server,
        "streams = [\"resave\"]\nschema = \"json\"\nbatch_size = 70",
    );
    ws.run_ok(&["--fault", "fail-state-save-every=2"]);
    // At least once (the runtime stored the batch, then Nacked it), and each
    // repeat carries the same message id, for Iggy's deduplication.
    assert_eq!(
        distinct_numbers(&ws.dump("in")),
        (0..300).collect::<Vec<_>>()
    );
}

#[test]
fn a_prefix_picks_up_new_streams_while_running() {
    let ws = Workspace::new();
    let server = S2Lite::start(ws.dir.path(), &[BASIN]);
    let rt = runtime();
    let basin = server.basin_client(&rt, BASIN);
    rt.block_on(append(&basin, "disc-a", 0..5));
    rt.block_on(append(&basin, "other", 100..105));
    source_from_s2(
        &ws,
        &server,
        "stream_prefix = \"disc-\"\ndiscovery_interval = \"300ms\"\nschema = \"json\"",
    );
    let running = BackgroundRun::start(&ws, "4s", &[]);
    std::thread::sleep(Duration::from_millis(1500));
    rt.block_on(append(&basin, "disc-b", 10..13));
    let output = running.wait();
    assert!(output.status.success(), "{}", stderr(&output));
    let mut seen = numbers(&ws, "in");
    seen.sort_unstable();
    assert_eq!(seen, vec![0, 1, 2, 3, 4, 10, 11, 12]);
}

#[test]
fn stream_starts_override_start_per_stream() {
    let ws = Workspace::new();
    let server = S2Lite::start(ws.dir.path(), &[BASIN]);
    let rt = runtime();
    let basin = server.basin_client(&rt, BASIN);
    rt.block_on(append(&basin, "per-a", 0..10));
    rt.block_on(append(&basin, "per-b", 100..110));
    rt.block_on(append(&basin, "per-c", 200..210));
    let config = format!(
        "{}streams = [\"per-a\", \"per-b\", \"per-c\"]\nschema = \"json\"\nstart = \"latest\"\n\
         [plugin_config.stream_starts]\n\"per-b\" = \"earliest\"\n\"per-c\" = {{ seq_num = 7 }}",
        server.connection(BASIN)
    );
    ws.source("from_s2", &source_library(), "in", &config);
    ws.run_ok(&[]);
    let mut seen = numbers(&ws, "in");
    seen.sort_unstable();
    let expected: Vec<u64> = (100..110).chain(207..210).collect();
    assert_eq!(seen, expected, "per-a starts at its tail (latest)");
}

#[test]
fn a_harness_killed_mid_run_resumes_from_its_state() {
    const TOTAL: u64 = 20_000;
    const BATCH: usize = 100;
    let ws = Workspace::new();
    let server = S2Lite::start(ws.dir.path(), &[BASIN]);
    let rt = runtime();
    let basin = server.basin_client(&rt, BASIN);
    for chunk in 0..TOTAL / 1000 {
        rt.block_on(append(&basin, "crash", chunk * 1000..(chunk + 1) * 1000));
    }
    let config = format!(
        "{}streams = [\"crash\"]\nschema = \"json\"\nbatch_size = {BATCH}",
        server.connection(BASIN)
    );
    run_until_state_is_saved(&ws, &config, "700ms").kill();
    let at_kill = ws.dump("in").len() as u64;
    assert!(
        at_kill < TOTAL,
        "killed mid-run: {at_kill} of {TOTAL} stored"
    );

    ws.run_ok(&[]);
    // Nothing lost, nothing repeated but (at most) the one batch the kill
    // caught between its storage and its state save, with the same ids.
    let messages = ws.dump("in");
    let unique = distinct_numbers(&messages);
    assert_eq!(unique, (0..TOTAL).collect::<Vec<_>>());
    let repeats = messages.len() - unique.len();
    assert!(repeats <= BATCH, "{repeats} records came twice");
}

#[test]
fn a_read_session_cut_by_a_server_restart_is_opened_again_without_loss_or_repeat() {
    let ws = Workspace::new();
    let mut server = S2Lite::start_on_disk(ws.dir.path(), &[BASIN]);
    let rt = runtime();
    rt.block_on(append(&server.basin_client(&rt, BASIN), "cut", 0..100));
    // No SDK retries: the cut reaches the source, which opens the session again.
    let config = format!(
        "{}max_retries = 0\nstreams = [\"cut\"]\nschema = \"json\"\nbatch_size = 30",
        server.connection(BASIN)
    );
    let running = run_until_state_is_saved(&ws, &config, "4s");
    server.restart();
    // A new client: the old one's connection went with the server.
    rt.block_on(append(&server.basin_client(&rt, BASIN), "cut", 100..200));
    let output = running.wait();
    let log = stderr(&output);
    assert!(output.status.success(), "{log}");
    assert_eq!(numbers(&ws, "in"), (0..200).collect::<Vec<_>>());
    assert!(log.contains("cannot read stream `cut`"), "{log}");
}

#[test]
fn a_gap_left_by_a_trim_is_reported_not_hidden() {
    let ws = Workspace::new();
    let server = S2Lite::start(ws.dir.path(), &[BASIN]);
    let rt = runtime();
    let basin = server.basin_client(&rt, BASIN);
    rt.block_on(append(&basin, "trimmed", 0..100));
    source_from_s2(&ws, &server, "streams = [\"trimmed\"]\nschema = \"json\"");
    ws.run_ok(&[]);
    assert_eq!(numbers(&ws, "in"), (0..100).collect::<Vec<_>>());

    // Written and trimmed away while the source is not running.
    rt.block_on(append(&basin, "trimmed", 100..300));
    let stream = basin.stream("trimmed".parse().unwrap());
    let trim =
        AppendRecordBatch::try_from_iter([AppendRecord::from(CommandRecord::trim(250))]).unwrap();
    rt.block_on(stream.append(AppendInput::new(trim))).unwrap();
    // S2 trims eventually: wait until a read from the start begins at 250.
    let first_readable = || {
        let input = ReadInput::new()
            .with_start(ReadStart::new().with_from(ReadFrom::SeqNum(0)))
            .with_stop(ReadStop::new().with_limits(ReadLimits::new().with_count(1)));
        let batch = rt.block_on(stream.read(input)).ok()?;
        batch
            .records
            .first()
            .map(|r| r.seq_num)
            .filter(|&s| s >= 250)
    };
    assert_eq!(
        wait_until(Duration::from_secs(60), first_readable),
        Some(250)
    );

    let (output, _) = ws.run_ok(&[]);
    let expected: Vec<u64> = (0..100).chain(250..300).collect();
    assert_eq!(numbers(&ws, "in"), expected);
    let log = stderr(&output);
    assert!(
        log.contains("stream `trimmed` jumped") && log.contains("records 100..250 were trimmed"),
        "{log}"
    );
    assert!(log.contains("gaps=1 gap_records=150"), "{log}");
}

#[test]
fn bad_config_missing_stream_and_unreachable_endpoint_are_clear_errors() {
    let ws = Workspace::new();
    let server = S2Lite::start(ws.dir.path(), &[BASIN]);
    let dead_port = process::free_port();
    let cases = [
        (
            format!(
                "{}streams = [\"s\"]",
                unreachable_connection(dead_port, BASIN, "secret-token-9")
            ),
            format!("at http://127.0.0.1:{dead_port}"),
        ),
        (
            format!("{}streams = [\"absent\"]", server.connection(BASIN)),
            "absent".to_string(),
        ),
        (
            format!(
                "{}streams = [\"s\"]\nstart = \"middle\"",
                server.connection(BASIN)
            ),
            "middle".to_string(),
        ),
        (
            format!(
                "{}streams = [\"s\"]\nstream_prefix = \"x\"",
                server.connection(BASIN)
            ),
            "not both".to_string(),
        ),
        (
            format!(
                "{}streams = [\"s\"]\n[plugin_config.stream_starts]\nt = \"latest\"",
                server.connection(BASIN)
            ),
            "stream_starts: `t` is not one of the streams read".to_string(),
        ),
    ];
    ws.assert_each_refused(&cases, &["secret-token-9"], |key, config| {
        ws.source(key, &source_library(), "in", config);
    });
}

#[test]
fn records_the_runtime_would_refuse_are_skipped_or_wrapped_and_counted() {
    let ws = Workspace::new();
    let server = S2Lite::start(ws.dir.path(), &[BASIN]);
    let rt = runtime();
    let basin = server.basin_client(&rt, BASIN);
    rt.block_on(append(&basin, "mixed", 0..2));
    // Not JSON, then an empty body: under `schema = "json"` a 0.5.x runtime
    // would refuse the whole batch for either one.
    let bad = [
        AppendRecord::new("not json").unwrap(),
        AppendRecord::new("").unwrap(),
    ];
    let batch = AppendRecordBatch::try_from_iter(bad).unwrap();
    let stream = basin.stream("mixed".parse().unwrap());
    rt.block_on(stream.append(AppendInput::new(batch))).unwrap();
    rt.block_on(append(&basin, "mixed", 4..6));
    for policy in ["skip", "wrap"] {
        let config = format!(
            "{}streams = [\"mixed\"]\nschema = \"json\"\ninvalid_messages = \"{policy}\"",
            server.connection(BASIN)
        );
        ws.source(policy, &source_library(), policy, &config);
    }
    let (output, report) = ws.run_ok(&[]);
    let log = stderr(&output);

    assert_eq!(numbers(&ws, "skip"), vec![0, 1, 4, 5]);
    for seq_num in [2, 3] {
        assert!(
            log.contains(&format!(
                "(stream `mixed` seq_num {seq_num}): the runtime would refuse"
            )),
            "{log}"
        );
    }
    assert!(log.contains("skipped=2 wrapped=0"), "{log}");

    let wrapped: Vec<serde_json::Value> = ws
        .dump("wrap")
        .into_iter()
        .map(|m| m["payload"].clone())
        .collect();
    let expected = [
        serde_json::json!({"n": 0}),
        serde_json::json!({"n": 1}),
        serde_json::json!({"invalid_payload_text": "not json"}),
        serde_json::json!({"n": 4}),
        serde_json::json!({"n": 5}),
    ];
    assert_eq!(wrapped, expected, "the empty body cannot be wrapped");
    assert!(log.contains("skipped=1 wrapped=1"), "{log}");
    for key in ["skip", "wrap"] {
        assert_eq!(connector(&report, key)["refused"], 0, "{report}");
        assert_eq!(connector(&report, key)["nacks"], 0, "{report}");
    }
}

#[test]
fn close_returns_soon_with_s2_lite_killed_under_a_running_source() {
    const RUN: Duration = Duration::from_secs(5);
    let ws = Workspace::new();
    let mut server = S2Lite::start(ws.dir.path(), &[BASIN]);
    let rt = runtime();
    let basin = server.basin_client(&rt, BASIN);
    rt.block_on(append(&basin, "gone-a", 0..100));
    // Listing a prefix every 300 ms: polls keep asking the dead server.
    source_from_s2(
        &ws,
        &server,
        "stream_prefix = \"gone-\"\ndiscovery_interval = \"300ms\"\nschema = \"json\"",
    );
    let state = ws.path("state").join("source_from_s2.state");
    let started = std::time::Instant::now();
    let mut run = BackgroundRun::ending(&ws, &["--duration", "5s"]);
    let read = wait_until(Duration::from_secs(20), || state.is_file().then_some(()));
    server.kill();
    assert!(read.is_some(), "the source never saved a state");
    let ended = run.exit_within(std::time::Instant::now(), RUN + Duration::from_secs(20));
    let elapsed = started.elapsed();
    let output = run.wait();
    let log = stderr(&output);
    assert!(ended.is_some(), "still running after {elapsed:?}: {log}");
    // Stopped at 5 s; closing (and the worker's wait) within 10 s of it.
    assert!(
        elapsed < RUN + Duration::from_secs(10),
        "ended {elapsed:?} after the start: {log}"
    );
    let report = json_report(&output);
    // `error` if close returned non-zero.
    assert_eq!(
        connector(&report, "from_s2")["status"],
        "running",
        "{report}"
    );
}

/// `metrics` on both S2 plugins against s2-lite: the sink's endpoint is
/// scraped while it appends, then the source's while it reads the records
/// back, each labelled with the connector name its config gives.
#[test]
fn both_plugins_serve_their_counters_while_records_flow() {
    use iggy_harness_test_support::metrics::scrape_while_running;
    let ws = Workspace::new();
    let server = S2Lite::start(ws.dir.path(), &[BASIN]);
    ws.produce("out", 300);
    let port = process::free_port();
    let sink = format!(
        "{}stream = \"metered\"\nmetrics = {{ address = {port}, connector = \"to_s2\" }}\n\
         [plugin_config.create_stream]",
        server.connection(BASIN)
    );
    ws.sink("to_s2", &plugin("iggy_connector_s2_sink"), "out", &sink);
    let (scrapes, report) = scrape_while_running(&ws, &[port], |s| {
        s[0].counter("s2_sink", "appended", "to_s2") == Some(300.0)
    });
    let sink = scrapes.first().expect("the sink's endpoint answered");
    assert_eq!(
        sink.counter("s2_sink", "appended", "to_s2"),
        Some(300.0),
        "{}",
        sink.text
    );
    assert_eq!(
        sink.counter("s2_sink", "failed_batches", "to_s2"),
        Some(0.0)
    );
    sink.assert_batches("s2_sink", "to_s2", 300, true);
    assert_eq!(connector(&report, "to_s2")["messages_out"], 300);

    std::fs::remove_file(ws.connectors().join("to_s2.toml")).unwrap();
    let port = process::free_port();
    let source = format!(
        "{}streams = [\"metered\"]\nschema = \"json\"\nmetrics = {{ address = {port}, connector = \"from_s2\" }}",
        server.connection(BASIN)
    );
    ws.source("from_s2", &source_library(), "back", &source);
    let (scrapes, report) = scrape_while_running(&ws, &[port], |s| {
        s[0].counter("s2_source", "records", "from_s2") == Some(300.0)
    });
    let source = scrapes.first().expect("the source's endpoint answered");
    assert_eq!(
        source.counter("s2_source", "records", "from_s2"),
        Some(300.0),
        "{}",
        source.text
    );
    source.assert_batches("s2_source", "from_s2", 300, false);
    assert_eq!(connector(&report, "from_s2")["messages_out"], 300);
    assert_eq!(ws.dump("back").len(), 300);
}
