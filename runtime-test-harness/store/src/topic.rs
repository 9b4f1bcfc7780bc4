//! A topic: its partitions, round-robin state and (on disk) its metadata file.

use std::fs;
use std::io;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use crate::error::StoreError;
use crate::fs_util::{create_dir_all, sync_dir, write_atomically};
use crate::layout;
use crate::limits::MAX_PARTITIONS;
use crate::message::{NewMessage, StoredMessage, TopicInfo};
use crate::partition::Partition;

pub(crate) struct Topic {
    stream: String,
    name: String,
    /// Index 0 is partition 1.
    partitions: Vec<Partition>,
    partition_count: u32,
    next_balanced: AtomicU32,
    /// `None` in memory.
    dir: Option<PathBuf>,
}

impl Topic {
    pub(crate) fn in_memory(stream: &str, name: &str, partitions: u32) -> Self {
        let list = (0..partitions).map(|_| Partition::in_memory()).collect();
        Self::new(stream, name, partitions, list, None)
    }

    /// Creates the topic directory, its partition logs and then the metadata
    /// file; the metadata is written last so a topic only counts as existing
    /// once everything it needs is there.
    pub(crate) fn create_on_disk(
        dir: PathBuf,
        stream: &str,
        name: &str,
        partitions: u32,
    ) -> Result<Self, StoreError> {
        create_dir_all(&dir)?;
        let list = open_logs(&dir, partitions)?;
        write_atomically(
            &layout::topic_meta(&dir),
            format!("partitions={partitions}\n").as_bytes(),
        )?;
        Ok(Self::new(stream, name, partitions, list, Some(dir)))
    }

    /// Loads a topic written by `create_on_disk`; `None` if its metadata is
    /// missing (creation was interrupted), so it gets created afresh later.
    pub(crate) fn load(dir: PathBuf, stream: &str, name: &str) -> Result<Option<Self>, StoreError> {
        let meta_path = layout::topic_meta(&dir);
        let meta = match fs::read_to_string(&meta_path) {
            Ok(meta) => meta,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(StoreError::io("read", &meta_path)(error)),
        };
        let partitions = meta
            .trim()
            .strip_prefix("partitions=")
            .and_then(|count| count.parse::<u32>().ok())
            .filter(|count| (1..=MAX_PARTITIONS).contains(count))
            .ok_or_else(|| {
                StoreError::corrupt(
                    &meta_path,
                    format!("expected partitions=<1..={MAX_PARTITIONS}>, found {meta:?}"),
                )
            })?;
        let list = open_logs(&dir, partitions)?;
        Ok(Some(Self::new(stream, name, partitions, list, Some(dir))))
    }

    fn new(
        stream: &str,
        name: &str,
        partition_count: u32,
        partitions: Vec<Partition>,
        dir: Option<PathBuf>,
    ) -> Self {
        Self {
            stream: stream.to_owned(),
            name: name.to_owned(),
            partitions,
            partition_count,
            next_balanced: AtomicU32::new(0),
            dir,
        }
    }

    pub(crate) fn info(&self) -> TopicInfo {
        TopicInfo {
            stream: self.stream.clone(),
            topic: self.name.clone(),
            partitions: self.partition_count,
            messages_per_partition: self.partitions.iter().map(Partition::next_offset).collect(),
        }
    }

    pub(crate) fn partition(&self, partition_id: u32) -> Result<&Partition, StoreError> {
        partition_id
            .checked_sub(1)
            .and_then(|index| self.partitions.get(index as usize))
            .ok_or_else(|| StoreError::InvalidPartition {
                stream: self.stream.clone(),
                topic: self.name.clone(),
                partition_id,
                partitions: self.partition_count,
            })
    }

    pub(crate) fn append(
        &self,
        partition_id: u32,
        messages: Vec<NewMessage<'_>>,
    ) -> Result<RangeInclusive<u64>, StoreError> {
        let partition = self.partition(partition_id)?;
        self.check_not_empty(&messages)?;
        let count = messages.len() as u64;
        let first = partition.append(messages)?;
        Ok(first..=first + (count - 1))
    }

    pub(crate) fn append_balanced(
        &self,
        messages: Vec<NewMessage<'_>>,
    ) -> Result<(u32, RangeInclusive<u64>), StoreError> {
        // Checked first so a rejected batch does not use up a turn.
        self.check_not_empty(&messages)?;
        let turn = self.next_balanced.fetch_add(1, Ordering::Relaxed);
        let partition_id = turn % self.partition_count + 1;
        Ok((partition_id, self.append(partition_id, messages)?))
    }

    pub(crate) fn read(
        &self,
        partition_id: u32,
        from_offset: u64,
        max: usize,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        self.partition(partition_id)?.read(from_offset, max)
    }

    pub(crate) fn sync(&self) -> Result<(), StoreError> {
        for partition in &self.partitions {
            partition.sync()?;
        }
        match &self.dir {
            Some(dir) => sync_dir(dir),
            None => Ok(()),
        }
    }

    fn check_not_empty(&self, messages: &[NewMessage<'_>]) -> Result<(), StoreError> {
        if messages.is_empty() {
            return Err(StoreError::EmptyBatch {
                stream: self.stream.clone(),
                topic: self.name.clone(),
            });
        }
        Ok(())
    }
}

fn open_logs(dir: &Path, partitions: u32) -> Result<Vec<Partition>, StoreError> {
    (1..=partitions)
        .map(|id| Partition::open_log(layout::partition_log(dir, id)))
        .collect()
}
