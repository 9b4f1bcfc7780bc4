//! `inspect`: what a plugin library exports, which ABI generations it serves
//! and its version, without opening a connector.

use crate::library::{self, Library, SINK_SYMBOLS, SOURCE_V1_SYMBOLS, SOURCE_V2_ONLY_SYMBOLS};
use serde::Serialize;
use std::path::Path;
use std::sync::Arc;

#[derive(Debug, Serialize)]
pub struct LibraryReport {
    pub path: String,
    pub kind: Option<&'static str>,
    /// "v1", "v2" for sources; "sink" for sinks.
    pub generations: Vec<&'static str>,
    pub exported: Vec<&'static str>,
    pub missing: Vec<&'static str>,
    pub version: Result<String, String>,
}

pub fn inspect_loaded(library: &Arc<Library>) -> LibraryReport {
    let all: Vec<&'static str> = SINK_SYMBOLS
        .iter()
        .chain(SOURCE_V1_SYMBOLS.iter())
        .chain(SOURCE_V2_ONLY_SYMBOLS.iter())
        .copied()
        .collect();
    let exported: Vec<&'static str> = all.iter().copied().filter(|s| library.has(s)).collect();
    let has_all = |names: &[&str]| names.iter().all(|n| exported.contains(n));
    let is_sink = has_all(&SINK_SYMBOLS);
    let v1 = has_all(&SOURCE_V1_SYMBOLS);
    let v2 = exported.contains(&"iggy_source_open")
        && has_all(&SOURCE_V2_ONLY_SYMBOLS)
        && exported.contains(&"iggy_source_close")
        && exported.contains(&"iggy_source_version");
    let (kind, expected): (Option<&'static str>, Vec<&'static str>) = if is_sink {
        (Some("sink"), SINK_SYMBOLS.to_vec())
    } else if exported.iter().any(|s| s.starts_with("iggy_source")) {
        (
            Some("source"),
            SOURCE_V1_SYMBOLS
                .iter()
                .chain(SOURCE_V2_ONLY_SYMBOLS.iter())
                .copied()
                .collect(),
        )
    } else if exported.iter().any(|s| s.starts_with("iggy_sink")) {
        (Some("sink"), SINK_SYMBOLS.to_vec())
    } else {
        (None, all.clone())
    };
    let mut generations = Vec::new();
    if is_sink {
        generations.push("sink");
    }
    if v1 {
        generations.push("v1");
    }
    if v2 {
        generations.push("v2");
    }
    let version_symbol = if kind == Some("sink") {
        "iggy_sink_version"
    } else {
        "iggy_source_version"
    };
    let version = library
        .sink_api()
        .map(|api| api.version)
        .or_else(|_| library.source_api().map(|api| api.version))
        .map_err(|_| format!("{version_symbol} is not exported"))
        .and_then(library::read_version);
    LibraryReport {
        path: library.path.display().to_string(),
        kind,
        generations,
        missing: expected
            .into_iter()
            .filter(|s| !exported.contains(s))
            .collect(),
        exported,
        version,
    }
}

pub fn inspect(path: &Path) -> Result<LibraryReport, String> {
    let library = library::load(path)?;
    Ok(inspect_loaded(&library))
}

pub fn print(report: &LibraryReport) {
    println!("{}", report.path);
    println!(
        "  kind:        {}",
        report.kind.unwrap_or("not a connector plugin")
    );
    println!("  generations: {}", report.generations.join(", "));
    match &report.version {
        Ok(version) => println!("  version:     {version}"),
        Err(error) => println!("  version:     unreadable ({error})"),
    }
    println!("  exported:    {}", report.exported.join(", "));
    if !report.missing.is_empty() {
        println!("  missing:     {}", report.missing.join(", "));
    }
}
