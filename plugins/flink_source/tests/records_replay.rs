//! Records mode driven through the real harness binary against a REPLAY of
//! Flink's SQL Gateway: `common::Replay` answers with the exchanges recorded
//! from a real Flink 1.20.3 gateway (`tests/fixtures/gw-*`, the REST calls
//! from `rest-*`) and enforces the token rules seen while recording.
//! `gateway.rs` runs records mode against a real gateway; what stays here
//! is only what the real one cannot be made to show:
//! - one failed page fetch followed by a good one on the same token (a real
//!   gateway fails a token for good or not at all);
//! - a bad setting refused by `open` (no gateway involved);
//! - a built Kafka table's topic/partition/offset headers (no Kafka here);
//! - bearer and basic auth (Flink has none; it comes from a proxy);
//! - TLS with a private CA and client certificates (the gateway's TLS needs
//!   Java keystores the tests do not build);
//! - a row over the runtime's 64,000,000-byte payload limit (a real query
//!   would have to produce and buffer it).

mod common;

use common::*;
use iggy_harness_test_support::{Workspace, plugin};

/// Long enough for the empty pages a recorded query starts with.
const IDLE: &str = "3s";

fn library() -> std::path::PathBuf {
    plugin("iggy_connector_flink_source")
}

fn source(ws: &Workspace, config: &str) {
    ws.source(KEY, &library(), TOPIC, config);
}

#[test]
fn a_failed_fetch_is_retried_on_the_same_token() {
    let replay = Replay::start(vec![QueryScript::recorded("gw-21-select-1s-checkpoint")]);
    // Token 5 holds the first recorded rows (gw-21 page006).
    replay.fail_once_at(&[5]);
    let ws = Workspace::new();
    source(
        &ws,
        &records_config(
            &replay,
            "sql = \"SELECT * FROM orders\"\nsavepoint_on_close = false",
            "",
        ),
    );
    let (output, report) = run(&ws, IDLE, &[]);
    assert_ran(&output, &report);
    assert_eq!(ws.dump(TOPIC).len(), 10);
    let tokens = replay.fetched_tokens();
    assert_eq!(tokens.iter().filter(|t| **t == 5).count(), 2, "{tokens:?}");
    assert!(replay.rejected().is_empty(), "{:?}", replay.rejected());
}

#[test]
fn a_bad_setting_fails_open_naming_the_field() {
    let ws = Workspace::new();
    source(
        &ws,
        "flink_cluster_url = \"http://127.0.0.1:1\"\nsql_gateway_url = \"http://127.0.0.1:1\"\n\
         [plugin_config.records]\nsource_type = \"kafka\"\ncolumns = [\"a INT\"]",
    );
    let file = ws.connectors().join(format!("{KEY}.toml"));
    let output = ws.harness(&["--json", "check", file.to_str().expect("path")]);
    let text = String::from_utf8_lossy(&output.stdout).to_string()
        + &String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{text}");
    assert!(
        text.contains("records.source_identifier is required"),
        "{text}"
    );

    source(
        &ws,
        "flink_cluster_url = \"http://127.0.0.1:1\"\n[plugin_config.monitor]\njob_nme_pattern = \"x\"",
    );
    let output = ws.harness(&["--json", "check", file.to_str().expect("path")]);
    let text = String::from_utf8_lossy(&output.stdout).to_string()
        + &String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{text}");
    assert!(text.contains("job_nme_pattern"), "{text}");
}

