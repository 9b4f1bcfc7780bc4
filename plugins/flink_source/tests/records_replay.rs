//! Records mode driven through the real harness binary against a REPLAY of
//! Flink's SQL Gateway: no SQL Gateway can run on this machine (its jar is
//! not in the PyPI Flink distribution), so `common::Replay` answers with the
//! exchanges recorded from a real Flink 1.20.3 gateway (`tests/fixtures/gw-*`)
//! and enforces the token rules seen while recording. The REST calls records
//! mode makes (stop-with-savepoint, the job's savepoints) are replayed from
//! `rest-65`, `rest-66` and a checkpoint listing recorded after a real stop;
//! `cluster.rs` makes the same calls against a real cluster.

mod common;

use common::*;
use harness_test_support::{Workspace, connector, plugin};
use serde_json::Value;
use std::collections::BTreeSet;

/// Long enough for the empty pages a recorded query starts with.
const IDLE: &str = "3s";

fn library() -> std::path::PathBuf {
    plugin("iggy_connector_flink_source")
}

fn source(ws: &Workspace, config: &str) {
    ws.source(KEY, &library(), TOPIC, config);
}

fn ids(messages: &[Value]) -> BTreeSet<String> {
    messages
        .iter()
        .map(|m| m["id"].as_str().expect("id").to_string())
        .collect()
}

fn kinds(messages: &[Value]) -> Vec<String> {
    messages
        .iter()
        .map(|m| header(m, "row_kind").expect("row_kind").to_string())
        .collect()
}

#[test]
fn streaming_rows_arrive_as_json_keyed_by_column_with_kind_and_job_headers() {
    let script = QueryScript::recorded("gw-21-select-1s-checkpoint");
    let rows = script.rows();
    let job = script.job_id.clone();
    let replay = Replay::start(vec![script]);
    let ws = Workspace::new();
    source(
        &ws,
        &records_config(
            &replay,
            "sql = \"SELECT order_id, customer, amount, ts FROM orders\"\n\
             setup_statements = [\"CREATE TABLE orders (order_id BIGINT) WITH ('connector' = 'datagen')\"]\n\
             savepoint_on_close = false\njob_name = \"iggy-select-1s-checkpoints\"\nheartbeat_interval = \"300ms\"",
            "",
        ),
    );
    let (output, report) = run(&ws, IDLE, &[]);
    assert_ran(&output, &report);

    let messages = ws.dump(TOPIC);
    assert_eq!(rows, 10, "gw-21 recorded two pages of five rows");
    assert_eq!(messages.len(), rows);
    assert_eq!(ids(&messages).len(), rows, "every row has its own id");
    // The first row of gw-21-select-1s-checkpoint-page006.json.
    assert_eq!(
        messages[0]["payload"],
        serde_json::json!({"order_id": 361031009, "customer": "e35ae9", "amount": 423.46, "ts": "2026-11-21T09:58:29.108Z"})
    );
    for message in &messages {
        assert_eq!(header(message, "row_kind"), Some("INSERT"));
        assert_eq!(header(message, "job_id"), Some(job.as_str()));
        assert_eq!(header(message, "source"), None, "no source column or type");
    }
    assert_eq!(
        connector(&report, KEY)["messages_out"],
        rows as u64,
        "{report}"
    );

    assert!(replay.rejected().is_empty(), "{:?}", replay.rejected());
    let opened = replay
        .received()
        .into_iter()
        .find(|r| r.path == "/v3/sessions")
        .expect("a session was opened");
    assert_eq!(
        opened.body["properties"]["execution.runtime-mode"],
        "streaming"
    );
    assert_eq!(
        replay.configured(),
        ["CREATE TABLE orders (order_id BIGINT) WITH ('connector' = 'datagen')"]
    );
    let submitted = replay.submitted();
    assert_eq!(submitted.len(), 1);
    assert_eq!(
        submitted[0]["statement"],
        "SELECT order_id, customer, amount, ts FROM orders"
    );
    assert_eq!(
        submitted[0]["executionConfig"]["execution.checkpointing.interval"],
        "1000ms"
    );
    assert_eq!(
        submitted[0]["executionConfig"]["pipeline.name"],
        "iggy-select-1s-checkpoints"
    );
    let heartbeats = replay
        .received()
        .iter()
        .filter(|r| r.path.ends_with("/heartbeat"))
        .count();
    assert!(heartbeats >= 1, "the session is kept alive");
    // Every token in order; NOT_READY repeats token 0.
    let tokens = replay.fetched_tokens();
    assert_eq!(&tokens[..2], [0, 0], "{tokens:?}");
    assert!(
        tokens.windows(2).all(|w| w[1] == w[0] || w[1] == w[0] + 1),
        "{tokens:?}"
    );
}

