//! `iggy-perf-report`: turns the `PERF-RESULT` lines the connector
//! benchmarks print (see `scripts/perf-report`) into one Markdown table and
//! one SVG plot of each plugin's rate as a share of its raw client's rate.

use clap::Parser;
use serde_json::Value;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

/// The issues' target: a plugin reaches this share of its raw client, unless
/// its result line names a target of its own (`target`).
const TARGET_RATIO: f64 = 0.8;

#[derive(Parser)]
#[command(name = "iggy-perf-report")]
struct Args {
    /// JSON lines, one comparison each (the benchmarks' PERF-RESULT lines).
    #[arg(long)]
    results: PathBuf,
    /// Where report.md and report.svg go.
    #[arg(long)]
    out: PathBuf,
}

struct Row {
    plugin: String,
    variant: String,
    unit: String,
    raw: f64,
    plugin_rate: f64,
    target: f64,
}

impl Row {
    fn ratio(&self) -> f64 {
        self.plugin_rate / self.raw
    }

    fn met(&self) -> bool {
        self.ratio() >= self.target
    }

    fn label(&self) -> String {
        let short = self.plugin.trim_start_matches("iggy_connector_");
        format!("{short} ({})", self.variant)
    }
}

fn parse(text: &str) -> Result<Vec<Row>, String> {
    text.lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let value: Value = serde_json::from_str(line).map_err(|e| format!("{line}: {e}"))?;
            let text = |key: &str| value[key].as_str().unwrap_or_default().to_string();
            let number = |key: &str| {
                value[key]
                    .as_f64()
                    .filter(|n| n.is_finite() && *n > 0.0)
                    .ok_or_else(|| format!("{line}: `{key}` is not a positive number"))
            };
            Ok(Row {
                plugin: text("plugin"),
                variant: text("variant"),
                unit: text("unit"),
                raw: number("raw")?,
                plugin_rate: number("plugin_rate")?,
                target: match value.get("target") {
                    Some(_) => number("target")?,
                    None => TARGET_RATIO,
                },
            })
        })
        .collect()
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

fn table(rows: &[Row]) -> String {
    let mut out = String::from(
        "| plugin | variant | raw client | plugin | ratio | target | met |\n| --- | --- | ---: | ---: | ---: | ---: | :---: |\n",
    );
    for row in rows {
        let _ = writeln!(
            out,
            "| {} | {} | {:.0} {} | {:.0} {} | {:.2} | {:.2} | {} |",
            row.plugin,
            row.variant,
            row.raw,
            row.unit,
            row.plugin_rate,
            row.unit,
            row.ratio(),
            row.target,
            if row.met() { "yes" } else { "no" }
        );
    }
    out
}

