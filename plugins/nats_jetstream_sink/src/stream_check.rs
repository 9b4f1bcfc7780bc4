//! At `open`: make sure a JetStream stream will capture what the sink
//! publishes (creating it when configured), so misrouting fails early and
//! clearly instead of on every batch.

use crate::ack::FullSubject;
use crate::config::{Discard, MessageIdSource, Retention, SinkConfig, Storage, StreamSettings};
use crate::subject_template::SubjectTemplate;
use async_nats::jetstream::{self, stream};
use iggy_connector_nats_jetstream_common::subjects;
use std::time::Duration;

fn stream_config(
    name: &str,
    settings: &StreamSettings,
    template: &SubjectTemplate,
) -> stream::Config {
    let subjects = match settings.subjects.is_empty() {
        true => vec![template.wildcard_form()],
        false => settings.subjects.clone(),
    };
    stream::Config {
        name: name.to_string(),
        subjects,
        storage: match settings.storage {
            Storage::File => stream::StorageType::File,
            Storage::Memory => stream::StorageType::Memory,
        },
        retention: match settings.retention {
            Retention::Limits => stream::RetentionPolicy::Limits,
            Retention::Interest => stream::RetentionPolicy::Interest,
            Retention::Workqueue => stream::RetentionPolicy::WorkQueue,
        },
        num_replicas: settings.replicas,
        duplicate_window: settings.duplicate_window,
        max_age: settings.max_age,
        max_bytes: settings.max_bytes,
        max_messages: settings.max_messages,
        max_messages_per_subject: settings.max_messages_per_subject,
        discard: match settings.discard {
            Discard::Old => stream::DiscardPolicy::Old,
            Discard::New => stream::DiscardPolicy::New,
        },
        discard_new_per_subject: settings.discard_new_per_subject,
        ..Default::default()
    }
}

/// The stream the sink publishes into, as read at open.
pub struct Target {
    pub name: String,
    pub full_subject: FullSubject,
}

/// Makes sure a stream captures the sink's subjects (creating it when
/// configured) and reads what its refusals will mean.
pub async fn ensure_stream(
    js: &jetstream::Context,
    config: &SinkConfig,
    template: &SubjectTemplate,
) -> Result<Target, String> {
    if let (Some(name), Some(settings)) = (&config.stream, &config.create_stream) {
        let created = js
            .get_or_create_stream(stream_config(name, settings, template))
            .await
            .map_err(|e| format!("create_stream: cannot create or read stream `{name}`: {e}"))?;
        tracing::info!(
            "JetStream stream `{name}` is ready ({} subjects)",
            created.cached_info().config.subjects.len()
        );
    }
    let name = stream_name(js, config, template).await?;
    let mut found = js.get_stream(&name).await.map_err(|e| {
        format!("stream: `{name}` cannot be read: {e}; create it or set create_stream")
    })?;
    let info = found
        .info()
        .await
        .map_err(|e| format!("stream `{name}`: {e}"))?;
    if config.stream.is_some() {
        check_capture(&name, &info.config.subjects, config, template)?;
    }
    if let Some(gap) = dedup_gap(&name, info.config.duplicate_window, config) {
        tracing::warn!("{gap}");
    }
    let full_subject = full_subject(&name, &info.config, config.create_stream.as_ref())?;
    Ok(Target { name, full_subject })
}

/// A message stored just before an outage whose PubAck was lost is published
/// again when the server is back; only the duplicate window makes it a
/// duplicate. Retries that outlast the window can store it twice.
fn dedup_gap(name: &str, window: Duration, config: &SinkConfig) -> Option<String> {
    if config.message_id == MessageIdSource::None {
        return None;
    }
    let retries_for = config.retry.max_elapsed?;
    (window < retries_for).then(|| {
        format!(
            "stream `{name}` remembers message ids for {window:?} but retry.max_elapsed is {retries_for:?}: \
             a batch retried after {window:?} may be stored twice; raise the stream's duplicate_window \
             (create_stream.duplicate_window for a new stream) or lower retry.max_elapsed"
        )
    })
}

