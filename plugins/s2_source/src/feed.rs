//! One stream's S2 read session, run by a task so that records arrive while
//! the runtime stores the previous batch. What the task has read waits in a
//! queue of at most `buffer_bytes` metered bytes (the task stops reading
//! when it is full); polls take records from it without waiting. The task
//! also makes each record into its message, while the runtime stores the
//! previous batch: done by the poll, that work held up every batch.

use crate::cursor::Position;
use crate::mapping::StreamHeaders;
use futures_core::Stream;
use iggy_connector_sdk::ProducedMessage;
use s2_sdk::S2Stream;
use s2_sdk::types::{MeteredBytes, ReadInput, ReadSessionConfig, ReadStart, SequencedRecord};
use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use tokio::sync::mpsc::error::TryRecvError;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;

/// A record as read, made into its message.
#[derive(Debug)]
pub struct Read {
    pub seq_num: u64,
    /// Its metered bytes, which the queue and a batch's limit count.
    pub size: usize,
    /// The message and how many record headers it left out; `None` for a
    /// command record, which is not passed on.
    pub message: Option<(ProducedMessage, usize)>,
}

/// The record with its message, as a poll takes it.
fn prepare(headers: &StreamHeaders, record: SequencedRecord) -> Read {
    Read {
        seq_num: record.seq_num,
        size: record.metered_bytes(),
        message: (!record.is_command_record()).then(|| headers.message(record)),
    }
}

/// A batch the session delivered, holding its share of the queue's bytes
/// until the last of its records is taken; or why the session stopped.
type Delivery = Result<(Vec<Read>, OwnedSemaphorePermit), String>;

pub struct Feed {
    /// Where the records taken so far end: the session reads on from here.
    next: Position,
    /// The batch being taken from, and its share of the queue.
    current: VecDeque<Read>,
    _space: Option<OwnedSemaphorePermit>,
    deliveries: UnboundedReceiver<Delivery>,
    /// Why the session stopped, when records came before the news.
    stopped: Option<String>,
    task: JoinHandle<()>,
}

impl Feed {
    /// Opens a session on stream `name` from `from` on the current tokio
    /// runtime; `arrived` is notified whenever it delivers.
    pub fn start(
        stream: &S2Stream,
        name: &str,
        from: Position,
        buffer_bytes: usize,
        arrived: Arc<Notify>,
    ) -> Self {
        let (sender, deliveries) = unbounded_channel();
        let headers = StreamHeaders::new(name);
        let task = tokio::spawn(run(
            stream.clone(),
            headers,
            from,
            buffer_bytes,
            sender,
            arrived,
        ));
        Self {
            next: from,
            current: VecDeque::new(),
            _space: None,
            deliveries,
            stopped: None,
            task,
        }
    }

    pub fn next(&self) -> Position {
        self.next
    }

    /// The records already read, up to `count` records and `bytes` metered
    /// bytes (a record larger than `bytes` only when `at_least_one`); an
    /// error once the session stopped.
    pub fn take(
        &mut self,
        mut count: usize,
        mut bytes: usize,
        mut at_least_one: bool,
    ) -> Result<Vec<Read>, String> {
        let mut taken = Vec::new();
        // Each turn takes a record, takes in a delivered batch, or stops.
        while count > 0 {
            let Some(record) = self.current.front() else {
                match self.deliveries.try_recv() {
                    Ok(Ok((records, space))) => {
                        self.current = records.into();
                        self._space = Some(space);
                        continue;
                    }
                    Ok(Err(e)) if taken.is_empty() => return Err(e),
                    Ok(Err(e)) => self.stopped = Some(e),
                    Err(TryRecvError::Disconnected) if taken.is_empty() => {
                        let stopped = self.stopped.take();
                        return Err(stopped.unwrap_or_else(|| "the read session ended".into()));
                    }
                    Err(_) => {}
                }
                break;
            };
            let size = record.size;
            if size > bytes && !at_least_one {
                break;
            }
            at_least_one = false;
            (count, bytes) = (count - 1, bytes.saturating_sub(size));
            taken.extend(self.current.pop_front());
            if self.current.is_empty() {
                // Frees the queue for the task at once, not at the next poll.
                self._space = None;
            }
        }
        if let (Some(first), Some(last)) = (taken.first(), taken.last()) {
            self.next = self.next.after(first.seq_num, last.seq_num).0;
        }
        Ok(taken)
    }
}

