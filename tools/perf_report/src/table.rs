//! The report's Markdown table: one row per comparison, the ratio's median
//! and range over the runs, and whether its worst run meets the target.

use crate::results::{Comparison, median};
use std::fmt::Write as _;

pub fn table(comparisons: &[Comparison]) -> String {
    let mut out = String::from(
        "| plugin | variant | raw client | plugin | ratio | low–high | runs | target | met |\n\
         | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | :---: |\n",
    );
    for row in comparisons {
        let (target, met) = match (row.target, row.met()) {
            (Some(target), Some(met)) => {
                (format!("{target:.2}"), if met { "yes" } else { "**no**" })
            }
            _ => ("bound".to_string(), "—"),
        };
        let _ = writeln!(
            out,
            "| {} | {} | {:.0} {} | {:.0} {} | {:.2} | {:.2}–{:.2} | {} | {target} | {met} |",
            row.plugin,
            row.variant,
            median(&row.raw),
            row.unit,
            median(&row.plugin_rate),
            row.unit,
            row.median_ratio(),
            row.low_ratio(),
            row.high_ratio(),
            row.runs(),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::add_run;

    #[test]
    fn a_row_shows_median_range_target_and_a_verdict_by_the_worst_run() {
        let mut all = Vec::new();
        for plugin in [900.0, 800.0, 950.0] {
            let line = format!(
                r#"{{"plugin":"iggy_connector_x_sink","variant":"json","unit":"msg/s","raw":1000.0,"plugin_rate":{plugin},"target":0.85}}"#
            );
            add_run(&mut all, &line).unwrap();
        }
        add_run(
            &mut all,
            r#"{"plugin":"iggy_connector_y_source","variant":"vs bare","unit":"msg/s","raw":2000.0,"plugin_rate":1000.0}"#,
        )
        .unwrap();
        let text = table(&all);
        assert!(
            text.contains("| iggy_connector_x_sink | json | 1000 msg/s | 900 msg/s | 0.90 | 0.80–0.95 | 3 | 0.85 | **no** |"),
            "{text}"
        );
        assert!(
            text.contains("| iggy_connector_y_source | vs bare | 2000 msg/s | 1000 msg/s | 0.50 | 0.50–0.50 | 1 | bound | — |"),
            "{text}"
        );
    }
}
