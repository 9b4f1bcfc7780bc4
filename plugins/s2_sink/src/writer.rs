//! The S2 side of the sink: learns what each target stream already holds,
//! appends only what is new with `match_seq_num` (and the fencing token),
//! and after an append whose outcome is unknown reads the stream again
//! instead of guessing. Nothing here can append a record twice.

use crate::batches;
use crate::config::{CreateStream, ReadBack, Retention};
use crate::progress::Progress;
use iggy_connector_common::{Classify, ErrorClass};
use iggy_connector_s2_common::{S2Connection, stream_name};
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
/// Metered bytes per read back: with `SCAN_CHUNK`, what a read-back holds in
/// memory at once, however far it goes (S2 serves at most 1 MiB per read).
pub const CHUNK_BYTES: usize = 1024 * 1024;

/// Why a write failed, and whether another attempt can succeed.
#[derive(Debug)]
pub struct WriteError {
    message: String,
    kind: Failure,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Failure {
    /// The connection, a timeout, the server's 5xx, a race with another
    /// writer: the target is learned again and the write tried again.
    Transient,
    /// Retrying would fail the same way (a missing stream, a refused request).
    Permanent,
    /// Another writer fenced the stream: retrying cannot help.
    Fenced,
}

impl WriteError {
    fn new(message: impl Into<String>, transient: bool) -> Self {
        let kind = if transient {
            Failure::Transient
        } else {
            Failure::Permanent
        };
        Self {
            message: message.into(),
            kind,
        }
    }

    fn permanent(message: impl Into<String>) -> Self {
        Self::new(message, false)
    }

    /// An attempt that did not finish in time: whatever it did is learned again.
    pub fn timed_out(limit: std::time::Duration) -> Self {
        Self::new(
            format!("the attempt did not finish within {limit:?} (attempt_timeout)"),
            true,
        )
    }

    fn read(context: &str, error: &ReadError) -> Self {
        Self::new(format!("{context}: {error}"), error.is_retryable())
    }
}

impl std::fmt::Display for WriteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl Classify for WriteError {
    fn class(&self) -> ErrorClass {
        match self.kind {
            Failure::Transient => ErrorClass::Transient { retry_after: None },
            Failure::Permanent | Failure::Fenced => ErrorClass::Permanent,
        }
    }
}

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
    pub async fn prepare(&mut self, name: &str) -> Result<(), WriteError> {
        self.learn_once(name).await.map_err(|e| self.describe(e))
    }

    async fn learn_once(&mut self, name: &str) -> Result<(), WriteError> {
        if !self.targets.contains_key(name) {
            let target = self.learn(name).await?;
            self.targets.insert(name.to_string(), target);
        }
        Ok(())
    }

    /// Forgets what is known of a stream (an attempt was cut short): the
    /// next write learns it again from the stream itself.
    pub fn forget(&mut self, name: &str) {
        self.targets.remove(name);
    }

    /// Appends the records of one Iggy partition (`source`), each with its
    /// offset, in order, skipping those the stream already holds.
    pub async fn write(
        &mut self,
        name: &str,
        source: &str,
        records: &[(u64, AppendRecord)],
    ) -> Result<Outcome, WriteError> {
        self.prepare(name).await?;
        let attempts = self.connection.max_retries.saturating_add(1);
        let delay = self.connection.retry_delay;
        let Some(target) = self.targets.get_mut(name) else {
            return Err(WriteError::permanent(format!(
                "stream `{name}` was not prepared"
            )));
        };
        let result = append_new(target, source, records, attempts, delay, self.read_back).await;
        if result.as_ref().is_err_and(|e| e.kind != Failure::Fenced) {
            // Whatever the stream holds now is learned again on the next attempt.
            self.targets.remove(name);
        }
        result.map_err(|e| self.describe(e))
    }

    fn describe(&self, error: WriteError) -> WriteError {
        WriteError {
            message: self.connection.describe(&error.message),
            kind: error.kind,
        }
    }

