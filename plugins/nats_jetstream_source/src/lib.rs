//! Apache Iggy connector: reads a NATS JetStream stream into Iggy through
//! durable pull consumers. See README.md for settings and guarantees.

mod bounds;
mod client;
mod config;
mod mapping;
mod plan;
mod progress;
mod reader;
mod session;

use iggy_connector_common::session_source::SessionSource;
use iggy_connector_sdk::source_connector;
use session::Session;

pub type NatsJetStreamSource = SessionSource<Session>;

source_connector!(NatsJetStreamSource);
