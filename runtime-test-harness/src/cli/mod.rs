//! The `iggy-harness` command line: one module per subcommand, each with its
//! arguments and what it does with them.

mod bench;
mod check;
mod conformance;
mod dump;
mod inspect;
mod produce;
mod run;

use clap::{Parser, Subcommand};
use iggy_harness::plugin_log;

#[derive(Parser)]
#[command(
    name = "iggy-harness",
    version,
    about = "Run and test Iggy connector plugins without an Iggy server"
)]
pub struct Cli {
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
    Run(run::RunArgs),
    /// Show what a library exports, its ABI generations and version.
    Inspect(inspect::InspectArgs),
    /// Open and close one connector file, reporting what happened.
    Check(check::CheckArgs),
    /// Check libraries against the plugin ABI.
    Conformance(conformance::ConformanceArgs),
    /// Append messages to a topic from JSON lines or a generator.
    Produce(produce::ProduceArgs),
    /// Print a topic's messages as JSON lines.
    Dump(dump::DumpArgs),
    /// Measure a sink or source library's throughput by stage.
    Bench(bench::BenchArgs),
}

/// Runs the command; `Ok(false)` when it ran and found a failure.
pub fn run(cli: Cli) -> Result<bool, String> {
    let level = match cli.plugin_log.as_str() {
        "off" => 5,
        name => plugin_log::LEVELS
            .iter()
            .position(|l| l.eq_ignore_ascii_case(name))
            .ok_or_else(|| format!("--plugin-log `{name}` is not a level"))? as u8,
    };
    plugin_log::echo_from(level);
    let json = cli.json;
    match cli.command {
        Command::Run(args) => run::run(args, json),
        Command::Inspect(args) => inspect::run(args, json),
        Command::Check(args) => check::run(args, json),
        Command::Conformance(args) => conformance::run(args, json),
        Command::Produce(args) => produce::run(args),
        Command::Dump(args) => dump::run(args),
        Command::Bench(args) => bench::run(args, json),
    }
}

/// A topic of the embedded store: its data directory, stream and name.
#[derive(clap::Args)]
struct TopicArgs {
    #[arg(long)]
    data_dir: std::path::PathBuf,
    #[arg(long)]
    stream: String,
    #[arg(long)]
    topic: String,
}

fn print_json(value: &impl serde::Serialize) {
    match serde_json::to_string_pretty(value) {
        Ok(text) => println!("{text}"),
        Err(error) => eprintln!("cannot print JSON: {error}"),
    }
}
