//! Decodes a source's postcard `ProducedMessages` into what the store keeps,
//! without copying it or allocating per message: each record's payload and
//! header map are ranges of the bytes the plugin passed. The store keeps a
//! message's headers as the postcard bytes of its map, and a map the SDK wrote
//! (a `BTreeMap`, so in key order) is already exactly those bytes on the wire.
//! Each entry is checked as the runtime's own decode checks it (a known kind,
//! canonical Base64) and left in place, which saves decoding and re-encoding
//! every header of every message. A map this cannot vouch for (keys out of
//! order, a field longer than Iggy allows, anything that does not decode)
//! sends the batch through the full decode instead, which either rebuilds the
//! map in order or names the error.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use iggy_common::HeaderKind;
use iggy_connector_sdk::{ConnectorState, ProducedMessages, Schema};
use serde::de::{Error as _, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use std::borrow::Cow;
use std::fmt;
use std::ops::Range;

/// Base64 text of the longest field Iggy accepts (255 bytes).
const MAX_TEXT: usize = 340;
const MAX_FIELD: usize = 255;

#[derive(Debug)]
pub struct ProducedBatch<'a> {
    pub schema: Schema,
    pub messages: Vec<ProducedRecord>,
    pub state: Option<ConnectorState>,
    /// What the records' ranges point into: the batch as it crossed the ABI,
    /// or, after a full decode, the sections written one after another.
    data: Cow<'a, [u8]>,
}

/// A `ProducedMessage` whose header map and payload stay in the batch's bytes.
#[derive(Debug)]
pub struct ProducedRecord {
    pub id: Option<u128>,
    pub timestamp: Option<u64>,
    pub origin_timestamp: Option<u64>,
    /// Postcard bytes of the header map; empty for none or an empty map.
    headers: Range<usize>,
    payload: Range<usize>,
}

impl ProducedBatch<'_> {
    /// The batch with its own copy of the bytes, so it outlives the plugin's
    /// call: the runtime's callback decodes the batch into owned messages and
    /// returns before anything is stored (runtime/src/source.rs,
    /// `handle_produced_messages`). The records' ranges stay valid.
    pub fn into_owned(self) -> ProducedBatch<'static> {
        ProducedBatch {
            schema: self.schema,
            messages: self.messages,
            state: self.state,
            data: Cow::Owned(self.data.into_owned()),
        }
    }

    /// The length of a record's headers in an Iggy message, which Iggy
    /// limits: per entry a kind byte and a four-byte length before each of
    /// the key's and the value's bytes (iggy_common, `user_headers_to_wire`).
    pub fn headers_wire_len(&self, record: &ProducedRecord) -> Result<usize, String> {
        let map = self.headers(record);
        if map.is_empty() {
            return Ok(0);
        }
        let entries: Vec<(WireField<'_>, WireField<'_>)> =
            postcard::from_bytes(map).map_err(|e| format!("header map does not decode: {e}"))?;
        Ok(entries
            .iter()
            .map(|(key, value)| 10 + key.decoded_len() + value.decoded_len())
            .sum())
    }

    pub fn headers(&self, record: &ProducedRecord) -> &[u8] {
        &self.data[record.headers.clone()]
    }

    pub fn payload(&self, record: &ProducedRecord) -> &[u8] {
        &self.data[record.payload.clone()]
    }
}

/// Decodes one batch as it crossed the ABI.
pub fn decode(bytes: &[u8]) -> Result<ProducedBatch<'_>, String> {
    postcard::from_bytes::<WireBatch<'_>>(bytes)
        .ok()
        .and_then(|batch| in_place(batch, bytes))
        .map_or_else(|| decode_in_full(bytes), Ok)
}

#[derive(Deserialize)]
struct WireBatch<'a> {
    schema: Schema,
    #[serde(borrow)]
    messages: Vec<WireRecord<'a>>,
    state: Option<ConnectorState>,
}

#[derive(Deserialize)]
struct WireRecord<'a> {
    id: Option<u128>,
    /// The runtime computes its own checksum; the field is read to keep the layout.
    _checksum: Option<u64>,
    timestamp: Option<u64>,
    origin_timestamp: Option<u64>,
    /// Addresses of the header map's bytes in the input; empty for none.
    #[serde(deserialize_with = "header_map_addresses")]
    headers: Range<usize>,
    payload: &'a [u8],
}

