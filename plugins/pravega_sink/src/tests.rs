//! The sink through its `Sink` interface: against the in-process fake (all
//! connector logic) and against pravega-client's own mock mode (what that
//! mode supports: stream setup, writes with acknowledgements, transactions).

use super::*;
use iggy_connector_sdk::{Payload, Schema};
use iggy_connector_shared::pravega::fake::{FakePravega, Faults};

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

async fn open(extra: &str, client: Arc<dyn PravegaClient>) -> PravegaSink {
    let mut sink = PravegaSink::new(1, config(extra));
    sink.connect(client).await.unwrap();
    sink
}

fn count(sink: &PravegaSink, name: &str) -> u64 {
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

#[tokio::test]
async fn refuses_oversized_messages_writes_the_rest_and_reports() {
    let fake = FakePravega::with_stream(1);
    let sink = open(r#","max_event_bytes":30"#, Arc::new(fake.clone())).await;
    let mut batch = messages(0..3);
    batch[1].payload = Payload::Raw(vec![b'x'; 31]);
    let error = sink
        .consume(&topic(), metadata(1), batch)
        .await
        .unwrap_err();
    assert!(error.to_string().contains("1 message(s)"), "{error}");
    assert_eq!(fake.payloads().len(), 2);
    assert_eq!(count(&sink, "refused"), 1);
    assert_eq!(count(&sink, "failed_batches"), 1);
}

#[tokio::test]
async fn missing_routing_keys_are_counted_and_written_without_one() {
    let fake = FakePravega::with_stream(2);
    let sink = open(
        r#","routing_key":{"header":"tenant"}"#,
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
        .collect();
    assert_eq!(keys, vec![Some("1".to_string()); 5]);
}

#[tokio::test]
async fn a_failed_batch_returns_an_error() {
    let fake = FakePravega::with_stream(1);
    fake.inject(Faults {
        failed_acks: 1,
        ..Faults::default()
    });
    let sink = open("", Arc::new(fake.clone())).await;
    let error = sink
        .consume(&topic(), metadata(1), messages(0..3))
        .await
        .unwrap_err();
    assert!(matches!(error, Error::CannotStoreData(_)), "{error}");
    assert_eq!(count(&sink, "failed_batches"), 1);
}

#[tokio::test]
async fn open_fails_on_a_missing_stream_unless_asked_to_create_it() {
    let mut sink = PravegaSink::new(1, config(""));
    let error = sink
        .connect(Arc::new(FakePravega::new()))
        .await
        .unwrap_err();
    assert!(error.to_string().contains("does not exist"), "{error}");
    let fake = FakePravega::new();
    open(r#","create":{"segments":2}"#, Arc::new(fake.clone())).await;
    assert_eq!(
        fake.created_with(),
        Some(iggy_connector_shared::pravega::client::ScalingPolicy::Fixed { segments: 2 })
    );
}

#[tokio::test]
async fn consume_before_open_fails() {
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

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn exactly_once_commits_transactions() {
        let sink = open(
            r#","create":{"segments":1},"writer_mode":"exactly_once""#,
            mock(),
        )
        .await;
        sink.consume(&topic(), metadata(1), messages(0..10))
            .await
            .unwrap();
        sink.consume(&topic(), metadata(1), messages(5..15))
            .await
            .unwrap();
        assert_eq!(count(&sink, "written"), 15);
        assert_eq!(count(&sink, "skipped_duplicates"), 5);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_transaction_is_closed_by_commit_and_abort() {
        let client = mock();
        client
            .ensure_stream(
                iggy_connector_shared::pravega::client::ScalingPolicy::Fixed { segments: 1 },
            )
            .await
            .unwrap();
        let mut writer = client.transactional_writer(7).await.unwrap();
        let mut committed = writer.begin().await.unwrap();
        committed.write(None, b"a".to_vec()).await.unwrap();
        committed.commit(0).await.unwrap();
        let error = committed.commit(0).await.unwrap_err();
        assert!(error.to_string().contains("closed"), "{error}");
        let mut aborted = writer.begin().await.unwrap();
        assert_ne!(aborted.id(), committed.id());
        aborted.abort().await.unwrap();
        assert!(aborted.write(None, b"b".to_vec()).await.is_err());
    }
}
