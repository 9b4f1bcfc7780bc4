use std::collections::BTreeMap;
use std::fmt;
use std::fs::{File, OpenOptions, TryLockError};
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use crate::error::StoreError;
use crate::fs_util::{create_dir_all, named_subdirs, sync_dir};
use crate::layout;
use crate::limits::MAX_PARTITIONS;
use crate::locks::{read_lock, write_lock};
use crate::message::{NewMessage, StoredMessage, TopicInfo};
use crate::names;
use crate::offsets::ConsumerOffsets;
use crate::topic::Topic;

/// A handle to the store; clones share it and may be used from any thread.
#[derive(Clone)]
pub struct StreamStore {
    inner: Arc<Inner>,
}

struct Inner {
    /// `None` in memory.
    disk: Option<DiskRoot>,
    /// stream → topic → topic state. Topics are never removed, so a cloned
    /// `Arc<Topic>` stays valid after the lock is released.
    topics: RwLock<BTreeMap<String, BTreeMap<String, Arc<Topic>>>>,
    offsets: ConsumerOffsets,
}

struct DiskRoot {
    dir: PathBuf,
    /// Holds the advisory lock that keeps a second store off this directory.
    _lock: File,
}

impl StreamStore {
    /// A store that keeps everything in memory and never touches the disk.
    pub fn in_memory() -> Self {
        Self {
            inner: Arc::new(Inner {
                disk: None,
                topics: RwLock::new(BTreeMap::new()),
                offsets: ConsumerOffsets::in_memory(),
            }),
        }
    }

