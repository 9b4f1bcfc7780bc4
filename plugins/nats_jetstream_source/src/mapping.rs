//! One NATS JetStream message → one Iggy message: the payload as is, the NATS
//! headers as string headers, and the chosen metadata headers `nats-subject`,
//! `nats-stream`, `nats-stream-seq` (uint64) and `nats-timestamp` (uint64,
//! µs since the epoch). The message id is built from the stream and the
//! stream sequence, so a redelivered message keeps its id.

use crate::client::fetch::{Delivery, Position};
use crate::config::MetadataHeader;
use async_nats::{HeaderMap, Subject};
use bytes::Bytes;
use iggy_common::{HeaderKey, HeaderValue};
use iggy_connector_sdk::ProducedMessage;
use std::collections::BTreeMap;

pub const SUBJECT_HEADER: &str = "nats-subject";
pub const STREAM_HEADER: &str = "nats-stream";
pub const SEQUENCE_HEADER: &str = "nats-stream-seq";
pub const TIMESTAMP_HEADER: &str = "nats-timestamp";

/// 64-bit FNV-1a: tiny, stable across versions and platforms (unlike std's
/// `DefaultHasher`), which ids kept in Iggy need.
pub fn fnv1a_64(bytes: &[u8]) -> u64 {
    const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0100_0000_01b3;
    bytes.iter().fold(OFFSET_BASIS, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(PRIME)
    })
}

/// High 64 bits: the stream name's hash; low 64 bits: the stream sequence.
pub fn message_id(stream_hash: u64, stream_sequence: u64) -> u128 {
    (u128::from(stream_hash) << 64) | u128::from(stream_sequence)
}

/// What the mapping reads from one delivery.
pub struct NatsRecord<'a> {
    pub subject: &'a str,
    pub headers: Option<&'a HeaderMap>,
    pub payload: Bytes,
    pub stream_sequence: u64,
    pub published_micros: u64,
}

/// A delivery with its Iggy message already made: the fetch task maps while
/// the runtime stores the previous batch, off the poll loop's path.
pub struct Prepared {
    pub position: Position,
    pub reply: Subject,
    pub message: ProducedMessage,
    /// NATS headers that could not be carried over.
    pub dropped_headers: usize,
}

/// Builds Iggy messages for one stream; the keys of the chosen metadata
/// headers and the stream header are made once, since every message
/// carries them (`None`: not chosen).
pub struct Mapper {
    stream_hash: u64,
    subject_key: Option<HeaderKey>,
    stream_header: Option<(HeaderKey, HeaderValue)>,
    sequence_key: Option<HeaderKey>,
    timestamp_key: Option<HeaderKey>,
}

impl Mapper {
    pub fn new(stream: &str, metadata: &[MetadataHeader]) -> Result<Self, String> {
        let key = |header: MetadataHeader, name: &str| {
            metadata
                .contains(&header)
                .then(|| HeaderKey::try_from(name).map_err(|e| format!("header `{name}`: {e}")))
                .transpose()
        };
        let stream_header = match key(MetadataHeader::Stream, STREAM_HEADER)? {
            Some(key) => Some((
                key,
                HeaderValue::try_from(stream)
                    .map_err(|e| format!("stream `{stream}` cannot be a header value: {e}"))?,
            )),
            None => None,
        };
        Ok(Self {
            stream_hash: fnv1a_64(stream.as_bytes()),
            subject_key: key(MetadataHeader::Subject, SUBJECT_HEADER)?,
            stream_header,
            sequence_key: key(MetadataHeader::StreamSeq, SEQUENCE_HEADER)?,
            timestamp_key: key(MetadataHeader::Timestamp, TIMESTAMP_HEADER)?,
        })
    }

