//! Apache Iggy connector: brings data and events from an Apache Flink
//! cluster into Iggy over Flink's HTTP APIs. Records mode reads the rows of a
//! streaming query through the SQL Gateway; monitor mode turns the REST
//! API's view of jobs into events. See README.md for settings and guarantees.

mod client;
mod config;
mod message;
mod metrics;
mod monitor;
mod records;
mod session;

use iggy_connector_common::session_source::SessionSource;
use iggy_connector_sdk::source_connector;

pub type FlinkSource = SessionSource<session::Session>;

source_connector!(FlinkSource);
