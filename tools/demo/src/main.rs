//! `iggy-demo`: the main job's pipeline. Starts the local servers, runs the
//! shipped connector files as one pipeline through the harness's embedded
//! stream store (with injected redeliveries and Nacks), prints each
//! connector's figures and checks end to end that every generated order
//! arrived exactly once where the guarantees promise it.

mod checks;
mod connectors;
mod orders;
mod scrapes;
mod servers;

use clap::Parser;
use iggy_harness::faults::Faults;
use iggy_harness::library::SourceProtocolChoice;
use iggy_harness::pipeline::{self, OutputGoal, PipelineOptions};
use iggy_harness::sink_runner::{CommitMode, SinkOptions};
use iggy_harness::{plugin_log, stats};
use iggy_harness_store::StreamStore;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "iggy-demo",
    about = "One pipeline across every connector on local servers, checked end to end"
)]
struct Args {
    /// The built plugin libraries (scripts/main-job puts them in dist/plugins).
    #[arg(long, default_value = "dist/plugins")]
    plugins_dir: PathBuf,
    /// The connector files to run (addresses are pointed at the local servers).
    #[arg(long, default_value = "configs/connectors")]
    configs_dir: PathBuf,
    /// Order events to generate.
    #[arg(long, default_value_t = 30_000)]
    orders: u64,
    #[arg(long, default_value_t = 2)]
    partitions: u32,
    /// Faults injected into every connector (see `iggy-harness run --fault`);
    /// by default every 7th sink batch is delivered twice and, under v2,
    /// every 11th source batch is Nacked.
    #[arg(long = "fault")]
    faults: Vec<String>,
    /// Run without injected faults.
    #[arg(long, conflicts_with = "faults")]
    no_faults: bool,
    /// Leave Flink out even when Java is present.
    #[arg(long)]
    no_flink: bool,
    /// The source protocol: `newest` (v2, as runtime 0.5.x) or `v1` (as 0.4.x).
    #[arg(long, value_enum, default_value = "newest")]
    source_protocol: SourceProtocolChoice,
    /// Plugin log lines to show: trace, debug, info, warn or error.
    #[arg(long, default_value = "warn")]
    plugin_log: String,
    /// Give up after this long.
    #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
    timeout: Duration,
}

fn run(args: &Args) -> Result<bool, String> {
    let level = plugin_log::LEVELS
        .iter()
        .position(|l| l.eq_ignore_ascii_case(&args.plugin_log))
        .ok_or_else(|| format!("--plugin-log `{}` is not a level", args.plugin_log))?;
    plugin_log::echo_from(level as u8);
    let work = tempfile::Builder::new()
        .prefix("iggy-demo-")
        .tempdir()
        .map_err(|e| format!("temp dir: {e}"))?;
    eprintln!("== local servers (under {})", work.path().display());
    let servers = servers::Servers::start(work.path(), !args.no_flink);

    eprintln!("== connectors from {}", args.configs_dir.display());
    let connectors_dir = work.path().join("connectors");
    let written = connectors::write(
        &args.configs_dir,
        &args.plugins_dir,
        &servers,
        args.orders,
        &connectors_dir,
    )?;
    eprintln!("   running: {}", written.keys.join(", "));

    let data_dir = work.path().join("data");
    let store = StreamStore::open(&data_dir).map_err(|e| e.to_string())?;
    orders::produce(&store, args.partitions, args.orders)?;
    drop(store);
    eprintln!(
        "== {} order events in {}/{}",
        args.orders,
        orders::STREAM,
        orders::TOPIC
    );

    let faults = match (args.no_faults, args.faults.is_empty()) {
        (true, _) => Vec::new(),
        (false, false) => args.faults.clone(),
        // v1 has no Nack: a refused batch is simply lost, as under runtime 0.4.x.
        (false, true) if args.source_protocol == SourceProtocolChoice::V1 => {
            vec!["redeliver-every=7".to_string()]
        }
        (false, true) => vec!["redeliver-every=7".to_string(), "nack-every=11".to_string()],
    };
    if !faults.is_empty() {
        eprintln!("   injected faults: {}", faults.join(", "));
    }
    let faults = Faults::parse(&faults)?;
    let options = PipelineOptions {
        connectors_dir,
        state_dir: work.path().join("state"),
        data_dir: Some(data_dir.clone()),
        partitions: args.partitions,
        sink: SinkOptions {
            commit: CommitMode::AfterConsume,
            max_attempts: 10,
            faults: faults.clone(),
        },
        faults,
        duration: Some(args.timeout),
        exit_when_idle: Some(Duration::from_secs(3)),
        wait_for: wait_for(&written.keys, args.orders),
        progress: true,
        validate_payloads: true,
        source_protocol: args.source_protocol,
    };
    let shutdown = Arc::new(AtomicBool::new(false));
    pipeline::stop_on_ctrl_c(Arc::clone(&shutdown));
    let scraper = scrapes::Scraper::start(written.metrics);
    let report = pipeline::run(&options, &shutdown);
    let scrapes = scraper.finish();
    let report = report?;
    println!(
        "{}\n",
        stats::summary_table(
            &report.connectors,
            Duration::from_secs_f64(report.elapsed_secs)
        )
    );

    let store = StreamStore::open(&data_dir).map_err(|e| e.to_string())?;
    let checks = checks::run(&store, &servers, args.orders);
    checks::print(&checks);
    let scraped = scrapes::print(&scrapes);
    let passed = report.ok && scraped && checks.iter().all(|c| c.ok);
    println!(
        "\n{}",
        if passed {
            "end-to-end check passed"
        } else {
            "end-to-end check FAILED"
        }
    );
    Ok(passed)
}

/// A Flink query takes 10-30 s to deliver its first row, far longer than
/// the idle time that ends the run: wait for all its rows, and for the
/// monitor's first event about that job (a short job may be first seen
/// finished, so no more can be counted on).
fn wait_for(keys: &[String], orders: u64) -> Vec<OutputGoal> {
    let goals = [("flink_source", orders), (connectors::FLINK_MONITOR_KEY, 1)];
    goals
        .into_iter()
        .filter(|(key, _)| keys.iter().any(|k| k == key))
        .map(|(key, messages)| OutputGoal {
            key: key.to_string(),
            messages,
        })
        .collect()
}

fn main() -> ExitCode {
    match run(&Args::parse()) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("iggy-demo: {error}");
            ExitCode::from(2)
        }
    }
}
