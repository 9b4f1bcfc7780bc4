use iggy_harness::inspect;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct InspectArgs {
    libraries: Vec<PathBuf>,
}

pub fn run(args: InspectArgs, json: bool) -> Result<bool, String> {
    let reports: Vec<_> = args
        .libraries
        .iter()
        .map(|p| inspect::inspect(p))
        .collect::<Result<_, _>>()?;
    if json {
        super::print_json(&reports);
    } else {
        reports.iter().for_each(inspect::print);
    }
    Ok(reports.iter().all(|r| r.kind.is_some()))
}
