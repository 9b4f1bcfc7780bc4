//! Decodes a source's postcard `ProducedMessages` into what the store keeps,
//! without building header maps. The store keeps a message's headers as the
//! postcard bytes of its map, and a map the SDK wrote (a `BTreeMap`, so in key
//! order) is already exactly those bytes on the wire. Each entry is checked as
//! the runtime's own decode checks it (a known kind, canonical Base64) and
//! copied unchanged, which saves decoding and re-encoding every header of
//! every message. A map this cannot vouch for (keys out of order, a field
//! longer than Iggy allows, anything that does not decode) goes through the
//! full decode instead, which either rebuilds it in order or names the error.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use iggy_connector_sdk::{ConnectorState, HeaderKind, ProducedMessages, Schema};
use serde::de::{Error as _, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use std::borrow::Cow;
use std::fmt;

/// Base64 text of the longest field Iggy accepts (255 bytes).
const MAX_TEXT: usize = 340;
const MAX_FIELD: usize = 255;

#[derive(Debug, Deserialize)]
pub struct ProducedBatch {
    pub schema: Schema,
    pub messages: Vec<ProducedRecord>,
    pub state: Option<ConnectorState>,
}

/// A `ProducedMessage` with its header map kept as stored bytes.
#[derive(Debug, Deserialize)]
pub struct ProducedRecord {
    pub id: Option<u128>,
    /// The runtime computes its own checksum; the field is read to keep the layout.
    _checksum: Option<u64>,
    pub timestamp: Option<u64>,
    pub origin_timestamp: Option<u64>,
    /// Postcard bytes of the header map; empty for none or an empty map.
    #[serde(deserialize_with = "stored_headers")]
    pub headers: Vec<u8>,
    #[serde(with = "serde_bytes")]
    pub payload: Vec<u8>,
}

/// Decodes one batch as it crossed the ABI.
pub fn decode(bytes: &[u8]) -> Result<ProducedBatch, String> {
    postcard::from_bytes::<ProducedBatch>(bytes).or_else(|_| decode_in_full(bytes))
}

/// The runtime's own path: every map decoded, then encoded again in key order.
fn decode_in_full(bytes: &[u8]) -> Result<ProducedBatch, String> {
    let batch = postcard::from_bytes::<ProducedMessages>(bytes).map_err(|e| e.to_string())?;
    let mut messages = Vec::with_capacity(batch.messages.len());
    for message in batch.messages {
        let headers = match &message.headers {
            Some(map) if !map.is_empty() => {
                postcard::to_allocvec(map).map_err(|e| e.to_string())?
            }
            _ => Vec::new(),
        };
        messages.push(ProducedRecord {
            id: message.id,
            _checksum: message.checksum,
            timestamp: message.timestamp,
            origin_timestamp: message.origin_timestamp,
            headers,
            payload: message.payload,
        });
    }
    Ok(ProducedBatch {
        schema: batch.schema,
        messages,
        state: batch.state,
    })
}

/// A header key or value as postcard carries it, text borrowed from the input.
#[derive(Serialize, Deserialize)]
#[serde(rename = "HeaderField")]
struct WireField<'a> {
    kind: HeaderKind,
    #[serde(borrow)]
    value: Cow<'a, str>,
}

/// A field's bytes decoded onto the stack, for the checks and the key order.
struct Decoded {
    bytes: [u8; MAX_FIELD + 3],
    len: usize,
}

impl Decoded {
    fn of<E: serde::de::Error>(field: &WireField<'_>) -> Result<Self, E> {
        if field.value.len() > MAX_TEXT {
            return Err(E::custom("header field longer than Iggy allows"));
        }
        let mut decoded = Self {
            bytes: [0; MAX_FIELD + 3],
            len: 0,
        };
        decoded.len = STANDARD
            .decode_slice(field.value.as_bytes(), &mut decoded.bytes)
            .map_err(|error| E::custom(format!("header value is not Base64: {error}")))?;
        Ok(decoded)
    }

    fn as_slice(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

fn stored_headers<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
    deserializer.deserialize_option(OptionalMap)
}

struct OptionalMap;

impl<'de> Visitor<'de> for OptionalMap {
    type Value = Vec<u8>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an optional header map")
    }

