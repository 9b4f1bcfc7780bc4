//! Reading JetStream's answer to one publish: a PubAck, an API error, or a
//! status message from the server (no responders).

use async_nats::jetstream::ErrorCode;
use async_nats::{Message, StatusCode};
use serde::Deserialize;
use serde::de::IgnoredAny;
use std::borrow::Cow;

/// What JetStream's refusal of a message on a subject that already holds
/// `max_messages_per_subject` means; only a stream with
/// `discard_new_per_subject` refuses so, and its config is read at open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FullSubject {
    /// One message per subject: the subject names the message's key, and
    /// the message of that key is stored already.
    Duplicate,
    /// More than one per subject: the subject is full, for good.
    Unstorable,
}

/// The refusal for a full subject: a store failure (10077) that says so.
/// The code alone covers every failed store, so the text tells them apart.
const SUBJECT_FULL_CODE: ErrorCode = ErrorCode::STREAM_STORE_FAILED;
const SUBJECT_FULL: &str = "maximum messages per subject exceeded";

#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Stored,
    /// Dropped by the stream's duplicate window: stored earlier.
    Duplicate,
    Refused {
        permanent: bool,
        reason: String,
    },
}

/// Only what decides the outcome is read; the stream name and sequence are skipped.
#[derive(Deserialize)]
struct Reply<'a> {
    stream: Option<IgnoredAny>,
    #[serde(default)]
    duplicate: bool,
    #[serde(borrow)]
    error: Option<ApiError<'a>>,
}

#[derive(Deserialize)]
struct ApiError<'a> {
    #[serde(default)]
    err_code: u64,
    #[serde(borrow, default)]
    description: Cow<'a, str>,
}

fn transient(reason: String) -> Outcome {
    Outcome::Refused {
        permanent: false,
        reason,
    }
}

pub fn outcome(reply: &Message, full_subject: FullSubject) -> Outcome {
    match reply.status {
        Some(StatusCode::NO_RESPONDERS) => {
            return transient(
                "no responders: no stream captures the subject, or JetStream is not answering"
                    .into(),
            );
        }
        Some(status) if status != StatusCode::OK => {
            let text = reply.description.as_deref().unwrap_or("no description");
            return transient(format!("server status {status}: {text}"));
        }
        _ => {}
    }
    match serde_json::from_slice::<Reply<'_>>(&reply.payload) {
        Ok(Reply {
            error: Some(error), ..
        }) => {
            // The refusals of this very message that no retry can change;
            // anything else (a stream being restored, a leader election,
            // limits) may pass later.
            let code = ErrorCode(error.err_code);
            if code == SUBJECT_FULL_CODE && error.description == SUBJECT_FULL {
                return match full_subject {
                    FullSubject::Duplicate => Outcome::Duplicate,
                    FullSubject::Unstorable => Outcome::Refused {
                        permanent: true,
                        reason: format!("{SUBJECT_FULL} (JetStream error {})", error.err_code),
                    },
                };
            }
            Outcome::Refused {
                permanent: [
                    ErrorCode::STREAM_WRONG_LAST_MESSAGE_ID,
                    ErrorCode::STREAM_WRONG_LAST_SEQUENCE,
                    ErrorCode::STREAM_MESSAGE_EXCEEDS_MAXIMUM,
                    ErrorCode::STREAM_HEADER_EXCEEDS_MAXIMUM,
                    ErrorCode::STREAM_NOT_MATCH,
                ]
                .contains(&code),
                reason: format!("{} (JetStream error {})", error.description, error.err_code),
            }
        }
        Ok(Reply {
            stream: Some(_),
            duplicate,
            ..
        }) => {
            if duplicate {
                Outcome::Duplicate
            } else {
                Outcome::Stored
            }
        }
        Ok(_) => transient("an acknowledgement without a stream".into()),
        Err(error) => transient(format!("an acknowledgement that does not parse: {error}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(payload: &str, status: Option<StatusCode>) -> Message {
        Message {
            subject: "_INBOX.x.0".into(),
            reply: None,
            payload: payload.to_string().into(),
            headers: None,
            status,
            description: None,
            length: payload.len(),
        }
    }

    fn outcome(reply: &Message) -> Outcome {
        super::outcome(reply, FullSubject::Unstorable)
    }

    #[test]
    fn a_full_subject_is_a_duplicate_only_on_a_one_per_subject_stream() {
        // As nats-server 2.9.10 and 2.15.3 answer (checked by tests/dedup_by_key.rs).
        let full = reply(
            r#"{"error":{"code":503,"err_code":10077,"description":"maximum messages per subject exceeded"},"stream":"K","seq":0}"#,
            None,
        );
        assert_eq!(
            super::outcome(&full, FullSubject::Duplicate),
            Outcome::Duplicate
        );
        assert_eq!(
            super::outcome(&full, FullSubject::Unstorable),
            Outcome::Refused {
                permanent: true,
                reason: "maximum messages per subject exceeded (JetStream error 10077)".into()
            }
        );
        // Another store failure under the same code may pass later.
        let other = reply(
            r#"{"error":{"code":503,"err_code":10077,"description":"maximum messages exceeded"}}"#,
            None,
        );
        assert!(matches!(
            super::outcome(&other, FullSubject::Duplicate),
            Outcome::Refused {
                permanent: false,
                ..
            }
        ));
    }

    #[test]
    fn acks_errors_and_statuses_are_told_apart() {
        let stored = reply(r#"{"stream":"ORDERS","seq":7}"#, None);
        assert_eq!(outcome(&stored), Outcome::Stored);
        let duplicate = reply(r#"{"stream":"ORDERS","seq":7,"duplicate":true}"#, None);
        assert_eq!(outcome(&duplicate), Outcome::Duplicate);
        let wrong_id = reply(
            r#"{"error":{"code":400,"err_code":10070,"description":"wrong last msg ID: \"a\""}}"#,
            None,
        );
        assert_eq!(
            outcome(&wrong_id),
            Outcome::Refused {
                permanent: true,
                reason: "wrong last msg ID: \"a\" (JetStream error 10070)".into()
            }
        );
        let other = reply(
            r#"{"error":{"code":503,"err_code":10008,"description":"JetStream system temporarily unavailable"}}"#,
            None,
        );
        assert!(
            matches!(outcome(&other), Outcome::Refused { permanent: false, reason } if reason.contains("temporarily unavailable"))
        );
        let none = reply("", Some(StatusCode::NO_RESPONDERS));
        assert!(
            matches!(outcome(&none), Outcome::Refused { permanent: false, reason } if reason.starts_with("no responders"))
        );
        let garbage = reply("not json", None);
        assert!(
            matches!(outcome(&garbage), Outcome::Refused { permanent: false, reason } if reason.contains("does not parse"))
        );
    }
}