    async fn learn(&mut self, name: &str) -> Result<Target, WriteError> {
        let stream_name = stream_name(name).map_err(WriteError::permanent)?;
        if let Some(config) = &self.create {
            let input = CreateStreamInput::new(stream_name.clone()).with_config(config.clone());
            match self.basin.create_stream(input).await {
                Ok(_) => tracing::info!("S2 sink created stream `{name}`"),
                Err(e) if has_code(&e, ErrorCode::ResourceAlreadyExists) => {}
                Err(e) => {
                    return Err(WriteError::new(
                        format!("cannot create stream `{name}`: {e}"),
                        e.is_retryable(),
                    ));
                }
            }
        }
        let stream = self.basin.stream(stream_name);
        let tail = match (&self.fencing_token, self.fenced.contains(name)) {
            (Some(token), false) => {
                // No token on the fence itself: it takes the stream over from
                // an earlier instance of this sink (a restart).
                let fence = AppendRecord::from(CommandRecord::fence(token.clone()));
                let batch = AppendRecordBatch::try_from_iter([fence])
                    .map_err(|e| WriteError::permanent(e.to_string()))?;
                let ack = stream.append(AppendInput::new(batch)).await.map_err(|e| {
                    WriteError::new(
                        format!("cannot fence stream `{name}`: {e}"),
                        e.is_retryable(),
                    )
                })?;
                self.fenced.insert(name.to_string());
                ack.end.seq_num
            }
            _ => {
                stream
                    .check_tail()
                    .await
                    .map_err(|e| WriteError::new(missing_stream_hint(name, &e), e.is_retryable()))?
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
                .map_err(|e| WriteError::permanent(e.to_string()))?;
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
                    return Err(WriteError {
                        message:
                            "another writer fenced the stream: this sink no longer appends to it"
                                .into(),
                        kind: Failure::Fenced,
                    });
                }
                Err(error) => {
                    if attempt >= attempts {
                        // A lost race with another writer is over once the
                        // stream is learned again.
                        let transient = error.is_retryable()
                            || matches!(
                                error,
                                AppendError::ConditionFailed(
                                    AppendConditionFailed::SeqNumMismatch(_)
                                )
                            );
                        return Err(WriteError::new(
                            format!("append failed after {attempt} attempts: {error}"),
                            transient,
                        ));
                    }
                    tracing::warn!(
                        "S2 sink: append at seq_num {} failed ({error}); reading the stream again",
                        target.progress.tail
                    );
                    tokio::time::sleep(delay).await;
                    resync(target, read_back.timeout).await?;
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
        let (mut position, mut first) = (from, None);
        while position < until {
            let read =
                tokio::time::timeout_at(deadline, read_chunk(&target.stream, position, until));
            let Ok(records) = read.await else {
                return Ok(cut_short(target, source, records_read, bytes_read));
            };
            let records = records?;
            let Some(last) = records.last().map(|r| r.seq_num) else {
                break;
            };
            first = first.or(records.first().map(|r| r.seq_num));
            records_read += records.len() as u64;
            bytes_read += records
                .iter()
                .map(|r| r.metered_bytes() as u64)
                .sum::<u64>();
            target.progress.observe(&records);
            position = last + 1;
        }
        // Records starting later than asked: everything before them was trimmed.
        let trimmed = first.is_none_or(|seq_num| seq_num > from);
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

/// Learns the real tail and what was appended since the last known one,
/// one chunk at a time (each observed, then dropped), within `limit`.
async fn resync(target: &mut Target, limit: std::time::Duration) -> Result<(), WriteError> {
    let tail = target
        .stream
        .check_tail()
        .await
        .map_err(|e| WriteError::read("cannot read the tail", &e))?
        .seq_num;
    let known = target.progress.tail;
    if tail < known {
        // The stream was deleted and made again: learn it from scratch.
        target.progress = Progress::new(tail);
        return Ok(());
    }
    let deadline = Instant::now() + limit;
    let mut position = known;
    while position < tail {
        let read = tokio::time::timeout_at(deadline, read_chunk(&target.stream, position, tail));
        let records = read.await.map_err(|_| {
            WriteError::new(
                format!("reading back {known}..{tail} took over {limit:?} (read_back.timeout)"),
                true,
            )
        })??;
        let Some(last) = records.last().map(|r| r.seq_num) else {
            break;
        };
        target.progress.observe(&records);
        position = last + 1;
    }
    target.progress.tail = tail;
    Ok(())
}

/// One read of records with `from <= seq_num < until`: at most `SCAN_CHUNK`
/// records and `CHUNK_BYTES` metered bytes (fewer if trimmed or at the end;
/// none past the tail).
async fn read_chunk(
    stream: &S2Stream,
    from: u64,
    until: u64,
) -> Result<Vec<SequencedRecord>, WriteError> {
    let count = usize::try_from((until - from).min(SCAN_CHUNK)).unwrap_or(usize::MAX);
    let limits = ReadLimits::new().with_count(count).with_bytes(CHUNK_BYTES);
    let input = ReadInput::new()
        .with_start(ReadStart::new().with_from(ReadFrom::SeqNum(from)))
        .with_stop(ReadStop::new().with_limits(limits));
    match stream.read(input).await {
        Ok(batch) => Ok(batch
            .records
            .into_iter()
            .filter(|r| r.seq_num < until)
            .collect()),
        Err(ReadError::ReadUnwritten(_)) => Ok(Vec::new()),
        Err(e) => Err(WriteError::read(
            &format!("cannot read back records from {from}"),
            &e,
        )),
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mapping::POSITION_HEADER;
    use iggy_harness_test_support::s2::S2Lite;
    use s2_sdk::types::Header;
    use std::time::Duration;

    /// 300 records of 10 KB (3 MB) from partition `s/t/1`, against a real s2-lite.
    #[test]
    fn a_read_back_holds_one_bounded_chunk_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let server = S2Lite::start(dir.path(), &["iggy-tests"]);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let basin = server.basin_client(&rt, "iggy-tests");
        rt.block_on(async {
            let name = "big".parse().unwrap();
            basin
                .create_stream(CreateStreamInput::new(name))
                .await
                .unwrap();
            let stream = basin.stream("big".parse().unwrap());
            for chunk in 0..3u64 {
                let records = (chunk * 100..(chunk + 1) * 100).map(|offset| {
                    let position = Header::new(POSITION_HEADER, format!("s/t/1@{offset}"));
                    AppendRecord::new(vec![b'x'; 10_000])
                        .and_then(|r| r.with_headers([position]))
                        .unwrap()
                });
                let batch = AppendRecordBatch::try_from_iter(records).unwrap();
                stream.append(AppendInput::new(batch)).await.unwrap();
            }

            let chunk = read_chunk(&stream, 0, 300).await.unwrap();
            let bytes: usize = chunk.iter().map(MeteredBytes::metered_bytes).sum();
            assert!(
                (1..300).contains(&chunk.len()) && bytes <= CHUNK_BYTES,
                "{} records, {bytes} metered bytes in one read",
                chunk.len()
            );

            // The whole missing range is still learned, chunk by chunk.
            let mut target = Target {
                stream,
                progress: Progress::new(0),
                fencing_token: None,
            };
            resync(&mut target, Duration::from_secs(10)).await.unwrap();
            assert_eq!(target.progress.tail, 300);
            assert_eq!(target.progress.written("s/t/1"), Some(299));
        });
    }
}
