//! A partition held in memory (for benchmarks): the records a log file would
//! hold, in one growing buffer, so an append copies each message once and
//! allocates nothing per message.

use crate::log_record::{Record, decode_records, encode_records, records_from};
use crate::message::StoredMessage;

#[derive(Default)]
pub(crate) struct MemoryLog {
    bytes: Vec<u8>,
    /// Where the record with offset `n` starts in `bytes`.
    starts: Vec<usize>,
}

impl MemoryLog {
    pub(crate) fn message_count(&self) -> u64 {
        self.starts.len() as u64
    }

    pub(crate) fn append(&mut self, records: &[Record<'_>]) {
        let starts = encode_records(records, &mut self.bytes);
        self.starts.extend(starts);
    }

    /// Up to `max` messages from offset `from` on.
    pub(crate) fn read(&self, from: u64, max: usize) -> Result<Vec<StoredMessage>, String> {
        match records_from(&self.starts, self.bytes.len(), from, max) {
            Some((range, count)) => decode_records(&self.bytes[range], from, count),
            None => Ok(Vec::new()),
        }
    }
}
