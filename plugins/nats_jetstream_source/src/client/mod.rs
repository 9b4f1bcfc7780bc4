//! The NATS side: the connection and the stream, the durable consumers,
//! fetches and acknowledgements. Nothing here knows about Iggy.

pub mod acks;
pub mod consumers;
pub mod fetch;

use async_nats::jetstream::{self, stream::Stream};
use iggy_connector_shared::nats::NatsConnection;

/// Connects and looks the stream up; errors name the setting at fault.
pub async fn connect(
    connection: &NatsConnection,
    stream_name: &str,
) -> Result<(async_nats::Client, Stream), String> {
    let client = connection.connect("iggy-nats-jetstream-source").await?;
    let context = jetstream::new(client.clone());
    let stream = context.get_stream(stream_name).await.map_err(|error| {
        format!(
            "stream `{stream_name}` (setting `stream`) on {}: {error}",
            connection.servers_for_logs()
        )
    })?;
    Ok((client, stream))
}
