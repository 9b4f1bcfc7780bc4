//! The sink against a real nats-server with JetStream (started per test on a
//! free loopback port), driven through the real harness binary.

mod common;

use async_nats::jetstream::{self, stream};
use common::*;
use iggy_harness_test_support::nats::NatsServer;
use iggy_harness_test_support::*;
use std::time::Duration;

#[test]
fn messages_arrive_with_templated_subjects_headers_and_ids() {
    let ws = Workspace::new();
    let server = NatsServer::start(ws.dir.path());
    let rt = runtime();
    let js = rt.block_on(context(&server.url()));
    rt.block_on(create_stream(&js, "ORDERS", &["orders.>"]));
    let lines: String = (0..300)
        .map(|i| {
            let region = if i % 3 == 0 { "eu" } else { "us" };
            format!("{{\"headers\":{{\"source\":\"web\"}},\"payload\":{{\"order\":{i},\"region\":\"{region}\"}}}}\n")
        })
        .collect();
    ws.produce_lines("created", &lines, true);
    let config = format!(
        "{}subject = \"orders.{{payload.region}}.{{topic}}\"\nstream = \"ORDERS\"\nmetadata_headers = true",
        connection(&server)
    );
    ws.sink("to_nats", &sink_library(), "created", &config);
    let (output, report) = ws.run(&[]);
    assert!(output.status.success(), "{report}\n{}", stderr(&output));

    let received = rt.block_on(read_stream(&js, "ORDERS"));
    assert_eq!(received.len(), 300);
    for (offset, message) in received.iter().enumerate() {
        let region = if offset % 3 == 0 { "eu" } else { "us" };
        assert_eq!(message.subject, format!("orders.{region}.created"));
        assert_eq!(
            message.payload,
            serde_json::json!({"order": offset, "region": region})
        );
        assert_eq!(header(message, "source").as_deref(), Some("web"));
        assert_eq!(
            header(message, "Nats-Msg-Id"),
            Some(format!("orders/created/1/{offset}"))
        );
        assert_eq!(header(message, "Iggy-Offset"), Some(offset.to_string()));
        assert_eq!(header(message, "Iggy-Topic").as_deref(), Some("created"));
    }
}

