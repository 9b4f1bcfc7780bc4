//! Throughput of the source against what async-nats alone reaches, in one
//! process against one nats-server (started here in a temp dir):
//!
//! 1. publish N 1 KiB messages into a file-backed stream;
//! 2. raw: a durable pull consumer fetching batches of the same size and
//!    acknowledging every message (AckPolicy::Explicit), then the same with
//!    AckPolicy::All and one double ack per batch — the least work the
//!    source must do;
//! 3. plugin: the built library driven by the harness's in-process source
//!    bench (callback decode, store append, fdatasync'd state file, Ack),
//!    with the default four metadata headers and with `nats-subject` only.
//!
//! Each is run twice, on fresh durables over the same messages; the best of
//! the two is summed up.
//!
//! `cargo build --release -p iggy_connector_nats_jetstream_source && \
//!  cargo run --release -p iggy_connector_nats_jetstream_source --example nats_source_bench [-- MESSAGES]`

use async_nats::jetstream::{self, consumer, stream};
use bytes::Bytes;
use futures_util::StreamExt;
use harness_test_support::nats::NatsServer;
use harness_test_support::perf::{self, with_cpu};
use iggy_harness::bench::{BenchOptions, bench_source, print};
use std::path::Path;
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
    let library = harness_test_support::plugin("iggy_connector_nats_jetstream_source");
    let dir = tempfile::tempdir()?;
    let server = NatsServer::start(dir.path());
    let url = server.url();
    let runtime = tokio::runtime::Runtime::new()?;
    // The JetStream context spawns a task, so it is made inside the runtime.
    let js = runtime.block_on(async { async_nats::connect(&url).await.map(jetstream::new) })?;

    let publish_rate = runtime.block_on(publish(&js, messages))?;
    println!("published {messages} messages of {PAYLOAD} B: {publish_rate:.0} msg/s");

    // Best rates: raw ack each, raw ack all, plugin (4 headers), plugin (subject only).
    let mut best = [0f64; 4];
    for round in 1..=2 {
        let each = format!("each-{round}");
        let all = format!("all-{round}");
        let pid = server.pid();
        let rates = [
            with_cpu("raw, ack every message", pid, messages, || {
                runtime.block_on(raw_consume(&js, &each, AckMode::Each, messages))
            })?,
            with_cpu("raw, AckPolicy::All", pid, messages, || {
                runtime.block_on(raw_consume(&js, &all, AckMode::Last, messages))
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
            "round {round}: raw ack each {:.0}, raw ack all {:.0}, plugin {:.0}, plugin with the subject header only {:.0} msg/s",
            rates[0], rates[1], rates[2], rates[3]
        );
        for (best, rate) in best.iter_mut().zip(rates) {
            *best = best.max(rate);
        }
    }
    let [each, all, full, lean] = best;
    println!("best of 2 ({messages} messages of {PAYLOAD} B, batches of {BATCH}):");
    println!("  raw fetch + ack every message:        {each:>8.0} msg/s");
    println!("  raw fetch + AckPolicy::All, 1 ack:    {all:>8.0} msg/s");
    for (label, rate) in [
        ("plugin, default metadata headers:    ", full),
        ("plugin, metadata_headers = [subject]:", lean),
    ] {
        println!(
            "  {label} {rate:>8.0} msg/s = {:.0}% of ack every message, {:.0}% of AckPolicy::All",
            100.0 * rate / each,
            100.0 * rate / all
        );
    }
    let source = "iggy_connector_nats_jetstream_source";
    perf::report(source, "4 metadata headers", "msg/s", each, full);
    perf::report(source, "subject header only", "msg/s", each, lean);
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

async fn raw_consume(
    js: &jetstream::Context,
    durable: &str,
    mode: AckMode,
    messages: u64,
) -> Result<f64, async_nats::Error> {
    let stream = js.get_stream(STREAM).await?;
    let consumer = stream
        .create_consumer(consumer::pull::Config {
            durable_name: Some(durable.into()),
            ack_policy: match mode {
                AckMode::Each => consumer::AckPolicy::Explicit,
                AckMode::Last => consumer::AckPolicy::All,
            },
            max_ack_pending: 20_000,
            ..Default::default()
        })
        .await?;
    let started = Instant::now();
    let mut received = 0u64;
    while received < messages {
        let mut batch = consumer
            .fetch()
            .max_messages(BATCH)
            .expires(Duration::from_millis(500))
            .messages()
            .await?;
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

/// The plugin through the harness's source bench, on a fresh durable.
fn plugin(
    library: &Path,
    dir: &Path,
    url: &str,
    durable: &str,
    extra_config: &str,
    messages: u64,
) -> Result<f64, async_nats::Error> {
    let connector = dir.join(format!("{durable}.toml"));
    std::fs::write(&connector, connector_file(url, durable, extra_config))?;
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

fn connector_file(url: &str, durable: &str, extra_config: &str) -> String {
    format!(
        "type = \"source\"\nkey = \"bench\"\nenabled = true\nversion = 0\nname = \"bench\"\n\
         path = \"libiggy_connector_nats_jetstream_source\"\n\n\
         [[streams]]\nstream = \"bench\"\ntopic = \"orders\"\nschema = \"raw\"\n\n\
         [plugin_config]\nservers = [\"{url}\"]\nstream = \"{STREAM}\"\nbatch_size = {BATCH}\n\
         {extra_config}\n\
         [[plugin_config.consumers]]\ndurable_name = \"{durable}\"\nfilter_subject = \"bench.>\"\n"
    )
}
