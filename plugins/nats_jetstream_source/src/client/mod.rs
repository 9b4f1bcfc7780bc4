//! The NATS side: the connection and the stream, the durable consumers,
//! fetches and acknowledgements. Nothing here knows about Iggy.

pub mod acks;
pub mod consumers;
pub mod fetch;

use async_nats::jetstream::context::GetStreamErrorKind;
use async_nats::jetstream::{self, ErrorCode, stream::Stream};
use iggy_connector_nats_jetstream_common::NatsConnection;

/// Connects; errors name the setting at fault.
pub async fn connect(connection: &NatsConnection) -> Result<async_nats::Client, String> {
    connection.connect("iggy-nats-jetstream-source").await
}

/// Looks the stream up: `None` when the server says it does not exist (yet).
pub async fn find_stream(
    client: &async_nats::Client,
    connection: &NatsConnection,
    stream_name: &str,
) -> Result<Option<Stream>, String> {
    match jetstream::new(client.clone()).get_stream(stream_name).await {
        Ok(stream) => Ok(Some(stream)),
        Err(error)
            if matches!(error.kind(), GetStreamErrorKind::JetStream(ref e)
                if e.error_code() == ErrorCode::STREAM_NOT_FOUND) =>
        {
            Ok(None)
        }
        Err(error) => Err(format!(
            "stream `{stream_name}` (setting `stream`) on {}: {error}",
            connection.servers_for_logs()
        )),
    }
}
