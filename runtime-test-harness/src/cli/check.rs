use iggy_harness::conformance;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct CheckArgs {
    file: PathBuf,
    #[arg(long, default_value = "local_state")]
    state_dir: PathBuf,
}

pub fn run(args: CheckArgs, json: bool) -> Result<bool, String> {
    let report = conformance::check_connector(&args.file, &args.state_dir);
    if json {
        super::print_json(&report);
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
