//! Bounded mode: each stop rule ends the read for every consumer, the source
//! then produces nothing more, and "finished" survives a restart.

mod common;

use common::*;
use iggy_harness_test_support::{Workspace, connector};
use std::time::{Duration, Instant};

const FINISHED: &str = "finished: the stop rule was reached";

fn bounded(nats: &Nats, stop: &str) -> String {
    plugin_config(
        nats,
        &format!(
            "{}[plugin_config.stop]\n{stop}\n",
            consumers(&[("a", "orders.a"), ("b", "orders.b")])
        ),
    )
}

/// A second run with the saved state produces nothing, even with new messages.
fn assert_stays_finished(ws: &Workspace, nats: &Nats, before: usize) {
    nats.publish_numbered(&["orders.a", "orders.b"], 10_000, 20);
    let (stderr, report) = run_ok(ws, &[]);
    assert_eq!(connector(&report, KEY)["messages_out"], 0, "{report}");
    assert!(
        stderr.contains("finished its bounded read earlier"),
        "{stderr}"
    );
    assert_eq!(stored(ws).len(), before);
}

#[test]
fn stop_at_a_sequence_ends_every_consumer_there() {
    let ws = Workspace::new();
    let nats = Nats::start(&ws);
    nats.create_stream(&["orders.>"]);
    // Stream sequence s holds n = s - 1: 40 is on `b`, `a` next sees 41.
    nats.publish_numbered(&["orders.a", "orders.b"], 0, 100);
    write_source(&ws, &bounded(&nats, "at_sequence = 40"));

    // Idle long enough for a few polls after finishing: it says so once.
    let (stderr, _) = run_patiently(&ws, "3s", &[]);

    let stored = stored(&ws);
    assert_eq!(sorted_numbers(&stored), (0..40).collect::<Vec<_>>());
    assert_ordered_per_subject(&stored);
    assert_eq!(stderr.matches(FINISHED).count(), 1, "logged once: {stderr}");
    assert_stays_finished(&ws, &nats, 40);
}

#[test]
fn a_sequence_the_stream_has_not_reached_keeps_the_source_reading() {
    let ws = Workspace::new();
    let nats = Nats::start(&ws);
    nats.create_stream(&["orders.>"]);
    nats.publish_numbered(&["orders.a", "orders.b"], 0, 30);
    write_source(&ws, &bounded(&nats, "at_sequence = 1000"));

    let (stderr, _) = run_ok(&ws, &[]);

    assert_eq!(sorted_numbers(&stored(&ws)), (0..30).collect::<Vec<_>>());
    assert!(!stderr.contains(FINISHED), "{stderr}");
}

#[test]
fn stop_after_n_messages_counts_every_consumer() {
    let ws = Workspace::new();
    let nats = Nats::start(&ws);
    nats.create_stream(&["orders.>"]);
    nats.publish_numbered(&["orders.a", "orders.b"], 0, 100);
    write_source(&ws, &bounded(&nats, "after_messages = 25"));

    let (stderr, _) = run_ok(&ws, &[]);

    let stored = stored(&ws);
    assert_eq!(stored.len(), 25, "{stored:?}");
    assert_ordered_per_subject(&stored);
    for (subject, parity) in [("orders.a", 0), ("orders.b", 1)] {
        let numbers: Vec<u64> = stored
            .iter()
            .filter(|(s, _)| s == subject)
            .map(|(_, n)| *n)
            .collect();
        let prefix: Vec<u64> = (0..numbers.len() as u64).map(|i| 2 * i + parity).collect();
        assert_eq!(
            numbers, prefix,
            "{subject} is read from its start, without gaps"
        );
    }
    assert_eq!(stderr.matches(FINISHED).count(), 1, "{stderr}");
    assert_stays_finished(&ws, &nats, 25);
}

#[test]
fn stop_at_the_last_sequence_at_start_ignores_later_messages() {
    let ws = Workspace::new();
    let nats = Nats::start(&ws);
    nats.create_stream(&["orders.>"]);
    nats.publish_numbered(&["orders.a", "orders.b"], 0, 60);
    write_source(&ws, &bounded(&nats, "at_last_sequence = true"));

    let stderr = std::thread::scope(|scope| {
        // Publishes once the source has opened (it creates its consumers
        // after reading the stream's last sequence).
        let publisher = scope.spawn(|| {
            let deadline = Instant::now() + Duration::from_secs(20);
            while nats.consumer_names().len() < 2 {
                assert!(Instant::now() < deadline, "the source never opened");
                std::thread::sleep(Duration::from_millis(10));
            }
            nats.publish_numbered(&["orders.a", "orders.b"], 60, 100);
        });
        let (stderr, _) = run_ok(&ws, &[]);
        publisher.join().expect("publisher");
        stderr
    });

    assert_eq!(sorted_numbers(&stored(&ws)), (0..60).collect::<Vec<_>>());
    assert_eq!(stderr.matches(FINISHED).count(), 1, "{stderr}");
    assert_stays_finished(&ws, &nats, 60);
}

#[test]
fn stop_at_a_time_keeps_what_was_published_until_then() {
    let ws = Workspace::new();
    let nats = Nats::start(&ws);
    nats.create_stream(&["orders.>"]);
    nats.publish_numbered(&["orders.a", "orders.b"], 0, 30);
    let last_kept = nats.block_on(async {
        let stream = nats.js.get_stream(STREAM).await.expect("stream");
        stream.get_raw_message(30).await.expect("message 30").time
    });
    std::thread::sleep(Duration::from_millis(20));
    nats.publish_numbered(&["orders.a", "orders.b"], 30, 30);
    let at_time = last_kept
        .format(&time::format_description::well_known::Rfc3339)
        .expect("RFC 3339");
    write_source(&ws, &bounded(&nats, &format!("at_time = \"{at_time}\"")));

    run_ok(&ws, &[]);

    assert_eq!(sorted_numbers(&stored(&ws)), (0..30).collect::<Vec<_>>());
}
