//! Which jobs to watch: by id, by a name pattern, or by a pattern over the
//! names of a job's source vertices (Flink's REST API names a source by the
//! operator name its author gave it, e.g. `Source: kafka-orders` or a SQL
//! table scan, not by connector type or topic). No filter: every job.

use crate::client::rest::{JobDetail, JobOverview};
use crate::config::MonitorSettings;
use regex::Regex;
use std::collections::{BTreeMap, BTreeSet};

pub struct Discovery {
    job_ids: Vec<String>,
    name: Option<Regex>,
    source: Option<Regex>,
    /// Plans do not change, so a job's source match is decided once.
    source_matches: BTreeMap<String, bool>,
}

impl Discovery {
    pub fn new(settings: &MonitorSettings) -> Self {
        Self {
            job_ids: settings.job_ids.clone(),
            name: settings.job_name_pattern.clone(),
            source: settings.source_name_pattern.clone(),
            source_matches: BTreeMap::new(),
        }
    }

    /// `Some` when the overview decides; `None` when the job's sources must be looked at.
    pub fn decide(&self, job: &JobOverview) -> Option<bool> {
        if self.job_ids.is_empty() && self.name.is_none() && self.source.is_none() {
            return Some(true);
        }
        if self
            .job_ids
            .iter()
            .any(|id| id.eq_ignore_ascii_case(&job.jid))
            || self
                .name
                .as_ref()
                .is_some_and(|name| name.is_match(&job.name))
        {
            return Some(true);
        }
        if self.source.is_none() {
            return Some(false);
        }
        self.source_matches.get(&job.jid).copied()
    }

    /// Decides by the job's source vertices and remembers the answer.
    pub fn learn_sources(&mut self, detail: &JobDetail) -> bool {
        let Some(pattern) = &self.source else {
            return false;
        };
        let plan_descriptions: Vec<&str> = detail
            .plan
            .iter()
            .flat_map(|plan| plan.nodes.iter())
            .filter(|node| node.inputs.is_empty())
            .map(|node| node.description.as_str())
            .collect();
        let matched = detail
            .source_vertices()
            .iter()
            .map(|vertex| vertex.name.as_str())
            .chain(plan_descriptions)
            .any(|name| pattern.is_match(&name.replace("<br/>", " ")));
        self.source_matches.insert(detail.jid.clone(), matched);
        matched
    }

    /// Drops what is known about jobs Flink no longer lists.
    pub fn retain(&mut self, listed: &BTreeSet<String>) {
        self.source_matches.retain(|jid, _| listed.contains(jid));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn settings(ids: &[&str], name: Option<&str>, source: Option<&str>) -> MonitorSettings {
        MonitorSettings {
            job_ids: ids.iter().map(|s| s.to_string()).collect(),
            job_name_pattern: name.map(|p| Regex::new(p).unwrap()),
            source_name_pattern: source.map(|p| Regex::new(p).unwrap()),
            metrics_interval: Some(Duration::from_secs(10)),
            max_exceptions: 10,
            max_jobs: 100,
        }
    }

    fn job(jid: &str, name: &str) -> JobOverview {
        JobOverview {
            jid: jid.into(),
            name: name.into(),
            state: "RUNNING".into(),
            start_time: 0,
        }
    }

    #[test]
    fn by_id_and_name() {
        let all = Discovery::new(&settings(&[], None, None));
        assert_eq!(all.decide(&job("a", "x")), Some(true));
        let some = Discovery::new(&settings(
            &["6a45f8f9adc0431265370d43019b383a"],
            Some("^iggy-"),
            None,
        ));
        assert_eq!(
            some.decide(&job("6A45F8F9ADC0431265370D43019B383A", "x")),
            Some(true)
        );
        assert_eq!(some.decide(&job("b", "iggy-insert-orders")), Some(true));
        assert_eq!(some.decide(&job("b", "other")), Some(false));
    }

    #[test]
    fn by_source_vertex_name() {
        let mut discovery = Discovery::new(&settings(
            &[],
            None,
            Some("(?i)kafka-orders|TableSourceScan\\(table=\\[\\[\\w+, \\w+, orders\\]\\]"),
        ));
        let candidate = job("6a45f8f9adc0431265370d43019b383a", "iggy-insert-orders");
        assert_eq!(discovery.decide(&candidate), None);
        // The plan of rest-insert-04-job-detail.json.
        let detail: JobDetail = serde_json::from_value(serde_json::json!({
            "jid": "6a45f8f9adc0431265370d43019b383a", "name": "iggy-insert-orders", "state": "RUNNING",
            "vertices": [{"id": "cbc", "name": "Source: orders[1] -> WatermarkAssigner[2] -> Calc[3]"},
                         {"id": "306", "name": "sink_bh[4]: Writer"}],
            "plan": {"nodes": [
                {"id": "306", "description": "sink_bh[4]: Writer<br/>", "inputs": [{"id": "cbc"}]},
                {"id": "cbc", "description": "[1]:TableSourceScan(table=[[default_catalog, default_database, orders]], fields=[order_id])<br/>"}
            ]}
        }))
        .unwrap();
        assert!(discovery.learn_sources(&detail));
        assert_eq!(discovery.decide(&candidate), Some(true));
        discovery.retain(&BTreeSet::new());
        assert_eq!(discovery.decide(&candidate), None);
    }
}
