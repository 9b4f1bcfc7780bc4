//! Through the exported ABI, as the runtime calls it: `close` returns within
//! its bound (10 s) whatever the connector is stuck in, the call stuck in it
//! is abandoned with a non-zero code, and a source whose batches the runtime
//! always refuses stops after the cap of redeliveries instead of looping.
//!
//! The connectors here hang on purpose (a future that never completes):
//! real servers cannot be made to hang on cue, and the SDK's handling does
//! not depend on what the connector awaits.

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError, mpsc};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use iggy_connector_sdk::source::SourceBatchResult;
use iggy_connector_sdk::{
    ConnectorState, ConsumedMessage, Error, MessagesMetadata, ProducedMessage, ProducedMessages,
    RawMessage, RawMessages, Schema, Sink, Source, TopicMetadata, sink_connector, source_connector,
};
use serde::Deserialize;

/// The most `close` may take: the SDK's wait for calls in flight plus its
/// wait for the connector's own close.
const CLOSE_BOUND: Duration = Duration::from_secs(10);

/// Which call of the connector never finishes.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Hang {
    consume: bool,
    poll: bool,
    batch_result: bool,
    close: bool,
}

static LOG: Mutex<Vec<(u8, String)>> = Mutex::new(Vec::new());

extern "C" fn capture_log(
    level: u8,
    _target: *const u8,
    _target_len: usize,
    message: *const u8,
    message_len: usize,
) {
    // SAFETY: the SDK passes a valid UTF-8 slice for the call.
    let text = unsafe { std::slice::from_raw_parts(message, message_len) };
    // A panic here would abort the test process, not fail the test.
    LOG.lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push((level, String::from_utf8_lossy(text).into_owned()));
}

fn logged(level: u8, needle: &str) -> bool {
    LOG.lock()
        .unwrap()
        .iter()
        .any(|(l, text)| *l == level && text.contains(needle))
}

/// Calls per connector id, so tests running in parallel keep apart.
static CALLS: Mutex<BTreeMap<(u32, &str), u32>> = Mutex::new(BTreeMap::new());

fn count(id: u32, call: &'static str) {
    *CALLS.lock().unwrap().entry((id, call)).or_default() += 1;
}

fn calls(id: u32, call: &'static str) -> u32 {
    CALLS.lock().unwrap().get(&(id, call)).copied().unwrap_or(0)
}

