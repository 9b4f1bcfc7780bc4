//! `iggy-harness`: the command line over the `iggy_harness` library.

use clap::{Parser, Subcommand};
use iggy_harness::{
    bench, conformance, faults, inspect, library, pipeline, plugin_log, runtime_config,
    sink_runner, stats, topic_io,
};
use iggy_harness_store::StreamStore;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "iggy-harness",
    version,
    about = "Run and test Iggy connector plugins without an Iggy server"
)]
struct Cli {
    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
    /// Plugin log lines to echo: trace, debug, info, warn, error or off.
    #[arg(long, global = true, default_value = "info")]
    plugin_log: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run every enabled connector of a directory as one pipeline.
    Run {
        /// The runtime's config.toml (connectors.config_dir, state.path).
        #[arg(long)]
        config: Option<PathBuf>,
        #[arg(long)]
        connectors_dir: Option<PathBuf>,
        #[arg(long)]
        state_dir: Option<PathBuf>,
        /// Keep the stream store here (it survives restarts); in memory when absent.
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Partitions for topics the run creates.
        #[arg(long, default_value_t = 1)]
        partitions: u32,
        /// When sink offsets are committed: `on-poll` (before `consume`, its
        /// return code ignored, as runtime 0.4.x/0.5.x) or `after-consume`.
        #[arg(long, value_enum, default_value = "on-poll")]
        commit: sink_runner::CommitMode,
        /// Attempts per sink batch before its topic consumer gives up (after-consume only).
        #[arg(long, default_value_t = 10)]
        max_attempts: u32,
        /// Inject a fault (repeatable): see `faults` in the README.
        #[arg(long = "fault")]
        faults: Vec<String>,
        /// Stop after this long (e.g. 30s).
        #[arg(long, value_parser = humantime::parse_duration)]
        duration: Option<Duration>,
        /// Stop once nothing has moved for this long (e.g. 2s).
        #[arg(long, value_parser = humantime::parse_duration)]
        exit_when_idle: Option<Duration>,
        /// Print a progress line every second even when stderr is not a terminal.
        #[arg(long)]
        progress: bool,
        /// Store source payloads as the plugin gave them, skipping the runtime's
        /// decode and encode (Iggy's size limits still apply); the runtime has
        /// no such switch.
        #[arg(long)]
        no_validate: bool,
        /// The source protocol to speak: `newest` (v2 where exported, as
        /// runtime 0.5.x) or `v1` (as runtime 0.4.x).
        #[arg(long, value_enum, default_value = "newest")]
        source_protocol: library::SourceProtocolChoice,
    },
    /// Show what a library exports, its ABI generations and version.
    Inspect { libraries: Vec<PathBuf> },
    /// Open and close one connector file, reporting what happened.
    Check {
        file: PathBuf,
        #[arg(long, default_value = "local_state")]
        state_dir: PathBuf,
    },
    /// Check libraries against the plugin ABI.
    Conformance {
        libraries: Vec<PathBuf>,
        /// A connector file whose plugin_config opens the libraries (default: none).
        #[arg(long)]
        connector: Option<PathBuf>,
        #[arg(long, hide = true)]
        in_process: bool,
    },
    /// Append messages to a topic from JSON lines or a generator.
    Produce {
        #[arg(long)]
        data_dir: PathBuf,
        #[arg(long)]
        stream: String,
        #[arg(long)]
        topic: String,
        #[arg(long, default_value_t = 1)]
        partitions: u32,
        /// JSON lines to read ("-" for stdin).
        #[arg(long, conflicts_with = "generate")]
        file: Option<PathBuf>,
        /// Lines are envelopes {"id","headers","payload"} rather than bare payloads.
        #[arg(long)]
        envelope: bool,
        /// Generate this many JSON messages instead.
        #[arg(long)]
        generate: Option<u64>,
        #[arg(long, default_value_t = 256)]
        payload_size: usize,
    },
    /// Print a topic's messages as JSON lines.
    Dump {
        #[arg(long)]
        data_dir: PathBuf,
        #[arg(long)]
        stream: String,
        #[arg(long)]
        topic: String,
        #[arg(long)]
        partition: Option<u32>,
        #[arg(long, default_value_t = 0)]
        from: u64,
        #[arg(long, default_value_t = u64::MAX)]
        max: u64,
    },
    /// Measure a sink or source library's throughput by stage.
    Bench {
        #[arg(value_enum)]
        kind: BenchKind,
        library: PathBuf,
        #[arg(long)]
        connector: Option<PathBuf>,
        #[arg(long, default_value_t = 200_000)]
        messages: u64,
        #[arg(long, default_value_t = 1000)]
        batch: usize,
        #[arg(long, default_value_t = 1024)]
        payload_size: usize,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum BenchKind {
    Sink,
    Source,
}

fn print_json(value: &impl serde::Serialize) {
    match serde_json::to_string_pretty(value) {
        Ok(text) => println!("{text}"),
        Err(error) => eprintln!("cannot print JSON: {error}"),
    }
}

fn run(cli: Cli) -> Result<bool, String> {
    let level = match cli.plugin_log.as_str() {
        "off" => 5,
        name => plugin_log::LEVELS
            .iter()
            .position(|l| l.eq_ignore_ascii_case(name))
            .ok_or_else(|| format!("--plugin-log `{name}` is not a level"))? as u8,
    };
    plugin_log::echo_from(level);
    match cli.command {
        Command::Run {
            config,
            connectors_dir,
            state_dir,
            data_dir,
            partitions,
            commit,
            max_attempts,
            faults,
            duration,
            exit_when_idle,
            progress,
            no_validate,
            source_protocol,
        } => {
            let from_config = config.as_deref().map(runtime_config::read).transpose()?;
            let connectors_dir = connectors_dir
                .or_else(|| from_config.as_ref().and_then(|c| c.connectors_dir.clone()))
                .ok_or("give --connectors-dir or --config with connectors.config_dir")?;
            let state_dir = state_dir
                .or_else(|| from_config.as_ref().and_then(|c| c.state_dir.clone()))
                .unwrap_or_else(|| PathBuf::from("local_state"));
            let faults = faults::Faults::parse(&faults)?;
            let options = pipeline::PipelineOptions {
                connectors_dir,
                state_dir,
                data_dir,
                partitions,
                sink: sink_runner::SinkOptions {
                    commit,
                    max_attempts: max_attempts.max(1),
                    faults: faults.clone(),
                },
                faults,
                duration,
                exit_when_idle,
                progress,
                validate_payloads: !no_validate,
                source_protocol,
            };
            let shutdown = Arc::new(AtomicBool::new(false));
            pipeline::stop_on_ctrl_c(Arc::clone(&shutdown));
            let report = pipeline::run(&options, &shutdown)?;
            if cli.json {
                print_json(&report);
            } else {
                println!(
                    "{}",
                    stats::summary_table(
                        &report.connectors,
                        Duration::from_secs_f64(report.elapsed_secs)
                    )
                );
            }
            Ok(report.ok)
        }
        Command::Inspect { libraries } => {
            let reports: Vec<_> = libraries
                .iter()
                .map(|p| inspect::inspect(p))
                .collect::<Result<_, _>>()?;
            if cli.json {
                print_json(&reports);
            } else {
                reports.iter().for_each(inspect::print);
            }
            Ok(reports.iter().all(|r| r.kind.is_some()))
        }
        Command::Check { file, state_dir } => {
            let report = conformance::check_connector(&file, &state_dir);
            if cli.json {
                print_json(&report);
            } else {
                let verdict = if report.ok { "ok" } else { "FAILED" };
                println!("{verdict}: {} ({})", report.key, report.path);
                for warning in &report.warnings {
                    println!("  warning: {warning}");
                }
                if let Some(error) = &report.error {
                    println!("  error: {error}");
                }
            }
            Ok(report.ok)
        }
        Command::Conformance {
            libraries,
            connector,
            in_process,
        } => {
            if libraries.is_empty() {
                return Err("name at least one library".into());
            }
            let reports: Vec<_> = libraries
                .iter()
                .map(|lib| match in_process {
                    true => conformance::check_in_process(lib, connector.as_deref()),
                    false => conformance::check_isolated(lib, connector.as_deref()),
                })
                .collect();
            if cli.json {
                print_json(&reports);
            } else {
                reports.iter().for_each(conformance::print);
                let passed = reports.iter().filter(|r| r.ok).count();
                let partial = reports
                    .iter()
                    .filter(|r| r.ok && !r.not_run.is_empty())
                    .count();
                println!("{passed} passed, {} failed", reports.len() - passed);
                if partial > 0 {
                    println!(
                        "({partial} of the passed ran without a config that opens: their open-dependent checks were not run)"
                    );
                }
            }
            Ok(reports.iter().all(|r| r.ok))
        }
        Command::Produce {
            data_dir,
            stream,
            topic,
            partitions,
            file,
            envelope,
            generate,
            payload_size,
        } => {
            let store = StreamStore::open(&data_dir).map_err(|e| e.to_string())?;
            store
                .ensure_topic(&stream, &topic, partitions)
                .map_err(|e| e.to_string())?;
            let written = match (file, generate) {
                (_, Some(count)) => {
                    topic_io::produce_generated(&store, &stream, &topic, count, payload_size)?
                }
                (Some(path), None) if path.as_os_str() == "-" => topic_io::produce_lines(
                    &store,
                    &stream,
                    &topic,
                    std::io::stdin().lock(),
                    envelope,
                )?,
                (Some(path), None) => {
                    let file = std::fs::File::open(&path)
                        .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
                    topic_io::produce_lines(
                        &store,
                        &stream,
                        &topic,
                        std::io::BufReader::new(file),
                        envelope,
                    )?
                }
                (None, None) => return Err("give --file or --generate".into()),
            };
            store.sync().map_err(|e| e.to_string())?;
            eprintln!("produced {written} messages to {stream}/{topic}");
            Ok(true)
        }
        Command::Dump {
            data_dir,
            stream,
            topic,
            partition,
            from,
            max,
        } => {
            let store = StreamStore::open(&data_dir).map_err(|e| e.to_string())?;
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            let written = topic_io::dump(&store, &stream, &topic, partition, from, max, &mut out)?;
            drop(out);
            eprintln!("dumped {written} messages");
            Ok(true)
        }
        Command::Bench {
            kind,
            library,
            connector,
            messages,
            batch,
            payload_size,
        } => {
            let options = bench::BenchOptions {
                messages,
                batch: batch.max(1),
                payload_size,
                connector,
            };
            let report = match kind {
                BenchKind::Sink => bench::bench_sink(&library, &options)?,
                BenchKind::Source => bench::bench_source(&library, &options)?,
            };
            if cli.json {
                print_json(&report);
            } else {
                bench::print(&report);
            }
            Ok(true)
        }
    }
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("iggy-harness: {error}");
            ExitCode::from(2)
        }
    }
}
