//! Publishes a batch with a bounded window of unacknowledged messages and
//! retries only the messages whose publish failed. Each keeps its
//! `Nats-Msg-Id`, so a retry of a message the server did store is dropped
//! by the stream's duplicate window instead of stored twice.
//!
//! Transient failures (no responders, no acknowledgement in time, a lost
//! connection) are retried under the `retry` policy, by default until its
//! `max_elapsed` deadline: the runtime commits a sink's offsets before
//! `consume` (runtime/src/sink.rs, consume_messages) and ignores its result,
//! so a batch given up on is lost. Every client call is bounded by the
//! request timeout, since async-nats waits for a reconnect without limit. A
//! message the server can never take (over its max_payload, or refused for
//! good) is left out and counted, and the rest of the batch is published.
//!
//! Each round of a batch publishes through core NATS with reply subjects
//! under one inbox it subscribes to, and reads the stream's answers from
//! that subscription. The JetStream publish of async-nats does the same per
//! message (a fresh inbox, a oneshot, a generic response type); done once
//! per round it costs the client markedly less CPU per message.

use crate::ack::{self, FullSubject, Outcome};
use async_nats::client::PublishErrorKind;
use async_nats::connection::State;
use async_nats::{Client, HeaderMap, Subject, Subscriber};
use bytes::Bytes;
use futures_util::StreamExt;
use iggy_connector_common::RetryPolicy;
use iggy_connector_sdk::ConsumedMessage;
use std::collections::VecDeque;
use std::time::Duration;
use tokio::time::Instant;

#[derive(Debug, Default, Clone, Copy)]
pub struct PublishReport {
    pub stored: u64,
    pub duplicates: u64,
    pub retried: u64,
    /// Left out: the server can never store them.
    pub skipped: u64,
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

pub struct Publisher {
    client: Client,
    window: usize,
    retry: RetryPolicy,
    /// Bounds every acknowledgement wait, counted from its publish: after a
    /// server restart an answer may never come.
    deadline: Duration,
    full_subject: FullSubject,
}

/// One round's messages on their way: which are answered, and the order they
/// were sent in (the oldest unanswered one is the next to time out).
struct Round<'r> {
    /// Indices into the batch's items, by slot (the reply subject's last token).
    indices: &'r [usize],
    inbox_prefix: String,
    answered: Vec<bool>,
    sent: VecDeque<(usize, Instant)>,
    waiting: usize,
    failures: Vec<Failure>,
}

impl Round<'_> {
    fn settle(&mut self, slot: usize, outcome: Outcome, report: &mut PublishReport) {
        self.answered[slot] = true;
        self.waiting -= 1;
        match outcome {
            Outcome::Stored => report.stored += 1,
            Outcome::Duplicate => report.duplicates += 1,
            Outcome::Refused { permanent, reason } => self.failures.push(Failure {
                index: self.indices[slot],
                transient: !permanent,
                reason,
            }),
        }
    }

    fn slot_of(&self, reply: &Subject) -> Option<usize> {
        reply
            .as_str()
            .strip_prefix(&self.inbox_prefix)?
            .parse::<usize>()
            .ok()
            .filter(|slot| *slot < self.answered.len() && !self.answered[*slot])
    }
}

impl Publisher {
    pub fn new(
        client: Client,
        window: usize,
        retry: RetryPolicy,
        deadline: Duration,
        full_subject: FullSubject,
    ) -> Self {
        Self {
            client,
            window,
            retry,
            deadline,
            full_subject,
        }
    }

