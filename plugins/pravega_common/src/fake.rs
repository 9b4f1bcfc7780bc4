//! An in-process stand-in for one Pravega stream behind the client
//! interface, for the plugins' tests (feature `fake`). It keeps what
//! matters to the connector logic and nothing more: segments chosen by
//! routing key, offsets as Pravega counts them (an 8-byte header per event),
//! acknowledgements that can come late or fail, transactions whose events
//! appear only on commit, readers that start at a stream cut, scaling
//! (sealed segments and their successors), an outage switch and injected
//! failures.

use crate::client::{
    Acknowledgement, ClientError, EventReader, EventWriter, NewEvent, PravegaClient, ReadEvent,
    ScalingPolicy, StartAt, StreamCut, Successors, Transaction, TransactionalWriter,
};
use crate::position::{PositionMarker, is_marker};
use async_trait::async_trait;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// One event as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    pub offset: i64,
    pub routing_key: Option<String>,
    pub payload: Vec<u8>,
}

/// Failures to inject; each counts down as it strikes.
#[derive(Debug, Default, Clone)]
pub struct Faults {
    pub failed_writes: usize,
    pub failed_acks: usize,
    pub failed_commits: usize,
    /// Commits that take effect but answer with a failure (a lost reply).
    pub lost_commit_replies: usize,
    pub failed_reads: usize,
    /// Reads that fail as if the client had panicked.
    pub panicked_reads: usize,
}

#[derive(Debug, Default)]
struct State {
    segments: BTreeMap<i64, Vec<StoredEvent>>,
    /// Writes without a routing key go round the segments.
    next_segment: usize,
    faults: Faults,
    ack_delay: Duration,
    acknowledged: usize,
    transactions_begun: usize,
    commits: Vec<String>,
    aborts: Vec<String>,
    open_groups: Vec<String>,
    created_with: Option<ScalingPolicy>,
    /// Sealed segment → the segments that replaced it, each with all of its
    /// predecessors (what the controller answers).
    sealed: BTreeMap<i64, Successors>,
    /// While set, every call fails as if the servers were down.
    unavailable: bool,
}

impl State {
    fn end_of(&self, segment: i64) -> i64 {
        self.segments
            .get(&segment)
            .and_then(|events| events.last())
            .map_or(0, |e| e.offset + 8 + e.payload.len() as i64)
    }

    fn check_available(&self) -> Result<(), ClientError> {
        if self.unavailable {
            return Err(ClientError::Failed(
                "no connection to the controller (fake outage)".into(),
            ));
        }
        Ok(())
    }

    fn segment_for(&mut self, routing_key: Option<&str>) -> Result<i64, ClientError> {
        let numbers: Vec<i64> = self
            .segments
            .keys()
            .filter(|n| !self.sealed.contains_key(n))
            .copied()
            .collect();
        if numbers.is_empty() {
            return Err(ClientError::Failed("stream does not exist".into()));
        }
        let index = match routing_key {
            // FNV-1a, as any stable hash would do.
            Some(key) => key.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
            }) as usize,
            None => {
                self.next_segment += 1;
                self.next_segment
            }
        } % numbers.len();
        Ok(numbers[index])
    }

    fn append(&mut self, routing_key: Option<String>, payload: Vec<u8>) -> Result<(), ClientError> {
        let segment = self.segment_for(routing_key.as_deref())?;
        let offset = self.end_of(segment);
        self.segments.entry(segment).or_default().push(StoredEvent {
            offset,
            routing_key,
            payload,
        });
        Ok(())
    }

    fn strike(counter: &mut usize) -> bool {
        let strikes = *counter > 0;
        *counter = counter.saturating_sub(1);
        strikes
    }
}

#[derive(Clone, Default)]
pub struct FakePravega {
    state: Arc<Mutex<State>>,
}

impl FakePravega {
    /// A fake whose stream does not exist until `ensure_stream`.
    pub fn new() -> Self {
        Self::default()
    }

