//! Finding, creating and repositioning the durable pull consumers.
//!
//! The source's own progress (the last stream sequence in Iggy) decides
//! where a consumer starts: one that is missing is created just after it,
//! and one that has handed out messages beyond it (a batch that never
//! reached Iggy, or a consumer recreated to start later) is recreated just
//! after it, because NATS would send those messages back only after
//! `ack_wait` and behind newer ones.

use crate::client::acks::AckMode;
use crate::plan::ConsumerSpec;
use async_nats::jetstream::ErrorCode;
use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, FromConsumer, PullConsumer, pull};
use async_nats::jetstream::context::ConsumerInfoErrorKind;
use async_nats::jetstream::stream::{ConsumerErrorKind, RawMessageErrorKind, Stream};
use std::sync::Arc;

/// A durable consumer ready to fetch from.
pub struct OpenedConsumer {
    pub consumer: Arc<PullConsumer>,
    pub ack_mode: AckMode,
    /// Everything of the consumer up to this stream sequence is done: stored
    /// in Iggy per the saved progress or, without any, acknowledged in NATS.
    pub position: u64,
    /// The consumer's delivery counter so far.
    pub last_delivery: u64,
    /// How many unacknowledged messages the server lets it have; `None` is unlimited.
    pub max_ack_pending: Option<usize>,
    /// Its settings, to recreate it with.
    pub config: pull::Config,
}

/// Opens the consumer `spec` names, creating or repositioning it as needed.
/// `saved` is the last stream sequence in Iggy for it, if known.
pub async fn open(
    stream: &Stream,
    spec: &ConsumerSpec,
    saved: Option<u64>,
) -> Result<OpenedConsumer, String> {
    let name = &spec.name;
    let info = match stream.consumer_info(name).await {
        Ok(info) => info,
        Err(error) if error.kind() == ConsumerInfoErrorKind::NotFound => {
            let start = saved.map_or(spec.start.deliver_policy(), after);
            let consumer = stream
                .create_consumer(new_config(spec, start))
                .await
                .map_err(|e| format!("consumer `{name}`: cannot create it: {e}"))?;
            tracing::info!(
                "created durable consumer `{name}` (filter `{}`, start {start:?})",
                spec.filter_or_empty()
            );
            let position = saved.unwrap_or(consumer.cached_info().ack_floor.stream_sequence);
            return opened(consumer, position);
        }
        Err(error) => return Err(format!("consumer `{name}`: cannot read it: {error}")),
    };
    // Creating a durable that exists with another filter would silently
    // change its filter, so an existing one is compared first.
    if info.config.filter_subject != spec.filter_or_empty() {
        return Err(format!(
            "consumer `{name}` exists with filter subject `{}` but is configured with `{}`; delete it or use another durable_name",
            info.config.filter_subject,
            spec.filter_or_empty()
        ));
    }
    if info.config.deliver_subject.is_some() {
        return Err(format!(
            "consumer `{name}` is a push consumer; the source reads durable pull consumers"
        ));
    }
    let config = pull::Config::try_from_consumer_config(info.config.clone())
        .map_err(|e| format!("consumer `{name}`: {e}"))?;
    let position = saved.unwrap_or(info.ack_floor.stream_sequence);
    let delivered = info.delivered.stream_sequence;
    if let Some(first) = first_handed_out_beyond(stream, spec, position, delivered).await {
        tracing::info!(
            "consumer `{name}` handed out messages past the saved progress (stream sequence {first} and up to {delivered}, while {position} is done); recreating it to start at {} so they come again, in order",
            position + 1
        );
        return reposition(stream, &config, position).await;
    }
    let consumer = stream
        .get_consumer::<pull::Config>(name)
        .await
        .map_err(|e| format!("consumer `{name}`: cannot open it: {e}"))?;
    opened(consumer, position)
}

/// The first message of the consumer's filter after `position` that it has
/// already handed out (up to stream sequence `delivered`), if any. The
/// delivered sequence alone cannot tell: for a filtered consumer the server
/// moves it past messages of other subjects too. When the stream cannot
/// answer, `position + 1` is assumed (recreating is always safe).
async fn first_handed_out_beyond(
    stream: &Stream,
    spec: &ConsumerSpec,
    position: u64,
    delivered: u64,
) -> Option<u64> {
    if delivered <= position {
        return None;
    }
    let next = stream
        .raw_message_builder()
        .sequence(position + 1)
        .next_by_subject(spec.filter.as_deref().unwrap_or(">"))
        .send()
        .await;
    match next {
        Ok(message) => (message.sequence <= delivered).then_some(message.sequence),
        Err(error) if error.kind() == RawMessageErrorKind::NoMessageFound => None,
        Err(error) => {
            tracing::warn!(
                "consumer `{}`: cannot look up its next message after stream sequence {position} ({error}); recreating it to be safe",
                spec.name
            );
            Some(position + 1)
        }
    }
}

/// Deletes the consumer (if it still exists) and creates it again with the
/// same settings, starting just after stream sequence `position`.
pub async fn reposition(
    stream: &Stream,
    config: &pull::Config,
    position: u64,
) -> Result<OpenedConsumer, String> {
    let name = config.durable_name.as_deref().unwrap_or_default();
    match stream.delete_consumer(name).await {
        Ok(_) => {}
        Err(error)
            if matches!(error.kind(), ConsumerErrorKind::JetStream(ref e)
                if e.error_code() == ErrorCode::CONSUMER_NOT_FOUND) => {}
        Err(error) => return Err(format!("consumer `{name}`: cannot delete it: {error}")),
    }
    let mut config = config.clone();
    config.deliver_policy = after(position);
    let consumer = stream
        .create_consumer(config)
        .await
        .map_err(|e| format!("consumer `{name}`: cannot recreate it: {e}"))?;
    opened(consumer, position)
}

fn after(position: u64) -> DeliverPolicy {
    DeliverPolicy::ByStartSequence {
        start_sequence: position + 1,
    }
}

/// A consumer the source creates: AckPolicy::All, so one ack per batch does.
fn new_config(spec: &ConsumerSpec, start: DeliverPolicy) -> pull::Config {
    pull::Config {
        durable_name: Some(spec.name.clone()),
        description: Some("Apache Iggy NATS JetStream source".into()),
        filter_subject: spec.filter_or_empty().to_string(),
        deliver_policy: start,
        ack_policy: AckPolicy::All,
        ack_wait: spec.ack_wait,
        max_ack_pending: spec.max_ack_pending,
        ..Default::default()
    }
}

fn opened(consumer: PullConsumer, position: u64) -> Result<OpenedConsumer, String> {
    let info = consumer.cached_info();
    let name = &info.name;
    let ack_mode = match info.config.ack_policy {
        AckPolicy::All => AckMode::All,
        AckPolicy::Explicit => AckMode::Explicit,
        AckPolicy::None => {
            return Err(format!(
                "consumer `{name}` uses ack policy none: messages could not be redelivered after a failed batch; use explicit or all"
            ));
        }
    };
    let config = pull::Config::try_from_consumer_config(info.config.clone())
        .map_err(|e| format!("consumer `{name}`: {e}"))?;
    Ok(OpenedConsumer {
        ack_mode,
        position,
        last_delivery: info.delivered.consumer_sequence,
        max_ack_pending: usize::try_from(info.config.max_ack_pending)
            .ok()
            .filter(|n| *n > 0),
        config,
        consumer: Arc::new(consumer),
    })
}
