//! The sink while nats-server is away, with offsets committed when polled
//! (`--commit on-poll`, as runtime 0.5.x does): a batch the sink gives up on
//! is lost, so it must ride out a frozen server and a restarted one, and
//! still close promptly when the server never comes back.

mod common;

use common::*;
use iggy_harness_test_support::nats::NatsServer;
use iggy_harness_test_support::process::{exit_within, signal};
use iggy_harness_test_support::*;
use std::collections::BTreeSet;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const MESSAGES: u64 = 60_000;

/// Waits (10 s at most) until the stream holds `count` messages.
fn wait_for_stored(server: &NatsServer, count: u64) {
    runtime().block_on(async {
        let js = context(&server.url()).await;
        for _ in 0..400 {
            if let Ok(mut stream) = js.get_stream("ORDERS").await
                && stream
                    .info()
                    .await
                    .is_ok_and(|info| info.state.messages >= count)
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("the sink did not store {count} messages within 10 s");
    });
}

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
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{report}\n{stderr}");
    let rt = runtime();
    let js = rt.block_on(context(&server.url()));
    let received = rt.block_on(read_stream(&js, "ORDERS"));
    let ids: BTreeSet<String> = received
        .iter()
        .filter_map(|m| header(m, "Nats-Msg-Id"))
        .collect();
    assert_eq!(ids.len() as u64, MESSAGES, "every message arrived");
    assert_eq!(received.len() as u64, MESSAGES, "and none twice");
    assert_eq!(connector(report, "to_nats")["errors"], 0, "{report}");
}

fn setup(ws: &Workspace) -> NatsServer {
    let server = NatsServer::start(ws.dir.path());
    let rt = runtime();
    let js = rt.block_on(context(&server.url()));
    rt.block_on(create_stream(&js, "ORDERS", &["orders.>"]));
    ws.produce("created", MESSAGES);
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
    let stderr = String::from_utf8_lossy(&output.stderr);
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
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("event: disconnected"), "{stderr}");
    assert!(stderr.contains("NATS is not storing messages"), "{stderr}");
    assert_all_once(&server, &output, &report);
}

#[test]
fn close_returns_soon_when_the_server_is_gone_for_good() {
    let ws = Workspace::new();
    let mut server = NatsServer::start(ws.dir.path());
    let rt = runtime();
    let js = rt.block_on(context(&server.url()));
    rt.block_on(create_stream(&js, "ORDERS", &["orders.>"]));
    drop(js);
    ws.produce("created", MESSAGES);
    // A short retry deadline, so the batch in flight ends by itself.
    let config = format!(
        "{}subject = \"orders.created\"\n[plugin_config.retry]\nmax_elapsed = \"2s\"\n",
        connection(&server)
    );
    ws.sink("to_nats", &sink_library(), "created", &config);
    let args = ws.run_args(&["--commit", "on-poll", "--duration", "6s"]);
    let started = Instant::now();
    let mut run = Command::new(harness_binary())
        .args(&args)
        .current_dir(ws.dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the harness starts");
    wait_for_stored(&server, 2000);
    server.kill();
    // The run ends at 6 s; the batch in flight gives up within about 4 s
    // (2 s of retries, then the last attempt's 2 s request timeout), and
    // close has 10 s (its own limit is 5 s), with a few seconds' slack.
    let limit = Duration::from_secs(25);
    let status = exit_within(&mut run, started, limit);
    assert!(
        status.is_some(),
        "the run did not end within {limit:?}: the sink hangs with the server gone"
    );
}
