//! The sink against a real S2 API server (s2-lite, started per test on a free
//! loopback port), driven through the real harness binary.

use iggy_harness_test_support::process::{signal, wait_until};
use iggy_harness_test_support::s2::{S2Lite, runtime, unreachable_connection};
use iggy_harness_test_support::*;
use s2_sdk::S2Basin;
use s2_sdk::error::{AppendConditionFailed, AppendError};
use s2_sdk::types::{
    AppendInput, AppendRecord, AppendRecordBatch, FencingToken, ReadFrom, ReadInput, ReadStart,
    RetentionPolicy, SequencedRecord,
};
use std::path::PathBuf;
use std::time::Duration;

const BASIN: &str = "iggy-tests";

fn sink_library() -> PathBuf {
    plugin("iggy_connector_s2_sink")
}

/// Writes sink `to_s2` over topic `created`: the server's connection, then `settings`.
fn sink_to_s2(ws: &Workspace, server: &S2Lite, settings: &str) {
    let config = format!("{}{settings}", server.connection(BASIN));
    ws.sink("to_s2", &sink_library(), "created", &config);
}

/// Every record of the stream, command records included.
async fn read_all(basin: &S2Basin, stream: &str) -> Vec<SequencedRecord> {
    let stream = basin.stream(stream.parse().unwrap());
    let tail = stream.check_tail().await.unwrap().seq_num;
    let mut records = Vec::new();
    while (records.len() as u64) < tail {
        let input = ReadInput::new()
            .with_start(ReadStart::new().with_from(ReadFrom::SeqNum(records.len() as u64)));
        records.extend(stream.read(input).await.unwrap().records);
    }
    records
}

/// The data records (not fence or trim commands).
async fn data_records(basin: &S2Basin, stream: &str) -> Vec<SequencedRecord> {
    read_all(basin, stream)
        .await
        .into_iter()
        .filter(|r| !r.is_command_record())
        .collect()
}

/// The stream's tail, 0 while it does not exist yet.
fn tail(rt: &tokio::runtime::Runtime, basin: &S2Basin, stream: &str) -> u64 {
    rt.block_on(basin.stream(stream.parse().unwrap()).check_tail())
        .map_or(0, |p| p.seq_num)
}

/// The `@iggy-position` of each data record, in stream order.
fn positions(rt: &tokio::runtime::Runtime, basin: &S2Basin, stream: &str) -> Vec<String> {
    rt.block_on(data_records(basin, stream))
        .iter()
        .filter_map(|r| header(r, "@iggy-position"))
        .collect()
}

/// A background run, once the sink has appended 1000 records to `stream`.
fn run_until_appended(
    ws: &Workspace,
    extra: &[&str],
    rt: &tokio::runtime::Runtime,
    basin: &S2Basin,
    stream: &str,
) -> BackgroundRun {
    let run = BackgroundRun::start(ws, "700ms", extra);
    let appended = wait_until(Duration::from_secs(60), || {
        (tail(rt, basin, stream) >= 1000).then_some(())
    });
    assert!(appended.is_some(), "the sink never appended 1000 records");
    run
}

fn offsets(range: std::ops::Range<u64>) -> Vec<String> {
    range.map(|o| format!("orders/created/1@{o}")).collect()
}

fn header(record: &SequencedRecord, name: &str) -> Option<String> {
    record
        .headers
        .iter()
        .find(|h| h.name.as_ref() == name.as_bytes())
        .map(|h| String::from_utf8_lossy(&h.value).into_owned())
}

fn body_seq(record: &SequencedRecord) -> u64 {
    let value: serde_json::Value = serde_json::from_slice(&record.body).unwrap();
    value["seq"].as_u64().unwrap()
}

#[test]
fn batches_arrive_in_order_with_headers_and_positions() {
    let ws = Workspace::new();
    let server = S2Lite::start(ws.dir.path(), &[BASIN]);
    let lines: String = (0..2500)
        .map(|i| format!("{{\"headers\":{{\"source\":\"web\"}},\"payload\":{{\"seq\":{i}}}}}\n"))
        .collect();
    ws.produce_lines("created", &lines, true);
    sink_to_s2(
        &ws,
        &server,
        "stream = \"iggy-{topic}\"\n[plugin_config.create_stream]\nretention = \"7d\"",
    );
    ws.run_ok(&[]);

    let rt = runtime();
    let basin = server.basin_client(&rt, BASIN);
    let records = rt.block_on(data_records(&basin, "iggy-created"));
    assert_eq!(records.len(), 2500);
    for (offset, record) in records.iter().enumerate() {
        assert_eq!(body_seq(record), offset as u64);
        assert_eq!(header(record, "source").as_deref(), Some("web"));
        assert_eq!(
            header(record, "@iggy-position"),
            Some(format!("orders/created/1@{offset}"))
        );
    }
    let config = rt
        .block_on(basin.get_stream_config("iggy-created".parse().unwrap()))
        .unwrap();
    assert_eq!(
        config.retention_policy,
        Some(RetentionPolicy::Age(7 * 86400))
    );
}

