use iggy_harness::bench;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct BenchArgs {
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
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum BenchKind {
    Sink,
    Source,
}

pub fn run(args: BenchArgs, json: bool) -> Result<bool, String> {
    let options = bench::BenchOptions {
        messages: args.messages,
        batch: args.batch.max(1),
        payload_size: args.payload_size,
        connector: args.connector,
    };
    let report = match args.kind {
        BenchKind::Sink => bench::bench_sink(&args.library, &options)?,
        BenchKind::Source => bench::bench_source(&args.library, &options)?,
    };
    if json {
        super::print_json(&report);
    } else {
        bench::print(&report);
    }
    Ok(true)
}
