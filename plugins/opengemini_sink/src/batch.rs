//! The lines of one `consume` call in one buffer, with where each line ends
//! and which Iggy offset it came from, so requests are slices of it and a
//! refused request can be reported by offsets; and its split into lanes
//! that may be written concurrently. Pure.

use std::ops::Range;

#[derive(Debug, Default)]
pub struct LineBatch {
    text: String,
    /// `ends[i]` is the end (after its newline) of line `i` in `text`.
    ends: Vec<usize>,
    offsets: Vec<u64>,
}

/// A position to roll back to when a record turns out not to fit.
#[derive(Debug, Clone, Copy)]
pub struct Mark {
    text: usize,
    lines: usize,
}

impl LineBatch {
    pub fn with_capacity(lines: usize, bytes: usize) -> Self {
        Self {
            text: String::with_capacity(bytes),
            ends: Vec::with_capacity(lines),
            offsets: Vec::with_capacity(lines),
        }
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Where the next line goes: append to it, then call [`Self::end_line`].
    pub fn text_mut(&mut self) -> &mut String {
        &mut self.text
    }

    /// Records that the text appended since the last line (ending in a
    /// newline) is one line from the message at `offset`.
    pub fn end_line(&mut self, offset: u64) {
        debug_assert!(self.text.ends_with('\n'));
        self.ends.push(self.text.len());
        self.offsets.push(offset);
    }

    pub fn mark(&self) -> Mark {
        Mark {
            text: self.text.len(),
            lines: self.ends.len(),
        }
    }

    pub fn rollback(&mut self, mark: Mark) {
        self.text.truncate(mark.text);
        self.ends.truncate(mark.lines);
        self.offsets.truncate(mark.lines);
    }

    /// The request body for lines `range`.
    pub fn body(&self, range: Range<usize>) -> &[u8] {
        if range.is_empty() {
            return &[];
        }
        let start = match range.start {
            0 => 0,
            n => self.ends[n - 1],
        };
        &self.text.as_bytes()[start..self.ends[range.end - 1]]
    }

    /// The first and last Iggy offsets of lines `range` (not empty).
    pub fn offsets(&self, range: Range<usize>) -> (u64, u64) {
        let lines = &self.offsets[range];
        let first = lines.first().copied().unwrap_or_default();
        (first, lines.last().copied().unwrap_or(first))
    }

    /// Splits the lines into `lanes` batches, each keeping its lines' order.
    /// Lines are placed by their timestamp, so two lines that may be the
    /// same point (same series, same timestamp: the later must win) always
    /// share a lane and reach the server in order, whatever the lanes'
    /// requests do relative to each other.
    pub fn split_by_timestamp(&self, lanes: usize) -> Vec<LineBatch> {
        let lanes = lanes.max(1);
        let per_lane = self.len().div_ceil(lanes);
        let mut split: Vec<LineBatch> = (0..lanes)
            .map(|_| LineBatch::with_capacity(per_lane, self.text.len().div_ceil(lanes)))
            .collect();
        let mut start = 0;
        for (&end, &offset) in self.ends.iter().zip(&self.offsets) {
            // Each end follows a newline, so both ends are character boundaries.
            let text = &self.text[start..end];
            start = end;
            let lane = &mut split[lane_of(text.as_bytes(), lanes)];
            lane.text.push_str(text);
            lane.end_line(offset);
        }
        split
    }
}

/// The lane of a line (ending in `\n`), from the digits of its timestamp,
/// the last field of every line the mapping writes.
fn lane_of(line: &[u8], lanes: usize) -> usize {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let digits = line
        .iter()
        .rev()
        .take_while(|byte| byte.is_ascii_digit())
        .count();
    let timestamp = line[line.len() - digits..].iter().fold(0u64, |n, digit| {
        n.wrapping_mul(10).wrapping_add(u64::from(digit - b'0'))
    });
    // Fibonacci hashing: timestamps are often multiples of a round number
    // (seconds or milliseconds in nanoseconds), which a plain remainder
    // would pile into one lane.
    let hash = timestamp.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    ((u128::from(hash) * lanes as u128) >> 64) as usize
}

/// Line ranges of at most `size` lines covering `0..len`, in order.
pub fn chunks(len: usize, size: usize) -> impl DoubleEndedIterator<Item = Range<usize>> {
    let size = size.max(1);
    (0..len.div_ceil(size)).map(move |n| n * size..((n + 1) * size).min(len))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(lines: &[(&str, u64)]) -> LineBatch {
        let mut batch = LineBatch::default();
        for (line, offset) in lines {
            batch.text_mut().push_str(line);
            batch.text_mut().push('\n');
            batch.end_line(*offset);
        }
        batch
    }

    #[test]
    fn bodies_are_slices_of_whole_lines() {
        let batch = batch(&[("a v=1", 10), ("b v=2", 10), ("c v=3", 12)]);
        assert_eq!(batch.len(), 3);
        assert_eq!(batch.body(0..3), b"a v=1\nb v=2\nc v=3\n");
        assert_eq!(batch.body(1..2), b"b v=2\n");
        assert_eq!(batch.body(2..3), b"c v=3\n");
        assert_eq!(batch.body(1..1), b"");
        assert_eq!(batch.offsets(0..2), (10, 10));
        assert_eq!(batch.offsets(1..3), (10, 12));
    }

    #[test]
    fn rollback_forgets_a_partly_written_record() {
        let mut batch = batch(&[("a v=1", 1)]);
        let mark = batch.mark();
        batch.text_mut().push_str("b v=2\n");
        batch.end_line(2);
        batch.text_mut().push_str("c v=");
        batch.rollback(mark);
        assert_eq!(batch.len(), 1);
        assert_eq!(batch.body(0..1), b"a v=1\n");
    }

    #[test]
    fn lanes_keep_same_timestamp_lines_together_and_in_order() {
        let lines: Vec<String> = (0..400u64)
            .map(|n| {
                format!(
                    "m,host=h{} v={n}i {}",
                    n % 3,
                    1_700_000_000_000_000_000 + (n / 2) * 1_000_000
                )
            })
            .collect();
        let all: Vec<(&str, u64)> = lines
            .iter()
            .zip(0u64..)
            .map(|(l, o)| (l.as_str(), o))
            .collect();
        let lanes = batch(&all).split_by_timestamp(3);
        assert_eq!(lanes.iter().map(LineBatch::len).sum::<usize>(), 400);
        for lane in &lanes {
            assert!(
                lane.len() > 60,
                "millisecond timestamps spread: {}",
                lane.len()
            );
            let offsets = &lane.offsets;
            assert!(
                offsets.windows(2).all(|w| w[0] < w[1]),
                "order kept in a lane"
            );
            for line in 0..lane.len() {
                let text = std::str::from_utf8(lane.body(line..line + 1)).unwrap();
                assert_eq!(text, format!("{}\n", lines[offsets[line] as usize]));
            }
        }
        // Lines 2n and 2n+1 share a timestamp: always the same lane.
        let lane_of_offset = |offset: u64| lanes.iter().position(|l| l.offsets.contains(&offset));
        for n in 0..200 {
            assert_eq!(lane_of_offset(2 * n), lane_of_offset(2 * n + 1));
        }
        assert_eq!(
            batch(&all).split_by_timestamp(1)[0].body(0..400),
            batch(&all).body(0..400)
        );
    }

    #[test]
    fn chunks_cover_everything_in_order() {
        let all: Vec<_> = chunks(10, 4).collect();
        assert_eq!(all, [0..4, 4..8, 8..10]);
        assert_eq!(chunks(8, 4).count(), 2);
        assert_eq!(chunks(0, 4).count(), 0);
        assert_eq!(chunks(3, 0).count(), 3);
        assert_eq!(chunks(10, 4).next_back(), Some(8..10));
    }
}
