//! Which durable consumers the source reads: the explicit ones, or one per
//! subject of the stream (the default consumer). Filters must not overlap,
//! or a message would be read twice; a limits stream accepts overlapping
//! consumers, so the check is ours.

use crate::config::{DefaultConsumerSettings, SourceConfig, StartPolicy};
use crate::mapping::fnv1a_64;
use iggy_connector_nats_jetstream_common::subjects::overlap;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq)]
pub struct ConsumerSpec {
    pub name: String,
    /// `None` reads the whole stream.
    pub filter: Option<String>,
    pub start: StartPolicy,
    pub ack_wait: Duration,
    pub max_ack_pending: i64,
}

impl ConsumerSpec {
    /// The filter as NATS reports it (empty for the whole stream).
    pub fn filter_or_empty(&self) -> &str {
        self.filter.as_deref().unwrap_or("")
    }
}

/// The consumers to read, given the subjects the stream is configured with.
pub fn plan(
    config: &SourceConfig,
    stream_subjects: &[String],
) -> Result<Vec<ConsumerSpec>, String> {
    if config.consumers.is_empty() {
        let defaults = config.default_consumer.clone().unwrap_or_default();
        return default_plan(&config.stream, &defaults, stream_subjects);
    }
    let specs: Vec<ConsumerSpec> = config
        .consumers
        .iter()
        .map(|c| ConsumerSpec {
            name: c.durable_name.clone(),
            filter: c.filter_subject.clone(),
            start: c.deliver_policy,
            ack_wait: c.ack_wait,
            max_ack_pending: c.max_ack_pending,
        })
        .collect();
    check_overlaps(&specs)?;
    Ok(specs)
}

/// The default consumers of a stream with `stream_subjects`.
pub fn default_plan(
    stream: &str,
    defaults: &DefaultConsumerSettings,
    stream_subjects: &[String],
) -> Result<Vec<ConsumerSpec>, String> {
    let specs = default_consumers(stream, defaults, stream_subjects)?;
    check_overlaps(&specs)?;
    Ok(specs)
}

/// The consumers to add to `running` for the stream's current subjects:
/// those not running yet, unless one overlaps a running consumer (a
/// subject replaced by a wider one) or another new one.
pub fn added_subjects(
    stream: &str,
    defaults: &DefaultConsumerSettings,
    running: &[ConsumerSpec],
    stream_subjects: &[String],
) -> Result<Vec<ConsumerSpec>, String> {
    let added: Vec<ConsumerSpec> = default_consumers(stream, defaults, stream_subjects)?
        .into_iter()
        .filter(|spec| running.iter().all(|r| r.name != spec.name))
        .collect();
    let all: Vec<ConsumerSpec> = running.iter().chain(&added).cloned().collect();
    check_overlaps(&all)?;
    Ok(added)
}

fn default_consumers(
    stream: &str,
    defaults: &DefaultConsumerSettings,
    stream_subjects: &[String],
) -> Result<Vec<ConsumerSpec>, String> {
    if stream_subjects.is_empty() {
        return Err(format!(
            "stream `{stream}` has no subjects (a mirror or a sourcing stream?), so the default consumer has nothing to read; configure `consumers`"
        ));
    }
    Ok(stream_subjects
        .iter()
        .map(|subject| ConsumerSpec {
            name: default_consumer_name(&defaults.prefix, subject),
            filter: Some(subject.clone()),
            start: defaults.deliver_policy,
            ack_wait: defaults.ack_wait,
            max_ack_pending: defaults.max_ack_pending,
        })
        .collect())
}

/// `<prefix>-<readable subject>-<hash>`, e.g. `iggy-orders_any-1f0c9a7e` for
/// `orders.*`. Consumer names cannot hold `.`, `*` or `>`, so tokens are
/// joined by `_` and wildcards spelt `any`/`all`; that can map two subjects
/// to one name (`a.b` and `a_b`), so a hash of the exact subject follows.
pub fn default_consumer_name(prefix: &str, subject: &str) -> String {
    let readable: Vec<String> = subject
        .split('.')
        .map(|token| match token {
            "*" => "any".to_string(),
            ">" => "all".to_string(),
            _ => token
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                        c
                    } else {
                        '_'
                    }
                })
                .collect(),
        })
        .collect();
    let hash = fnv1a_64(subject.as_bytes());
    // Fold to 32 bits: enough to tell a stream's few subjects apart, short to read.
    let short = (hash ^ (hash >> 32)) as u32;
    format!("{prefix}-{}-{short:08x}", readable.join("_"))
}

