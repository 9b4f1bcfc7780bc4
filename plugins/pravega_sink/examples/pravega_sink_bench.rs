//! Benchmark: the Pravega sink through the harness against a raw
//! pravega-client writer, in one process, against one Pravega standalone
//! (in-memory storage) started for it. The raw writers do what the sink does
//! with the same events (the harness's generated 1 KiB payloads, no routing
//! key, streams of two fixed segments): `at_least_once` (the default) hands
//! 1000 events to one event writer and awaits every acknowledgement before
//! the next 1000; `exactly_once` writes each 1000 in one transaction and
//! commits it. Runs alternate, three rounds, each run on a fresh stream;
//! medians are reported (the machine is shared), with the CPU per event of
//! this process and of the Pravega JVM. Last, the cost of `exactly_once`'s
//! `open` on a stream already written (it reads the position markers back).
//!
//! cargo build --release -p iggy_connector_pravega_sink -p iggy-harness
//! cargo run --release -p iggy_connector_pravega_sink --example pravega_sink_bench [messages]

mod raw_pravega;

use iggy_harness::bench::{BenchOptions, bench_sink};
use iggy_harness::topic_io::generated_payload;
use iggy_harness_test_support::perf::{self, Kind, with_cpu};
use iggy_harness_test_support::pravega::PravegaServer;
use iggy_harness_test_support::{build_dir, median};
use pravega_client::client_factory::ClientFactory;
use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::time::Instant;

const SCOPE: &str = "bench";
const PAYLOAD: usize = 1024;
const BATCH: u64 = 1000;
const ROUNDS: usize = 3;
/// The share of the raw client's rate the plugin is held to.

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    AtLeastOnce,
    ExactlyOnce,
}

impl Mode {
    fn setting(self) -> &'static str {
        match self {
            Mode::AtLeastOnce => "at_least_once",
            Mode::ExactlyOnce => "exactly_once",
        }
    }
}

/// The raw writer for `mode` on a fresh stream; events per second.
fn raw(factory: &ClientFactory, stream: &str, mode: Mode, count: u64) -> f64 {
    let stream = raw_pravega::scoped(SCOPE, stream);
    factory.runtime().block_on(async {
        raw_pravega::create_stream(factory, &stream, raw_pravega::SEGMENTS).await;
        // Made before the clock starts, as the harness stores the plugin's
        // messages before its run; each is handed over once, not copied.
        let events: RefCell<Vec<Vec<u8>>> =
            RefCell::new((0..count).map(|n| generated_payload(n, PAYLOAD)).collect());
        let event = |n: u64| std::mem::take(&mut events.borrow_mut()[n as usize]);
        let started = Instant::now();
        match mode {
            Mode::AtLeastOnce => {
                raw_pravega::write_acknowledged(factory, &stream, count, BATCH, event).await
            }
            Mode::ExactlyOnce => {
                raw_pravega::write_transactions(factory, &stream, count, BATCH, event).await
            }
        }
        count as f64 / started.elapsed().as_secs_f64()
    })
}

fn connector_file(
    dir: &Path,
    library: &Path,
    controller: &str,
    stream: &str,
    mode: Mode,
) -> PathBuf {
    let config = format!(
        "controller_uri = \"{controller}\"\nscope = \"{SCOPE}\"\nstream = \"{stream}\"\nwriter_mode = \"{}\"\n\
         [plugin_config.create]\nscaling = \"fixed\"\nsegments = {}\n",
        mode.setting(),
        raw_pravega::SEGMENTS
    );
    perf::connector_file(dir, stream, Kind::Sink, library, "raw", &config)
}

