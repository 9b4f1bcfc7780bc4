use std::error::Error;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// Everything that can go wrong in the store.
#[derive(Debug)]
pub enum StoreError {
    /// A file-system operation failed; `path` says on which file or directory.
    Io {
        action: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    /// Another `StreamStore` (in this or another process) has the directory open.
    AlreadyOpen {
        dir: PathBuf,
    },
    UnknownTopic {
        stream: String,
        topic: String,
    },
    /// Partition ids are 1-based: valid ids are `1..=partitions`.
    InvalidPartition {
        stream: String,
        topic: String,
        partition_id: u32,
        partitions: u32,
    },
    /// A topic needs `1..=MAX_PARTITIONS` partitions.
    InvalidPartitionCount {
        stream: String,
        topic: String,
        partitions: u32,
    },
    /// `kind` is "stream", "topic" or "consumer group".
    InvalidName {
        kind: &'static str,
        name: String,
        reason: &'static str,
    },
    EmptyBatch {
        stream: String,
        topic: String,
    },
    /// Headers and payload are each limited to `u32::MAX` bytes by the log format.
    MessageTooLarge {
        len: usize,
    },
    /// A consumer offset may only name a message that exists (`offset < next_offset`).
    OffsetOutOfRange {
        stream: String,
        topic: String,
        partition_id: u32,
        offset: u64,
        next_offset: u64,
    },
    /// A file holds data the store did not write (or that was damaged after writing).
    Corrupt {
        file: PathBuf,
        detail: String,
    },
}

impl StoreError {
    /// For `map_err`: wraps an I/O error with what was being done to which path.
    pub(crate) fn io(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> Self {
        let path = path.to_path_buf();
        move |source| Self::Io {
            action,
            path,
            source,
        }
    }

    pub(crate) fn corrupt(file: &Path, detail: impl Into<String>) -> Self {
        Self::Corrupt {
            file: file.to_path_buf(),
            detail: detail.into(),
        }
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io {
                action,
                path,
                source,
            } => write!(f, "failed to {action} {}: {source}", path.display()),
            Self::AlreadyOpen { dir } => write!(
                f,
                "stream store {} is already open (by another harness process or another StreamStore::open in this one)",
                dir.display()
            ),
            Self::UnknownTopic { stream, topic } => {
                write!(f, "topic '{topic}' in stream '{stream}' does not exist")
            }
            Self::InvalidPartition {
                stream,
                topic,
                partition_id,
                partitions,
            } => write!(
                f,
                "partition {partition_id} does not exist in topic '{topic}' of stream '{stream}' (valid ids are 1..={partitions})"
            ),
            Self::InvalidPartitionCount {
                stream,
                topic,
                partitions,
            } => write!(
                f,
                "topic '{topic}' in stream '{stream}' cannot have {partitions} partitions (allowed: 1..={})",
                crate::limits::MAX_PARTITIONS
            ),
            Self::InvalidName { kind, name, reason } => {
                write!(f, "invalid {kind} name {name:?}: {reason}")
            }
            Self::EmptyBatch { stream, topic } => write!(
                f,
                "cannot append an empty batch to topic '{topic}' in stream '{stream}'"
            ),
            Self::MessageTooLarge { len } => write!(
                f,
                "message section of {len} bytes exceeds the limit of {} bytes",
                u32::MAX
            ),
            Self::OffsetOutOfRange {
                stream,
                topic,
                partition_id,
                offset,
                next_offset,
            } => write!(
                f,
                "cannot commit offset {offset} for partition {partition_id} of topic '{topic}' in stream '{stream}': it only holds offsets below {next_offset}"
            ),
            Self::Corrupt { file, detail } => {
                write!(f, "corrupt store file {}: {detail}", file.display())
            }
        }
    }
}

impl Error for StoreError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            Self::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}
