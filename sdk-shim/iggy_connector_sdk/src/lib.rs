//! `iggy_connector_sdk`: a byte-compatible implementation of the Apache Iggy
//! connector SDK. A plugin written against it builds against upstream's with
//! only a `Cargo.toml` change; what it asks of a plugin, and how, is in
//! this crate's README.
//!
//! Beyond upstream: no panic crosses the ABI, config errors name the field,
//! undecodable messages are counted and logged with their offsets, and one
//! library serves both runtime generations (0.4.x v1 and 0.5+ v2 sources).

use async_trait::async_trait;
use std::sync::OnceLock;
use tokio::runtime::Runtime;

mod boundary;
mod config;
pub mod convert;
mod error;
pub mod log;
mod schema;
pub mod sink;
pub mod source;
mod state;
mod wire;

pub use convert::owned_value_to_serde_json;
pub use error::Error;
pub use log::LogCallback;
pub use schema::{Payload, Schema};
pub use state::ConnectorState;
pub use wire::{
    ConsumedMessage, DecodedMessage, MessagesMetadata, ProducedMessage, ProducedMessages,
    RawMessage, RawMessages, ReceivedMessage, TopicMetadata,
};

/// Upstream's public path for the map type its `sink_connector!` expansion
/// names; kept so plugins see the same API.
#[doc(hidden)]
pub mod connector_macro_support {
    pub use dashmap::DashMap;
}

static RUNTIME: OnceLock<Runtime> = OnceLock::new();

/// The library's own tokio runtime, on which every connector call runs.
pub fn get_runtime() -> &'static Runtime {
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .thread_name("iggy-connector")
            .build()
            .unwrap_or_else(|error| panic!("cannot start the connector's tokio runtime: {error}"))
    })
}

/// A source produces messages that the runtime sends to its configured topic.
#[async_trait]
pub trait Source: Send + Sync {
    async fn open(&mut self) -> Result<(), Error>;

    /// Produces the next batch; wait inside when there is nothing yet.
    async fn poll(&self) -> Result<ProducedMessages, Error>;

    /// How the last polled batch ended. Stage cursor changes in `poll` and
    /// apply them on `Ack`; discard them on `Nack` so the data is polled again.
    /// Returning an error stops the poll loop.
    async fn on_batch_result(&self, _result: source::SourceBatchResult) -> Result<(), Error> {
        Ok(())
    }

    async fn close(&mut self) -> Result<(), Error>;
}

/// A sink receives batches from its configured topics.
#[async_trait]
pub trait Sink: Send + Sync {
    async fn open(&mut self) -> Result<(), Error>;

    /// Writes one batch of one partition; return an error when it was not durably written.
    async fn consume(
        &self,
        topic_metadata: &TopicMetadata,
        messages_metadata: MessagesMetadata,
        messages: Vec<ConsumedMessage>,
    ) -> Result<(), Error>;

    async fn close(&mut self) -> Result<(), Error>;
}
