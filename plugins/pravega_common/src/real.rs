//! The client interface on pravega-client 0.3.7 (`ClientFactoryAsync` on the
//! plugin's tokio runtime). The library panics in places (`expect`,
//! `assert!`), so every call runs in a task of its own: a panic or a hang
//! becomes a `ClientError`, and the object it happened in is given up.

use crate::client::{
    Acknowledgement, ClientError, EventReader, EventWriter, NewEvent, PravegaClient, ReadEvent,
    ScalingPolicy, StartAt, StreamCut, Successors, Transaction, TransactionalWriter,
};
use crate::connection::{PravegaConnection, TlsSettings};
use async_trait::async_trait;
use pravega_client::client_factory::ClientFactoryAsync;
use pravega_client::event::reader_group::{
    ReaderGroupConfigBuilder, StreamCutV1, StreamCutVersioned,
};
use pravega_client_config::connection_type::{ConnectionType, MockType};
use pravega_client_config::credentials::Credentials;
use pravega_client_config::{ClientConfig, ClientConfigBuilder, MOCK_CONTROLLER_URI};
use pravega_client_retry::retry_policy::RetryWithBackoff;
use pravega_client_shared::{
    PravegaNodeUri, Retention, ScaleType, Scaling, Scope, ScopedSegment, ScopedStream, Stream,
    StreamConfiguration, Timestamp, WriterId,
};
use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// Bytes before each event's payload in a segment (type and length).
const EVENT_HEADER_BYTES: i64 = 8;
/// What pravega-client 0.3.7 accepts in one event.
pub const MAX_EVENT_BYTES: usize = 8 * 1024 * 1024;
/// Numbers the readers of this process. An old reader's drop takes its id
/// offline in the background, so a new reader must not share that id.
static READERS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

pub struct RealClient {
    factory: ClientFactoryAsync,
    stream: ScopedStream,
    /// The limit of one call, retries inside the client included.
    limit: Duration,
}

impl RealClient {
    /// The client for `connection` (validated); call it inside the plugin's
    /// tokio runtime, which the client spawns its tasks on. No request is
    /// made here.
    pub fn connect(
        connection: &PravegaConnection,
        transaction_timeout: Duration,
    ) -> Result<Self, String> {
        let config = client_config(connection, transaction_timeout)?;
        let limit = connection
            .request_timeout
            .saturating_mul(connection.max_retries.saturating_add(2));
        Self::with_config(config, &connection.scope, &connection.stream, limit)
            .map_err(|e| connection.describe(&e))
    }

    /// pravega-client's own mock mode: an in-memory controller and segment
    /// store inside the process, for tests. It serves stream setup, appends
    /// and transactions; it reads back filler bytes, not the events written,
    /// and cannot remove reader groups or take readers offline (its
    /// connection task panics on those requests), so calls limit at 3 s.
    pub fn mock(scope: &str, stream: &str) -> Result<Self, String> {
        let config = ClientConfigBuilder::default()
            .controller_uri(MOCK_CONTROLLER_URI)
            .mock(true)
            .connection_type(ConnectionType::Mock(MockType::Happy))
            .is_tls_enabled(false)
            .trustcerts(Vec::<String>::new())
            .credentials(Credentials::basic(String::new(), String::new()))
            .build()
            .map_err(|e| e.to_string())?;
        Self::with_config(config, scope, stream, Duration::from_secs(3))
    }

    fn with_config(
        config: ClientConfig,
        scope: &str,
        stream: &str,
        limit: Duration,
    ) -> Result<Self, String> {
        let handle = tokio::runtime::Handle::try_current()
            .map_err(|_| "the Pravega client needs a tokio runtime".to_string())?;
        // With authentication the controller client `block_on`s the
        // credentials, which panics on a runtime thread: a plain thread it is
        // (a panic there is an error too).
        let factory = std::thread::scope(|scope| {
            scope
                .spawn(|| ClientFactoryAsync::new(config, handle))
                .join()
        })
        .map_err(|_| "the Pravega client panicked while starting".to_string())?;
        Ok(Self {
            factory,
            stream: ScopedStream {
                scope: Scope::from(scope.to_string()),
                stream: Stream::from(stream.to_string()),
            },
            limit,
        })
    }
}