    /// A fake with an existing stream of `segments` segments (numbered from 0).
    pub fn with_stream(segments: i64) -> Self {
        let fake = Self::default();
        fake.lock().segments = (0..segments).map(|n| (n, Vec::new())).collect();
        fake
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn inject(&self, faults: Faults) {
        self.lock().faults = faults;
    }

    /// Acknowledgements resolve this long after the write.
    pub fn delay_acks(&self, delay: Duration) {
        self.lock().ack_delay = delay;
    }

    /// Appends an event as another writer would.
    pub fn append(&self, routing_key: Option<&str>, payload: &[u8]) {
        self.lock()
            .append(routing_key.map(str::to_string), payload.to_vec())
            .expect("the fake's stream exists");
    }

    /// Every stored event by segment.
    pub fn segments(&self) -> BTreeMap<i64, Vec<StoredEvent>> {
        self.lock().segments.clone()
    }

    /// Every stored payload but the sink's position markers, segment by segment.
    pub fn payloads(&self) -> Vec<Vec<u8>> {
        self.lock()
            .segments
            .values()
            .flatten()
            .filter(|e| !is_marker(&e.payload))
            .map(|e| e.payload.clone())
            .collect()
    }

    /// The sink's position markers, segment by segment.
    pub fn markers(&self) -> Vec<PositionMarker> {
        self.lock()
            .segments
            .values()
            .flatten()
            .filter_map(|e| PositionMarker::decode(&e.payload))
            .map(|marker| marker.expect("a marker of this version"))
            .collect()
    }

    pub fn acknowledged(&self) -> usize {
        self.lock().acknowledged
    }

    pub fn transactions_begun(&self) -> usize {
        self.lock().transactions_begun
    }

    pub fn commits(&self) -> Vec<String> {
        self.lock().commits.clone()
    }

    pub fn aborts(&self) -> Vec<String> {
        self.lock().aborts.clone()
    }

    pub fn open_groups(&self) -> Vec<String> {
        self.lock().open_groups.clone()
    }

    pub fn created_with(&self) -> Option<ScalingPolicy> {
        self.lock().created_with
    }

    /// Seals the open segments `sealed` and puts `count` new segments
    /// (numbered after the highest so far) in their place, each a successor
    /// of every sealed one: one sealed segment is a split, several a merge.
    /// Returns the new segments' numbers.
    pub fn scale(&self, sealed: &[i64], count: usize) -> Vec<i64> {
        let mut state = self.lock();
        assert!(
            sealed
                .iter()
                .all(|n| state.segments.contains_key(n) && !state.sealed.contains_key(n)),
            "only open segments of the fake can be sealed"
        );
        let first = state.segments.keys().max().map_or(0, |n| n + 1);
        let new: Vec<i64> = (first..first + count as i64).collect();
        let successors: Successors = new.iter().map(|n| (*n, sealed.to_vec())).collect();
        for n in &new {
            state.segments.insert(*n, Vec::new());
        }
        for n in sealed {
            state.sealed.insert(*n, successors.clone());
        }
        new
    }

    /// The stream's open segments.
    pub fn open_segments(&self) -> Vec<i64> {
        let state = self.lock();
        state
            .segments
            .keys()
            .filter(|n| !state.sealed.contains_key(n))
            .copied()
            .collect()
    }

    /// A server that restarted without its data: the stream and its events
    /// are gone until `ensure_stream` makes it again.
    pub fn lose_everything(&self) {
        let mut state = self.lock();
        state.segments.clear();
        state.sealed.clear();
        state.created_with = None;
    }

    /// Turns the outage on (`false`) or off: while on, every call fails.
    pub fn set_available(&self, available: bool) {
        self.lock().unavailable = !available;
    }
}

#[async_trait]
impl PravegaClient for FakePravega {
    async fn ensure_stream(&self, scaling: ScalingPolicy) -> Result<(), ClientError> {
        let mut state = self.lock();
        state.check_available()?;
        if state.segments.is_empty() {
            let count = match scaling {
                ScalingPolicy::Fixed { segments } => segments,
                ScalingPolicy::EventsPerSecond { min_segments, .. }
                | ScalingPolicy::KilobytesPerSecond { min_segments, .. } => min_segments,
            };
            state.segments = (0..i64::from(count)).map(|n| (n, Vec::new())).collect();
            state.created_with = Some(scaling);
        }
        Ok(())
    }

