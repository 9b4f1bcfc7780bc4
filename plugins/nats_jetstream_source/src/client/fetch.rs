//! One fetch: a pull request for up to `max_messages` that returns what is
//! there at once, or waits up to `max_wait` for the first message.

use crate::client::acks::Unacked;
use async_nats::Subject;
use async_nats::jetstream::{self, consumer::PullConsumer};
use futures_util::StreamExt;
use std::sync::Arc;
use std::time::Duration;

/// Where a delivery sits in the stream and among its consumer's deliveries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub stream_sequence: u64,
    /// The consumer's delivery counter: one more for every delivery,
    /// redeliveries included, so a jump means deliveries went missing.
    pub consumer_sequence: u64,
    pub published_micros: u64,
}

impl Position {
    pub fn unacked(&self, reply: Subject) -> Unacked {
        Unacked {
            stream_sequence: self.stream_sequence,
            reply,
        }
    }
}

/// A message as delivered by a durable consumer, with its JetStream metadata.
#[derive(Debug)]
pub struct Delivery {
    pub position: Position,
    /// Where acks for this delivery go.
    pub reply: Subject,
    pub message: async_nats::Message,
}

impl Delivery {
    fn parse(message: jetstream::Message) -> Result<Self, String> {
        let info = message
            .info()
            .map_err(|error| format!("a delivery without JetStream metadata: {error}"))?;
        let position = Position {
            stream_sequence: info.stream_sequence,
            consumer_sequence: info.consumer_sequence,
            published_micros: u64::try_from(info.published.unix_timestamp_nanos() / 1000)
                .unwrap_or(0),
        };
        let mut message = message.message;
        let reply = message
            .reply
            .take()
            .ok_or("a delivery without a reply subject")?;
        Ok(Self {
            position,
            reply,
            message,
        })
    }
}

/// What one fetch brought; `error` says why it ended early, if it did
/// (what was delivered before the error is kept).
#[derive(Debug, Default)]
pub struct Fetched<T = Delivery> {
    pub deliveries: Vec<T>,
    pub error: Option<String>,
}

/// What one fetch may ask for.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_messages: usize,
    /// Payload bytes (as the server counts them); 0 is unbounded.
    pub max_bytes: usize,
    pub max_wait: Duration,
}

/// The server's answer when the next message does not fit in what is left of
/// a fetch's `max_bytes` (nats-server, consumer.go, processWaiting): the
/// fetch simply ends there.
const OVER_MAX_BYTES: &str = "Message Size Exceeds MaxBytes";

/// Each delivery goes through `prepare` as it arrives, while the rest are
/// still on their way.
pub async fn fetch<T>(
    consumer: Arc<PullConsumer>,
    limits: Limits,
    prepare: impl Fn(Delivery) -> T,
) -> Fetched<T> {
    let mut fetched = Fetched {
        deliveries: Vec::with_capacity(limits.max_messages.min(1024)),
        error: None,
    };
    let stopped_at_bytes = fetch_into(&consumer, limits, &prepare, &mut fetched).await;
    if stopped_at_bytes && fetched.deliveries.is_empty() && fetched.error.is_none() {
        // The next message alone is larger than `max_bytes`: no bounded fetch
        // would ever bring it, so it comes on its own (the server's
        // max_payload bounds it).
        let single = Limits {
            max_messages: 1,
            max_bytes: 0,
            ..limits
        };
        fetch_into(&consumer, single, &prepare, &mut fetched).await;
    }
    fetched
}

/// Runs one pull request; true when it ended at the byte bound.
async fn fetch_into<T>(
    consumer: &PullConsumer,
    limits: Limits,
    prepare: &impl Fn(Delivery) -> T,
    fetched: &mut Fetched<T>,
) -> bool {
    let mut request = consumer
        .fetch()
        .max_messages(limits.max_messages)
        .expires(limits.max_wait);
    if limits.max_bytes > 0 {
        request = request.max_bytes(limits.max_bytes);
    }
    let mut batch = match request.messages().await {
        Ok(batch) => batch,
        Err(error) => {
            fetched.error = Some(format!("fetch request failed: {error}"));
            return false;
        }
    };
    let mut stopped_at_bytes = false;
    // Read to the end even after a bad delivery: a delivered message left
    // unread would only come back after `ack_wait`, out of order.
    while let Some(item) = batch.next().await {
        match item {
            Err(error) if error.to_string().contains(OVER_MAX_BYTES) => stopped_at_bytes = true,
            item => match item
                .map_err(|error| error.to_string())
                .and_then(Delivery::parse)
            {
                Ok(delivery) => fetched.deliveries.push(prepare(delivery)),
                Err(error) => fetched.error = Some(error),
            },
        }
    }
    stopped_at_bytes
}
