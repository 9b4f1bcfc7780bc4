//! Benchmark: the sink through the harness (in process) against the raw
//! ceiling, in one process, against one influxd (InfluxDB 1.6, openGemini's
//! write API). The raw ceiling posts the same points, already formatted as
//! line protocol, from one reqwest client over one connection, in requests
//! of the same size, each awaited before the next, as the sink's `consume`
//! must. A second raw reference splits each request into as many halves,
//! posted at once, as the sink's default `write_concurrency` has lanes, so
//! the sink is also compared with a client doing what it does. For Iggy
//! batches (= requests) of 5000 and of 1000 points, raw runs and plugin runs
//! (default, then `pipelined_writes`) alternate, three of each, on a freshly
//! recreated database; medians are reported, since the machine is shared. `bench_sink` stops its clock before `close`, where a
//! pipelined sink writes its last batch: that figure is corrected by adding
//! one raw request's time.
//!
//! cargo build --release -p iggy_connector_opengemini_sink -p iggy-harness
//! cargo run --release -p iggy_connector_opengemini_sink --example opengemini_sink_bench [messages]

use iggy_harness::bench::{BenchOptions, BenchReport, bench_sink};
use iggy_harness::topic_io::generated_payload;
use iggy_harness_test_support::influxdb::InfluxServer;
use iggy_harness_test_support::median;
use iggy_harness_test_support::perf::{self, Kind};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const BATCHES: [usize; 2] = [5000, 1000];
const PAYLOAD: usize = 100;
const ROUNDS: usize = 3;
const DATABASE: &str = "bench";

/// The points the sink writes for the harness's generated payloads
/// (`{"seq":n,"pad":"xx…"}`), as request bodies of `batch` lines.
fn raw_bodies(messages: u64, batch: usize) -> Vec<Vec<u8>> {
    let start = 1_700_000_000_000_000_000u64;
    let lines: Vec<String> = (0..messages)
        .map(|seq| {
            let payload: serde_json::Value =
                serde_json::from_slice(&generated_payload(seq, PAYLOAD)).expect("payload");
            let pad = payload["pad"].as_str().unwrap_or_default();
            format!("bench pad=\"{pad}\",seq={seq}i {}\n", start + seq)
        })
        .collect();
    lines
        .chunks(batch)
        .map(|chunk| chunk.concat().into_bytes())
        .collect()
}

/// The sink's default `write_concurrency`.
const LANES: usize = 2;

/// Each body as `lanes` request bodies of whole lines.
fn in_lanes(bodies: &[Vec<u8>], lanes: usize) -> Vec<Vec<Vec<u8>>> {
    bodies
        .iter()
        .map(|body| {
            let lines: Vec<&[u8]> = body.split_inclusive(|&c| c == b'\n').collect();
            lines
                .chunks(lines.len().div_ceil(lanes))
                .map(<[&[u8]]>::concat)
                .collect()
        })
        .collect()
}

/// Posts every batch in turn from one client, the requests of a batch at
/// once; points per second.
async fn raw_write(client: &reqwest::Client, url: &str, batches: &[Vec<Vec<u8>>]) -> f64 {
    let points: usize = batches
        .iter()
        .flatten()
        .map(|b| b.iter().filter(|&&c| c == b'\n').count())
        .sum();
    let started = Instant::now();
    for requests in batches {
        let posts = requests.iter().map(|body| async move {
            let response = client
                .post(url)
                .body(body.clone())
                .send()
                .await
                .expect("raw write");
            assert_eq!(response.status().as_u16(), 204, "raw write refused");
        });
        futures_util::future::join_all(posts).await;
    }
    points as f64 / started.elapsed().as_secs_f64()
}

fn connector_file(dir: &Path, library: &Path, url: &str, batch: usize, pipelined: bool) -> PathBuf {
    let config = format!(
        "url = \"{url}\"\ndatabase = \"{DATABASE}\"\nbatch_size = {batch}\npipelined_writes = {pipelined}\n\
         [plugin_config.mapping]\nmeasurement = \"bench\"\n"
    );
    let file = format!("opengemini_sink_{batch}_{pipelined}");
    perf::connector_file(dir, &file, Kind::Sink, library, "json", &config)
}

