//! The report's SVG: a bar per comparison at its median ratio, a whisker
//! over its range, a tick at its target, and a line at parity.

use crate::results::Comparison;
use std::fmt::Write as _;

const MET: &str = "#3a7d44";
const MISSED: &str = "#c0504d";
const BOUND: &str = "#8a8a8a";

pub fn plot(comparisons: &[Comparison]) -> String {
    // About 6.6 px a character at font-size 12, so the longest label fits.
    let longest = comparisons
        .iter()
        .map(|row| row.label().chars().count())
        .max()
        .unwrap_or(0);
    let label_width = (longest as f64 * 6.6 + 16.0).max(200.0);
    const BAR_AREA: f64 = 420.0;
    const ROW_HEIGHT: f64 = 26.0;
    let max_ratio = comparisons
        .iter()
        .map(Comparison::high_ratio)
        .fold(1.2, f64::max);
    let scale = BAR_AREA / max_ratio;
    let height = ROW_HEIGHT * comparisons.len() as f64 + 60.0;
    let width = label_width + BAR_AREA + 80.0;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"10\" y=\"18\" font-size=\"14\">Plugin rate ÷ raw client rate (same server, same run): median, range, target</text>\n"
    );
    for (index, row) in comparisons.iter().enumerate() {
        let y = 34.0 + ROW_HEIGHT * index as f64;
        let bar = row.median_ratio() * scale;
        let colour = match row.met() {
            Some(true) => MET,
            Some(false) => MISSED,
            None => BOUND,
        };
        let middle = y + (ROW_HEIGHT - 8.0) / 2.0;
        let _ = write!(
            svg,
            "<text x=\"{:.0}\" y=\"{:.0}\" text-anchor=\"end\">{}</text>\n\
             <rect x=\"{label_width:.0}\" y=\"{y:.0}\" width=\"{bar:.1}\" height=\"{:.0}\" fill=\"{colour}\"/>\n\
             <path d=\"M{:.1} {middle:.1}H{:.1}\" stroke=\"#000\"/>\n\
             <text x=\"{:.1}\" y=\"{:.0}\">{:.2}</text>\n",
            label_width - 8.0,
            y + 15.0,
            escape(&row.label()),
            ROW_HEIGHT - 8.0,
            label_width + row.low_ratio() * scale,
            label_width + row.high_ratio() * scale,
            label_width + row.high_ratio().max(row.median_ratio()) * scale + 4.0,
            y + 15.0,
            row.median_ratio()
        );
        if let Some(target) = row.target {
            let _ = writeln!(
                svg,
                "<path d=\"M{:.1} {:.0}v{:.0}\" stroke=\"#000\" stroke-width=\"2\"/>",
                label_width + target * scale,
                y - 2.0,
                ROW_HEIGHT - 4.0
            );
        }
    }
    let x = label_width + scale;
    let _ = write!(
        svg,
        "<line x1=\"{x:.1}\" y1=\"28\" x2=\"{x:.1}\" y2=\"{:.0}\" stroke=\"#555\" stroke-dasharray=\"4 3\"/>\n\
         <text x=\"{x:.1}\" y=\"{:.0}\" text-anchor=\"middle\">raw</text>\n</svg>\n",
        height - 22.0,
        height - 8.0
    );
    svg
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::add_run;

    #[test]
    fn each_row_has_a_bar_a_whisker_and_its_target_tick_and_colour() {
        let mut all = Vec::new();
        add_run(
            &mut all,
            "{\"plugin\":\"iggy_connector_x_sink\",\"variant\":\"json\",\"unit\":\"msg/s\",\"raw\":1000,\"plugin_rate\":830,\"target\":0.85}\n\
             {\"plugin\":\"iggy_connector_y_source\",\"variant\":\"vs <bare>\",\"unit\":\"msg/s\",\"raw\":1000,\"plugin_rate\":500}\n",
        )
        .unwrap();
        let svg = plot(&all);
        assert_eq!(svg.matches("<rect x=").count(), 2, "{svg}");
        // Two whiskers and one target tick.
        assert_eq!(svg.matches("<path").count(), 3, "{svg}");
        assert!(svg.contains(MISSED) && svg.contains(BOUND), "{svg}");
        assert!(svg.contains("y_source (vs &lt;bare&gt;)"), "{svg}");
        assert_eq!(svg.matches("<line").count(), 1, "{svg}");
    }
}
