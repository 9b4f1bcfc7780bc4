//! Progress that does not depend on NATS alone: resuming from the saved
//! state after the durable consumer was deleted or recreated, and a server
//! killed and restarted in the middle of a run.

mod common;

use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, pull};
use common::*;
use iggy_harness_test_support::{Workspace, connector};
use std::time::{Duration, Instant};

#[test]
fn resumes_from_its_state_when_the_consumer_was_deleted_or_recreated() {
    let ws = Workspace::new();
    let nats = Nats::start(&ws);
    nats.create_stream(&["orders.>"]);
    let subjects = ["orders.a", "orders.b"];
    write_source(&ws, &plugin_config(&nats, &consumers(&[("c", "orders.>")])));
    nats.publish_numbered(&subjects, 0, 300);
    run_ok(&ws, &[]);
    assert_eq!(stored(&ws).len(), 300);

    // A plain restart reuses the consumer as it is.
    nats.publish_numbered(&subjects, 300, 50);
    let (stderr, report) = run_ok(&ws, &[]);
    assert_eq!(connector(&report, KEY)["messages_out"], 50, "{report}");
    assert!(!stderr.contains("recreating it"), "{stderr}");

    // Deleted: created again just after what Iggy holds.
    nats.delete_consumer("c");
    nats.publish_numbered(&subjects, 350, 150);
    let (stderr, report) = run_ok(&ws, &[]);
    assert_eq!(connector(&report, KEY)["messages_out"], 150, "{report}");
    assert!(
        stderr.contains("created durable consumer `c`") && stderr.contains("start_sequence: 351"),
        "{stderr}"
    );

    // Recreated by someone else to start from the beginning, with explicit
    // acks: the 500 messages already in Iggy are skipped and acknowledged.
    nats.delete_consumer("c");
    nats.create_consumer(pull::Config {
        durable_name: Some("c".into()),
        filter_subject: "orders.>".into(),
        deliver_policy: DeliverPolicy::All,
        ack_policy: AckPolicy::Explicit,
        ..Default::default()
    });
    nats.publish_numbered(&subjects, 500, 100);
    let (stderr, report) = run_ok(&ws, &[]);
    assert_eq!(connector(&report, KEY)["messages_out"], 100, "{report}");
    assert!(stderr.contains("skipped_redeliveries=500"), "{stderr}");

    let stored = stored(&ws);
    assert_eq!(stored.len(), 600, "no duplicates");
    assert_eq!(
        sorted_numbers(&stored),
        (0..600).collect::<Vec<_>>(),
        "no loss"
    );
    assert_ordered_per_subject(&stored);
    let info = nats.consumer_info("c");
    assert_eq!(info.config.ack_policy, AckPolicy::Explicit);
    assert_eq!(
        info.num_ack_pending, 0,
        "every message acknowledged one by one"
    );
}

#[test]
fn a_consumer_holding_messages_beyond_the_saved_progress_is_recreated_there() {
    let ws = Workspace::new();
    let nats = Nats::start(&ws);
    nats.create_stream(&["orders.>"]);
    let subjects = ["orders.a", "orders.b"];
    write_source(&ws, &plugin_config(&nats, &consumers(&[("c", "orders.>")])));
    nats.publish_numbered(&subjects, 0, 100);
    run_ok(&ws, &[]);
    nats.publish_numbered(&subjects, 100, 100);
    // A batch handed out and never acknowledged: NATS would send it again
    // only after ack_wait (60 s), behind the newer messages.
    assert_eq!(nats.fetch_without_ack("c", 50), 50);

    let (stderr, _) = run_ok(&ws, &[]);

    assert!(stderr.contains("recreating it to start at 101"), "{stderr}");
    let stored = stored(&ws);
    assert_eq!(sorted_numbers(&stored), (0..200).collect::<Vec<_>>());
    assert_eq!(stored.len(), 200, "no duplicates");
    assert_ordered_per_subject(&stored);
}

#[test]
fn keeps_every_message_when_the_server_is_killed_and_restarted_mid_run() {
    let ws = Workspace::new();
    let mut nats = Nats::start(&ws);
    nats.create_stream(&["orders.>"]);
    nats.publish_numbered(&["orders.a", "orders.b"], 0, 6000);
    write_source(
        &ws,
        &plugin_config(
            &nats,
            &format!(
                "batch_size = 50\nconnect_timeout = \"1s\"\n{}",
                consumers(&[("a", "orders.a"), ("b", "orders.b")])
            ),
        ),
    );

    let state_file = ws.path("state").join(format!("source_{KEY}.state"));
    let (stderr, _) = std::thread::scope(|scope| {
        let server = &mut nats.server;
        scope.spawn(move || {
            // Restarts once the first batch is in (its state saved), mid-run.
            let deadline = Instant::now() + Duration::from_secs(30);
            while !state_file.exists() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
            server.restart();
        });
        // Slow batch results keep the run going while the server restarts.
        run_patiently(&ws, "12s", &["--fault", "delay-result=20ms"])
    });

    assert!(
        stderr.contains("disconnected"),
        "the server went away mid-run: {stderr}"
    );
    let stored = stored(&ws);
    assert_eq!(
        sorted_numbers(&stored),
        (0..6000).collect::<Vec<_>>(),
        "no loss"
    );
    assert_eq!(stored.len(), 6000, "no duplicates");
    assert_ordered_per_subject(&stored);
}
