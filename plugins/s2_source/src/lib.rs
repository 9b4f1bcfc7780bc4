//! Apache Iggy connector: reads S2 streams (a list, or every stream with a
//! prefix) into Iggy, resuming from positions committed on Ack.
//! See README.md for settings and guarantees.

mod config;
mod cursor;
mod feed;
mod mapping;
mod reader;
mod session;

use async_trait::async_trait;
use config::SourceConfig;
use iggy_connector_common::Counters;
use iggy_connector_common::admission::InvalidMessages;
use iggy_connector_common::session_source::{SessionSource, SourceSession};
use iggy_connector_sdk::source::SourceBatchResult;
use iggy_connector_sdk::{
    ConnectorState, Error, ProducedMessage, ProducedMessages, source_connector,
};
use session::Session;
use std::sync::Arc;

pub type S2Source = SessionSource<Session>;

source_connector!(S2Source);

#[async_trait]
impl SourceSession for Session {
    type Config = SourceConfig;
    const NAME: &'static str = "S2 source";
    const PLUGIN: &'static str = "s2_source";

    fn counters(&self) -> Arc<Counters> {
        Arc::clone(&self.counters)
    }

    async fn open(
        id: u32,
        config: SourceConfig,
        state: Option<ConnectorState>,
    ) -> Result<Self, Error> {
        Session::open(id, config, state).await
    }

    async fn poll(&mut self) -> Result<ProducedMessages, Error> {
        Session::poll(self).await
    }

    async fn on_batch_result(&mut self, result: SourceBatchResult) {
        match result {
            SourceBatchResult::Ack => self.ack(),
            SourceBatchResult::Nack => self.nack(),
        }
    }

    async fn close(&mut self) {
        Session::close(self)
    }

    fn invalid_messages(&self) -> InvalidMessages {
        Session::invalid_messages(self)
    }

    fn describe(&self, message: &ProducedMessage) -> String {
        mapping::describe(message)
    }
}