fn main() {
    let messages = perf::messages_arg(200_000);
    let dir = tempfile::tempdir().expect("temp dir");
    let server = InfluxServer::start(dir.path());
    let fresh_database = || {
        server.execute(&format!("DROP DATABASE \"{DATABASE}\""));
        server.execute(&format!("CREATE DATABASE \"{DATABASE}\""));
    };
    // reqwest is built without a crypto provider (plain HTTP needs none,
    // but building a client does).
    let _ = rustls::crypto::ring::default_provider().install_default();
    // Multi-threaded and driven by `block_on` from this thread, as the SDK
    // runs a plugin's `consume`, so both pay the same hand-offs between
    // the caller and the connection task.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(LANES)
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client");
    let write_url = format!("{}/write?db={DATABASE}&precision=ns", server.url());
    let library =
        iggy_harness_test_support::build_dir().join("libiggy_connector_opengemini_sink.so");
    println!(
        "openGemini sink vs raw line-protocol writes: {messages} points of {PAYLOAD} B payloads, \
         InfluxDB 1.6 on loopback, median of {ROUNDS}"
    );
    for batch in BATCHES {
        let bodies = raw_bodies(messages, batch);
        let (one_at_a_time, lanes) = (in_lanes(&bodies, 1), in_lanes(&bodies, LANES));
        let options = |pipelined| BenchOptions {
            messages,
            batch,
            payload_size: PAYLOAD,
            connector: Some(connector_file(
                dir.path(),
                &library,
                &server.url(),
                batch,
                pipelined,
            )),
        };
        let (sequential, pipelined) = (options(false), options(true));
        // A warm-up of each, unmeasured.
        fresh_database();
        runtime.block_on(raw_write(&client, &write_url, &lanes[..lanes.len().min(4)]));
        fresh_database();
        bench_sink(&library, &sequential).expect("plugin warm-up");

        let (mut raw, mut raw_lanes, mut plugin, mut overlapped) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let mut reports = Vec::<BenchReport>::new();
        for _ in 0..ROUNDS {
            fresh_database();
            let raw_rate = runtime.block_on(raw_write(&client, &write_url, &one_at_a_time));
            raw.push(raw_rate);
            fresh_database();
            raw_lanes.push(runtime.block_on(raw_write(&client, &write_url, &lanes)));
            fresh_database();
            let report = bench_sink(&library, &sequential).expect("plugin bench");
            plugin.push(report.messages_per_sec);
            reports.push(report);
            fresh_database();
            let report = bench_sink(&library, &pipelined).expect("pipelined bench");
            let seconds = messages as f64 / report.messages_per_sec + batch as f64 / raw_rate;
            overlapped.push(messages as f64 / seconds);
            let counted = server.select(DATABASE, "SELECT COUNT(seq) FROM bench");
            assert_eq!(
                counted[0]["count"].as_u64(),
                Some(messages),
                "the pipelined sink wrote every point by close"
            );
        }
        let (raw_median, raw_lanes_median) = (median(raw.clone()), median(raw_lanes.clone()));
        let (plugin_median, overlapped_median) =
            (median(plugin.clone()), median(overlapped.clone()));
        println!("batches and requests of {batch} points:");
        println!("  raw reqwest, one request at a time   {raw_median:>9.0} points/s  {raw:.0?}");
        println!(
            "  raw, {LANES} requests at once               {raw_lanes_median:>9.0} points/s  {raw_lanes:.0?}"
        );
        println!(
            "  plugin through the harness           {plugin_median:>9.0} points/s  {plugin:.0?}  ratio {:.2} (to {LANES} at once: {:.2})",
            plugin_median / raw_median,
            plugin_median / raw_lanes_median
        );
        println!(
            "  plugin, pipelined_writes             {overlapped_median:>9.0} points/s  {overlapped:.0?}  ratio {:.2}",
            overlapped_median / raw_median
        );
        let sink = "iggy_connector_opengemini_sink";
        let variant = |mode: &str| format!("{mode}, batches of {batch}");
        perf::held(
            sink,
            &variant("default"),
            "points/s",
            raw_median,
            plugin_median,
        );
        perf::bound(
            sink,
            &variant(&format!("default vs raw with {LANES} requests at once")),
            "points/s",
            raw_lanes_median,
            plugin_median,
        );
        perf::bound(
            sink,
            &variant("pipelined_writes"),
            "points/s",
            raw_median,
            overlapped_median,
        );
        if let Some(report) = reports.iter().find(|r| r.messages_per_sec == plugin_median) {
            println!("  plugin (default) run at the median, by stage:");
            for stage in &report.stages {
                println!(
                    "    {:<28} {:>9.1} ns/point",
                    stage.name, stage.ns_per_message
                );
            }
        }
    }
}
