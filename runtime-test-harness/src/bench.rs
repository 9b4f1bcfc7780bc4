//! `bench`: throughput of a sink or source through the harness, split by stage.
//!
//! Sink stages: store read, encode (postcard of the batch), call (the whole
//! `consume` across the ABI), and inside the call the SDK's decode (measured
//! by running the same decode on the same bytes here) and the plugin (the
//! rest of the call), then the offset commit.
//! Source stages: plugin (its poll and the SDK's encode: the time between
//! batches not spent in the harness, which includes the callback's decode
//! and copy of the postcard batch), then the harness's worker: converting
//! each payload as the runtime does (decode under the batch's schema, the
//! JSON stream's encoder, Iggy's limits), store
//! append (to a store in a temporary directory), state save (fdatasync'd
//! file) and the batch result.
//!
//! `DurableTarget` is that store and state file without a plugin in front,
//! for raw baselines that keep what they read the way the runtime must.

use crate::connector_file::ConnectorFile;
use crate::faults::Faults;
use crate::library;
use crate::pipeline::{open_sink, open_source};
use crate::sink_runner::{call_consume, encode_batch};
use crate::source_runner::{self, SourceWorker};
use crate::state_file::StateFile;
use crate::stats::ConnectorStats;
use crate::topic_io::produce_generated;
use iggy_connector_sdk::{MessagesMetadata, RawMessages, Schema, TopicMetadata};
pub use iggy_harness_store::NewMessage;
use iggy_harness_store::StreamStore;
use serde::Serialize;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tempfile::TempDir;

#[derive(Debug, Clone, Serialize)]
pub struct Stage {
    pub name: &'static str,
    pub ns_per_message: f64,
}

#[derive(Debug, Serialize)]
pub struct BenchReport {
    pub kind: &'static str,
    pub library: String,
    pub messages: u64,
    pub payload_size: usize,
    pub batch: usize,
    pub seconds: f64,
    pub messages_per_sec: f64,
    pub mib_per_sec: f64,
    pub ns_per_message: f64,
    pub stages: Vec<Stage>,
}

#[derive(Clone)]
pub struct BenchOptions {
    pub messages: u64,
    pub batch: usize,
    pub payload_size: usize,
    pub connector: Option<std::path::PathBuf>,
}

/// The plugin config (the connector file's, else `default`) and the payload
/// schema (the connector's first stream's, else JSON).
fn connector_settings(
    options: &BenchOptions,
    default: serde_json::Value,
) -> Result<(String, Schema), String> {
    match &options.connector {
        Some(path) => {
            let file = ConnectorFile::read(path)?;
            let stream = match file.kind {
                crate::connector_file::ConnectorKind::Source => file.producer_stream()?,
                crate::connector_file::ConnectorKind::Sink => &file.streams[0],
            };
            Ok((file.plugin_config_json()?, stream.schema))
        }
        None => Ok((default.to_string(), Schema::Json)),
    }
}

