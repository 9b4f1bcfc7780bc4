//! Apache Iggy connector: publishes Iggy messages to NATS JetStream.
//! See README.md for settings and guarantees.

mod ack;
mod config;
mod mapping;
mod publisher;
mod session;
mod stream_check;
mod subject_template;

use iggy_connector_common::session_sink::SessionSink;
use iggy_connector_sdk::sink_connector;
use session::Session;

pub type NatsJetStreamSink = SessionSink<Session>;

sink_connector!(NatsJetStreamSink);
