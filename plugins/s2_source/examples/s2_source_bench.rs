//! Benchmark: the S2 source through the harness against raw s2-sdk reads of
//! the same stream, in one process, against one in-memory s2-lite. Two raw
//! references: bounded unary reads (count, bytes, clamp to the tail, no wait)
//! and a read session as the source opens it (clamped, no stop), read as it
//! is and with each batch stored and the state saved as the runtime does
//! (`DurableTarget`): the bound the runtime's own work sets on any source on
//! this machine. The source
//! runs twice: with its default batches, and with batches ten times larger
//! (several S2 reads each). The harness's own ceiling is measured too: its
//! no-op test source, same batches and payloads, no I/O. Runs alternate,
//! three each; medians are reported (the machine is shared), with the CPU
//! per record of this process and of s2-lite.
//!
//! cargo build --release -p iggy_connector_s2_source -p iggy_connector_testkit_source -p iggy-harness
//! cargo run --release -p iggy_connector_s2_source --example s2_source_bench [messages]

use futures_core::Stream;
use iggy_harness::bench::{
    BenchOptions, BenchReport, DurableTarget, NewMessage, bench_source, print,
};
use iggy_harness_test_support::median;
use iggy_harness_test_support::perf::{self, Kind, with_cpu};
use iggy_harness_test_support::s2::S2Lite;
use s2_sdk::S2Stream;
use s2_sdk::types::{
    AppendInput, AppendRecord, AppendRecordBatch, CreateStreamInput, ReadFrom, ReadInput,
    ReadLimits, ReadSessionConfig, ReadStart, ReadStop,
};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::time::Instant;

const BASIN: &str = "bench-basin";
const STREAM: &str = "bench-orders";
const PAYLOAD: usize = 1024;
const BATCH: u64 = 1000;
/// The source's default `buffer_bytes`.
const READ_BYTES: usize = 1024 * 1024;
const ROUNDS: usize = 3;
/// The second plugin run's batches, in reads of `BATCH`.
const LARGE: u64 = 10;

async fn fill(stream: &S2Stream, count: u64) {
    let body = vec![b'x'; PAYLOAD];
    let mut tail = 0;
    while tail < count {
        let n = BATCH.min(count - tail);
        let batch = AppendRecordBatch::try_from_iter(
            (0..n).map(|_| AppendRecord::new(body.clone()).expect("record")),
        )
        .expect("batch");
        tail = stream
            .append(AppendInput::new(batch))
            .await
            .expect("append")
            .end
            .seq_num;
    }
}

async fn raw_read(stream: &S2Stream, count: u64) -> f64 {
    let started = Instant::now();
    let mut next = 0u64;
    while next < count {
        let input = ReadInput::new()
            .with_start(
                ReadStart::new()
                    .with_from(ReadFrom::SeqNum(next))
                    .with_clamp_to_tail(true),
            )
            .with_stop(
                ReadStop::new()
                    .with_limits(
                        ReadLimits::new()
                            .with_count(BATCH as usize)
                            .with_bytes(READ_BYTES),
                    )
                    .with_wait(0),
            );
        let batch = stream.read(input).await.expect("read");
        next += batch.records.len() as u64;
    }
    count as f64 / started.elapsed().as_secs_f64()
}

/// A read session; with `target`, a hand-written reader doing the runtime's
/// work: each batch stored with its sequence numbers as ids, the next
/// sequence number saved as state.
async fn raw_session(stream: &S2Stream, count: u64, target: Option<&DurableTarget>) -> f64 {
    let started = Instant::now();
    let input = ReadInput::new().with_start(
        ReadStart::new()
            .with_from(ReadFrom::SeqNum(0))
            .with_clamp_to_tail(true),
    );
    let mut session = stream
        .read_session(input, ReadSessionConfig::new())
        .await
        .expect("read session");
    let mut next = 0u64;
    // Every batch of a session holds at least one record.
    while next < count {
        let batch = std::future::poll_fn(|cx| Pin::new(&mut session).poll_next(cx))
            .await
            .expect("the session ended")
            .expect("read");
        next += batch.records.len() as u64;
        if let Some(target) = target {
            let kept = batch
                .records
                .iter()
                .map(|record| NewMessage {
                    id: u128::from(record.seq_num),
                    origin_timestamp: record.timestamp.saturating_mul(1000),
                    payload: record.body.as_ref().into(),
                    ..NewMessage::default()
                })
                .collect();
            target
                .keep(kept, &next.to_le_bytes())
                .expect("store the batch");
        }
    }
    count as f64 / started.elapsed().as_secs_f64()
}

/// The source's settings with batches of `batch_size` records and
/// `buffer_bytes` (each gathers several of S2's reads when larger than one).
fn connector_file(
    dir: &Path,
    library: &Path,
    endpoint: &str,
    (batch_size, buffer_bytes): (u64, usize),
) -> PathBuf {
    let config = format!(
        "access_token = \"bench\"\nendpoint = \"{endpoint}\"\nbasin = \"{BASIN}\"\nstreams = [\"{STREAM}\"]\n\
         start = \"earliest\"\nbatch_size = {batch_size}\nbuffer_bytes = {buffer_bytes}\nschema = \"raw\"\n"
    );
    let file = format!("source-{batch_size}");
    perf::connector_file(dir, &file, Kind::Source, library, "raw", &config)
}

