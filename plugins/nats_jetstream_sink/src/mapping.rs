//! One Iggy message → one NATS publish: subject, headers and payload.

use crate::config::{MessageIdSource, SinkConfig};
use crate::subject_template::SubjectTemplate;
use async_nats::{HeaderMap, HeaderName, HeaderValue};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use iggy_common::HeaderKind;
use iggy_connector_sdk::{ConsumedMessage, TopicMetadata};

#[derive(Clone)]
pub struct Outgoing {
    pub subject: String,
    pub headers: HeaderMap,
    pub payload: bytes::Bytes,
    pub offset: u64,
}

pub struct Mapper {
    template: SubjectTemplate,
    message_id: MessageIdSource,
    metadata_headers: bool,
    expected_stream: Option<String>,
}

/// Adds a header if NATS accepts its name and value (printable ASCII names
/// without `:`, values without CR/LF): Iggy headers may hold anything, and
/// async-nats panics on what it does not accept when given plain strings.
fn insert(headers: &mut HeaderMap, name: &str, value: &str) -> bool {
    match (name.parse::<HeaderName>(), value.parse::<HeaderValue>()) {
        (Ok(name), Ok(value)) => {
            headers.insert(name, value);
            true
        }
        _ => false,
    }
}

impl Mapper {
    pub fn new(config: &SinkConfig) -> Result<Self, String> {
        Ok(Self {
            template: SubjectTemplate::parse(&config.subject)?,
            message_id: config.message_id,
            metadata_headers: config.metadata_headers,
            expected_stream: config.stream.clone().filter(|_| config.expected_stream),
        })
    }

    pub fn template(&self) -> &SubjectTemplate {
        &self.template
    }