async fn stream_name(
    js: &jetstream::Context,
    config: &SinkConfig,
    template: &SubjectTemplate,
) -> Result<String, String> {
    if let Some(name) = &config.stream {
        return Ok(name.clone());
    }
    match template.fixed() {
        Some(subject) => js
            .stream_by_subject(subject)
            .await
            .map_err(|e| format!("no JetStream stream captures subject `{subject}` ({e}); create one or set stream and create_stream")),
        None => {
            let sample = sample_subject(template);
            js.stream_by_subject(sample.as_str()).await.map_err(|e| {
                format!(
                    "no JetStream stream captures subjects like `{sample}` from template `{}` ({e}); set `stream` (and create_stream)",
                    config.subject
                )
            })
        }
    }
}

/// A subject the template can produce: every placeholder filled with `x`.
fn sample_subject(template: &SubjectTemplate) -> String {
    template.wildcard_form().replace('*', "x")
}

fn check_capture(
    name: &str,
    stream_subjects: &[String],
    config: &SinkConfig,
    template: &SubjectTemplate,
) -> Result<(), String> {
    let sample = sample_subject(template);
    let wanted = template.fixed().unwrap_or(&sample);
    if stream_subjects
        .iter()
        .any(|filter| subjects::matches(filter, wanted))
    {
        return Ok(());
    }
    match template.fixed() {
        Some(subject) => Err(format!(
            "stream `{name}` does not capture subject `{subject}` (its subjects: {stream_subjects:?})"
        )),
        None => {
            tracing::warn!(
                "stream `{name}` may not capture every subject of template `{}` (its subjects: {stream_subjects:?}); messages it does not capture fail",
                config.subject
            );
            Ok(())
        }
    }
}

/// A stream keeping one message per subject and refusing the next counts
/// that refusal as a duplicate: with a subject per message key, the key's
/// message is stored already (deduplication without the time window).
fn full_subject(
    name: &str,
    stream: &stream::Config,
    wanted: Option<&StreamSettings>,
) -> Result<FullSubject, String> {
    let refuses_per_subject =
        stream.discard == stream::DiscardPolicy::New && stream.discard_new_per_subject;
    let as_wanted = |w: &StreamSettings| {
        refuses_per_subject && w.max_messages_per_subject == stream.max_messages_per_subject
    };
    if wanted.is_some_and(|w| w.discard_new_per_subject && !as_wanted(w)) {
        // get_or_create_stream leaves an existing stream as it is.
        return Err(format!(
            "create_stream.discard_new_per_subject: stream `{name}` exists with discard = {:?}, discard_new_per_subject = {}, max_messages_per_subject = {}, not as configured; update the stream or drop those settings",
            stream.discard, stream.discard_new_per_subject, stream.max_messages_per_subject
        ));
    }
    if refuses_per_subject && stream.max_messages_per_subject == 1 {
        tracing::info!(
            "stream `{name}` keeps one message per subject and refuses the next: such refusals count as duplicates"
        );
        return Ok(FullSubject::Duplicate);
    }
    Ok(FullSubject::Unstorable)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(extra: serde_json::Value) -> SinkConfig {
        let mut json =
            serde_json::json!({"servers": ["nats://127.0.0.1:4222"], "subject": "orders"});
        json.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn a_created_stream_remembers_ids_as_long_as_the_default_retries_go_on() {
        let config = config(serde_json::json!({"stream": "ORDERS", "create_stream": {}}));
        let settings = config.create_stream.as_ref().unwrap();
        let template = SubjectTemplate::parse("orders").unwrap();
        let created = stream_config("ORDERS", settings, &template);
        assert_eq!(Some(created.duplicate_window), config.retry.max_elapsed);
        assert!(dedup_gap("ORDERS", created.duplicate_window, &config).is_none());
    }

    #[test]
    fn a_window_shorter_than_the_retries_is_named_with_both_settings() {
        let gap = dedup_gap(
            "ORDERS",
            Duration::from_secs(120),
            &config(serde_json::json!({})),
        )
        .unwrap();
        assert!(gap.contains("stream `ORDERS`"), "{gap}");
        assert!(gap.contains("retry.max_elapsed is 300s"), "{gap}");
        assert!(gap.contains("create_stream.duplicate_window"), "{gap}");
    }

    #[test]
    fn no_gap_without_message_ids_or_without_a_retry_deadline() {
        let short = Duration::from_secs(1);
        let no_ids = config(serde_json::json!({"message_id": "none"}));
        assert!(dedup_gap("S", short, &no_ids).is_none());
        let bounded = config(serde_json::json!({"retry": {"max_elapsed": "1s"}}));
        assert!(dedup_gap("S", short, &bounded).is_none());
    }
}