/// Waits, bounded, until `done` holds.
fn wait_until(what: &str, limit: Duration, done: impl Fn() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// One module per exported connector: each macro takes its names in the
/// module it expands in, as upstream's does.
mod sink_plugin {
    use super::*;

    #[derive(Debug)]
    pub struct HangingSink {
        id: u32,
        hang: Hang,
    }

    impl HangingSink {
        fn new(id: u32, hang: Hang) -> Self {
            Self { id, hang }
        }
    }

    #[async_trait]
    impl Sink for HangingSink {
        async fn open(&mut self) -> Result<(), Error> {
            Ok(())
        }

        async fn consume(
            &self,
            _topic: &TopicMetadata,
            _meta: MessagesMetadata,
            _messages: Vec<ConsumedMessage>,
        ) -> Result<(), Error> {
            count(self.id, "consume");
            if self.hang.consume {
                std::future::pending::<()>().await;
            }
            Ok(())
        }

        async fn close(&mut self) -> Result<(), Error> {
            count(self.id, "close");
            if self.hang.close {
                std::future::pending::<()>().await;
            }
            Ok(())
        }
    }

    sink_connector!(HangingSink);
}

use sink_plugin::{iggy_sink_close, iggy_sink_consume, iggy_sink_open};

mod source_plugin {
    use super::*;

    #[derive(Debug)]
    pub struct HangingSource {
        id: u32,
        hang: Hang,
    }

    impl HangingSource {
        fn new(id: u32, hang: Hang, _state: Option<ConnectorState>) -> Self {
            Self { id, hang }
        }
    }

    #[async_trait]
    impl Source for HangingSource {
        async fn open(&mut self) -> Result<(), Error> {
            Ok(())
        }

        async fn poll(&self) -> Result<ProducedMessages, Error> {
            count(self.id, "poll");
            if self.hang.poll {
                std::future::pending::<()>().await;
            }
            Ok(ProducedMessages {
                schema: Schema::Raw,
                messages: vec![ProducedMessage {
                    id: None,
                    checksum: None,
                    timestamp: None,
                    origin_timestamp: None,
                    headers: None,
                    payload: b"x".to_vec(),
                }],
                state: None,
            })
        }

        async fn on_batch_result(&self, result: SourceBatchResult) -> Result<(), Error> {
            count(
                self.id,
                match result {
                    SourceBatchResult::Ack => "ack",
                    SourceBatchResult::Nack => "nack",
                },
            );
            if self.hang.batch_result {
                std::future::pending::<()>().await;
            }
            Ok(())
        }

        async fn close(&mut self) -> Result<(), Error> {
            count(self.id, "close");
            if self.hang.close {
                std::future::pending::<()>().await;
            }
            Ok(())
        }
    }

    source_connector!(HangingSource);
}

use source_plugin::{
    iggy_source_batch_result, iggy_source_close, iggy_source_handle_v2, iggy_source_open,
};

fn open_sink(id: u32, config: &str) {
    // SAFETY: the config buffer is valid for the call.
    let code = unsafe { iggy_sink_open(id, config.as_ptr(), config.len(), capture_log) };
    assert_eq!(code, 0, "sink {id} opens");
}

fn open_source(id: u32, config: &str) {
    // SAFETY: the config buffer is valid for the call; no state.
    let code = unsafe {
        iggy_source_open(
            id,
            config.as_ptr(),
            config.len(),
            std::ptr::null(),
            0,
            capture_log,
        )
    };
    assert_eq!(code, 0, "source {id} opens");
}

/// Consumes a one-message batch on another thread, as the runtime's consume
/// task does; the code arrives on the returned channel.
fn consume_in_background(id: u32) -> mpsc::Receiver<i32> {
    let topic = postcard::to_allocvec(&TopicMetadata {
        stream: "s".into(),
        topic: "t".into(),
    })
    .unwrap();
    let meta = postcard::to_allocvec(&MessagesMetadata {
        partition_id: 1,
        current_offset: 0,
        schema: Schema::Raw,
    })
    .unwrap();
    let messages = postcard::to_allocvec(&RawMessages {
        schema: Schema::Raw,
        messages: vec![RawMessage {
            id: 1,
            offset: 0,
            checksum: 0,
            timestamp: 0,
            origin_timestamp: 0,
            headers: Vec::new(),
            payload: b"x".to_vec(),
        }],
    })
    .unwrap();
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        // SAFETY: the buffers live until the call returns.
        let code = unsafe {
            iggy_sink_consume(
                id,
                topic.as_ptr(),
                topic.len(),
                meta.as_ptr(),
                meta.len(),
                messages.as_ptr(),
                messages.len(),
            )
        };
        let _ = sender.send(code);
    });
    receiver
}

/// Closes through the ABI and returns the code and how long it took.
fn timed(close: impl FnOnce() -> i32) -> (i32, Duration) {
    let start = Instant::now();
    let code = close();
    (code, start.elapsed())
}