#[test]
fn a_table_built_from_source_settings_carries_source_partition_and_offset_headers() {
    // The recorded rows with the three metadata columns a Kafka table adds.
    let script = QueryScript::recorded("gw-21-select-1s-checkpoint").with_columns(
        &[
            (
                "iggy_source",
                serde_json::json!({"type": "VARCHAR", "nullable": true, "length": 2147483647}),
            ),
            (
                "iggy_partition",
                serde_json::json!({"type": "INTEGER", "nullable": true}),
            ),
            (
                "iggy_offset",
                serde_json::json!({"type": "BIGINT", "nullable": true}),
            ),
        ],
        |row| vec!["orders".into(), (row % 2).into(), (1000 + row).into()],
    );
    let replay = Replay::start(vec![script]);
    let ws = Workspace::new();
    source(
        &ws,
        &records_config(
            &replay,
            "source_type = \"kafka\"\nsource_identifier = \"orders\"\ninitial_offset = \"earliest\"\n\
             columns = [\"order_id BIGINT\", \"customer STRING\", \"amount DECIMAL(10,2)\", \"ts TIMESTAMP_LTZ(3)\"]\n\
             skip_errors = true\nsavepoint_on_close = false\n\
             [plugin_config.records.properties]\n\"properties.bootstrap.servers\" = \"127.0.0.1:9092\"\nformat = \"json\"",
            "",
        ),
    );
    let (output, report) = run(&ws, IDLE, &[]);
    assert_ran(&output, &report);
    let create = replay.configured();
    assert_eq!(
        create,
        [
            "CREATE TEMPORARY TABLE `iggy_flink_source` (\n  order_id BIGINT,\n  customer STRING,\n  amount DECIMAL(10,2),\n  ts TIMESTAMP_LTZ(3),\n  \
          `iggy_source` STRING METADATA FROM 'topic' VIRTUAL,\n  `iggy_partition` INT METADATA FROM 'partition' VIRTUAL,\n  \
          `iggy_offset` BIGINT METADATA FROM 'offset' VIRTUAL\n) WITH (\n  'connector' = 'kafka',\n  'format' = 'json',\n  \
          'json.ignore-parse-errors' = 'true',\n  'properties.bootstrap.servers' = '127.0.0.1:9092',\n  \
          'scan.startup.mode' = 'earliest-offset',\n  'topic' = 'orders'\n)"
        ]
    );
    assert_eq!(
        replay.submitted()[0]["statement"],
        "SELECT * FROM `iggy_flink_source`"
    );
    let messages = ws.dump(TOPIC);
    assert_eq!(messages.len(), 10);
    for (n, message) in messages.iter().enumerate() {
        assert_eq!(header(message, "source"), Some("orders"));
        assert_eq!(
            header(message, "partition"),
            Some((n % 2).to_string().as_str())
        );
        assert_eq!(
            header(message, "offset"),
            Some((1000 + n).to_string().as_str())
        );
        let payload = message["payload"].as_object().expect("object");
        assert_eq!(
            payload.keys().collect::<Vec<_>>(),
            ["amount", "customer", "order_id", "ts"],
            "metadata columns leave the payload"
        );
    }
}

#[test]
fn bearer_and_basic_auth_reach_flink_and_stay_out_of_the_logs() {
    for (auth, header_value) in [
        (
            "auth_type = \"bearer\"\ntoken = \"s3cr3t-t0ken\"",
            "Bearer s3cr3t-t0ken",
        ),
        (
            "auth_type = \"basic\"\nusername = \"iggy\"\npassword = \"s3cr3t-t0ken\"",
            // base64("iggy:s3cr3t-t0ken")
            "Basic aWdneTpzM2NyM3QtdDBrZW4=",
        ),
    ] {
        let replay = Replay::start(vec![QueryScript::recorded("gw-23-select-bounded-eos")]);
        replay.require_authorization(header_value);
        let ws = Workspace::new();
        let config = records_config(&replay, "sql = \"SELECT * FROM orders_bounded\"", "")
            .replacen(
                "[plugin_config.retry]",
                &format!("[plugin_config.auth]\n{auth}\n\n[plugin_config.retry]"),
                1,
            );
        source(&ws, &config);
        let (output, report) = run(&ws, IDLE, &["--plugin-log", "debug"]);
        assert_ran(&output, &report);
        assert_eq!(ws.dump(TOPIC).len(), 12);
        assert!(
            replay
                .received()
                .iter()
                .all(|r| r.authorization.as_deref() == Some(header_value))
        );
        let text = String::from_utf8_lossy(&output.stdout).to_string()
            + &String::from_utf8_lossy(&output.stderr);
        assert!(
            !text.contains("s3cr3t"),
            "a credential reached the output: {text}"
        );
        // The replay answers on http://: the credentials crossed in clear text.
        let warnings: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("[plugin WARN"))
            .filter(|l| l.contains("credentials go in clear text"))
            .collect();
        assert_eq!(warnings.len(), 2, "one per http:// endpoint: {text}");
        assert!(
            warnings[0].contains("Flink source 1") && warnings[0].contains("flink_cluster_url"),
            "{warnings:?}"
        );
        assert!(warnings[1].contains("sql_gateway_url"), "{warnings:?}");
    }
}