#[test]
fn redelivered_batches_and_a_replayed_topic_leave_no_duplicates() {
    let ws = Workspace::new();
    let server = S2Lite::start(ws.dir.path(), &[BASIN]);
    ws.produce("created", 1000);
    let config = format!(
        "{}stream = \"orders\"\nretry_policy = \"all\"\n[plugin_config.create_stream]",
        server.connection(BASIN)
    );
    ws.sink("first", &sink_library(), "created", &config);
    ws.run_ok(&["--fault", "redeliver-every=2"]);
    // Half the topic again, then a second sink (another consumer group, a
    // fresh process that knows nothing) replays the whole topic.
    ws.produce("created", 500);
    std::fs::remove_file(ws.connectors().join("first.toml")).unwrap();
    ws.sink("second", &sink_library(), "created", &config);
    let (_, report) = ws.run_ok(&[]);
    assert_eq!(connector(&report, "second")["messages_out"], 1500);

    let rt = runtime();
    let records = rt.block_on(data_records(&server.basin_client(&rt, BASIN), "orders"));
    // `produce --generate` numbers each call's payloads from 0: the offsets tell.
    let offsets: Vec<String> = records
        .iter()
        .map(|r| header(r, "@iggy-position").unwrap())
        .collect();
    let expected: Vec<String> = (0..1500).map(|o| format!("orders/created/1@{o}")).collect();
    assert_eq!(offsets, expected, "no duplicates, no gaps");
}

#[test]
fn a_fenced_stream_refuses_a_second_writer() {
    let ws = Workspace::new();
    let server = S2Lite::start(ws.dir.path(), &[BASIN]);
    ws.produce("created", 100);
    sink_to_s2(
        &ws,
        &server,
        "stream = \"fenced\"\nfence = true\nfencing_token = \"sink-a\"\n[plugin_config.create_stream]",
    );
    ws.run_ok(&[]);

    let rt = runtime();
    let basin = server.basin_client(&rt, BASIN);
    let all = rt.block_on(read_all(&basin, "fenced"));
    assert!(all[0].is_command_record(), "the fence comes first");
    assert_eq!(all.len(), 101);
    let intruder = rt.block_on(async {
        let batch =
            AppendRecordBatch::try_from_iter([AppendRecord::new("intruder").unwrap()]).unwrap();
        basin
            .stream("fenced".parse().unwrap())
            .append(
                AppendInput::new(batch)
                    .with_fencing_token("intruder".parse::<FencingToken>().unwrap()),
            )
            .await
    });
    assert!(
        matches!(
            intruder,
            Err(AppendError::ConditionFailed(
                AppendConditionFailed::FencingTokenMismatch(_)
            ))
        ),
        "{intruder:?}"
    );
    assert_eq!(rt.block_on(read_all(&basin, "fenced")).len(), 101);
}

