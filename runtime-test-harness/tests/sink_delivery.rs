//! Sinks driven through the real ABI: offset commits, retries, restarts,
//! fault injection and panic containment. Tests of retries pass
//! `--commit after-consume`: by default the harness commits on poll and
//! ignores `consume`'s code, as the runtime does.

/// Commit after a successful `consume` and retry a failed batch.
const AFTER_CONSUME: [&str; 2] = ["--commit", "after-consume"];

use iggy_harness_test_support::*;

#[test]
fn failed_batches_are_retried_so_every_message_arrives() {
    let ws = Workspace::new();
    ws.produce("created", 2000);
    let record = ws.recording_sink("audit", "created", "fail_every = 3");
    let (_, report) = ws.run_ok(&AFTER_CONSUME);
    let got = seqs(&recorded(&record), true);
    assert_eq!(
        sorted(got.clone()),
        (0..2000).collect::<Vec<_>>(),
        "each message exactly once"
    );
    assert_eq!(
        got,
        (0..2000).collect::<Vec<_>>(),
        "in order within the partition"
    );
    let audit = connector(&report, "audit");
    assert_eq!(audit["messages_out"], 2000);
    assert!(audit["retries"].as_u64().unwrap() > 0, "{audit}");
    assert_eq!(
        audit["errors"], audit["retries"],
        "every failure was retried"
    );
}

#[test]
fn on_poll_commit_loses_the_failed_batches_like_the_runtime() {
    let ws = Workspace::new();
    ws.produce("created", 1000);
    let record = ws.recording_sink("audit", "created", "fail_every = 2");
    let (_, report) = ws.run(&["--commit", "on-poll"]);
    let got = seqs(&recorded(&record), true);
    // Batches of 100: every second consume fails and is never delivered again.
    let expected: Vec<u64> = (0..1000).filter(|seq| (seq / 100) % 2 == 0).collect();
    assert_eq!(got, expected);
    assert_eq!(connector(&report, "audit")["retries"], 0);
}

#[test]
fn a_restarted_sink_resumes_after_its_committed_offset() {
    let ws = Workspace::new();
    ws.produce("created", 700);
    let record = ws.recording_sink("audit", "created", "");
    let (first, _) = ws.run(&[]);
    assert!(first.status.success());
    ws.produce("created", 300);
    let (second, report) = ws.run(&[]);
    assert!(second.status.success());
    assert_eq!(
        connector(&report, "audit")["messages_out"],
        300,
        "only the new messages"
    );
    let got = seqs(&recorded(&record), true);
    let mut expected: Vec<u64> = (0..700).collect();
    expected.extend(0..300);
    assert_eq!(got, expected);
}

#[test]
fn redelivered_batches_reach_the_sink_twice_and_nothing_is_lost() {
    let ws = Workspace::new();
    ws.produce("created", 1000);
    let record = ws.recording_sink("audit", "created", "");
    let (output, _) = ws.run(&["--fault", "redeliver-every=4"]);
    assert!(output.status.success());
    let got = seqs(&recorded(&record), true);
    assert_eq!(got.len(), 1000 + 2 * 100, "batches 4 and 8 came twice");
    let mut unique = sorted(got);
    unique.dedup();
    assert_eq!(unique, (0..1000).collect::<Vec<_>>());
}

#[test]
fn an_undecodable_message_is_reported_with_its_offset_and_the_rest_flows() {
    let ws = Workspace::new();
    ws.produce("created", 300);
    let record = ws.recording_sink("audit", "created", "");
    let (output, _) = ws.run_ok(&["--fault", "corrupt-every=2"]);
    let got = seqs(&recorded(&record), true);
    let expected: Vec<u64> = (0..300).filter(|seq| *seq != 100).collect();
    assert_eq!(
        got, expected,
        "only the corrupted message of batch 2 is missing"
    );
    let stderr = stderr(&output);
    assert!(
        stderr.contains("do not decode as json") && stderr.contains("(offsets 100;"),
        "the SDK names the offset: {stderr}"
    );
}

