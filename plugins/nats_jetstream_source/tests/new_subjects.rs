//! Subjects added to the stream while the source runs (the stream's config
//! updated through the raw client): the default consumer starts a consumer
//! for each new one at its next subject check, and never one that would
//! read a message twice.

mod common;

use common::*;
use iggy_harness_test_support::{Workspace, connector};
use std::time::{Duration, Instant};

/// Replaces the stream's subjects, keeping the rest of its config.
fn set_subjects(nats: &Nats, subjects: &[&str]) {
    nats.block_on(async {
        let mut stream = nats.js.get_stream(STREAM).await.expect("stream");
        let mut config = stream.info().await.expect("stream info").config.clone();
        config.subjects = subjects.iter().map(|s| s.to_string()).collect();
        nats.js
            .update_stream(config)
            .await
            .expect("stream subjects updated");
    });
}

/// Waits (30 s at most) until `ready` holds, e.g. the run's first batch is in.
fn wait_until(what: &str, ready: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ready() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn wait_for_first_batch(ws: &Workspace) {
    let state = ws.path("state").join(format!("source_{KEY}.state"));
    wait_until("the first batch is in", || state.exists());
}

/// A stream capturing `orders.a` that holds `published` messages, and the
/// source's connector file with the `[plugin_config]` lines `extra`.
fn stream_and_source(ws: &Workspace, published: u64, extra: &str) -> Nats {
    let nats = Nats::start(ws);
    nats.create_stream(&["orders.a"]);
    nats.publish_numbered(&["orders.a"], 0, published);
    write_source(ws, &plugin_config(&nats, extra));
    nats
}

/// Runs the source until it is idle for 3 s while `meanwhile` changes the stream.
fn run_while(
    ws: &Workspace,
    faults: &[&str],
    meanwhile: impl FnOnce(),
) -> (String, serde_json::Value) {
    std::thread::scope(|scope| {
        let run = scope.spawn(|| run_patiently(ws, "3s", faults));
        meanwhile();
        run.join().expect("the run thread")
    })
}

#[test]
fn a_subject_added_while_running_is_read_exactly_once_and_resumed_after_a_restart() {
    let ws = Workspace::new();
    let nats = stream_and_source(
        &ws,
        100,
        "subject_check_interval = \"200ms\"\nbatch_size = 20\n",
    );
    // Every third batch Nacked: the new consumer's messages come again, once stored.
    let (stderr, report) = run_while(&ws, &["--fault", "nack-every=3"], || {
        wait_for_first_batch(&ws);
        set_subjects(&nats, &["orders.a", "orders.b"]);
        nats.publish_numbered(&["orders.a", "orders.b"], 100, 100);
    });
    let b_consumer = "iggy-orders_b-";
    assert!(
        stderr.contains(
            "stream `ORDERS` gained subject `orders.b`; reading it through `iggy-orders_b-"
        ),
        "{stderr}"
    );
    assert_eq!(connector(&report, KEY)["messages_out"], 200, "{report}");
    let stored_now = stored(&ws);
    assert_eq!(stored_now.len(), 200, "no duplicates");
    assert_eq!(sorted_numbers(&stored_now), (0..200).collect::<Vec<_>>());
    assert_eq!(
        stored_now.iter().filter(|(s, _)| s == "orders.b").count(),
        50
    );
    assert_ordered_per_subject(&stored_now);

    // A restart plans both subjects at once, reusing both consumers where
    // the saved progress left them.
    nats.publish_numbered(&["orders.a", "orders.b"], 200, 60);
    let (stderr, report) = run_ok(&ws, &[]);
    assert_eq!(connector(&report, KEY)["messages_out"], 60, "{report}");
    assert!(!stderr.contains("gained subject"), "{stderr}");
    assert!(!stderr.contains("created durable consumer"), "{stderr}");
    assert!(!stderr.contains("recreating it"), "{stderr}");
    let stored_now = stored(&ws);
    assert_eq!(stored_now.len(), 260, "no duplicates after the restart");
    assert_eq!(sorted_numbers(&stored_now), (0..260).collect::<Vec<_>>());
    assert_ordered_per_subject(&stored_now);
    let names = nats.consumer_names();
    assert_eq!(names.len(), 2, "{names:?}");
    for name in &names {
        let info = nats.consumer_info(name);
        assert_eq!(
            (info.num_pending, info.num_ack_pending),
            (0, 0),
            "`{name}`: everything read and acknowledged"
        );
    }
    assert!(names.iter().any(|n| n.starts_with(b_consumer)), "{names:?}");
}

#[test]
fn a_new_subject_under_deliver_policy_new_keeps_what_arrived_before_the_check() {
    let ws = Workspace::new();
    // The 10 messages published before the source starts are not read under `new`.
    let nats = stream_and_source(
        &ws,
        10,
        "subject_check_interval = \"1s\"\n[plugin_config.default_consumer]\ndeliver_policy = \"new\"\n",
    );
    let (stderr, report) = run_while(&ws, &[], || {
        wait_until("the consumer of orders.a exists", || {
            !nats.consumer_names().is_empty()
        });
        nats.publish_numbered(&["orders.a"], 10, 10);
        wait_for_first_batch(&ws);
        // Published before the source's next check finds the subject.
        set_subjects(&nats, &["orders.a", "orders.b"]);
        nats.publish_numbered(&["orders.b"], 20, 20);
    });
    assert!(
        stderr.contains("(filter `orders.b`, start ByStartSequence"),
        "a consumer for a new subject starts where the previous check ended, not at `new`: {stderr}"
    );
    assert_eq!(connector(&report, KEY)["messages_out"], 30, "{report}");
    let stored_now = stored(&ws);
    assert_eq!(sorted_numbers(&stored_now), (10..40).collect::<Vec<_>>());
    assert_eq!(stored_now.len(), 30, "no duplicates");
}

#[test]
fn a_new_subject_overlapping_a_running_consumer_is_refused_and_nothing_is_read_twice() {
    let ws = Workspace::new();
    let nats = stream_and_source(&ws, 10, "subject_check_interval = \"200ms\"\n");
    let (stderr, report) = run_while(&ws, &[], || {
        wait_for_first_batch(&ws);
        // `orders.*` takes over `orders.a`, whose consumer still reads it.
        set_subjects(&nats, &["orders.*"]);
        nats.publish_numbered(&["orders.a", "orders.c"], 10, 20);
    });
    assert!(
        stderr.contains("stream `ORDERS` now has subjects [\"orders.*\"], not all read")
            && stderr.contains("overlap"),
        "{stderr}"
    );
    assert_eq!(
        stderr.matches("not all read").count(),
        1,
        "said once, not at every check"
    );
    assert_eq!(connector(&report, KEY)["messages_out"], 20, "{report}");
    let stored_now = stored(&ws);
    assert!(
        stored_now.iter().all(|(s, _)| s == "orders.a"),
        "{stored_now:?}"
    );
    assert_eq!(
        sorted_numbers(&stored_now),
        (0..30)
            .filter(|n| *n < 10 || n % 2 == 0)
            .collect::<Vec<_>>()
    );
}
