//! Both Pravega libraries (sink and source) through the real harness binary,
//! without a Pravega server: ABI conformance, refusal of an empty or wrong
//! config, and an unreachable controller failing `open` in bounded time
//! instead of hanging. Needs `cargo build --workspace` first.

use iggy_harness_test_support::*;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn libraries() -> [PathBuf; 2] {
    [
        plugin("iggy_connector_pravega_sink"),
        plugin("iggy_connector_pravega_source"),
    ]
}

/// Writes connector file `key.toml` of the library's kind and runs `check` on it.
fn check(ws: &Workspace, key: &str, library: &Path, config: &str) -> std::process::Output {
    if library.to_string_lossy().contains("_sink") {
        ws.sink(key, library, "out", config);
    } else {
        ws.source(key, library, "in", config);
    }
    ws.check(key)
}

fn text(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout).to_string() + &String::from_utf8_lossy(&output.stderr)
}

/// The plugin's WARN line (as the harness prints it) holding `phrase`.
fn warning<'a>(text: &'a str, phrase: &str) -> &'a str {
    text.lines()
        .find(|l| l.starts_with("[plugin WARN") && l.contains(phrase))
        .unwrap_or_else(|| panic!("no WARN with `{phrase}`: {text}"))
}

/// A loopback port with nothing listening (bound, then released).
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

#[test]
fn conformance_without_a_config_refuses_the_empty_one_naming_the_field() {
    let ws = Workspace::new();
    let [sink, source] = libraries();
    let output = ws.harness(&[
        "--json",
        "conformance",
        sink.to_str().unwrap(),
        source.to_str().unwrap(),
    ]);
    let reports: serde_json::Value =
        serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&output)));
    assert!(output.status.success(), "{reports}");
    for report in reports.as_array().unwrap() {
        let checks = report["checks"].as_array().unwrap();
        assert!(checks.iter().all(|c| c["ok"] == true), "{report}");
        assert!(
            !report["not_run"].as_array().unwrap().is_empty(),
            "open-dependent checks are listed as not run: {report}"
        );
        let empty = checks
            .iter()
            .find(|c| c["name"].as_str().unwrap().starts_with("an empty config"))
            .unwrap_or_else(|| panic!("{report}"));
        assert!(
            empty["detail"]
                .as_str()
                .unwrap()
                .contains("missing field `controller_uri`"),
            "{empty}"
        );
    }
}

#[test]
fn a_bad_setting_fails_open_naming_the_field() {
    let ws = Workspace::new();
    let [sink, source] = libraries();
    let cases = [
        (
            &sink,
            "controller_uri = \"tcp://127.0.0.1:9090\"\nscope = \"shop\"\nstream = \"orders\"\nwriter_mode = \"twice\"",
            "twice",
        ),
        (
            &sink,
            "controller_uri = \"127.0.0.1\"\nscope = \"shop\"\nstream = \"orders\"",
            "controller_uri",
        ),
        (
            &source,
            "controller_uri = \"tcp://127.0.0.1:9090\"\nscope = \"shop\"\nstream = \"orders\"\nstart = { stream_cut = { zero = 1 } }",
            "start.stream_cut",
        ),
        (
            &source,
            "controller_uri = \"tcp://127.0.0.1:9090\"\nscope = \"shop\"\nstream = \"orders\"\ncredentials = { username = \"admin\" }",
            "credentials",
        ),
    ];
    for (library, config, expected) in cases {
        let output = check(&ws, "bad", library, config);
        let text = text(&output);
        assert!(!output.status.success(), "{text}");
        assert!(text.contains(expected), "{expected}: {text}");
        assert!(text.contains("ERROR"), "logged as an error: {text}");
    }
}

#[test]
fn an_unreachable_controller_fails_open_in_bounded_time_without_the_password() {
    let ws = Workspace::new();
    let [sink, source] = libraries();
    let config = format!(
        "controller_uri = \"tcp://127.0.0.1:{}\"\nscope = \"shop\"\nstream = \"orders\"\n\
         request_timeout = \"1s\"\nmax_retries = 1\nretry_delay = \"10ms\"\n\
         credentials = {{ username = \"admin\", password = \"hunter2-secret\" }}",
        closed_port()
    );
    for library in [&sink, &source] {
        let started = Instant::now();
        let output = check(&ws, "unreachable", library, &config);
        let text = text(&output);
        assert!(!output.status.success(), "{text}");
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "took {:?}: {text}",
            started.elapsed()
        );
        assert!(text.contains("shop/orders at tcp://127.0.0.1"), "{text}");
        assert!(
            !text.contains("panicked"),
            "a connection error, not a panic: {text}"
        );
        assert!(!text.contains("hunter2-secret"), "{text}");
        let warning = warning(&text, "credentials are sent in clear text");
        assert!(
            warning.contains("Pravega s"),
            "names the connector: {warning}"
        );
    }
}

#[test]
fn certificate_checks_turned_off_are_warned_about_under_the_old_key_too() {
    let ws = Workspace::new();
    let [sink, source] = libraries();
    let base = format!(
        "controller_uri = \"tls://127.0.0.1:{}\"\nscope = \"shop\"\nstream = \"orders\"\n\
         request_timeout = \"1s\"\nmax_retries = 0\n",
        closed_port()
    );
    for (library, tls, deprecated) in [
        (&sink, "tls = { danger_accept_invalid_certs = true }", false),
        (&source, "tls = { validate_hostname = false }", true),
    ] {
        let output = check(&ws, "insecure", library, &format!("{base}{tls}"));
        let text = text(&output);
        warning(&text, "certificate checks are OFF");
        assert_eq!(
            text.contains("tls.validate_hostname is deprecated"),
            deprecated,
            "{text}"
        );
    }
}
