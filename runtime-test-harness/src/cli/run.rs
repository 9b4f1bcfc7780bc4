use iggy_harness::{faults, library, pipeline, runtime_config, sink_runner, stats};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

#[derive(clap::Args)]
pub struct RunArgs {
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
    /// With --exit-when-idle: keep running until connector KEY has put out
    /// at least N messages (repeatable), e.g. for a source slow to start.
    #[arg(long, value_name = "KEY=N", requires = "exit_when_idle")]
    wait_for: Vec<pipeline::OutputGoal>,
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
}

pub fn run(args: RunArgs, json: bool) -> Result<bool, String> {
    let from_config = args
        .config
        .as_deref()
        .map(runtime_config::read)
        .transpose()?;
    let connectors_dir = args
        .connectors_dir
        .or_else(|| from_config.as_ref().and_then(|c| c.connectors_dir.clone()))
        .ok_or("give --connectors-dir or --config with connectors.config_dir")?;
    let state_dir = args
        .state_dir
        .or_else(|| from_config.as_ref().and_then(|c| c.state_dir.clone()))
        .unwrap_or_else(|| PathBuf::from("local_state"));
    let faults = faults::Faults::parse(&args.faults)?;
    let options = pipeline::PipelineOptions {
        connectors_dir,
        state_dir,
        data_dir: args.data_dir,
        partitions: args.partitions,
        sink: sink_runner::SinkOptions {
            commit: args.commit,
            max_attempts: args.max_attempts.max(1),
            faults: faults.clone(),
        },
        faults,
        duration: args.duration,
        exit_when_idle: args.exit_when_idle,
        wait_for: args.wait_for,
        progress: args.progress,
        validate_payloads: !args.no_validate,
        source_protocol: args.source_protocol,
    };
    let shutdown = Arc::new(AtomicBool::new(false));
    pipeline::stop_on_ctrl_c(Arc::clone(&shutdown));
    let report = pipeline::run(&options, &shutdown)?;
    if json {
        super::print_json(&report);
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
