//! Sources driven through the real ABI: the v2 Ack/Nack protocol, state
//! files, restarts, the v1 fallback and panic containment.

use iggy_harness_test_support::*;

fn state_of(ws: &Workspace, key: &str) -> Vec<u8> {
    std::fs::read(ws.path("state").join(format!("source_{key}.state"))).expect("state file")
}

/// MessagePack of the testkit source's `Cursor { next }` (a one-element array).
fn cursor(next: u64) -> Vec<u8> {
    let mut bytes = vec![0x91];
    match next {
        0..=127 => bytes.push(next as u8),
        128..=255 => bytes.extend([0xcc, next as u8]),
        _ => {
            bytes.push(0xcd);
            bytes.extend((next as u16).to_be_bytes());
        }
    }
    bytes
}

#[test]
fn nacked_batches_are_polled_again_and_stored_once() {
    let ws = Workspace::new();
    ws.source(
        "gen",
        &testkit_source(),
        "created",
        "total = 2000\nbatch_size = 100",
    );
    let (output, report) = ws.run_ok(&["--fault", "nack-every=3"]);
    assert!(stderr(&output).contains("runs the v2 protocol"));
    let stored = seqs(&ws.dump("created"), false);
    assert_eq!(
        stored,
        (0..2000).collect::<Vec<_>>(),
        "every message once, in order"
    );
    let generator = connector(&report, "gen");
    assert!(generator["nacks"].as_u64().unwrap() >= 9, "{generator}");
    assert_eq!(state_of(&ws, "gen"), cursor(2000));
}

#[test]
fn a_failed_state_save_nacks_and_duplicates_only_that_batch() {
    let ws = Workspace::new();
    ws.source(
        "gen",
        &testkit_source(),
        "created",
        "total = 1000\nbatch_size = 100",
    );
    let (output, _) = ws.run(&["--fault", "fail-state-save-every=4"]);
    assert!(output.status.success());
    let stored = seqs(&ws.dump("created"), false);
    let mut unique = sorted(stored.clone());
    unique.dedup();
    assert_eq!(unique, (0..1000).collect::<Vec<_>>(), "nothing lost");
    // Each failed save stored its batch, then the Nack made it come again.
    assert_eq!(stored.len() % 100, 0);
    assert!(
        stored.len() > 1000,
        "the stored-but-unsaved batches repeat (at-least-once)"
    );
    assert_eq!(state_of(&ws, "gen"), cursor(1000));
}

#[test]
fn a_restarted_source_resumes_from_its_state_file() {
    let ws = Workspace::new();
    ws.source(
        "gen",
        &testkit_source(),
        "created",
        "total = 600\nbatch_size = 50",
    );
    assert!(ws.run(&[]).0.status.success());
    assert_eq!(state_of(&ws, "gen"), cursor(600));
    ws.source(
        "gen",
        &testkit_source(),
        "created",
        "total = 900\nbatch_size = 50",
    );
    let (output, report) = ws.run(&[]);
    assert!(output.status.success());
    assert_eq!(connector(&report, "gen")["messages_out"], 300);
    assert_eq!(
        seqs(&ws.dump("created"), false),
        (0..900).collect::<Vec<_>>()
    );
}

#[test]
fn slow_batch_results_still_deliver_everything() {
    let ws = Workspace::new();
    ws.source(
        "gen",
        &testkit_source(),
        "created",
        "total = 300\nbatch_size = 100",
    );
    let (output, _) = ws.run(&["--fault", "delay-result=150ms"]);
    assert!(output.status.success());
    assert_eq!(
        seqs(&ws.dump("created"), false),
        (0..300).collect::<Vec<_>>()
    );
}

#[test]
fn failing_and_panicking_polls_are_retried_without_loss() {
    let ws = Workspace::new();
    ws.source(
        "gen",
        &testkit_source(),
        "created",
        "total = 500\nbatch_size = 50\nfail_every = 4\npanic_every = 5",
    );
    // The SDK backs off after each failed poll: on a loaded machine a pause
    // can outlast the usual 700 ms idle end and cut the run short.
    let (output, report) = ws.run_ending(&until_idle("3s", &[]));
    assert!(output.status.success(), "{report}");
    let stderr = stderr(&output);
    assert!(stderr.contains("panicked in poll"), "{stderr}");
    assert!(stderr.contains("failed to poll"), "{stderr}");
    assert_eq!(
        seqs(&ws.dump("created"), false),
        (0..500).collect::<Vec<_>>()
    );
}

#[test]
fn headers_survive_the_round_trip_through_the_store() {
    let ws = Workspace::new();
    ws.source(
        "gen",
        &testkit_source(),
        "created",
        "total = 3\nbatch_size = 3\nheaders = true",
    );
    assert!(ws.run(&[]).0.status.success());
    let dumped = ws.dump("created");
    assert_eq!(dumped.len(), 3);
    assert_eq!(dumped[2]["headers"]["seq"], "uint64: 2");
    assert_eq!(dumped[2]["id"], "3", "the source's own message id is kept");
}

#[test]
fn a_library_without_v2_is_driven_through_v1() {
    let ws = Workspace::new();
    ws.source(
        "legacy",
        &legacy_v1_source(),
        "created",
        "total = 250\nbatch_size = 25",
    );
    let (output, _) = ws.run_ok(&[]);
    assert!(stderr(&output).contains("runs the v1 protocol"));
    assert_eq!(
        seqs(&ws.dump("created"), false),
        (0..250).collect::<Vec<_>>()
    );
    assert_eq!(
        state_of(&ws, "legacy"),
        b"250",
        "v1 state is saved after each batch too"
    );
}

#[test]
fn source_to_sink_pipeline_through_one_store() {
    let ws = Workspace::new();
    ws.source(
        "gen",
        &testkit_source(),
        "created",
        "total = 3000\nbatch_size = 200",
    );
    let record = ws.recording_sink("audit", "created", "");
    let (_, report) = ws.run_ok(&["--partitions", "3"]);
    assert_eq!(
        sorted(seqs(&recorded(&record), true)),
        (0..3000).collect::<Vec<_>>()
    );
    assert_eq!(connector(&report, "gen")["messages_out"], 3000);
    assert_eq!(connector(&report, "audit")["messages_out"], 3000);
}