/// The client configuration, every field that the client would otherwise
/// take from the environment or the working directory set explicitly.
fn client_config(
    connection: &PravegaConnection,
    transaction_timeout: Duration,
) -> Result<ClientConfig, String> {
    let (_, host, port) = connection.controller_parts()?;
    let tls = connection.tls_enabled();
    let settings = connection.tls.as_ref();
    let trust = match settings.and_then(|t| t.trust_store.as_deref()) {
        Some(path) => vec![
            std::fs::read_to_string(path)
                .map_err(|e| format!("tls.trust_store: cannot read {path}: {e}"))?,
        ],
        None => Vec::new(),
    };
    let credentials = match &connection.credentials {
        Some(c) => match (&c.username, &c.password, &c.token) {
            (Some(user), Some(password), _) => {
                Credentials::basic(user.clone(), password.expose().to_string())
            }
            (_, _, Some(token)) => Credentials::basic_with_token(token.expose().to_string()),
            _ => return Err("credentials: incomplete".into()),
        },
        None => Credentials::basic(String::new(), String::new()),
    };
    let retries = RetryWithBackoff::default_setting()
        .initial_delay(connection.retry_delay)
        .max_delay(Duration::from_secs(10))
        .max_attempt(connection.max_retries as usize);
    // The scheme decides TLS; the client's own check compares it with `is_tls_enabled`.
    let scheme = if tls { "tls" } else { "tcp" };
    ClientConfigBuilder::default()
        .controller_uri(PravegaNodeUri::from(
            format!("{scheme}://{host}:{port}").as_str(),
        ))
        .is_tls_enabled(tls)
        .trustcerts(trust)
        .disable_cert_verification(settings.is_some_and(TlsSettings::accepts_invalid_certs))
        .credentials(credentials)
        .is_auth_enabled(connection.credentials.is_some())
        .request_timeout(connection.request_timeout)
        .retry_policy(retries)
        .transaction_timeout_time(transaction_timeout.as_millis() as u64)
        .build()
        .map_err(|e| format!("client configuration: {e}"))
}

/// Runs `work` as a task of its own: its panic or hang ends here.
async fn contained<T: Send + 'static>(
    what: &str,
    limit: Duration,
    work: impl Future<Output = T> + Send + 'static,
) -> Result<T, ClientError> {
    let task = tokio::spawn(work);
    let abort = task.abort_handle();
    match tokio::time::timeout(limit, task).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) if e.is_panic() => {
            let payload = e.into_panic();
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            Err(ClientError::Panicked(format!("{what} ({message})")))
        }
        Ok(Err(_)) => Err(ClientError::Failed(format!("{what}: cancelled"))),
        Err(_) => {
            abort.abort();
            Err(ClientError::TimedOut(what.to_string()))
        }
    }
}

fn failed(what: &str, error: impl std::fmt::Display) -> ClientError {
    ClientError::Failed(format!("{what}: {error}"))
}

fn scaling(policy: ScalingPolicy) -> Scaling {
    let (scale_type, target_rate, scale_factor, min_num_segments) = match policy {
        ScalingPolicy::Fixed { segments } => (ScaleType::FixedNumSegments, 0, 0, segments),
        ScalingPolicy::EventsPerSecond {
            target_rate,
            scale_factor,
            min_segments,
        } => (
            ScaleType::ByRateInEventsPerSec,
            target_rate,
            scale_factor,
            min_segments,
        ),
        ScalingPolicy::KilobytesPerSecond {
            target_rate,
            scale_factor,
            min_segments,
        } => (
            ScaleType::ByRateInKbytesPerSec,
            target_rate,
            scale_factor,
            min_segments,
        ),
    };
    Scaling {
        scale_type,
        target_rate,
        scale_factor,
        min_num_segments,
    }
}

