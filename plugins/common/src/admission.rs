//! Source admission: keeping messages the runtime would refuse out of a batch.
//!
//! A 0.5.x runtime refuses a whole source batch when it cannot turn one of
//! its messages into an Iggy message (runtime/src/source.rs,
//! source_forwarding_loop: any decode or processing error Nacks the batch).
//! The plugin then redelivers the same batch, which is refused again: one bad
//! message stops the source for good. So before a batch leaves the plugin,
//! every message is checked against what the runtime accepts:
//!
//! - the payload is not empty and at most 64,000,000 bytes
//!   (common/src/types/message/iggy_message.rs, `IggyMessage::new`);
//! - its user headers take at most 100,000 bytes in Iggy's wire form
//!   (common/src/wire_conversions.rs, `user_headers_to_wire`: per entry a
//!   kind byte and a 4-byte length for the key and for the value, plus their
//!   bytes);
//! - the payload decodes under the batch's schema (`Schema::try_into_payload`,
//!   which the runtime runs first): `json` must parse as JSON (with the same
//!   parser, simd-json), `text` must be UTF-8; other schemas always decode.
//!
//! What the connector file's `[[streams]]` encoder does with the decoded
//! payload is out of the plugin's sight (it never receives `[[streams]]`);
//! for a `json` batch the size checked is that of the payload as the runtime
//! re-encodes it, which is what any encoder accepting JSON writes.
//!
//! The config setting `invalid_messages` decides what happens to a message
//! that fails: `skip` (the default) leaves it out, `wrap` turns a payload that
//! does not decode into one that does (see [`InvalidMessages::Wrap`]). Either
//! way it is counted and logged at WARN with the connector and the message's
//! position. A message left out is still covered by the batch's state: once
//! the batch is acknowledged, the source does not read it again.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use iggy_common::UserHeaders;
use iggy_connector_sdk::{ProducedMessage, ProducedMessages, Schema};
use serde::Deserialize;
use simd_json::prelude::Writable;

use crate::counters::Counters;

/// Largest payload the runtime builds a message from, in bytes.
pub const MAX_PAYLOAD_SIZE: usize = 64_000_000;
/// Largest user headers the runtime accepts, in bytes of Iggy's wire form.
pub const MAX_USER_HEADERS_SIZE: usize = 100_000;

/// The `invalid_messages` setting: what a source does with a message the
/// runtime would refuse (and with it, the whole batch).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InvalidMessages {
    /// Leave the message out of the batch, count it and log it.
    #[default]
    Skip,
    /// Replace a payload that does not decode under the batch's schema with
    /// one that does, keeping its bytes: in a `json` batch, UTF-8 text
    /// becomes `{"invalid_payload_text": "<the text>"}` and other bytes
    /// `{"invalid_payload_base64": "<Base64>"}`; in a `text` batch the
    /// payload becomes `invalid_payload_base64:<Base64>`. An object (rather
    /// than a bare JSON string) keeps wrapped messages recognisable
    /// downstream. An empty or oversized payload, oversized headers, or a
    /// wrapped payload that ends up oversized cannot be mended: those are
    /// skipped as under `Skip`.
    Wrap,
}

/// Why the runtime would refuse a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    EmptyPayload,
    /// The payload's size, as the runtime would build the message from it.
    PayloadTooLarge(usize),
    /// The headers' size in Iggy's wire form.
    HeadersTooLarge(usize),
    NotJson,
    NotText,
}

impl Refusal {
    /// Whether `wrap` can turn the message into one the runtime accepts.
    fn is_wrappable(self) -> bool {
        matches!(self, Refusal::NotJson | Refusal::NotText)
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::EmptyPayload => f.write_str("its payload is empty"),
            Refusal::PayloadTooLarge(size) => write!(
                f,
                "its payload is {size} bytes, over the runtime's limit of {MAX_PAYLOAD_SIZE}"
            ),
            Refusal::HeadersTooLarge(size) => write!(
                f,
                "its headers are {size} bytes, over the runtime's limit of {MAX_USER_HEADERS_SIZE}"
            ),
            Refusal::NotJson => f.write_str("its payload is not valid JSON (the batch's schema)"),
            Refusal::NotText => f.write_str("its payload is not UTF-8 text (the batch's schema)"),
        }
    }
}

