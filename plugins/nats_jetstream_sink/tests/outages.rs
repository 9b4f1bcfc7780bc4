//! The sink while nats-server is away, with offsets committed when polled
//! (`--commit on-poll`, as runtime 0.5.x does): a batch the sink gives up on
//! is lost, so it must ride out a frozen server and a restarted one, and
//! still close promptly when the server never comes back.

mod common;

use common::*;
use iggy_harness_test_support::nats::NatsServer;
use iggy_harness_test_support::process::signal;
use iggy_harness_test_support::*;
use std::process::Output;
use std::time::{Duration, Instant};

const MESSAGES: u64 = 60_000;

/// Runs the harness in on-poll mode while `outage` acts on the server.
fn run_through(ws: &Workspace, outage: impl FnOnce()) -> (Output, serde_json::Value) {
    std::thread::scope(|scope| {
        let run = scope.spawn(|| {
            ws.run_ending(&[
                "--commit",
                "on-poll",
                "--exit-when-idle",
                "3s",
                "--duration",
                "60s",
            ])
        });
        outage();
        run.join().expect("the run thread")
    })
}

/// Every produced message is in the stream exactly once.
fn assert_all_once(server: &NatsServer, output: &Output, report: &serde_json::Value) {
    let stderr = stderr(output);
    assert!(output.status.success(), "{report}\n{stderr}");
    let rt = runtime();
    let js = rt.block_on(context(&server.url()));
    assert_each_once(&rt.block_on(read_stream(&js, "ORDERS")), MESSAGES as usize);
    assert_eq!(connector(report, "to_nats")["errors"], 0, "{report}");
}

fn setup(ws: &Workspace) -> NatsServer {
    let server = server_with_orders(ws, MESSAGES);
    let config = format!("{}subject = \"orders.created\"", connection(&server));
    ws.sink("to_nats", &sink_library(), "created", &config);
    server
}

#[test]
fn a_server_frozen_for_20_seconds_loses_and_duplicates_nothing() {
    let ws = Workspace::new();
    let server = setup(&ws);
    let (output, report) = run_through(&ws, || {
        wait_for_stored(&server, 2000);
        signal(server.pid(), "STOP");
        std::thread::sleep(Duration::from_secs(20));
        signal(server.pid(), "CONT");
    });
    let stderr = stderr(&output);
    assert!(
        stderr.contains("NATS is not storing messages"),
        "the outage was met and logged: {stderr}"
    );
    assert_all_once(&server, &output, &report);
}

#[test]
fn a_server_killed_and_restarted_after_20_seconds_loses_and_duplicates_nothing() {
    let ws = Workspace::new();
    let mut server = setup(&ws);
    let (output, report) = run_through(&ws, || {
        wait_for_stored(&server, 2000);
        server.kill();
        std::thread::sleep(Duration::from_secs(20));
        server.restart();
    });
    let stderr = stderr(&output);
    assert!(stderr.contains("event: disconnected"), "{stderr}");
    assert!(stderr.contains("NATS is not storing messages"), "{stderr}");
    assert_all_once(&server, &output, &report);
}

#[test]
fn close_returns_soon_when_the_server_is_gone_for_good() {
    let ws = Workspace::new();
    let mut server = server_with_orders(&ws, MESSAGES);
    // A short retry deadline, so the batch in flight ends by itself.
    let config = format!(
        "{}subject = \"orders.created\"\n[plugin_config.retry]\nmax_elapsed = \"2s\"\n",
        connection(&server)
    );
    ws.sink("to_nats", &sink_library(), "created", &config);
    let started = Instant::now();
    let mut run = BackgroundRun::ending_unread(&ws, &["--commit", "on-poll", "--duration", "6s"]);
    wait_for_stored(&server, 2000);
    server.kill();
    // The run ends at 6 s; the batch in flight gives up within about 4 s
    // (2 s of retries, then the last attempt's 2 s request timeout), and
    // close has 10 s (its own limit is 5 s), with a few seconds' slack.
    let limit = Duration::from_secs(25);
    let status = run.exit_within(started, limit);
    assert!(
        status.is_some(),
        "the run did not end within {limit:?}: the sink hangs with the server gone"
    );
}
