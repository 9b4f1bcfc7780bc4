//! The Pravega source against a real Pravega standalone server (one per
//! test binary, each test in a scope of its own), through the real harness
//! binary: events are written, and the stream scaled, with pravega-client.

mod common;

use common::*;
use iggy_connector_pravega_common::position::PositionMarker;
use iggy_harness_test_support::pravega::{PravegaServer, fresh_scope};
use iggy_harness_test_support::process::wait_until;
use iggy_harness_test_support::*;
use std::collections::BTreeMap;
use std::time::Duration;

fn controller() -> String {
    PravegaServer::shared().controller_uri()
}

#[test]
fn reads_every_binary_event_byte_for_byte_from_the_head() {
    let (_pravega, ws, scope) = raw_source(&controller(), "head", 3, 0..300, "batch_size = 40");
    run(&ws, &[]);

    let stored = ws.dump(TOPIC);
    let mut events: Vec<Vec<u8>> = stored.iter().map(payload_bytes).collect();
    events.sort_by_key(|e| event_number(e));
    let written: Vec<Vec<u8>> = (0..300).map(binary_event).collect();
    assert_eq!(events, written, "every event once, byte for byte");

    // Headers: each segment's events in write order by their offsets.
    let mut by_segment: BTreeMap<i64, Vec<(i64, u32)>> = BTreeMap::new();
    for message in &stored {
        assert_eq!(
            message["headers"]["pravega-stream"],
            format!("string: {scope}/orders")
        );
        by_segment
            .entry(int_header(message, "pravega-segment"))
            .or_default()
            .push((
                int_header(message, "pravega-offset"),
                event_number(&payload_bytes(message)),
            ));
    }
    assert_eq!(by_segment.len(), 3, "events in all three segments");
    for (segment, mut events) in by_segment {
        events.sort_unstable();
        assert_eq!(events[0].0, 0, "segment {segment} read from its start");
        assert!(
            events.windows(2).all(|w| w[0].1 < w[1].1),
            "segment {segment}: offsets follow the write order: {events:?}"
        );
    }
}

/// Where `binary_event(n)` starts in a segment that holds events `0..n`
/// (each is preceded by an 8-byte header).
fn offset_of(n: u32) -> i64 {
    (0..n).map(|k| 8 + binary_event(k).len() as i64).sum()
}

#[test]
fn a_stream_cut_starts_at_its_offset() {
    let start = format!("start = {{ stream_cut = {{ \"0\" = {} }} }}", offset_of(20));
    let (_pravega, ws, scope) = raw_source(&controller(), "cut", 1, 0..50, &start);
    run(&ws, &[]);
    assert_eq!(stored_numbers(&ws), (20..50).collect::<Vec<_>>());
    assert_eq!(
        saved_positions(&ws),
        Some((format!("{scope}/orders"), [(0, offset_of(50))].into()))
    );
}

#[test]
fn tail_reads_only_what_comes_after_open() {
    let (pravega, ws, _) = raw_source(&controller(), "tail", 2, 0..40, "start = \"tail\"");
    let background = BackgroundRun::start(&ws, "5s", &[]);
    // The tail positions are saved with the first (empty) batch.
    let saved = wait_until(Duration::from_secs(60), || saved_positions(&ws));
    assert!(saved.is_some(), "the tail positions were never saved");
    pravega.write(binary_events(40..70));
    let output = background.wait();
    assert_polled_cleanly(&output);
    assert_eq!(stored_numbers(&ws), (40..70).collect::<Vec<_>>());
}

#[test]
fn a_restart_resumes_where_it_stopped_under_both_protocols() {
    let (pravega, ws, _) = raw_source(&controller(), "resume", 2, 0..300, "batch_size = 20");
    run(&ws, &[]);
    assert_eq!(stored_numbers(&ws), (0..300).collect::<Vec<_>>());

    // Stopped mid-flow: events keep coming while the run ends by its duration.
    std::thread::scope(|threads| {
        threads.spawn(|| {
            for chunk in 0..20 {
                pravega.write(binary_events(300 + chunk * 15..300 + (chunk + 1) * 15));
                std::thread::sleep(Duration::from_millis(300));
            }
        });
        let (output, _) = ws.run_ending(&["--duration", "4s"]);
        assert_polled_cleanly(&output);
    });
    // The writer takes 6 s at least, the run 4 s.
    let stopped_at = stored_numbers(&ws).len();
    assert!(
        (301..600).contains(&stopped_at),
        "the run should stop mid-flow, having stored {stopped_at}"
    );

    // Runtime 0.4.x's protocol picks up from the same state.
    run(&ws, &["--source-protocol", "v1"]);
    assert_eq!(
        stored_numbers(&ws),
        (0..600).collect::<Vec<_>>(),
        "every event once (the stopped run had stored {stopped_at})"
    );
}

