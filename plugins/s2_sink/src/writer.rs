//! The S2 side of the sink: learns what each target stream already holds,
//! appends only what is new with `match_seq_num` (and the fencing token),
//! and after an append whose outcome is unknown reads the stream again
//! instead of guessing. Nothing here can append a record twice.

use crate::batches;
use crate::config::{CreateStream, ReadBack, Retention};
use crate::progress::Progress;
use iggy_connector_shared::s2::{S2Connection, stream_name};
use s2_sdk::error::{AppendConditionFailed, AppendError, ErrorCode, ReadError, RequestError};
use s2_sdk::types::{
    AppendInput, AppendRecord, AppendRecordBatch, CommandRecord, CreateStreamInput, FencingToken,
    MeteredBytes, ReadFrom, ReadInput, ReadLimits, ReadStart, ReadStop, RetentionPolicy,
    SequencedRecord, StreamConfig,
};
use s2_sdk::{S2Basin, S2Stream};
use std::collections::{HashMap, HashSet};
use tokio::time::Instant;

/// Records read back per step when looking for a partition's last write.
const SCAN_CHUNK: u64 = 1000;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    pub appended: u64,
    /// Already in the stream (a redelivered batch or an append that had
    /// landed before its acknowledgement was lost).
    pub skipped: u64,
    /// Appends retried after re-reading the stream.
    pub resyncs: u64,
    /// Read-backs that hit `read_back` before finding the partition's last record.
    pub read_backs_cut: u64,
}

struct Target {
    stream: S2Stream,
    progress: Progress,
    /// Sent with every append when `fence = true`.
    fencing_token: Option<FencingToken>,
}

pub struct Writer {
    basin: S2Basin,
    connection: S2Connection,
    fencing_token: Option<FencingToken>,
    create: Option<StreamConfig>,
    read_back: ReadBack,
    targets: HashMap<String, Target>,
    /// Streams fenced by this instance: never fenced again, so that a writer
    /// that took a stream over is not overruled by a retry here.
    fenced: HashSet<String>,
}

impl Writer {
    pub fn new(
        basin: S2Basin,
        connection: S2Connection,
        fencing_token: Option<FencingToken>,
        create: Option<&CreateStream>,
        read_back: ReadBack,
    ) -> Self {
        let create = create.map(|c| match c.retention {
            None => StreamConfig::new(),
            Some(Retention::Infinite) => {
                StreamConfig::new().with_retention_policy(RetentionPolicy::Infinite)
            }
            Some(Retention::Age(age)) => {
                StreamConfig::new().with_retention_policy(RetentionPolicy::Age(age.as_secs()))
            }
        });
        Self {
            basin,
            connection,
            fencing_token,
            create,
            read_back,
            targets: HashMap::new(),
            fenced: HashSet::new(),
        }
    }

    /// Learns a stream's state ahead of the first batch (fixed streams, on open).
    pub async fn prepare(&mut self, name: &str) -> Result<(), String> {
        if !self.targets.contains_key(name) {
            let target = self.learn(name).await?;
            self.targets.insert(name.to_string(), target);
        }
        Ok(())
    }

    /// Appends the records of one Iggy partition (`source`), each with its
    /// offset, in order, skipping those the stream already holds.
    pub async fn write(
        &mut self,
        name: &str,
        source: &str,
        records: &[(u64, AppendRecord)],
    ) -> Result<Outcome, String> {
        self.prepare(name).await?;
        let attempts = self.connection.max_retries.saturating_add(1);
        let delay = self.connection.retry_delay;
        let Some(target) = self.targets.get_mut(name) else {
            return Err(format!("stream `{name}` was not prepared"));
        };
        let result = append_new(target, source, records, attempts, delay, self.read_back).await;
        match &result {
            Err(WriteError::Fenced(_)) | Ok(_) => {}
            // Whatever the stream holds now is learned again on the next batch.
            Err(WriteError::Failed(_)) => {
                self.targets.remove(name);
            }
        }
        result.map_err(|e| match e {
            WriteError::Fenced(m) | WriteError::Failed(m) => self.connection.describe(&m),
        })
    }