#[async_trait]
impl PravegaClient for RealClient {
    async fn ensure_stream(&self, policy: ScalingPolicy) -> Result<(), ClientError> {
        let factory = self.factory.clone();
        let stream = self.stream.clone();
        contained("creating the scope and stream", self.limit, async move {
            let controller = factory.controller_client();
            controller
                .create_scope(&stream.scope)
                .await
                .map_err(|e| failed("create scope", e.error))?;
            let config = StreamConfiguration {
                scoped_stream: stream,
                scaling: scaling(policy),
                retention: Retention::default(),
                tags: None,
            };
            controller
                .create_stream(&config)
                .await
                .map_err(|e| failed("create stream", e.error))?;
            Ok(())
        })
        .await?
    }

    async fn stream_exists(&self) -> Result<bool, ClientError> {
        let factory = self.factory.clone();
        let stream = self.stream.clone();
        contained("looking the stream up", self.limit, async move {
            let controller = factory.controller_client();
            let scope_exists = controller
                .check_scope_exists(&stream.scope)
                .await
                .map_err(|e| failed("check scope", e.error))?;
            if !scope_exists {
                return Ok(false);
            }
            controller
                .check_stream_exists(&stream)
                .await
                .map_err(|e| failed("check stream", e.error))
        })
        .await?
    }

    async fn event_writer(&self) -> Result<Box<dyn EventWriter>, ClientError> {
        let factory = self.factory.clone();
        let stream = self.stream.clone();
        let writer = contained("starting a writer", self.limit, async move {
            factory.create_event_writer(stream)
        })
        .await?;
        Ok(Box::new(RealEventWriter {
            writer: Arc::new(Mutex::new(writer)),
            limit: self.limit,
        }))
    }

    async fn transactional_writer(
        &self,
        writer_id: u128,
    ) -> Result<Box<dyn TransactionalWriter>, ClientError> {
        let factory = self.factory.clone();
        let stream = self.stream.clone();
        let writer = contained("starting a transactional writer", self.limit, async move {
            factory
                .create_transactional_event_writer(stream, WriterId(writer_id))
                .await
        })
        .await?;
        Ok(Box::new(RealTransactionalWriter {
            writer: Arc::new(Mutex::new(writer)),
            limit: self.limit,
        }))
    }

    async fn resolve(&self, start: &StartAt) -> Result<StreamCut, ClientError> {
        let tail = match start {
            StartAt::Cut(cut) => return Ok(cut.clone()),
            StartAt::Head => false,
            StartAt::Tail => true,
        };
        let factory = self.factory.clone();
        let stream = self.stream.clone();
        let cut = contained("finding the stream's segments", self.limit, async move {
            let meta = factory.create_stream_meta_client(stream).await;
            let cut = if tail {
                meta.fetch_current_tail_segments().await
            } else {
                meta.fetch_current_head_segments().await
            };
            cut.map_err(|e| failed("stream segments", e))
        })
        .await??;
        match cut {
            StreamCutVersioned::V1(cut) => Ok(cut
                .get_positions()
                .into_iter()
                .map(|(segment, offset)| (segment.segment.number, offset))
                .collect()),
            _ => Err(failed("stream segments", "no positions")),
        }
    }

    async fn successors(&self, segment: i64) -> Result<Successors, ClientError> {
        let factory = self.factory.clone();
        let segment = ScopedSegment {
            scope: self.stream.scope.clone(),
            stream: self.stream.stream.clone(),
            segment: pravega_client_shared::Segment::from(segment),
        };
        let found = contained("finding a segment's successors", self.limit, async move {
            factory
                .controller_client()
                .get_successors(&segment)
                .await
                .map_err(|e| failed("segment successors", e.error))
        })
        .await??;
        Ok(found
            .segment_with_predecessors
            .iter()
            .map(|(successor, predecessors)| {
                (
                    successor.scoped_segment.segment.number,
                    predecessors.iter().map(|p| p.number).collect(),
                )
            })
            .collect())
    }

