//! Benchmark: the S2 sink through the harness against raw s2-sdk appends,
//! in one process, against one in-memory s2-lite. The raw appends send what
//! the sink sends: the same bodies with the same `@iggy-position` header,
//! 1000 messages at a time split by the sink's own rule (`src/batches.rs`,
//! S2's 1000-record / 1 MiB limits: the header pushes 1000 × 1 KiB just over
//! 1 MiB, so each becomes two appends), each with `match_seq_num`. Runs
//! alternate, three each, each on a fresh stream; medians are reported (the
//! machine is shared).
//!
//! cargo build --release -p iggy_connector_s2_sink -p iggy-harness
//! cargo run --release -p iggy_connector_s2_sink --example s2_sink_bench [messages]

// The sink's split itself, not a copy of it.
#[path = "../src/batches.rs"]
mod batches;

use iggy_harness::bench::{BenchOptions, bench_sink};
use iggy_harness::topic_io::generated_payload;
use iggy_harness_test_support::median;
use iggy_harness_test_support::perf::{self, Kind};
use iggy_harness_test_support::s2::S2Lite;
use s2_sdk::S2Basin;
use s2_sdk::types::{AppendInput, AppendRecord, AppendRecordBatch, CreateStreamInput, Header};
use std::path::{Path, PathBuf};
use std::time::Instant;

const BASIN: &str = "bench-basin";
const PAYLOAD: usize = 1024;
const BATCH: u64 = 1000;
const ROUNDS: usize = 3;

async fn raw_append(basin: &S2Basin, stream: &str, count: u64) -> f64 {
    let name = stream.parse().expect("stream name");
    basin
        .create_stream(CreateStreamInput::new(name))
        .await
        .expect("create stream");
    let stream = basin.stream(stream.parse().expect("stream name"));
    // As the sink maps them: body, and the position in the bench's topic.
    let record = |offset: u64| {
        AppendRecord::new(generated_payload(offset, PAYLOAD))
            .and_then(|r| {
                r.with_headers([Header::new(
                    "@iggy-position",
                    format!("bench/orders/1@{offset}"),
                )])
            })
            .expect("record")
    };
    let started = Instant::now();
    let mut tail = 0u64;
    while tail < count {
        let records: Vec<AppendRecord> = (tail..count.min(tail + BATCH)).map(record).collect();
        for range in batches::split(&records) {
            let batch =
                AppendRecordBatch::try_from_iter(records[range].iter().cloned()).expect("batch");
            let ack = stream
                .append(AppendInput::new(batch).with_match_seq_num(tail))
                .await
                .expect("append");
            tail = ack.end.seq_num;
        }
    }
    count as f64 / started.elapsed().as_secs_f64()
}

fn connector_file(dir: &Path, library: &Path, endpoint: &str, stream: &str) -> PathBuf {
    let config = format!(
        "access_token = \"bench\"\nendpoint = \"{endpoint}\"\nbasin = \"{BASIN}\"\nstream = \"{stream}\"\n\
         [plugin_config.create_stream]\n"
    );
    perf::connector_file(dir, stream, Kind::Sink, library, "raw", &config)
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
    let library = iggy_harness_test_support::build_dir().join("libiggy_connector_s2_sink.so");
    let (mut raw, mut plugin) = (Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        raw.push(runtime.block_on(raw_append(&basin, &format!("raw-{round}"), messages)));
        let options = BenchOptions {
            messages,
            batch: BATCH as usize,
            payload_size: PAYLOAD,
            connector: Some(connector_file(
                dir.path(),
                &library,
                &server.endpoint(),
                &format!("plugin-{round}"),
            )),
        };
        plugin.push(
            bench_sink(&library, &options)
                .expect("plugin bench")
                .messages_per_sec,
        );
    }
    let (raw, plugin) = (median(raw), median(plugin));
    println!(
        "S2 sink: {messages} records of {PAYLOAD} B, {BATCH} per Iggy batch, s2-lite in memory, median of {ROUNDS}"
    );
    println!("  raw s2-sdk append (the sink's records and split)  {raw:>9.0} msg/s");
    println!("  plugin through the harness (schema raw)           {plugin:>9.0} msg/s");
    println!(
        "  ratio plugin / raw                                {:>9.2}",
        plugin / raw
    );
    perf::held(
        "iggy_connector_s2_sink",
        "1 KiB records, 1000 per Iggy batch",
        "msg/s",
        raw,
        plugin,
    );
}