    async fn learn(&mut self, name: &str) -> Result<Target, String> {
        let describe = |e: &dyn std::fmt::Display| self.connection.describe(e);
        let stream_name = stream_name(name).map_err(|e| describe(&e))?;
        if let Some(config) = &self.create {
            let input = CreateStreamInput::new(stream_name.clone()).with_config(config.clone());
            match self.basin.create_stream(input).await {
                Ok(_) => tracing::info!("S2 sink created stream `{name}`"),
                Err(e) if has_code(&e, ErrorCode::ResourceAlreadyExists) => {}
                Err(e) => return Err(describe(&format!("cannot create stream `{name}`: {e}"))),
            }
        }
        let stream = self.basin.stream(stream_name);
        let tail = match (&self.fencing_token, self.fenced.contains(name)) {
            (Some(token), false) => {
                // No token on the fence itself: it takes the stream over from
                // an earlier instance of this sink (a restart).
                let fence = AppendRecord::from(CommandRecord::fence(token.clone()));
                let batch = AppendRecordBatch::try_from_iter([fence]).map_err(|e| describe(&e))?;
                let ack = stream
                    .append(AppendInput::new(batch))
                    .await
                    .map_err(|e| describe(&format!("cannot fence stream `{name}`: {e}")))?;
                self.fenced.insert(name.to_string());
                ack.end.seq_num
            }
            _ => {
                stream
                    .check_tail()
                    .await
                    .map_err(|e| describe(&missing_stream_hint(name, &e)))?
                    .seq_num
            }
        };
        Ok(Target {
            stream,
            progress: Progress::new(tail),
            fencing_token: self.fencing_token.clone(),
        })
    }
}

enum WriteError {
    /// Another writer fenced the stream: retrying cannot help.
    Fenced(String),
    Failed(String),
}

async fn append_new(
    target: &mut Target,
    source: &str,
    records: &[(u64, AppendRecord)],
    attempts: u32,
    delay: std::time::Duration,
    read_back: ReadBack,
) -> Result<Outcome, WriteError> {
    let mut outcome = Outcome::default();
    let mut attempt = 0;
    'attempts: loop {
        attempt += 1;
        if target.progress.needs_scan(source) && !scan_back(target, source, read_back).await? {
            outcome.read_backs_cut += 1;
        }
        let done = target.progress.written(source);
        let (offsets, pending): (Vec<u64>, Vec<AppendRecord>) = records
            .iter()
            .filter(|(offset, _)| done.is_none_or(|d| *offset > d))
            .cloned()
            .unzip();
        if attempt == 1 {
            outcome.skipped = (records.len() - pending.len()) as u64;
        }
        for range in batches::split(&pending) {
            let batch = AppendRecordBatch::try_from_iter(pending[range.clone()].iter().cloned())
                .map_err(|e| WriteError::Failed(e.to_string()))?;
            let mut input = AppendInput::new(batch).with_match_seq_num(target.progress.tail);
            if let Some(token) = &target.fencing_token {
                input = input.with_fencing_token(token.clone());
            }
            match target.stream.append(input).await {
                Ok(ack) => {
                    target.progress.tail = ack.end.seq_num;
                    if let Some(last) = offsets.get(range.end - 1) {
                        target.progress.note(source.to_string(), *last);
                    }
                    outcome.appended += range.len() as u64;
                }
                Err(AppendError::ConditionFailed(AppendConditionFailed::FencingTokenMismatch(
                    _,
                ))) => {
                    return Err(WriteError::Fenced(
                        "another writer fenced the stream: this sink no longer appends to it"
                            .into(),
                    ));
                }
                Err(error) => {
                    if attempt >= attempts {
                        return Err(WriteError::Failed(format!(
                            "append failed after {attempt} attempts: {error}"
                        )));
                    }
                    tracing::warn!(
                        "S2 sink: append at seq_num {} failed ({error}); reading the stream again",
                        target.progress.tail
                    );
                    tokio::time::sleep(delay).await;
                    resync(target).await.map_err(WriteError::Failed)?;
                    outcome.resyncs += 1;
                    continue 'attempts;
                }
            }
        }
        return Ok(outcome);
    }
}

