//! Deduplication beyond the duplicate window against a real nats-server: a
//! subject per message key on a stream that keeps one message per subject
//! and refuses the next (`discard_new_per_subject`). Runs on 2.15.3 and on
//! Debian's 2.9.10 (scripts/test), which both have the setting.

mod common;

use async_nats::jetstream::stream;
use common::*;
use iggy_harness_test_support::nats::NatsServer;
use iggy_harness_test_support::*;
use std::time::Duration;

const DEDUP_BY_KEY: &str =
    "max_messages_per_subject = 1\ndiscard = \"new\"\ndiscard_new_per_subject = true\n";

/// Orders `0..count` with key `k<i % keys>`, payload `{"id", "n"}`.
fn orders(count: usize, keys: usize) -> String {
    (0..count)
        .map(|n| format!("{{\"id\":\"k{}\",\"n\":{n}}}\n", n % keys))
        .collect()
}

/// A sink connector `key` publishing `orders.<id>` into `ORDERS`, created
/// with the `[create_stream]` lines `create_stream`.
fn keyed_sink(ws: &Workspace, server: &NatsServer, key: &str, create_stream: &str) {
    let config = format!(
        "{}subject = \"orders.{{payload.id}}\"\nstream = \"ORDERS\"\n[plugin_config.create_stream]\n{create_stream}",
        connection(server)
    );
    ws.sink(key, &sink_library(), "created", &config);
}

/// Runs the harness; panics with the report unless it succeeded without a failed batch.
fn run_ok(ws: &Workspace, extra: &[&str]) -> std::process::Output {
    let (output, report) = ws.run(extra);
    assert!(output.status.success(), "{report}");
    let connectors = report["connectors"].as_array().expect("connectors");
    assert!(connectors.iter().all(|c| c["errors"] == 0), "{report}");
    output
}

/// The sink's counters as it logs them when it closes.
fn closing_counters(output: &std::process::Output) -> String {
    let stderr = stderr(output);
    let line = stderr
        .lines()
        .find(|l| l.contains("NATS JetStream sink") && l.contains("closed:"))
        .unwrap_or_else(|| panic!("no closing line in: {stderr}"));
    line.split("closed: ").nth(1).unwrap().to_string()
}

#[test]
fn keys_replayed_after_the_duplicate_window_are_stored_once_and_counted_as_duplicates() {
    let ws = Workspace::new();
    let server = NatsServer::start(ws.dir.path());
    let rt = runtime();
    // 100 keys, 20 of them sent twice with another payload.
    ws.produce_lines("created", &orders(120, 100), false);
    let create_stream = format!("duplicate_window = \"1s\"\n{DEDUP_BY_KEY}");
    keyed_sink(&ws, &server, "first", &create_stream);
    let output = run_ok(&ws, &[]);
    assert_eq!(
        closing_counters(&output),
        "stored=100 duplicates=20 retried=0 skipped=0 withheld_nats_headers=0 failed_batches=0"
    );
    // A window shorter than the sink's retries is named at open.
    let log = stderr(&output);
    assert!(
        log.contains("remembers message ids for 1s but retry.max_elapsed is 300s"),
        "{log}"
    );

    // Past the 1 s window, the sink's own Nats-Msg-Id no longer deduplicates:
    // only the per-subject refusal does, with the answer the sink reads.
    std::thread::sleep(Duration::from_millis(1500));
    let answer = rt.block_on(async {
        let client = async_nats::connect(server.url()).await.unwrap();
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", "orders/created/1/0");
        let reply = client
            .request_with_headers("orders.k0", headers, "again".into())
            .await
            .unwrap();
        String::from_utf8_lossy(&reply.payload).to_string()
    });
    assert!(
        answer.contains("\"err_code\":10077")
            && answer.contains("maximum messages per subject exceeded"),
        "{answer}"
    );

    // A second consumer group replays the whole topic, each batch twice.
    std::fs::remove_file(ws.connectors().join("first.toml")).unwrap();
    keyed_sink(&ws, &server, "second", &create_stream);
    let output = run_ok(&ws, &["--fault", "redeliver-every=1"]);
    assert_eq!(
        closing_counters(&output),
        "stored=0 duplicates=240 retried=0 skipped=0 withheld_nats_headers=0 failed_batches=0"
    );

    let js = rt.block_on(context(&server.url()));
    let received = rt.block_on(read_stream(&js, "ORDERS"));
    assert_eq!(received.len(), 100, "each key stored once");
    for (n, message) in received.iter().enumerate() {
        assert_eq!(message.subject, format!("orders.k{n}"));
        assert_eq!(
            message.payload,
            serde_json::json!({"id": format!("k{n}"), "n": n}),
            "the first message of a key is the one kept"
        );
    }
}

