//! Apache Iggy connector: reads a Pravega stream into Iggy through a reader
//! group, resuming from positions committed on Ack.
//! See README.md for settings and guarantees.

mod config;
mod cursor;
mod mapping;
mod session;

use iggy_connector_common::session_source::SessionSource;
use iggy_connector_sdk::source_connector;

pub type PravegaSource = SessionSource<session::Session>;

source_connector!(PravegaSource);

#[cfg(test)]
mod tests;
