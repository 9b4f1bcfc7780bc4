//! The line each connector benchmark prints per comparison, so
//! `iggy-perf-report` can gather every benchmark's figures into one table.

/// The prefix `iggy-perf-report` looks for.
pub const MARKER: &str = "PERF-RESULT ";

/// Prints one comparison: the plugin through the harness against the raw
/// client on the same server in the same run.
pub fn report(plugin: &str, variant: &str, unit: &str, raw_rate: f64, plugin_rate: f64) {
    let line = serde_json::json!({
        "plugin": plugin,
        "variant": variant,
        "unit": unit,
        "raw": raw_rate,
        "plugin_rate": plugin_rate,
        "ratio": plugin_rate / raw_rate,
    });
    println!("{MARKER}{line}");
}
