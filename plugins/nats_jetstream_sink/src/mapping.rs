//! One Iggy message → one NATS publish: subject, headers and payload.

use crate::config::{MessageIdSource, SinkConfig};
use crate::subject_template::SubjectTemplate;
use async_nats::{HeaderMap, HeaderName, HeaderValue, Subject};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use iggy_common::HeaderKind;
use iggy_connector_sdk::{ConsumedMessage, Payload, TopicMetadata};

#[derive(Clone)]
/// Header names parsed once, not per message.
struct Names {
    stream: HeaderName,
    topic: HeaderName,
    partition: HeaderName,
    offset: HeaderName,
    timestamp: HeaderName,
    iggy_id: HeaderName,
    msg_id: HeaderName,
    expected_stream: HeaderName,
}

impl Names {
    fn new() -> Self {
        let name = |text: &str| {
            text.parse::<HeaderName>()
                .expect("a valid constant header name")
        };
        Self {
            stream: name("Iggy-Stream"),
            topic: name("Iggy-Topic"),
            partition: name("Iggy-Partition"),
            offset: name("Iggy-Offset"),
            timestamp: name("Iggy-Timestamp"),
            iggy_id: name("Iggy-Message-Id"),
            msg_id: name("Nats-Msg-Id"),
            expected_stream: name("Nats-Expected-Stream"),
        }
    }
}

pub struct Mapper {
    template: SubjectTemplate,
    fixed_subject: Option<Subject>,
    message_id: MessageIdSource,
    metadata_headers: bool,
    allow_nats_headers: bool,
    expected_stream: Option<HeaderValue>,
    names: Names,
}

/// `Nats-*` header names are JetStream's controls (any case: NATS header
/// names are case-insensitive).
fn is_nats_control(name: &str) -> bool {
    name.as_bytes()
        .get(..5)
        .is_some_and(|prefix| prefix.eq_ignore_ascii_case(b"nats-"))
}

/// Adds a header if NATS accepts its name and value (printable ASCII names
/// without `:`, values without CR/LF): Iggy headers may hold anything, and
/// async-nats panics on what it does not accept when given plain strings.
fn insert(headers: &mut HeaderMap, name: &str, value: &str) {
    if let (Ok(name), Ok(value)) = (name.parse::<HeaderName>(), value.parse::<HeaderValue>()) {
        headers.insert(name, value);
    }
}

/// Values the plugin makes itself (numbers, ids, names without line breaks).
fn own(headers: &mut HeaderMap, name: &HeaderName, value: String) {
    if let Ok(value) = value.parse::<HeaderValue>() {
        headers.insert(name.clone(), value);
    }
}

impl Mapper {
    pub fn new(config: &SinkConfig) -> Result<Self, String> {
        let template = SubjectTemplate::parse(&config.subject)?;
        let expected_stream = match config.stream.as_deref().filter(|_| config.expected_stream) {
            Some(stream) => Some(
                stream
                    .parse::<HeaderValue>()
                    .map_err(|e| format!("stream: {e}"))?,
            ),
            None => None,
        };
        Ok(Self {
            fixed_subject: template.fixed().map(|s| Subject::from(s.to_string())),
            template,
            message_id: config.message_id,
            metadata_headers: config.metadata_headers,
            allow_nats_headers: config.allow_nats_headers,
            expected_stream,
            names: Names::new(),
        })
    }

    pub fn template(&self) -> &SubjectTemplate {
        &self.template
    }

    /// The names of the message's Iggy headers that are left out as
    /// JetStream controls (none when `allow_nats_headers` is set).
    pub fn withheld_headers(&self, message: &ConsumedMessage) -> Vec<String> {
        if self.allow_nats_headers {
            return Vec::new();
        }
        message
            .headers
            .iter()
            .flatten()
            .filter_map(|(key, _)| key.as_str().ok().filter(|name| is_nats_control(name)))
            .map(str::to_string)
            .collect()
    }

    /// The message's subject, or why it cannot be built.
    pub fn subject(
        &self,
        topic: &TopicMetadata,
        partition: u32,
        message: &ConsumedMessage,
    ) -> Result<Subject, String> {
        match &self.fixed_subject {
            Some(subject) => Ok(subject.clone()),
            None => self
                .template
                .render(topic, partition, message)
                .map(Subject::from),
        }
    }

    /// What stays the same for every message of a batch, worked out once.
    pub fn for_batch<'a>(&'a self, topic: &'a TopicMetadata, partition: u32) -> BatchMapper<'a> {
        let prefix = format!("{}/{}/{partition}/", topic.stream, topic.topic);
        BatchMapper {
            mapper: self,
            topic,
            partition,
            // Iggy names hold no CR/LF, so this only guards the header's rule.
            position_id_prefix: prefix.parse::<HeaderValue>().is_ok().then_some(prefix),
        }
    }
}

/// Takes a message's payload as the bytes to publish: a raw or text payload
/// is moved, not copied; a JSON one is serialized once for every attempt.
pub fn take_payload(message: &mut ConsumedMessage) -> Result<Bytes, String> {
    std::mem::replace(&mut message.payload, Payload::Raw(Vec::new()))
        .try_into_vec()
        .map(Bytes::from)
        .map_err(|e| format!("payload cannot be encoded: {e}"))
}

pub struct BatchMapper<'a> {
    mapper: &'a Mapper,
    topic: &'a TopicMetadata,
    partition: u32,
    /// `<stream>/<topic>/<partition>/`, to which each message adds its offset.
    position_id_prefix: Option<String>,
}