/// Horizontal bars of each ratio, with lines at the target and at parity.
fn plot(rows: &[Row]) -> String {
    const LABEL_WIDTH: f64 = 360.0;
    const BAR_AREA: f64 = 420.0;
    const ROW_HEIGHT: f64 = 26.0;
    let max_ratio = rows.iter().map(Row::ratio).fold(1.2, f64::max);
    let scale = BAR_AREA / max_ratio;
    let height = ROW_HEIGHT * rows.len() as f64 + 60.0;
    let width = LABEL_WIDTH + BAR_AREA + 80.0;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"10\" y=\"18\" font-size=\"14\">Plugin rate ÷ raw client rate (same server, same run)</text>\n"
    );
    for (index, row) in rows.iter().enumerate() {
        let y = 34.0 + ROW_HEIGHT * index as f64;
        let bar = row.ratio() * scale;
        let colour = if row.met() { "#3a7d44" } else { "#c0504d" };
        let _ = write!(
            svg,
            "<text x=\"{:.0}\" y=\"{:.0}\" text-anchor=\"end\">{}</text>\n\
             <rect x=\"{LABEL_WIDTH}\" y=\"{y:.0}\" width=\"{bar:.1}\" height=\"{:.0}\" fill=\"{colour}\"/>\n\
             <text x=\"{:.1}\" y=\"{:.0}\">{:.2}</text>\n",
            LABEL_WIDTH - 8.0,
            y + 15.0,
            escape(&row.label()),
            ROW_HEIGHT - 8.0,
            LABEL_WIDTH + bar + 4.0,
            y + 15.0,
            row.ratio()
        );
        if row.target != TARGET_RATIO {
            // A row held to a target of its own: a tick across its bar there.
            let _ = writeln!(
                svg,
                "<path d=\"M{:.1} {:.0}v{:.0}\" stroke=\"#000\" stroke-width=\"2\"/>",
                LABEL_WIDTH + row.target * scale,
                y - 2.0,
                ROW_HEIGHT - 4.0
            );
        }
    }
    for (ratio, name) in [(TARGET_RATIO, "0.8 target"), (1.0, "raw")] {
        let x = LABEL_WIDTH + ratio * scale;
        let _ = write!(
            svg,
            "<line x1=\"{x:.1}\" y1=\"28\" x2=\"{x:.1}\" y2=\"{:.0}\" stroke=\"#555\" stroke-dasharray=\"4 3\"/>\n\
             <text x=\"{x:.1}\" y=\"{:.0}\" text-anchor=\"middle\">{name}</text>\n",
            height - 22.0,
            height - 8.0
        );
    }
    svg.push_str("</svg>\n");
    svg
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn run(args: &Args) -> Result<(), String> {
    let text = std::fs::read_to_string(&args.results)
        .map_err(|e| format!("{}: {e}", args.results.display()))?;
    let rows = parse(&text)?;
    if rows.is_empty() {
        return Err(format!("{} holds no results", args.results.display()));
    }
    std::fs::create_dir_all(&args.out).map_err(|e| format!("{}: {e}", args.out.display()))?;
    let date = humantime::format_rfc3339_seconds(std::time::SystemTime::now());
    let table = table(&rows);
    let report = format!(
        "# Connector performance\n\n{date}, {}. Each row: the plugin driven through the harness \
         against the raw client on the same local server, in the same run (medians).\n\n{table}\n![ratios](report.svg)\n",
        machine()
    );
    for (name, content) in [("report.md", report), ("report.svg", plot(&rows))] {
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

#[cfg(test)]
mod tests {
    use super::*;

    const LINES: &str = r#"{"plugin":"iggy_connector_x_sink","variant":"json","unit":"msg/s","raw":1000.0,"plugin_rate":850.0,"ratio":0.85}
{"plugin":"iggy_connector_y_source","variant":"default","unit":"msg/s","raw":2000.0,"plugin_rate":1000.0,"ratio":0.5}
"#;

    #[test]
    fn the_table_has_a_row_per_comparison_with_its_ratio_and_verdict() {
        let rows = parse(LINES).unwrap();
        let table = table(&rows);
        assert!(table.contains(
            "| iggy_connector_x_sink | json | 1000 msg/s | 850 msg/s | 0.85 | 0.80 | yes |"
        ));
        assert!(table.contains(
            "| iggy_connector_y_source | default | 2000 msg/s | 1000 msg/s | 0.50 | 0.80 | no |"
        ));
    }

    #[test]
    fn the_plot_draws_a_bar_per_row_and_both_reference_lines() {
        let svg = plot(&parse(LINES).unwrap());
        assert_eq!(svg.matches("<rect x=").count(), 2);
        assert_eq!(svg.matches("<line").count(), 2);
        assert!(svg.contains("x_sink (json)") && svg.contains("0.50"));
    }

    #[test]
    fn a_row_with_its_own_target_is_judged_and_marked_by_it() {
        let line = r#"{"plugin":"iggy_connector_z_sink","variant":"v","unit":"msg/s","raw":1000.0,"plugin_rate":830.0,"target":0.85}"#;
        let rows = parse(line).unwrap();
        assert!(
            table(&rows).contains("| 1000 msg/s | 830 msg/s | 0.83 | 0.85 | no |"),
            "{}",
            table(&rows)
        );
        let svg = plot(&rows);
        assert_eq!(svg.matches("<path").count(), 1, "{svg}");
        assert!(svg.contains("#c0504d"), "{svg}");
    }

    #[test]
    fn a_result_without_rates_is_refused() {
        let error = parse(r#"{"plugin":"p","raw":0,"plugin_rate":5}"#)
            .err()
            .unwrap();
        assert!(error.contains("`raw`"), "{error}");
    }
}
