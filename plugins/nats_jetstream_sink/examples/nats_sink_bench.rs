//! Benchmark: the sink through the harness against the raw async-nats
//! publish ceiling, in one process, against one nats-server (file storage).
//! Raw and plugin runs alternate, three of each, each into a stream created
//! for it (a purge keeps the duplicate window, so reused message ids would
//! be dropped as duplicates instead of stored); medians are reported, since
//! the machine is shared.
//!
//! cargo build --release -p iggy_connector_nats_jetstream_sink -p iggy-harness
//! cargo run --release -p iggy_connector_nats_jetstream_sink --example nats_sink_bench [messages]

use async_nats::jetstream::{self, context::PublishAckFuture, message::PublishMessage, stream};
use iggy_harness::bench::{BenchOptions, bench_sink};
use iggy_harness_test_support::median;
use iggy_harness_test_support::nats::NatsServer;
use iggy_harness_test_support::perf::{self, Kind, with_cpu};
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::time::Instant;

const WINDOW: usize = 1000;
const PAYLOAD: usize = 1024;
const ROUNDS: usize = 3;

/// Publishes `count` messages with at most `WINDOW` unacknowledged; msg/s.
/// `drain_every` waits for every acknowledgement after that many messages,
/// as a sink's `consume` must before it returns.
async fn raw_publish(
    js: &jetstream::Context,
    count: u64,
    with_ids: bool,
    drain_every: Option<u64>,
) -> f64 {
    let payload = bytes::Bytes::from(vec![b'x'; PAYLOAD]);
    let started = Instant::now();
    let mut in_flight: VecDeque<PublishAckFuture> = VecDeque::with_capacity(WINDOW);
    for n in 0..count {
        if in_flight.len() >= WINDOW || drain_every.is_some_and(|every| n % every == 0) {
            let drain = if in_flight.len() >= WINDOW {
                1
            } else {
                in_flight.len()
            };
            for ack in in_flight.drain(..drain) {
                ack.await.expect("ack");
            }
        }
        let mut message = PublishMessage::build().payload(payload.clone());
        if with_ids {
            message = message.message_id(format!("raw/{n}"));
        }
        in_flight.push_back(
            js.send_publish("bench.raw", message)
                .await
                .expect("publish"),
        );
    }
    for ack in in_flight {
        ack.await.expect("ack");
    }
    count as f64 / started.elapsed().as_secs_f64()
}

/// A connector file for the sink reading payloads with `schema`.
fn connector_file(dir: &Path, library: &Path, url: &str, schema: &str) -> PathBuf {
    let config = format!(
        "servers = [\"{url}\"]\nsubject = \"bench.plugin\"\nstream = \"BENCH\"\nmax_pending_acks = {WINDOW}\n"
    );
    perf::connector_file(
        dir,
        &format!("sink-{schema}"),
        Kind::Sink,
        library,
        schema,
        &config,
    )
}

fn main() {
    let messages = perf::messages_arg(100_000);
    let dir = tempfile::tempdir().expect("temp dir");
    let server = NatsServer::start(dir.path());
    let pid = server.pid();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let js = runtime.block_on(async {
        let client = async_nats::connect(server.url()).await.expect("connect");
        jetstream::context::ContextBuilder::new()
            .max_ack_inflight(WINDOW * 4)
            .backpressure_on_inflight(false)
            .build(client)
    });
    let fresh_stream = || {
        runtime.block_on(async {
            // Absent before the first run.
            let _ = js.delete_stream("BENCH").await;
            let config = stream::Config {
                name: "BENCH".into(),
                subjects: vec!["bench.>".into()],
                ..Default::default()
            };
            js.create_stream(config).await.expect("stream");
        })
    };
    let library =
        iggy_harness_test_support::build_dir().join("libiggy_connector_nats_jetstream_sink.so");
    let options = |schema: &str| BenchOptions {
        messages,
        batch: 1000,
        payload_size: PAYLOAD,
        connector: Some(connector_file(dir.path(), &library, &server.url(), schema)),
    };
    let (json, raw_schema) = (options("json"), options("raw"));
    // A warm-up, unmeasured.
    fresh_stream();
    runtime.block_on(raw_publish(&js, messages / 10, true, None));
    let (mut raw, mut raw_batched, mut plugin_json, mut plugin_raw) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        fresh_stream();
        raw.push(with_cpu("raw", pid, messages, || {
            runtime.block_on(raw_publish(&js, messages, true, None))
        }));
        fresh_stream();
        raw_batched.push(runtime.block_on(raw_publish(&js, messages, true, Some(1000))));
        fresh_stream();
        plugin_json.push(with_cpu("plugin, schema json", pid, messages, || {
            bench_sink(&library, &json)
                .expect("plugin bench")
                .messages_per_sec
        }));
        fresh_stream();
        plugin_raw.push(with_cpu("plugin, schema raw", pid, messages, || {
            bench_sink(&library, &raw_schema)
                .expect("plugin bench")
                .messages_per_sec
        }));
    }
    fresh_stream();
    let raw_without_ids = runtime.block_on(raw_publish(&js, messages, false, None));
    let (raw, raw_batched) = (median(raw), median(raw_batched));
    let (plugin_json, plugin_raw) = (median(plugin_json), median(plugin_raw));
    println!(
        "NATS JetStream sink: {messages} messages of {PAYLOAD} B, window {WINDOW}, file storage, median of {ROUNDS}"
    );
    println!("  raw async-nats publish with Nats-Msg-Id   {raw:>9.0} msg/s");
    println!(
        "  raw, all acks awaited every 1000 messages {raw_batched:>9.0} msg/s  ratio {:.2}",
        raw_batched / raw
    );
    println!(
        "  plugin, schema = \"raw\"                   {plugin_raw:>9.0} msg/s  ratio {:.2}",
        plugin_raw / raw
    );
    println!(
        "  plugin, schema = \"json\" (parse + encode) {plugin_json:>9.0} msg/s  ratio {:.2}",
        plugin_json / raw
    );
    println!("  (raw without Nats-Msg-Id, one run         {raw_without_ids:>9.0} msg/s)");
    let sink = "iggy_connector_nats_jetstream_sink";
    perf::held(sink, "schema json", "msg/s", raw, plugin_json);
    perf::held(sink, "schema raw", "msg/s", raw, plugin_raw);
}