/// The size of `headers` in Iggy's wire form, as the runtime measures them.
pub fn user_headers_wire_size(headers: &UserHeaders) -> usize {
    headers
        .iter()
        .map(|(key, value)| 1 + 4 + key.as_bytes().len() + 1 + 4 + value.as_bytes().len())
        .sum()
}

/// Checks one message against what the runtime accepts in a batch of
/// `schema`. For repeated checks, [`Admission::admit`] reuses its buffers.
pub fn check(schema: Schema, message: &ProducedMessage) -> Result<(), Refusal> {
    Checker::default().check(schema, message)
}

/// Scratch space for JSON checks, reused across the messages of a batch:
/// simd-json parses in place, so each payload is parsed from a copy.
#[derive(Default)]
struct Checker {
    copy: Vec<u8>,
    buffers: simd_json::Buffers,
}

impl Checker {
    fn check(&mut self, schema: Schema, message: &ProducedMessage) -> Result<(), Refusal> {
        if let Some(headers) = &message.headers {
            let size = user_headers_wire_size(headers);
            if size > MAX_USER_HEADERS_SIZE {
                return Err(Refusal::HeadersTooLarge(size));
            }
        }
        self.check_payload(schema, &message.payload)
    }

    fn check_payload(&mut self, schema: Schema, payload: &[u8]) -> Result<(), Refusal> {
        if payload.is_empty() {
            return Err(Refusal::EmptyPayload);
        }
        match schema {
            Schema::Json => self.check_json(payload),
            Schema::Text if std::str::from_utf8(payload).is_err() => Err(Refusal::NotText),
            _ if payload.len() > MAX_PAYLOAD_SIZE => Err(Refusal::PayloadTooLarge(payload.len())),
            _ => Ok(()),
        }
    }

    fn check_json(&mut self, payload: &[u8]) -> Result<(), Refusal> {
        self.copy.clear();
        self.copy.extend_from_slice(payload);
        let value = simd_json::to_owned_value_with_buffers(&mut self.copy, &mut self.buffers)
            .map_err(|_| Refusal::NotJson)?;
        // The runtime re-encodes the value; that can grow a payload (`1e15`
        // prints as 18 digits), by at most about five times, so only a
        // payload within that factor of the limit is worth re-encoding.
        let size = if payload.len() > MAX_PAYLOAD_SIZE / 8 {
            let mut counter = ByteCounter(0);
            value.write(&mut counter).map_err(|_| Refusal::NotJson)?;
            counter.0
        } else {
            payload.len()
        };
        if size > MAX_PAYLOAD_SIZE {
            return Err(Refusal::PayloadTooLarge(size));
        }
        Ok(())
    }
}

struct ByteCounter(usize);

impl std::io::Write for ByteCounter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The payload `wrap` puts in place of one that does not decode under `schema`.
fn wrapped_payload(schema: Schema, payload: &[u8]) -> Option<Vec<u8>> {
    match schema {
        Schema::Json => {
            let (key, text) = match std::str::from_utf8(payload) {
                Ok(text) => ("invalid_payload_text", text.to_owned()),
                Err(_) => ("invalid_payload_base64", STANDARD.encode(payload)),
            };
            let mut object = simd_json::owned::Object::with_capacity(1);
            object.insert(key.to_owned(), simd_json::OwnedValue::from(text));
            simd_json::to_vec(&simd_json::OwnedValue::from(object)).ok()
        }
        Schema::Text => {
            Some(format!("invalid_payload_base64:{}", STANDARD.encode(payload)).into_bytes())
        }
        _ => None,
    }
}

/// What one call of [`Admission::admit`] did to a batch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AdmissionOutcome {
    pub skipped: usize,
    pub wrapped: usize,
}

/// Applies a connector's `invalid_messages` policy to its batches and keeps
/// count. One per connector instance.
#[derive(Debug)]
pub struct Admission {
    connector: String,
    policy: InvalidMessages,
    counters: Counters,
}

impl Admission {
    /// `connector` names the connector in logs, e.g. "NATS source 3".
    pub fn new(connector: impl Into<String>, policy: InvalidMessages) -> Self {
        Self {
            connector: connector.into(),
            policy,
            counters: Counters::new(&["skipped", "wrapped"]),
        }
    }

