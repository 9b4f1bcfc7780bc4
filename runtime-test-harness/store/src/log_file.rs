//! A partition's append-only log file plus the in-memory index of where each
//! record starts, so reads are one positional read instead of a rescan.

use std::fs::{File, OpenOptions};
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::RwLock;

use crate::error::StoreError;
use crate::fs_util::{read_exact_at, write_all_at};
use crate::locks::{read_lock, write_lock};
use crate::log_record::{
    HEADER_LEN, Record, RecordHeader, decode_records, encode_records, records_from,
};
use crate::message::StoredMessage;

const SCAN_BUFFER: usize = 1 << 20;

pub(crate) struct LogFile {
    path: PathBuf,
    file: File,
    index: RwLock<Index>,
}

/// What readers may see: only records whose bytes are fully written.
struct Index {
    /// File position of each record; the record at offset `n` starts at `starts[n]`.
    starts: Vec<u64>,
    /// End of the last complete record.
    end: u64,
}

/// A log file after opening, with the latest timestamp found in it.
pub(crate) struct Recovered {
    pub(crate) log: LogFile,
    pub(crate) last_timestamp: u64,
}

impl LogFile {
    /// Opens (or creates) the log, verifies every record and cuts away a torn
    /// tail left by a process killed mid-write.
    pub(crate) fn open(path: PathBuf) -> Result<Recovered, StoreError> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(StoreError::io("open", &path))?;
        let len = file
            .metadata()
            .map_err(StoreError::io("inspect", &path))?
            .len();
        let scan = scan(&file, len, &path)?;
        if scan.end < len {
            file.set_len(scan.end)
                .and_then(|()| file.sync_all())
                .map_err(StoreError::io("truncate torn tail of", &path))?;
        }
        Ok(Recovered {
            log: Self {
                path,
                file,
                index: RwLock::new(Index {
                    starts: scan.starts,
                    end: scan.end,
                }),
            },
            last_timestamp: scan.last_timestamp,
        })
    }

    pub(crate) fn message_count(&self) -> u64 {
        read_lock(&self.index).starts.len() as u64
    }

    /// Writes `messages` (whose offsets continue the log) with one write call.
    /// The caller serialises appends; readers keep reading meanwhile and only
    /// see the new records once they are completely written.
    pub(crate) fn append(
        &self,
        records: &[Record<'_>],
        scratch: &mut Vec<u8>,
    ) -> Result<(), StoreError> {
        let end = read_lock(&self.index).end;
        scratch.clear();
        let starts = encode_records(records, scratch)
            .into_iter()
            .map(|start| end + start as u64);
        if let Err(error) = write_all_at(&self.file, scratch, end) {
            // Best effort: the next append overwrites from `end` anyway, and
            // opening treats leftover bytes as a torn tail.
            let _ = self.file.set_len(end);
            return Err(StoreError::io("append to", &self.path)(error));
        }
        let mut index = write_lock(&self.index);
        index.starts.extend(starts);
        index.end = end + scratch.len() as u64;
        Ok(())
    }

    /// Up to `max` messages from offset `from` on.
    pub(crate) fn read(&self, from: u64, max: usize) -> Result<Vec<StoredMessage>, StoreError> {
        let found = {
            let index = read_lock(&self.index);
            records_from(&index.starts, index.end, from, max)
        };
        let Some((range, count)) = found else {
            return Ok(Vec::new());
        };
        let len = usize::try_from(range.end - range.start)
            .map_err(|_| StoreError::corrupt(&self.path, "read range exceeds memory"))?;
        let mut bytes = vec![0u8; len];
        read_exact_at(&self.file, &mut bytes, range.start)
            .map_err(StoreError::io("read", &self.path))?;

        decode_records(&bytes, from, count)
            .map_err(|detail| StoreError::corrupt(&self.path, detail))
    }

    pub(crate) fn sync(&self) -> Result<(), StoreError> {
        self.file
            .sync_data()
            .map_err(StoreError::io("fsync", &self.path))
    }
}

struct Scan {
    starts: Vec<u64>,
    end: u64,
    last_timestamp: u64,
}

/// Walks the records from the start. Stops (for truncation) at a torn tail:
/// an incomplete header, a record running past the end of the file, a last
/// record whose body fails its checksum, or an all-zero region (a file
/// extended by a crash before its data reached the disk). Anything else that
/// fails to verify is real corruption and reported, not silently dropped.
fn scan(file: &File, len: u64, path: &Path) -> Result<Scan, StoreError> {
    let mut reader = BufReader::with_capacity(SCAN_BUFFER, file);
    let mut scan = Scan {
        starts: Vec::new(),
        end: 0,
        last_timestamp: 0,
    };
    let mut header_bytes = [0u8; HEADER_LEN];
    let mut body = Vec::new();
    while scan.end < len {
        let remaining = len - scan.end;
        if remaining < HEADER_LEN as u64 {
            break;
        }
        reader
            .read_exact(&mut header_bytes)
            .map_err(StoreError::io("read", path))?;
        let header = match RecordHeader::decode(&header_bytes) {
            Ok(header) => header,
            Err(problem) => {
                let rest_len = remaining - HEADER_LEN as u64;
                if header_bytes.iter().all(|byte| *byte == 0)
                    && rest_is_zero(&mut reader, rest_len, path)?
                {
                    break;
                }
                return Err(StoreError::corrupt(
                    path,
                    format!("{problem} at byte {}", scan.end),
                ));
            }
        };
        if header.record_len() > remaining {
            break;
        }
        let Ok(body_len) = usize::try_from(header.body_len()) else {
            return Err(StoreError::corrupt(path, "record larger than memory"));
        };
        body.resize(body_len, 0);
        reader
            .read_exact(&mut body)
            .map_err(StoreError::io("read", path))?;
        if !header.body_matches(&body) {
            if header.record_len() == remaining {
                break;
            }
            return Err(StoreError::corrupt(
                path,
                format!(
                    "checksum mismatch in record at byte {} (offset {})",
                    scan.end, header.offset
                ),
            ));
        }
        let expected = scan.starts.len() as u64;
        if header.offset != expected {
            return Err(StoreError::corrupt(
                path,
                format!(
                    "record at byte {} has offset {}, expected {expected}",
                    scan.end, header.offset
                ),
            ));
        }
        scan.starts.push(scan.end);
        scan.end += header.record_len();
        scan.last_timestamp = scan.last_timestamp.max(header.timestamp);
    }
    Ok(scan)
}

fn rest_is_zero(reader: &mut impl Read, len: u64, path: &Path) -> Result<bool, StoreError> {
    let mut chunk = [0u8; 8192];
    let mut left = len;
    while left > 0 {
        let take = chunk.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        reader
            .read_exact(&mut chunk[..take])
            .map_err(StoreError::io("read", path))?;
        if chunk[..take].iter().any(|byte| *byte != 0) {
            return Ok(false);
        }
        left -= take as u64;
    }
    Ok(true)
}