/// Reads back older records until `source`'s last write is found, the
/// stream's start is reached, or `bound` is; false when the bound cut it
/// short (then `source` is taken as never written to this stream).
async fn scan_back(target: &mut Target, source: &str, bound: ReadBack) -> Result<bool, WriteError> {
    let deadline = Instant::now() + bound.timeout;
    let (mut records_read, mut bytes_read) = (0u64, 0u64);
    while target.progress.needs_scan(source) {
        let left = bound.records.saturating_sub(records_read);
        if left == 0 || bytes_read >= bound.bytes {
            return Ok(cut_short(target, source, records_read, bytes_read));
        }
        let until = target.progress.unscanned_below();
        let from = until.saturating_sub(SCAN_CHUNK.min(left));
        let read = tokio::time::timeout_at(deadline, read_range(&target.stream, from, until));
        let Ok(records) = read.await else {
            return Ok(cut_short(target, source, records_read, bytes_read));
        };
        let records = records.map_err(WriteError::Failed)?;
        records_read += records.len() as u64;
        bytes_read += records
            .iter()
            .map(|r| r.metered_bytes() as u64)
            .sum::<u64>();
        target.progress.observe(&records);
        // Records starting later than asked: everything before them was trimmed.
        let trimmed = records.first().is_none_or(|r| r.seq_num > from);
        target
            .progress
            .scanned_down_to(if trimmed { 0 } else { from });
    }
    Ok(true)
}

fn cut_short(target: &mut Target, source: &str, records: u64, bytes: u64) -> bool {
    tracing::warn!(
        "S2 sink: read back {records} records ({bytes} metered bytes) of the stream down to seq_num {} without finding the last record from `{source}` (the `read_back` bound); taking it as never written there, so records of it older than that could be appended again",
        target.progress.unscanned_below()
    );
    target.progress.give_up_scan(source);
    false
}

/// Learns the real tail and what was appended since the last known one.
async fn resync(target: &mut Target) -> Result<(), String> {
    let tail = target
        .stream
        .check_tail()
        .await
        .map_err(|e| format!("cannot read the tail: {e}"))?
        .seq_num;
    let known = target.progress.tail;
    if tail < known {
        // The stream was deleted and made again: learn it from scratch.
        target.progress = Progress::new(tail);
        return Ok(());
    }
    let records = read_range(&target.stream, known, tail).await?;
    target.progress.observe(&records);
    target.progress.tail = tail;
    Ok(())
}

/// Records with `from <= seq_num < until` (fewer if trimmed).
async fn read_range(
    stream: &S2Stream,
    from: u64,
    until: u64,
) -> Result<Vec<SequencedRecord>, String> {
    let mut records = Vec::new();
    let mut position = from;
    while position < until {
        let count = usize::try_from(until - position).unwrap_or(usize::MAX);
        let input = ReadInput::new()
            .with_start(ReadStart::new().with_from(ReadFrom::SeqNum(position)))
            .with_stop(ReadStop::new().with_limits(ReadLimits::new().with_count(count)));
        let batch = match stream.read(input).await {
            Ok(batch) => batch,
            Err(ReadError::ReadUnwritten(_)) => break,
            Err(e) => return Err(format!("cannot read back records from {position}: {e}")),
        };
        let Some(last) = batch.records.last().map(|r| r.seq_num) else {
            break;
        };
        position = last + 1;
        records.extend(batch.records.into_iter().filter(|r| r.seq_num < until));
    }
    Ok(records)
}

fn has_code(error: &RequestError, code: ErrorCode) -> bool {
    error
        .server_error()
        .is_some_and(|e| e.known_code() == Some(code))
}

fn missing_stream_hint(name: &str, error: &ReadError) -> String {
    match error.request_error() {
        Some(e) if has_code(e, ErrorCode::StreamNotFound) => {
            format!("stream `{name}` does not exist (create it, or set `create_stream`)")
        }
        _ => format!("cannot read the tail of stream `{name}`: {error}"),
    }
}