    /// Returns once every message is stored, known a duplicate or left out
    /// as unstorable, or says how many were not stored.
    pub async fn publish_all<F>(
        &self,
        items: &[Item<'_>],
        headers: F,
    ) -> Result<PublishReport, String>
    where
        F: Fn(&Item<'_>) -> HeaderMap,
    {
        let started = Instant::now();
        let mut report = PublishReport::default();
        let mut pending: Vec<usize> = (0..items.len()).collect();
        let mut attempt = 1u32;
        let offset = |failure: &Failure| items[failure.index].message.offset;
        loop {
            let failures = match self
                .publish_round(items, &pending, &headers, &mut report)
                .await
            {
                Ok(failures) => failures,
                Err(reason) => pending
                    .iter()
                    .map(|&index| Failure {
                        index,
                        transient: true,
                        reason: reason.clone(),
                    })
                    .collect(),
            };
            let (failures, unstorable): (Vec<Failure>, Vec<Failure>) =
                failures.into_iter().partition(|f| f.transient);
            for failure in &unstorable {
                report.skipped += 1;
                tracing::warn!(
                    "message at offset {} left out: the server can never store it: {}",
                    offset(failure),
                    failure.reason
                );
            }
            let Some(first) = failures.first() else {
                if attempt > 1 {
                    tracing::info!(
                        "the batch is stored after {attempt} attempts over {:?}",
                        started.elapsed()
                    );
                }
                return Ok(report);
            };
            let delay = self.retry.delay_for(attempt);
            let out_of_time = self
                .retry
                .max_elapsed
                .is_some_and(|limit| started.elapsed().saturating_add(delay) > limit);
            if attempt >= self.retry.max_attempts || out_of_time {
                return Err(format!(
                    "{} message(s) not stored after {attempt} attempts over {:?} (retry.max_attempts, retry.max_elapsed); first at offset {}: {}",
                    failures.len(),
                    started.elapsed(),
                    offset(first),
                    first.reason
                ));
            }
            if attempt == 1 {
                tracing::warn!(
                    "NATS is not storing messages ({}); retrying the {} affected until it is back{}",
                    first.reason,
                    failures.len(),
                    self.retry
                        .max_elapsed
                        .map(|limit| format!(", for up to {limit:?}"))
                        .unwrap_or_default()
                );
            }
            tracing::warn!(
                "{} publish(es) failed (first at offset {}: {}); attempt {attempt}, retrying in {delay:?}",
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

    /// Publishes `indices` of `items` once each and gathers their answers. A
    /// fresh inbox per round means a late answer to an earlier round is never
    /// taken for this one's.
    async fn publish_round<F>(
        &self,
        items: &[Item<'_>],
        indices: &[usize],
        headers: &F,
        report: &mut PublishReport,
    ) -> Result<Vec<Failure>, String>
    where
        F: Fn(&Item<'_>) -> HeaderMap,
    {
        if self.client.connection_state() != State::Connected {
            // Publishes would only queue in the client until it reconnects.
            return Err("not connected to NATS (the client is reconnecting)".into());
        }
        let inbox = self.client.new_inbox();
        let mut answers =
            tokio::time::timeout(self.deadline, self.client.subscribe(format!("{inbox}.*")))
                .await
                .map_err(|_| {
                    format!(
                        "no subscription to the acknowledgement inbox within {:?}",
                        self.deadline
                    )
                })?
                .map_err(|e| format!("cannot subscribe to the acknowledgement inbox: {e}"))?;
        let mut round = Round {
            indices,
            inbox_prefix: format!("{inbox}."),
            answered: vec![false; indices.len()],
            sent: VecDeque::with_capacity(self.window.min(indices.len())),
            waiting: 0,
            failures: Vec::new(),
        };
        for (slot, &index) in indices.iter().enumerate() {
            while round.waiting >= self.window {
                self.next_answer(&mut answers, &mut round, report).await;
            }
            let item = &items[index];
            let mut reply = String::with_capacity(round.inbox_prefix.len() + 6);
            reply.push_str(&round.inbox_prefix);
            reply.push_str(itoa::Buffer::new().format(slot));
            let sent_at = Instant::now();
            let publish = self.client.publish_with_reply_and_headers(
                item.subject.clone(),
                Subject::from(reply),
                headers(item),
                item.payload.clone(),
            );
            match tokio::time::timeout(self.deadline, publish).await {
                Ok(Ok(())) => {
                    round.sent.push_back((slot, sent_at));
                    round.waiting += 1;
                }
                Ok(Err(error)) => {
                    round.answered[slot] = true;
                    round.failures.push(Failure {
                        index,
                        transient: !matches!(error.kind(), PublishErrorKind::MaxPayloadExceeded),
                        reason: error.to_string(),
                    });
                }
                Err(_) => {
                    // The client takes no more: the rest of the round waits for the retry.
                    let reason = format!(
                        "the client did not take the publish within {:?}",
                        self.deadline
                    );
                    for &index in &indices[slot..] {
                        round.failures.push(Failure {
                            index,
                            transient: true,
                            reason: reason.clone(),
                        });
                    }
                    for answered in &mut round.answered[slot..] {
                        *answered = true;
                    }
                    break;
                }
            }
        }
        while round.waiting > 0 {
            self.next_answer(&mut answers, &mut round, report).await;
        }
        Ok(round.failures)
    }

    /// Takes one answer, or times out the oldest message still waiting.
    async fn next_answer(
        &self,
        answers: &mut Subscriber,
        round: &mut Round<'_>,
        report: &mut PublishReport,
    ) {
        while round
            .sent
            .front()
            .is_some_and(|(slot, _)| round.answered[*slot])
        {
            round.sent.pop_front();
        }
        let Some(&(oldest, sent_at)) = round.sent.front() else {
            return;
        };
        match tokio::time::timeout_at(sent_at + self.deadline, answers.next()).await {
            Ok(Some(reply)) => {
                if let Some(slot) = round.slot_of(&reply.subject) {
                    round.settle(slot, ack::outcome(&reply, self.full_subject), report);
                }
            }
            // The client is closing: nothing more will be answered.
            Ok(None) => {
                for (slot, _) in std::mem::take(&mut round.sent) {
                    if !round.answered[slot] {
                        let outcome = Outcome::Refused {
                            permanent: false,
                            reason: "the connection closed before the acknowledgement".into(),
                        };
                        round.settle(slot, outcome, report);
                    }
                }
            }
            Err(_) => {
                let outcome = Outcome::Refused {
                    permanent: false,
                    reason: format!("no acknowledgement within {:?}", self.deadline),
                };
                round.settle(oldest, outcome, report);
            }
        }
    }
}
