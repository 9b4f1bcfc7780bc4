//! Both Pravega libraries against a real Pravega standalone server (one per
//! test binary, each test in a scope of its own), through the real harness
//! binary: every writer mode read back through the source, routing keys and
//! segments, stream creation, and messages the sink cannot write.

mod common;

use common::*;
use iggy_connector_pravega_common::client::NewEvent;
use iggy_connector_pravega_common::position::PositionMarker;
use iggy_harness_test_support::pravega::{PravegaServer, fresh_scope};
use iggy_harness_test_support::*;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

fn controller() -> String {
    PravegaServer::shared().controller_uri()
}

/// Produces messages 0..`count`, runs the sink over them with `settings`
/// (after the connection keys) and `run_args`, and reads the stream back;
/// the scope, the run's log and the messages read.
fn round_trip(
    test: &str,
    count: u64,
    settings: &str,
    run_args: &[&str],
) -> (String, String, Vec<Value>) {
    let uri = controller();
    let scope = fresh_scope(test);
    let ws = Workspace::new();
    produce(&ws, 0..count);
    sink(&ws, &uri, &scope, "orders", settings);
    let (output, report) = ws.run(run_args);
    assert_ran(&output, &report);
    assert_eq!(connector(&report, SINK)["errors"], 0, "{report}");
    let messages = read_back(&ws, &uri, &scope, "orders");
    (scope, stderr(&output), messages)
}

/// `writer_mode`, and a one-segment stream created by `open`.
fn created(mode: &str) -> String {
    format!("writer_mode = \"{mode}\"\n[plugin_config.create]")
}

#[test]
fn best_effort_round_trip_writes_every_message() {
    let (_, log, messages) = round_trip("be", 300, &created("best_effort"), &[]);
    assert_eq!(numbers(&messages), (0..300).collect::<Vec<_>>());
    assert_eq!(closing_counters(&log)["unacknowledged"], 0, "{log}");
}

#[test]
fn at_least_once_round_trip_with_segment_headers() {
    let (scope, log, messages) = round_trip("alo", 300, &created("at_least_once"), &[]);
    assert_eq!(numbers(&messages), (0..300).collect::<Vec<_>>());
    assert_eq!(closing_counters(&log)["written"], 300, "{log}");
    for message in &messages {
        let headers = &message["headers"];
        assert_eq!(
            headers["pravega-stream"],
            format!("string: {scope}/orders"),
            "{message}"
        );
        int_header(message, "pravega-segment");
        int_header(message, "pravega-offset");
    }
}

#[test]
fn exactly_once_commits_one_transaction_per_batch() {
    // Batches of 100 (the connector file's batch_length): 5 of them.
    let (_, log, messages) = round_trip("eo1", 500, &created("exactly_once"), &[]);
    assert_eq!(numbers(&messages), (0..500).collect::<Vec<_>>());
    let counters = closing_counters(&log);
    assert_eq!(counters["batches"], 5, "{log}");
    assert_eq!(counters["written"], 500, "{log}");
    // pravega-client logs each transaction it begins.
    let transactions = log
        .lines()
        .filter(|l| l.contains("Transaction") && l.contains("created"))
        .count();
    assert_eq!(transactions, 5, "one transaction per batch:\n{log}");
}

#[test]
fn exactly_once_survives_redelivered_batches() {
    let (_, log, messages) = round_trip(
        "eo",
        500,
        "writer_mode = \"exactly_once\"\nrouting_key = \"partition\"\n\
         [plugin_config.create]\nsegments = 2",
        &["--fault", "redeliver-every=2"],
    );
    assert_eq!(
        numbers(&messages),
        (0..500).collect::<Vec<_>>(),
        "every message once"
    );
    assert!(closing_counters(&log)["skipped_duplicates"] > 0, "{log}");
}

/// `exactly_once` over two segments, partition ids as routing keys.
const EXACTLY_ONCE: &str = "writer_mode = \"exactly_once\"\nrouting_key = \"partition\"\n[plugin_config.create]\nsegments = 2";

