//! Both Pravega libraries against a real Pravega (the docker-compose stack
//! has one), through the real harness binary. They run only with
//! `--ignored` and `PRAVEGA_CONTROLLER_URI` set (e.g. `tcp://127.0.0.1:9090`);
//! run that way, they fail when the variable is unset or the controller
//! does not answer. Each test uses a scope of its own.

use harness_test_support::*;
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const NEEDS_SERVER: &str =
    "needs a Pravega server: set PRAVEGA_CONTROLLER_URI and run with --ignored";

/// The controller URI; panics unless it is set and accepts connections.
fn controller() -> String {
    let uri = std::env::var("PRAVEGA_CONTROLLER_URI")
        .unwrap_or_else(|_| panic!("PRAVEGA_CONTROLLER_URI is not set ({NEEDS_SERVER})"));
    let address = uri.rsplit("://").next().unwrap_or(&uri);
    let reachable = address
        .to_socket_addrs()
        .ok()
        .and_then(|mut all| all.next())
        .is_some_and(|a| TcpStream::connect_timeout(&a, Duration::from_secs(3)).is_ok());
    assert!(reachable, "the Pravega controller at {uri} does not answer");
    uri
}

/// A scope name no other run uses.
fn fresh_scope(test: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("iggy-{test}-{}-{nanos}", std::process::id())
}

fn connection(uri: &str, scope: &str) -> String {
    format!(
        "controller_uri = \"{uri}\"\nscope = \"{scope}\"\nstream = \"orders\"\nrequest_timeout = \"5s\"\nmax_retries = 3\n"
    )
}

/// Produces `count` messages, runs the sink over them with `settings`
/// (after the connection keys) and `run_args`, and reads the stream back.
fn round_trip(
    test: &str,
    count: u64,
    settings: &str,
    run_args: &[&str],
) -> (String, Vec<serde_json::Value>) {
    let uri = controller();
    let scope = fresh_scope(test);
    let ws = Workspace::new();
    produce(&ws, count);
    let sink = format!("{}{settings}", connection(&uri, &scope));
    ws.sink(
        "to_pravega",
        &plugin("iggy_connector_pravega_sink"),
        "out",
        &sink,
    );
    let (output, report) = ws.run(run_args);
    assert_ran(&output, &report);
    let messages = read_back(&ws, &uri, &scope);
    (scope, messages)
}

fn produce(ws: &Workspace, count: u64) {
    let lines: String = (0..count)
        .map(|n| {
            format!(
                "{{\"headers\":{{\"tenant\":\"t{}\"}},\"payload\":{{\"n\":{n}}}}}\n",
                n % 3
            )
        })
        .collect();
    ws.produce_lines("out", &lines, true);
}

fn assert_ran(output: &std::process::Output, report: &serde_json::Value) {
    assert!(
        output.status.success(),
        "{report}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The source reads the stream back from its head; the `n` of every message.
fn read_back(ws: &Workspace, uri: &str, scope: &str) -> Vec<serde_json::Value> {
    std::fs::remove_file(ws.connectors().join("to_pravega.toml")).unwrap();
    let source = format!(
        "{}schema = \"json\"\npoll_wait = \"200ms\"",
        connection(uri, scope)
    );
    ws.source(
        "from_pravega",
        &plugin("iggy_connector_pravega_source"),
        "back",
        &source,
    );
    // Longer idle than `Workspace::run` allows: a reader group takes a while to start.
    let (output, report) = ws.run_ending(&["--exit-when-idle", "5s", "--duration", "120s"]);
    assert_ran(&output, &report);
    ws.dump("back")
}

fn numbers(messages: &[serde_json::Value]) -> Vec<u64> {
    sorted(
        messages
            .iter()
            .map(|m| m["payload"]["n"].as_u64().unwrap_or_else(|| panic!("{m}")))
            .collect(),
    )
}

#[test]
#[ignore = "needs a Pravega server: set PRAVEGA_CONTROLLER_URI and run with --ignored"]
fn at_least_once_round_trip_with_segment_headers() {
    let (scope, messages) = round_trip(
        "alo",
        300,
        "writer_mode = \"at_least_once\"\nrouting_key = { header = \"tenant\" }\n\
         [plugin_config.create]\nscaling = \"fixed\"\nsegments = 3",
        &[],
    );
    assert_eq!(numbers(&messages), (0..300).collect::<Vec<_>>());
    for message in &messages {
        let headers = &message["headers"];
        assert_eq!(
            headers["pravega-stream"],
            format!("string: {scope}/orders"),
            "{message}"
        );
        assert!(headers.get("pravega-segment").is_some(), "{message}");
        assert!(headers.get("pravega-offset").is_some(), "{message}");
    }
}

#[test]
#[ignore = "needs a Pravega server: set PRAVEGA_CONTROLLER_URI and run with --ignored"]
fn exactly_once_survives_redelivered_batches() {
    let (_, messages) = round_trip(
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
}

#[test]
#[ignore = "needs a Pravega server: set PRAVEGA_CONTROLLER_URI and run with --ignored"]
fn conformance_with_a_config_runs_every_check() {
    let uri = controller();
    let scope = fresh_scope("conf");
    let ws = Workspace::new();
    let config = format!(
        "{}[plugin_config.create]\nsegments = 1",
        connection(&uri, &scope)
    );
    let sink = plugin("iggy_connector_pravega_sink");
    ws.sink("conf_sink", &sink, "out", &config);
    let source = plugin("iggy_connector_pravega_source");
    // The source needs the stream the sink's open creates.
    ws.source("conf_source", &source, "in", &connection(&uri, &scope));
    for (library, key) in [(&sink, "conf_sink"), (&source, "conf_source")] {
        let file = ws.connectors().join(format!("{key}.toml"));
        let output = ws.harness(&[
            "--json",
            "conformance",
            library.to_str().unwrap(),
            "--connector",
            file.to_str().unwrap(),
        ]);
        let reports: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        assert!(output.status.success(), "{reports}");
        assert_eq!(reports[0]["not_run"], serde_json::json!([]), "{reports}");
    }
}
