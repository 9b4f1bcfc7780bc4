//! Benchmark: the Pravega source through the harness against a raw
//! pravega-client reader group reading the same stream, in one process,
//! against one Pravega standalone (in-memory storage) started for it. The
//! stream (two fixed segments) is filled once with the harness's generated
//! 1 KiB payloads; every run reads it from the head in a reader group of
//! its own with one reader, as the source does: a segment slice at a time,
//! up to 1000 events per batch, released after each batch. The raw reader
//! runs twice: bare, and storing each batch and saving its positions as the
//! runtime does (`DurableTarget`: the bound the runtime's own work sets on
//! any source on this machine; the raw messages carry no headers, the
//! source's three). Runs alternate, three rounds; medians are reported (the
//! machine is shared), with the CPU per event of this process and of the
//! Pravega JVM.
//!
//! cargo build --release -p iggy_connector_pravega_source -p iggy-harness
//! cargo run --release -p iggy_connector_pravega_source --example pravega_source_bench [messages]

// The sink benchmark's raw client; its transactional writer is not used here.
#[allow(dead_code)]
#[path = "../../pravega_sink/examples/raw_pravega/mod.rs"]
mod raw_pravega;

use iggy_harness::bench::{
    BenchOptions, BenchReport, DurableTarget, NewMessage, bench_source, print,
};
use iggy_harness::topic_io::generated_payload;
use iggy_harness_test_support::perf::{self, Kind, with_cpu};
use iggy_harness_test_support::pravega::PravegaServer;
use iggy_harness_test_support::{build_dir, median};
use pravega_client::client_factory::ClientFactory;
use pravega_client_shared::ScopedStream;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const SCOPE: &str = "bench";
const STREAM: &str = "source-bench";
const PAYLOAD: usize = 1024;
const BATCH: usize = 1000;
const ROUNDS: usize = 3;
/// The share of the raw reader's rate the plugin is held to.
/// A run that has not read everything by then has failed.
const READ_LIMIT: Duration = Duration::from_secs(300);

/// Reads `count` events in a new reader group `group`, a slice of at most
/// `BATCH` events at a time; with `target`, each batch is stored and the
/// positions saved before the next read. Events per second.
async fn raw_read(
    factory: &ClientFactory,
    stream: &ScopedStream,
    group: &str,
    count: u64,
    target: Option<&DurableTarget>,
) -> f64 {
    let factory = factory.to_async();
    let started = Instant::now();
    let reader_group = factory
        .create_reader_group(group.to_string(), stream.clone())
        .await;
    let mut reader = reader_group.create_reader(format!("{group}-reader")).await;
    let mut positions = BTreeMap::new();
    let mut read = 0u64;
    while read < count {
        assert!(
            started.elapsed() < READ_LIMIT,
            "raw reader: {read} of {count} events"
        );
        let Some(mut slice) = reader.acquire_segment().await.expect("acquire a segment") else {
            continue;
        };
        let segment = slice.meta.scoped_segment.clone();
        let events: Vec<_> = slice.by_ref().take(BATCH).collect();
        reader
            .release_segment(slice)
            .await
            .expect("release the segment");
        if let (Some(target), Some(last)) = (target, events.last()) {
            positions.insert(segment, last.offset_in_segment);
            let kept = (read + 1..)
                .zip(&events)
                .map(|(id, event)| NewMessage {
                    id: u128::from(id),
                    payload: event.value.as_slice().into(),
                    ..NewMessage::default()
                })
                .collect();
            let state = serde_json::to_vec(&positions).expect("positions");
            target.keep(kept, &state).expect("store the batch");
        }
        read += events.len() as u64;
    }
    let rate = count as f64 / started.elapsed().as_secs_f64();
    reader.reader_offline().await.expect("reader offline");
    factory
        .delete_reader_group(stream.scope.clone(), group.to_string())
        .await
        .expect("remove the reader group");
    rate
}

