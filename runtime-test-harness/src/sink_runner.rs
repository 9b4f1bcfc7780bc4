//! Drives a sink as the runtime does: one consumer per topic reading from its
//! consumer group's offset, batches of up to `batch_length` per partition,
//! postcard-encoded into `consume`. By default offsets commit when messages
//! are polled, before `consume`, and its return code is only counted, as in
//! runtime 0.4.x and 0.5.x (runtime/src/sink.rs: `setup_sink_consumers`
//! commits with `AutoCommitWhen::PollingMessages`, `process_messages` drops
//! the code): a batch `consume` fails is lost. `after_consume` commits after
//! a successful `consume` and retries a failed batch (at-least-once), for
//! runtimes that honour the code.

use crate::connector_file::ConnectorFile;
use crate::faults::{Faults, hits};
use crate::library::SinkApi;
use crate::stats::{ConnectorStats, InFlight};
use iggy_connector_sdk::{MessagesMetadata, RawMessage, RawMessages, Schema, TopicMetadata};
use iggy_harness_store::{StoredMessage, StreamStore};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CommitMode {
    /// Commit when polled, before `consume`; its return code is counted as
    /// an error and otherwise ignored (runtime 0.4.x and 0.5.x).
    OnPoll,
    /// Commit after `consume` returns 0; retry the batch otherwise.
    AfterConsume,
}

#[derive(Debug, Clone)]
pub struct SinkOptions {
    pub commit: CommitMode,
    /// Attempts per batch before the topic's consumer gives up (after_consume only).
    pub max_attempts: u32,
    pub faults: Faults,
}

/// One encoded batch, ready for `consume`.
pub struct EncodedBatch {
    pub topic: Vec<u8>,
    pub meta: Vec<u8>,
    pub messages: Vec<u8>,
    pub count: usize,
    pub last_offset: u64,
}

pub fn encode_batch(
    topic: &TopicMetadata,
    partition_id: u32,
    current_offset: u64,
    schema: Schema,
    messages: Vec<StoredMessage>,
) -> Result<EncodedBatch, String> {
    let count = messages.len();
    let last_offset = messages.last().map_or(0, |m| m.offset);
    // Sized up front: growing a buffer of a whole batch copies it again at
    // every doubling. Per message: its bytes plus at most 70 of fixed fields.
    let capacity = 16
        + messages
            .iter()
            .map(|m| m.headers.len() + m.payload.len() + 70)
            .sum::<usize>();
    let raw = RawMessages {
        schema,
        messages: messages
            .into_iter()
            .map(|m| RawMessage {
                id: m.id,
                offset: m.offset,
                checksum: m.checksum,
                timestamp: m.timestamp,
                origin_timestamp: m.origin_timestamp,
                headers: m.headers,
                payload: m.payload,
            })
            .collect(),
    };
    let meta = MessagesMetadata {
        partition_id,
        current_offset,
        schema,
    };
    let encode = |error: postcard::Error| format!("cannot encode batch: {error}");
    Ok(EncodedBatch {
        topic: postcard::to_allocvec(topic).map_err(encode)?,
        meta: postcard::to_allocvec(&meta).map_err(encode)?,
        messages: postcard::to_extend(&raw, Vec::with_capacity(capacity)).map_err(encode)?,
        count,
        last_offset,
    })
}

pub fn call_consume(api: &SinkApi, id: u32, batch: &EncodedBatch) -> i32 {
    // SAFETY: the buffers outlive the call, as the ABI requires.
    unsafe {
        (api.consume)(
            id,
            batch.topic.as_ptr(),
            batch.topic.len(),
            batch.meta.as_ptr(),
            batch.meta.len(),
            batch.messages.as_ptr(),
            batch.messages.len(),
        )
    }
}

fn corrupt(schema: Schema, messages: &mut [StoredMessage]) {
    let bad: &[u8] = match schema {
        Schema::Json => b"{corrupt",
        Schema::Text => &[0xff, 0xfe],
        _ => return,
    };
    if let Some(first) = messages.first_mut() {
        first.payload = bad.to_vec();
    }
}

struct TopicConsumer {
    id: u32,
    api: SinkApi,
    store: StreamStore,
    group: String,
    topic: TopicMetadata,
    schema: Schema,
    batch_length: usize,
    poll_interval: Duration,
    options: SinkOptions,
    stats: Arc<ConnectorStats>,
    shutdown: Arc<AtomicBool>,
    batches_seen: u64,
}