    /// A produced message's place in the stream, for logs: its stream
    /// sequence (the low half of its id) and, when carried, its subject.
    pub fn describe(&self, message: &ProducedMessage) -> String {
        let sequence = message.id.map_or(0, |id| id as u64);
        let subject = self
            .subject_key
            .as_ref()
            .and_then(|key| message.headers.as_ref()?.get(key))
            .and_then(|value| value.as_str().ok());
        match subject {
            Some(subject) => format!("stream sequence {sequence} (subject `{subject}`)"),
            None => format!("stream sequence {sequence}"),
        }
    }

    pub fn prepare(&self, delivery: Delivery) -> Prepared {
        let async_nats::Message {
            subject,
            headers,
            payload,
            ..
        } = delivery.message;
        let (message, dropped_headers) = self.map(NatsRecord {
            subject: subject.as_str(),
            headers: headers.as_ref(),
            payload,
            stream_sequence: delivery.position.stream_sequence,
            published_micros: delivery.position.published_micros,
        });
        Prepared {
            position: delivery.position,
            reply: delivery.reply,
            message,
            dropped_headers,
        }
    }

    /// The Iggy message and how many NATS headers could not be carried over
    /// (empty, or longer than Iggy's 255-byte limit).
    pub fn map(&self, record: NatsRecord<'_>) -> (ProducedMessage, usize) {
        let mut headers = BTreeMap::new();
        let mut dropped = record
            .headers
            .map_or(0, |nats| copy_headers(nats, &mut headers));
        // Inserted last, so a NATS header of the same name cannot hide them.
        if let Some(key) = &self.subject_key {
            match HeaderValue::try_from(record.subject) {
                Ok(subject) => {
                    headers.insert(key.clone(), subject);
                }
                Err(_) => dropped += 1,
            }
        }
        if let Some((key, value)) = &self.stream_header {
            headers.insert(key.clone(), value.clone());
        }
        if let Some(key) = &self.sequence_key {
            headers.insert(key.clone(), HeaderValue::from(record.stream_sequence));
        }
        if let Some(key) = &self.timestamp_key {
            headers.insert(key.clone(), HeaderValue::from(record.published_micros));
        }
        let message = ProducedMessage {
            id: Some(message_id(self.stream_hash, record.stream_sequence)),
            checksum: None,
            // Iggy stamps its own append time; the publish time is the origin.
            timestamp: None,
            origin_timestamp: Some(record.published_micros),
            // No headers at all is cheaper to encode as none than as an empty map.
            headers: (!headers.is_empty()).then_some(headers),
            payload: Vec::from(record.payload),
        };
        (message, dropped)
    }
}