#[test]
fn changelog_rows_keep_their_kinds() {
    let script = QueryScript::recorded("gw-22-select-changelog-agg");
    let rows = script.rows();
    let replay = Replay::start(vec![script]);
    let ws = Workspace::new();
    source(
        &ws,
        &records_config(
            &replay,
            "sql = \"SELECT SUBSTRING(customer,1,1) AS k, COUNT(*) AS cnt, SUM(amount) AS total FROM orders GROUP BY SUBSTRING(customer,1,1)\"\n\
             savepoint_on_close = false",
            "",
        ),
    );
    let (output, report) = run(&ws, IDLE, &[]);
    assert_ran(&output, &report);
    let messages = ws.dump(TOPIC);
    assert_eq!(messages.len(), rows);
    let kinds = kinds(&messages);
    assert_eq!(&kinds[..11], ["INSERT"; 11], "{kinds:?}");
    // gw-22-select-changelog-agg-page019.json: group "9" counted twice more.
    assert_eq!(
        &kinds[11..],
        [
            "UPDATE_BEFORE",
            "UPDATE_AFTER",
            "UPDATE_BEFORE",
            "UPDATE_AFTER",
            "UPDATE_BEFORE",
            "UPDATE_AFTER",
            "UPDATE_BEFORE",
            "UPDATE_AFTER"
        ]
    );
    assert_eq!(
        messages[11]["payload"],
        serde_json::json!({"k": "9", "cnt": 1, "total": 81.99})
    );
    assert_eq!(
        messages[12]["payload"],
        serde_json::json!({"k": "9", "cnt": 2, "total": 327.59})
    );
    assert!(replay.rejected().is_empty(), "{:?}", replay.rejected());
}

#[test]
fn a_bounded_query_ends_at_eos_and_stays_finished() {
    let replay = Replay::start(vec![QueryScript::recorded("gw-23-select-bounded-eos")]);
    let ws = Workspace::new();
    let config = records_config(&replay, "sql = \"SELECT * FROM orders_bounded\"", "");
    source(&ws, &config);
    // After EOS the plugin looks for a stop savepoint for 5 s (Flink's REST
    // cache) before it calls the query finished.
    let (output, report) = run(&ws, "8s", &[]);
    assert_ran(&output, &report);
    let messages = ws.dump(TOPIC);
    assert_eq!(
        messages.len(),
        12,
        "gw-23-select-bounded-eos-page002.json has 12 rows"
    );
    // BIGINT beyond 2^53 keeps every digit.
    assert_eq!(
        messages[0]["payload"]["order_id"].as_u64(),
        Some(7930080602373774240)
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("the query reached its end"), "{stderr}");
    // EOS without a stop: no savepoint is looked for beyond the job's list.
    assert!(!replay.received().iter().any(|r| r.path.ends_with("/stop")));

    // The state says the query is done: a restart submits nothing.
    let before = replay.submitted().len();
    let (output, report) = run(&ws, IDLE, &[]);
    assert_ran(&output, &report);
    assert_eq!(replay.submitted().len(), before);
    assert_eq!(ws.dump(TOPIC).len(), 12);
}

