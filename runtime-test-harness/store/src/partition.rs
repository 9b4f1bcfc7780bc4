//! One partition: offset and timestamp assignment plus where its messages live.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, RwLock};

use crate::error::StoreError;
use crate::ids::{now_micros, random_message_id};
use crate::locks::{lock, read_lock, write_lock};
use crate::log_file::LogFile;
use crate::log_record::{MAX_SECTION_LEN, Record};
use crate::memory_log::MemoryLog;
use crate::message::{NewMessage, StoredMessage};

pub(crate) struct Partition {
    /// Serialises appends only; readers never take it.
    appender: Mutex<Appender>,
    contents: Contents,
}

struct Appender {
    next_offset: u64,
    last_timestamp: u64,
    /// Reused encoding buffer so a steady stream of batches does not reallocate.
    scratch: Vec<u8>,
}

enum Contents {
    Memory(RwLock<MemoryLog>),
    Log(LogFile),
}

impl Partition {
    pub(crate) fn in_memory() -> Self {
        Self {
            appender: Mutex::new(Appender {
                next_offset: 0,
                last_timestamp: 0,
                scratch: Vec::new(),
            }),
            contents: Contents::Memory(RwLock::new(MemoryLog::default())),
        }
    }

    pub(crate) fn open_log(path: PathBuf) -> Result<Self, StoreError> {
        let recovered = LogFile::open(path)?;
        Ok(Self {
            appender: Mutex::new(Appender {
                next_offset: recovered.log.message_count(),
                last_timestamp: recovered.last_timestamp,
                scratch: Vec::new(),
            }),
            contents: Contents::Log(recovered.log),
        })
    }

    /// Offset the next appended message gets, counting only messages readers can see.
    pub(crate) fn next_offset(&self) -> u64 {
        match &self.contents {
            Contents::Memory(log) => read_lock(log).message_count(),
            Contents::Log(log) => log.message_count(),
        }
    }

    /// Appends `messages` (at least one) and returns the offset of the first.
    pub(crate) fn append(&self, messages: Vec<NewMessage<'_>>) -> Result<u64, StoreError> {
        if let Some(len) = messages
            .iter()
            .flat_map(|message| [message.headers.len(), message.payload.len()])
            .find(|len| *len > MAX_SECTION_LEN)
        {
            return Err(StoreError::MessageTooLarge { len });
        }
        // Hashing and id generation happen before taking the lock so that
        // concurrent appenders overlap on the expensive part.
        let mut records: Vec<Record<'_>> = messages
            .iter()
            .map(|message| {
                let id = if message.id == 0 {
                    random_message_id()
                } else {
                    message.id
                };
                Record::new(
                    id,
                    message.origin_timestamp,
                    &message.headers,
                    &message.payload,
                )
            })
            .collect();

        let mut appender = lock(&self.appender);
        let first = appender.next_offset;
        let now = now_micros();
        let mut last_timestamp = appender.last_timestamp;
        for ((record, message), offset) in records.iter_mut().zip(&messages).zip(first..) {
            record.header.offset = offset;
            record.header.timestamp = message.timestamp.unwrap_or(now.max(last_timestamp));
            last_timestamp = last_timestamp.max(record.header.timestamp);
        }
        match &self.contents {
            Contents::Memory(log) => write_lock(log).append(&records),
            Contents::Log(log) => log.append(&records, &mut appender.scratch)?,
        }
        appender.next_offset = first + records.len() as u64;
        appender.last_timestamp = last_timestamp;
        Ok(first)
    }

    pub(crate) fn read(&self, from: u64, max: usize) -> Result<Vec<StoredMessage>, StoreError> {
        match &self.contents {
            Contents::Memory(log) => read_lock(log)
                .read(from, max)
                .map_err(|detail| StoreError::corrupt(Path::new("<memory>"), detail)),
            Contents::Log(log) => log.read(from, max),
        }
    }

    pub(crate) fn sync(&self) -> Result<(), StoreError> {
        match &self.contents {
            Contents::Memory(_) => Ok(()),
            Contents::Log(log) => log.sync(),
        }
    }
}
