// The `Sink` side of a test connector: the case that includes it declares
// `Connector`, with or without `Debug`.

use async_trait::async_trait;
use iggy_connector_sdk::{ConsumedMessage, Error, MessagesMetadata, Sink, TopicMetadata};

impl Connector {
    pub fn new(_id: u32, _config: serde_json::Value) -> Self {
        Self
    }
}

#[async_trait]
impl Sink for Connector {
    async fn open(&mut self) -> Result<(), Error> {
        Ok(())
    }

    async fn consume(
        &self,
        _topic: &TopicMetadata,
        _metadata: MessagesMetadata,
        _messages: Vec<ConsumedMessage>,
    ) -> Result<(), Error> {
        Ok(())
    }

    async fn close(&mut self) -> Result<(), Error> {
        Ok(())
    }
}

iggy_connector_sdk::sink_connector!(Connector);
