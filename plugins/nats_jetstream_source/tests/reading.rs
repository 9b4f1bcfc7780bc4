//! Reading a stream into Iggy through the real harness: payloads, headers,
//! ids and order, the default consumer, and redelivery after a Nack.

mod common;

use async_nats::HeaderMap;
use async_nats::jetstream::consumer::AckPolicy;
use common::*;
use iggy_harness_test_support::{Workspace, connector};
use std::time::{SystemTime, UNIX_EPOCH};

/// FNV-1a, written out again here so the test pins the id formula.
fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn number_after(text: &serde_json::Value, prefix: &str) -> u64 {
    let text = text
        .as_str()
        .unwrap_or_else(|| panic!("header missing: {text}"));
    text.strip_prefix(prefix)
        .unwrap_or_else(|| panic!("`{text}` does not start with `{prefix}`"))
        .parse()
        .expect("a number")
}

#[test]
fn messages_arrive_with_their_payload_headers_and_stable_ids_in_order() {
    let ws = Workspace::new();
    let nats = Nats::start(&ws);
    nats.create_stream(&["orders.>"]);
    let started_micros = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64;
    let messages = (0..500u64)
        .map(|n| {
            let subject = if n % 3 == 0 {
                "orders.us.created"
            } else {
                "orders.eu.created"
            };
            let mut headers = HeaderMap::new();
            headers.insert("X-Trace", format!("trace-{n}").as_str());
            headers.insert("Nats-Msg-Id", format!("order-{n}").as_str());
            (subject.to_string(), Some(headers), numbered(subject, n))
        })
        .collect();
    let sequences = nats.publish(messages);
    write_source(
        &ws,
        &plugin_config(
            &nats,
            &consumers(&[("eu", "orders.eu.>"), ("us", "orders.us.>")]),
        ),
    );

    let (stderr, report) = run_ok(&ws, &[]);

    assert!(stderr.contains("runs the v2 protocol"), "{stderr}");
    assert_eq!(connector(&report, KEY)["messages_out"], 500, "{report}");
    let dumped = ws.dump("orders");
    assert_eq!(dumped.len(), 500);
    let stream_hash = u128::from(fnv1a(STREAM)) << 64;
    for message in &dumped {
        let n = message["payload"]["n"].as_u64().unwrap();
        let subject = message["payload"]["subject"].as_str().unwrap();
        let seq = sequences[n as usize];
        let headers = &message["headers"];
        assert_eq!(headers["nats-subject"], format!("string: {subject}"));
        assert_eq!(headers["nats-stream"], "string: ORDERS");
        assert_eq!(number_after(&headers["nats-stream-seq"], "uint64: "), seq);
        let published = number_after(&headers["nats-timestamp"], "uint64: ");
        assert!(
            published >= started_micros && published < started_micros + 60_000_000,
            "publish time {published} µs is not from this test (started {started_micros})"
        );
        assert_eq!(headers["X-Trace"], format!("string: trace-{n}"));
        assert_eq!(headers["Nats-Msg-Id"], format!("string: order-{n}"));
        assert_eq!(message["id"], (stream_hash | u128::from(seq)).to_string());
    }
    let stored = stored(&ws);
    assert_ordered_per_subject(&stored);
    assert_eq!(sorted_numbers(&stored), (0..500).collect::<Vec<_>>());
}

#[test]
fn the_default_consumer_reads_every_subject_of_the_stream() {
    let ws = Workspace::new();
    let nats = Nats::start(&ws);
    nats.create_stream(&["orders.*", "audit.>", "metrics"]);
    nats.publish_numbered(&["orders.a", "audit.x.y", "orders.b", "metrics"], 0, 400);
    write_source(
        &ws,
        &plugin_config(&nats, "[plugin_config.default_consumer]\nprefix = \"it\"\n"),
    );

    run_ok(&ws, &[]);

    let stored = stored(&ws);
    assert_eq!(
        sorted_numbers(&stored),
        (0..400).collect::<Vec<_>>(),
        "each message once"
    );
    assert_ordered_per_subject(&stored);
    let names = nats.consumer_names();
    assert_eq!(
        names.len(),
        3,
        "one consumer per subject of the stream: {names:?}"
    );
    for (prefix, filter) in [
        ("it-audit_all-", "audit.>"),
        ("it-metrics-", "metrics"),
        ("it-orders_any-", "orders.*"),
    ] {
        let name = names
            .iter()
            .find(|n| n.starts_with(prefix))
            .unwrap_or_else(|| panic!("no consumer named {prefix}… in {names:?}"));
        let info = nats.consumer_info(name);
        assert_eq!(info.config.filter_subject, filter);
        assert_eq!(info.config.ack_policy, AckPolicy::All);
        assert_eq!(info.num_ack_pending, 0, "{name}: everything acknowledged");
        assert_eq!(info.num_pending, 0, "{name}: nothing left");
    }
}

#[test]
fn nacked_batches_come_again_and_every_message_is_stored_once_in_order() {
    let ws = Workspace::new();
    let nats = Nats::start(&ws);
    nats.create_stream(&["orders.>"]);
    nats.publish_numbered(&["orders.a", "orders.b"], 0, 2000);
    write_source(
        &ws,
        &plugin_config(
            &nats,
            &format!(
                "batch_size = 100\n{}",
                consumers(&[("a", "orders.a"), ("b", "orders.b")])
            ),
        ),
    );

    let (_, report) = run_ok(&ws, &["--fault", "nack-every=3"]);

    let source = connector(&report, KEY);
    assert!(source["nacks"].as_u64().unwrap() >= 5, "{source}");
    let stored = stored(&ws);
    assert_eq!(stored.len(), 2000, "nothing stored twice");
    assert_eq!(
        sorted_numbers(&stored),
        (0..2000).collect::<Vec<_>>(),
        "nothing lost"
    );
    assert_ordered_per_subject(&stored);
    for name in ["a", "b"] {
        let info = nats.consumer_info(name);
        assert_eq!(
            info.num_ack_pending, 0,
            "{name}: every message acknowledged"
        );
        assert_eq!(info.num_pending, 0, "{name}: nothing left");
    }
}

#[test]
fn the_example_connector_file_reads_its_stream() {
    let ws = Workspace::new();
    let nats = Nats::start(&ws);
    nats.create_stream(&["orders.>"]);
    nats.publish_numbered(&["orders.eu.created", "orders.us.created"], 0, 100);
    let example = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../configs/connectors/nats_jetstream_source.toml"
    );
    let text = std::fs::read_to_string(example).expect("the example connector file");
    assert!(text.contains("nats://127.0.0.1:4222"));
    // Only the server and the library's location differ from the example.
    let text = text
        .replace("nats://127.0.0.1:4222", &nats.server.url())
        .replace(
            "path = \"libiggy_connector_nats_jetstream_source\"",
            &format!(
                "path = \"{}\"",
                iggy_harness_test_support::plugin("iggy_connector_nats_jetstream_source").display()
            ),
        );
    std::fs::write(ws.connectors().join("example.toml"), text).expect("connector file");

    run_ok(&ws, &[]);

    let dumped = iggy_harness_test_support::lines(
        &ws.harness(&[
            "dump",
            "--data-dir",
            ws.path("data").to_str().unwrap(),
            "--stream",
            "shop",
            "--topic",
            "orders_from_nats",
        ])
        .stdout,
    );
    assert_eq!(dumped.len(), 100);
    assert_eq!(
        nats.consumer_names(),
        ["iggy-orders-eu", "iggy-orders-us"],
        "the example's two consumers"
    );
}
