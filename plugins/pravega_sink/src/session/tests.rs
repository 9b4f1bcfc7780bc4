//! The sink through its `Sink` interface: against the in-process fake (all
//! connector logic) and against pravega-client's own mock mode (what that
//! mode supports: stream setup, writes with acknowledgements, transactions).
//! The fake for what a real server (tests/pravega_server.rs, tests/outages.rs)
//! cannot be made to do on demand and the mock mode cannot show: a failure
//! at a chosen call, a stall of a chosen length, time under a paused clock.

use super::*;
use crate::PravegaSink;
use crate::{mapping, writer};
use iggy_connector_pravega_common::fake::{FakePravega, Faults};
use iggy_connector_sdk::{Payload, Schema};
use std::time::Duration;

fn config(extra: &str) -> SinkConfig {
    let json = format!(
        r#"{{"controller_uri":"tcp://127.0.0.1:9090","scope":"shop","stream":"orders"{extra}}}"#
    );
    let config: SinkConfig = serde_json::from_str(&json).unwrap();
    config.validate().unwrap();
    config
}

fn messages(offsets: std::ops::Range<u64>) -> Vec<ConsumedMessage> {
    offsets
        .map(|offset| {
            let mut bytes =
                format!(r#"{{"order":{offset},"customer":"c{}"}}"#, offset % 4).into_bytes();
            ConsumedMessage {
                id: u128::from(offset),
                offset,
                checksum: 0,
                timestamp: 1_700_000_000_000_000 + offset,
                origin_timestamp: 0,
                headers: None,
                payload: Payload::Json(simd_json::to_owned_value(&mut bytes).unwrap()),
            }
        })
        .collect()
}

fn topic() -> TopicMetadata {
    TopicMetadata {
        stream: "shop".into(),
        topic: "orders".into(),
    }
}

fn metadata(partition: u32) -> MessagesMetadata {
    MessagesMetadata {
        partition_id: partition,
        current_offset: 0,
        schema: Schema::Json,
    }
}

async fn open(extra: &str, client: Arc<dyn PravegaClient>) -> Session {
    match Session::connect(1, config(extra), client, Arc::new(Counters::new(&COUNTERS))).await {
        Ok(session) => session,
        Err(error) => panic!("open failed: {error}"),
    }
}

fn count(sink: &Session, name: &str) -> u64 {
    sink.counters.get(name).unwrap().get()
}

#[tokio::test]
async fn creates_the_stream_and_routes_by_payload_field() {
    let fake = FakePravega::new();
    let sink = open(
        r#","create":{"scaling":"events_per_second","target_rate":100,"segments":3},
        "routing_key":{"field":"customer"}"#,
        Arc::new(fake.clone()),
    )
    .await;
    assert_eq!(
        fake.segments().len(),
        3,
        "created with its minimum segments"
    );
    sink.consume(&topic(), metadata(1), messages(0..12))
        .await
        .unwrap();
    let stored: Vec<_> = fake.segments().into_values().flatten().collect();
    assert_eq!(stored.len(), 12);
    for event in &stored {
        let payload: serde_json::Value = serde_json::from_slice(&event.payload).unwrap();
        let customer = payload["customer"].as_str().unwrap();
        assert_eq!(event.routing_key.as_deref(), Some(customer));
    }
    assert_eq!(count(&sink, "written"), 12);
}

// The fake: the same case against a real server is in
// tests/pravega_server.rs; this one needs no server and runs in milliseconds.
#[tokio::test]
async fn oversized_and_unroutable_messages_are_skipped_and_counted_the_rest_written() {
    let fake = FakePravega::with_stream(2);
    let sink = open(
        r#","max_event_bytes":40,"routing_key":{"field":"customer"}"#,
        Arc::new(fake.clone()),
    )
    .await;
    let mut batch = messages(0..5);
    batch[1].payload = Payload::Raw(vec![b'x'; 41]);
    let mut no_customer = br#"{"order":3}"#.to_vec();
    batch[3].payload = Payload::Json(simd_json::to_owned_value(&mut no_customer).unwrap());
    sink.consume(&topic(), metadata(1), batch).await.unwrap();
    let mut written: Vec<serde_json::Value> = fake
        .payloads()
        .iter()
        .map(|p| serde_json::from_slice(p).unwrap())
        .collect();
    written.sort_by_key(|v| v["order"].as_u64());
    let orders: Vec<_> = written
        .iter()
        .map(|v| v["order"].as_u64().unwrap())
        .collect();
    assert_eq!(orders, [0, 2, 4]);
    assert_eq!(count(&sink, "refused"), 1);
    assert_eq!(count(&sink, "missing_routing_key"), 1);
    assert_eq!(count(&sink, "written"), 3);
    assert_eq!(count(&sink, "failed_batches"), 0);
}

#[tokio::test]
async fn missing_routing_keys_can_be_written_without_one() {
    let fake = FakePravega::with_stream(2);
    let sink = open(
        r#","routing_key":{"header":"tenant"},"missing_routing_key":"no_key""#,
        Arc::new(fake.clone()),
    )
    .await;
    sink.consume(&topic(), metadata(1), messages(0..4))
        .await
        .unwrap();
    assert_eq!(count(&sink, "missing_routing_key"), 4);
    assert_eq!(fake.payloads().len(), 4);
}

#[tokio::test]
async fn exactly_once_redelivery_is_not_committed_twice() {
    let fake = FakePravega::with_stream(2);
    let sink = open(
        r#","writer_mode":"exactly_once","routing_key":"partition""#,
        Arc::new(fake.clone()),
    )
    .await;
    sink.consume(&topic(), metadata(1), messages(0..5))
        .await
        .unwrap();
    sink.consume(&topic(), metadata(1), messages(0..5))
        .await
        .unwrap();
    assert_eq!(fake.commits().len(), 1);
    assert_eq!(count(&sink, "skipped_duplicates"), 5);
    let keys: Vec<_> = fake
        .segments()
        .into_values()
        .flatten()
        .map(|e| e.routing_key)
        .filter(|key| key.as_deref() != Some("iggy-sink-position/shop/orders/1"))
        .collect();
    assert_eq!(keys, vec![Some("1".to_string()); 5]);
}

// The fake: failures are injected into it.
#[tokio::test(start_paused = true)]
async fn a_batch_given_up_on_returns_an_error() {
    let fake = FakePravega::with_stream(1);
    fake.inject(Faults {
        failed_acks: 1,
        ..Faults::default()
    });
    let sink = open(r#","retry":{"max_attempts":1}"#, Arc::new(fake.clone())).await;
    let error = sink
        .consume(&topic(), metadata(1), messages(0..3))
        .await
        .unwrap_err();
    assert!(matches!(error, Error::CannotStoreData(_)), "{error}");
    assert_eq!(count(&sink, "failed_batches"), 1);

    // An outage longer than the retries' max_elapsed.
    let sink = open(r#","retry":{"max_elapsed":"3s"}"#, Arc::new(fake.clone())).await;
    fake.set_available(false);
    let started = tokio::time::Instant::now();
    let error = sink
        .consume(&topic(), metadata(1), messages(0..3))
        .await
        .unwrap_err();
    assert!(
        started.elapsed() <= Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert!(error.to_string().contains("fake outage"), "{error}");
    assert_eq!(count(&sink, "failed_batches"), 1);
}

// The fake: an outage of 40 s on a paused clock (tests/outages.rs freezes a
// real server for 20 s).
#[tokio::test(start_paused = true)]
async fn an_outage_is_ridden_out_by_default_and_the_batch_written_when_it_ends() {
    for mode in ["at_least_once", "exactly_once"] {
        let fake = FakePravega::with_stream(2);
        let sink = open(
            &format!(r#","writer_mode":"{mode}""#),
            Arc::new(fake.clone()),
        )
        .await;
        fake.set_available(false);
        let outage = Duration::from_secs(40);
        let back = {
            let fake = fake.clone();
            tokio::spawn(async move {
                tokio::time::sleep(outage).await;
                fake.set_available(true);
            })
        };
        let started = tokio::time::Instant::now();
        sink.consume(&topic(), metadata(1), messages(0..10))
            .await
            .unwrap();
        assert!(
            started.elapsed() >= outage,
            "{mode}: {:?}",
            started.elapsed()
        );
        back.await.unwrap();
        assert_eq!(
            fake.payloads().len(),
            10,
            "{mode}: written once, after the outage"
        );
        assert_eq!(count(&sink, "written"), 10, "{mode}");
        assert_eq!(count(&sink, "failed_batches"), 0, "{mode}");
    }
}

// The fake: it loses its stream on demand (tests/outages.rs restarts a real
// standalone server, which comes back empty).
#[tokio::test(start_paused = true)]
async fn a_stream_lost_with_a_restart_is_created_again_before_the_retry() {
    for mode in ["at_least_once", "exactly_once"] {
        let fake = FakePravega::new();
        let sink = open(
            &format!(r#","writer_mode":"{mode}","create":{{"segments":2}}"#),
            Arc::new(fake.clone()),
        )
        .await;
        sink.consume(&topic(), metadata(1), messages(0..5))
            .await
            .unwrap();
        fake.lose_everything();
        sink.consume(&topic(), metadata(1), messages(5..10))
            .await
            .unwrap();
        assert_eq!(
            fake.created_with(),
            Some(ScalingPolicy::Fixed { segments: 2 }),
            "{mode}"
        );
        assert_eq!(fake.payloads().len(), 5, "{mode}: the batch after the loss");
        assert_eq!(count(&sink, "failed_batches"), 0, "{mode}");
    }
    // Without `[create]` the stream is not made: the batch fails once the
    // retries run out.
    let fake = FakePravega::with_stream(1);
    let sink = open(r#","retry":{"max_elapsed":"3s"}"#, Arc::new(fake.clone())).await;
    fake.lose_everything();
    let error = sink
        .consume(&topic(), metadata(1), messages(0..5))
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("stream does not exist"),
        "{error}"
    );
    assert_eq!(fake.created_with(), None);
}

// The fake: a server that takes writes but never answers needs one.
#[tokio::test(start_paused = true)]
async fn a_stalled_attempt_is_cut_by_attempt_timeout_and_retried() {
    let fake = FakePravega::with_stream(1);
    fake.delay_acks(Duration::from_secs(3600));
    let sink = open(r#","attempt_timeout":"2s""#, Arc::new(fake.clone())).await;
    let answering = {
        let fake = fake.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(5)).await;
            fake.delay_acks(Duration::ZERO);
        })
    };
    let started = tokio::time::Instant::now();
    sink.consume(&topic(), metadata(1), messages(0..4))
        .await
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "{:?}",
        started.elapsed()
    );
    answering.await.unwrap();
    // At least once: the stalled attempts' events were stored too.
    let stored = fake.payloads();
    assert!(stored.len() > 4, "{}", stored.len());
    for n in 0..4 {
        let order = format!(r#""order":{n},"#);
        assert!(
            stored
                .iter()
                .any(|p| String::from_utf8_lossy(p).contains(&order))
        );
    }
}

#[tokio::test]
async fn open_fails_on_a_missing_stream_unless_asked_to_create_it() {
    let Err(error) = Session::connect(
        1,
        config(""),
        Arc::new(FakePravega::new()),
        Arc::new(Counters::new(&COUNTERS)),
    )
    .await
    else {
        panic!("a missing stream was accepted");
    };
    assert!(error.to_string().contains("does not exist"), "{error}");
    let fake = FakePravega::new();
    open(r#","create":{"segments":2}"#, Arc::new(fake.clone())).await;
    assert_eq!(
        fake.created_with(),
        Some(ScalingPolicy::Fixed { segments: 2 })
    );
}

#[tokio::test]
async fn consume_before_open_fails() {
    use iggy_connector_sdk::Sink;
    let sink = PravegaSink::new(1, config(""));
    assert!(
        sink.consume(&topic(), metadata(1), messages(0..1))
            .await
            .is_err()
    );
}

mod mock_mode {
    use super::*;

    fn mock() -> Arc<dyn PravegaClient> {
        Arc::new(RealClient::mock("shop", "orders").unwrap())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn at_least_once_writes_are_acknowledged() {
        let sink = open(
            r#","create":{"segments":2},"routing_key":{"field":"customer"}"#,
            mock(),
        )
        .await;
        sink.consume(&topic(), metadata(1), messages(0..20))
            .await
            .unwrap();
        assert_eq!(count(&sink, "written"), 20);
        assert_eq!(count(&sink, "unacknowledged"), 0);
    }

    // `open` in exactly_once reads the position markers back, which the
    // mock mode cannot serve (it has no segment positions): the writer alone.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn exactly_once_commits_transactions() {
        let client = mock();
        client
            .ensure_stream(ScalingPolicy::Fixed { segments: 1 })
            .await
            .unwrap();
        let counters = Arc::new(Counters::new(&COUNTERS));
        let mut writer = Writer::new(
            client,
            WriterMode::ExactlyOnce,
            7,
            positions::Committed::new(),
            counters,
        );
        let events = |offsets: std::ops::Range<u64>| {
            offsets
                .map(|offset| mapping::OutEvent {
                    offset,
                    routing_key: None,
                    payload: format!("event {offset}").into_bytes(),
                })
                .collect::<Vec<_>>()
        };
        let first = writer.deliver("shop/orders/1", events(0..10), 0).await;
        assert_eq!(
            first.unwrap(),
            writer::Delivered {
                written: 10,
                skipped: 0
            }
        );
        let overlap = writer.deliver("shop/orders/1", events(5..15), 0).await;
        assert_eq!(
            overlap.unwrap(),
            writer::Delivered {
                written: 5,
                skipped: 5
            }
        );
    }

    fn event(payload: &[u8]) -> iggy_connector_pravega_common::client::NewEvent {
        iggy_connector_pravega_common::client::NewEvent {
            routing_key: None,
            payload: payload.to_vec(),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_transaction_is_closed_by_commit_and_abort() {
        let client = mock();
        client
            .ensure_stream(ScalingPolicy::Fixed { segments: 1 })
            .await
            .unwrap();
        let mut writer = client.transactional_writer(7).await.unwrap();
        let mut committed = writer.begin().await.unwrap();
        committed.write_all(vec![event(b"a")]).await.unwrap();
        committed.commit(0).await.unwrap();
        let error = committed.commit(0).await.unwrap_err();
        assert!(error.to_string().contains("closed"), "{error}");
        let mut aborted = writer.begin().await.unwrap();
        assert_ne!(aborted.id(), committed.id());
        aborted.abort().await.unwrap();
        assert!(aborted.write_all(vec![event(b"b")]).await.is_err());
    }
}
