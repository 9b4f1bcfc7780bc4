//! One Iggy message → one Pravega event: the payload bytes as the event
//! (Pravega events have no headers) and the routing key the config asks for.

use crate::config::{MissingRoutingKey, RoutingKey};
use iggy_common::HeaderKey;
use iggy_connector_pravega_common::client::NewEvent;
use iggy_connector_sdk::{ConsumedMessage, Payload};
use simd_json::prelude::{TypedScalarValue, ValueAsScalar, ValueObjectAccess};

/// An event ready for the writer, with the Iggy offset it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutEvent {
    pub offset: u64,
    pub routing_key: Option<String>,
    pub payload: Vec<u8>,
}

impl OutEvent {
    /// The event as the client takes it.
    pub fn into_new(self) -> NewEvent {
        NewEvent {
            routing_key: self.routing_key,
            payload: self.payload,
        }
    }
}

/// Why a message was not turned into an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    TooLarge { size: usize, limit: usize },
    Unreadable(String),
    NoRoutingKey,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::TooLarge { size, limit } => write!(
                f,
                "event of {size} bytes is above the limit of {limit} bytes (max_event_bytes)"
            ),
            Self::Unreadable(why) => write!(f, "payload cannot be written: {why}"),
            Self::NoRoutingKey => f.write_str(
                "its routing key (routing_key) is absent (missing_routing_key = \"skip\")",
            ),
        }
    }
}

pub struct Mapper {
    routing: RoutingKey,
    missing: MissingRoutingKey,
    max_event_bytes: usize,
}

impl Mapper {
    pub fn new(routing: RoutingKey, missing: MissingRoutingKey, max_event_bytes: usize) -> Self {
        Self {
            routing,
            missing,
            max_event_bytes,
        }
    }

    /// The event, and whether the configured routing key was missing (the
    /// event then goes without one, under `missing_routing_key = "no_key"`).
    pub fn event(
        &self,
        partition: u32,
        message: &ConsumedMessage,
    ) -> Result<(OutEvent, bool), Refusal> {
        let payload = message
            .payload
            .try_to_bytes()
            .map_err(|e| Refusal::Unreadable(e.to_string()))?;
        if payload.len() > self.max_event_bytes {
            return Err(Refusal::TooLarge {
                size: payload.len(),
                limit: self.max_event_bytes,
            });
        }
        let routing_key = match &self.routing {
            RoutingKey::None => None,
            RoutingKey::Partition => Some(partition.to_string()),
            RoutingKey::Field(path) => field(&message.payload, path),
            RoutingKey::Header(name) => header(message, name),
        };
        let missing = self.routing != RoutingKey::None && routing_key.is_none();
        if missing && self.missing == MissingRoutingKey::Skip {
            return Err(Refusal::NoRoutingKey);
        }
        Ok((
            OutEvent {
                offset: message.offset,
                routing_key,
                payload,
            },
            missing,
        ))
    }
}

/// A JSON payload field by dotted path: strings as they are, other
/// scalars as their JSON text; absent, null or not a scalar is `None`.
fn field(payload: &Payload, path: &str) -> Option<String> {
    let Payload::Json(value) = payload else {
        return None;
    };
    let found = path
        .split('.')
        .try_fold(value, |value, name| value.get(name))?;
    if let Some(text) = found.as_str() {
        return Some(text.to_string());
    }
    (!found.is_null() && (found.is_bool() || found.is_number())).then(|| found.to_string())
}

fn header(message: &ConsumedMessage, name: &str) -> Option<String> {
    let key = HeaderKey::try_from(name).ok()?;
    message
        .headers
        .as_ref()?
        .get(&key)
        .map(|value| value.to_string_value())
}

#[cfg(test)]
mod tests {
    use super::*;
    use iggy_common::HeaderValue;

    fn message(payload: Payload) -> ConsumedMessage {
        ConsumedMessage {
            id: 1,
            offset: 7,
            checksum: 0,
            timestamp: 0,
            origin_timestamp: 0,
            headers: Some(
                [(
                    HeaderKey::try_from("tenant").unwrap(),
                    HeaderValue::try_from("acme").unwrap(),
                )]
                .into(),
            ),
            payload,
        }
    }

    fn json(text: &str) -> Payload {
        let mut bytes = text.as_bytes().to_vec();
        Payload::Json(simd_json::to_owned_value(&mut bytes).unwrap())
    }

    fn key(routing: RoutingKey, payload: Payload) -> (Option<String>, bool) {
        let (event, missing) = Mapper::new(routing, MissingRoutingKey::NoKey, 1024)
            .event(3, &message(payload))
            .unwrap();
        (event.routing_key, missing)
    }

    #[test]
    fn routing_keys_from_field_header_partition_or_none() {
        let order = r#"{"customer":{"id":"c-9","n":12,"vip":true},"x":null}"#;
        assert_eq!(
            key(RoutingKey::Field("customer.id".into()), json(order)),
            (Some("c-9".into()), false)
        );
        assert_eq!(
            key(RoutingKey::Field("customer.n".into()), json(order)),
            (Some("12".into()), false)
        );
        assert_eq!(
            key(RoutingKey::Field("customer.vip".into()), json(order)),
            (Some("true".into()), false)
        );
        for absent in ["x", "customer", "customer.none", "nope.deeper"] {
            assert_eq!(
                key(RoutingKey::Field(absent.into()), json(order)),
                (None, true),
                "{absent}"
            );
        }
        assert_eq!(
            key(
                RoutingKey::Field("a".into()),
                Payload::Raw(b"{\"a\":1}".to_vec())
            ),
            (None, true),
            "raw payloads have no fields"
        );
        assert_eq!(
            key(RoutingKey::Header("tenant".into()), json(order)),
            (Some("acme".into()), false)
        );
        assert_eq!(
            key(RoutingKey::Header("other".into()), json(order)),
            (None, true)
        );
        assert_eq!(
            key(RoutingKey::Partition, json(order)),
            (Some("3".into()), false)
        );
        assert_eq!(key(RoutingKey::None, json(order)), (None, false));
    }

    #[test]
    fn payload_bytes_and_size_limit() {
        let mapper = Mapper::new(RoutingKey::None, MissingRoutingKey::Skip, 5);
        let (event, _) = mapper
            .event(1, &message(Payload::Text("hello".into())))
            .unwrap();
        assert_eq!(event.payload, b"hello");
        assert_eq!(event.offset, 7);
        let refusal = mapper
            .event(1, &message(Payload::Raw(vec![0; 6])))
            .unwrap_err();
        assert_eq!(refusal, Refusal::TooLarge { size: 6, limit: 5 });
        assert!(refusal.to_string().contains("max_event_bytes"));
    }

    #[test]
    fn a_missing_routing_key_skips_the_message_by_default() {
        let mapper = Mapper::new(
            RoutingKey::Header("absent".into()),
            MissingRoutingKey::Skip,
            1024,
        );
        let refusal = mapper.event(1, &message(json("{}"))).unwrap_err();
        assert_eq!(refusal, Refusal::NoRoutingKey);
        assert!(refusal.to_string().contains("routing_key"), "{refusal}");
    }
}