    async fn reader(
        &self,
        group: &str,
        cut: &StreamCut,
    ) -> Result<Box<dyn EventReader>, ClientError> {
        let positions: HashMap<ScopedSegment, i64> = cut
            .iter()
            .map(|(number, offset)| {
                let segment = ScopedSegment {
                    scope: self.stream.scope.clone(),
                    stream: self.stream.stream.clone(),
                    segment: pravega_client_shared::Segment::from(*number),
                };
                (segment, *offset)
            })
            .collect();
        let config = ReaderGroupConfigBuilder::default()
            .read_from_stream(
                self.stream.clone(),
                StreamCutVersioned::V1(StreamCutV1::new(self.stream.clone(), positions)),
            )
            .build();
        let factory = self.factory.clone();
        let scope = self.stream.scope.clone();
        let number = READERS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = unique_group_name(group, number);
        let reader_id = format!("iggy-{}-{number}", std::process::id());
        tracing::info!("reader group `{name}` starts at {cut:?}");
        let task_name = name.clone();
        let reader = contained("creating the reader group", self.limit, async move {
            let group = factory
                .create_reader_group_with_config(scope, task_name, config)
                .await;
            group.create_reader(reader_id).await
        })
        .await?;
        Ok(Box::new(RealEventReader {
            reader: Some(Arc::new(Mutex::new(reader))),
            factory: self.factory.clone(),
            scope: self.stream.scope.clone(),
            group: name,
            limit: self.limit,
            stalled: false,
        }))
    }
}

/// `group` with the time and `number` after it. Pravega cannot make a
/// reader group again under the name of one just removed: pravega-client
/// retries on the new group's state table for about ten seconds and then
/// panics making the reader (seen with a 0.13 server). So each reader
/// group gets a name of its own, and a group left by an earlier run (which
/// keeps its own positions) is never picked up again either.
fn unique_group_name(group: &str, number: u64) -> String {
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_millis());
    format!("{group}-{millis}-{number}")
}

struct RealEventWriter {
    writer: Arc<Mutex<pravega_client::event::EventWriter>>,
    limit: Duration,
}

#[async_trait]
impl EventWriter for RealEventWriter {
    async fn write_all(
        &mut self,
        events: Vec<NewEvent>,
    ) -> Result<Vec<Acknowledgement>, ClientError> {
        let writer = self.writer.clone();
        // One task for the whole batch, writing in order: the client's
        // writer only queues each event for its own sender.
        let receivers = contained("writing events", self.limit, async move {
            let mut writer = writer.lock().await;
            let mut receivers = Vec::with_capacity(events.len());
            for event in events {
                receivers.push(match event.routing_key {
                    Some(key) => writer.write_event_by_routing_key(key, event.payload).await,
                    None => writer.write_event(event.payload).await,
                });
            }
            receivers
        })
        .await?;
        let limit = self.limit;
        Ok(receivers
            .into_iter()
            .map(|receiver| -> Acknowledgement {
                Box::pin(async move {
                    match tokio::time::timeout(limit, receiver).await {
                        Ok(Ok(Ok(()))) => Ok(()),
                        Ok(Ok(Err(e))) => Err(failed("event not acknowledged", e)),
                        Ok(Err(_)) => Err(ClientError::Failed(
                            "event not acknowledged: the writer stopped (it may have panicked)"
                                .into(),
                        )),
                        Err(_) => Err(ClientError::TimedOut(
                            "waiting for an acknowledgement".into(),
                        )),
                    }
                })
            })
            .collect())
    }
}

struct RealTransactionalWriter {
    writer: Arc<Mutex<pravega_client::event::TransactionalEventWriter>>,
    limit: Duration,
}

#[async_trait]
impl TransactionalWriter for RealTransactionalWriter {
    async fn begin(&mut self) -> Result<Box<dyn Transaction>, ClientError> {
        let writer = self.writer.clone();
        let transaction = contained("beginning a transaction", self.limit, async move {
            writer.lock().await.begin().await
        })
        .await?
        .map_err(|e| failed("begin transaction", e))?;
        Ok(Box::new(RealTransaction {
            id: format!("{:?}", transaction.txn_id()),
            transaction: Arc::new(Mutex::new(transaction)),
            limit: self.limit,
        }))
    }
}

struct RealTransaction {
    id: String,
    transaction: Arc<Mutex<pravega_client::event::Transaction>>,
    limit: Duration,
}

