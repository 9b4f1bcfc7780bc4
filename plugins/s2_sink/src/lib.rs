//! Apache Iggy connector: appends Iggy messages to S2 streams, exactly once.
//! See README.md for settings and guarantees.

mod batches;
mod config;
mod mapping;
mod progress;
mod session;
mod stream_template;
mod upsert;
mod writer;

use iggy_connector_common::session_sink::SessionSink;
use iggy_connector_sdk::sink_connector;
use session::Session;

pub type S2Sink = SessionSink<Session>;

sink_connector!(S2Sink);