impl Drop for Feed {
    fn drop(&mut self) {
        // An idle session would otherwise wait for records that nobody takes.
        self.task.abort();
    }
}

/// Ends when the session fails or ends (reported), or when the feed is
/// dropped (aborted, or its queue gone).
async fn run(
    stream: S2Stream,
    headers: StreamHeaders,
    from: Position,
    buffer_bytes: usize,
    sender: UnboundedSender<Delivery>,
    arrived: Arc<Notify>,
) {
    let space = Arc::new(Semaphore::new(buffer_bytes));
    // Clamped: a position at (or, after a stream was made again, past) the
    // tail waits for new records instead of failing. No stop: the session
    // follows the tail, S2 heartbeats keep it open while idle.
    let input = ReadInput::new().with_start(
        ReadStart::new()
            .with_from(from.read_from())
            .with_clamp_to_tail(true),
    );
    let mut session = match stream.read_session(input, ReadSessionConfig::new()).await {
        Ok(session) => session,
        Err(e) => {
            let _ = sender.send(Err(e.to_string()));
            arrived.notify_one();
            return;
        }
    };
    loop {
        let delivery = match std::future::poll_fn(|cx| Pin::new(&mut session).poll_next(cx)).await {
            Some(Ok(batch)) => {
                let reads: Vec<Read> = batch
                    .records
                    .into_iter()
                    .map(|record| prepare(&headers, record))
                    .collect();
                let size: usize = reads.iter().map(|read| read.size).sum();
                // A batch larger than the whole queue waits for it to be empty.
                let wanted = u32::try_from(size.min(buffer_bytes)).unwrap_or(u32::MAX);
                let Ok(permit) = space.clone().acquire_many_owned(wanted).await else {
                    return;
                };
                Ok((reads, permit))
            }
            Some(Err(e)) => Err(e.to_string()),
            None => Err("the read session ended".into()),
        };
        let stopped = delivery.is_err();
        let delivered = sender.send(delivery).is_ok();
        arrived.notify_one();
        if stopped || !delivered {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(seq_num: u64, body: usize) -> Read {
        let record = SequencedRecord::from_parts(seq_num, 0, Vec::new(), vec![b'x'; body]);
        prepare(&StreamHeaders::new("s"), record)
    }

    /// A feed without a session, fed by hand.
    fn feed(from: Position) -> (Feed, UnboundedSender<Delivery>, Arc<Semaphore>) {
        let (sender, deliveries) = unbounded_channel();
        let feed = Feed {
            next: from,
            current: VecDeque::new(),
            _space: None,
            deliveries,
            stopped: None,
            task: tokio::spawn(async {}),
        };
        (feed, sender, Arc::new(Semaphore::new(1000)))
    }

    #[tokio::test]
    async fn batches_are_split_to_the_limits_and_free_their_space_when_taken() {
        let (mut feed, sender, space) = feed(Position::Next(0));
        for range in [0..3, 3..5] {
            let records = range.map(|n| record(n, 92)).collect();
            let permit = space.clone().acquire_many_owned(200).await.unwrap();
            sender.send(Ok((records, permit))).unwrap();
        }
        let seq_nums =
            |records: Vec<Read>| -> Vec<u64> { records.iter().map(|r| r.seq_num).collect() };
        assert_eq!(seq_nums(feed.take(2, 1000, true).unwrap()), [0, 1]);
        assert_eq!(feed.next(), Position::Next(2));
        assert_eq!(space.available_permits(), 600);
        // Two records of 100 metered bytes fit in 250.
        assert_eq!(seq_nums(feed.take(10, 250, false).unwrap()), [2, 3]);
        assert_eq!(
            space.available_permits(),
            800,
            "the first batch's space is free"
        );
        assert!(feed.take(10, 50, false).unwrap().is_empty());
        assert_eq!(seq_nums(feed.take(10, 50, true).unwrap()), [4]);
        assert!(feed.take(10, 1000, true).unwrap().is_empty(), "nothing yet");
        let permit = space.clone().acquire_many_owned(100).await.unwrap();
        sender.send(Ok((vec![record(5, 92)], permit))).unwrap();
        sender.send(Err("gone".into())).unwrap();
        drop(sender);
        assert_eq!(seq_nums(feed.take(10, 1000, true).unwrap()), [5]);
        assert_eq!(feed.take(10, 1000, true).unwrap_err(), "gone");
        assert_eq!(space.available_permits(), 1000);
    }
}
