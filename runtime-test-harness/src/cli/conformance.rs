use iggy_harness::conformance;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct ConformanceArgs {
    libraries: Vec<PathBuf>,
    /// A connector file whose plugin_config opens the libraries (default: none).
    #[arg(long)]
    connector: Option<PathBuf>,
    /// Run the checks in this process instead of one child process per library.
    #[arg(long, hide = true)]
    in_process: bool,
}

pub fn run(args: ConformanceArgs, json: bool) -> Result<bool, String> {
    if args.libraries.is_empty() {
        return Err("name at least one library".into());
    }
    let connector = args.connector.as_deref();
    let reports: Vec<_> = args
        .libraries
        .iter()
        .map(|lib| match args.in_process {
            true => conformance::check_in_process(lib, connector),
            false => conformance::check_isolated(lib, connector),
        })
        .collect();
    if json {
        super::print_json(&reports);
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
