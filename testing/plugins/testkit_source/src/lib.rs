//! A source for testing the harness and the SDK: it produces a numbered
//! sequence (`{"seq":n,...}` padded to a chosen size), stages its cursor in
//! `poll` and commits it on Ack, and can fail or panic on chosen polls,
//! declare another schema, set its own timestamps, or make one message of
//! the sequence one the runtime refuses.

use async_trait::async_trait;
use iggy_common::{HeaderKey, HeaderValue};
use iggy_connector_sdk::source::SourceBatchResult;
use iggy_connector_sdk::{
    ConnectorState, Error, ProducedMessage, ProducedMessages, Schema, Source, source_connector,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

source_connector!(TestkitSource);

const NAME: &str = "testkit_source";

#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TestkitSourceConfig {
    /// How many messages to produce in all (0 = no end).
    total: u64,
    batch_size: u64,
    /// Size of each JSON payload in bytes (at least the `{"seq":n}` part).
    payload_size: usize,
    /// Fails every Nth poll (0 = never).
    fail_every: u64,
    /// Panics in every Nth poll (0 = never).
    panic_every: u64,
    /// Adds a header `seq` (uint64) to each message.
    headers: bool,
    /// The schema each batch declares; payloads are the same JSON bytes.
    schema: Schema,
    /// Sets each message's `timestamp` and `origin_timestamp` to 1 µs after
    /// the epoch, which the runtime does not keep.
    timestamps: bool,
    /// The sequence number whose message is made bad (every time it is
    /// produced), as `bad_kind` says.
    bad_seq: Option<u64>,
    bad_kind: BadKind,
}

/// Ways a message can be one the runtime refuses.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BadKind {
    /// An empty payload.
    #[default]
    Empty,
    /// A payload that is not JSON.
    NotJson,
    /// User headers over Iggy's 100,000 bytes.
    BigHeaders,
    /// A payload one byte over Iggy's 64,000,000.
    Oversize,
}

impl Default for TestkitSourceConfig {
    fn default() -> Self {
        Self {
            total: 1000,
            batch_size: 100,
            payload_size: 0,
            fail_every: 0,
            panic_every: 0,
            headers: false,
            schema: Schema::Json,
            timestamps: false,
            bad_seq: None,
            bad_kind: BadKind::Empty,
        }
    }
}

/// Saved by the runtime; MessagePack like upstream plugins' state.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Cursor {
    next: u64,
}

#[derive(Debug)]
pub struct TestkitSource {
    id: u32,
    config: TestkitSourceConfig,
    /// Next sequence number not yet acknowledged by the runtime.
    committed: AtomicU64,
    /// End of the batch in flight, applied on Ack.
    staged: Mutex<Option<u64>>,
    polls: AtomicU64,
}

impl TestkitSource {
    pub fn new(id: u32, config: TestkitSourceConfig, state: Option<ConnectorState>) -> Self {
        let cursor: Cursor = state
            .and_then(|s| s.deserialize(NAME, id))
            .unwrap_or_default();
        Self {
            id,
            config,
            committed: AtomicU64::new(cursor.next),
            staged: Mutex::new(None),
            polls: AtomicU64::new(0),
        }
    }

    fn message(&self, seq: u64) -> ProducedMessage {
        // Sized once: grown from the short prefix, each payload was copied
        // again, which cost more than the harness's whole store append.
        let mut payload = Vec::with_capacity(self.config.payload_size.max(32));
        payload.extend_from_slice(br#"{"seq":"#);
        payload.extend_from_slice(itoa::Buffer::new().format(seq).as_bytes());
        if self.config.payload_size > payload.len() + 10 {
            let pad = self.config.payload_size - payload.len() - 10;
            payload.extend_from_slice(b",\"pad\":\"");
            payload.resize(payload.len() + pad, b'x');
            payload.push(b'"');
        }
        payload.push(b'}');
        let mut headers = self.config.headers.then(|| {
            BTreeMap::from([(
                HeaderKey::try_from("seq").expect("short key"),
                HeaderValue::from(seq),
            )])
        });
        if self.config.bad_seq == Some(seq) {
            match self.config.bad_kind {
                BadKind::Empty => payload.clear(),
                BadKind::NotJson => payload = b"{not json".to_vec(),
                BadKind::Oversize => payload.resize(64_000_001, b' '),
                BadKind::BigHeaders => headers = Some(big_headers()),
            }
        }
        let timestamp = self.config.timestamps.then_some(1);
        ProducedMessage {
            id: Some(u128::from(seq) + 1),
            checksum: None,
            timestamp,
            origin_timestamp: timestamp,
            headers,
            payload,
        }
    }
}

/// 400 entries of about 270 bytes each in Iggy's wire form: over 100,000.
fn big_headers() -> BTreeMap<HeaderKey, HeaderValue> {
    let value = "v".repeat(250);
    (0..400)
        .map(|n| {
            (
                HeaderKey::try_from(format!("header-{n:03}").as_str()).expect("short key"),
                HeaderValue::try_from(value.as_str()).expect("250 bytes fit"),
            )
        })
        .collect()
}

#[async_trait]
impl Source for TestkitSource {
    async fn open(&mut self) -> Result<(), Error> {
        if self.config.batch_size == 0 {
            return Err(Error::InvalidConfigValue(
                "batch_size must be at least 1".into(),
            ));
        }
        tracing::info!(
            "testkit source {} starts at sequence {}",
            self.id,
            self.committed.load(Ordering::Relaxed)
        );
        Ok(())
    }

    async fn poll(&self) -> Result<ProducedMessages, Error> {
        let poll = self.polls.fetch_add(1, Ordering::Relaxed) + 1;
        let every = |n: u64| n != 0 && poll.is_multiple_of(n);
        if every(self.config.panic_every) {
            panic!(
                "testkit source {} was told to panic on poll {poll}",
                self.id
            );
        }
        if every(self.config.fail_every) {
            return Err(Error::Connection(format!("told to fail poll {poll}")));
        }
        let start = self.committed.load(Ordering::Acquire);
        let end = match self.config.total {
            0 => start + self.config.batch_size,
            total => total.min(start + self.config.batch_size),
        };
        if start >= end {
            tokio::time::sleep(Duration::from_millis(20)).await;
            return Ok(ProducedMessages {
                schema: self.config.schema,
                messages: vec![],
                state: None,
            });
        }
        *self.staged.lock().unwrap_or_else(|p| p.into_inner()) = Some(end);
        Ok(ProducedMessages {
            schema: self.config.schema,
            messages: (start..end).map(|seq| self.message(seq)).collect(),
            state: ConnectorState::serialize(&Cursor { next: end }, NAME, self.id),
        })
    }

    async fn on_batch_result(&self, result: SourceBatchResult) -> Result<(), Error> {
        let staged = self.staged.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let (SourceBatchResult::Ack, Some(end)) = (result, staged) {
            self.committed.store(end, Ordering::Release);
        }
        Ok(())
    }

    async fn close(&mut self) -> Result<(), Error> {
        tracing::info!(
            "testkit source {} closing at sequence {}",
            self.id,
            self.committed.load(Ordering::Relaxed)
        );
        Ok(())
    }
}
