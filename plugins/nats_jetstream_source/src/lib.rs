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

pub type NatsJetStreamSource = SessionSource<Session>;

source_connector!(NatsJetStreamSource);

#[async_trait]
impl SourceSession for Session {
    type Config = SourceConfig;
    const NAME: &'static str = "NATS JetStream source";
    const PLUGIN: &'static str = "nats_jetstream_source";

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
        Session::on_batch_result(self, result).await
    }

    async fn close(&mut self) {
        Session::close(self).await
    }

    fn invalid_messages(&self) -> InvalidMessages {
        Session::invalid_messages(self)
    }

    fn describe(&self, message: &ProducedMessage) -> String {
        Session::describe(self, message)
    }
}