    /// Opens the store kept in `dir`, creating the directory if needed and
    /// loading (and recovering) whatever an earlier run left there.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        create_dir_all(dir)?;
        let lock = lock_dir(dir)?;
        let streams_dir = layout::streams_dir(dir);
        create_dir_all(&streams_dir)?;
        let mut topics: BTreeMap<String, BTreeMap<String, Arc<Topic>>> = BTreeMap::new();
        for (stream, stream_dir) in named_subdirs(&streams_dir)? {
            for (topic, topic_dir) in named_subdirs(&stream_dir)? {
                if let Some(loaded) = Topic::load(topic_dir, &stream, &topic)? {
                    topics
                        .entry(stream.clone())
                        .or_default()
                        .insert(topic, Arc::new(loaded));
                }
            }
        }
        let offsets = ConsumerOffsets::load(layout::groups_dir(dir))?;
        Ok(Self {
            inner: Arc::new(Inner {
                disk: Some(DiskRoot {
                    dir: dir.to_path_buf(),
                    _lock: lock,
                }),
                topics: RwLock::new(topics),
                offsets,
            }),
        })
    }

    /// Creates the stream and topic if missing. An existing topic keeps its
    /// partition count whatever `partitions` says.
    pub fn ensure_topic(
        &self,
        stream: &str,
        topic: &str,
        partitions: u32,
    ) -> Result<(), StoreError> {
        names::validate("stream", stream)?;
        names::validate("topic", topic)?;
        if !(1..=MAX_PARTITIONS).contains(&partitions) {
            return Err(StoreError::InvalidPartitionCount {
                stream: stream.to_owned(),
                topic: topic.to_owned(),
                partitions,
            });
        }
        if self.find_topic(stream, topic).is_some() {
            return Ok(());
        }
        // Creating files under the write lock stalls other lookups briefly, but
        // topics are created rarely (at start-up) and two callers can never
        // race to create the same topic's files.
        let mut topics = write_lock(&self.inner.topics);
        let stream_topics = topics.entry(stream.to_owned()).or_default();
        if stream_topics.contains_key(topic) {
            return Ok(());
        }
        let created = match &self.inner.disk {
            Some(root) => Topic::create_on_disk(
                layout::topic_dir(&root.dir, stream, topic),
                stream,
                topic,
                partitions,
            )?,
            None => Topic::in_memory(stream, topic, partitions),
        };
        stream_topics.insert(topic.to_owned(), Arc::new(created));
        Ok(())
    }

    /// All topics, sorted by (stream, topic).
    pub fn topics(&self) -> Vec<TopicInfo> {
        let topics: Vec<Arc<Topic>> = read_lock(&self.inner.topics)
            .values()
            .flat_map(|stream| stream.values().cloned())
            .collect();
        topics.iter().map(|topic| topic.info()).collect()
    }

    pub fn topic_info(&self, stream: &str, topic: &str) -> Option<TopicInfo> {
        self.find_topic(stream, topic).map(|topic| topic.info())
    }

    /// Appends in order; returns the offsets assigned (first..=last).
    /// Offsets are dense per partition from 0.
    pub fn append(
        &self,
        stream: &str,
        topic: &str,
        partition_id: u32,
        messages: Vec<NewMessage<'_>>,
    ) -> Result<RangeInclusive<u64>, StoreError> {
        self.topic(stream, topic)?.append(partition_id, messages)
    }

    /// Picks the partition round-robin per call (the whole batch lands in one
    /// partition) and returns it with the offsets assigned.
    pub fn append_balanced(
        &self,
        stream: &str,
        topic: &str,
        messages: Vec<NewMessage<'_>>,
    ) -> Result<(u32, RangeInclusive<u64>), StoreError> {
        self.topic(stream, topic)?.append_balanced(messages)
    }

    /// Up to `max` messages with offset >= `from_offset`, in offset order
    /// (empty when there are none).
    pub fn read(
        &self,
        stream: &str,
        topic: &str,
        partition_id: u32,
        from_offset: u64,
        max: usize,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        self.topic(stream, topic)?
            .read(partition_id, from_offset, max)
    }

    /// The offset of the last message `group` consumed (Iggy semantics);
    /// `None` = nothing consumed yet, read from 0.
    pub fn committed_offset(
        &self,
        group: &str,
        stream: &str,
        topic: &str,
        partition_id: u32,
    ) -> Option<u64> {
        self.inner.offsets.get(group, stream, topic, partition_id)
    }

    /// Stores `offset` (the last consumed message, which must exist) for `group`.
    /// On disk the commit is durable when this returns.
    pub fn commit_offset(
        &self,
        group: &str,
        stream: &str,
        topic: &str,
        partition_id: u32,
        offset: u64,
    ) -> Result<(), StoreError> {
        names::validate("consumer group", group)?;
        let next_offset = self
            .topic(stream, topic)?
            .partition(partition_id)?
            .next_offset();
        if offset >= next_offset {
            return Err(StoreError::OffsetOutOfRange {
                stream: stream.to_owned(),
                topic: topic.to_owned(),
                partition_id,
                offset,
                next_offset,
            });
        }
        self.inner
            .offsets
            .commit(group, stream, topic, partition_id, offset)
    }

    /// Makes everything appended or committed so far durable (fsync).
    /// A no-op in memory.
    pub fn sync(&self) -> Result<(), StoreError> {
        let Some(root) = &self.inner.disk else {
            return Ok(());
        };
        let (streams, topics): (Vec<String>, Vec<Arc<Topic>>) = {
            let all = read_lock(&self.inner.topics);
            (
                all.keys().cloned().collect(),
                all.values()
                    .flat_map(|stream| stream.values().cloned())
                    .collect(),
            )
        };
        for topic in &topics {
            topic.sync()?;
        }
        let streams_dir = layout::streams_dir(&root.dir);
        for stream in &streams {
            sync_dir(&streams_dir.join(stream))?;
        }
        sync_dir(&streams_dir)?;
        self.inner.offsets.sync()?;
        sync_dir(&root.dir)
    }

    fn find_topic(&self, stream: &str, topic: &str) -> Option<Arc<Topic>> {
        read_lock(&self.inner.topics)
            .get(stream)
            .and_then(|topics| topics.get(topic))
            .cloned()
    }

    fn topic(&self, stream: &str, topic: &str) -> Result<Arc<Topic>, StoreError> {
        self.find_topic(stream, topic)
            .ok_or_else(|| StoreError::UnknownTopic {
                stream: stream.to_owned(),
                topic: topic.to_owned(),
            })
    }
}

impl fmt::Debug for StreamStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.inner.disk {
            Some(root) => f
                .debug_struct("StreamStore")
                .field("dir", &root.dir)
                .finish(),
            None => f
                .debug_struct("StreamStore")
                .field("dir", &"<in memory>")
                .finish(),
        }
    }
}

/// Two stores appending to the same files would interleave records, so the
/// directory is locked for as long as the store (any clone of it) lives.
fn lock_dir(dir: &Path) -> Result<File, StoreError> {
    let path = layout::lock_file(dir);
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(StoreError::io("open", &path))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(TryLockError::WouldBlock) => Err(StoreError::AlreadyOpen {
            dir: dir.to_path_buf(),
        }),
        Err(TryLockError::Error(error)) => Err(StoreError::io("lock", &path)(error)),
    }
}