impl TopicConsumer {
    fn run(mut self) {
        let mut next: Vec<u64> = Vec::new();
        // The runtime's consumer polls at most once per `poll_interval`,
        // busy or not: a sink never gets batches faster than that.
        let mut last_poll: Option<Instant> = None;
        while !self.shutdown.load(Ordering::Relaxed) {
            let Some(info) = self.store.topic_info(&self.topic.stream, &self.topic.topic) else {
                self.stats.fail(format!(
                    "topic {}/{} does not exist",
                    self.topic.stream, self.topic.topic
                ));
                return;
            };
            // Resume each partition from its committed offset (Iggy stores the last consumed one).
            while next.len() < info.partitions as usize {
                let partition = next.len() as u32 + 1;
                let committed = self.store.committed_offset(
                    &self.group,
                    &self.topic.stream,
                    &self.topic.topic,
                    partition,
                );
                next.push(committed.map_or(0, |offset| offset + 1));
            }
            let mut moved = false;
            for (index, next_offset) in next.iter_mut().enumerate() {
                let partition = index as u32 + 1;
                let current = info.messages_per_partition[index].saturating_sub(1);
                if info.messages_per_partition[index] > *next_offset {
                    if let Some(at) = last_poll {
                        // Messages wait for this poll: the run is not idle.
                        let _waiting = InFlight::start(&self.stats.in_flight);
                        std::thread::sleep(
                            (at + self.poll_interval).saturating_duration_since(Instant::now()),
                        );
                    }
                    last_poll = Some(Instant::now());
                }
                match self.deliver_from(partition, *next_offset, current) {
                    Ok(Some(last)) => {
                        *next_offset = last + 1;
                        moved = true;
                    }
                    Ok(None) => {}
                    Err(reason) => {
                        self.stats.fail(reason);
                        return;
                    }
                }
            }
            if !moved {
                std::thread::sleep(self.poll_interval);
            }
        }
    }

    /// Delivers one batch from `from`; the offset to continue after, if any was delivered.
    fn deliver_from(
        &mut self,
        partition: u32,
        from: u64,
        current: u64,
    ) -> Result<Option<u64>, String> {
        let (stream, topic) = (&self.topic.stream, &self.topic.topic);
        let mut messages = self
            .store
            .read(stream, topic, partition, from, self.batch_length)
            .map_err(|e| format!("reading {stream}/{topic}: {e}"))?;
        if messages.is_empty() {
            return Ok(None);
        }
        let _in_flight = InFlight::start(&self.stats.in_flight);
        self.batches_seen += 1;
        if hits(self.options.faults.corrupt_every, self.batches_seen) {
            corrupt(self.schema, &mut messages);
        }
        let batch = encode_batch(&self.topic, partition, current, self.schema, messages)?;
        let commit = |consumer: &Self| {
            consumer
                .store
                .commit_offset(&consumer.group, stream, topic, partition, batch.last_offset)
                .map_err(|e| format!("committing {stream}/{topic}: {e}"))
        };
        if self.options.commit == CommitMode::OnPoll {
            commit(self)?;
        }
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            ConnectorStats::add(&self.stats.messages_in, batch.count as u64);
            let injected =
                hits(self.options.faults.fail_sink_every, self.batches_seen) && attempt == 1;
            let code = if injected {
                1
            } else {
                call_consume(&self.api, self.id, &batch)
            };
            ConnectorStats::add(&self.stats.batches, 1);
            if code == 0 {
                ConnectorStats::add(&self.stats.messages_out, batch.count as u64);
                if hits(self.options.faults.redeliver_every, self.batches_seen) && attempt == 1 {
                    // As if the harness died between the write and the commit.
                    continue;
                }
                break;
            }
            ConnectorStats::add(&self.stats.errors, 1);
            if self.options.commit == CommitMode::OnPoll {
                // Already committed and the code ignored: the batch is lost,
                // as under the runtime (runtime/src/sink.rs, process_messages).
                return Ok(Some(batch.last_offset));
            }
            if attempt >= self.options.max_attempts {
                return Err(format!(
                    "consume of {stream}/{topic} partition {partition} offsets {from}..={} failed {attempt} times (code {code})",
                    batch.last_offset
                ));
            }
            ConnectorStats::add(&self.stats.retries, 1);
            let delay = Duration::from_millis(100)
                .saturating_mul(1 << attempt.min(6))
                .min(Duration::from_secs(5));
            let until = Instant::now() + delay;
            while Instant::now() < until {
                if self.shutdown.load(Ordering::Relaxed) {
                    return Ok(None);
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        if self.options.commit == CommitMode::AfterConsume {
            commit(self)?;
        }
        Ok(Some(batch.last_offset))
    }
}

/// Starts one consumer thread per configured topic.
pub fn start(
    file: &ConnectorFile,
    api: &SinkApi,
    id: u32,
    store: &StreamStore,
    options: &SinkOptions,
    stats: &Arc<ConnectorStats>,
    shutdown: &Arc<AtomicBool>,
) -> Result<Vec<JoinHandle<()>>, String> {
    let mut threads = Vec::new();
    for settings in &file.streams {
        let group = settings
            .consumer_group
            .clone()
            .unwrap_or_else(|| format!("iggy-connect-sink-{}", file.key));
        for topic in &settings.topics {
            let consumer = TopicConsumer {
                id,
                api: api.clone(),
                store: store.clone(),
                group: group.clone(),
                topic: TopicMetadata {
                    stream: settings.stream.clone(),
                    topic: topic.clone(),
                },
                schema: settings.schema,
                batch_length: settings.batch_length(),
                poll_interval: settings.poll_interval()?,
                options: options.clone(),
                stats: Arc::clone(stats),
                shutdown: Arc::clone(shutdown),
                batches_seen: 0,
            };
            let name = format!("sink-{}-{topic}", file.key);
            let thread = std::thread::Builder::new()
                .name(name)
                .spawn(move || consumer.run())
                .map_err(|e| format!("cannot start a consumer thread: {e}"))?;
            threads.push(thread);
        }
    }
    Ok(threads)
}
