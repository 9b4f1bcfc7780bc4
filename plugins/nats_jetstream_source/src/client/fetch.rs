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

/// Each delivery goes through `prepare` as it arrives, while the rest are
/// still on their way.
pub async fn fetch<T>(
    consumer: Arc<PullConsumer>,
    max_messages: usize,
    max_wait: Duration,
    prepare: impl Fn(Delivery) -> T,
) -> Fetched<T> {
    let mut fetched = Fetched {
        deliveries: Vec::with_capacity(max_messages),
        error: None,
    };
    let mut batch = match consumer
        .fetch()
        .max_messages(max_messages)
        .expires(max_wait)
        .messages()
        .await
    {
        Ok(batch) => batch,
        Err(error) => {
            fetched.error = Some(format!("fetch request failed: {error}"));
            return fetched;
        }
    };
    // Read to the end even after a bad delivery: a delivered message left
    // unread would only come back after `ack_wait`, out of order.
    while let Some(item) = batch.next().await {
        match item
            .map_err(|error| error.to_string())
            .and_then(Delivery::parse)
        {
            Ok(delivery) => fetched.deliveries.push(prepare(delivery)),
            Err(error) => fetched.error = Some(error),
        }
    }
    fetched
}