#[test]
fn a_subject_full_for_good_leaves_the_message_out_without_retrying() {
    let ws = Workspace::new();
    let server = NatsServer::start(ws.dir.path());
    // Two a key allowed, three sent: the third is not a duplicate, and no retry stores it.
    ws.produce_lines("created", &orders(9, 3), false);
    keyed_sink(
        &ws,
        &server,
        "capped",
        "max_messages_per_subject = 2\ndiscard = \"new\"\ndiscard_new_per_subject = true\n",
    );
    let output = run_ok(&ws, &[]);
    assert_eq!(
        closing_counters(&output),
        "stored=6 duplicates=0 retried=0 skipped=3 withheld_nats_headers=0 failed_batches=0"
    );
    assert!(
        stderr(&output).contains(
            "message at offset 6 left out: the server can never store it: maximum messages per subject exceeded"
        )
    );
    let rt = runtime();
    let js = rt.block_on(context(&server.url()));
    assert_eq!(rt.block_on(read_stream(&js, "ORDERS")).len(), 6);
}

/// Runs `check` on a keyed sink and returns its JSON report (exit code 1 expected).
fn failed_check(ws: &Workspace, server: &NatsServer, key: &str, create_stream: &str) -> String {
    keyed_sink(ws, server, key, create_stream);
    ws.failed_check(key)
}

#[test]
fn per_subject_settings_that_cannot_work_fail_open_naming_the_setting() {
    let ws = Workspace::new();
    let server = NatsServer::start(ws.dir.path());
    let cases = [
        (
            "max_messages_per_subject = 1\ndiscard_new_per_subject = true\n",
            "create_stream.discard_new_per_subject needs create_stream.discard = \\\"new\\\"",
        ),
        (
            "discard = \"new\"\ndiscard_new_per_subject = true\n",
            "create_stream.discard_new_per_subject needs create_stream.max_messages_per_subject of at least 1",
        ),
        (
            "max_messages_per_subject = 0\n",
            "create_stream.max_messages_per_subject must be -1 (unlimited) or at least 1, not 0",
        ),
    ];
    for (index, (settings, expected)) in cases.iter().enumerate() {
        let text = failed_check(&ws, &server, &format!("case{index}"), settings);
        assert!(text.contains(expected), "case {index}: {text}");
    }

    // An existing stream without the setting is not changed behind the user's back.
    let rt = runtime();
    let js = rt.block_on(context(&server.url()));
    rt.block_on(create_stream(&js, "ORDERS", &["orders.>"]));
    let text = failed_check(&ws, &server, "existing", DEDUP_BY_KEY);
    assert!(
        text.contains("create_stream.discard_new_per_subject: stream `ORDERS` exists with discard = Old, discard_new_per_subject = false, max_messages_per_subject = -1"),
        "{text}"
    );
    let info = rt.block_on(async {
        js.get_stream("ORDERS")
            .await
            .unwrap()
            .info()
            .await
            .unwrap()
            .config
            .clone()
    });
    assert_eq!(info.discard, stream::DiscardPolicy::Old);
}
