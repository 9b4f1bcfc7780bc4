//! Throughput of the source against what async-nats alone reaches, in one
//! process against one nats-server (started here in a temp dir):
//!
//! 1. publish N 1 KiB messages into a file-backed stream;
//! 2. raw: a durable pull consumer fetching batches of the same size and
//!    acknowledging every message (AckPolicy::Explicit), then the same with
//!    AckPolicy::All and one double ack per batch — the least work the
//!    source must do; then AckPolicy::All again, each batch stored and the
//!    state saved as the runtime does (`DurableTarget`) before the ack, the
//!    next fetch running meanwhile as the source's does: the bound the
//!    runtime's own work sets on any source on this machine;
//! 3. plugin: the built library driven by the harness's in-process source
//!    bench (callback decode, store append, fdatasync'd state file, Ack),
//!    with the default four metadata headers and with `nats-subject` only.
//!
//! Each is run twice, on fresh durables over the same messages; the best of
//! the two is summed up. Every consumer reads the whole stream, unfiltered
//! (a filter costs the server about 1 µs a message).
//!
//! `cargo build --release -p iggy_connector_nats_jetstream_source && \
//!  cargo run --release -p iggy_connector_nats_jetstream_source --example nats_source_bench [-- MESSAGES]`

use async_nats::jetstream::{self, consumer, stream};
use bytes::Bytes;
use futures_util::StreamExt;
use iggy_harness::bench::{BenchOptions, DurableTarget, NewMessage, bench_source, print};
use iggy_harness_test_support::nats::NatsServer;
use iggy_harness_test_support::perf::{self, Kind, with_cpu};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

const STREAM: &str = "BENCH";
const BATCH: usize = 1000;
const PAYLOAD: usize = 1024;

#[derive(Clone, Copy)]
enum AckMode {
    /// AckPolicy::Explicit, every message acknowledged.
    Each,
    /// AckPolicy::All, the last message of each batch double-acked.
    Last,
}

fn main() -> Result<(), async_nats::Error> {
    let messages = perf::messages_arg(200_000);
    let library = iggy_harness_test_support::plugin("iggy_connector_nats_jetstream_source");
    let dir = tempfile::tempdir()?;
    let server = NatsServer::start(dir.path());
    let url = server.url();
    let runtime = tokio::runtime::Runtime::new()?;
    // The JetStream context spawns a task, so it is made inside the runtime.
    let js = runtime.block_on(async { async_nats::connect(&url).await.map(jetstream::new) })?;

    let publish_rate = runtime.block_on(publish(&js, messages))?;
    println!("published {messages} messages of {PAYLOAD} B: {publish_rate:.0} msg/s");

    // Best rates: raw ack each, raw ack all, raw ack all stored, plugin (4
    // headers), plugin (subject only).
    let mut best = [0f64; 5];
    for round in 1..=2 {
        let each = format!("each-{round}");
        let all = format!("all-{round}");
        let stored = format!("stored-{round}");
        let pid = server.pid();
        let rates = [
            with_cpu("raw, ack every message", pid, messages, || {
                runtime.block_on(raw_consume(&js, &each, AckMode::Each, messages))
            })?,
            with_cpu("raw, AckPolicy::All", pid, messages, || {
                runtime.block_on(raw_consume(&js, &all, AckMode::Last, messages))
            })?,
            with_cpu("raw, All, stored", pid, messages, || {
                runtime.block_on(raw_stored(&js, &stored, messages))
            })?,
            with_cpu("plugin, 4 headers", pid, messages, || {
                plugin(
                    &library,
                    dir.path(),
                    &url,
                    &format!("full-{round}"),
                    "",
                    messages,
                )
            })?,
            with_cpu("plugin, subject header", pid, messages, || {
                plugin(
                    &library,
                    dir.path(),
                    &url,
                    &format!("lean-{round}"),
                    "metadata_headers = [\"subject\"]\n",
                    messages,
                )
            })?,
        ];
        println!(
            "round {round}: raw ack each {:.0}, raw ack all {:.0}, raw ack all stored {:.0}, plugin {:.0}, plugin with the subject header only {:.0} msg/s",
            rates[0], rates[1], rates[2], rates[3], rates[4]
        );
        for (best, rate) in best.iter_mut().zip(rates) {
            *best = best.max(rate);
        }
    }
    let [each, all, stored, full, lean] = best;
    println!("best of 2 ({messages} messages of {PAYLOAD} B, batches of {BATCH}):");
    println!("  raw fetch + ack every message:        {each:>8.0} msg/s");
    println!("  raw fetch + AckPolicy::All, 1 ack:    {all:>8.0} msg/s");
    println!(
        "  raw, AckPolicy::All, stored + state:  {stored:>8.0} msg/s = {:.0}% of AckPolicy::All",
        100.0 * stored / all
    );
    for (label, rate) in [
        ("plugin, default metadata headers:    ", full),
        ("plugin, metadata_headers = [subject]:", lean),
    ] {
        println!(
            "  {label} {rate:>8.0} msg/s = {:.0}% of ack every message, {:.0}% of AckPolicy::All, {:.0}% of it stored",
            100.0 * rate / each,
            100.0 * rate / all,
            100.0 * rate / stored
        );
    }
    let source = "iggy_connector_nats_jetstream_source";
    perf::bound(source, "4 metadata headers", "msg/s", each, full);
    perf::bound(source, "subject header only", "msg/s", each, lean);
    perf::bound(
        source,
        "4 metadata headers vs AckPolicy::All",
        "msg/s",
        all,
        full,
    );
    perf::held(
        source,
        "4 metadata headers vs AckPolicy::All stored",
        "msg/s",
        stored,
        full,
    );
    Ok(())
}

