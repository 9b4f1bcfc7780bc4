//! Messages the sink must not publish as they are: Iggy headers that NATS
//! would read as JetStream controls, and messages it cannot map or the
//! server can never take. Each is dealt with alone; the rest of the batch is
//! published.

mod common;

use common::*;
use iggy_harness_test_support::nats::NatsServer;
use iggy_harness_test_support::*;

#[test]
fn nats_control_headers_from_iggy_are_withheld_and_counted() {
    let ws = Workspace::new();
    let server = NatsServer::start(ws.dir.path());
    let rt = runtime();
    let js = rt.block_on(context(&server.url()));
    rt.block_on(create_stream(&js, "ORDERS", &["orders.>"]));
    // Forwarded, `Nats-Expected-Last-Sequence: 1` would make the stream
    // refuse every message but the second, and `Nats-Msg-Id` would make
    // all but the first a duplicate.
    let lines: String = (0..20)
        .map(|i| {
            format!(
                "{{\"headers\":{{\"Nats-Expected-Last-Sequence\":\"1\",\"nats-msg-id\":\"same\",\"source\":\"web\"}},\"payload\":{{\"order\":{i}}}}}\n"
            )
        })
        .collect();
    ws.produce_lines("created", &lines, true);
    let config = format!("{}subject = \"orders.created\"", connection(&server));
    ws.sink("to_nats", &sink_library(), "created", &config);

    let (output, report) = ws.run(&["--commit", "on-poll"]);

    let stderr = stderr(&output);
    assert!(output.status.success(), "{report}\n{stderr}");
    let received = rt.block_on(read_stream(&js, "ORDERS"));
    assert_eq!(received.len(), 20, "{stderr}");
    for (offset, message) in received.iter().enumerate() {
        assert_eq!(message.payload, serde_json::json!({"order": offset}));
        assert_eq!(header(message, "Nats-Expected-Last-Sequence"), None);
        assert_eq!(header(message, "nats-msg-id"), None);
        assert_eq!(
            header(message, "Nats-Msg-Id"),
            Some(format!("orders/created/1/{offset}")),
            "the sink's own id is kept"
        );
        assert_eq!(header(message, "source").as_deref(), Some("web"));
    }
    assert_eq!(
        stderr.matches("are not forwarded").count(),
        1,
        "logged once: {stderr}"
    );
}

#[test]
fn unmappable_and_oversized_messages_are_skipped_and_the_rest_is_written() {
    let ws = Workspace::new();
    let server = NatsServer::start_with_config::<&str>(ws.dir.path(), "max_payload: 2048", &[]);
    let rt = runtime();
    let js = rt.block_on(context(&server.url()));
    rt.block_on(create_stream(&js, "ORDERS", &["orders.>"]));
    let lines: String = (0..12)
        .map(|i| match i {
            0 | 5 => format!("{{\"order\":{i}}}\n"),
            3 => format!("{{\"order\":{i},\"region\":\"eu.west\"}}\n"),
            7 => format!(
                "{{\"order\":{i},\"region\":\"eu\",\"pad\":\"{}\"}}\n",
                "x".repeat(4000)
            ),
            _ => format!("{{\"order\":{i},\"region\":\"eu\"}}\n"),
        })
        .collect();
    ws.produce_lines("created", &lines, false);
    let config = format!(
        "{}subject = \"orders.{{payload.region}}\"\nstream = \"ORDERS\"",
        connection(&server)
    );
    ws.sink("to_nats", &sink_library(), "created", &config);

    let (output, report) = ws.run(&["--commit", "on-poll"]);

    let stderr = stderr(&output);
    assert!(output.status.success(), "{report}\n{stderr}");
    assert_eq!(connector(&report, "to_nats")["errors"], 0, "{report}");
    let orders: Vec<u64> = rt
        .block_on(read_stream(&js, "ORDERS"))
        .iter()
        .map(|m| m.payload["order"].as_u64().expect("order"))
        .collect();
    assert_eq!(orders, [1, 2, 4, 6, 8, 9, 10, 11]);
    for offset in [0, 3, 5, 7] {
        assert!(
            stderr.contains(&format!("message at offset {offset}")),
            "offset {offset} is named: {stderr}"
        );
    }
    assert!(stderr.contains("4 skipped so far"), "{stderr}");
}
