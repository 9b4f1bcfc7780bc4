//! Apache Iggy connector: writes Iggy messages as points into openGemini
//! (InfluxDB 1.x line protocol over HTTP). See README.md for settings,
//! mapping rules and guarantees.

mod batch;
mod client;
mod config;
mod line_protocol;
mod mapping;
mod outage;
mod session;
mod validate;
mod writer;

use iggy_connector_common::session_sink::SessionSink;
use iggy_connector_sdk::sink_connector;
use session::Session;

pub type OpenGeminiSink = SessionSink<Session>;

sink_connector!(OpenGeminiSink);
