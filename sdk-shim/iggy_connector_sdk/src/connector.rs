//! The two traits a plugin implements.

use crate::error::Error;
use crate::source::SourceBatchResult;
use crate::wire::{ConsumedMessage, MessagesMetadata, ProducedMessages, TopicMetadata};
use async_trait::async_trait;

/// A source produces messages that the runtime sends to its configured topic.
#[async_trait]
pub trait Source: Send + Sync {
    async fn open(&mut self) -> Result<(), Error>;

    /// Produces the next batch; wait inside when there is nothing yet.
    async fn poll(&self) -> Result<ProducedMessages, Error>;

    /// How the last polled batch ended. Stage cursor changes in `poll` and
    /// apply them on `Ack`; discard them on `Nack` so the data is polled again.
    /// Returning an error stops the poll loop.
    async fn on_batch_result(&self, _result: SourceBatchResult) -> Result<(), Error> {
        Ok(())
    }

    async fn close(&mut self) -> Result<(), Error>;
}

/// A sink receives batches from its configured topics.
#[async_trait]
pub trait Sink: Send + Sync {
    async fn open(&mut self) -> Result<(), Error>;

    /// Writes one batch of one partition; return an error when it was not durably written.
    async fn consume(
        &self,
        topic_metadata: &TopicMetadata,
        messages_metadata: MessagesMetadata,
        messages: Vec<ConsumedMessage>,
    ) -> Result<(), Error>;

    async fn close(&mut self) -> Result<(), Error>;
}
