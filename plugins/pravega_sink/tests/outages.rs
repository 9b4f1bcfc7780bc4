//! The sink while its Pravega server is away, with offsets committed when
//! polled (`--commit on-poll`, as runtime 0.5.x does, the harness default):
//! a batch the sink gives up on is lost, so it must ride out a frozen
//! server and a restarted one, and still close promptly when the server
//! does not answer. Each test has a Pravega standalone of its own, one at a
//! time (a JVM each).

mod common;

use common::*;
use iggy_harness_test_support::Workspace;
use iggy_harness_test_support::pravega::{PravegaServer, fresh_scope};
use iggy_harness_test_support::process::signal;
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

const MESSAGES: u64 = 20_000;

/// One private server at a time: each is a JVM of ~1 GiB.
static ONE_SERVER: Mutex<()> = Mutex::new(());

fn private_server(ws: &Workspace) -> (std::sync::MutexGuard<'static, ()>, PravegaServer) {
    let guard = ONE_SERVER.lock().unwrap_or_else(|e| e.into_inner());
    let dir = ws.path("pravega");
    std::fs::create_dir_all(&dir).unwrap();
    (guard, PravegaServer::start(&dir))
}

/// The guarantees the outage tests hold the sink to, one sink each.
const MODES: [&str; 2] = ["at_least_once", "exactly_once"];

/// Each mode's stream (Pravega names take no `_`).
fn stream_of(mode: &str) -> String {
    mode.replace('_', "-")
}

/// Messages 0..`MESSAGES`, one sink per mode over them (each to its own
/// stream, made by `[create]`), and a run in on-poll mode under way: each
/// sink has taken in 1000 messages when this returns.
fn flowing(ws: &Workspace, uri: &str, scope: &str) -> FlowingRun {
    produce(ws, 0..MESSAGES);
    for mode in MODES {
        ws.sink(
            &format!("to_{mode}"),
            &iggy_harness_test_support::plugin("iggy_connector_pravega_sink"),
            "out",
            &format!(
                "{}writer_mode = \"{mode}\"\nrouting_key = {{ header = \"tenant\" }}\n\
                 [plugin_config.create]\nsegments = 2",
                connection(uri, scope, &stream_of(mode))
            ),
        );
    }
    // Unpaced, at least once writes all 20,000 messages in about a second,
    // long before exactly once (a transaction per batch, about 0.2 s each)
    // has taken in its first 1000; paced to a batch of 100 every 250 ms it
    // flows about as long as exactly once, so an outage meets both.
    let file = ws.connectors().join("to_at_least_once.toml");
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(
        &file,
        text.replace("poll_interval = \"2ms\"", "poll_interval = \"250ms\""),
    )
    .unwrap();
    let run = FlowingRun::start(
        ws,
        &[
            "--commit",
            "on-poll",
            "--exit-when-idle",
            "5s",
            "--duration",
            "240s",
        ],
    );
    for mode in MODES {
        run.wait_for_taken_in_by(&format!("to_{mode}"), 1000, Duration::from_secs(60));
    }
    run
}

/// How many messages each sink had taken in so far, in `MODES` order.
fn taken_in(run: &FlowingRun) -> Vec<u64> {
    MODES
        .iter()
        .map(|mode| run.taken_in_by(&format!("to_{mode}")))
        .collect()
}

/// After the run: every sink took in every message and gave no batch up;
/// each mode's stream read back until `whole` (the `n` of every event,
/// sorted, duplicates kept) with what its sink counted, in `MODES` order.
fn read_each(
    ws: &Workspace,
    uri: &str,
    scope: &str,
    run: FlowingRun,
    whole: impl Fn(&[u64]) -> bool + Copy,
) -> Vec<(Vec<u64>, BTreeMap<String, u64>)> {
    let (status, report, log) = run.finish(Duration::from_secs(300));
    assert!(status.success(), "{report}\n{log}");
    MODES
        .iter()
        .map(|mode| {
            let sink = iggy_harness_test_support::connector(&report, &format!("to_{mode}"));
            assert_eq!(
                sink["errors"], 0,
                "{mode}: no batch given up: {report}\n{log}"
            );
            assert_eq!(
                sink["messages_in"], MESSAGES,
                "{mode}: all taken in: {report}"
            );
            let counters = closing_counters_of(&log, &sink["id"]);
            let read = numbers_read_back(ws, (uri, scope, &stream_of(mode)), whole);
            (read, counters)
        })
        .collect()
}

/// `read` (sorted) without repeats.
fn distinct(read: &[u64]) -> Vec<u64> {
    let mut read = read.to_vec();
    read.dedup();
    read
}