impl RealTransaction {
    async fn run<F, Fut>(&self, what: &str, call: F) -> Result<(), ClientError>
    where
        F: FnOnce(Arc<Mutex<pravega_client::event::Transaction>>) -> Fut + Send + 'static,
        Fut: Future<
                Output = Result<(), pravega_client::event::transactional_writer::TransactionError>,
            > + Send,
    {
        let transaction = self.transaction.clone();
        contained(what, self.limit, async move { call(transaction).await })
            .await?
            .map_err(|e| failed(what, e))
    }
}

#[async_trait]
impl Transaction for RealTransaction {
    fn id(&self) -> String {
        self.id.clone()
    }

    async fn write_all(&mut self, events: Vec<NewEvent>) -> Result<(), ClientError> {
        self.run("write to transaction", move |t| async move {
            let mut transaction = t.lock().await;
            for event in events {
                transaction
                    .write_event(event.routing_key, event.payload)
                    .await?;
            }
            Ok(())
        })
        .await
    }

    async fn commit(&mut self, timestamp_ms: u64) -> Result<(), ClientError> {
        self.run("commit transaction", move |t| async move {
            t.lock().await.commit(Timestamp(timestamp_ms)).await
        })
        .await
    }

    async fn abort(&mut self) -> Result<(), ClientError> {
        self.run("abort transaction", |t| async move {
            t.lock().await.abort().await
        })
        .await
    }
}

struct RealEventReader {
    /// Gone once closed, or after the client failed inside it.
    reader: Option<Arc<Mutex<pravega_client::event::EventReader>>>,
    factory: ClientFactoryAsync,
    scope: Scope,
    group: String,
    limit: Duration,
    /// At an event it cannot read past (`zero_length_event`).
    stalled: bool,
}

/// Reads from the slices that have data until `max` events or `wait` is
/// over; stops at the first slice that gave events (another acquire could
/// wait a second for nothing). `true` with the events: the reader is
/// stalled (see `zero_length_event`).
async fn read_slices(
    reader: &mut pravega_client::event::EventReader,
    max: usize,
    wait: Duration,
) -> Result<(Vec<ReadEvent>, bool), ClientError> {
    let deadline = Instant::now() + wait;
    let mut events = Vec::new();
    let mut stalled = false;
    // acquire_segment waits at most about a second, so this is bounded by
    // `wait`; the count only guards against a clock that does not move.
    for _ in 0..=wait.as_secs().saturating_add(2) * 64 {
        if let Some(mut slice) = reader
            .acquire_segment()
            .await
            .map_err(|e| failed("read", e))?
        {
            let segment = ScopedSegment::from(slice.meta.scoped_segment.as_str())
                .segment
                .number;
            for event in slice.by_ref().take(max - events.len()) {
                let next_offset =
                    event.offset_in_segment + EVENT_HEADER_BYTES + event.value.len() as i64;
                events.push(ReadEvent {
                    segment,
                    offset: event.offset_in_segment,
                    next_offset,
                    payload: event.value,
                });
            }
            if let Some(empty) = zero_length_event(&slice, segment, events.len() < max) {
                events.push(empty);
                stalled = true;
            }
            // What is left in the slice stays with the reader for the next read.
            reader
                .release_segment(slice)
                .await
                .map_err(|e| failed("release segment", e))?;
        }
        if stalled || !events.is_empty() || Instant::now() >= deadline {
            break;
        }
    }
    Ok((events, stalled))
}

/// pravega-client 0.3.7 cannot read an event of zero bytes (which its
/// writer writes): the slice stops at it without marking partial data,
/// and every later acquire of the segment stops there again, so nothing
/// after it would ever be read. Such a slice (it ended, `ended`, with bytes
/// left that are no partial event) is at a zero-length event at its read
/// offset; it is returned as an empty event, 8 bytes long (its header), so
/// that the positions go past it and a new reader group can read on.
fn zero_length_event(
    slice: &pravega_client::event::reader::SegmentSlice,
    segment: i64,
    ended: bool,
) -> Option<ReadEvent> {
    if !ended || slice.is_empty() {
        return None;
    }
    let offset = slice.meta.read_offset;
    tracing::warn!(
        "segment {segment} has an event of zero bytes at offset {offset}, which pravega-client \
         cannot read past: it is passed on as an empty event and a new reader group reads on after it"
    );
    Some(ReadEvent {
        segment,
        offset,
        next_offset: offset + EVENT_HEADER_BYTES,
        payload: Vec::new(),
    })
}

