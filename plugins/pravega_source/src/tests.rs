//! The source session against the in-process fake (all connector logic:
//! starts, Ack and Nack, state and resume, scaling, admission, failures,
//! release on close) and against pravega-client's own mock mode (reader
//! group from a stream cut). The fake fails on demand and scales in ways
//! a test controls exactly (merges, uneven scales); the mock mode reads
//! back filler bytes instead of the events written. The real server's
//! tests are in `tests/`.

use crate::config::SourceConfig;
use crate::mapping::{OFFSET_HEADER, SEGMENT_HEADER, message_id};
use crate::session::Session;
use iggy_common::HeaderKey;
use iggy_connector_common::session_source::SourceSession;
use iggy_connector_pravega_common::RealClient;
use iggy_connector_pravega_common::client::{
    ClientError, EventReader, EventWriter, PravegaClient, ReadEvent, ScalingPolicy, StartAt,
    StreamCut, Successors, TransactionalWriter,
};
use iggy_connector_pravega_common::fake::{FakePravega, Faults};
use iggy_connector_pravega_common::position::PositionMarker;
use iggy_connector_sdk::source::SourceBatchResult;
use iggy_connector_sdk::{ConnectorState, ProducedMessages};
use std::sync::Arc;
use std::time::Duration;

fn config(extra: &str) -> SourceConfig {
    let json = format!(
        r#"{{"controller_uri":"tcp://127.0.0.1:9090","scope":"shop","stream":"orders","poll_wait":"10ms"{extra}}}"#
    );
    let config: SourceConfig = serde_json::from_str(&json).unwrap();
    config.validate().unwrap();
    config
}

async fn open(fake: &FakePravega, extra: &str, state: Option<ConnectorState>) -> Session {
    Session::start(1, config(extra), state, Arc::new(fake.clone()))
        .await
        .unwrap()
}

fn fill(fake: &FakePravega, range: std::ops::Range<u32>) {
    for n in range {
        fake.append(
            Some(&format!("key-{}", n % 3)),
            format!("event {n}").as_bytes(),
        );
    }
}

fn payloads(batch: &ProducedMessages) -> Vec<String> {
    batch
        .messages
        .iter()
        .map(|m| String::from_utf8(m.payload.clone()).unwrap())
        .collect()
}

fn sorted_numbers(batch: &ProducedMessages) -> Vec<u32> {
    let mut numbers: Vec<u32> = payloads(batch)
        .iter()
        .map(|p| p.trim_start_matches("event ").parse().unwrap())
        .collect();
    numbers.sort_unstable();
    numbers
}

#[tokio::test]
async fn reads_from_head_with_headers_ids_and_state() {
    let fake = FakePravega::with_stream(2);
    fill(&fake, 0..10);
    let mut session = open(&fake, "", None).await;
    let batch = session.poll().await.unwrap();
    assert_eq!(sorted_numbers(&batch), (0..10).collect::<Vec<_>>());
    for message in &batch.messages {
        let headers = message.headers.as_ref().unwrap();
        let get = |k: &str| {
            headers
                .get(&HeaderKey::try_from(k).unwrap())
                .unwrap()
                .to_string_value()
        };
        let (segment, offset) = (get(SEGMENT_HEADER), get(OFFSET_HEADER));
        assert_eq!(
            message.id,
            Some(message_id(
                "shop/orders",
                segment.parse().unwrap(),
                offset.parse().unwrap()
            ))
        );
    }
    assert!(batch.state.is_some(), "positions moved");
    session.on_batch_result(SourceBatchResult::Ack).await;
    let idle = session.poll().await.unwrap();
    assert!(idle.messages.is_empty());
    assert!(idle.state.is_none(), "nothing moved");
}

