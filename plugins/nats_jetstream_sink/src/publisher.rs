//! Publishes a batch with a bounded window of unacknowledged messages and
//! retries only the messages whose publish failed. Each keeps its
//! `Nats-Msg-Id`, so a retry of a message the server did store is dropped
//! by the stream's duplicate window instead of stored twice.

use async_nats::Subject;
use async_nats::jetstream::context::{PublishAckFuture, PublishErrorKind};
use async_nats::jetstream::{self, message::PublishMessage};
use bytes::Bytes;
use iggy_connector_sdk::ConsumedMessage;
use iggy_connector_shared::RetryPolicy;
use std::collections::VecDeque;
use std::time::Duration;
use tokio::time::Instant;

#[derive(Debug, Default, Clone, Copy)]
pub struct PublishReport {
    pub stored: u64,
    pub duplicates: u64,
    pub retried: u64,
}

/// A message to publish. Its headers are built when sent (and built again
/// for a retry); its payload is shared by every attempt, never copied.
pub struct Item<'a> {
    pub subject: Subject,
    pub message: &'a ConsumedMessage,
    pub payload: Bytes,
}

struct Failure {
    index: usize,
    transient: bool,
    reason: String,
}

fn failure(index: usize, kind: PublishErrorKind, reason: String) -> Failure {
    // Refusals that no retry changes; everything else (timeouts, lost
    // connections, no responders while JetStream restarts) may succeed later.
    let permanent = matches!(
        kind,
        PublishErrorKind::MaxPayloadExceeded
            | PublishErrorKind::WrongLastMessageId
            | PublishErrorKind::WrongLastSequence
    );
    Failure {
        index,
        transient: !permanent,
        reason,
    }
}

pub struct Publisher {
    js: jetstream::Context,
    window: usize,
    retry: RetryPolicy,
    /// Bounds every publish and acknowledgement wait: seen after a server
    /// restart, a publish can otherwise wait forever inside the client.
    deadline: Duration,
}

impl Publisher {
    pub fn new(
        js: jetstream::Context,
        window: usize,
        retry: RetryPolicy,
        deadline: Duration,
    ) -> Self {
        Self {
            js,
            window,
            retry,
            deadline,
        }
    }

    /// Waits for an acknowledgement until `deadline` after its publish: acks
    /// lost with a connection then cost one deadline per round, not one each.
    async fn await_ack(
        &self,
        ack: PublishAckFuture,
        sent_at: Instant,
    ) -> Result<jetstream::publish::PublishAck, (PublishErrorKind, String)> {
        match tokio::time::timeout_at(sent_at + self.deadline, ack).await {
            Ok(Ok(ack)) => Ok(ack),
            Ok(Err(error)) => Err((error.kind(), error.to_string())),
            Err(_) => Err((
                PublishErrorKind::TimedOut,
                format!("no acknowledgement within {:?}", self.deadline),
            )),
        }
    }

    /// Returns once every message is stored (or known a duplicate), or says
    /// how many were not.
    pub async fn publish_all<F>(
        &self,
        items: &[Item<'_>],
        build: F,
    ) -> Result<PublishReport, String>
    where
        F: Fn(&Item<'_>) -> PublishMessage,
    {
        let mut report = PublishReport::default();
        let mut pending: Vec<usize> = (0..items.len()).collect();
        let mut attempt = 1u32;
        loop {
            let failures = self
                .publish_round(items, &pending, &build, &mut report)
                .await;
            let Some(first) = failures.first() else {
                return Ok(report);
            };
            let offset = |failure: &Failure| items[failure.index].message.offset;
            if let Some(permanent) = failures.iter().find(|f| !f.transient) {
                return Err(format!(
                    "message at offset {} cannot be stored: {} ({} of the batch not stored)",
                    offset(permanent),
                    permanent.reason,
                    failures.len()
                ));
            }
            if attempt >= self.retry.max_attempts {
                return Err(format!(
                    "{} message(s) not stored after {attempt} attempts (first at offset {}: {})",
                    failures.len(),
                    offset(first),
                    first.reason
                ));
            }
            let delay = self.retry.delay_for(attempt);
            tracing::warn!(
                "{} publish(es) failed (first at offset {}: {}); retrying in {delay:?}",
                failures.len(),
                offset(first),
                first.reason
            );
            tokio::time::sleep(delay).await;
            attempt += 1;
            report.retried += failures.len() as u64;
            pending = failures.iter().map(|f| f.index).collect();
        }
    }

    async fn publish_round<F>(
        &self,
        items: &[Item<'_>],
        indices: &[usize],
        build: &F,
        report: &mut PublishReport,
    ) -> Vec<Failure>
    where
        F: Fn(&Item<'_>) -> PublishMessage,
    {
        let mut failures = Vec::new();
        let mut in_flight: VecDeque<(usize, PublishAckFuture, Instant)> =
            VecDeque::with_capacity(self.window);
        for &index in indices {
            if in_flight.len() >= self.window
                && let Some((done, ack, sent_at)) = in_flight.pop_front()
            {
                settle(
                    done,
                    self.await_ack(ack, sent_at).await,
                    report,
                    &mut failures,
                );
            }
            let item = &items[index];
            let publish = build(item);
            // Not wrapped in a timer of ours: with the client's in-flight limit
            // not blocking (see lib.rs), its send is bounded by its own timeout.
            let sent_at = Instant::now();
            match self.js.send_publish(item.subject.clone(), publish).await {
                Ok(ack) => in_flight.push_back((index, ack, sent_at)),
                Err(error) => failures.push(failure(index, error.kind(), error.to_string())),
            }
        }
        for (index, ack, sent_at) in in_flight {
            settle(
                index,
                self.await_ack(ack, sent_at).await,
                report,
                &mut failures,
            );
        }
        failures
    }
}

fn settle(
    index: usize,
    result: Result<jetstream::publish::PublishAck, (PublishErrorKind, String)>,
    report: &mut PublishReport,
    failures: &mut Vec<Failure>,
) {
    match result {
        Ok(ack) if ack.duplicate => report.duplicates += 1,
        Ok(_) => report.stored += 1,
        Err((kind, reason)) => failures.push(failure(index, kind, reason)),
    }
}