fn main() {
    let messages = perf::messages_arg(100_000);
    let dir = tempfile::tempdir().expect("temp dir");
    let server = S2Lite::start(dir.path(), &[BASIN]);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let basin = server.basin_client(&runtime, BASIN);
    runtime
        .block_on(basin.create_stream(CreateStreamInput::new(STREAM.parse().expect("name"))))
        .expect("stream");
    let stream = basin.stream(STREAM.parse().expect("name"));
    runtime.block_on(fill(&stream, messages));
    let build = iggy_harness_test_support::build_dir();
    let library = build.join("libiggy_connector_s2_source.so");
    let options = BenchOptions {
        messages,
        batch: BATCH as usize,
        payload_size: PAYLOAD,
        connector: Some(connector_file(
            dir.path(),
            &library,
            &server.endpoint(),
            (BATCH, READ_BYTES),
        )),
    };
    let large = BenchOptions {
        batch: (BATCH * LARGE) as usize,
        connector: Some(connector_file(
            dir.path(),
            &library,
            &server.endpoint(),
            (BATCH * LARGE, READ_BYTES * LARGE as usize),
        )),
        ..options.clone()
    };
    // Without a connector file the bench configures the test source itself.
    let no_op = BenchOptions {
        connector: None,
        ..options.clone()
    };
    let no_op_library = build.join("libiggy_connector_testkit_source.so");
    let (mut raw, mut session, mut stored, mut plugin, mut plugin_large, mut ceiling) = (
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
    );
    let mut reports: Vec<BenchReport> = Vec::new();
    let pid = server.pid();
    let run = |label: &str, options: &BenchOptions| {
        // No saved state is passed, so each run reads the stream from the start.
        with_cpu(label, pid, messages, || {
            bench_source(&library, options).expect("plugin bench")
        })
    };
    for _ in 0..ROUNDS {
        raw.push(runtime.block_on(raw_read(&stream, messages)));
        session.push(with_cpu("raw read session", pid, messages, || {
            runtime.block_on(raw_session(&stream, messages, None))
        }));
        let target = DurableTarget::new().expect("store for the raw reader");
        stored.push(with_cpu("raw read session, stored", pid, messages, || {
            runtime.block_on(raw_session(&stream, messages, Some(&target)))
        }));
        let report = run("plugin", &options);
        plugin.push(report.messages_per_sec);
        reports.push(report);
        plugin_large.push(run("plugin, batches ×10", &large).messages_per_sec);
        ceiling.push(
            bench_source(&no_op_library, &no_op)
                .expect("no-op source bench")
                .messages_per_sec,
        );
    }
    let (raw, session, stored, plugin, plugin_large, ceiling) = (
        median(raw),
        median(session),
        median(stored),
        median(plugin),
        median(plugin_large),
        median(ceiling),
    );
    println!(
        "S2 source: {messages} records of {PAYLOAD} B, reads of {BATCH} (≤ {READ_BYTES} B), s2-lite in memory, median of {ROUNDS}"
    );
    println!("  raw s2-sdk unary reads of {BATCH}            {raw:>9.0} msg/s");
    println!("  raw s2-sdk read session (the source's)     {session:>9.0} msg/s");
    println!("  raw read session, stored + state saved     {stored:>9.0} msg/s");
    println!("  plugin through the harness (defaults)      {plugin:>9.0} msg/s");
    println!(
        "  plugin, batch_size {:<6} (buffer ×{LARGE})    {plugin_large:>9.0} msg/s",
        BATCH * LARGE
    );
    println!("  harness ceiling (no-op test source)        {ceiling:>9.0} msg/s");
    println!(
        "  ratio plugin / raw                         {:>9.2}",
        plugin / raw
    );
    println!(
        "  ratio plugin / raw read session            {:>9.2}",
        plugin / session
    );
    println!(
        "  ratio stored read session / read session   {:>9.2}",
        stored / session
    );
    println!(
        "  ratio plugin / stored read session         {:>9.2}",
        plugin / stored
    );
    println!(
        "  ratio plugin (batches ×10) / read session  {:>9.2}",
        plugin_large / session
    );
    println!(
        "  ratio plugin / harness ceiling             {:>9.2}",
        plugin / ceiling
    );
    if let Some(report) = reports.iter().find(|r| r.messages_per_sec == plugin) {
        println!("  the plugin run at the median:");
        print(report);
    }
    perf::bound(
        "iggy_connector_s2_source",
        "1 KiB records, reads of 1000",
        "msg/s",
        raw,
        plugin,
    );
    perf::bound(
        "iggy_connector_s2_source",
        "1 KiB records, vs read session",
        "msg/s",
        session,
        plugin,
    );
    perf::held(
        "iggy_connector_s2_source",
        "1 KiB records, vs read session stored",
        "msg/s",
        stored,
        plugin,
    );
    perf::bound(
        "iggy_connector_s2_source",
        "1 KiB records, batch_size 10000, vs read session",
        "msg/s",
        session,
        plugin_large,
    );
}
