//! One partition: offset and timestamp assignment plus where its messages live.

use std::path::PathBuf;
use std::sync::{Mutex, RwLock};

use crate::checksum::message_checksum;
use crate::error::StoreError;
use crate::ids::{now_micros, random_message_id};
use crate::locks::{lock, read_lock, write_lock};
use crate::log_file::LogFile;
use crate::log_record::MAX_SECTION_LEN;
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
    Memory(RwLock<Vec<StoredMessage>>),
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
            contents: Contents::Memory(RwLock::new(Vec::new())),
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
            Contents::Memory(messages) => read_lock(messages).len() as u64,
            Contents::Log(log) => log.message_count(),
        }
    }

    /// Appends `messages` (at least one) and returns the offset of the first.
    pub(crate) fn append(&self, messages: Vec<NewMessage>) -> Result<u64, StoreError> {
        if let Some(len) = messages
            .iter()
            .flat_map(|message| [message.headers.len(), message.payload.len()])
            .find(|len| *len > MAX_SECTION_LEN)
        {
            return Err(StoreError::MessageTooLarge { len });
        }
        // Hashing and id generation happen before taking the lock so that
        // concurrent appenders overlap on the expensive part.
        let mut requested_timestamps = Vec::with_capacity(messages.len());
        let mut stored: Vec<StoredMessage> = messages
            .into_iter()
            .map(|message| {
                requested_timestamps.push(message.timestamp);
                StoredMessage {
                    id: if message.id == 0 {
                        random_message_id()
                    } else {
                        message.id
                    },
                    offset: 0,
                    checksum: message_checksum(&message.headers, &message.payload),
                    timestamp: 0,
                    origin_timestamp: message.origin_timestamp,
                    headers: message.headers,
                    payload: message.payload,
                }
            })
            .collect();

        let mut appender = lock(&self.appender);
        let first = appender.next_offset;
        let now = now_micros();
        let mut last_timestamp = appender.last_timestamp;
        for ((message, requested), offset) in
            stored.iter_mut().zip(requested_timestamps).zip(first..)
        {
            message.offset = offset;
            message.timestamp = requested.unwrap_or(now.max(last_timestamp));
            last_timestamp = last_timestamp.max(message.timestamp);
        }
        let count = stored.len() as u64;
        match &self.contents {
            Contents::Memory(messages) => write_lock(messages).extend(stored),
            Contents::Log(log) => log.append(&stored, &mut appender.scratch)?,
        }
        appender.next_offset = first + count;
        appender.last_timestamp = last_timestamp;
        Ok(first)
    }

    pub(crate) fn read(&self, from: u64, max: usize) -> Result<Vec<StoredMessage>, StoreError> {
        match &self.contents {
            Contents::Memory(messages) => {
                let messages = read_lock(messages);
                let start =
                    usize::try_from(from).map_or(messages.len(), |from| from.min(messages.len()));
                let end = start.saturating_add(max).min(messages.len());
                Ok(messages[start..end].to_vec())
            }
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
