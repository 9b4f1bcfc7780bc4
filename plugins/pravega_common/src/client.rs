//! The thin interface the Pravega plugins use instead of pravega-client
//! itself: one stream's writers, transactions and reader. The connector logic
//! is tested against an in-process fake of it (feature `fake`); the
//! implementation on pravega-client is in `real`.

use async_trait::async_trait;
use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

/// Why a client call failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientError {
    /// No answer within the time limit (the client retries internally).
    TimedOut(String),
    /// The client library panicked; the object it panicked in is gone.
    Panicked(String),
    /// The server or the client refused the call.
    Failed(String),
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TimedOut(what) => write!(f, "{what}: timed out"),
            Self::Panicked(what) => write!(f, "{what}: the Pravega client panicked"),
            Self::Failed(what) => f.write_str(what),
        }
    }
}

/// pravega-client tells no error kinds apart that a caller could act on:
/// a lost connection, an unreachable controller or a sealed segment all
/// come as a failure that can pass, so every one is worth another attempt
/// (within the caller's retry policy).
impl iggy_connector_common::error_class::Classify for ClientError {
    fn class(&self) -> iggy_connector_common::error_class::ErrorClass {
        iggy_connector_common::error_class::ErrorClass::Transient { retry_after: None }
    }
}

/// Resolves when the server has acknowledged one written event.
pub type Acknowledgement = Pin<Box<dyn Future<Output = Result<(), ClientError>> + Send>>;

/// Segment number → offset: where reading starts in each segment.
pub type StreamCut = BTreeMap<i64, i64>;

/// The segments that replaced a sealed segment, each with all of its
/// predecessors (a merged segment has several).
pub type Successors = BTreeMap<i64, Vec<i64>>;

/// Where a reader starts before it has positions of its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartAt {
    Head,
    Tail,
    Cut(StreamCut),
}

/// How `ensure_stream` creates a missing stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScalingPolicy {
    Fixed {
        segments: i32,
    },
    /// Segments split above `target_rate` events/s (per segment) into `scale_factor`.
    EventsPerSecond {
        target_rate: i32,
        scale_factor: i32,
        min_segments: i32,
    },
    KilobytesPerSecond {
        target_rate: i32,
        scale_factor: i32,
        min_segments: i32,
    },
}

/// One event to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    /// `None`: a random routing key (any segment, no order with other events).
    pub routing_key: Option<String>,
    pub payload: Vec<u8>,
}

/// One event read from the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadEvent {
    pub segment: i64,
    /// Where the event starts in its segment.
    pub offset: i64,
    /// Where the next event starts: the position after this one.
    pub next_offset: i64,
    pub payload: Vec<u8>,
}

/// One stream of one scope, as the plugins see it.
#[async_trait]
pub trait PravegaClient: Send + Sync {
    /// Creates the scope and the stream when missing (an existing stream keeps its policy).
    async fn ensure_stream(&self, scaling: ScalingPolicy) -> Result<(), ClientError>;
    async fn stream_exists(&self) -> Result<bool, ClientError>;
    async fn event_writer(&self) -> Result<Box<dyn EventWriter>, ClientError>;
    async fn transactional_writer(
        &self,
        writer_id: u128,
    ) -> Result<Box<dyn TransactionalWriter>, ClientError>;
    /// The explicit positions of every segment a reader would start at.
    async fn resolve(&self, start: &StartAt) -> Result<StreamCut, ClientError>;
    /// What replaced `segment` once it was sealed; empty while it is open.
    async fn successors(&self, segment: i64) -> Result<Successors, ClientError>;
    /// A reader in a new reader group that starts at `cut`; `group` is the
    /// start of the group's name (the rest makes it unique, see `real`).
    async fn reader(
        &self,
        group: &str,
        cut: &StreamCut,
    ) -> Result<Box<dyn EventReader>, ClientError>;
}

#[async_trait]
pub trait EventWriter: Send {
    /// Hands the events to the client in their order (which is kept per
    /// routing key); their acknowledgements, in the same order. A batch per
    /// call: handing events over one call at a time costs more than the
    /// writing itself.
    async fn write_all(
        &mut self,
        events: Vec<NewEvent>,
    ) -> Result<Vec<Acknowledgement>, ClientError>;
}

#[async_trait]
pub trait TransactionalWriter: Send {
    async fn begin(&mut self) -> Result<Box<dyn Transaction>, ClientError>;
}

#[async_trait]
pub trait Transaction: Send {
    fn id(&self) -> String;
    /// Adds the events to the transaction in their order.
    async fn write_all(&mut self, events: Vec<NewEvent>) -> Result<(), ClientError>;
    /// Waits for every written event, then commits.
    async fn commit(&mut self, timestamp_ms: u64) -> Result<(), ClientError>;
    async fn abort(&mut self) -> Result<(), ClientError>;
}

#[async_trait]
pub trait EventReader: Send {
    /// Up to `max` events, waiting up to `wait` while none is ready; empty
    /// when none came.
    async fn read(&mut self, max: usize, wait: Duration) -> Result<Vec<ReadEvent>, ClientError>;
    /// Whether the last `read` ended at an event this reader cannot read
    /// past (returned as an empty event): only a new reader group starting
    /// after it reads on.
    fn stalled(&self) -> bool {
        false
    }
    /// Takes the reader offline and removes its reader group.
    async fn close(&mut self) -> Result<(), ClientError>;
}
