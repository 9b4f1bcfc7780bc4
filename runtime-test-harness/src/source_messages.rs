//! What the runtime makes of a source batch before Iggy stores it: each
//! payload decoded under the batch's schema, encoded by the `[[streams]]`
//! schema's encoder, then built into an Iggy message, which refuses an empty
//! payload, one over 64,000,000 bytes and user headers over 100,000 bytes.
//! The server, not the plugin, sets the timestamps.

use crate::produced_batch::{ProducedBatch, ProducedRecord};
use iggy_connector_sdk::{Payload, Schema};
use iggy_harness_store::NewMessage;
use std::borrow::Cow;

/// iggy_common, `MAX_PAYLOAD_SIZE`.
pub const MAX_PAYLOAD_SIZE: usize = 64 * 1000 * 1000;
/// iggy_common, `MAX_USER_HEADERS_SIZE`.
pub const MAX_USER_HEADERS_SIZE: usize = 100 * 1000;

/// A batch's messages ready to store, and what was wrong with the others.
pub struct Prepared<'a> {
    pub messages: Vec<NewMessage<'a>>,
    pub errors: u64,
    /// The first error, for the log and the connector's status.
    pub first_error: Option<String>,
}

/// Converts every message of `batch` for a stream of `stream_schema`.
/// `convert` false stores payloads as the plugin gave them (`--no-validate`);
/// Iggy's own limits apply either way.
pub fn prepare<'a>(
    batch: &'a ProducedBatch<'_>,
    stream_schema: Schema,
    convert: bool,
    origin_timestamp: u64,
) -> Prepared<'a> {
    let mut prepared = Prepared {
        messages: Vec::with_capacity(batch.messages.len()),
        errors: 0,
        first_error: None,
    };
    for (index, record) in batch.messages.iter().enumerate() {
        match message(batch, record, stream_schema, convert, origin_timestamp) {
            Ok(message) => prepared.messages.push(message),
            Err(error) => {
                prepared.errors += 1;
                prepared
                    .first_error
                    .get_or_insert_with(|| format!("message {index}: {error}"));
            }
        }
    }
    prepared
}

fn message<'a>(
    batch: &'a ProducedBatch<'_>,
    record: &ProducedRecord,
    stream_schema: Schema,
    convert: bool,
    origin_timestamp: u64,
) -> Result<NewMessage<'a>, String> {
    let given = batch.payload(record);
    let payload = if convert {
        encode(batch.schema, stream_schema, given)?
    } else {
        Cow::Borrowed(given)
    };
    // The checks of iggy_common's `IggyMessage::new`, which the runtime's
    // `build_iggy_message` (runtime/src/source.rs) goes through.
    if payload.is_empty() {
        return Err("the payload is empty, which Iggy refuses".into());
    }
    if payload.len() > MAX_PAYLOAD_SIZE {
        return Err(format!(
            "a payload of {} bytes is over Iggy's limit of {MAX_PAYLOAD_SIZE}",
            payload.len()
        ));
    }
    // The wire form is at most 2.5 times the postcard form (an empty field:
    // 5 bytes against 2), so only a large map needs measuring.
    let headers = batch.headers(record);
    if headers.len() * 5 / 2 > MAX_USER_HEADERS_SIZE {
        let wire = batch.headers_wire_len(record)?;
        if wire > MAX_USER_HEADERS_SIZE {
            return Err(format!(
                "user headers of {wire} bytes are over Iggy's limit of {MAX_USER_HEADERS_SIZE}"
            ));
        }
    }
    // build_iggy_message keeps only the payload, the id and the headers: the
    // plugin's `timestamp` and `origin_timestamp` are dropped, the message
    // gets its origin timestamp when built and the server stamps the rest.
    Ok(NewMessage {
        id: record.id.unwrap_or(0),
        timestamp: None,
        origin_timestamp,
        headers: headers.into(),
        payload,
    })
}