#[test]
fn nacked_batches_come_again_and_every_event_lands_once() {
    let (_pravega, ws, _) = raw_source(&controller(), "nack", 2, 0..300, "batch_size = 25");
    let (output, report) = run(&ws, &["--fault", "nack-every=3"]);
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(
        connector(&report, KEY)["nacks"].as_u64() > Some(2),
        "{report}\n{log}"
    );
    assert_eq!(stored_numbers(&ws), (0..300).collect::<Vec<_>>());
}

#[test]
fn a_stream_scaled_while_read_loses_and_repeats_nothing() {
    let (pravega, ws, _) = raw_source(&controller(), "scale", 1, 0..0, "batch_size = 20");
    // Nacks make new reader groups from the saved positions across the scales.
    let background = BackgroundRun::start(&ws, "8s", &["--fault", "nack-every=4"]);
    pravega.write(binary_events(0..200));
    let read_some = wait_until(Duration::from_secs(60), || {
        saved_positions(&ws).filter(|(_, p)| p.get(&0) > Some(&0))
    });
    assert!(read_some.is_some(), "segment 0 was never read");
    pravega.split(0);
    pravega.write(binary_events(200..400));
    let successors: Vec<i64> = pravega.segments().into_keys().collect();
    assert_eq!(successors.len(), 2, "{successors:?}");
    let on_successors = wait_until(Duration::from_secs(60), || {
        saved_positions(&ws).filter(|(_, p)| successors.iter().any(|s| p.contains_key(s)))
    });
    assert!(on_successors.is_some(), "the successors were never read");
    pravega.split(successors[0]);
    pravega.write(binary_events(400..600));
    let output = background.wait();
    assert_polled_cleanly(&output);
    assert_eq!(stored_numbers(&ws), (0..600).collect::<Vec<_>>());

    let open: Vec<i64> = pravega.segments().into_keys().collect();
    assert_eq!(open.len(), 3, "{open:?}");
    let (_, positions) = saved_positions(&ws).unwrap();
    assert_eq!(
        positions.keys().copied().collect::<Vec<_>>(),
        open,
        "the saved state holds the open segments only"
    );

    // A new reader group from those positions reads only what is new.
    pravega.write(binary_events(600..700));
    run(&ws, &[]);
    assert_eq!(stored_numbers(&ws), (0..700).collect::<Vec<_>>());
}

#[test]
fn bad_events_in_a_json_source_are_skipped_or_wrapped() {
    let (uri, scope) = (controller(), fresh_scope("src-poison"));
    let pravega = Pravega::create(&uri, &scope, 1);
    let mut events: Vec<(String, Vec<u8>)> = (0..20)
        .map(|n| ("k".to_string(), format!("{{\"n\":{n}}}").into_bytes()))
        .collect();
    events.insert(5, ("k".into(), b"not json".to_vec()));
    events.insert(12, ("k".into(), Vec::new()));
    pravega.write(events);
    let numbers = |ws: &Workspace| -> Vec<serde_json::Value> {
        ws.dump(TOPIC)
            .iter()
            .map(|m| m["payload"].clone())
            .collect()
    };
    let expected: Vec<serde_json::Value> = (0..20).map(|n| serde_json::json!({ "n": n })).collect();

    let skipping = Workspace::new();
    source_file(&skipping, &uri, &scope, "json", "batch_size = 7");
    let (output, _) = run(&skipping, &[]);
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(log.contains("skipped=2 wrapped=0"), "{log}");
    assert_eq!(numbers(&skipping), expected, "the rest, in order, once");

    let wrapping = Workspace::new();
    let wrap = "batch_size = 7\ninvalid_messages = \"wrap\"";
    source_file(&wrapping, &uri, &scope, "json", wrap);
    let (output, _) = run(&wrapping, &[]);
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(log.contains("skipped=1 wrapped=1"), "{log}");
    let mut with_wrapped = expected;
    with_wrapped.insert(5, serde_json::json!({ "invalid_payload_text": "not json" }));
    assert_eq!(numbers(&wrapping), with_wrapped);
}

#[test]
fn the_sinks_position_markers_are_passed_over() {
    let (uri, scope) = (controller(), fresh_scope("src-markers"));
    let pravega = Pravega::create(&uri, &scope, 2);
    let marker = |first: u64, last: u64| {
        let marker = PositionMarker {
            partition: "orders/out/1".into(),
            first,
            last,
        };
        (marker.routing_key(), marker.encode())
    };
    let mut events: Vec<(String, Vec<u8>)> = binary_events(0..30).collect();
    events.insert(10, marker(0, 9));
    events.push(marker(10, 29));
    pravega.write(events);
    let ws = Workspace::new();
    source_file(&ws, &uri, &scope, "raw", "batch_size = 7");
    let (output, _) = run(&ws, &[]);
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(
        log.contains("events=30") && log.contains("position_markers=2"),
        "{log}"
    );
    assert_eq!(stored_numbers(&ws), (0..30).collect::<Vec<_>>());
}