#[test]
fn large_pages_are_split_into_batches_and_a_nacked_batch_is_read_again() {
    let script = QueryScript::recorded("gw-20-select");
    let rows = script.rows();
    assert_eq!(rows, 95, "gw-20 recorded pages of 45 and 50 rows");
    let replay = Replay::start(vec![script]);
    let ws = Workspace::new();
    source(
        &ws,
        &records_config(
            &replay,
            "sql = \"SELECT order_id, customer, amount, ts FROM orders\"\nsavepoint_on_close = false",
            "batch_size = 20\nmax_poll_interval_ms = 20",
        ),
    );
    // gw-20 recorded 44 empty pages before the first rows, and 49 between
    // the two pages with rows: each is a state save, none moves a message.
    let (output, report) = run(&ws, "8s", &["--fault", "nack-every=3"]);
    assert_ran(&output, &report);
    let messages = ws.dump(TOPIC);
    assert_eq!(messages.len(), rows, "each row stored once");
    assert_eq!(ids(&messages).len(), rows);
    let order_ids: Vec<u64> = messages
        .iter()
        .map(|m| m["payload"]["order_id"].as_u64().expect("order_id"))
        .collect();
    // In page order: the 45 rows of page047 and then the 50 of page096.
    let page = fixture("gw-20-select-page047");
    let first: Vec<u64> = page["results"]["data"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|row| row["fields"][0].as_u64().expect("order_id"))
        .collect();
    assert_eq!(&order_ids[..45], first.as_slice());
    assert!(replay.rejected().is_empty(), "{:?}", replay.rejected());
    // A Nack re-reads the current token, which the gateway allows.
    let tokens = replay.fetched_tokens();
    let repeats = tokens
        .windows(2)
        .filter(|w| w[0] == w[1] && w[0] > 0)
        .count();
    assert!(repeats > 0, "{tokens:?}");
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
fn a_query_flink_rejects_fails_open_with_a_one_line_reason() {
    let replay = Replay::start(vec![QueryScript::failing()]);
    let ws = Workspace::new();
    source(
        &ws,
        &records_config(&replay, "sql = \"SELECT * FROM no_such_table\"", ""),
    );
    let file = ws.connectors().join(format!("{KEY}.toml"));
    let output = ws.harness(&["--json", "check", file.to_str().expect("path")]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(!output.status.success(), "{text}");
    assert!(
        text.contains("the query failed: SqlValidatorException: Object 'no_such_table' not found"),
        "{text}"
    );
    assert!(
        !text.contains("\\tat org.apache"),
        "stack trace lines leaked: {text}"
    );
    // The session opened for the failed query is closed again.
    assert!(
        replay
            .received()
            .iter()
            .any(|r| r.method == "DELETE" && r.path.starts_with("/v3/sessions/"))
    );
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

/// The full restart cycle: run 1 reads part of the query; `close` stops its
/// job with a savepoint (rest-65/66) and leaves the session; run 2 reads the
/// rows the job produced before the savepoint until EOS, closes the old
/// query, finds the savepoint through the job's checkpoints and submits the
/// query again from it (gw-40). Every row arrives once.
#[test]
fn a_restart_delivers_the_rows_before_the_savepoint_then_resumes_from_it() {
    let first = QueryScript::stopped_after("gw-21-select-1s-checkpoint", 8);
    let (visible, held) = (first.visible_rows(), first.held_rows());
    assert_eq!(
        (visible, held),
        (5, 5),
        "page006 before the stop, page012 after"
    );
    let first_job = first.job_id.clone();
    let second = QueryScript::recorded("gw-22-select-changelog-agg");
    let second_rows = second.rows();
    let second_job = second.job_id.clone();
    let replay = Replay::start(vec![first, second]);
    let ws = Workspace::new();
    source(
        &ws,
        &records_config(&replay, "sql = \"SELECT * FROM orders\"", ""),
    );

    let (output, report) = run(&ws, IDLE, &[]);
    assert_ran(&output, &report);
    assert_eq!(ws.dump(TOPIC).len(), visible);
    let stop = replay
        .received()
        .into_iter()
        .find(|r| r.path == format!("/jobs/{first_job}/stop"))
        .expect("close stopped the job with a savepoint");
    assert_eq!(stop.body, serde_json::json!({"drain": false}));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(&stop_savepoint_location()), "{stderr}");
    assert!(
        !replay.received().iter().any(|r| r.method == "DELETE"),
        "the session stays open for the next start"
    );

    let (output, report) = run(&ws, IDLE, &[]);
    assert_ran(&output, &report);
    let messages = ws.dump(TOPIC);
    assert_eq!(messages.len(), visible + held + second_rows);
    assert_eq!(ids(&messages).len(), messages.len(), "no row twice");
    let jobs: Vec<&str> = messages
        .iter()
        .map(|m| header(m, "job_id").expect("job"))
        .collect();
    assert!(jobs[..visible + held].iter().all(|j| *j == first_job));
    assert!(jobs[visible + held..].iter().all(|j| *j == second_job));
    // Exactly the statement recorded in gw-40.
    let restore = fixture_file("gw-40-set-savepoint-path")["request"]["body"]["statement"].clone();
    assert_eq!(replay.configured(), [restore.as_str().expect("statement")]);
    // Run 1 saved its cursor with the last rows and then read on through
    // empty pages: run 2 steps over them (the refused tokens) to the gateway's.
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("empty page(s) past the saved cursor"),
        "{stderr}"
    );
}

/// The gateway lost the session (restarted, or the idle timeout passed):
/// the rows not fetched before the stop are gone, and the query runs again
/// from the savepoint its job was stopped with.
#[test]
fn a_lost_session_resubmits_the_query_from_the_jobs_savepoint() {
    let first = QueryScript::stopped_after("gw-21-select-1s-checkpoint", 8);
    let visible = first.visible_rows();
    let second = QueryScript::recorded("gw-22-select-changelog-agg");
    let second_rows = second.rows();
    let replay = Replay::start(vec![first, second]);
    let ws = Workspace::new();
    source(
        &ws,
        &records_config(&replay, "sql = \"SELECT * FROM orders\"", ""),
    );
    let (output, report) = run(&ws, IDLE, &[]);
    assert_ran(&output, &report);

    replay.forget_sessions();
    let (output, report) = run(&ws, IDLE, &[]);
    assert_ran(&output, &report);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("the query can no longer be read"),
        "{stderr}"
    );
    assert!(
        stderr.contains("Session '00000000-0000-0000-0000-000000000000' does not exist"),
        "{stderr}"
    );
    assert_eq!(ws.dump(TOPIC).len(), visible + second_rows);
    assert_eq!(
        replay.configured(),
        [format!(
            "SET 'execution.savepoint.path' = '{}'",
            stop_savepoint_location()
        )]
    );
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