/// Every record's sections as ranges of `bytes`; `None` if a section is not
/// inside `bytes`, which only a layout other than the one assumed here could cause.
fn in_place<'a>(batch: WireBatch<'_>, bytes: &'a [u8]) -> Option<ProducedBatch<'a>> {
    let base = bytes.as_ptr() as usize;
    let position = |addresses: Range<usize>| {
        let range = addresses.start.checked_sub(base)?..addresses.end.checked_sub(base)?;
        (range.start <= range.end && range.end <= bytes.len()).then_some(range)
    };
    // A plain loop: collecting through `Option` would lose the length and
    // grow the vector by doubling, copying it again each time.
    let mut messages = Vec::with_capacity(batch.messages.len());
    for record in batch.messages {
        let payload = record.payload.as_ptr_range();
        messages.push(ProducedRecord {
            id: record.id,
            timestamp: record.timestamp,
            origin_timestamp: record.origin_timestamp,
            headers: if record.headers.is_empty() {
                0..0
            } else {
                position(record.headers)?
            },
            payload: position(payload.start as usize..payload.end as usize)?,
        });
    }
    Some(ProducedBatch {
        schema: batch.schema,
        messages,
        state: batch.state,
        data: Cow::Borrowed(bytes),
    })
}

/// The runtime's own path: every map decoded, then encoded again in key order.
fn decode_in_full(bytes: &[u8]) -> Result<ProducedBatch<'static>, String> {
    let batch = postcard::from_bytes::<ProducedMessages>(bytes).map_err(|e| e.to_string())?;
    let mut data = Vec::new();
    let mut messages = Vec::with_capacity(batch.messages.len());
    for message in batch.messages {
        let headers_at = data.len();
        if let Some(map) = message.headers.as_ref().filter(|map| !map.is_empty()) {
            data = postcard::to_extend(map, data).map_err(|e| e.to_string())?;
        }
        let payload_at = data.len();
        data.extend_from_slice(&message.payload);
        messages.push(ProducedRecord {
            id: message.id,
            timestamp: message.timestamp,
            origin_timestamp: message.origin_timestamp,
            headers: headers_at..payload_at,
            payload: payload_at..data.len(),
        });
    }
    Ok(ProducedBatch {
        schema: batch.schema,
        messages,
        state: batch.state,
        data: Cow::Owned(data),
    })
}

/// A header key or value as postcard carries it, its Base64 text borrowed
/// from the input (as bytes: the Base64 check rejects anything not ASCII).
#[derive(Deserialize)]
struct WireField<'a> {
    kind: HeaderKind,
    value: &'a [u8],
}

impl WireField<'_> {
    /// Bytes of the field once its canonical Base64 text is decoded.
    fn decoded_len(&self) -> usize {
        let padding = self.value.iter().rev().take_while(|&&b| b == b'=').count();
        (self.value.len() / 4 * 3).saturating_sub(padding)
    }

    /// Bytes on the wire: the kind's index (one byte, as there are fewer than
    /// 128 kinds), the text's length as a varint, the text.
    fn encoded_len(&self) -> usize {
        1 + varint_len(self.value.len()) + self.value.len()
    }

    /// The field's bytes, decoded into `buffer`.
    fn decode_into<'b, E: serde::de::Error>(
        &self,
        buffer: &'b mut [u8; MAX_FIELD + 3],
    ) -> Result<&'b [u8], E> {
        if self.value.len() > MAX_TEXT {
            return Err(E::custom("header field longer than Iggy allows"));
        }
        let len = STANDARD
            .decode_slice(self.value, buffer)
            .map_err(|error| E::custom(format!("header value is not Base64: {error}")))?;
        Ok(&buffer[..len])
    }
}

fn varint_len(value: usize) -> usize {
    (usize::BITS - value.leading_zeros()).div_ceil(7).max(1) as usize
}

fn header_map_addresses<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Range<usize>, D::Error> {
    deserializer.deserialize_option(OptionalMap)
}

struct OptionalMap;

impl<'de> Visitor<'de> for OptionalMap {
    type Value = Range<usize>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an optional header map")
    }

    fn visit_none<E>(self) -> Result<Range<usize>, E> {
        Ok(0..0)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Range<usize>, D::Error> {
        deserializer.deserialize_map(OrderedMap)
    }
}

