//! What a real deployment throws at the source: a stream that appears only
//! after the source opened (the runtime opens sources before the sink that
//! creates it), a message that is not what the connector file declares,
//! messages larger than a fetch's byte bound, and a server that dies before
//! `close`.

mod common;

use bytes::Bytes;
use common::*;
use iggy_harness_test_support::{BackgroundRun, Workspace, connector};
use std::time::{Duration, Instant};

#[test]
fn a_stream_created_after_open_is_read_once_it_appears() {
    let ws = Workspace::new();
    let nats = Nats::start(&ws);
    write_source(
        &ws,
        &plugin_config(&nats, "stream_check_interval = \"200ms\"\n"),
    );
    let (stderr, report) = std::thread::scope(|scope| {
        let run = scope.spawn(|| run_patiently(&ws, "5s", &[]));
        std::thread::sleep(Duration::from_secs(2));
        nats.create_stream(&["orders.>"]);
        nats.publish_numbered(&["orders.a", "orders.b"], 0, 200);
        run.join().expect("the run thread")
    });
    assert!(
        stderr.contains("stream `ORDERS` (setting `stream`) does not exist")
            && stderr.contains("waiting for it"),
        "{stderr}"
    );
    assert!(stderr.contains("stream `ORDERS` appeared"), "{stderr}");
    assert_eq!(connector(&report, KEY)["messages_out"], 200, "{report}");
    let stored = stored(&ws);
    assert_eq!(sorted_numbers(&stored), (0..200).collect::<Vec<_>>());
    assert_ordered_per_subject(&stored);
}

/// Publishes 0..3 as JSON, one payload that is not JSON, then 3..6.
fn publish_with_one_bad_message(nats: &Nats) {
    nats.publish_numbered(&["orders.a"], 0, 3);
    nats.publish(vec![(
        "orders.a".to_string(),
        None,
        Bytes::from_static(b"not json {"),
    )]);
    nats.publish_numbered(&["orders.a"], 3, 3);
}

#[test]
fn a_message_that_is_not_json_is_skipped_and_counted_and_the_rest_arrive() {
    let ws = Workspace::new();
    let nats = Nats::start(&ws);
    nats.create_stream(&["orders.>"]);
    publish_with_one_bad_message(&nats);
    write_source(&ws, &plugin_config(&nats, ""));

    let (stderr, report) = run_ok(&ws, &[]);

    assert_eq!(connector(&report, KEY)["messages_out"], 6, "{report}");
    assert_eq!(sorted_numbers(&stored(&ws)), (0..6).collect::<Vec<_>>());
    assert!(
        stderr.contains("stream sequence 4 (subject `orders.a`)"),
        "the skipped message is named by its place in the stream: {stderr}"
    );
    assert!(stderr.contains("skipped=1 wrapped=0"), "{stderr}");
    assert!(
        !stderr.contains("were dropped"),
        "the plugin, not the harness, left it out: {stderr}"
    );
}

#[test]
fn with_wrap_a_message_that_is_not_json_arrives_wrapped() {
    let ws = Workspace::new();
    let nats = Nats::start(&ws);
    nats.create_stream(&["orders.>"]);
    publish_with_one_bad_message(&nats);
    write_source(&ws, &plugin_config(&nats, "invalid_messages = \"wrap\"\n"));

    let (stderr, report) = run_ok(&ws, &[]);

    assert_eq!(connector(&report, KEY)["messages_out"], 7, "{report}");
    let payloads: Vec<serde_json::Value> = ws
        .dump("orders")
        .into_iter()
        .map(|m| m["payload"].clone())
        .collect();
    assert_eq!(
        payloads[3],
        serde_json::json!({"invalid_payload_text": "not json {"})
    );
    let numbers: Vec<u64> = payloads.iter().filter_map(|p| p["n"].as_u64()).collect();
    assert_eq!(numbers, (0..6).collect::<Vec<_>>());
    assert!(stderr.contains("skipped=0 wrapped=1"), "{stderr}");
}

#[test]
fn messages_larger_than_the_byte_bound_all_arrive_in_bounded_batches() {
    let ws = Workspace::new();
    let nats = Nats::start(&ws);
    nats.create_stream(&["orders.>"]);
    // 20 of 40 kB and then one of 150 kB, over the bound on its own.
    let padded = |n: u64, size: usize| {
        let payload = serde_json::json!({"subject": "orders.big", "n": n, "pad": "x".repeat(size)});
        (
            "orders.big".to_string(),
            None,
            Bytes::from(payload.to_string()),
        )
    };
    let mut messages: Vec<_> = (0..20).map(|n| padded(n, 40_000)).collect();
    messages.push(padded(20, 150_000));
    nats.publish(messages);
    write_source(&ws, &plugin_config(&nats, "max_bytes = 100000\n"));

    let (_, report) = run_ok(&ws, &[]);

    let source = connector(&report, KEY);
    assert_eq!(source["messages_out"], 21, "{report}");
    assert_eq!(sorted_numbers(&stored(&ws)), (0..21).collect::<Vec<_>>());
    // At most two 40 kB messages fit in 100 kB, against 21 in one batch unbounded.
    assert!(
        source["batches"].as_u64().expect("batches") >= 10,
        "{report}"
    );
}

#[test]
fn close_returns_soon_when_the_server_is_gone() {
    let ws = Workspace::new();
    let mut nats = Nats::start(&ws);
    nats.create_stream(&["orders.>"]);
    nats.publish_numbered(&["orders.a"], 0, 100);
    write_source(&ws, &plugin_config(&nats, ""));
    let started = Instant::now();
    let mut run = BackgroundRun::ending_unread(&ws, &["--duration", "6s"]);
    std::thread::sleep(Duration::from_secs(2));
    nats.server.kill();
    // The run ends at 6 s; then close has 10 s (the plugin's own limit is
    // 5 s), with a few seconds' slack for a loaded machine.
    let limit = Duration::from_secs(20);
    let status = run.exit_within(started, limit);
    assert!(
        status.is_some(),
        "the run did not end within {limit:?}: close hangs with the server gone"
    );
}