#[test]
fn tls_with_a_private_ca_and_a_client_certificate() {
    let tls = |client: bool| {
        let mut table = format!(
            "[plugin_config.tls]\nca_file = \"{}\"\n",
            tls_file("ca.pem")
        );
        if client {
            table.push_str(&format!(
                "client_cert_file = \"{}\"\nclient_key_file = \"{}\"\n",
                tls_file("client.pem"),
                tls_file("client.key")
            ));
        }
        table
    };
    let replay = Replay::start_tls(
        vec![QueryScript::recorded("gw-23-select-bounded-eos")],
        true,
    );
    assert!(replay.url().starts_with("https://"));
    let config = |tls: &str| {
        records_config(&replay, "sql = \"SELECT * FROM orders_bounded\"", "").replacen(
            "[plugin_config.retry]",
            &format!("{tls}\n[plugin_config.retry]"),
            1,
        )
    };
    let ws = Workspace::new();
    source(&ws, &config(&tls(true)));
    let (output, report) = run(&ws, IDLE, &[]);
    assert_ran(&output, &report);
    assert_eq!(ws.dump(TOPIC).len(), 12);

    // Without a client certificate the gateway refuses the handshake, and
    // without the CA the plugin refuses the gateway's certificate.
    for (tls, reason) in [
        (tls(false), "CertificateRequired"),
        (String::new(), "UnknownIssuer"),
    ] {
        let ws = Workspace::new();
        source(&ws, &config(&tls));
        let file = ws.connectors().join(format!("{KEY}.toml"));
        let output = ws.harness(&["--json", "check", file.to_str().expect("path")]);
        let text = String::from_utf8_lossy(&output.stdout).to_string()
            + &String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{text}");
        // A machine without system CA certificates fails earlier, saying so.
        assert!(
            text.contains(reason) || text.contains("cannot load the system's CA certificates"),
            "{text}"
        );
    }
}

#[test]
fn a_row_over_the_runtimes_payload_limit_is_skipped_and_the_rest_delivered() {
    // One row of the recorded bounded query gets a 64,000,001-byte column:
    // the runtime would refuse its whole batch, again on every fetch.
    let huge = 3;
    let script = QueryScript::recorded("gw-23-select-bounded-eos").with_columns(
        &[(
            "note",
            serde_json::json!({"type": "VARCHAR", "nullable": true, "length": 2147483647}),
        )],
        |row| {
            let note = if row == huge {
                "x".repeat(64_000_001)
            } else {
                format!("n{row}")
            };
            vec![note.into()]
        },
    );
    let rows = script.rows();
    let replay = Replay::start(vec![script]);
    let ws = Workspace::new();
    source(
        &ws,
        &records_config(&replay, "sql = \"SELECT * FROM orders_bounded\"", ""),
    );
    let (output, report) = run(&ws, IDLE, &[]);
    assert_ran(&output, &report);
    let notes: Vec<String> = ws
        .dump(TOPIC)
        .iter()
        .map(|m| m["payload"]["note"].as_str().expect("note").to_string())
        .collect();
    let expected: Vec<String> = (0..rows)
        .filter(|row| *row != huge)
        .map(|row| format!("n{row}"))
        .collect();
    assert_eq!(notes, expected);
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(
        log.lines().any(|l| l.starts_with("[plugin WARN")
            && l.contains("Flink source 1: skipped message")
            && l.contains("over the runtime's limit")),
        "{log}"
    );
}