    fn visit_none<E>(self) -> Result<Vec<u8>, E> {
        Ok(Vec::new())
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Vec<u8>, D::Error> {
        deserializer.deserialize_map(OrderedMap)
    }
}

struct OrderedMap;

impl<'de> Visitor<'de> for OrderedMap {
    type Value = Vec<u8>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a header map")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Vec<u8>, A::Error> {
        let count = map
            .size_hint()
            .ok_or_else(|| A::Error::custom("a header map without its length"))?;
        if count == 0 {
            return Ok(Vec::new());
        }
        // A map's length is written as a varint, as a usize is.
        let mut out = postcard::to_extend(&count, Vec::with_capacity(count * 48))
            .map_err(A::Error::custom)?;
        let mut previous: Option<(u8, Decoded)> = None;
        while let Some((key, value)) = map.next_entry::<WireField<'de>, WireField<'de>>()? {
            let key_bytes = Decoded::of::<A::Error>(&key)?;
            Decoded::of::<A::Error>(&value)?;
            let rank = key.kind.as_code();
            if let Some((previous_rank, previous_key)) = &previous
                && (*previous_rank, previous_key.as_slice()) >= (rank, key_bytes.as_slice())
            {
                return Err(A::Error::custom("header keys out of order"));
            }
            out = postcard::to_extend(&(key, value), out).map_err(A::Error::custom)?;
            previous = Some((rank, key_bytes));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use iggy_connector_sdk::{HeaderKey, HeaderValue, ProducedMessage};
    use std::collections::BTreeMap;

    fn header_map(entries: &[(&str, HeaderValue)]) -> BTreeMap<HeaderKey, HeaderValue> {
        entries
            .iter()
            .map(|(key, value)| (HeaderKey::try_from(*key).unwrap(), value.clone()))
            .collect()
    }

    fn message(
        headers: Option<BTreeMap<HeaderKey, HeaderValue>>,
        payload: &[u8],
    ) -> ProducedMessage {
        ProducedMessage {
            id: Some(7),
            checksum: Some(9),
            timestamp: Some(11),
            origin_timestamp: None,
            headers,
            payload: payload.to_vec(),
        }
    }

    fn wire(messages: Vec<ProducedMessage>) -> Vec<u8> {
        postcard::to_allocvec(&ProducedMessages {
            schema: Schema::Raw,
            messages,
            state: Some(ConnectorState(b"cursor".to_vec())),
        })
        .unwrap()
    }

    #[test]
    fn stored_headers_are_the_bytes_of_the_map() {
        let map = header_map(&[
            ("subject", HeaderValue::try_from("orders.eu").unwrap()),
            ("sequence", HeaderValue::from(42u64)),
            ("a", HeaderValue::from(-1i32)),
            ("timestamp", HeaderValue::from(1_700_000_000_000_000u64)),
            (
                "long",
                HeaderValue::try_from("x".repeat(255).as_str()).unwrap(),
            ),
        ]);
        let bytes = wire(vec![
            message(Some(map.clone()), b"one"),
            message(None, b"two"),
            message(Some(BTreeMap::new()), b"three"),
        ]);
        let batch = decode(&bytes).unwrap();
        assert_eq!(batch.schema, Schema::Raw);
        assert_eq!(batch.state.unwrap().0, b"cursor");
        let [first, second, third] = &batch.messages[..] else {
            panic!("three messages expected, got {}", batch.messages.len());
        };
        assert_eq!(first.headers, postcard::to_allocvec(&map).unwrap());
        let back: BTreeMap<HeaderKey, HeaderValue> = postcard::from_bytes(&first.headers).unwrap();
        assert_eq!(back, map);
        assert_eq!(
            (first.id, first.timestamp, first.origin_timestamp),
            (Some(7), Some(11), None)
        );
        assert_eq!(first.payload, b"one");
        assert!(second.headers.is_empty() && third.headers.is_empty());
        assert_eq!(third.payload, b"three");
    }

    /// A hand-built map with its two entries swapped: what a BTreeMap never
    /// writes, so only this test can show it.
    #[test]
    fn keys_out_of_order_are_stored_in_order() {
        let map = header_map(&[("b", HeaderValue::from(2u8)), ("a", HeaderValue::from(1u8))]);
        let fields: Vec<_> = map.iter().rev().collect();
        let mut unordered = postcard::to_allocvec(&message(None, b"p")).unwrap();
        let headers_at = unordered.len() - 2 - 1;
        let mut encoded_map = postcard::to_allocvec(&fields).unwrap();
        encoded_map.insert(0, 1);
        unordered.splice(headers_at..headers_at + 1, encoded_map);
        let mut bytes = vec![1, 1];
        bytes.extend(unordered);
        bytes.push(0);
        let batch = decode(&bytes).unwrap();
        assert_eq!(
            batch.messages[0].headers,
            postcard::to_allocvec(&map).unwrap()
        );
        assert_eq!(batch.messages[0].payload, b"p");
    }

    #[test]
    fn a_header_that_is_not_base64_fails_the_batch() {
        let map = header_map(&[("k", HeaderValue::try_from("v").unwrap())]);
        let mut bytes = wire(vec![message(Some(map), b"p")]);
        assert!(decode(&bytes).is_ok());
        let text_at = bytes
            .windows(4)
            .position(|w| w == b"dg==")
            .expect("the Base64 of `v`");
        bytes[text_at] = b'*';
        // postcard keeps no message of a custom error, so only the failure is seen.
        assert!(decode(&bytes).is_err());
    }
}
