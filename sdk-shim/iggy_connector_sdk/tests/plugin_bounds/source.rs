// The `Source` side of a test connector: the case that includes it declares
// `Connector`, with or without `Debug`.

use async_trait::async_trait;
use iggy_connector_sdk::{ConnectorState, Error, ProducedMessages, Schema, Source};

impl Connector {
    pub fn new(_id: u32, _config: serde_json::Value, _state: Option<ConnectorState>) -> Self {
        Self
    }
}

#[async_trait]
impl Source for Connector {
    async fn open(&mut self) -> Result<(), Error> {
        Ok(())
    }

    async fn poll(&self) -> Result<ProducedMessages, Error> {
        Ok(ProducedMessages {
            schema: Schema::Raw,
            messages: Vec::new(),
            state: None,
        })
    }

    async fn close(&mut self) -> Result<(), Error> {
        Ok(())
    }
}

iggy_connector_sdk::source_connector!(Connector);