fn check_overlaps(specs: &[ConsumerSpec]) -> Result<(), String> {
    for (i, a) in specs.iter().enumerate() {
        for b in &specs[i + 1..] {
            let (fa, fb) = (
                a.filter.as_deref().unwrap_or(">"),
                b.filter.as_deref().unwrap_or(">"),
            );
            if overlap(fa, fb) {
                return Err(format!(
                    "consumers `{}` (filter `{fa}`) and `{}` (filter `{fb}`) overlap: a message on a subject both match would be read twice; make the filter subjects disjoint",
                    a.name, b.name
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(json: &str) -> SourceConfig {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn default_names_are_readable_valid_and_distinct() {
        let a = default_consumer_name("iggy", "orders.*.created");
        assert!(a.starts_with("iggy-orders_any_created-"), "{a}");
        let b = default_consumer_name("iggy", "orders.>");
        assert!(b.starts_with("iggy-orders_all-"), "{b}");
        let c = default_consumer_name("x", "a.b");
        let d = default_consumer_name("x", "a_b");
        assert_ne!(
            c, d,
            "the hash separates subjects with the same readable form"
        );
        for name in [&a, &b, &c, &d] {
            assert!(!name.contains(['.', '*', '>', ' ']), "{name}");
        }
        assert_eq!(
            default_consumer_name("iggy", "orders.>"),
            b,
            "stable across runs"
        );
    }

    #[test]
    fn default_consumer_covers_every_subject() {
        let config = config(
            r#"{"servers":["nats://h:1"],"stream":"S","default_consumer":{"prefix":"src","deliver_policy":"new"}}"#,
        );
        let subjects = vec!["orders.eu.>".to_string(), "audit".to_string()];
        let specs = plan(&config, &subjects).unwrap();
        assert_eq!(specs.len(), 2);
        assert_eq!(specs[0].filter.as_deref(), Some("orders.eu.>"));
        assert_eq!(specs[1].filter.as_deref(), Some("audit"));
        assert!(specs.iter().all(|s| s.start == StartPolicy::New));
        assert!(specs[1].name.starts_with("src-audit-"));
        let error = plan(&config, &[]).unwrap_err();
        assert!(error.contains("no subjects"), "{error}");
    }

    #[test]
    fn subjects_added_later_get_consumers_unless_they_overlap_running_ones() {
        let defaults = DefaultConsumerSettings::default();
        let subjects = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let running = default_plan("S", &defaults, &subjects(&["orders.a"])).unwrap();
        let added = added_subjects(
            "S",
            &defaults,
            &running,
            &subjects(&["orders.a", "orders.b"]),
        )
        .unwrap();
        assert_eq!(added.len(), 1);
        assert_eq!(added[0].filter.as_deref(), Some("orders.b"));
        assert_eq!(added[0].name, default_consumer_name("iggy", "orders.b"));
        let unchanged = added_subjects("S", &defaults, &running, &subjects(&["orders.a"])).unwrap();
        assert!(unchanged.is_empty());
        // `orders.a` replaced by `orders.*`: its consumer still reads orders.a.
        let error = added_subjects("S", &defaults, &running, &subjects(&["orders.*"])).unwrap_err();
        assert!(
            error.contains("orders.a") && error.contains("orders.*") && error.contains("overlap"),
            "{error}"
        );
    }

    #[test]
    fn overlapping_filters_name_both_consumers() {
        let config = config(
            r#"{"servers":["nats://h:1"],"stream":"S","consumers":[
                {"durable_name":"eu","filter_subject":"orders.eu.>"},
                {"durable_name":"us","filter_subject":"orders.us.>"},
                {"durable_name":"created","filter_subject":"orders.*.created"}]}"#,
        );
        let error = plan(&config, &[]).unwrap_err();
        assert!(
            error.contains("`eu`") && error.contains("`created`"),
            "{error}"
        );
        let whole = config_with_unfiltered();
        let error = plan(&whole, &[]).unwrap_err();
        assert!(error.contains("`all`") && error.contains("`a`"), "{error}");
    }

    fn config_with_unfiltered() -> SourceConfig {
        config(
            r#"{"servers":["nats://h:1"],"stream":"S","consumers":[
                {"durable_name":"a","filter_subject":"a"},{"durable_name":"all"}]}"#,
        )
    }

    #[test]
    fn disjoint_explicit_consumers_are_kept_as_given() {
        let config = config(
            r#"{"servers":["nats://h:1"],"stream":"S","consumers":[
                {"durable_name":"eu","filter_subject":"orders.eu.>","max_ack_pending":5},
                {"durable_name":"us","filter_subject":"orders.us.>"}]}"#,
        );
        let specs = plan(&config, &["ignored".to_string()]).unwrap();
        assert_eq!(specs.len(), 2);
        assert_eq!(specs[0].name, "eu");
        assert_eq!(specs[0].max_ack_pending, 5);
        assert_eq!(specs[1].filter_or_empty(), "orders.us.>");
    }
}