#[test]
fn a_panicking_sink_returns_an_error_and_the_batch_is_retried() {
    let ws = Workspace::new();
    ws.produce("created", 500);
    let record = ws.recording_sink("audit", "created", "panic_every = 2");
    let (output, report) = ws.run_ok(&AFTER_CONSUME);
    assert_eq!(
        sorted(seqs(&recorded(&record), true)),
        (0..500).collect::<Vec<_>>()
    );
    assert!(stderr(&output).contains("panicked in iggy_sink_consume"));
    assert!(connector(&report, "audit")["errors"].as_u64().unwrap() >= 2);
}

#[test]
fn a_sink_that_panics_in_open_fails_alone() {
    let ws = Workspace::new();
    ws.produce("created", 100);
    ws.sink("broken", &testkit_sink(), "created", "panic_on_open = true");
    let record = ws.recording_sink("healthy", "created", "");
    let (output, report) = ws.run(&[]);
    assert_eq!(
        output.status.code(),
        Some(1),
        "a failed connector fails the run"
    );
    assert_eq!(report["ok"], false);
    let broken = connector(&report, "broken");
    assert_eq!(broken["status"], "error", "{broken}");
    assert!(
        broken["last_error"]["message"]
            .as_str()
            .unwrap()
            .contains("iggy_sink_open returned -1"),
        "{broken}"
    );
    assert_eq!(
        recorded(&record).len(),
        100,
        "the other instance of the same library still ran"
    );
}

#[test]
fn a_sink_that_keeps_failing_gives_up_after_max_attempts() {
    let ws = Workspace::new();
    ws.produce("created", 10);
    ws.sink("stuck", &testkit_sink(), "created", "fail_first = 1000");
    let (output, report) = ws.run(&["--max-attempts", "3", "--commit", "after-consume"]);
    assert_eq!(output.status.code(), Some(1));
    let stuck = connector(&report, "stuck");
    assert!(
        stuck["failure"]
            .as_str()
            .unwrap()
            .contains("failed 3 times"),
        "{stuck}"
    );
    assert_eq!(stuck["messages_out"], 0);
}

#[test]
fn injected_sink_failures_are_retried_without_calling_the_plugin_twice() {
    let ws = Workspace::new();
    ws.produce("created", 600);
    let record = ws.recording_sink("audit", "created", "");
    let (_, report) = ws.run_ok(&["--fault", "fail-sink-every=3", "--commit", "after-consume"]);
    assert_eq!(
        seqs(&recorded(&record), true),
        (0..600).collect::<Vec<_>>(),
        "once each, in order"
    );
    let audit = connector(&report, "audit");
    assert_eq!(
        (audit["retries"].as_u64(), audit["errors"].as_u64()),
        (Some(2), Some(2))
    );
}

/// As the runtime's consumer does, batches come at most once per the
/// stream's `poll_interval`, however many messages wait: 50 messages in
/// batches of 10, 300 ms apart, take at least 4 × 300 ms to deliver.
#[test]
fn batches_are_polled_at_most_once_per_poll_interval() {
    let ws = Workspace::new();
    ws.produce("created", 50);
    let record = ws.recording_sink("audit", "created", "");
    let file = ws.connectors().join("audit.toml");
    let text = std::fs::read_to_string(&file).unwrap();
    let paced = text
        .replace("batch_length = 100", "batch_length = 10")
        .replace("poll_interval = \"2ms\"", "poll_interval = \"300ms\"");
    std::fs::write(&file, paced).unwrap();
    let (output, report) = ws.run_ending(&until_idle("100ms", &[]));
    assert!(output.status.success(), "{report}");
    assert_eq!(recorded(&record).len(), 50);
    let audit = connector(&report, "audit");
    assert_eq!(audit["batches"], 5, "{audit}");
    let elapsed = report["elapsed_secs"].as_f64().unwrap();
    assert!(elapsed >= 1.2, "5 batches in {elapsed} s: not paced");
}