#[test]
fn upsert_mode_writes_key_and_action_headers() {
    let ws = Workspace::new();
    let server = S2Lite::start(ws.dir.path(), &[BASIN]);
    let lines = [
        r#"{"id":1,"name":"a","op":"insert"}"#,
        r#"{"id":1,"name":"b","op":"update"}"#,
        r#"{"id":1,"op":"delete"}"#,
        r#"{"id":2,"name":"c","op":"c"}"#,
        r#"{"id":2,"name":"d","op":"u"}"#,
        r#"{"id":2,"op":"d"}"#,
    ]
    .join("\n");
    ws.produce_lines("changes", &lines, false);
    let config = format!(
        "{}stream = \"table\"\n[plugin_config.create_stream]\n[plugin_config.upsert]\nkey_fields = [\"id\"]\naction_field = \"op\"",
        server.connection(BASIN)
    );
    ws.sink("upsert", &sink_library(), "changes", &config);
    ws.run_ok(&[]);

    let rt = runtime();
    let records = rt.block_on(data_records(&server.basin_client(&rt, BASIN), "table"));
    let seen: Vec<(String, String)> = records
        .iter()
        .map(|r| (header(r, "@key").unwrap(), header(r, "@action").unwrap()))
        .collect();
    let expected = [
        (r#"{"id":1}"#, "u"),
        (r#"{"id":1}"#, "u"),
        (r#"{"id":1}"#, "d"),
        (r#"{"id":2}"#, "u"),
        (r#"{"id":2}"#, "u"),
        (r#"{"id":2}"#, "d"),
    ];
    let expected: Vec<(String, String)> = expected
        .iter()
        .map(|(k, a)| (k.to_string(), a.to_string()))
        .collect();
    assert_eq!(seen, expected);
    let row: serde_json::Value = serde_json::from_slice(&records[1].body).unwrap();
    assert_eq!(row["name"], "b", "the body is the row");
}

#[test]
fn bad_config_missing_stream_and_unreachable_endpoint_are_clear_errors() {
    let ws = Workspace::new();
    let server = S2Lite::start(ws.dir.path(), &[BASIN]);
    let dead_port = process::free_port();
    let cases = [
        (
            format!(
                "{}stream = \"s\"",
                unreachable_connection(dead_port, BASIN, "secret-token-9")
            ),
            format!("at http://127.0.0.1:{dead_port}"),
        ),
        (
            format!("{}stream = \"absent\"", server.connection(BASIN)),
            "stream `absent` does not exist".to_string(),
        ),
        (
            format!("{}stream = \"s\"\nstram = \"t\"", server.connection(BASIN)),
            "unknown setting `stram`".to_string(),
        ),
        (
            format!(
                "{}stream = \"s\"\nretry_policy = \"sometimes\"",
                server.connection(BASIN)
            ),
            "sometimes".to_string(),
        ),
        (
            format!("{}stream = \"{{nope}}\"", server.connection(BASIN)),
            "unknown placeholder".to_string(),
        ),
    ];
    ws.assert_each_refused(&cases, &["secret-token-9"], |key, config| {
        ws.sink(key, &sink_library(), "created", config);
    });
}

#[test]
fn a_harness_killed_mid_run_and_restarted_leaves_every_message_once() {
    const TOTAL: u64 = 20_000;
    let ws = Workspace::new();
    let server = S2Lite::start(ws.dir.path(), &[BASIN]);
    ws.produce("created", TOTAL);
    sink_to_s2(
        &ws,
        &server,
        "stream = \"crash\"\n[plugin_config.create_stream]",
    );
    let rt = runtime();
    let basin = server.basin_client(&rt, BASIN);

    // Committed after `consume`: with offsets committed on poll (as the
    // 0.4/0.5 runtime does) the batch in flight at the kill is lost.
    let after_consume = ["--commit", "after-consume"];
    run_until_appended(&ws, &after_consume, &rt, &basin, "crash").kill();
    let at_kill = tail(&rt, &basin, "crash");
    assert!(
        at_kill < TOTAL,
        "killed mid-run: {at_kill} of {TOTAL} appended"
    );

    // Uncommitted batches come again; the sink learns what landed and skips it.
    ws.run_ok(&after_consume);
    assert_eq!(positions(&rt, &basin, "crash"), offsets(0..TOTAL));
}

#[test]
fn s2_lite_killed_mid_append_fails_the_batch_and_a_restart_on_its_data_leaves_no_duplicates() {
    const TOTAL: u64 = 20_000;
    let ws = Workspace::new();
    let mut server = S2Lite::start_on_disk(ws.dir.path(), &[BASIN]);
    ws.produce("created", TOTAL);
    sink_to_s2(
        &ws,
        &server,
        "stream = \"outage\"\nmax_retries = 1\nretry_policy = \"all\"\n[plugin_config.create_stream]\n[plugin_config.retry]\nmax_elapsed = \"1s\"",
    );
    let rt = runtime();
    let basin = server.basin_client(&rt, BASIN);

    // A retry deadline of 1 s and two attempts per batch in the harness,
    // which commits only after a batch is written: with s2-lite gone the
    // sink gives up, the run ends, and the batch comes again next run.
    let extra = ["--commit", "after-consume", "--max-attempts", "2"];
    let run = run_until_appended(&ws, &extra, &rt, &basin, "outage");
    server.kill();
    let output = run.wait();
    let report = json_report(&output);
    let first = connector(&report, "to_s2");
    assert!(
        first["errors"].as_u64().unwrap() >= 1,
        "consume failed: {report}"
    );
    assert!(
        first["messages_out"].as_u64().unwrap() < TOTAL,
        "stopped mid-run: {report}"
    );

    server.restart();
    let basin = server.basin_client(&rt, BASIN);
    ws.run_ok(&[]);
    assert_eq!(positions(&rt, &basin, "outage"), offsets(0..TOTAL));
}

#[test]
fn the_first_read_back_stops_at_its_bound() {
    let ws = Workspace::new();
    let server = S2Lite::start(ws.dir.path(), &[BASIN]);
    ws.produce("created", 100);
    let rt = runtime();
    let basin = server.basin_client(&rt, BASIN);
    let sink = |key: &str, read_back: &str| {
        let config = format!(
            "{}stream = \"shared\"\n[plugin_config.create_stream]\n{read_back}",
            server.connection(BASIN)
        );
        ws.sink(key, &sink_library(), "created", &config);
    };
    sink("first", "");
    ws.run_ok(&[]);
    // Another writer buries those records under 3000 of its own.
    let stream = basin.stream("shared".parse().unwrap());
    for _ in 0..3 {
        let records = (0..1000).map(|n| AppendRecord::new(format!("other {n}")).unwrap());
        let batch = AppendRecordBatch::try_from_iter(records).unwrap();
        rt.block_on(stream.append(AppendInput::new(batch))).unwrap();
    }
    let replay = |key: &str, read_back: &str| {
        for old in std::fs::read_dir(ws.connectors()).unwrap() {
            std::fs::remove_file(old.unwrap().path()).unwrap();
        }
        sink(key, read_back);
        let (output, _) = ws.run_ok(&[]);
        stderr(&output)
    };

    // A replay (a new consumer group) reading back only 1000 records does
    // not reach the partition's records: it takes them as never written.
    let log = replay("bounded", "[plugin_config.read_back]\nrecords = 1000");
    assert!(log.contains("the `read_back` bound"), "{log}");
    let mut twice = offsets(0..100);
    twice.extend(offsets(0..100));
    assert_eq!(positions(&rt, &basin, "shared"), twice);
    assert_eq!(tail(&rt, &basin, "shared"), 3200);

    // The default bound reaches them: nothing is appended again.
    let log = replay("unbounded", "");
    assert!(!log.contains("the `read_back` bound"), "{log}");
    assert_eq!(tail(&rt, &basin, "shared"), 3200);
}

#[test]
fn messages_that_cannot_become_records_are_skipped_and_the_rest_of_the_batch_written() {
    let ws = Workspace::new();
    let server = S2Lite::start(ws.dir.path(), &[BASIN]);
    // Over S2's 1 MiB metered record limit with the headers the sink adds.
    let blob = "x".repeat(1024 * 1024);
    let lines = [
        r#"{"id":1,"op":"c"}"#.to_string(),
        r#"{"op":"c"}"#.to_string(),
        format!(r#"{{"id":3,"op":"c","blob":"{blob}"}}"#),
        r#"{"id":4,"op":"merge"}"#.to_string(),
        r#"{"id":5,"op":"u"}"#.to_string(),
    ]
    .join("\n");
    ws.produce_lines("changes", &lines, false);
    let config = format!(
        "{}stream = \"table\"\n[plugin_config.create_stream]\n[plugin_config.upsert]\nkey_fields = [\"id\"]\naction_field = \"op\"",
        server.connection(BASIN)
    );
    ws.sink("upsert", &sink_library(), "changes", &config);
    let (output, report) = ws.run_ok(&[]);
    let sink = connector(&report, "upsert");
    assert_eq!(sink["errors"], 0, "{report}");
    assert_eq!(sink["messages_out"], 5, "{report}");

    let rt = runtime();
    let records = rt.block_on(data_records(&server.basin_client(&rt, BASIN), "table"));
    let written: Vec<(String, String)> = records
        .iter()
        .map(|r| {
            (
                header(r, "@iggy-position").unwrap(),
                header(r, "@key").unwrap(),
            )
        })
        .collect();
    let expected = [
        ("orders/changes/1@0", r#"{"id":1}"#),
        ("orders/changes/1@4", r#"{"id":5}"#),
    ];
    let expected: Vec<(String, String)> = expected
        .iter()
        .map(|(p, k)| (p.to_string(), k.to_string()))
        .collect();
    assert_eq!(written, expected);
    let log = stderr(&output);
    for (offset, reason) in [
        (1, "key field `id` is missing"),
        (2, "record too large for S2"),
        (3, "action `merge`"),
    ] {
        let line = format!("skipped the message at offset {offset} of orders/changes/1: ");
        assert!(
            log.lines().any(|l| l.contains(&line) && l.contains(reason)),
            "offset {offset}: {log}"
        );
    }
}

/// Offsets are committed when polled, as the 0.4/0.5 runtime does: a batch
/// the sink gave up on would be lost, so it rides the outage out.
fn outage_loses_and_repeats_nothing(stream: &str, outage: impl FnOnce(&mut S2Lite)) {
    const TOTAL: u64 = 30_000;
    let ws = Workspace::new();
    let mut server = S2Lite::start_on_disk(ws.dir.path(), &[BASIN]);
    ws.produce("created", TOTAL);
    sink_to_s2(
        &ws,
        &server,
        &format!("stream = \"{stream}\"\nretry_policy = \"all\"\n[plugin_config.create_stream]"),
    );
    let rt = runtime();
    let basin = server.basin_client(&rt, BASIN);
    let run = run_until_appended(&ws, &["--commit", "on-poll"], &rt, &basin, stream);
    outage(&mut server);
    let output = run.wait();
    let log = stderr(&output);
    let report = json_report(&output);
    let sink = connector(&report, "to_s2");
    assert_eq!(sink["errors"], 0, "{report}\n{log}");
    assert_eq!(sink["messages_out"], TOTAL, "{report}\n{log}");
    assert!(
        log.contains("failed with a transient error, retrying"),
        "the outage was met: {log}"
    );
    assert!(log.contains("written again after"), "{log}");

    let basin = server.basin_client(&rt, BASIN);
    assert_eq!(positions(&rt, &basin, stream), offsets(0..TOTAL));
}

#[test]
fn s2_lite_killed_for_20_s_while_messages_flow_loses_and_repeats_nothing() {
    outage_loses_and_repeats_nothing("killed", |server| {
        server.kill();
        std::thread::sleep(Duration::from_secs(20));
        server.restart();
    });
}

#[test]
fn s2_lite_stopped_for_20_s_while_messages_flow_loses_and_repeats_nothing() {
    outage_loses_and_repeats_nothing("stopped", |server| {
        let pid = server.pid();
        signal(pid, "STOP");
        std::thread::sleep(Duration::from_secs(20));
        signal(pid, "CONT");
    });
}

#[test]
fn close_returns_soon_while_a_batch_waits_for_a_killed_s2_lite() {
    const RUN: Duration = Duration::from_secs(5);
    // The harness waits this long for a busy consume before it closes
    // anyway (runtime/src/manager/sink.rs, stop_connector).
    const STOP_WAIT: Duration = Duration::from_secs(5);
    let ws = Workspace::new();
    let mut server = S2Lite::start(ws.dir.path(), &[BASIN]);
    ws.produce("created", 30_000);
    sink_to_s2(
        &ws,
        &server,
        "stream = \"closing\"\n[plugin_config.create_stream]",
    );
    let rt = runtime();
    let basin = server.basin_client(&rt, BASIN);
    let started = std::time::Instant::now();
    let mut run = BackgroundRun::ending(&ws, &["--duration", "5s", "--commit", "on-poll"]);
    let appended = wait_until(Duration::from_secs(20), || {
        (tail(&rt, &basin, "closing") >= 1000).then_some(())
    });
    server.kill();
    assert!(appended.is_some(), "the sink never appended");
    // The sink retries for minutes; the run must still end: stop at 5 s,
    // the stop wait, then close within 10 s.
    let ended = run.exit_within(
        std::time::Instant::now(),
        RUN + STOP_WAIT + Duration::from_secs(15),
    );
    let elapsed = started.elapsed();
    let output = run.wait();
    let log = stderr(&output);
    assert!(ended.is_some(), "still running after {elapsed:?}: {log}");
    assert!(
        elapsed < RUN + STOP_WAIT + Duration::from_secs(10),
        "closed {elapsed:?} after the start: {log}"
    );
    let report = json_report(&output);
    // `error` if close returned non-zero.
    assert_eq!(report["ok"], true, "{report}\n{log}");
    assert_eq!(connector(&report, "to_s2")["status"], "running", "{report}");
}