    /// Maps one message; `Err` says why its subject cannot be built.
    pub fn map(
        &self,
        topic: &TopicMetadata,
        partition: u32,
        message: ConsumedMessage,
    ) -> Result<Outgoing, String> {
        let subject = self.template.render(topic, partition, &message)?;
        let mut headers = HeaderMap::new();
        if let Some(user_headers) = &message.headers {
            for (key, value) in user_headers {
                let Ok(name) = key.as_str() else { continue };
                let text = match value.kind() {
                    HeaderKind::String => value.as_str().map(str::to_string).unwrap_or_default(),
                    HeaderKind::Raw => STANDARD.encode(value.as_bytes()),
                    _ => value.to_string_value(),
                };
                insert(&mut headers, name, &text);
            }
        }
        if self.metadata_headers {
            insert(&mut headers, "Iggy-Stream", &topic.stream);
            insert(&mut headers, "Iggy-Topic", &topic.topic);
            insert(&mut headers, "Iggy-Partition", &partition.to_string());
            insert(&mut headers, "Iggy-Offset", &message.offset.to_string());
            insert(
                &mut headers,
                "Iggy-Timestamp",
                &message.timestamp.to_string(),
            );
            insert(
                &mut headers,
                "Iggy-Message-Id",
                &format!("{:032x}", message.id),
            );
        }
        match self.message_id {
            MessageIdSource::Position => {
                let id = format!(
                    "{}/{}/{partition}/{}",
                    topic.stream, topic.topic, message.offset
                );
                if !insert(&mut headers, "Nats-Msg-Id", &id) {
                    return Err(format!("message id `{id}` is not a valid header value"));
                }
            }
            MessageIdSource::IggyId => {
                insert(&mut headers, "Nats-Msg-Id", &format!("{:032x}", message.id));
            }
            MessageIdSource::None => {}
        }
        if let Some(stream) = &self.expected_stream {
            insert(&mut headers, "Nats-Expected-Stream", stream);
        }
        let payload = message
            .payload
            .try_into_vec()
            .map_err(|e| format!("payload cannot be encoded: {e}"))?;
        Ok(Outgoing {
            subject,
            headers,
            payload: payload.into(),
            offset: message.offset,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use iggy_common::HeaderKey;
    type HeaderValue = iggy_common::HeaderValue;
    use iggy_connector_sdk::Payload;
    use std::collections::BTreeMap;

    fn config(extra: serde_json::Value) -> SinkConfig {
        let mut json = serde_json::json!({"servers": ["nats://x:1"], "subject": "orders.{topic}"});
        for (k, v) in extra.as_object().unwrap() {
            json[k] = v.clone();
        }
        serde_json::from_value(json).unwrap()
    }

    fn message() -> ConsumedMessage {
        ConsumedMessage {
            id: 0xab,
            offset: 41,
            checksum: 0,
            timestamp: 1_700_000_000_000_000,
            origin_timestamp: 0,
            headers: Some(BTreeMap::from([
                (
                    HeaderKey::try_from("region").unwrap(),
                    HeaderValue::try_from("eu").unwrap(),
                ),
                (
                    HeaderKey::try_from("attempt").unwrap(),
                    HeaderValue::from(3u64),
                ),
                (
                    HeaderKey::try_from("blob").unwrap(),
                    HeaderValue::try_from(vec![0u8, 255]).unwrap(),
                ),
                (
                    HeaderKey::try_from("bad:name").unwrap(),
                    HeaderValue::from(true),
                ),
                (
                    HeaderKey::try_from("multi").unwrap(),
                    HeaderValue::try_from("a\r\nb").unwrap(),
                ),
                (HeaderKey::from(7u8), HeaderValue::from(true)),
            ])),
            payload: Payload::Raw(b"hello".to_vec()),
        }
    }

    fn topic() -> TopicMetadata {
        TopicMetadata {
            stream: "shop".into(),
            topic: "created".into(),
        }
    }

    fn header(out: &Outgoing, name: &str) -> Option<String> {
        let name = name.parse::<HeaderName>().ok()?;
        out.headers.get(name).map(|v| v.as_str().to_string())
    }

    #[test]
    fn headers_payload_and_position_id() {
        let mapper = Mapper::new(&config(serde_json::json!({}))).unwrap();
        let out = mapper.map(&topic(), 2, message()).unwrap();
        assert_eq!(out.subject, "orders.created");
        assert_eq!(&out.payload[..], b"hello");
        assert_eq!(header(&out, "region").as_deref(), Some("eu"));
        assert_eq!(header(&out, "attempt").as_deref(), Some("3"));
        assert_eq!(header(&out, "blob").as_deref(), Some("AP8="));
        assert_eq!(
            header(&out, "bad:name"),
            None,
            "invalid NATS header names are left out"
        );
        assert_eq!(
            header(&out, "multi"),
            None,
            "values with CR/LF are left out"
        );
        assert_eq!(
            header(&out, "Nats-Msg-Id").as_deref(),
            Some("shop/created/2/41")
        );
        assert_eq!(header(&out, "Iggy-Offset").as_deref(), Some("41"));
        assert_eq!(header(&out, "Iggy-Partition").as_deref(), Some("2"));
        assert_eq!(header(&out, "Nats-Expected-Stream"), None);
    }

    #[test]
    fn id_choices_and_expected_stream() {
        let mapper = Mapper::new(&config(serde_json::json!({
            "message_id": "iggy_id", "stream": "ORDERS", "expected_stream": true, "metadata_headers": false
        })))
        .unwrap();
        let out = mapper.map(&topic(), 1, message()).unwrap();
        assert_eq!(
            header(&out, "Nats-Msg-Id").as_deref(),
            Some("000000000000000000000000000000ab")
        );
        assert_eq!(
            header(&out, "Nats-Expected-Stream").as_deref(),
            Some("ORDERS")
        );
        assert_eq!(header(&out, "Iggy-Offset"), None);
        let none = Mapper::new(&config(serde_json::json!({"message_id": "none"}))).unwrap();
        assert_eq!(
            header(&none.map(&topic(), 1, message()).unwrap(), "Nats-Msg-Id"),
            None
        );
    }
}
