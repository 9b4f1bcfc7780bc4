//! `iggy-harness`: the command line over the `iggy_harness` library.

mod cli;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    match cli::run(cli::Cli::parse()) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("iggy-harness: {error}");
            ExitCode::from(2)
        }
    }
}
