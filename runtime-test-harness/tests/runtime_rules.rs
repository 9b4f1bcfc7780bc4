//! The harness drives plugins as the connectors runtime (0.5.x; 0.4.x for
//! v1 sources) does. One test per rule of the README's table "What the
//! harness mirrors"; each drives the test plugins through the real binary.

use iggy_harness_test_support::*;
use std::time::{SystemTime, UNIX_EPOCH};

fn state_of(ws: &Workspace, key: &str) -> Option<Vec<u8>> {
    std::fs::read(ws.path("state").join(format!("source_{key}.state"))).ok()
}

/// MessagePack of the testkit source's `Cursor { next }` (a one-element array).
fn cursor(next: u8) -> Vec<u8> {
    match next {
        0..=127 => vec![0x91, next],
        _ => vec![0x91, 0xcc, next],
    }
}

/// A source connector file with one `[[streams]]` entry per `(topic, schema)`.
fn source_file(ws: &Workspace, key: &str, streams: &[(&str, &str)], plugin_config: &str) {
    let streams: String = streams
        .iter()
        .map(|(topic, schema)| source_stream(topic, schema))
        .collect();
    ws.connector_file("source", key, &testkit_source(), &streams, plugin_config);
}

/// Runs for `seconds` (a source stuck on a refused batch never goes idle).
fn run_for(ws: &Workspace, seconds: &str) -> (std::process::Output, serde_json::Value) {
    ws.run_ending(&["--duration", seconds])
}

fn last_error(connector: &serde_json::Value) -> &str {
    connector["last_error"]["message"]
        .as_str()
        .unwrap_or_else(|| panic!("no last_error in {connector}"))
}

#[test]
fn every_source_is_opened_before_any_sink() {
    let ws = Workspace::new();
    // File names sort the sink first: the order is the runtime's, not the directory's.
    let record = ws.recording_sink("a_sink", "created", "");
    ws.source("z_source", &testkit_source(), "created", "total = 10");
    let (_, report) = ws.run_ok(&[]);
    let source = connector(&report, "z_source");
    let sink = connector(&report, "a_sink");
    assert!(
        source["id"].as_u64().unwrap() < sink["id"].as_u64().unwrap(),
        "plugin ids follow the open order: {report}"
    );
    assert_eq!(
        (source["status"].as_str(), sink["status"].as_str()),
        (Some("running"), Some("running"))
    );
    assert_eq!(recorded(&record).len(), 10);
}

#[test]
fn a_connector_whose_open_fails_stays_out_in_status_error_and_fails_the_run() {
    let ws = Workspace::new();
    ws.source("broken", &testkit_source(), "created", "batch_size = 0");
    ws.source("healthy", &testkit_source(), "other", "total = 20");
    let (output, report) = ws.run(&[]);
    assert_eq!(output.status.code(), Some(1), "{report}");
    assert_eq!(report["ok"], false);
    let broken = connector(&report, "broken");
    assert_eq!(broken["status"], "error", "{broken}");
    assert!(
        last_error(broken).contains("Plugin initialization failed")
            && last_error(broken).contains("iggy_source_open returned"),
        "{broken}"
    );
    assert_eq!(broken["messages_in"], 0, "never polled");
    assert!(ws.dump("created").is_empty());
    assert_eq!(connector(&report, "healthy")["status"], "running");
    assert_eq!(seqs(&ws.dump("other"), false), (0..20).collect::<Vec<_>>());

    // The text table shows the same status and message.
    let args = ws.run_args(&until_idle("500ms", &[]));
    let text = ws.harness(
        &args
            .iter()
            .map(String::as_str)
            .filter(|a| *a != "--json")
            .collect::<Vec<_>>(),
    );
    let table = String::from_utf8_lossy(&text.stdout);
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("broken") && l.trim_end().ends_with(" error")),
        "{table}"
    );
    assert!(table.contains("Plugin initialization failed"), "{table}");
}

/// A v2 source whose message `seq = 150` is bad in the way `kind` says:
/// the batch holding it (100..200) is refused whole, every time it comes.
fn refused_whole(kind: &str) {
    let ws = Workspace::new();
    ws.source(
        "gen",
        &testkit_source(),
        "created",
        &format!("total = 300\nbatch_size = 100\nbad_seq = 150\nbad_kind = \"{kind}\""),
    );
    let (output, report) = run_for(&ws, "3s");
    assert_eq!(
        output.status.code(),
        Some(1),
        "a connector in error fails the run"
    );
    assert_eq!(
        seqs(&ws.dump("created"), false),
        (0..100).collect::<Vec<_>>(),
        "nothing of the refused batch, nothing after it"
    );
    assert_eq!(state_of(&ws, "gen"), Some(cursor(100)), "state not saved");
    let source = connector(&report, "gen");
    assert_eq!(source["status"], "error", "{source}");
    let message = last_error(source);
    assert!(
        message.contains("Rejected source batch")
            && message.contains("after 1 decode or processing errors"),
        "{message}"
    );
    let refused = source["refused"].as_u64().unwrap();
    assert!(refused >= 2, "Nacked and refused again: {source}");
    assert!(source["nacks"].as_u64().unwrap() >= refused, "{source}");
    assert!(source["errors"].as_u64().unwrap() >= refused, "{source}");
}