#[tokio::test]
async fn a_tail_start_is_saved_before_any_event_so_a_restart_misses_nothing() {
    let fake = FakePravega::with_stream(1);
    fill(&fake, 0..3);
    let mut session = open(&fake, r#","start":"tail""#, None).await;
    let mut first = session.poll().await.unwrap();
    assert!(first.messages.is_empty());
    let state = first
        .state
        .take()
        .expect("the resolved tail is handed over");
    session.on_batch_result(SourceBatchResult::Ack).await;
    assert!(session.poll().await.unwrap().state.is_none(), "held now");
    session.close().await;
    fill(&fake, 3..5);
    let mut resumed = open(&fake, r#","start":"tail""#, Some(state)).await;
    assert_eq!(sorted_numbers(&resumed.poll().await.unwrap()), [3, 4]);
}

#[tokio::test]
async fn batch_size_bounds_a_batch_and_ack_moves_on() {
    let fake = FakePravega::with_stream(1);
    fill(&fake, 0..10);
    let mut session = open(&fake, r#","batch_size":4"#, None).await;
    let mut seen = Vec::new();
    for _ in 0..5 {
        let batch = session.poll().await.unwrap();
        assert!(batch.messages.len() <= 4);
        seen.extend(sorted_numbers(&batch));
        session.on_batch_result(SourceBatchResult::Ack).await;
    }
    assert_eq!(seen, (0..10).collect::<Vec<_>>());
}

#[tokio::test]
async fn nack_reads_the_same_batch_again_from_a_new_reader() {
    let fake = FakePravega::with_stream(2);
    fill(&fake, 0..6);
    let mut session = open(&fake, "", None).await;
    let first = session.poll().await.unwrap();
    session.on_batch_result(SourceBatchResult::Nack).await;
    assert!(fake.open_groups().is_empty(), "the old reader was released");
    let again = session.poll().await.unwrap();
    let ids = |b: &ProducedMessages| {
        let mut ids: Vec<_> = b.messages.iter().map(|m| m.id).collect();
        ids.sort_unstable();
        ids
    };
    assert_eq!(ids(&first), ids(&again));
    assert_eq!(fake.open_groups(), ["iggy-source-orders"]);
    session.on_batch_result(SourceBatchResult::Ack).await;
    fill(&fake, 6..8);
    assert_eq!(sorted_numbers(&session.poll().await.unwrap()), [6, 7]);
}

#[tokio::test]
async fn resumes_from_saved_state_after_a_restart() {
    let fake = FakePravega::with_stream(3);
    fill(&fake, 0..9);
    let mut session = open(&fake, r#","batch_size":5"#, None).await;
    let mut batch = session.poll().await.unwrap();
    assert_eq!(batch.messages.len(), 5);
    session.on_batch_result(SourceBatchResult::Ack).await;
    let state = batch.state.take().unwrap();
    session.close().await;
    assert!(fake.open_groups().is_empty(), "close released the reader");

    // The saved state wins over `start`.
    let mut resumed = open(&fake, r#","start":"tail""#, Some(state)).await;
    let rest = resumed.poll().await.unwrap();
    let mut all = sorted_numbers(&batch);
    all.extend(sorted_numbers(&rest));
    all.sort_unstable();
    assert_eq!(
        all,
        (0..9).collect::<Vec<_>>(),
        "nothing lost, nothing twice"
    );
}

fn append_marker(fake: &FakePravega, first: u64, last: u64) {
    let marker = PositionMarker {
        partition: "shop/orders/1".into(),
        first,
        last,
    };
    fake.append(Some(&marker.routing_key()), &marker.encode());
}

#[tokio::test]
async fn the_sinks_position_markers_are_passed_over_and_read_past() {
    let fake = FakePravega::with_stream(1);
    fill(&fake, 0..3);
    append_marker(&fake, 0, 2);
    fill(&fake, 3..5);
    append_marker(&fake, 3, 4);
    let mut session = open(&fake, "", None).await;
    let batch = session.poll().await.unwrap();
    assert_eq!(
        sorted_numbers(&batch),
        [0, 1, 2, 3, 4],
        "no marker among them"
    );
    session.on_batch_result(SourceBatchResult::Ack).await;
    // A batch of markers alone: no message, but its positions are saved,
    // so a restart does not read them again.
    append_marker(&fake, 5, 9);
    let mut markers_only = session.poll().await.unwrap();
    assert!(markers_only.messages.is_empty());
    let state = markers_only
        .state
        .take()
        .expect("positions past the marker");
    session.on_batch_result(SourceBatchResult::Ack).await;
    session.close().await;
    fill(&fake, 5..6);
    let mut resumed = open(&fake, "", Some(state)).await;
    assert_eq!(sorted_numbers(&resumed.poll().await.unwrap()), [5]);
}

#[tokio::test]
async fn an_unacknowledged_batch_is_read_again_after_a_restart() {
    let fake = FakePravega::with_stream(1);
    fill(&fake, 0..4);
    let mut session = open(&fake, r#","batch_size":2"#, None).await;
    let first = session.poll().await.unwrap();
    session.on_batch_result(SourceBatchResult::Ack).await;
    let second = session.poll().await.unwrap();
    assert_eq!(sorted_numbers(&second), [2, 3]);
    // Crash before the Ack: the runtime holds the first batch's state.
    let mut resumed = open(&fake, "", first.state).await;
    assert_eq!(sorted_numbers(&resumed.poll().await.unwrap()), [2, 3]);
}

#[tokio::test]
async fn starts_at_tail_or_at_a_stream_cut() {
    let fake = FakePravega::with_stream(2);
    fill(&fake, 0..4);
    let mut tail = open(&fake, r#","start":"tail""#, None).await;
    assert!(tail.poll().await.unwrap().messages.is_empty());
    fill(&fake, 4..6);
    assert_eq!(sorted_numbers(&tail.poll().await.unwrap()), [4, 5]);
    tail.close().await;

    let single = FakePravega::with_stream(1);
    fill(&single, 0..3);
    // "event 0" is 7 bytes: the second event starts at 8 + 7.
    let mut cut = open(
        &single,
        r#","start":{"stream_cut":{"0":15}},"reader_group":"from-cut""#,
        None,
    )
    .await;
    assert_eq!(sorted_numbers(&cut.poll().await.unwrap()), [1, 2]);
    assert_eq!(single.open_groups(), ["from-cut"]);
}

#[tokio::test]
async fn a_client_failure_fails_the_poll_and_loses_nothing() {
    let fake = FakePravega::with_stream(1);
    fill(&fake, 0..3);
    let mut session = open(&fake, "", None).await;
    fake.inject(Faults {
        panicked_reads: 1,
        failed_reads: 1,
        ..Faults::default()
    });
    let error = session.poll().await.unwrap_err();
    assert!(error.to_string().contains("panicked"), "{error}");
    let error = session.poll().await.unwrap_err();
    assert!(error.to_string().contains("refused"), "{error}");
    assert_eq!(sorted_numbers(&session.poll().await.unwrap()), [0, 1, 2]);
}

#[tokio::test]
async fn creates_a_missing_stream_before_reading() {
    let fake = FakePravega::new();
    let mut session = open(&fake, r#","create":{"segments":3}"#, None).await;
    assert_eq!(fake.segments().len(), 3);
    fill(&fake, 0..3);
    assert_eq!(sorted_numbers(&session.poll().await.unwrap()), [0, 1, 2]);
}

#[tokio::test]
async fn state_of_another_stream_is_ignored() {
    let fake = FakePravega::with_stream(1);
    fill(&fake, 0..2);
    let other = ConnectorState::serialize(
        &crate::cursor::SavedState {
            stream: "shop/returns".into(),
            positions: [(0, 1000)].into(),
        },
        "test",
        1,
    );
    let mut session = open(&fake, "", other).await;
    assert_eq!(sorted_numbers(&session.poll().await.unwrap()), [0, 1]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mock_mode_reader_group_from_a_stream_cut_and_a_bounded_close() {
    let client = RealClient::mock("shop", "orders").unwrap();
    client
        .ensure_stream(ScalingPolicy::Fixed { segments: 2 })
        .await
        .unwrap();
    let head = client.resolve(&StartAt::Head).await.unwrap();
    assert_eq!(head.len(), 2, "{head:?}");
    assert!(head.values().all(|offset| *offset == 0), "{head:?}");
    let mut reader = client.reader("mock-group", &head).await.unwrap();
    // The mock cannot take a reader offline: its connection task panics
    // and the call never answers. `close` must still return, with an error.
    let started = std::time::Instant::now();
    let error = reader.close().await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(10), "{error}");
    assert!(
        reader.close().await.is_ok(),
        "a closed reader is not closed twice"
    );
}

/// Polls (at most `rounds` times, until a poll comes back empty) and
/// acknowledges each batch; the numbers read, sorted, and the last state
/// handed over.
async fn drain(session: &mut Session, rounds: usize, state: &mut Option<Vec<u8>>) -> Vec<u32> {
    let mut numbers = Vec::new();
    for _ in 0..rounds {
        let batch = session.poll().await.unwrap();
        if let Some(saved) = &batch.state {
            *state = Some(saved.0.clone());
        }
        session.on_batch_result(SourceBatchResult::Ack).await;
        if batch.messages.is_empty() {
            break;
        }
        numbers.extend(sorted_numbers(&batch));
    }
    numbers.sort_unstable();
    numbers
}

fn saved_segments(state: &Option<Vec<u8>>) -> Vec<i64> {
    let saved: crate::cursor::SavedState = held(state)
        .and_then(|s| s.deserialize("test", 1))
        .expect("a saved state");
    saved.positions.into_keys().collect()
}

/// What the runtime would hand back at the next open.
fn held(state: &Option<Vec<u8>>) -> Option<ConnectorState> {
    state.clone().map(ConnectorState)
}

// The fake: no Pravega server runs here, and pravega-client's mock mode
// neither scales streams nor reads back what was written.
#[tokio::test]
async fn after_a_split_nack_and_restart_read_each_event_once_and_drop_the_sealed_segment() {
    let fake = FakePravega::with_stream(1);
    fill(&fake, 0..6);
    let mut state = None;
    let mut session = open(&fake, r#","batch_size":4"#, None).await;
    assert_eq!(
        drain(&mut session, 10, &mut state).await,
        Vec::from_iter(0..6)
    );

    let successors = fake.scale(&[0], 2);
    fill(&fake, 6..20);
    assert_eq!(
        drain(&mut session, 20, &mut state).await,
        Vec::from_iter(6..20)
    );

    // A Nacked batch comes again, and only it.
    fill(&fake, 20..23);
    let refused = session.poll().await.unwrap();
    assert_eq!(sorted_numbers(&refused), [20, 21, 22]);
    session.on_batch_result(SourceBatchResult::Nack).await;
    assert_eq!(
        drain(&mut session, 10, &mut state).await,
        [20, 21, 22],
        "no successor read again from its start"
    );
    assert_eq!(
        saved_segments(&state),
        successors,
        "the sealed segment left the positions"
    );

    // A restart from the saved state reads only what is new.
    session.close().await;
    fill(&fake, 23..26);
    let mut resumed = open(&fake, "", held(&state)).await;
    assert_eq!(drain(&mut resumed, 10, &mut state).await, [23, 24, 25]);
}

// The fake, as above: scaling needs a server.
#[tokio::test]
async fn a_successor_without_events_yet_is_kept_so_nothing_is_lost() {
    let fake = FakePravega::with_stream(1);
    let mut session = open(&fake, "", None).await;
    let mut state = None;
    let successors = fake.scale(&[0], 2);
    // One routing key: every event goes to one of the two successors.
    for n in 0..3 {
        fake.append(Some("one-key"), format!("event {n}").as_bytes());
    }
    assert_eq!(drain(&mut session, 10, &mut state).await, [0, 1, 2]);
    assert_eq!(saved_segments(&state), successors, "both successors");
    session.close().await;
    for n in 3..30 {
        fake.append(Some(&format!("key-{n}")), format!("event {n}").as_bytes());
    }
    let mut resumed = open(&fake, "", held(&state)).await;
    assert_eq!(
        drain(&mut resumed, 10, &mut state).await,
        Vec::from_iter(3..30)
    );
    assert!(
        fake.segments()[&successors[0]].len() > 1 && fake.segments()[&successors[1]].len() > 1,
        "both successors had events"
    );
}

// The fake, as above: scaling needs a server.
#[tokio::test]
async fn repeated_splits_and_merges_keep_the_state_to_the_open_segments() {
    let fake = FakePravega::with_stream(2);
    let mut session = open(&fake, r#","batch_size":7"#, None).await;
    let mut state = None;
    let mut next = 0;
    let mut read = Vec::new();
    for round in 0..6 {
        let open_segments = fake.open_segments();
        if round % 2 == 0 {
            // Split the first open segment in two.
            fake.scale(&open_segments[..1], 2);
        } else {
            // Merge the last two into one.
            fake.scale(&open_segments[open_segments.len() - 2..], 1);
        }
        // Many routing keys, so that every open segment gets events.
        for n in next..next + 30 {
            fake.append(Some(&format!("key-{n}")), format!("event {n}").as_bytes());
        }
        next += 30;
        read.extend(drain(&mut session, 20, &mut state).await);
        // A Nack and a restart each round.
        fill(&fake, next..next + 2);
        next += 2;
        assert!(!session.poll().await.unwrap().messages.is_empty());
        session.on_batch_result(SourceBatchResult::Nack).await;
        session.close().await;
        session = open(&fake, r#","batch_size":7"#, held(&state)).await;
        let saved = saved_segments(&state);
        assert!(
            saved.iter().all(|n| fake.open_segments().contains(n)),
            "round {round}: {saved:?} holds only open segments {:?}",
            fake.open_segments()
        );
    }
    read.extend(drain(&mut session, 20, &mut state).await);
    read.sort_unstable();
    assert_eq!(read, Vec::from_iter(0..next), "each event once");
}

// The fake: pravega-client's mock mode reads back filler bytes, not the
// events written, and no server runs here.
#[tokio::test]
async fn events_the_runtime_would_refuse_are_left_out_counted_and_not_read_again() {
    use iggy_connector_common::admission::Admission;
    let fake = FakePravega::with_stream(1);
    fake.append(None, br#"{"n":0}"#);
    fake.append(None, b"not json");
    fake.append(None, b"");
    fake.append(None, br#"{"n":3}"#);
    let mut session = open(&fake, r#","schema":"json""#, None).await;
    let admission = Admission::new("Pravega source 1", session.invalid_messages());
    // What SessionSource::poll does with every batch.
    let mut batch = session.poll().await.unwrap();
    let outcome = admission.admit(&mut batch, |m| session.describe(m));
    assert_eq!(payloads(&batch), [r#"{"n":0}"#, r#"{"n":3}"#]);
    assert_eq!((outcome.skipped, admission.skipped()), (2, 2));
    assert!(batch.state.is_some(), "the state covers the skipped events");
    session.on_batch_result(SourceBatchResult::Ack).await;
    assert!(session.poll().await.unwrap().messages.is_empty());

    let describe = session.describe(&crate::mapping::message(
        "shop/orders",
        ReadEvent {
            segment: 0,
            offset: 15,
            next_offset: 23,
            payload: Vec::new(),
        },
    ));
    assert_eq!(describe, "segment 0 offset 15");

    // `wrap` keeps the non-JSON event as JSON; an empty one cannot be mended.
    let mut wrapping = open(
        &fake,
        r#","schema":"json","invalid_messages":"wrap","reader_group":"wrapping""#,
        None,
    )
    .await;
    let admission = Admission::new("Pravega source 1", wrapping.invalid_messages());
    let mut batch = wrapping.poll().await.unwrap();
    let outcome = admission.admit(&mut batch, |m| wrapping.describe(m));
    assert_eq!((outcome.skipped, outcome.wrapped), (1, 1));
    assert_eq!(batch.messages.len(), 3);
    assert!(
        payloads(&batch)[1].contains("not json"),
        "{:?}",
        payloads(&batch)
    );
}

/// The fake with readers that stop at an empty event and then say they
/// are stalled, as the real client's readers do at an event of zero bytes
/// (recognising one is shown against a real server, tests/pravega_server.rs).
struct StallingClient(FakePravega);

struct StallingReader(Box<dyn EventReader>, bool);

#[async_trait::async_trait]
impl EventReader for StallingReader {
    async fn read(&mut self, max: usize, wait: Duration) -> Result<Vec<ReadEvent>, ClientError> {
        let mut events = self.0.read(max, wait).await?;
        if let Some(empty) = events.iter().position(|e| e.payload.is_empty()) {
            events.truncate(empty + 1);
            self.1 = true;
        }
        Ok(events)
    }

    fn stalled(&self) -> bool {
        self.1
    }

    async fn close(&mut self) -> Result<(), ClientError> {
        self.0.close().await
    }
}

#[async_trait::async_trait]
impl PravegaClient for StallingClient {
    async fn ensure_stream(&self, scaling: ScalingPolicy) -> Result<(), ClientError> {
        self.0.ensure_stream(scaling).await
    }
    async fn stream_exists(&self) -> Result<bool, ClientError> {
        self.0.stream_exists().await
    }
    async fn event_writer(&self) -> Result<Box<dyn EventWriter>, ClientError> {
        self.0.event_writer().await
    }
    async fn transactional_writer(
        &self,
        writer_id: u128,
    ) -> Result<Box<dyn TransactionalWriter>, ClientError> {
        self.0.transactional_writer(writer_id).await
    }
    async fn resolve(&self, start: &StartAt) -> Result<StreamCut, ClientError> {
        self.0.resolve(start).await
    }
    async fn successors(&self, segment: i64) -> Result<Successors, ClientError> {
        self.0.successors(segment).await
    }
    async fn reader(
        &self,
        group: &str,
        cut: &StreamCut,
    ) -> Result<Box<dyn EventReader>, ClientError> {
        Ok(Box::new(StallingReader(
            self.0.reader(group, cut).await?,
            false,
        )))
    }
}

#[tokio::test]
async fn a_stalled_reader_gives_way_to_one_past_the_event_it_stopped_at() {
    let fake = FakePravega::with_stream(1);
    for payload in ["a", "", "b"] {
        fake.append(None, payload.as_bytes());
    }
    let client = Arc::new(StallingClient(fake.clone()));
    let mut session = Session::start(1, config(""), None, client).await.unwrap();
    assert_eq!(payloads(&session.poll().await.unwrap()), ["a", ""]);
    assert!(
        fake.open_groups().is_empty(),
        "the stalled reader was released"
    );
    session.on_batch_result(SourceBatchResult::Ack).await;
    assert_eq!(payloads(&session.poll().await.unwrap()), ["b"]);
    assert_eq!(fake.open_groups(), ["iggy-source-orders"], "a new reader");
}
