//! One message as it sits in a partition log: a fixed 68-byte header followed
//! by the headers bytes and the payload bytes. All integers are little-endian.
//!
//! ```text
//!  0  magic "IHR2"          4
//!  4  headers_len  u32      4
//!  8  payload_len  u32      4
//! 12  offset       u64      8
//! 20  id           u128    16
//! 36  timestamp    u64      8
//! 44  origin_ts    u64      8
//! 52  checksum     u64      8   message checksum over headers + payload
//! 60  header_check u64      8   XXH3-64 of bytes 0..60
//! ```
//!
//! The header check makes a torn or foreign header recognisable before its
//! lengths are trusted; the message checksum then covers the body.

use crate::checksum::{hash, message_checksum};
use crate::message::StoredMessage;
use std::ops::Range;

pub(crate) const HEADER_LEN: usize = 68;
/// Longest headers or payload section; the lengths are stored as u32.
pub(crate) const MAX_SECTION_LEN: usize = u32::MAX as usize;

const MAGIC: [u8; 4] = *b"IHR2";
/// The first format, with XXH64 checksums; its logs are refused by name.
const MAGIC_V1: [u8; 4] = *b"IHR1";
const CHECKED_LEN: usize = HEADER_LEN - 8;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RecordHeader {
    pub(crate) headers_len: u32,
    pub(crate) payload_len: u32,
    pub(crate) offset: u64,
    pub(crate) id: u128,
    pub(crate) timestamp: u64,
    pub(crate) origin_timestamp: u64,
    pub(crate) checksum: u64,
}

impl RecordHeader {
    pub(crate) fn body_len(&self) -> u64 {
        u64::from(self.headers_len) + u64::from(self.payload_len)
    }

    /// Header plus body.
    pub(crate) fn record_len(&self) -> u64 {
        HEADER_LEN as u64 + self.body_len()
    }

    fn encode(&self) -> [u8; HEADER_LEN] {
        let mut bytes = [0u8; HEADER_LEN];
        bytes[0..4].copy_from_slice(&MAGIC);
        bytes[4..8].copy_from_slice(&self.headers_len.to_le_bytes());
        bytes[8..12].copy_from_slice(&self.payload_len.to_le_bytes());
        bytes[12..20].copy_from_slice(&self.offset.to_le_bytes());
        bytes[20..36].copy_from_slice(&self.id.to_le_bytes());
        bytes[36..44].copy_from_slice(&self.timestamp.to_le_bytes());
        bytes[44..52].copy_from_slice(&self.origin_timestamp.to_le_bytes());
        bytes[52..60].copy_from_slice(&self.checksum.to_le_bytes());
        let check = hash(&bytes[..CHECKED_LEN]);
        bytes[CHECKED_LEN..].copy_from_slice(&check.to_le_bytes());
        bytes
    }

    pub(crate) fn decode(bytes: &[u8; HEADER_LEN]) -> Result<Self, &'static str> {
        match field::<4>(bytes, 0) {
            MAGIC => {}
            MAGIC_V1 => {
                return Err(
                    "record of an older harness (format IHR1, XXH64 checksums); start with a fresh data directory",
                );
            }
            _ => return Err("bad record magic"),
        }
        if u64::from_le_bytes(field(bytes, CHECKED_LEN)) != hash(&bytes[..CHECKED_LEN]) {
            return Err("record header check mismatch");
        }
        Ok(Self {
            headers_len: u32::from_le_bytes(field(bytes, 4)),
            payload_len: u32::from_le_bytes(field(bytes, 8)),
            offset: u64::from_le_bytes(field(bytes, 12)),
            id: u128::from_le_bytes(field(bytes, 20)),
            timestamp: u64::from_le_bytes(field(bytes, 36)),
            origin_timestamp: u64::from_le_bytes(field(bytes, 44)),
            checksum: u64::from_le_bytes(field(bytes, 52)),
        })
    }

    /// Whether `body` (headers then payload, exactly `body_len` bytes) matches the checksum.
    pub(crate) fn body_matches(&self, body: &[u8]) -> bool {
        let (headers, payload) = body.split_at(body.len().min(self.headers_len as usize));
        message_checksum(headers, payload) == self.checksum
    }
}

/// A record about to be written: its header and the sections it borrows.
pub(crate) struct Record<'m> {
    pub(crate) header: RecordHeader,
    pub(crate) headers: &'m [u8],
    pub(crate) payload: &'m [u8],
}

impl<'m> Record<'m> {
    /// Sections must be at most `MAX_SECTION_LEN` bytes (checked on append);
    /// offset and timestamp are set once the partition's lock is held.
    pub(crate) fn new(
        id: u128,
        origin_timestamp: u64,
        headers: &'m [u8],
        payload: &'m [u8],
    ) -> Self {
        Self {
            header: RecordHeader {
                headers_len: headers.len() as u32,
                payload_len: payload.len() as u32,
                offset: 0,
                id,
                timestamp: 0,
                origin_timestamp,
                checksum: message_checksum(headers, payload),
            },
            headers,
            payload,
        }
    }
}