    pub fn policy(&self) -> InvalidMessages {
        self.policy
    }

    /// Messages left out so far.
    pub fn skipped(&self) -> u64 {
        self.counters.get("skipped").map_or(0, |c| c.get())
    }

    /// Messages whose payload was wrapped so far.
    pub fn wrapped(&self) -> u64 {
        self.counters.get("wrapped").map_or(0, |c| c.get())
    }

    /// `"skipped=N wrapped=M"`, for the connector's closing log.
    pub fn summary(&self) -> String {
        self.counters.summary()
    }

    /// Removes or mends, per the policy, every message of `batch` the runtime
    /// would refuse under `batch.schema`, keeping the others in order.
    /// `describe` gives a message's position in the source for the log (e.g.
    /// its stream sequence number); its index in the batch is logged too.
    pub fn admit(
        &self,
        batch: &mut ProducedMessages,
        describe: impl Fn(&ProducedMessage) -> String,
    ) -> AdmissionOutcome {
        let schema = batch.schema;
        let total = batch.messages.len();
        let mut checker = Checker::default();
        let mut outcome = AdmissionOutcome::default();
        let mut index = 0;
        batch.messages.retain_mut(|message| {
            index += 1;
            let Err(refusal) = checker.check(schema, message) else {
                return true;
            };
            if self.policy == InvalidMessages::Wrap
                && refusal.is_wrappable()
                && let Some(payload) = wrapped_payload(schema, &message.payload)
                    .filter(|payload| checker.check_payload(schema, payload).is_ok())
            {
                message.payload = payload;
                outcome.wrapped += 1;
                self.counters.add("wrapped", 1);
                tracing::warn!(
                    "{}: wrapped message {index} of {total} in the batch ({}): {refusal}; {} wrapped so far",
                    self.connector,
                    describe(message),
                    self.wrapped(),
                );
                return true;
            }
            outcome.skipped += 1;
            self.counters.add("skipped", 1);
            tracing::warn!(
                "{}: skipped message {index} of {total} in the batch ({}): the runtime would refuse the whole batch because {refusal}; {} skipped so far",
                self.connector,
                describe(message),
                self.skipped(),
            );
            false
        });
        outcome
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use iggy_common::{HeaderKey, HeaderKind, HeaderValue};
    use std::collections::BTreeMap;

    fn message(id: u128, payload: &[u8]) -> ProducedMessage {
        ProducedMessage {
            id: Some(id),
            checksum: None,
            timestamp: None,
            origin_timestamp: None,
            headers: None,
            payload: payload.to_vec(),
        }
    }

    fn batch(schema: Schema, messages: Vec<ProducedMessage>) -> ProducedMessages {
        ProducedMessages {
            schema,
            messages,
            state: None,
        }
    }

    fn ids(batch: &ProducedMessages) -> Vec<u128> {
        batch.messages.iter().filter_map(|m| m.id).collect()
    }

    fn describe(message: &ProducedMessage) -> String {
        format!("id {:?}", message.id)
    }

    /// Headers of exactly `size` wire bytes: entries of a 8-byte key and a
    /// 255-byte value (273 wire bytes each), then one shorter entry.
    fn headers_of_wire_size(size: usize) -> UserHeaders {
        let entry = |n: usize, len: usize| {
            (
                HeaderKey::try_from(format!("k{n:07}").as_str()).unwrap(),
                HeaderValue::from_raw(HeaderKind::Raw, &vec![b'v'; len]).unwrap(),
            )
        };
        let mut headers = BTreeMap::new();
        let mut left = size;
        while left >= 273 + 19 {
            headers.extend([entry(headers.len(), 255)]);
            left -= 273;
        }
        headers.extend([entry(headers.len(), left - 18)]);
        headers
    }

    #[test]
    fn wire_size_counts_kind_and_length_prefixes() {
        let mut headers = BTreeMap::new();
        headers.insert(HeaderKey::try_from("key").unwrap(), HeaderValue::from(7u64));
        assert_eq!(user_headers_wire_size(&headers), 1 + 4 + 3 + 1 + 4 + 8);
        assert_eq!(user_headers_wire_size(&BTreeMap::new()), 0);
        assert_eq!(
            user_headers_wire_size(&headers_of_wire_size(100_000)),
            100_000
        );
    }

    #[test]
    fn each_refusal_reason_is_found() {
        assert_eq!(
            check(Schema::Raw, &message(1, b"")),
            Err(Refusal::EmptyPayload)
        );
        assert_eq!(
            check(Schema::Json, &message(1, b"")),
            Err(Refusal::EmptyPayload)
        );
        let big = vec![b'x'; MAX_PAYLOAD_SIZE + 1];
        assert_eq!(
            check(Schema::Raw, &message(1, &big)),
            Err(Refusal::PayloadTooLarge(MAX_PAYLOAD_SIZE + 1))
        );
        assert_eq!(check(Schema::Raw, &message(1, &big[1..])), Ok(()));
        let mut headed = message(1, b"x");
        headed.headers = Some(headers_of_wire_size(MAX_USER_HEADERS_SIZE + 1));
        assert_eq!(
            check(Schema::Raw, &headed),
            Err(Refusal::HeadersTooLarge(MAX_USER_HEADERS_SIZE + 1))
        );
        headed.headers = Some(headers_of_wire_size(MAX_USER_HEADERS_SIZE));
        assert_eq!(check(Schema::Raw, &headed), Ok(()));
        assert_eq!(
            check(Schema::Json, &message(1, b"{oops")),
            Err(Refusal::NotJson)
        );
        assert_eq!(
            check(Schema::Json, &message(1, b"{\"a\":1} x")),
            Err(Refusal::NotJson)
        );
        assert_eq!(
            check(Schema::Json, &message(1, b" [1, \"\\u00e9\"]\n")),
            Ok(())
        );
        assert_eq!(
            check(Schema::Text, &message(1, &[0xff])),
            Err(Refusal::NotText)
        );
        assert_eq!(check(Schema::Text, &message(1, "é".as_bytes())), Ok(()));
        for schema in [Schema::Raw, Schema::Proto, Schema::FlatBuffer, Schema::Avro] {
            assert_eq!(check(schema, &message(1, &[0xff, 0])), Ok(()), "{schema}");
        }
    }

    #[test]
    fn json_size_is_that_of_the_re_encoded_payload() {
        // Each `1e15,` (5 bytes) re-encodes as `1000000000000000.0,` (19):
        // under the limit as sent, over it as the runtime would store it.
        let count = MAX_PAYLOAD_SIZE / 18;
        let mut json = Vec::with_capacity(count * 5 + 2);
        json.push(b'[');
        for n in 0..count {
            if n > 0 {
                json.push(b',');
            }
            json.extend_from_slice(b"1e15");
        }
        json.push(b']');
        assert!(json.len() < MAX_PAYLOAD_SIZE);
        assert!(matches!(
            check(Schema::Json, &message(1, &json)),
            Err(Refusal::PayloadTooLarge(size)) if size > MAX_PAYLOAD_SIZE
        ));
    }

    #[test]
    fn the_runtime_decodes_what_admission_passes() {
        for (schema, payload) in [
            (Schema::Json, &b"{\"a\":[1,2.5,null]}"[..]),
            (Schema::Text, "plain é".as_bytes()),
            (Schema::Raw, &[0u8, 0xff][..]),
        ] {
            assert_eq!(check(schema, &message(1, payload)), Ok(()));
            assert!(
                schema.try_into_payload(payload.to_vec()).is_ok(),
                "{schema}"
            );
        }
        for (schema, payload) in [(Schema::Json, &b"nope"[..]), (Schema::Text, &[0xc3u8][..])] {
            assert!(check(schema, &message(1, payload)).is_err());
            assert!(
                schema.try_into_payload(payload.to_vec()).is_err(),
                "{schema}"
            );
        }
    }

    #[test]
    fn skip_drops_refused_messages_and_keeps_the_rest_in_order() {
        let admission = Admission::new("test source 1", InvalidMessages::Skip);
        let mut oversized = message(4, b"{}");
        oversized.headers = Some(headers_of_wire_size(MAX_USER_HEADERS_SIZE + 1));
        let mut b = batch(
            Schema::Json,
            vec![
                message(1, b"{\"ok\":1}"),
                message(2, b"not json"),
                message(3, b""),
                oversized,
                message(5, b"[]"),
            ],
        );
        let outcome = admission.admit(&mut b, describe);
        assert_eq!(
            outcome,
            AdmissionOutcome {
                skipped: 3,
                wrapped: 0
            }
        );
        assert_eq!(ids(&b), [1, 5]);
        assert_eq!(b.messages[0].payload, b"{\"ok\":1}");
        assert_eq!((admission.skipped(), admission.wrapped()), (3, 0));
        let mut b = batch(Schema::Text, vec![message(6, &[0xff]), message(7, b"t")]);
        admission.admit(&mut b, describe);
        assert_eq!(ids(&b), [7]);
        assert_eq!(admission.summary(), "skipped=4 wrapped=0");
    }

    #[test]
    fn wrap_mends_undecodable_payloads_and_skips_the_rest() {
        let admission = Admission::new("test source 2", InvalidMessages::Wrap);
        let mut b = batch(
            Schema::Json,
            vec![
                message(1, b"{\"ok\":1}"),
                message(2, b"plain \"text\""),
                message(3, &[0xff, 0x00, 0x7b]),
                message(4, b""),
            ],
        );
        let outcome = admission.admit(&mut b, describe);
        assert_eq!(
            outcome,
            AdmissionOutcome {
                skipped: 1,
                wrapped: 2
            }
        );
        assert_eq!(ids(&b), [1, 2, 3]);
        assert_eq!(b.messages[0].payload, b"{\"ok\":1}");
        let as_json =
            |payload: &[u8]| serde_json::from_slice::<serde_json::Value>(payload).unwrap();
        assert_eq!(
            as_json(&b.messages[1].payload),
            serde_json::json!({"invalid_payload_text": "plain \"text\""})
        );
        assert_eq!(
            as_json(&b.messages[2].payload),
            serde_json::json!({"invalid_payload_base64": "/wB7"})
        );
        for m in &b.messages {
            assert_eq!(check(Schema::Json, m), Ok(()));
        }

        let mut b = batch(Schema::Text, vec![message(5, &[0xff, 0x00, 0x7b])]);
        admission.admit(&mut b, describe);
        assert_eq!(b.messages[0].payload, b"invalid_payload_base64:/wB7");
        assert_eq!((admission.skipped(), admission.wrapped()), (1, 3));
    }

    #[test]
    fn wrap_skips_what_would_still_be_refused() {
        let admission = Admission::new("test source 3", InvalidMessages::Wrap);
        // Not JSON, and over the limit once wrapped (Base64 grows it by a third).
        let near_limit = vec![0xffu8; MAX_PAYLOAD_SIZE / 4 * 3 + 3];
        let mut headed = message(2, b"not json");
        headed.headers = Some(headers_of_wire_size(MAX_USER_HEADERS_SIZE + 1));
        let mut b = batch(
            Schema::Json,
            vec![message(1, &near_limit), headed, message(3, b"")],
        );
        let outcome = admission.admit(&mut b, describe);
        assert_eq!(
            outcome,
            AdmissionOutcome {
                skipped: 3,
                wrapped: 0
            }
        );
        assert!(b.messages.is_empty());
        // A raw batch has nothing to wrap: an empty payload is skipped.
        let mut b = batch(Schema::Raw, vec![message(4, b""), message(5, &[0])]);
        admission.admit(&mut b, describe);
        assert_eq!(ids(&b), [5]);
    }

    #[test]
    fn policy_reads_from_config() {
        #[derive(Deserialize)]
        struct Config {
            #[serde(default)]
            invalid_messages: InvalidMessages,
        }
        let read = |json: &str| serde_json::from_str::<Config>(json).map(|c| c.invalid_messages);
        assert_eq!(read("{}").unwrap(), InvalidMessages::Skip);
        assert_eq!(
            read(r#"{"invalid_messages":"skip"}"#).unwrap(),
            InvalidMessages::Skip
        );
        assert_eq!(
            read(r#"{"invalid_messages":"wrap"}"#).unwrap(),
            InvalidMessages::Wrap
        );
        let error = read(r#"{"invalid_messages":"drop"}"#)
            .unwrap_err()
            .to_string();
        assert!(error.contains("skip") && error.contains("wrap"), "{error}");
    }
}
