//! The Pravega source while its server is frozen (SIGSTOP: no answers, but
//! nothing lost, as the standalone keeps events in memory only): the run
//! still ends within its bound, and after the thaw a new run reads on from
//! the saved positions. A private server, as freezing the shared one would
//! stall the other tests.

mod common;

use common::*;
use iggy_harness_test_support::pravega::{PravegaServer, fresh_scope};
use iggy_harness_test_support::process::{signal, wait_until};
use iggy_harness_test_support::*;
use std::time::{Duration, Instant};

/// The run stops 3 s after the last event (nothing moves while frozen);
/// a poll in flight gives up after `poll_wait` plus the client's limit
/// per call (`request_timeout` × (`max_retries` + 2) = 12 s with
/// `connection`'s settings), and the SDK abandons a `close` (reader
/// offline, group removed) after 8 s. Measured: about 11 s.
const CLOSE_BOUND: Duration = Duration::from_secs(40);

#[test]
fn a_frozen_server_does_not_hold_the_run_and_nothing_is_lost() {
    let ws = Workspace::new();
    let server = PravegaServer::start(ws.dir.path());
    let (uri, scope) = (server.controller_uri(), fresh_scope("src-frozen"));
    let pravega = Pravega::create(&uri, &scope, 2);
    pravega.write(binary_events(0..200));
    source_file(&ws, &uri, &scope, "raw", "batch_size = 20");

    let background = BackgroundRun::start(&ws, "3s", &[]);
    let read_some = wait_until(Duration::from_secs(60), || {
        saved_positions(&ws).filter(|(_, p)| p.values().any(|offset| *offset > 0))
    });
    assert!(read_some.is_some(), "nothing was read before the freeze");
    signal(server.pid(), "STOP");
    let frozen_at = Instant::now();
    let output = background.wait();
    let took = frozen_at.elapsed();
    signal(server.pid(), "CONT");
    eprintln!("the run ended {took:?} after the server froze");
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(
        took < CLOSE_BOUND,
        "the run ended {took:?} after the freeze; log:\n{log}"
    );

    pravega.write(binary_events(200..300));
    run(&ws, &[]);
    assert_eq!(
        stored_numbers(&ws),
        (0..300).collect::<Vec<_>>(),
        "every event once after the thaw (the frozen run ended in {took:?})"
    );
}
