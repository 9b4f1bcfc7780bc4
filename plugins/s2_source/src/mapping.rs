//! One S2 record → one Iggy message: the body as payload, record headers as
//! Iggy headers plus `s2-stream`, `s2-seq-num` and `s2-timestamp`, and a
//! message id from stream and sequence number (the same on every re-read).

use iggy_common::{HeaderKey, HeaderValue};
use iggy_connector_sdk::ProducedMessage;
use s2_sdk::types::SequencedRecord;
use std::collections::BTreeMap;

pub const STREAM_HEADER: &str = "s2-stream";
pub const SEQ_NUM_HEADER: &str = "s2-seq-num";
pub const TIMESTAMP_HEADER: &str = "s2-timestamp";

/// The high 64 bits of a message id (the low ones are the sequence number).
fn stream_id_bits(stream: &str) -> u128 {
    // FNV-1a: stable across builds and platforms, unlike std's hasher.
    let hash = stream.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    u128::from(hash) << 64
}

/// What every message of one stream shares, made once per read rather than
/// once per record: the id's high bits and the metadata header names.
pub struct StreamHeaders {
    id_bits: u128,
    stream: Option<(HeaderKey, HeaderValue)>,
    seq_num: Option<HeaderKey>,
    timestamp: Option<HeaderKey>,
}

impl StreamHeaders {
    pub fn new(stream: &str) -> Self {
        let key = |name: &str| HeaderKey::try_from(name).ok();
        Self {
            id_bits: stream_id_bits(stream),
            stream: key(STREAM_HEADER).zip(HeaderValue::try_from(stream).ok()),
            seq_num: key(SEQ_NUM_HEADER),
            timestamp: key(TIMESTAMP_HEADER),
        }
    }

    /// The message, and how many record headers had no Iggy form (empty name or value).
    pub fn message(&self, record: SequencedRecord) -> (ProducedMessage, usize) {
        let mut headers = BTreeMap::new();
        let mut dropped = 0;
        for header in &record.headers {
            let key = std::str::from_utf8(&header.name)
                .ok()
                .and_then(|name| HeaderKey::try_from(name).ok());
            let value = match std::str::from_utf8(&header.value) {
                Ok(text) => HeaderValue::try_from(text),
                Err(_) => HeaderValue::try_from(header.value.as_ref()),
            };
            match (key, value) {
                (Some(key), Ok(value)) => {
                    headers.insert(key, value);
                }
                _ => dropped += 1,
            }
        }
        if let Some((key, value)) = &self.stream {
            headers.insert(key.clone(), value.clone());
        }
        if let Some(key) = &self.seq_num {
            headers.insert(key.clone(), HeaderValue::from(record.seq_num));
        }
        if let Some(key) = &self.timestamp {
            headers.insert(key.clone(), HeaderValue::from(record.timestamp));
        }
        let message = ProducedMessage {
            id: Some(self.id_bits | u128::from(record.seq_num)),
            checksum: None,
            timestamp: None,
            // S2 timestamps are milliseconds, Iggy's microseconds.
            origin_timestamp: Some(record.timestamp.saturating_mul(1000)),
            headers: Some(headers),
            // No copy when the SDK's buffer holds just this body.
            payload: Vec::from(record.body),
        };
        (message, dropped)
    }
}

/// Where a message was read, from the headers `StreamHeaders` gave it.
pub fn describe(message: &ProducedMessage) -> String {
    let header = |name: &str| {
        let key = HeaderKey::try_from(name).ok()?;
        let value = message.headers.as_ref()?.get(&key)?;
        Some(value.to_string_value())
    };
    match (header(STREAM_HEADER), header(SEQ_NUM_HEADER)) {
        (Some(stream), Some(seq_num)) => format!("stream `{stream}` seq_num {seq_num}"),
        _ => format!("message id {:?}", message.id),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use s2_sdk::types::Header;

    #[test]
    fn record_becomes_a_message() {
        let record = SequencedRecord::from_parts(
            7,
            1_700_000_000_123,
            vec![
                Header::new("source", "web"),
                Header::new("bin", vec![0xff, 0x00]),
                Header::new("", "x"),
            ],
            "body",
        );
        let (message, dropped) = StreamHeaders::new("orders").message(record);
        assert_eq!(dropped, 1);
        assert_eq!(message.payload, b"body");
        assert_eq!(message.id, Some(stream_id_bits("orders") | 7));
        assert_eq!(message.origin_timestamp, Some(1_700_000_000_123_000));
        let headers = message.headers.clone().unwrap();
        let get = |k: &str| headers.get(&HeaderKey::try_from(k).unwrap()).unwrap();
        assert_eq!(get("source").as_str().unwrap(), "web");
        assert_eq!(get("bin").as_raw().unwrap(), [0xff, 0x00]);
        assert_eq!(get(STREAM_HEADER).as_str().unwrap(), "orders");
        assert_eq!(get(SEQ_NUM_HEADER).to_string_value(), "7");
        assert_ne!(stream_id_bits("orders"), stream_id_bits("orderz"));
        assert_eq!(stream_id_bits("orders") as u64, 0);
        assert_eq!(describe(&message), "stream `orders` seq_num 7");
    }
}
