//! One Iggy message → one S2 record: Iggy headers become record headers, the
//! payload the body, plus the `@iggy-position` header the sink deduplicates by
//! and, in upsert mode, `@key` and `@action`.

use crate::upsert::{ACTION_HEADER, KEY_HEADER, Upsert};
use iggy_common::{HeaderKind, HeaderValue};
use iggy_connector_sdk::{ConsumedMessage, TopicMetadata};
use s2_sdk::types::{AppendRecord, Header};

pub const POSITION_HEADER: &str = "@iggy-position";

/// Where in Iggy a record came from: `source` names the partition
/// (`stream/topic/partition`), `offset` the message in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    pub source: String,
    pub offset: u64,
}

impl Position {
    pub fn source_of(topic: &TopicMetadata, partition: u32) -> String {
        format!("{}/{}/{partition}", topic.stream, topic.topic)
    }

    /// The offset goes last so that names containing `/` or `@` still parse.
    fn header_value(source: &str, offset: u64) -> String {
        format!("{source}@{offset}")
    }

    /// The position of a record written by this sink, if it is one.
    pub fn of_record(headers: &[Header]) -> Option<Self> {
        let header = headers
            .iter()
            .find(|h| h.name.as_ref() == POSITION_HEADER.as_bytes())?;
        let text = std::str::from_utf8(&header.value).ok()?;
        let (source, offset) = text.rsplit_once('@')?;
        Some(Self {
            source: source.to_string(),
            offset: offset.parse().ok()?,
        })
    }
}

pub struct Mapper {
    upsert: Option<Upsert>,
}

impl Mapper {
    pub fn new(upsert: Option<Upsert>) -> Self {
        Self { upsert }
    }

    pub fn record(&self, source: &str, message: &ConsumedMessage) -> Result<AppendRecord, String> {
        let mut headers = Vec::with_capacity(message.headers.as_ref().map_or(0, |h| h.len()) + 3);
        headers.push(Header::new(
            POSITION_HEADER,
            Position::header_value(source, message.offset),
        ));
        if let Some(upsert) = &self.upsert {
            let (key, action) = upsert.key_and_action(message)?;
            headers.push(Header::new(KEY_HEADER, key));
            headers.push(Header::new(ACTION_HEADER, action));
        }
        for (key, value) in message.headers.iter().flatten() {
            headers.push(Header::new(key.to_string_value(), header_bytes(value)));
        }
        let body = message
            .payload
            .try_to_bytes()
            .map_err(|e| format!("payload: {e}"))?;
        AppendRecord::new(body)
            .and_then(|r| r.with_headers(headers))
            .map_err(|e| format!("record too large for S2: {e}"))
    }
}

/// Strings and raw bytes as they are; typed values as their text.
fn header_bytes(value: &HeaderValue) -> Vec<u8> {
    match value.kind() {
        HeaderKind::String | HeaderKind::Raw => value.as_bytes().to_vec(),
        _ => value.to_string_value().into_bytes(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use iggy_common::HeaderKey;
    use iggy_connector_sdk::Payload;

    #[test]
    fn record_carries_headers_position_and_body() {
        let message = ConsumedMessage {
            id: 1,
            offset: 42,
            checksum: 0,
            timestamp: 0,
            origin_timestamp: 0,
            headers: Some(
                [
                    (
                        HeaderKey::try_from("source").unwrap(),
                        HeaderValue::try_from("web").unwrap(),
                    ),
                    (HeaderKey::try_from("n").unwrap(), HeaderValue::from(7u64)),
                ]
                .into(),
            ),
            payload: Payload::Raw(b"hello".to_vec()),
        };
        let topic = TopicMetadata {
            stream: "a/b".into(),
            topic: "t@x".into(),
        };
        let source = Position::source_of(&topic, 2);
        let record = Mapper::new(None).record(&source, &message).unwrap();
        assert_eq!(record.body(), b"hello");
        let names: Vec<_> = record.headers().iter().map(|h| h.name.clone()).collect();
        assert_eq!(names, ["@iggy-position", "n", "source"]);
        assert_eq!(record.headers()[1].value.as_ref(), b"7");
        assert_eq!(
            Position::of_record(record.headers()),
            Some(Position {
                source: "a/b/t@x/2".into(),
                offset: 42
            })
        );
        assert_eq!(Position::of_record(&[Header::new("x", "y")]), None);
    }
}