async fn publish(js: &jetstream::Context, messages: u64) -> Result<f64, async_nats::Error> {
    js.create_stream(stream::Config {
        name: STREAM.into(),
        subjects: vec!["bench.>".into()],
        storage: stream::StorageType::File,
        ..Default::default()
    })
    .await?;
    let payload = Bytes::from(vec![b'x'; PAYLOAD]);
    let started = Instant::now();
    let mut acks = Vec::with_capacity(1000);
    for n in 0..messages {
        acks.push(
            js.publish(format!("bench.{}", n % 4), payload.clone())
                .await?,
        );
        if acks.len() == 1000 {
            for ack in acks.drain(..) {
                ack.await?;
            }
        }
    }
    for ack in acks {
        ack.await?;
    }
    Ok(messages as f64 / started.elapsed().as_secs_f64())
}

/// A fresh durable over the whole stream, as the raw readers use it.
async fn raw_consumer(
    js: &jetstream::Context,
    durable: &str,
    ack_policy: consumer::AckPolicy,
) -> Result<consumer::PullConsumer, async_nats::Error> {
    let stream = js.get_stream(STREAM).await?;
    Ok(stream
        .create_consumer(consumer::pull::Config {
            durable_name: Some(durable.into()),
            ack_policy,
            max_ack_pending: 20_000,
            ..Default::default()
        })
        .await?)
}

async fn pull(
    consumer: &consumer::PullConsumer,
) -> Result<consumer::pull::Batch, async_nats::Error> {
    Ok(consumer
        .fetch()
        .max_messages(BATCH)
        .expires(Duration::from_millis(500))
        .messages()
        .await?)
}

async fn raw_consume(
    js: &jetstream::Context,
    durable: &str,
    mode: AckMode,
    messages: u64,
) -> Result<f64, async_nats::Error> {
    let ack_policy = match mode {
        AckMode::Each => consumer::AckPolicy::Explicit,
        AckMode::Last => consumer::AckPolicy::All,
    };
    let consumer = raw_consumer(js, durable, ack_policy).await?;
    let started = Instant::now();
    let mut received = 0u64;
    while received < messages {
        let mut batch = pull(&consumer).await?;
        let mut last = None;
        while let Some(message) = batch.next().await {
            received += 1;
            let message = message?;
            if let AckMode::Each = mode {
                message.ack().await?;
            }
            last = Some(message);
        }
        if let (AckMode::Last, Some(message)) = (mode, last) {
            message.double_ack().await?;
        }
    }
    Ok(received as f64 / started.elapsed().as_secs_f64())
}

async fn fetch_batch(
    consumer: Arc<consumer::PullConsumer>,
) -> Result<Vec<jetstream::Message>, async_nats::Error> {
    let mut batch = pull(&consumer).await?;
    let mut messages = Vec::with_capacity(BATCH);
    while let Some(message) = batch.next().await {
        messages.push(message?);
    }
    Ok(messages)
}

/// A hand-written reader doing the runtime's work itself: each batch is
/// stored with its stream sequences as ids and the last one saved as state,
/// then acked, while the next fetch runs.
async fn raw_stored(
    js: &jetstream::Context,
    durable: &str,
    messages: u64,
) -> Result<f64, async_nats::Error> {
    let target = DurableTarget::new()?;
    let consumer = Arc::new(raw_consumer(js, durable, consumer::AckPolicy::All).await?);
    let started = Instant::now();
    let mut received = 0u64;
    let mut next = tokio::spawn(fetch_batch(Arc::clone(&consumer)));
    while received < messages {
        let batch = next.await??;
        next = tokio::spawn(fetch_batch(Arc::clone(&consumer)));
        let mut kept = Vec::with_capacity(batch.len());
        let mut last_sequence = 0u64;
        for message in &batch {
            let info = message.info()?;
            last_sequence = info.stream_sequence;
            kept.push(NewMessage {
                id: u128::from(info.stream_sequence),
                origin_timestamp: u64::try_from(info.published.unix_timestamp_nanos() / 1000)?,
                payload: message.payload.as_ref().into(),
                ..NewMessage::default()
            });
        }
        received += kept.len() as u64;
        target.keep(kept, &last_sequence.to_le_bytes())?;
        if let Some(last) = batch.last() {
            last.double_ack().await?;
        }
    }
    next.abort();
    Ok(received as f64 / started.elapsed().as_secs_f64())
}

/// The plugin through the harness's source bench, on a fresh durable.
fn plugin(
    library: &Path,
    dir: &Path,
    url: &str,
    durable: &str,
    extra_config: &str,
    messages: u64,
) -> Result<f64, async_nats::Error> {
    let connector = connector_file(dir, url, durable, extra_config);
    let report = bench_source(
        library,
        &BenchOptions {
            messages,
            batch: BATCH,
            payload_size: PAYLOAD,
            connector: Some(connector),
        },
    )?;
    print(&report);
    Ok(report.messages_per_sec)
}

fn connector_file(dir: &Path, url: &str, durable: &str, extra_config: &str) -> PathBuf {
    let config = format!(
        "servers = [\"{url}\"]\nstream = \"{STREAM}\"\nbatch_size = {BATCH}\n{extra_config}\n\
         [[plugin_config.consumers]]\ndurable_name = \"{durable}\"\n"
    );
    let library = Path::new("libiggy_connector_nats_jetstream_source");
    perf::connector_file(dir, durable, Kind::Source, library, "raw", &config)
}