#[test]
fn redelivered_and_replayed_batches_are_dropped_by_the_duplicate_window() {
    let ws = Workspace::new();
    let server = NatsServer::start(ws.dir.path());
    let rt = runtime();
    let js = rt.block_on(context(&server.url()));
    rt.block_on(create_stream(&js, "ORDERS", &["orders.>"]));
    ws.produce("created", 1000);
    let config = format!("{}subject = \"orders.created\"", connection(&server));
    ws.sink("first", &sink_library(), "created", &config);
    let (output, _) = ws.run(&["--fault", "redeliver-every=2"]);
    assert!(output.status.success());
    // A second sink (another consumer group) replays the whole topic.
    std::fs::remove_file(ws.connectors().join("first.toml")).unwrap();
    ws.sink("second", &sink_library(), "created", &config);
    let (output, report) = ws.run(&[]);
    assert!(output.status.success());
    assert_eq!(connector(&report, "second")["messages_out"], 1000);

    let received = rt.block_on(read_stream(&js, "ORDERS"));
    assert_eq!(
        received.len(),
        1000,
        "every redelivery and replay was a duplicate"
    );
    let seqs: Vec<u64> = received
        .iter()
        .map(|m| m.payload["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, (0..1000).collect::<Vec<_>>());
}

#[test]
fn unresolvable_subjects_are_skipped_by_default_or_fail_the_batch_as_configured() {
    let ws = Workspace::new();
    let server = NatsServer::start(ws.dir.path());
    let rt = runtime();
    let js = rt.block_on(context(&server.url()));
    rt.block_on(create_stream(&js, "ORDERS", &["orders.>"]));
    let lines: String = (0..10)
        .map(|i| match i % 5 {
            0 => format!("{{\"order\":{i}}}\n"),
            _ => format!("{{\"order\":{i},\"region\":\"eu\"}}\n"),
        })
        .collect();
    ws.produce_lines("created", &lines, false);
    let template = "subject = \"orders.{payload.region}\"\nstream = \"ORDERS\"\n";
    ws.sink(
        "skipper",
        &sink_library(),
        "created",
        &format!("{}{template}", connection(&server)),
    );
    let (output, _) = ws.run_ok(&[]);
    assert!(stderr(&output).contains("skipped the message at offset 5"));
    assert_eq!(rt.block_on(read_stream(&js, "ORDERS")).len(), 8);

    std::fs::remove_file(ws.connectors().join("skipper.toml")).unwrap();
    ws.sink(
        "strict",
        &sink_library(),
        "created",
        &format!(
            "{}{template}on_unresolved_subject = \"fail\"",
            connection(&server)
        ),
    );
    // Offsets committed on poll, as runtime 0.5.x does: the failed batch is lost.
    let (output, report) = ws.run(&["--commit", "on-poll"]);
    let strict = connector(&report, "strict");
    assert_eq!(strict["errors"], 1, "{report}");
    assert_eq!(strict["messages_out"], 0, "{report}");
    assert!(stderr(&output).contains("message at offset 0: payload field `region` is missing"));
    assert_eq!(
        rt.block_on(read_stream(&js, "ORDERS")).len(),
        8,
        "nothing of the failed batch was published"
    );
}

#[test]
fn create_stream_makes_the_stream_with_the_configured_settings() {
    let ws = Workspace::new();
    let server = NatsServer::start(ws.dir.path());
    ws.produce("created", 50);
    let config = format!(
        "{}subject = \"shop.{{topic}}\"\nstream = \"SHOP\"\n[plugin_config.create_stream]\nstorage = \"memory\"\nduplicate_window = \"5m\"\n",
        connection(&server)
    );
    ws.sink("creator", &sink_library(), "created", &config);
    ws.run_ok(&[]);
    let rt = runtime();
    let js = rt.block_on(context(&server.url()));
    let info = rt.block_on(async {
        js.get_stream("SHOP")
            .await
            .unwrap()
            .info()
            .await
            .unwrap()
            .clone()
    });
    assert_eq!(info.config.subjects, vec!["shop.*".to_string()]);
    assert_eq!(info.config.duplicate_window, Duration::from_secs(300));
    assert_eq!(info.config.storage, stream::StorageType::Memory);
    assert_eq!(info.state.messages, 50);
}

#[test]
fn open_fails_clearly_when_no_stream_captures_the_subject() {
    let ws = Workspace::new();
    let server = NatsServer::start(ws.dir.path());
    ws.sink(
        "lost",
        &sink_library(),
        "created",
        &format!("{}subject = \"nowhere.x\"", connection(&server)),
    );
    let report: serde_json::Value = serde_json::from_str(&ws.failed_check("lost")).unwrap();
    let log = report["log"].to_string();
    assert!(
        log.contains("no JetStream stream captures subject `nowhere.x`"),
        "{log}"
    );
}

#[test]
fn unreachable_servers_wrong_passwords_and_unknown_keys_are_clear_errors() {
    let ws = Workspace::new();
    let server =
        NatsServer::start_with(ws.dir.path(), &["--user", "iggy", "--pass", "right-pass-1"]);
    let dead_port = process::free_port();
    let cases = [
        (
            format!(
                "servers = [\"nats://127.0.0.1:{dead_port}\"]\nconnect_timeout = \"500ms\"\nsubject = \"a\""
            ),
            "cannot connect to NATS at nats://127.0.0.1:",
        ),
        (
            format!(
                "servers = [\"{}\"]\nsubject = \"a\"\n[plugin_config.auth]\nuser = \"iggy\"\npassword = \"wrong-pass-2\"",
                server.url()
            ),
            "cannot connect to NATS",
        ),
        (
            format!(
                "servers = [\"{}\"]\nsubject = \"a\"\nsubjekt = \"b\"",
                server.url()
            ),
            "unknown setting `subjekt`",
        ),
    ];
    ws.assert_each_refused(&cases, &["wrong-pass-2", "right-pass-1"], |key, config| {
        ws.sink(key, &sink_library(), "created", config);
    });
    // The right password works.
    let rt = runtime();
    let js = rt.block_on(async {
        let client = async_nats::ConnectOptions::with_user_and_password(
            "iggy".into(),
            "right-pass-1".into(),
        )
        .connect(server.url())
        .await
        .expect("test client connects with the password");
        jetstream::new(client)
    });
    rt.block_on(create_stream(&js, "ORDERS", &["a"]));
    ws.sink("good", &sink_library(), "created", &format!("servers = [\"{}\"]\nsubject = \"a\"\n[plugin_config.auth]\nuser = \"iggy\"\npassword = {{ env = \"NATS_TEST_PASSWORD\" }}", server.url()));
    let output = ws.check_with_env("good", &[("NATS_TEST_PASSWORD", "right-pass-1")]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
}

#[test]
fn a_server_crash_mid_run_loses_and_duplicates_nothing() {
    let ws = Workspace::new();
    let mut server = server_with_orders(&ws, 60_000);
    let config = format!(
        "{}subject = \"orders.created\"\nmax_reconnects = 1000\n[plugin_config.retry]\nmax_attempts = 20\nmax_delay = \"1s\"\n",
        connection(&server)
    );
    ws.sink("to_nats", &sink_library(), "created", &config);
    let (output, report) = std::thread::scope(|scope| {
        let run = scope.spawn(|| ws.run(&["--max-attempts", "50", "--commit", "after-consume"]));
        // Crash the server once part of the topic is published.
        wait_for_stored(&server, 2000);
        server.kill();
        std::thread::sleep(Duration::from_millis(1500));
        server.restart();
        run.join().unwrap()
    });
    let stderr = stderr(&output);
    assert!(output.status.success(), "{report}\n{stderr}");
    assert!(
        stderr.contains("event: disconnected"),
        "the crash happened while the sink was publishing"
    );
    let rt = runtime();
    let js = rt.block_on(context(&server.url()));
    assert_each_once(&rt.block_on(read_stream(&js, "ORDERS")), 60_000);
}

#[test]
fn conformance_runs_every_check_with_a_config_that_opens_and_lists_the_rest_otherwise() {
    let ws = Workspace::new();
    let server = NatsServer::start(ws.dir.path());
    let rt = runtime();
    let js = rt.block_on(context(&server.url()));
    rt.block_on(create_stream(&js, "ORDERS", &["orders.>"]));
    ws.sink(
        "conf",
        &sink_library(),
        "created",
        &format!("{}subject = \"orders.x\"", connection(&server)),
    );
    let library = sink_library();
    let file = ws.connectors().join("conf.toml");
    let full = ws.harness(&[
        "--json",
        "conformance",
        library.to_str().unwrap(),
        "--connector",
        file.to_str().unwrap(),
    ]);
    let reports: serde_json::Value = serde_json::from_slice(&full.stdout).unwrap();
    assert!(full.status.success(), "{reports}");
    assert_eq!(reports[0]["not_run"], serde_json::json!([]));
    assert!(
        reports[0]["checks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["name"] == "second open of a live id refused" && c["ok"] == true)
    );

    let partial = ws.harness(&["--json", "conformance", library.to_str().unwrap()]);
    let reports: serde_json::Value = serde_json::from_slice(&partial.stdout).unwrap();
    assert!(partial.status.success(), "{reports}");
    assert!(
        reports[0]["not_run"].as_array().unwrap().len() == 4,
        "{reports}"
    );
    let empty = &reports[0]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"].as_str().unwrap().starts_with("an empty config"))
        .cloned()
        .unwrap();
    assert!(
        empty["detail"]
            .as_str()
            .unwrap()
            .contains("missing field `subject`"),
        "{empty}"
    );
}
