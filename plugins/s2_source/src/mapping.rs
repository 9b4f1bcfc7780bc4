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

/// Stream name hash in the high 64 bits, sequence number in the low ones.
pub fn message_id(stream: &str, seq_num: u64) -> u128 {
    // FNV-1a: stable across builds and platforms, unlike std's hasher.
    let hash = stream.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    (u128::from(hash) << 64) | u128::from(seq_num)
}

/// The message, and how many record headers had no Iggy form (empty name or value).
pub fn message(stream: &str, record: SequencedRecord) -> (ProducedMessage, usize) {
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
    let metadata = [
        (STREAM_HEADER, HeaderValue::try_from(stream).ok()),
        (SEQ_NUM_HEADER, Some(HeaderValue::from(record.seq_num))),
        (TIMESTAMP_HEADER, Some(HeaderValue::from(record.timestamp))),
    ];
    for (name, value) in metadata {
        if let (Ok(key), Some(value)) = (HeaderKey::try_from(name), value) {
            headers.insert(key, value);
        }
    }
    let message = ProducedMessage {
        id: Some(message_id(stream, record.seq_num)),
        checksum: None,
        timestamp: None,
        // S2 timestamps are milliseconds, Iggy's microseconds.
        origin_timestamp: Some(record.timestamp.saturating_mul(1000)),
        headers: Some(headers),
        payload: record.body.to_vec(),
    };
    (message, dropped)
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
        let (message, dropped) = message("orders", record);
        assert_eq!(dropped, 1);
        assert_eq!(message.payload, b"body");
        assert_eq!(message.id, Some(message_id("orders", 7)));
        assert_eq!(message.origin_timestamp, Some(1_700_000_000_123_000));
        let headers = message.headers.unwrap();
        let get = |k: &str| headers.get(&HeaderKey::try_from(k).unwrap()).unwrap();
        assert_eq!(get("source").as_str().unwrap(), "web");
        assert_eq!(get("bin").as_raw().unwrap(), [0xff, 0x00]);
        assert_eq!(get(STREAM_HEADER).as_str().unwrap(), "orders");
        assert_eq!(get(SEQ_NUM_HEADER).to_string_value(), "7");
        assert_ne!(message_id("orders", 7), message_id("orderz", 7));
        assert_eq!(message_id("orders", 7) as u64, 7);
    }
}
