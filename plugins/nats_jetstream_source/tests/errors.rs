//! Bad configurations and unreachable servers make `open` fail with an
//! ERROR line naming the field or consumer at fault (`iggy-harness check`);
//! a stream that does not exist yet is named in a WARN line and waited for.

mod common;

use async_nats::jetstream::consumer::{AckPolicy, pull};
use common::*;
use iggy_harness_test_support::nats::NatsServer;
use iggy_harness_test_support::process::free_port;
use iggy_harness_test_support::{Workspace, json_report, stderr};

/// Opens the source once through `iggy-harness check`; returns its ERROR lines.
fn open_errors(ws: &Workspace, plugin_config: &str) -> Vec<String> {
    open_errors_with_env(ws, plugin_config, &[])
}

/// The same, with environment variables set for the harness (and so the plugin).
fn open_errors_with_env(ws: &Workspace, plugin_config: &str, env: &[(&str, &str)]) -> Vec<String> {
    write_source(ws, plugin_config);
    let output = ws.check_with_env(KEY, env);
    let everything = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        stderr(&output)
    );
    for (_, value) in env {
        assert!(
            !everything.contains(value),
            "a secret was shown: {everything}"
        );
    }
    let report = json_report(&output);
    assert_eq!(report["ok"], false, "the source must not open: {report}");
    assert!(!output.status.success());
    let errors = log_messages(&report, "ERROR");
    assert!(!errors.is_empty(), "no ERROR line: {report}");
    errors
}

/// The messages of the report's log lines at `level`.
fn log_messages(report: &serde_json::Value, level: &str) -> Vec<String> {
    report["log"]
        .as_array()
        .expect("log lines")
        .iter()
        .filter(|line| line["level"] == level)
        .map(|line| line["message"].as_str().unwrap_or_default().to_string())
        .collect()
}

fn assert_one_names(errors: &[String], parts: &[&str]) {
    assert!(
        errors.iter().any(|e| parts.iter().all(|p| e.contains(p))),
        "no ERROR line names all of {parts:?}: {errors:#?}"
    );
}

/// A config for a server nobody listens on (checks before connecting).
fn offline(extra: &str) -> String {
    format!(
        "servers = [\"nats://127.0.0.1:{}\"]\nstream = \"{STREAM}\"\n{extra}",
        free_port()
    )
}

#[test]
fn overlapping_filters_are_refused_naming_both_consumers() {
    let ws = Workspace::new();
    let errors = open_errors(
        &ws,
        &offline(&consumers(&[
            ("eu", "orders.eu.>"),
            ("us", "orders.us.>"),
            ("created", "orders.*.created"),
        ])),
    );
    assert_one_names(&errors, &["`eu`", "`created`", "overlap"]);
}

#[test]
fn unknown_keys_and_bad_values_name_the_field() {
    let ws = Workspace::new();
    let errors = open_errors(&ws, &offline("batch_sise = 10\n"));
    assert_one_names(
        &errors,
        &["invalid configuration", "`batch_sise`: unknown setting"],
    );
    let errors = open_errors(&ws, &offline("[plugin_config.tls]\nrequire = true\n"));
    assert_one_names(&errors, &["tls", "require"]);
    let errors = open_errors(
        &ws,
        &offline(
            "[[plugin_config.consumers]]\ndurable_name = \"a\"\ndeliver_policy = { by_start_time = \"yesterday\" }\n",
        ),
    );
    assert_one_names(&errors, &["consumers[0].deliver_policy", "RFC 3339"]);
    let errors = open_errors(&ws, &offline("batch_size = 0\n"));
    assert_one_names(&errors, &["batch_size"]);
}

#[test]
fn an_unreachable_server_is_a_clear_error_without_the_password() {
    let ws = Workspace::new();
    let errors = open_errors(
        &ws,
        &offline(
            "connect_timeout = \"500ms\"\n[plugin_config.auth]\nuser = \"iggy\"\npassword = \"s3cret-pw\"\n",
        ),
    );
    assert_one_names(&errors, &["cannot connect to NATS at nats://127.0.0.1:"]);
    assert!(
        errors.iter().all(|e| !e.contains("s3cret-pw")),
        "{errors:#?}"
    );
}

/// Opens the source once through `iggy-harness check`, expecting it to
/// open; returns its WARN lines.
fn open_warnings_with_env(
    ws: &Workspace,
    plugin_config: &str,
    env: &[(&str, &str)],
) -> Vec<String> {
    write_source(ws, plugin_config);
    let report = json_report(&ws.check_with_env(KEY, env));
    assert_eq!(report["ok"], true, "the source must open: {report}");
    log_messages(&report, "WARN")
}

#[test]
fn a_missing_stream_is_named_and_waited_for() {
    let ws = Workspace::new();
    let nats = Nats::start(&ws);
    let warnings = open_warnings_with_env(&ws, &plugin_config(&nats, ""), &[]);
    assert_one_names(
        &warnings,
        &[
            "stream `ORDERS`",
            "setting `stream`",
            "does not exist",
            "waiting",
        ],
    );
}

#[test]
fn an_existing_consumer_with_another_filter_or_no_acks_is_refused() {
    let ws = Workspace::new();
    let nats = Nats::start(&ws);
    nats.create_stream(&["orders.>"]);
    nats.create_consumer(pull::Config {
        durable_name: Some("eu".into()),
        filter_subject: "orders.us.>".into(),
        ..Default::default()
    });
    let errors = open_errors(
        &ws,
        &plugin_config(&nats, &consumers(&[("eu", "orders.eu.>")])),
    );
    assert_one_names(&errors, &["consumer `eu`", "orders.us.>", "orders.eu.>"]);
    assert_eq!(
        nats.consumer_info("eu").config.filter_subject,
        "orders.us.>",
        "the existing consumer is left as it was"
    );

    nats.create_consumer(pull::Config {
        durable_name: Some("silent".into()),
        filter_subject: "orders.silent".into(),
        ack_policy: AckPolicy::None,
        ..Default::default()
    });
    let errors = open_errors(
        &ws,
        &plugin_config(&nats, &consumers(&[("silent", "orders.silent")])),
    );
    assert_one_names(&errors, &["consumer `silent`", "ack policy none"]);
}

#[test]
fn a_password_from_the_environment_is_used_and_never_shown() {
    let ws = Workspace::new();
    let server = NatsServer::start_with(ws.dir.path(), &["--user", "iggy", "--pass", "env-s3cret"]);
    let config = format!(
        "servers = [\"{}\"]\nstream = \"{STREAM}\"\nconnect_timeout = \"1s\"\n\
         [plugin_config.auth]\nuser = \"iggy\"\npassword = {{ env = \"NATS_SOURCE_PASSWORD\" }}\n",
        server.url()
    );
    // The right password connects, and the source waits for the stream nobody made.
    let warnings = open_warnings_with_env(&ws, &config, &[("NATS_SOURCE_PASSWORD", "env-s3cret")]);
    assert_one_names(&warnings, &["stream `ORDERS`", "does not exist"]);
    assert!(
        warnings.iter().all(|w| !w.contains("env-s3cret")),
        "{warnings:#?}"
    );
    let errors = open_errors_with_env(&ws, &config, &[("NATS_SOURCE_PASSWORD", "wrong-s3cret")]);
    assert_one_names(&errors, &["cannot connect to NATS at"]);
    let errors = open_errors(&ws, &config);
    assert_one_names(
        &errors,
        &["environment variable NATS_SOURCE_PASSWORD is not set"],
    );
}
