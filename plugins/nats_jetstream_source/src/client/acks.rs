//! Acknowledgements (`+ACK`) and negative ones (`-NAK`, redelivered at once).
//!
//! All but the last of a group are fire-and-forget publishes on the one
//! connection, which the server applies in order; the last is sent as a
//! request, which the server answers only once it is applied (what
//! `double_ack` does). So when a group returns, all of it has been applied:
//! a fetch sent afterwards sees NAKed messages first, in the order NAKed.

use async_nats::{Client, Subject};
use bytes::Bytes;

const ACK: &[u8] = b"+ACK";
const NAK: &[u8] = b"-NAK";

/// How a durable consumer wants its messages acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckMode {
    /// One ack covers every earlier message of the consumer: ack the last.
    All,
    /// Every message is acknowledged on its own.
    Explicit,
}

/// A delivered message not yet acknowledged.
#[derive(Debug, Clone)]
pub struct Unacked {
    pub stream_sequence: u64,
    pub reply: Subject,
}

/// Acknowledges `deliveries` and waits until the server has applied it.
pub async fn ack(client: &Client, mode: AckMode, deliveries: &[Unacked]) -> Result<(), String> {
    match mode {
        AckMode::All => match deliveries.iter().max_by_key(|d| d.stream_sequence) {
            Some(last) => confirm(client, &last.reply, ACK).await,
            None => Ok(()),
        },
        AckMode::Explicit => send_group(client, deliveries.iter().map(|d| &d.reply), ACK).await,
    }
}

/// NAKs every delivery, in order, and waits until the server has applied them.
pub async fn nak<'a>(
    client: &Client,
    replies: impl ExactSizeIterator<Item = &'a Subject>,
) -> Result<(), String> {
    send_group(client, replies, NAK).await
}

async fn send_group<'a>(
    client: &Client,
    replies: impl ExactSizeIterator<Item = &'a Subject>,
    kind: &'static [u8],
) -> Result<(), String> {
    let count = replies.len();
    for (i, reply) in replies.enumerate() {
        if i + 1 == count {
            return confirm(client, reply, kind).await;
        }
        client
            .publish(reply.clone(), Bytes::from_static(kind))
            .await
            .map_err(|error| format!("cannot send {}: {error}", label(kind)))?;
    }
    Ok(())
}

async fn confirm(client: &Client, reply: &Subject, kind: &'static [u8]) -> Result<(), String> {
    client
        .request(reply.clone(), Bytes::from_static(kind))
        .await
        .map(drop)
        .map_err(|error| format!("{} not confirmed by the server: {error}", label(kind)))
}

fn label(kind: &[u8]) -> &'static str {
    if kind == ACK { "ack" } else { "NAK" }
}