#[test]
fn exactly_once_after_a_restart_skips_what_an_earlier_run_committed() {
    let uri = controller();
    let scope = fresh_scope("eo-restart");
    let first = Workspace::new();
    produce(&first, 0..300);
    sink(&first, &uri, &scope, "orders", EXACTLY_ONCE);
    let (output, report) = first.run(&[]);
    assert_ran(&output, &report);
    assert_eq!(closing_counters(&stderr(&output))["written"], 300);
    // A new process, with no memory of the first, is handed the same
    // partition from offset 0 again and 150 messages more: as after a
    // restart before the runtime stored its offsets.
    let second = Workspace::new();
    produce(&second, 0..450);
    sink(&second, &uri, &scope, "orders", EXACTLY_ONCE);
    let (output, report) = second.run(&[]);
    assert_ran(&output, &report);
    let log = stderr(&output);
    assert!(
        log.contains("3 position markers") && log.contains(r#"{"orders/out/1": 299}"#),
        "read back at open:\n{log}"
    );
    let counters = closing_counters(&log);
    assert_eq!(counters["skipped_duplicates"], 300, "{log}");
    assert_eq!(counters["written"], 150, "{log}");
    let messages = read_back(&second, &uri, &scope, "orders");
    assert_eq!(
        numbers(&messages),
        (0..450).collect::<Vec<_>>(),
        "every message once, no marker among them"
    );
}

#[test]
fn exactly_once_skips_a_committed_batch_whose_acknowledgement_was_lost() {
    let uri = controller();
    let scope = fresh_scope("eo-lost-ack");
    // Offsets 0..=99 committed with their marker, as the sink's transaction
    // would be, by a writer that never heard back.
    let marker = PositionMarker {
        partition: "orders/out/1".into(),
        first: 0,
        last: 99,
    };
    let mut events: Vec<NewEvent> = (0..100)
        .map(|n| NewEvent {
            routing_key: Some("1".into()),
            payload: format!(r#"{{"n":{n}}}"#).into_bytes(),
        })
        .collect();
    events.push(NewEvent {
        routing_key: Some(marker.routing_key()),
        payload: marker.encode(),
    });
    commit_by_hand(&uri, &scope, "orders", events);
    let ws = Workspace::new();
    produce(&ws, 0..250);
    sink(&ws, &uri, &scope, "orders", EXACTLY_ONCE);
    let (output, _) = ws.run_ok(&[]);
    let log = stderr(&output);
    let counters = closing_counters(&log);
    assert_eq!(counters["skipped_duplicates"], 100, "{log}");
    assert_eq!(counters["written"], 150, "{log}");
    let messages = read_back(&ws, &uri, &scope, "orders");
    assert_eq!(numbers(&messages), (0..250).collect::<Vec<_>>());
}

/// Per routing key (tenant), the segments its events landed in and their
/// `n` in offset order.
fn by_tenant(messages: &[Value]) -> BTreeMap<u64, (BTreeSet<i64>, Vec<u64>)> {
    let mut placed: Vec<(i64, i64, u64)> = messages
        .iter()
        .zip(numbers_read(messages))
        .map(|(m, n)| {
            (
                int_header(m, "pravega-segment"),
                int_header(m, "pravega-offset"),
                n,
            )
        })
        .collect();
    placed.sort_unstable();
    let mut tenants: BTreeMap<u64, (BTreeSet<i64>, Vec<u64>)> = BTreeMap::new();
    for (segment, _, n) in placed {
        let (segments, order) = tenants.entry(n % 3).or_default();
        segments.insert(segment);
        order.push(n);
    }
    tenants
}

fn assert_each_key_in_one_segment_in_order(messages: &[Value]) {
    let tenants = by_tenant(messages);
    assert_eq!(tenants.len(), 3, "three tenants");
    for (tenant, (segments, order)) in tenants {
        assert_eq!(segments.len(), 1, "tenant t{tenant} in {segments:?}");
        assert_eq!(order.len(), 100, "tenant t{tenant}");
        assert!(
            order.windows(2).all(|w| w[0] < w[1]),
            "tenant t{tenant} out of order: {order:?}"
        );
    }
}

#[test]
fn header_routing_keeps_each_key_in_one_segment_in_order() {
    let uri = controller();
    let (scope, _, messages) = round_trip(
        "hdr",
        300,
        "routing_key = { header = \"tenant\" }\n\
         [plugin_config.create]\nscaling = \"fixed\"\nsegments = 3",
        &[],
    );
    assert_eq!(segments(&uri, &scope, "orders"), 3);
    assert_eq!(numbers(&messages), (0..300).collect::<Vec<_>>());
    assert_each_key_in_one_segment_in_order(&messages);
}

#[test]
fn field_routing_under_exactly_once_keeps_each_key_in_one_segment_in_order() {
    let uri = controller();
    let ws = Workspace::new();
    let scope = fresh_scope("fld");
    let lines: String = (0..300)
        .map(|n| format!("{{\"n\":{n},\"tenant\":\"t{}\"}}\n", n % 3))
        .collect();
    ws.produce_lines("out", &lines, false);
    sink(
        &ws,
        &uri,
        &scope,
        "orders",
        "writer_mode = \"exactly_once\"\nrouting_key = { field = \"tenant\" }\n\
         [plugin_config.create]\nsegments = 3",
    );
    ws.run_ok(&[]);
    let messages = read_back(&ws, &uri, &scope, "orders");
    assert_eq!(numbers(&messages), (0..300).collect::<Vec<_>>());
    assert_each_key_in_one_segment_in_order(&messages);
}

/// `check` (open, then close) on the sink's connector file; whether it
/// opened, and its report as text.
fn check_sink(ws: &Workspace) -> (bool, String) {
    let output = ws.check(SINK);
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        stderr(&output)
    );
    (output.status.success(), text)
}

#[test]
fn open_creates_scope_and_stream_with_a_fixed_or_by_rate_policy() {
    let uri = controller();
    let ws = Workspace::new();
    let scope = fresh_scope("create");
    let policies = [
        ("fixed", "scaling = \"fixed\"\nsegments = 3", 3),
        (
            "events",
            "scaling = \"events_per_second\"\ntarget_rate = 1000\nsegments = 2",
            2,
        ),
        (
            "kilobytes",
            "scaling = \"kilobytes_per_second\"\ntarget_rate = 512\nscale_factor = 3",
            1,
        ),
    ];
    for (stream, create, expected) in policies {
        sink(
            &ws,
            &uri,
            &scope,
            stream,
            &format!("[plugin_config.create]\n{create}"),
        );
        let (opened, report) = check_sink(&ws);
        assert!(opened, "{stream}: {report}");
        assert_eq!(segments(&uri, &scope, stream), expected, "{stream}");
    }
    // An existing stream keeps its policy: asking for 5 segments changes nothing.
    sink(
        &ws,
        &uri,
        &scope,
        "fixed",
        "[plugin_config.create]\nsegments = 5",
    );
    let (opened, report) = check_sink(&ws);
    assert!(opened, "{report}");
    assert_eq!(segments(&uri, &scope, "fixed"), 3);
}

#[test]
fn open_without_create_fails_naming_the_missing_stream() {
    let uri = controller();
    let ws = Workspace::new();
    let scope = fresh_scope("missing");
    let refused_naming_the_stream = || {
        sink(&ws, &uri, &scope, "absent", "");
        let (opened, report) = check_sink(&ws);
        assert!(!opened, "{report}");
        assert!(
            report.contains(&format!("{scope}/absent")) && report.contains("does not exist"),
            "{report}"
        );
    };
    // Neither scope nor stream exists.
    refused_naming_the_stream();
    // The scope exists (made with another stream), the stream does not.
    sink(&ws, &uri, &scope, "present", "[plugin_config.create]");
    assert!(check_sink(&ws).0);
    refused_naming_the_stream();
}

#[test]
fn messages_it_cannot_map_are_skipped_and_counted_the_rest_written() {
    let uri = controller();
    let scope = fresh_scope("poison");
    // 0..100 with a tenant header, except 10 and 60 (no header) and 40
    // (a payload over max_event_bytes), all in one batch.
    let lines: String = (0..100)
        .map(|n| match n {
            10 | 60 => format!("{{\"headers\":{{}},\"payload\":{{\"n\":{n}}}}}\n"),
            40 => format!(
                "{{\"headers\":{{\"tenant\":\"t1\"}},\"payload\":{{\"n\":{n},\"pad\":\"{}\"}}}}\n",
                "x".repeat(500)
            ),
            _ => format!(
                "{{\"headers\":{{\"tenant\":\"t{}\"}},\"payload\":{{\"n\":{n}}}}}\n",
                n % 3
            ),
        })
        .collect();
    for mode in ["at_least_once", "exactly_once"] {
        let ws = Workspace::new();
        ws.produce_lines("out", &lines, true);
        let stream = mode.replace('_', "-");
        sink(
            &ws,
            &uri,
            &scope,
            &stream,
            &format!(
                "writer_mode = \"{mode}\"\nrouting_key = {{ header = \"tenant\" }}\n\
                 missing_routing_key = \"skip\"\nmax_event_bytes = 200\n[plugin_config.create]\nsegments = 2"
            ),
        );
        let (output, _) = ws.run_ok(&[]);
        let log = stderr(&output);
        let counters = closing_counters(&log);
        assert_eq!(counters["missing_routing_key"], 2, "{mode}: {log}");
        assert_eq!(counters["refused"], 1, "{mode}: {log}");
        assert_eq!(counters["written"], 97, "{mode}: {log}");
        assert_eq!(counters["failed_batches"], 0, "{mode}: {log}");
        assert!(
            log.contains("message at offset 40 of orders/out/") && log.contains("skipped"),
            "{mode}: the skip is logged with its offset: {log}"
        );
        let expected: Vec<u64> = (0..100).filter(|n| ![10, 40, 60].contains(n)).collect();
        let messages = read_back(&ws, &uri, &scope, &stream);
        assert_eq!(numbers(&messages), expected, "{mode}");
    }
}

#[test]
fn conformance_with_a_config_runs_every_check() {
    let uri = controller();
    let scope = fresh_scope("conf");
    let ws = Workspace::new();
    let config = format!(
        "{}[plugin_config.create]\nsegments = 1",
        connection(&uri, &scope, "orders")
    );
    let sink = plugin("iggy_connector_pravega_sink");
    ws.sink("conf_sink", &sink, "out", &config);
    let source = plugin("iggy_connector_pravega_source");
    // The source needs the stream the sink's open creates.
    ws.source(
        "conf_source",
        &source,
        "in",
        &connection(&uri, &scope, "orders"),
    );
    for (library, key) in [(&sink, "conf_sink"), (&source, "conf_source")] {
        let file = ws.connectors().join(format!("{key}.toml"));
        let output = ws.harness(&[
            "--json",
            "conformance",
            library.to_str().unwrap(),
            "--connector",
            file.to_str().unwrap(),
        ]);
        let reports: Value = serde_json::from_slice(&output.stdout).unwrap();
        assert!(output.status.success(), "{reports}");
        assert_eq!(reports[0]["not_run"], serde_json::json!([]), "{reports}");
    }
}