fn connector_file(dir: &Path, library: &Path, controller: &str, group: &str) -> PathBuf {
    let config = format!(
        "controller_uri = \"{controller}\"\nscope = \"{SCOPE}\"\nstream = \"{STREAM}\"\n\
         reader_group = \"{group}\"\nstart = \"head\"\nbatch_size = {BATCH}\nschema = \"raw\"\n"
    );
    perf::connector_file(dir, group, Kind::Source, library, "raw", &config)
}

fn main() {
    if std::env::var_os("RUST_LOG").is_none() {
        // SAFETY: the first statement of main, before any other thread runs.
        unsafe { std::env::set_var("RUST_LOG", raw_pravega::QUIET_CLIENT_LOGS) };
    }
    let messages = perf::messages_arg(100_000);
    let dir = tempfile::tempdir().expect("temp dir");
    let server = PravegaServer::start(dir.path());
    let controller = server.controller_uri();
    let factory = raw_pravega::client(&controller);
    let stream = raw_pravega::scoped(SCOPE, STREAM);
    factory.runtime().block_on(async {
        raw_pravega::create_stream(&factory, &stream, raw_pravega::SEGMENTS).await;
        raw_pravega::write_acknowledged(&factory, &stream, messages, BATCH as u64, |n| {
            generated_payload(n, PAYLOAD)
        })
        .await;
    });
    let library = build_dir().join("libiggy_connector_pravega_source.so");
    let pid = server.pid();
    let (mut bare, mut stored, mut plugin) = (Vec::new(), Vec::new(), Vec::new());
    let mut reports: Vec<BenchReport> = Vec::new();
    for round in 0..ROUNDS {
        bare.push(with_cpu("raw reader", pid, messages, || {
            factory.runtime().block_on(raw_read(
                &factory,
                &stream,
                &format!("raw-{round}"),
                messages,
                None,
            ))
        }));
        let target = DurableTarget::new().expect("store for the raw reader");
        stored.push(with_cpu("raw reader, stored", pid, messages, || {
            factory.runtime().block_on(raw_read(
                &factory,
                &stream,
                &format!("stored-{round}"),
                messages,
                Some(&target),
            ))
        }));
        let options = BenchOptions {
            messages,
            batch: BATCH,
            payload_size: PAYLOAD,
            connector: Some(connector_file(
                dir.path(),
                &library,
                &controller,
                &format!("plugin-{round}"),
            )),
        };
        // No saved state is passed, so each run reads from the head.
        let report = with_cpu("plugin", pid, messages, || {
            bench_source(&library, &options).expect("plugin bench")
        });
        plugin.push(report.messages_per_sec);
        reports.push(report);
    }
    let (bare, stored, plugin) = (median(bare), median(stored), median(plugin));
    println!(
        "Pravega source: {messages} events of {PAYLOAD} B, batches of ≤ {BATCH}, {} fixed segments, Pravega standalone 0.13 in memory, median of {ROUNDS}",
        raw_pravega::SEGMENTS
    );
    println!("  raw reader group, one reader                {bare:>9.0} msg/s");
    println!("  raw reader, stored + positions saved        {stored:>9.0} msg/s");
    println!("  plugin through the harness (defaults)       {plugin:>9.0} msg/s");
    let verdict = |ratio: f64| {
        if ratio >= perf::TARGET {
            ""
        } else {
            "  below the 0.85 target"
        }
    };
    for (what, reference) in [("raw reader", bare), ("stored raw reader", stored)] {
        let ratio = plugin / reference;
        println!("  ratio plugin / {what:<28} {ratio:>9.3}{}", verdict(ratio));
    }
    println!(
        "  ratio stored raw reader / raw reader        {:>9.2}",
        stored / bare
    );
    if let Some(report) = reports.iter().find(|r| r.messages_per_sec == plugin) {
        println!("  the plugin run at the median:");
        print(report);
    }
    let plugin_name = "iggy_connector_pravega_source";
    let unit = "msg/s";
    perf::bound(
        plugin_name,
        "1 KiB events, vs raw reader",
        unit,
        bare,
        plugin,
    );
    perf::held(
        plugin_name,
        "1 KiB events, vs raw reader stored",
        unit,
        stored,
        plugin,
    );
}