#[test]
fn a_batch_with_an_empty_payload_is_refused_whole() {
    refused_whole("empty");
}

#[test]
fn a_batch_with_a_payload_that_is_not_json_is_refused_whole() {
    refused_whole("not_json");
}

#[test]
fn a_batch_with_headers_over_iggys_limit_is_refused_whole() {
    refused_whole("big_headers");
}

#[test]
fn a_raw_batch_into_a_json_stream_is_refused_by_the_encoder() {
    let ws = Workspace::new();
    source_file(
        &ws,
        "gen",
        &[("created", "json")],
        "total = 20\nbatch_size = 10\nschema = \"raw\"",
    );
    let (output, report) = run_for(&ws, "2s");
    assert_eq!(output.status.code(), Some(1));
    assert!(ws.dump("created").is_empty());
    let source = connector(&report, "gen");
    assert!(
        last_error(source).contains("after 10 decode or processing errors"),
        "{source}"
    );
    assert!(last_error(source).contains("json encoder"), "{source}");
}

#[test]
fn a_json_batch_into_a_raw_stream_is_refused_and_text_into_json_becomes_a_json_string() {
    let ws = Workspace::new();
    source_file(
        &ws,
        "to_raw",
        &[("raw_topic", "raw")],
        "total = 5\nbatch_size = 5",
    );
    source_file(
        &ws,
        "text_to_json",
        &[("json_topic", "json")],
        "total = 3\nbatch_size = 3\nschema = \"text\"",
    );
    let (_, report) = run_for(&ws, "2s");
    assert!(ws.dump("raw_topic").is_empty());
    assert_eq!(connector(&report, "to_raw")["status"], "error");
    assert_eq!(connector(&report, "text_to_json")["status"], "running");
    let stored = ws.dump("json_topic");
    assert_eq!(stored.len(), 3);
    // The JSON encoder writes a text payload as a JSON string.
    assert_eq!(stored[0]["payload"], "{\"seq\":0}", "{}", stored[0]);
}

#[test]
fn a_v1_source_loses_only_the_bad_message_as_under_runtime_0_4() {
    let ws = Workspace::new();
    ws.source(
        "legacy",
        &legacy_v1_source(),
        "created",
        "total = 30\nbatch_size = 10\nbad_seq = 5",
    );
    let (_, report) = ws.run_ok(&[]);
    let expected: Vec<u64> = (0..30).filter(|seq| *seq != 5).collect();
    assert_eq!(seqs(&ws.dump("created"), false), expected);
    let legacy = connector(&report, "legacy");
    assert_eq!(
        (legacy["errors"].as_u64(), legacy["refused"].as_u64()),
        (Some(1), Some(0))
    );
    assert_eq!(legacy["status"], "running");
    assert_eq!(state_of(&ws, "legacy").as_deref(), Some(&b"30"[..]));
}

#[test]
fn a_store_slower_than_the_sdks_result_timeout_plays_out_as_under_the_runtime() {
    let ws = Workspace::new();
    ws.source(
        "gen",
        &testkit_source(),
        "created",
        "total = 200\nbatch_size = 100",
    );
    // The SDK waits 30 s for a batch's answer: batch 1 is stored after 31 s.
    let (output, report) = ws.run_ending(&until_idle("1s", &["--fault", "delay-store=1:31s"]));
    let stderr = stderr(&output);
    assert!(
        stderr.contains("no result for batch 1"),
        "the SDK gave up waiting: {stderr}"
    );
    // The callback had returned, so the SDK Nacked and polled the same
    // messages again while batch 1 was still being stored: both are kept.
    let mut expected: Vec<u64> = (0..100).collect();
    expected.extend(0..200);
    assert_eq!(seqs(&ws.dump("created"), false), expected);
    let source = connector(&report, "gen");
    assert_eq!(source["status"], "error", "{source}");
    assert!(
        last_error(source).contains("Failed to deliver Ack for batch 1"),
        "the late Ack was refused by the plugin: {source}"
    );
    assert_eq!(state_of(&ws, "gen"), Some(cursor(200)));
}

