//! The benchmarks' `PERF-RESULT` lines, one file per report run, gathered
//! into one comparison per plugin and variant across the runs.

use serde_json::Value;

/// One plugin-against-raw comparison over every run that measured it.
pub struct Comparison {
    pub plugin: String,
    pub variant: String,
    pub unit: String,
    pub raw: Vec<f64>,
    pub plugin_rate: Vec<f64>,
    /// The share of the raw client's rate the plugin is held to; `None` for
    /// a comparison that only shows a bound (e.g. a source against a reader
    /// that does less than the runtime must).
    pub target: Option<f64>,
}

impl Comparison {
    pub fn ratios(&self) -> Vec<f64> {
        let mut ratios: Vec<f64> = self
            .plugin_rate
            .iter()
            .zip(&self.raw)
            .map(|(plugin, raw)| plugin / raw)
            .collect();
        ratios.sort_by(f64::total_cmp);
        ratios
    }

    pub fn median_ratio(&self) -> f64 {
        median(&self.ratios())
    }

    /// The judged figure: the worst run, so one lucky run cannot pass a row.
    pub fn low_ratio(&self) -> f64 {
        self.ratios()[0]
    }

    pub fn high_ratio(&self) -> f64 {
        *self.ratios().last().expect("a comparison has a run")
    }

    pub fn runs(&self) -> usize {
        self.raw.len()
    }

    /// `Some(true)` when even the worst run reaches the target.
    pub fn met(&self) -> Option<bool> {
        self.target.map(|target| self.low_ratio() >= target)
    }

    pub fn label(&self) -> String {
        let short = self.plugin.trim_start_matches("iggy_connector_");
        format!("{short} ({})", self.variant)
    }
}

pub fn median(values: &[f64]) -> f64 {
    let mut values = values.to_vec();
    values.sort_by(f64::total_cmp);
    let middle = values.len() / 2;
    if values.len() % 2 == 1 {
        values[middle]
    } else {
        (values[middle - 1] + values[middle]) / 2.0
    }
}

/// Adds one run's lines to `comparisons`, keeping the order of first sight.
pub fn add_run(comparisons: &mut Vec<Comparison>, text: &str) -> Result<(), String> {
    for line in text.lines().filter(|line| !line.trim().is_empty()) {
        let value: Value = serde_json::from_str(line).map_err(|e| format!("{line}: {e}"))?;
        let text = |key: &str| value[key].as_str().unwrap_or_default().to_string();
        let number = |key: &str| {
            value[key]
                .as_f64()
                .filter(|n| n.is_finite() && *n > 0.0)
                .ok_or_else(|| format!("{line}: `{key}` is not a positive number"))
        };
        let (plugin, variant) = (text("plugin"), text("variant"));
        let target = match value.get("target") {
            Some(_) => Some(number("target")?),
            None => None,
        };
        let (raw, plugin_rate) = (number("raw")?, number("plugin_rate")?);
        match comparisons
            .iter_mut()
            .find(|c| c.plugin == plugin && c.variant == variant)
        {
            Some(comparison) => {
                if comparison.target != target {
                    return Err(format!(
                        "{plugin} ({variant}): runs disagree on the target ({:?} and {target:?})",
                        comparison.target
                    ));
                }
                comparison.raw.push(raw);
                comparison.plugin_rate.push(plugin_rate);
            }
            None => comparisons.push(Comparison {
                plugin,
                variant,
                unit: text("unit"),
                raw: vec![raw],
                plugin_rate: vec![plugin_rate],
                target,
            }),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(variant: &str, raw: f64, plugin: f64, target: Option<f64>) -> String {
        let target = target.map_or(String::new(), |t| format!(",\"target\":{t}"));
        format!(
            "{{\"plugin\":\"iggy_connector_x_sink\",\"variant\":\"{variant}\",\"unit\":\"msg/s\",\"raw\":{raw},\"plugin_rate\":{plugin}{target}}}\n"
        )
    }

    #[test]
    fn runs_of_one_comparison_are_gathered_and_judged_by_the_worst() {
        let mut all = Vec::new();
        for (raw, plugin) in [(1000.0, 900.0), (1000.0, 800.0), (1000.0, 950.0)] {
            add_run(&mut all, &line("json", raw, plugin, Some(0.85))).unwrap();
        }
        assert_eq!(all.len(), 1);
        let row = &all[0];
        assert_eq!(row.runs(), 3);
        assert!((row.median_ratio() - 0.9).abs() < 1e-9);
        assert!((row.low_ratio() - 0.8).abs() < 1e-9);
        assert!((row.high_ratio() - 0.95).abs() < 1e-9);
        assert_eq!(row.met(), Some(false));
    }

    #[test]
    fn a_comparison_without_target_is_not_judged() {
        let mut all = Vec::new();
        add_run(&mut all, &line("vs bare reader", 1000.0, 500.0, None)).unwrap();
        assert_eq!(all[0].met(), None);
    }

    #[test]
    fn runs_that_disagree_on_the_target_are_refused() {
        let mut all = Vec::new();
        add_run(&mut all, &line("json", 1.0, 1.0, Some(0.85))).unwrap();
        let error = add_run(&mut all, &line("json", 1.0, 1.0, Some(0.8))).unwrap_err();
        assert!(error.contains("disagree"), "{error}");
    }

    #[test]
    fn a_result_without_rates_is_refused() {
        let error = add_run(&mut Vec::new(), r#"{"plugin":"p","raw":0,"plugin_rate":5}"#)
            .err()
            .unwrap();
        assert!(error.contains("`raw`"), "{error}");
    }

    #[test]
    fn the_median_of_an_even_count_is_the_middle_pair_s_mean() {
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
    }
}