    async fn stream_exists(&self) -> Result<bool, ClientError> {
        let state = self.lock();
        state.check_available()?;
        Ok(!state.segments.is_empty())
    }

    async fn event_writer(&self) -> Result<Box<dyn EventWriter>, ClientError> {
        Ok(Box::new(self.clone()))
    }

    async fn transactional_writer(
        &self,
        _writer_id: u128,
    ) -> Result<Box<dyn TransactionalWriter>, ClientError> {
        Ok(Box::new(self.clone()))
    }

    async fn resolve(&self, start: &StartAt) -> Result<StreamCut, ClientError> {
        let state = self.lock();
        state.check_available()?;
        let replaced: BTreeSet<i64> = state
            .sealed
            .values()
            .flat_map(|successors| successors.keys().copied())
            .collect();
        Ok(match start {
            StartAt::Cut(cut) => cut.clone(),
            // The segments the stream began with.
            StartAt::Head => state
                .segments
                .keys()
                .filter(|n| !replaced.contains(n))
                .map(|n| (*n, 0))
                .collect(),
            StartAt::Tail => state
                .segments
                .keys()
                .filter(|n| !state.sealed.contains_key(n))
                .map(|n| (*n, state.end_of(*n)))
                .collect(),
        })
    }

    async fn successors(&self, segment: i64) -> Result<Successors, ClientError> {
        let state = self.lock();
        state.check_available()?;
        Ok(state.sealed.get(&segment).cloned().unwrap_or_default())
    }

    async fn reader(
        &self,
        group: &str,
        cut: &StreamCut,
    ) -> Result<Box<dyn EventReader>, ClientError> {
        let mut state = self.lock();
        state.check_available()?;
        state.open_groups.push(group.to_string());
        Ok(Box::new(FakeReader {
            fake: self.clone(),
            group: group.to_string(),
            positions: cut.clone(),
            future: BTreeMap::new(),
        }))
    }
}

impl FakePravega {
    fn write_one(&self, event: NewEvent) -> Result<Acknowledgement, ClientError> {
        let (delay, outcome) = {
            let mut state = self.lock();
            state.check_available()?;
            if State::strike(&mut state.faults.failed_writes) {
                return Err(ClientError::Failed("write refused (injected)".into()));
            }
            let outcome = if State::strike(&mut state.faults.failed_acks) {
                Err(ClientError::Failed("append failed (injected)".into()))
            } else {
                state.append(event.routing_key, event.payload)
            };
            (state.ack_delay, outcome)
        };
        let fake = self.clone();
        // Due from the write, as a server acknowledges events independently.
        let due = tokio::time::Instant::now() + delay;
        Ok(Box::pin(async move {
            tokio::time::sleep_until(due).await;
            if outcome.is_ok() {
                fake.lock().acknowledged += 1;
            }
            outcome
        }))
    }
}

#[async_trait]
impl EventWriter for FakePravega {
    async fn write_all(
        &mut self,
        events: Vec<NewEvent>,
    ) -> Result<Vec<Acknowledgement>, ClientError> {
        events.into_iter().map(|e| self.write_one(e)).collect()
    }
}

#[async_trait]
impl TransactionalWriter for FakePravega {
    async fn begin(&mut self) -> Result<Box<dyn Transaction>, ClientError> {
        let mut state = self.lock();
        state.check_available()?;
        state.transactions_begun += 1;
        Ok(Box::new(FakeTransaction {
            fake: self.clone(),
            id: format!("txn-{}", state.transactions_begun),
            events: Vec::new(),
        }))
    }
}

struct FakeTransaction {
    fake: FakePravega,
    id: String,
    events: Vec<NewEvent>,
}

#[async_trait]
impl Transaction for FakeTransaction {
    fn id(&self) -> String {
        self.id.clone()
    }

    async fn write_all(&mut self, events: Vec<NewEvent>) -> Result<(), ClientError> {
        let mut state = self.fake.lock();
        state.check_available()?;
        if State::strike(&mut state.faults.failed_writes) {
            return Err(ClientError::Failed(
                "transaction write refused (injected)".into(),
            ));
        }
        drop(state);
        self.events.extend(events);
        Ok(())
    }