/// The runtime's decode then encode (runtime/src/source.rs,
/// `source_forwarding_loop` then `process_messages`): `Schema::try_into_payload`
/// under the batch's schema, then the stream schema's `StreamEncoder`.
fn encode<'a>(batch: Schema, stream: Schema, given: &'a [u8]) -> Result<Cow<'a, [u8]>, String> {
    match (batch, stream) {
        // Both steps hand the same bytes back, so they need not be copied.
        (Schema::Raw, Schema::Raw) => return Ok(Cow::Borrowed(given)),
        (Schema::Text, Schema::Text) => {
            return std::str::from_utf8(given)
                .map(|_| Cow::Borrowed(given))
                .map_err(|_| format!("the payload does not decode as {batch}"));
        }
        _ => {}
    }
    let payload = batch
        .try_into_payload(given.to_vec())
        .map_err(|_| format!("the payload does not decode as {batch}"))?;
    let refused = |payload: &Payload| {
        format!(
            "the {stream} encoder of [[streams]] refuses a {} payload (the batch's schema is {batch})",
            kind(payload)
        )
    };
    let unwritable = |_| format!("the payload cannot be written as {stream}");
    match (stream, payload) {
        // sdk/src/encoders/json.rs and text.rs: JSON and text both accepted;
        // text into a JSON stream becomes a JSON string.
        (Schema::Json | Schema::Text, Payload::Json(value)) => simd_json::to_vec(&value)
            .map(Cow::Owned)
            .map_err(unwritable),
        (Schema::Json, Payload::Text(text)) => {
            simd_json::to_vec(&text).map(Cow::Owned).map_err(unwritable)
        }
        (Schema::Text, Payload::Text(text)) => Ok(Cow::Owned(text.into_bytes())),
        // sdk/src/encoders/raw.rs: raw bytes only.
        (Schema::Raw, Payload::Raw(bytes)) => Ok(Cow::Owned(bytes)),
        (Schema::Json | Schema::Text | Schema::Raw, payload) => Err(refused(&payload)),
        // The proto, flatbuffer and avro encoders convert between formats in
        // ways the harness does not model: the same schema passes as given.
        (stream, _) if stream == batch => Ok(Cow::Borrowed(given)),
        (stream, _) => Err(format!(
            "the harness does not model the {stream} encoder for a {batch} batch"
        )),
    }
}

fn kind(payload: &Payload) -> &'static str {
    match payload {
        Payload::Json(_) => "json",
        Payload::Raw(_) => "raw",
        Payload::Text(_) => "text",
        Payload::Proto(_) => "proto",
        Payload::FlatBuffer(_) => "flatbuffer",
        Payload::Avro(_) => "avro",
    }
}