impl BatchMapper<'_> {
    /// The NATS headers for a message: its Iggy headers, metadata, `Nats-Msg-Id`.
    pub fn headers(&self, message: &ConsumedMessage) -> HeaderMap {
        let mut headers = HeaderMap::new();
        if let Some(user_headers) = &message.headers {
            for (key, value) in user_headers {
                let Ok(name) = key.as_str() else { continue };
                if !self.mapper.allow_nats_headers && is_nats_control(name) {
                    continue;
                }
                let text = match value.kind() {
                    HeaderKind::String => value.as_str().map(str::to_string).unwrap_or_default(),
                    HeaderKind::Raw => STANDARD.encode(value.as_bytes()),
                    _ => value.to_string_value(),
                };
                insert(&mut headers, name, &text);
            }
        }
        let (mapper, topic) = (self.mapper, self.topic);
        let names = &mapper.names;
        if mapper.metadata_headers {
            own(&mut headers, &names.stream, topic.stream.clone());
            own(&mut headers, &names.topic, topic.topic.clone());
            headers.insert(names.partition.clone(), HeaderValue::from(self.partition));
            headers.insert(names.offset.clone(), HeaderValue::from(message.offset));
            headers.insert(
                names.timestamp.clone(),
                HeaderValue::from(message.timestamp),
            );
            own(&mut headers, &names.iggy_id, format!("{:032x}", message.id));
        }
        match mapper.message_id {
            MessageIdSource::Position => {
                if let Some(prefix) = &self.position_id_prefix {
                    // Built by hand: this runs once per message, and
                    // `format!` costs several times as much.
                    let mut id = String::with_capacity(prefix.len() + 20);
                    id.push_str(prefix);
                    id.push_str(itoa::Buffer::new().format(message.offset));
                    headers.insert(names.msg_id.clone(), HeaderValue::from(id));
                }
            }
            MessageIdSource::IggyId => {
                own(&mut headers, &names.msg_id, format!("{:032x}", message.id))
            }
            MessageIdSource::None => {}
        }
        if let Some(stream) = &mapper.expected_stream {
            headers.insert(names.expected_stream.clone(), stream.clone());
        }
        headers
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

    fn header(headers: &HeaderMap, name: &str) -> Option<String> {
        let name = name.parse::<HeaderName>().ok()?;
        headers.get(name).map(|v| v.as_str().to_string())
    }

    #[test]
    fn headers_payload_and_position_id() {
        let mapper = Mapper::new(&config(serde_json::json!({"metadata_headers": true}))).unwrap();
        let message = message();
        assert_eq!(
            mapper.subject(&topic(), 2, &message).unwrap().as_str(),
            "orders.created"
        );
        let topic = topic();
        let out = mapper.for_batch(&topic, 2).headers(&message);
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
        assert_eq!(
            header(&out, "Iggy-Timestamp").as_deref(),
            Some("1700000000000000")
        );
        assert_eq!(header(&out, "Iggy-Partition").as_deref(), Some("2"));
        assert_eq!(header(&out, "Nats-Expected-Stream"), None);
    }

    #[test]
    fn nats_control_headers_are_withheld_unless_allowed() {
        let mut message = message();
        let controls = [
            ("Nats-Expected-Last-Sequence", "1"),
            ("nats-msg-id", "theirs"),
            ("Natsy", "kept"),
        ];
        for (name, value) in controls {
            message.headers.as_mut().unwrap().insert(
                HeaderKey::try_from(name).unwrap(),
                HeaderValue::try_from(value).unwrap(),
            );
        }
        let topic = topic();
        let strict = Mapper::new(&config(serde_json::json!({}))).unwrap();
        assert_eq!(
            strict.withheld_headers(&message),
            ["Nats-Expected-Last-Sequence", "nats-msg-id"]
        );
        let out = strict.for_batch(&topic, 2).headers(&message);
        assert_eq!(header(&out, "Nats-Expected-Last-Sequence"), None);
        assert_eq!(
            header(&out, "Nats-Msg-Id").as_deref(),
            Some("shop/created/2/41"),
            "the sink's own id stays"
        );
        assert_eq!(header(&out, "Natsy").as_deref(), Some("kept"));
        let open = Mapper::new(&config(serde_json::json!({"allow_nats_headers": true}))).unwrap();
        assert!(open.withheld_headers(&message).is_empty());
        let out = open.for_batch(&topic, 2).headers(&message);
        assert_eq!(
            header(&out, "Nats-Expected-Last-Sequence").as_deref(),
            Some("1")
        );
    }

    #[test]
    fn payloads_are_taken_as_published_bytes() {
        let mut raw = message();
        assert_eq!(
            take_payload(&mut raw).unwrap(),
            Bytes::from_static(b"hello")
        );
        let mut json = message();
        let mut text = br#"{"a":[1,"x"]}"#.to_vec();
        json.payload = Payload::Json(simd_json::to_owned_value(&mut text).unwrap());
        assert_eq!(
            take_payload(&mut json).unwrap(),
            Bytes::from_static(br#"{"a":[1,"x"]}"#)
        );
        let mut plain = message();
        plain.payload = Payload::Text("ünïcode".into());
        assert_eq!(take_payload(&mut plain).unwrap(), "ünïcode".as_bytes());
    }

    #[test]
    fn id_choices_and_expected_stream() {
        let mapper = Mapper::new(&config(serde_json::json!({
            "message_id": "iggy_id", "stream": "ORDERS", "expected_stream": true, "metadata_headers": false
        })))
        .unwrap();
        let topic = topic();
        let out = mapper.for_batch(&topic, 1).headers(&message());
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
            header(
                &none.for_batch(&topic, 1).headers(&message()),
                "Nats-Msg-Id"
            ),
            None
        );
    }
}