    async fn commit(&mut self, _timestamp_ms: u64) -> Result<(), ClientError> {
        let mut state = self.fake.lock();
        state.check_available()?;
        if State::strike(&mut state.faults.failed_commits) {
            return Err(ClientError::Failed("commit refused (injected)".into()));
        }
        for event in self.events.drain(..) {
            state.append(event.routing_key, event.payload)?;
        }
        state.commits.push(self.id.clone());
        if State::strike(&mut state.faults.lost_commit_replies) {
            return Err(ClientError::TimedOut(
                "commit (reply lost, injected)".into(),
            ));
        }
        Ok(())
    }

    async fn abort(&mut self) -> Result<(), ClientError> {
        self.events.clear();
        self.fake.lock().aborts.push(self.id.clone());
        Ok(())
    }
}

struct FakeReader {
    fake: FakePravega,
    group: String,
    /// Segments to read and where; successors join as pravega-client's
    /// reader group adds them.
    positions: StreamCut,
    /// Successor → the predecessors it still waits for.
    future: BTreeMap<i64, BTreeSet<i64>>,
}

impl FakeReader {
    /// Completes every sealed segment read to its end as pravega-client
    /// 0.3.7 does (event/reader_group_state.rs, segment_completed_internal):
    /// each successor waits for all of its predecessors, then joins the
    /// segments to read at offset 0, whatever position it had before.
    fn complete_sealed(&mut self, state: &State) {
        // Each round completes at least one segment of a finite stream.
        for _ in 0..=state.segments.len() {
            let done: Vec<i64> = self
                .positions
                .iter()
                .filter(|(n, at)| state.sealed.contains_key(n) && **at >= state.end_of(**n))
                .map(|(n, _)| *n)
                .collect();
            if done.is_empty() {
                return;
            }
            for segment in done {
                self.positions.remove(&segment);
                for (successor, predecessors) in &state.sealed[&segment] {
                    self.future
                        .entry(*successor)
                        .or_insert_with(|| predecessors.iter().copied().collect());
                }
                for waiting in self.future.values_mut() {
                    waiting.remove(&segment);
                }
                let ready: Vec<i64> = self
                    .future
                    .iter()
                    .filter(|(_, waiting)| waiting.is_empty())
                    .map(|(n, _)| *n)
                    .collect();
                for successor in ready {
                    self.future.remove(&successor);
                    self.positions.insert(successor, 0);
                }
            }
        }
    }

    fn available(&self, state: &State, max: usize) -> Vec<ReadEvent> {
        let mut events = Vec::new();
        for (segment, from) in &self.positions {
            let stored = state.segments.get(segment).into_iter().flatten();
            for event in stored.filter(|e| e.offset >= *from) {
                if events.len() == max {
                    return events;
                }
                events.push(ReadEvent {
                    segment: *segment,
                    offset: event.offset,
                    next_offset: event.offset + 8 + event.payload.len() as i64,
                    payload: event.payload.clone(),
                });
            }
        }
        events
    }

    fn take(&mut self, max: usize) -> Vec<ReadEvent> {
        let fake = self.fake.clone();
        let state = fake.lock();
        self.complete_sealed(&state);
        let events = self.available(&state, max);
        for event in &events {
            self.positions.insert(event.segment, event.next_offset);
        }
        events
    }
}

#[async_trait]
impl EventReader for FakeReader {
    async fn read(&mut self, max: usize, wait: Duration) -> Result<Vec<ReadEvent>, ClientError> {
        {
            let mut state = self.fake.lock();
            if State::strike(&mut state.faults.panicked_reads) {
                return Err(ClientError::Panicked("read (injected)".into()));
            }
            if State::strike(&mut state.faults.failed_reads) {
                return Err(ClientError::Failed("read refused (injected)".into()));
            }
            state.check_available()?;
        }
        let mut events = self.take(max);
        if events.is_empty() {
            tokio::time::sleep(wait).await;
            events = self.take(max);
        }
        Ok(events)
    }

    async fn close(&mut self) -> Result<(), ClientError> {
        self.fake.lock().open_groups.retain(|g| *g != self.group);
        Ok(())
    }
}
