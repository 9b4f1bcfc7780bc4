//! Splits records into appends within S2's limits, in order: at most 1000
//! records and 1 MiB metered (8 + 2 × headers + header bytes + body) each.

use s2_sdk::types::{AppendRecord, MeteredBytes};

pub const MAX_RECORDS: usize = 1000;
pub const MAX_METERED_BYTES: usize = 1024 * 1024;

/// Consecutive index ranges of `records`, each one append.
pub fn split(records: &[AppendRecord]) -> Vec<std::ops::Range<usize>> {
    let mut ranges = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, record) in records.iter().enumerate() {
        let size = record.metered_bytes();
        if i > start && (i - start == MAX_RECORDS || bytes + size > MAX_METERED_BYTES) {
            ranges.push(start..i);
            (start, bytes) = (i, 0);
        }
        bytes += size;
    }
    if start < records.len() {
        ranges.push(start..records.len());
    }
    ranges
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(n: usize, body: usize) -> Vec<AppendRecord> {
        (0..n)
            .map(|_| AppendRecord::new(vec![b'x'; body]).unwrap())
            .collect()
    }

    #[test]
    fn splits_by_count_and_by_metered_bytes() {
        assert_eq!(split(&records(2500, 1)), [0..1000, 1000..2000, 2000..2500]);
        // 8 + 100_000 metered bytes each: ten fit in 1 MiB, the eleventh does not.
        assert_eq!(split(&records(25, 100_000)), [0..10, 10..20, 20..25]);
        assert!(split(&[]).is_empty());
    }
}