#[test]
fn sink_close_returns_while_a_consume_never_finishes() {
    open_sink(1, r#"{"consume": true}"#);
    let consumed = consume_in_background(1);
    wait_until("the consume to start", Duration::from_secs(5), || {
        calls(1, "consume") == 1
    });

    let (code, took) = timed(|| iggy_sink_close(1));
    assert_eq!(code, 0, "the sink itself closed cleanly");
    assert!(took < CLOSE_BOUND, "close took {took:?}");
    assert_eq!(calls(1, "close"), 1);
    let consume_code = consumed
        .recv_timeout(Duration::from_secs(5))
        .expect("the abandoned consume returned");
    assert_ne!(
        consume_code, 0,
        "an abandoned batch is not reported written"
    );
    assert!(logged(4, "sink connector 1 is closing"));
}

#[test]
fn sink_close_gives_up_on_a_close_that_never_finishes() {
    open_sink(2, r#"{"close": true}"#);
    let consumed = consume_in_background(2);
    assert_eq!(consumed.recv_timeout(Duration::from_secs(5)), Ok(0));

    let (code, took) = timed(|| iggy_sink_close(2));
    assert_eq!(code, 1, "a close that ran out of time is a failure");
    assert!(took < CLOSE_BOUND, "close took {took:?}");
    assert!(logged(4, "sink connector 2 did not finish closing"));
    assert_eq!(iggy_sink_close(2), -1, "closed once");
}

extern "C" fn takes_batch(_: u32, _: u64, _: *const u8, _: usize) -> i32 {
    0
}

extern "C" fn refuses_batch(_: u32, _: u64, _: *const u8, _: usize) -> i32 {
    1
}

/// Takes the batch, then Nacks it as the runtime does for a batch with a
/// message it cannot decode (from its own thread, before the loop moves on).
extern "C" fn nacks_batch(id: u32, batch_id: u64, _: *const u8, _: usize) -> i32 {
    // Builder, not thread::spawn: a callback must not panic across the ABI.
    let nack = std::thread::Builder::new().spawn(move || iggy_source_batch_result(id, batch_id, 1));
    i32::from(nack.is_err())
}

#[test]
fn source_close_returns_while_a_poll_never_finishes() {
    open_source(3, r#"{"poll": true}"#);
    assert_eq!(iggy_source_handle_v2(3, takes_batch), 0);
    wait_until("the poll to start", Duration::from_secs(5), || {
        calls(3, "poll") == 1
    });

    let (code, took) = timed(|| iggy_source_close(3));
    assert_eq!(code, 0);
    assert!(took < CLOSE_BOUND, "close took {took:?}");
    assert_eq!(calls(3, "close"), 1);
}

#[test]
fn source_close_returns_while_a_batch_result_never_finishes() {
    open_source(4, r#"{"batch_result": true}"#);
    assert_eq!(iggy_source_handle_v2(4, refuses_batch), 0);
    wait_until(
        "the Nack to reach the source",
        Duration::from_secs(5),
        || calls(4, "nack") == 1,
    );

    let (code, took) = timed(|| iggy_source_close(4));
    assert_eq!(code, 0);
    assert!(took < CLOSE_BOUND, "close took {took:?}");
    assert_eq!(calls(4, "close"), 1);
    assert!(logged(3, "source connector 4 did not stop within"));
}

#[test]
fn source_close_gives_up_on_a_close_that_never_finishes() {
    open_source(5, r#"{"close": true}"#);
    let (code, took) = timed(|| iggy_source_close(5));
    assert_eq!(code, 1);
    assert!(took < CLOSE_BOUND, "close took {took:?}");
    assert!(logged(4, "source connector 5 did not finish closing"));
}

/// The SDK's cap (10) with its backoff (100 ms doubling to 5 s) takes about
/// 21 s; the wait allows twice that.
#[test]
fn a_source_whose_batches_are_always_nacked_stops_after_the_cap() {
    open_source(6, "{}");
    assert_eq!(iggy_source_handle_v2(6, nacks_batch), 0);
    wait_until("the loop to stop", Duration::from_secs(45), || {
        logged(2, "source connector 6 stopped polling")
    });

    assert_eq!(calls(6, "poll"), 10);
    assert_eq!(calls(6, "nack"), 10);
    assert_eq!(calls(6, "ack"), 0);
    assert!(
        logged(
            4,
            "source connector 6 has failed: the runtime refused the same data 10 times in a row (batches 1 to 10"
        ),
        "{:?}",
        LOG.lock().unwrap()
    );
    assert_eq!(iggy_source_close(6), 0);
}
