//! `iggy_connector_sdk`: a byte-compatible implementation of the Apache Iggy
//! connector SDK. A plugin written against it builds against upstream's with
//! only a `Cargo.toml` change; what it asks of a plugin, and how, is in
//! this crate's README.
//!
//! Beyond upstream: no panic crosses the ABI, config errors name the field,
//! undecodable messages are counted and logged with their offsets, and one
//! library serves both runtime generations (0.4.x v1 and 0.5+ v2 sources).

mod boundary;
mod config;
mod connector;
pub mod convert;
mod error;
pub mod log;
mod runtime;
mod schema;
pub mod sink;
pub mod source;
mod state;
mod wire;

pub use connector::{Sink, Source};
pub use convert::owned_value_to_serde_json;
pub use error::Error;
pub use log::LogCallback;
pub use runtime::get_runtime;
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