/// Appends the encoded `records` to `out` and returns where each starts in it.
pub(crate) fn encode_records(records: &[Record<'_>], out: &mut Vec<u8>) -> Vec<usize> {
    out.reserve(
        records
            .iter()
            .map(|record| HEADER_LEN + record.headers.len() + record.payload.len())
            .sum(),
    );
    records
        .iter()
        .map(|record| {
            let start = out.len();
            out.extend_from_slice(&record.header.encode());
            out.extend_from_slice(record.headers);
            out.extend_from_slice(record.payload);
            start
        })
        .collect()
}

/// Where up to `max` records from offset `from` on lie, given where each
/// record starts and where the last one ends: their byte range and count,
/// or `None` when there are none.
pub(crate) fn records_from<T: Copy>(
    starts: &[T],
    end: T,
    from: u64,
    max: usize,
) -> Option<(Range<T>, usize)> {
    let first = usize::try_from(from)
        .ok()
        .filter(|first| *first < starts.len())?;
    let last = first.saturating_add(max).min(starts.len());
    let stop = starts.get(last).copied().unwrap_or(end);
    (last > first).then(|| (starts[first]..stop, last - first))
}

/// Decodes the `count` records at the start of `bytes`, which must carry the
/// offsets from `first` on.
pub(crate) fn decode_records(
    bytes: &[u8],
    first: u64,
    count: usize,
) -> Result<Vec<StoredMessage>, String> {
    let mut messages = Vec::with_capacity(count);
    let mut rest = bytes;
    for expected in (first..).take(count) {
        let (message, used) = decode_record(rest)?;
        if message.offset != expected {
            return Err(format!(
                "expected offset {expected}, found {}",
                message.offset
            ));
        }
        messages.push(message);
        rest = &rest[used..];
    }
    Ok(messages)
}

/// Decodes the record at the start of `bytes`, returning it and its encoded length.
///
/// Used on data the store wrote and verified when loading, so only the header
/// is checked here; re-hashing every payload on each read would cost more than
/// the copy itself.
fn decode_record(bytes: &[u8]) -> Result<(StoredMessage, usize), String> {
    let header_bytes: &[u8; HEADER_LEN] = bytes
        .get(..HEADER_LEN)
        .and_then(|slice| slice.try_into().ok())
        .ok_or("record header cut short")?;
    let header = RecordHeader::decode(header_bytes)?;
    let headers_end = HEADER_LEN + header.headers_len as usize;
    let end = headers_end + header.payload_len as usize;
    let (headers, payload) = match (
        bytes.get(HEADER_LEN..headers_end),
        bytes.get(headers_end..end),
    ) {
        (Some(headers), Some(payload)) => (headers, payload),
        _ => return Err(format!("record at offset {} cut short", header.offset)),
    };
    let message = StoredMessage {
        id: header.id,
        offset: header.offset,
        checksum: header.checksum,
        timestamp: header.timestamp,
        origin_timestamp: header.origin_timestamp,
        headers: headers.to_vec(),
        payload: payload.to_vec(),
    };
    Ok((message, end))
}

/// The `N` bytes at `at`; every caller's range lies inside the header.
fn field<const N: usize>(bytes: &[u8; HEADER_LEN], at: usize) -> [u8; N] {
    let mut out = [0u8; N];
    out.copy_from_slice(&bytes[at..at + N]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode_record(message: &StoredMessage, out: &mut Vec<u8>) {
        let mut record = Record::new(
            message.id,
            message.origin_timestamp,
            &message.headers,
            &message.payload,
        );
        record.header.offset = message.offset;
        record.header.timestamp = message.timestamp;
        encode_records(&[record], out);
    }

    fn sample(offset: u64) -> StoredMessage {
        let headers = b"key=value".to_vec();
        let payload = format!("payload {offset}").into_bytes();
        StoredMessage {
            id: 0x0123_4567_89AB_CDEF_FEDC_BA98_7654_3210,
            offset,
            checksum: message_checksum(&headers, &payload),
            timestamp: 1_700_000_000_000_000 + offset,
            origin_timestamp: 42,
            headers,
            payload,
        }
    }

    #[test]
    fn records_round_trip() {
        let mut bytes = Vec::new();
        encode_record(&sample(7), &mut bytes);
        encode_record(&sample(8), &mut bytes);
        let (first, used) = decode_record(&bytes).expect("first record");
        assert_eq!(first, sample(7));
        let (second, rest) = decode_record(&bytes[used..]).expect("second record");
        assert_eq!(second, sample(8));
        assert_eq!(used + rest, bytes.len());
    }

    #[test]
    fn header_damage_is_detected() {
        let mut bytes = Vec::new();
        encode_record(&sample(1), &mut bytes);
        let mut damaged = bytes.clone();
        damaged[14] ^= 0x40;
        assert!(decode_record(&damaged).is_err());
        let mut wrong_magic = bytes;
        wrong_magic[0] = b'X';
        assert!(decode_record(&wrong_magic).is_err());
    }

    #[test]
    fn short_input_is_an_error_not_a_panic() {
        let mut bytes = Vec::new();
        encode_record(&sample(1), &mut bytes);
        for cut in [0, 10, HEADER_LEN, bytes.len() - 1] {
            assert!(decode_record(&bytes[..cut]).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn body_checksum_is_verified() {
        let message = sample(3);
        let mut bytes = Vec::new();
        encode_record(&message, &mut bytes);
        let header_bytes: [u8; HEADER_LEN] = bytes[..HEADER_LEN].try_into().expect("header");
        let header = RecordHeader::decode(&header_bytes).expect("valid header");
        let mut body = bytes[HEADER_LEN..].to_vec();
        assert!(header.body_matches(&body));
        body[2] ^= 1;
        assert!(!header.body_matches(&body));
    }
}
