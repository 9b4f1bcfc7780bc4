//! At `open`: make sure a JetStream stream will capture what the sink
//! publishes (creating it when configured), so misrouting fails early and
//! clearly instead of on every batch.

use crate::config::{Retention, SinkConfig, Storage};
use crate::subject_template::SubjectTemplate;
use async_nats::jetstream::{self, stream};
use iggy_connector_shared::nats::subjects;

fn stream_config(
    name: &str,
    settings: &crate::config::StreamSettings,
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
        ..Default::default()
    }
}

/// Returns the name of the stream that captures the sink's subjects.
pub async fn ensure_stream(
    js: &jetstream::Context,
    config: &SinkConfig,
    template: &SubjectTemplate,
) -> Result<String, String> {
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
    let sample = template.wildcard_form().replace('*', "x");
    match (&config.stream, template.fixed()) {
        (Some(name), _) => {
            let mut found = js
                .get_stream(name)
                .await
                .map_err(|e| format!("stream: `{name}` cannot be read: {e}; create it or set create_stream"))?;
            let info = found.info().await.map_err(|e| format!("stream `{name}`: {e}"))?;
            let wanted = template.fixed().unwrap_or(&sample);
            let captured = info.config.subjects.iter().any(|filter| subjects::matches(filter, wanted));
            match (captured, template.fixed()) {
                (true, _) => {}
                (false, Some(subject)) => {
                    return Err(format!(
                        "stream `{name}` does not capture subject `{subject}` (its subjects: {:?})",
                        info.config.subjects
                    ));
                }
                (false, None) => tracing::warn!(
                    "stream `{name}` may not capture every subject of template `{}` (its subjects: {:?}); messages it does not capture fail",
                    config.subject,
                    info.config.subjects
                ),
            }
            Ok(name.clone())
        }
        (None, Some(subject)) => js
            .stream_by_subject(subject)
            .await
            .map_err(|e| format!("no JetStream stream captures subject `{subject}` ({e}); create one or set stream and create_stream")),
        (None, None) => js.stream_by_subject(sample.as_str()).await.map_err(|e| {
            format!(
                "no JetStream stream captures subjects like `{sample}` from template `{}` ({e}); set `stream` (and create_stream)",
                config.subject
            )
        }),
    }
}
