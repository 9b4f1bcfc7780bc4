//! What one target stream already holds from this sink: its tail and, per
//! Iggy partition, the highest offset written. Learned by reading records
//! back (pure bookkeeping here; the reads are in `writer`).

use crate::mapping::Position;
use s2_sdk::types::SequencedRecord;
use std::collections::{HashMap, HashSet};

#[derive(Debug)]
pub struct Progress {
    /// The next sequence number the stream assigns, as last seen.
    pub tail: u64,
    written: HashMap<String, u64>,
    /// Records below this sequence number have not been read back yet.
    unscanned_below: u64,
    /// Partitions whose read-back hit its bound: taken as never written here.
    not_found: HashSet<String>,
}

impl Progress {
    pub fn new(tail: u64) -> Self {
        Self {
            tail,
            written: HashMap::new(),
            unscanned_below: tail,
            not_found: HashSet::new(),
        }
    }

    pub fn written(&self, source: &str) -> Option<u64> {
        self.written.get(source).copied()
    }

    /// Whether older records must be read to know what `source` wrote.
    pub fn needs_scan(&self, source: &str) -> bool {
        !self.written.contains_key(source)
            && !self.not_found.contains(source)
            && self.unscanned_below > 0
    }

    /// The read-back for `source` stops here without finding its last record.
    pub fn give_up_scan(&mut self, source: &str) {
        self.not_found.insert(source.to_string());
    }

    pub fn unscanned_below(&self) -> u64 {
        self.unscanned_below
    }

    /// Records from `from` up to the unscanned mark were read (or `from` was
    /// past a trim point, so nothing older exists).
    pub fn scanned_down_to(&mut self, from: u64) {
        self.unscanned_below = self.unscanned_below.min(from);
    }

    pub fn observe(&mut self, records: &[SequencedRecord]) {
        for record in records {
            if let Some(position) = Position::of_record(&record.headers) {
                self.note(position.source, position.offset);
            }
        }
    }

    pub fn note(&mut self, source: String, offset: u64) {
        let entry = self.written.entry(source).or_insert(offset);
        *entry = (*entry).max(offset);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use s2_sdk::types::Header;

    fn record(seq: u64, position: Option<&str>) -> SequencedRecord {
        let headers = position
            .map(|p| vec![Header::new("@iggy-position", p.to_string())])
            .unwrap_or_default();
        SequencedRecord::from_parts(seq, 0, headers, "x")
    }

    #[test]
    fn keeps_the_highest_offset_per_partition() {
        let mut p = Progress::new(10);
        assert!(p.needs_scan("s/t/1"));
        p.observe(&[
            record(6, Some("s/t/1@4")),
            record(7, None),
            record(8, Some("s/t/1@5")),
            record(9, Some("s/t/2@1")),
        ]);
        p.scanned_down_to(6);
        assert_eq!(p.written("s/t/1"), Some(5));
        assert_eq!(p.written("s/t/2"), Some(1));
        assert!(!p.needs_scan("s/t/1"));
        assert!(p.needs_scan("s/t/3"));
        p.observe(&[record(2, Some("s/t/1@1"))]);
        assert_eq!(p.written("s/t/1"), Some(5));
        p.give_up_scan("s/t/3");
        assert!(!p.needs_scan("s/t/3"), "a bounded read-back ends");
        assert_eq!(p.written("s/t/3"), None);
        assert!(p.needs_scan("s/t/4"), "others still read back");
        p.scanned_down_to(0);
        assert!(!p.needs_scan("s/t/4"));
    }
}