/// Checks a map and returns the addresses of the input bytes it was read from.
struct OrderedMap;

impl<'de> Visitor<'de> for OrderedMap {
    type Value = Range<usize>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a header map")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Range<usize>, A::Error> {
        let count = map
            .size_hint()
            .ok_or_else(|| A::Error::custom("a header map without its length"))?;
        // Keys are decoded into two buffers in turn, so the one before stays
        // for the order check without being copied.
        let mut buffers = [[0u8; MAX_FIELD + 3]; 3];
        let [current, last, value_buffer] = &mut buffers;
        let (mut current, mut last) = (current, last);
        let mut previous: Option<(u8, usize)> = None;
        // The map's bytes run from its length (a varint) to the end of its last value.
        let mut span: Option<Range<usize>> = None;
        while let Some((key, value)) = map.next_entry::<WireField<'de>, WireField<'de>>()? {
            let key_len = key.decode_into::<A::Error>(current)?.len();
            value.decode_into::<A::Error>(value_buffer)?;
            let rank = key.kind.as_code();
            if let Some((previous_rank, previous_len)) = previous
                && (previous_rank, &last[..previous_len]) >= (rank, &current[..key_len])
            {
                return Err(A::Error::custom("header keys out of order"));
            }
            let span = span.get_or_insert_with(|| {
                let start = (key.value.as_ptr() as usize)
                    .wrapping_sub(varint_len(count) + key.encoded_len() - key.value.len());
                start..start + varint_len(count)
            });
            span.end += key.encoded_len() + value.encoded_len();
            // Each entry must end where its value's text ends, or the layout
            // is not the one assumed (and the batch is decoded in full).
            if span.end != value.value.as_ptr() as usize + value.value.len() {
                return Err(A::Error::custom("header map laid out unexpectedly"));
            }
            previous = Some((rank, key_len));
            std::mem::swap(&mut current, &mut last);
        }
        Ok(span.unwrap_or(0..0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use iggy_common::{HeaderKey, HeaderValue};
    use iggy_connector_sdk::ProducedMessage;
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
        assert_eq!(batch.state.as_ref().unwrap().0, b"cursor");
        assert!(matches!(batch.data, Cow::Borrowed(_)), "read in place");
        let [first, second, third] = &batch.messages[..] else {
            panic!("three messages expected, got {}", batch.messages.len());
        };
        assert_eq!(batch.headers(first), postcard::to_allocvec(&map).unwrap());
        let back: BTreeMap<HeaderKey, HeaderValue> =
            postcard::from_bytes(batch.headers(first)).unwrap();
        assert_eq!(back, map);
        assert_eq!(
            (first.id, first.timestamp, first.origin_timestamp),
            (Some(7), Some(11), None)
        );
        assert_eq!(batch.payload(first), b"one");
        assert!(batch.headers(second).is_empty() && batch.headers(third).is_empty());
        assert_eq!(batch.payload(second), b"two");
        assert_eq!(batch.payload(third), b"three");
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
        assert!(matches!(batch.data, Cow::Owned(_)), "decoded in full");
        let record = &batch.messages[0];
        assert_eq!(batch.headers(record), postcard::to_allocvec(&map).unwrap());
        assert_eq!(batch.payload(record), b"p");
    }

    /// Over 127 entries, so the map's length takes two bytes.
    #[test]
    fn a_map_of_many_entries_is_kept_in_place() {
        let names: Vec<String> = (0..200).map(|n| format!("k{n:03}")).collect();
        let entries: Vec<(&str, HeaderValue)> = names
            .iter()
            .map(|name| (name.as_str(), HeaderValue::from(7u16)))
            .collect();
        let map = header_map(&entries);
        let bytes = wire(vec![message(Some(map.clone()), b"p"), message(None, b"q")]);
        let batch = decode(&bytes).unwrap();
        assert!(matches!(batch.data, Cow::Borrowed(_)), "read in place");
        let back: BTreeMap<HeaderKey, HeaderValue> =
            postcard::from_bytes(batch.headers(&batch.messages[0])).unwrap();
        assert_eq!(back, map);
        assert_eq!(batch.payload(&batch.messages[1]), b"q");
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