fn report(
    kind: &'static str,
    path: &Path,
    options: &BenchOptions,
    messages: u64,
    elapsed: Duration,
    stages: Vec<(&'static str, Duration)>,
) -> BenchReport {
    let per = |d: Duration| d.as_nanos() as f64 / messages.max(1) as f64;
    let seconds = elapsed.as_secs_f64().max(1e-9);
    BenchReport {
        kind,
        library: path.display().to_string(),
        messages,
        payload_size: options.payload_size,
        batch: options.batch,
        seconds,
        messages_per_sec: messages as f64 / seconds,
        mib_per_sec: messages as f64 * options.payload_size as f64 / seconds / (1024.0 * 1024.0),
        ns_per_message: per(elapsed),
        stages: stages
            .into_iter()
            .map(|(name, d)| Stage {
                name,
                ns_per_message: per(d),
            })
            .collect(),
    }
}

pub fn bench_sink(path: &Path, options: &BenchOptions) -> Result<BenchReport, String> {
    let api = library::load(path)?.sink_api()?;
    let (config, schema) = connector_settings(options, serde_json::Value::Null)?;
    let id = open_sink(&api, &config)?;
    let store = StreamStore::in_memory();
    let (stream, topic) = ("bench", "orders");
    store
        .ensure_topic(stream, topic, 1)
        .map_err(|e| e.to_string())?;
    produce_generated(
        &store,
        stream,
        topic,
        options.messages,
        options.payload_size,
    )?;
    let metadata = TopicMetadata {
        stream: stream.into(),
        topic: topic.into(),
    };
    let [mut read, mut encode, mut call, mut decode, mut commit] = [Duration::ZERO; 5];
    let mut offset = 0u64;
    let started = Instant::now();
    let mut decode_side = Duration::ZERO;
    loop {
        let t0 = Instant::now();
        let messages = store
            .read(stream, topic, 1, offset, options.batch)
            .map_err(|e| e.to_string())?;
        let Some(last) = messages.last().map(|m| m.offset) else {
            break;
        };
        let t1 = Instant::now();
        let batch = encode_batch(&metadata, 1, options.messages - 1, schema, messages)?;
        let t2 = Instant::now();
        let code = call_consume(&api, id, &batch);
        let t3 = Instant::now();
        if code != 0 {
            return Err(format!("consume returned {code}"));
        }
        store
            .commit_offset("bench", stream, topic, 1, last)
            .map_err(|e| e.to_string())?;
        let t4 = Instant::now();
        // The SDK's share of the call: the same decode, on the same bytes, here.
        let meta: MessagesMetadata =
            postcard::from_bytes(&batch.meta).map_err(|e| e.to_string())?;
        let raw: RawMessages = postcard::from_bytes(&batch.messages).map_err(|e| e.to_string())?;
        let decoded = iggy_connector_sdk::sink::decode_messages(&meta, raw);
        drop(decoded);
        let t5 = Instant::now();
        read += t1 - t0;
        encode += t2 - t1;
        call += t3 - t2;
        commit += t4 - t3;
        decode += t5 - t4;
        decode_side += t5 - t4;
        offset = last + 1;
    }
    let elapsed = started.elapsed() - decode_side;
    // SAFETY: plain call with an id.
    unsafe { (api.close)(id) };
    let plugin = call.saturating_sub(decode);
    Ok(report(
        "sink",
        path,
        options,
        offset,
        elapsed,
        vec![
            ("store read", read),
            ("encode", encode),
            ("call (decode + plugin)", call),
            ("  decode (SDK)", decode.min(call)),
            ("  plugin", plugin),
            ("commit", commit),
        ],
    ))
}

/// Where a source's batches go in a benchmark: one partition of a store in a
/// temporary directory and a state file beside it.
pub struct DurableTarget {
    store: StreamStore,
    state: StateFile,
    _dirs: [TempDir; 2],
}

impl DurableTarget {
    const STREAM: &str = "bench";
    const TOPIC: &str = "orders";

    pub fn new() -> Result<Self, String> {
        // On disk, as `run --data-dir` and an Iggy server keep messages: appends
        // land in the page cache. Held in memory instead, every batch would fault
        // in and zero fresh pages, which costs more than the write itself.
        let store_dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let store = StreamStore::open(store_dir.path()).map_err(|e| e.to_string())?;
        store
            .ensure_topic(Self::STREAM, Self::TOPIC, 1)
            .map_err(|e| e.to_string())?;
        let state_dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        Ok(Self {
            store,
            state: StateFile::new(state_dir.path(), "bench"),
            _dirs: [store_dir, state_dir],
        })
    }

    /// What the runtime does with a source's batch once decoded: append it,
    /// then save the source's state (fdatasync'd) before it may Ack.
    pub fn keep(&self, messages: Vec<NewMessage<'_>>, state: &[u8]) -> Result<(), String> {
        self.store
            .append_balanced(Self::STREAM, Self::TOPIC, messages)
            .map_err(|e| e.to_string())?;
        self.state.save(state)
    }
}

pub fn bench_source(path: &Path, options: &BenchOptions) -> Result<BenchReport, String> {
    let api = library::load(path)?.source_api()?;
    let default = serde_json::json!({ "total": options.messages, "batch_size": options.batch, "payload_size": options.payload_size });
    let (config, schema) = connector_settings(options, default)?;
    let id = open_source(&api, &config, None)?;
    let target = DurableTarget::new()?;
    let stats = Arc::new(ConnectorStats::new("bench", "source"));
    let worker = SourceWorker {
        id,
        api: api.clone(),
        store: target.store.clone(),
        stream: DurableTarget::STREAM.into(),
        topic: DurableTarget::TOPIC.into(),
        schema,
        state: target.state.clone(),
        faults: Faults::default(),
        validate_payloads: true,
        stats: Arc::clone(&stats),
        stopping: Arc::new(std::sync::atomic::AtomicBool::new(false)),
    };
    let receiver = source_runner::register(id, &stats);
    let started = Instant::now();
    if source_runner::handle(&api, id) != 0 {
        return Err("handle refused".into());
    }
    let mut harness = Duration::ZERO;
    let [mut decode, mut stored, mut state, mut answer] = [Duration::ZERO; 4];
    let mut batches = 0u64;
    let deadline = started + Duration::from_secs(300);
    while stats.messages_out.load(Ordering::Relaxed) < options.messages && Instant::now() < deadline
    {
        let Ok(delivered) = receiver.recv_timeout(Duration::from_secs(10)) else {
            return Err("the source stopped producing".into());
        };
        let t0 = Instant::now();
        batches += 1;
        let times = worker.take(delivered, batches);
        harness += t0.elapsed();
        decode += times.decode;
        stored += times.store;
        state += times.state;
        answer += times.answer;
    }
    let elapsed = started.elapsed();
    // SAFETY: plain call with an id.
    unsafe { (api.close)(id) };
    source_runner::unregister(id);
    let produced = stats.messages_out.load(Ordering::Relaxed);
    Ok(report(
        "source",
        path,
        options,
        produced,
        elapsed,
        vec![
            (
                "plugin (poll + SDK encode)",
                elapsed.saturating_sub(harness),
            ),
            ("harness worker", harness),
            ("  convert (decode, encode, checks)", decode),
            ("  store append", stored),
            ("  state save (fdatasync)", state),
            ("  batch result (plugin applies Ack)", answer),
        ],
    ))
}

pub fn print(report: &BenchReport) {
    println!(
        "{} bench: {} messages of {} B in batches of {} through {}",
        report.kind, report.messages, report.payload_size, report.batch, report.library
    );
    for stage in &report.stages {
        println!("  {:<48} {:>10.1} ns/msg", stage.name, stage.ns_per_message);
    }
    println!(
        "  total: {:.0} msg/s, {:.1} ns/msg, {:.1} MiB/s ({:.2} s)",
        report.messages_per_sec, report.ns_per_message, report.mib_per_sec, report.seconds
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durable_target_appends_in_order_and_replaces_the_state() {
        let target = DurableTarget::new().unwrap();
        let batch = |first: u128, payloads: &[&'static [u8]]| {
            payloads
                .iter()
                .zip(first..)
                .map(|(payload, id)| NewMessage {
                    id,
                    origin_timestamp: 7,
                    payload: (*payload).into(),
                    ..NewMessage::default()
                })
                .collect()
        };
        target.keep(batch(1, &[b"a", b"b"]), b"2").unwrap();
        target.keep(batch(3, &[b"c"]), b"3").unwrap();
        let stored = target
            .store
            .read(DurableTarget::STREAM, DurableTarget::TOPIC, 1, 0, 10)
            .unwrap();
        let seen: Vec<(u64, u128, &[u8])> = stored
            .iter()
            .map(|m| (m.offset, m.id, m.payload.as_slice()))
            .collect();
        assert_eq!(
            seen,
            [(0, 1, &b"a"[..]), (1, 2, &b"b"[..]), (2, 3, &b"c"[..])]
        );
        assert!(stored.iter().all(|m| m.origin_timestamp == 7));
        assert_eq!(target.state.load().unwrap().as_deref(), Some(&b"3"[..]));
    }
}
