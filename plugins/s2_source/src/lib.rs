//! Apache Iggy connector: reads S2 streams (a list, or every stream with a
//! prefix) into Iggy, resuming from positions committed on Ack.
//! See README.md for settings and guarantees.

mod config;
mod cursor;
mod feed;
mod mapping;
mod reader;
mod session;

use iggy_connector_common::session_source::SessionSource;
use iggy_connector_sdk::source_connector;
use session::Session;

pub type S2Source = SessionSource<Session>;

source_connector!(S2Source);