/// What `exactly_once`'s `open` costs by reading the stream's position
/// markers back: the wall time of a sink run of one message (skipped as
/// committed, so no transaction) on the first round's stream. The plugin's
/// INFO line shows the read back alone.
fn reopen_cost(library: &Path, dir: &Path, controller: &str, written: u64) {
    let options = BenchOptions {
        messages: 1,
        batch: 1,
        payload_size: PAYLOAD,
        connector: Some(connector_file(
            dir,
            library,
            controller,
            "plugin-exactly-once-0",
            Mode::ExactlyOnce,
        )),
    };
    let started = Instant::now();
    bench_sink(library, &options).expect("plugin reopen");
    println!(
        "  exactly_once open (reading the position markers back) + 1 skipped message: \
         {:.2} s on a stream of {written} events",
        started.elapsed().as_secs_f64()
    );
}

fn main() {
    if std::env::var_os("RUST_LOG").is_none() {
        // SAFETY: the first statement of main, before any other thread runs.
        unsafe { std::env::set_var("RUST_LOG", raw_pravega::QUIET_CLIENT_LOGS) };
    }
    // The standalone keeps every stream in its heap (768 MiB): twelve runs of
    // 50,000 1 KiB events brought its segment container down.
    let messages = perf::messages_arg(20_000);
    let dir = tempfile::tempdir().expect("temp dir");
    let server = PravegaServer::start(dir.path());
    let controller = server.controller_uri();
    let factory = raw_pravega::client(&controller);
    let library = build_dir().join("libiggy_connector_pravega_sink.so");
    let pid = server.pid();
    let modes = [Mode::AtLeastOnce, Mode::ExactlyOnce];
    // Per mode: raw rates, plugin rates.
    let mut rates = [(Vec::new(), Vec::new()), (Vec::new(), Vec::new())];
    for round in 0..ROUNDS {
        for (mode, (raw_rates, plugin_rates)) in modes.iter().zip(rates.iter_mut()) {
            let name = mode.setting().replace('_', "-");
            raw_rates.push(with_cpu(
                &format!("raw {}", mode.setting()),
                pid,
                messages,
                || raw(&factory, &format!("raw-{name}-{round}"), *mode, messages),
            ));
            let options = BenchOptions {
                messages,
                batch: BATCH as usize,
                payload_size: PAYLOAD,
                connector: Some(connector_file(
                    dir.path(),
                    &library,
                    &controller,
                    &format!("plugin-{name}-{round}"),
                    *mode,
                )),
            };
            plugin_rates.push(with_cpu(
                &format!("plugin {}", mode.setting()),
                pid,
                messages,
                || {
                    bench_sink(&library, &options)
                        .expect("plugin bench")
                        .messages_per_sec
                },
            ));
        }
    }
    println!(
        "Pravega sink: {messages} events of {PAYLOAD} B, {BATCH} per Iggy batch, {} fixed segments, Pravega standalone 0.13 in memory, median of {ROUNDS}",
        raw_pravega::SEGMENTS
    );
    let mut results = Vec::new();
    for (mode, (raw_rates, plugin_rates)) in modes.iter().zip(rates) {
        let (raw, plugin) = (median(raw_rates), median(plugin_rates));
        let reference = match mode {
            Mode::AtLeastOnce => "raw event writer, every ack awaited per 1000",
            Mode::ExactlyOnce => "raw transactional writer, a transaction per 1000",
        };
        println!("  {reference:<50} {raw:>9.0} msg/s");
        println!(
            "  plugin through the harness, {:<22} {plugin:>9.0} msg/s",
            mode.setting()
        );
        let ratio = plugin / raw;
        println!(
            "  ratio plugin / raw ({})                {ratio:>9.3}{}",
            mode.setting(),
            if ratio >= perf::TARGET {
                ""
            } else {
                "  below the 0.85 target"
            }
        );
        results.push((mode, raw, plugin));
    }
    reopen_cost(&library, dir.path(), &controller, messages);
    for (mode, raw, plugin) in results {
        let variant = match mode {
            Mode::AtLeastOnce => "1 KiB events, at_least_once (default)",
            Mode::ExactlyOnce => "1 KiB events, exactly_once vs raw transactions",
        };
        perf::held("iggy_connector_pravega_sink", variant, "msg/s", raw, plugin);
    }
}