#[async_trait]
impl EventReader for RealEventReader {
    async fn read(&mut self, max: usize, wait: Duration) -> Result<Vec<ReadEvent>, ClientError> {
        let reader = self
            .reader
            .clone()
            .ok_or_else(|| ClientError::Failed("the reader is closed".into()))?;
        let result = contained("read", wait + self.limit, async move {
            read_slices(&mut *reader.lock().await, max.max(1), wait).await
        })
        .await;
        if let Err(ClientError::Panicked(_) | ClientError::TimedOut(_)) = &result {
            // Its read positions are unknown now.
            self.reader = None;
        }
        let (events, stalled) = result??;
        self.stalled = stalled;
        Ok(events)
    }

    fn stalled(&self) -> bool {
        self.stalled
    }

    async fn close(&mut self) -> Result<(), ClientError> {
        let Some(reader) = self.reader.take() else {
            return Ok(());
        };
        let offline = contained("taking the reader offline", self.limit, async move {
            reader.lock().await.reader_offline().await
        })
        .await?
        .map_err(|e| failed("reader offline", e));
        let (factory, scope, group) =
            (self.factory.clone(), self.scope.clone(), self.group.clone());
        contained("removing the reader group", self.limit, async move {
            factory.delete_reader_group(scope, group).await
        })
        .await?
        .map_err(|e| failed("remove reader group", e))?;
        offline
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connection::PravegaConnection;

    #[tokio::test]
    async fn contained_turns_panics_and_hangs_into_errors() {
        let limit = Duration::from_millis(200);
        assert_eq!(contained("add", limit, async { 1 + 1 }).await, Ok(2));
        let panicked = contained("explode", limit, async move {
            if limit > Duration::ZERO {
                panic!("expect failed: boom");
            }
        })
        .await;
        assert_eq!(
            panicked,
            Err(ClientError::Panicked(
                "explode (expect failed: boom)".into()
            ))
        );
        let started = Instant::now();
        let hung = contained("hang", limit, std::future::pending::<()>()).await;
        assert_eq!(hung, Err(ClientError::TimedOut("hang".into())));
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    #[test]
    fn config_never_falls_back_to_the_environment_or_working_directory() {
        let connection: PravegaConnection = serde_json::from_str(
            r#"{"controller_uri":"tcp://127.0.0.1:9090","scope":"s","stream":"t",
            "credentials":{"username":"admin","password":"hunter2"}}"#,
        )
        .unwrap();
        let config = client_config(&connection, Duration::from_secs(30)).unwrap();
        assert!(!config.is_tls_enabled);
        assert!(config.trustcerts.is_empty());
        assert!(config.is_auth_enabled);
        assert_eq!(config.transaction_timeout_time, 30_000);
        assert_eq!(config.controller_uri.0, "tcp://127.0.0.1:9090");

        let missing_ca: PravegaConnection = serde_json::from_str(
            r#"{"controller_uri":"tls://127.0.0.1:9090","scope":"s","stream":"t",
            "tls":{"trust_store":"/nonexistent/ca.pem"}}"#,
        )
        .unwrap();
        let error = client_config(&missing_ca, Duration::from_secs(30)).unwrap_err();
        assert!(error.starts_with("tls.trust_store"), "{error}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn starts_with_credentials_inside_a_runtime() {
        let connection: PravegaConnection = serde_json::from_str(
            r#"{"controller_uri":"tcp://127.0.0.1:9090","scope":"s","stream":"t",
            "credentials":{"token":"YWRtaW46c2VjcmV0"}}"#,
        )
        .unwrap();
        // pravega-client `block_on`s the credentials while starting, which
        // panics on a runtime thread unless started elsewhere.
        assert!(RealClient::connect(&connection, Duration::from_secs(30)).is_ok());
    }
}
