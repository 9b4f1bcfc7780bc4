//! Apache Iggy connector: writes Iggy messages to a Pravega stream as
//! events, best effort, at least once or exactly once (transactions).
//! See README.md for settings and guarantees.

mod config;
mod mapping;
mod positions;
mod session;
mod writer;

use iggy_connector_common::session_sink::SessionSink;
use iggy_connector_sdk::sink_connector;
use session::Session;

pub type PravegaSink = SessionSink<Session>;

sink_connector!(PravegaSink);