#[test]
fn a_server_frozen_for_20_seconds_loses_nothing_and_exactly_once_duplicates_nothing() {
    let ws = Workspace::new();
    let (_one, server) = private_server(&ws);
    let (uri, scope) = (server.controller_uri(), fresh_scope("frozen"));
    let run = flowing(&ws, &uri, &scope);
    signal(server.pid(), "STOP");
    std::thread::sleep(Duration::from_secs(20));
    signal(server.pid(), "CONT");
    let taken_at_thaw = taken_in(&run);
    assert!(
        taken_at_thaw.iter().all(|&taken| taken < MESSAGES),
        "the freeze came too late to meet messages in flight: {taken_at_thaw:?}"
    );
    let every: Vec<u64> = (0..MESSAGES).collect();
    let whole = |read: &[u64]| distinct(read) == every;
    for (mode, (mut read, counters)) in MODES.iter().zip(read_each(&ws, &uri, &scope, run, whole)) {
        if *mode == "exactly_once" {
            let context = format!("{mode}, each once; the sink counted {counters:?}");
            assert_same_numbers(&read, &every, &context);
        } else {
            read.dedup();
            let context = format!("{mode}, none lost; the sink counted {counters:?}");
            assert_same_numbers(&read, &every, &context);
        }
    }
}

#[test]
fn a_server_killed_and_restarted_empty_gets_what_flowed_after_the_restart() {
    let ws = Workspace::new();
    let (_one, mut server) = private_server(&ws);
    let (uri, scope) = (server.controller_uri(), fresh_scope("restart"));
    let run = flowing(&ws, &uri, &scope);
    server.kill();
    std::thread::sleep(Duration::from_secs(5));
    server.restart();
    // What the sinks had taken in once the server was back.
    let taken_at_restart = taken_in(&run);
    assert!(
        taken_at_restart.iter().all(|&taken| taken < MESSAGES),
        "the restart came too late to meet messages still to flow: {taken_at_restart:?}"
    );
    let whole = |read: &[u64]| {
        let read = distinct(read);
        read.first()
            .is_some_and(|&first| read == (first..MESSAGES).collect::<Vec<_>>())
    };
    let read = read_each(&ws, &uri, &scope, run, whole);
    for ((mode, taken), (mut read, counters)) in MODES.iter().zip(taken_at_restart).zip(read) {
        if *mode != "exactly_once" {
            read.dedup();
        }
        // The restarted server lost what it held; from the first message
        // it has, every later one is there (once, with exactly_once): at
        // least all that flowed after the restart.
        let first = *read.first().unwrap_or_else(|| panic!("{mode}: nothing"));
        assert!(first <= taken, "{mode}: {first} > {taken}");
        let context = format!("{mode}, from {first} on; the sink counted {counters:?}");
        assert_same_numbers(&read, &(first..MESSAGES).collect::<Vec<_>>(), &context);
    }
}

#[test]
fn close_is_bounded_while_the_server_is_frozen() {
    // The run stops at 25 s; the harness then waits 5 s for the consume in
    // flight (as the runtime does), and the SDK bounds close at 10 s.
    const RUN: Duration = Duration::from_secs(25);
    const STOP_WAIT: Duration = Duration::from_secs(5);
    const CLOSE_LIMIT: Duration = Duration::from_secs(10);
    let ws = Workspace::new();
    let (_one, server) = private_server(&ws);
    let (uri, scope) = (server.controller_uri(), fresh_scope("closing"));
    produce(&ws, 0..MESSAGES);
    sink(
        &ws,
        &uri,
        &scope,
        "orders",
        "writer_mode = \"exactly_once\"\n[plugin_config.create]",
    );
    let run = FlowingRun::start(&ws, &["--commit", "on-poll", "--duration", "25s"]);
    // Frozen while messages flow, well before the run ends.
    run.wait_for_taken_in_by(SINK, 200, Duration::from_secs(20));
    signal(server.pid(), "STOP");
    let started = run.started();
    let (_, report, log) = run.finish(RUN + STOP_WAIT + CLOSE_LIMIT + Duration::from_secs(10));
    let elapsed = started.elapsed();
    signal(server.pid(), "CONT");
    assert!(
        elapsed < RUN + STOP_WAIT + CLOSE_LIMIT + Duration::from_secs(5),
        "closed {elapsed:?} after the start:\n{log}"
    );
    assert!(
        log.contains("Pravega sink") && log.contains(" closed: "),
        "{log}"
    );
    assert_eq!(
        iggy_harness_test_support::connector(&report, SINK)["status"],
        "running",
        "close returned 0: {report}"
    );
}
