//! `iggy-perf-report`: turns the `PERF-RESULT` lines the connector
//! benchmarks print (see `scripts/perf-report`), one file per run, into one
//! Markdown table and one SVG plot of each plugin's rate as a share of its
//! raw client's rate: median and range over the runs, judged by the worst.

mod plot;
mod results;
mod table;

use clap::Parser;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "iggy-perf-report")]
struct Args {
    /// JSON lines, one comparison each (the benchmarks' PERF-RESULT lines);
    /// give it once per run.
    #[arg(long, required = true)]
    results: Vec<PathBuf>,
    /// Where report.md and report.svg go.
    #[arg(long)]
    out: PathBuf,
}

/// What the report says about where it ran.
fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|line| line.starts_with("model name"))
                .and_then(|line| line.split(':').nth(1))
                .map(|name| name.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("{cores} cores, {cpu}, {}", std::env::consts::ARCH)
}

fn run(args: &Args) -> Result<(), String> {
    let mut comparisons = Vec::new();
    for path in &args.results {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        results::add_run(&mut comparisons, &text)
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    if comparisons.is_empty() {
        return Err("the results hold no comparison".into());
    }
    std::fs::create_dir_all(&args.out).map_err(|e| format!("{}: {e}", args.out.display()))?;
    let date = humantime::format_rfc3339_seconds(std::time::SystemTime::now());
    let table = table::table(&comparisons);
    let report = format!(
        "# Connector performance\n\n{date}, {}, {} run(s). Each run drives every plugin through the \
         harness against the raw client on the same local server (medians of alternating rounds). \
         `ratio` is the median over the runs; a row is met when its worst run reaches the target; \
         `bound` rows show a limit and are not judged.\n\n{table}\n![ratios](report.svg)\n",
        machine(),
        args.results.len()
    );
    for (name, content) in [
        ("report.md", report),
        ("report.svg", plot::plot(&comparisons)),
    ] {
        let path = args.out.join(name);
        std::fs::write(&path, content).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    print!("{table}");
    println!("written: {}/report.md, report.svg", args.out.display());
    Ok(())
}

fn main() -> ExitCode {
    match run(&Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("iggy-perf-report: {error}");
            ExitCode::FAILURE
        }
    }
}