#[test]
fn stored_timestamps_are_the_harnesss_not_the_plugins() {
    let ws = Workspace::new();
    ws.source(
        "gen",
        &testkit_source(),
        "created",
        "total = 5\ntimestamps = true",
    );
    let before = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64;
    assert!(ws.run(&[]).0.status.success());
    let stored = ws.dump("created");
    assert_eq!(stored.len(), 5);
    for message in &stored {
        for field in ["timestamp", "origin_timestamp"] {
            let stamp = message[field].as_u64().unwrap();
            assert!(
                stamp >= before,
                "{field} is the harness's, not the plugin's 1: {message}"
            );
        }
    }
}

#[test]
fn a_source_with_several_streams_produces_to_the_last() {
    let ws = Workspace::new();
    source_file(
        &ws,
        "gen",
        &[("first", "json"), ("second", "json")],
        "total = 7",
    );
    let (output, _) = ws.run_ok(&[]);
    assert!(stderr(&output).contains("produces to the last one"));
    assert!(ws.dump("first").is_empty());
    assert_eq!(seqs(&ws.dump("second"), false), (0..7).collect::<Vec<_>>());
}

#[test]
fn a_connector_file_missing_a_required_key_is_an_error_naming_it() {
    for (key, line) in [
        ("version", "version = 0\n"),
        ("schema", "schema = \"json\"\n"),
        ("enabled", "enabled = true\n"),
    ] {
        let ws = Workspace::new();
        ws.source("gen", &testkit_source(), "created", "total = 5");
        let file = ws.connectors().join("gen.toml");
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(text.contains(line));
        std::fs::write(&file, text.replacen(line, "", 1)).unwrap();
        let output = ws.harness(
            &ws.run_args(&until_idle("500ms", &[]))
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>(),
        );
        assert_eq!(output.status.code(), Some(2), "{key}");
        let stderr = stderr(&output);
        assert!(
            stderr.contains(&format!("missing field `{key}`")) && stderr.contains("gen.toml"),
            "{key}: {stderr}"
        );
    }
}

#[test]
fn the_highest_version_of_a_key_runs_unless_another_is_active() {
    let ws = Workspace::new();
    ws.source("gen", &testkit_source(), "created", "total = 4");
    let v0 = std::fs::read_to_string(ws.connectors().join("gen.toml")).unwrap();
    let v1 = v0
        .replace("version = 0", "version = 1")
        .replace("total = 4", "total = 9");
    std::fs::write(ws.connectors().join("gen_v1.toml"), v1).unwrap();
    let (_, report) = ws.run_ok(&[]);
    assert_eq!(report["connectors"].as_array().unwrap().len(), 1);
    assert_eq!(seqs(&ws.dump("created"), false), (0..9).collect::<Vec<_>>());

    std::fs::write(
        ws.connectors().join(".active_versions.toml"),
        "[sources]\ngen = 0\n",
    )
    .unwrap();
    std::fs::remove_dir_all(ws.path("state")).unwrap();
    ws.run(&[]);
    assert_eq!(
        ws.dump("created").len(),
        9 + 4,
        "version 0 ran from the start"
    );
}

#[test]
fn a_failed_consume_is_lost_by_default_as_the_runtime_commits_on_poll() {
    let ws = Workspace::new();
    ws.produce("created", 400);
    let record = ws.recording_sink("audit", "created", "fail_every = 2");
    let (output, report) = ws.run(&[]);
    assert!(
        output.status.success(),
        "a failed consume is only counted: {report}"
    );
    let expected: Vec<u64> = (0..400).filter(|seq| (seq / 100) % 2 == 0).collect();
    assert_eq!(seqs(&recorded(&record), true), expected);
    let audit = connector(&report, "audit");
    assert_eq!(
        (audit["errors"].as_u64(), audit["retries"].as_u64()),
        (Some(2), Some(0)),
        "{audit}"
    );
    assert_eq!(audit["status"], "running");
}

#[test]
fn check_warns_when_the_declared_schema_cannot_reach_the_stream() {
    let ws = Workspace::new();
    ws.source(
        "gen",
        &testkit_source(),
        "created",
        "total = 5\nschema = \"raw\"",
    );
    let output = ws.check("gen");
    let report = json_report(&output);
    assert!(
        output.status.success(),
        "it opens, as under the runtime: {report}"
    );
    let warning = report["warnings"][0].as_str().unwrap_or_default();
    assert!(
        warning.contains("plugin_config.schema is raw")
            && warning.contains("[[streams]] schema is json"),
        "{report}"
    );
    let file = ws.connectors().join("gen.toml");
    let text = ws.harness(&["check", file.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&text.stdout).contains("warning: plugin_config.schema is raw"));
}