/// Copies NATS headers as string headers; a header given several times
/// becomes one value joined by ", " (Iggy keeps one value per key).
/// Returns how many could not be copied.
fn copy_headers(nats: &HeaderMap, into: &mut BTreeMap<HeaderKey, HeaderValue>) -> usize {
    let mut dropped = 0;
    for (name, values) in nats.iter() {
        let joined;
        let value = match values.as_slice() {
            [single] => single.as_str(),
            many => {
                joined = many
                    .iter()
                    .map(|v| v.as_str())
                    .collect::<Vec<_>>()
                    .join(", ");
                joined.as_str()
            }
        };
        match (
            HeaderKey::try_from(AsRef::<str>::as_ref(name)),
            HeaderValue::try_from(value),
        ) {
            (Ok(key), Ok(value)) => {
                into.insert(key, value);
            }
            _ => dropped += 1,
        }
    }
    dropped
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [MetadataHeader; 4] = [
        MetadataHeader::Subject,
        MetadataHeader::Stream,
        MetadataHeader::StreamSeq,
        MetadataHeader::Timestamp,
    ];

    fn record<'a>(headers: Option<&'a HeaderMap>, seq: u64) -> NatsRecord<'a> {
        NatsRecord {
            subject: "orders.eu.created",
            headers,
            payload: Bytes::from_static(b"{\"n\":1}"),
            stream_sequence: seq,
            published_micros: 1_700_000_000_123_456,
        }
    }

    fn header<'a>(message: &'a ProducedMessage, key: &str) -> Option<&'a HeaderValue> {
        message
            .headers
            .as_ref()
            .and_then(|h| h.get(&HeaderKey::try_from(key).unwrap()))
    }

    #[test]
    fn fnv1a_matches_reference_vectors() {
        assert_eq!(fnv1a_64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a_64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a_64(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn ids_are_stable_and_carry_the_sequence() {
        let mapper = Mapper::new("ORDERS", &ALL).unwrap();
        let (first, _) = mapper.map(record(None, 42));
        let (again, _) = mapper.map(record(None, 42));
        assert_eq!(first.id, again.id, "a redelivery keeps its id");
        let id = first.id.unwrap();
        assert_eq!(id as u64, 42);
        assert_eq!((id >> 64) as u64, fnv1a_64(b"ORDERS"));
        let other = Mapper::new("AUDIT", &ALL).unwrap().map(record(None, 42)).0;
        assert_ne!(other.id, first.id, "another stream, another id");
    }

    #[test]
    fn metadata_headers_payload_and_times() {
        let mapper = Mapper::new("ORDERS", &ALL).unwrap();
        let (message, dropped) = mapper.map(record(None, 7));
        assert_eq!(dropped, 0);
        assert_eq!(message.payload, b"{\"n\":1}");
        assert_eq!(message.origin_timestamp, Some(1_700_000_000_123_456));
        assert_eq!(message.timestamp, None);
        assert_eq!(
            header(&message, SUBJECT_HEADER).unwrap().as_str().unwrap(),
            "orders.eu.created"
        );
        assert_eq!(
            header(&message, STREAM_HEADER).unwrap().as_str().unwrap(),
            "ORDERS"
        );
        assert_eq!(
            header(&message, SEQUENCE_HEADER)
                .unwrap()
                .as_uint64()
                .unwrap(),
            7
        );
        assert_eq!(
            header(&message, TIMESTAMP_HEADER)
                .unwrap()
                .as_uint64()
                .unwrap(),
            1_700_000_000_123_456
        );
    }

    #[test]
    fn only_the_chosen_metadata_headers_are_added() {
        let mapper = Mapper::new("ORDERS", &[MetadataHeader::Subject]).unwrap();
        let (message, _) = mapper.map(record(None, 7));
        let headers = message.headers.as_ref().unwrap();
        assert_eq!(headers.len(), 1);
        assert!(header(&message, SUBJECT_HEADER).is_some());
        let bare = Mapper::new("ORDERS", &[]).unwrap().map(record(None, 7)).0;
        assert!(
            bare.headers.is_none(),
            "no headers at all: none, not an empty map"
        );
        assert_eq!(bare.id, message.id);
        assert_eq!(bare.origin_timestamp, Some(1_700_000_000_123_456));
    }

    #[test]
    fn nats_headers_are_copied_joined_or_counted() {
        let mut nats = HeaderMap::new();
        nats.insert("Nats-Msg-Id", "order-1");
        nats.append("X-Tag", "a");
        nats.append("X-Tag", "b");
        nats.insert("X-Long", "v".repeat(300).as_str());
        nats.insert(SEQUENCE_HEADER, "spoofed");
        let mapper = Mapper::new("ORDERS", &ALL).unwrap();
        let (message, dropped) = mapper.map(record(Some(&nats), 9));
        assert_eq!(dropped, 1, "the 300-byte value does not fit");
        assert_eq!(
            header(&message, "Nats-Msg-Id").unwrap().as_str().unwrap(),
            "order-1"
        );
        assert_eq!(header(&message, "X-Tag").unwrap().as_str().unwrap(), "a, b");
        assert!(header(&message, "X-Long").is_none());
        assert_eq!(
            header(&message, SEQUENCE_HEADER)
                .unwrap()
                .as_uint64()
                .unwrap(),
            9,
            "the metadata header wins over a NATS header of the same name"
        );
    }
}
