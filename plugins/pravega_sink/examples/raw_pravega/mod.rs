//! The raw pravega-client side of the Pravega benchmarks (the sink's and,
//! through `#[path]`, the source's benchmark and real-server tests): a
//! client on the caller's own tokio runtime, stream setup, and the writers
//! the plugins are compared with.
//! Everything the client would otherwise read from the environment or the
//! working directory (TLS, certificates, credentials) is set explicitly, as
//! the plugins set it.

use pravega_client::client_factory::ClientFactory;
use pravega_client_config::ClientConfigBuilder;
use pravega_client_config::credentials::Credentials;
use pravega_client_shared::{
    PravegaNodeUri, Retention, ScaleType, Scaling, Scope, ScopedStream, Stream,
    StreamConfiguration, Timestamp, WriterId,
};

/// pravega-client logs routine work at INFO (a line per event read); the
/// plugins' READMEs tell users to quiet it, and the benchmarks run the
/// plugins so (the raw client in this process has no logger at all).
pub const QUIET_CLIENT_LOGS: &str =
    "info,pravega_client=warn,pravega_controller_client=warn,pravega_wire_protocol=warn";

/// Fixed segments of every benchmark stream (the plugins' `[create]` the same).
pub const SEGMENTS: i32 = 2;

pub fn client(controller_uri: &str) -> ClientFactory {
    let config = ClientConfigBuilder::default()
        .controller_uri(PravegaNodeUri::from(controller_uri))
        .is_tls_enabled(false)
        .trustcerts(Vec::<String>::new())
        .credentials(Credentials::basic(String::new(), String::new()))
        .is_auth_enabled(false)
        .build()
        .expect("client configuration");
    ClientFactory::new(config)
}

pub fn scoped(scope: &str, stream: &str) -> ScopedStream {
    ScopedStream {
        scope: Scope::from(scope.to_string()),
        stream: Stream::from(stream.to_string()),
    }
}

/// Creates the scope (when missing) and the stream with `segments` fixed segments.
pub async fn create_stream(factory: &ClientFactory, stream: &ScopedStream, segments: i32) {
    let controller = factory.controller_client();
    controller
        .create_scope(&stream.scope)
        .await
        .expect("create scope");
    let config = StreamConfiguration {
        scoped_stream: stream.clone(),
        scaling: Scaling {
            scale_type: ScaleType::FixedNumSegments,
            target_rate: 0,
            scale_factor: 0,
            min_num_segments: segments,
        },
        retention: Retention::default(),
        tags: None,
    };
    controller
        .create_stream(&config)
        .await
        .expect("create stream");
}

/// The sink's `at_least_once`: each batch handed to one event writer (no
/// routing key), then every acknowledgement awaited before the next batch.
pub async fn write_acknowledged(
    factory: &ClientFactory,
    stream: &ScopedStream,
    count: u64,
    batch: u64,
    event: impl Fn(u64) -> Vec<u8>,
) {
    let mut writer = factory.create_event_writer(stream.clone());
    let mut next = 0;
    while next < count {
        let end = count.min(next + batch);
        let mut acknowledgements = Vec::with_capacity((end - next) as usize);
        for n in next..end {
            acknowledgements.push(writer.write_event(event(n)).await);
        }
        for acknowledgement in acknowledgements {
            acknowledgement
                .await
                .expect("writer alive")
                .expect("event acknowledged");
        }
        next = end;
    }
}

/// The sink's `exactly_once`: one transaction per batch, committed before
/// the next one begins.
pub async fn write_transactions(
    factory: &ClientFactory,
    stream: &ScopedStream,
    count: u64,
    batch: u64,
    event: impl Fn(u64) -> Vec<u8>,
) {
    let mut writer = factory
        .create_transactional_event_writer(stream.clone(), WriterId(1))
        .await;
    let mut next = 0;
    while next < count {
        let end = count.min(next + batch);
        let mut transaction = writer.begin().await.expect("begin transaction");
        for n in next..end {
            transaction
                .write_event(None, event(n))
                .await
                .expect("write to transaction");
        }
        transaction
            .commit(Timestamp(now_ms()))
            .await
            .expect("commit transaction");
        next = end;
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_millis() as u64)
}