/// Which schemas' payloads the encoder of a `[[streams]]` schema accepts
/// (the decoded payload kind of each batch schema, against the encoders in
/// sdk/src/encoders); `None` when the harness does not model the pair.
pub fn stream_accepts(stream: Schema, batch: Schema) -> Option<bool> {
    match (stream, batch) {
        (Schema::Json | Schema::Text, Schema::Json | Schema::Text) => Some(true),
        (Schema::Json | Schema::Text, Schema::Raw | Schema::FlatBuffer | Schema::Avro) => {
            Some(false)
        }
        (Schema::Raw, Schema::Raw) => Some(true),
        (Schema::Raw, Schema::Json | Schema::Text | Schema::FlatBuffer | Schema::Avro) => {
            Some(false)
        }
        _ if stream == batch => Some(true),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::produced_batch::decode;
    use iggy_common::{HeaderKey, HeaderValue};
    use iggy_connector_sdk::{ProducedMessage, ProducedMessages};
    use std::collections::BTreeMap;

    fn wire(schema: Schema, payloads: Vec<Vec<u8>>) -> Vec<u8> {
        let messages = payloads
            .into_iter()
            .map(|payload| ProducedMessage {
                id: Some(1),
                checksum: None,
                timestamp: Some(5),
                origin_timestamp: Some(6),
                headers: None,
                payload,
            })
            .collect();
        postcard::to_allocvec(&ProducedMessages {
            schema,
            messages,
            state: None,
        })
        .unwrap()
    }

    fn stored(batch: Schema, stream: Schema, payload: &[u8]) -> Result<Vec<u8>, String> {
        let bytes = wire(batch, vec![payload.to_vec()]);
        let batch = decode(&bytes).unwrap();
        let mut prepared = prepare(&batch, stream, true, 42);
        match prepared.first_error {
            Some(error) => Err(error),
            None => Ok(prepared.messages.remove(0).payload.into_owned()),
        }
    }

    #[test]
    fn payloads_go_through_the_stream_schemas_encoder() {
        assert_eq!(
            stored(Schema::Json, Schema::Json, b"{ \"a\" : 1 }").unwrap(),
            b"{\"a\":1}",
            "re-encoded"
        );
        assert_eq!(
            stored(Schema::Text, Schema::Json, b"hi").unwrap(),
            b"\"hi\""
        );
        assert_eq!(
            stored(Schema::Json, Schema::Text, b"[1, 2]").unwrap(),
            b"[1,2]"
        );
        assert_eq!(stored(Schema::Raw, Schema::Raw, b"\xff").unwrap(), b"\xff");
        assert!(
            stored(Schema::Raw, Schema::Json, b"{}")
                .unwrap_err()
                .contains("json encoder")
        );
        assert!(
            stored(Schema::Json, Schema::Raw, b"{}")
                .unwrap_err()
                .contains("raw encoder")
        );
        assert!(
            stored(Schema::Json, Schema::Json, b"{nope")
                .unwrap_err()
                .contains("does not decode as json")
        );
        assert!(
            stored(Schema::Text, Schema::Text, b"\xff")
                .unwrap_err()
                .contains("does not decode as text")
        );
    }

    #[test]
    fn iggys_payload_limits_hold_at_their_boundaries() {
        let at_limit = vec![b'x'; MAX_PAYLOAD_SIZE];
        assert!(stored(Schema::Raw, Schema::Raw, &at_limit).is_ok());
        let over = vec![b'x'; MAX_PAYLOAD_SIZE + 1];
        assert!(
            stored(Schema::Raw, Schema::Raw, &over)
                .unwrap_err()
                .contains("over Iggy's limit")
        );
        assert!(
            stored(Schema::Raw, Schema::Raw, b"")
                .unwrap_err()
                .contains("empty")
        );
    }

    #[test]
    fn header_size_is_measured_in_iggys_wire_form() {
        let map = |entries: usize| -> BTreeMap<HeaderKey, HeaderValue> {
            let value = "v".repeat(250);
            (0..entries)
                .map(|n| {
                    (
                        HeaderKey::try_from(format!("k{n:04}").as_str()).unwrap(),
                        HeaderValue::try_from(value.as_str()).unwrap(),
                    )
                })
                .collect()
        };
        // Each entry: 10 bytes of kinds and lengths, a 5-byte key, 250 bytes of value.
        let per_entry = 10 + 5 + 250;
        let fits = MAX_USER_HEADERS_SIZE / per_entry;
        for (entries, ok) in [(fits, true), (fits + 1, false)] {
            let bytes = postcard::to_allocvec(&ProducedMessages {
                schema: Schema::Raw,
                messages: vec![ProducedMessage {
                    id: None,
                    checksum: None,
                    timestamp: None,
                    origin_timestamp: None,
                    headers: Some(map(entries)),
                    payload: b"p".to_vec(),
                }],
                state: None,
            })
            .unwrap();
            let batch = decode(&bytes).unwrap();
            assert_eq!(
                batch.headers_wire_len(&batch.messages[0]).unwrap(),
                entries * per_entry
            );
            let prepared = prepare(&batch, Schema::Raw, true, 1);
            assert_eq!(prepared.errors == 0, ok, "{entries} entries");
        }
    }

    #[test]
    fn the_plugins_timestamps_are_not_kept() {
        let bytes = wire(Schema::Raw, vec![b"a".to_vec()]);
        let batch = decode(&bytes).unwrap();
        let prepared = prepare(&batch, Schema::Raw, true, 42);
        let message = &prepared.messages[0];
        assert_eq!((message.timestamp, message.origin_timestamp), (None, 42));
        assert_eq!(message.id, 1);
    }
}
