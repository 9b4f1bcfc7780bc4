//! Where each stream is read next: committed positions (saved with the
//! batches the runtime acknowledged) and those staged by the batch in flight.

use crate::config::StartFrom;
use s2_sdk::types::ReadFrom;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Position {
    /// The next sequence number: a later first record means a gap.
    Next(u64),
    /// The start behaviour, until the first record fixes a sequence number.
    Earliest,
    AtTimestamp(u64),
}

impl Position {
    pub fn read_from(self) -> ReadFrom {
        match self {
            Self::Next(seq_num) => ReadFrom::SeqNum(seq_num),
            Self::Earliest => ReadFrom::SeqNum(0),
            Self::AtTimestamp(timestamp) => ReadFrom::Timestamp(timestamp),
        }
    }

    /// The records from `first` to `last` were read: the new position and
    /// any range that was skipped over (trimmed or expired records).
    pub fn after(self, first: u64, last: u64) -> (Self, Option<std::ops::Range<u64>>) {
        let gap = match self {
            Self::Next(expected) if first != expected => {
                Some(expected.min(first)..expected.max(first))
            }
            _ => None,
        };
        (Self::Next(last + 1), gap)
    }
}

/// A start behaviour that needs no request (`latest` is resolved by the reader).
pub fn initial(start: StartFrom) -> Option<Position> {
    match start {
        StartFrom::Earliest => Some(Position::Earliest),
        StartFrom::SeqNum(seq_num) => Some(Position::Next(seq_num)),
        StartFrom::Timestamp(timestamp) => Some(Position::AtTimestamp(timestamp)),
        StartFrom::Latest => None,
    }
}

/// What the runtime saves: the next sequence number per stream.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedState {
    pub next_seq_nums: BTreeMap<String, u64>,
}

#[derive(Debug, Default)]
pub struct Cursors {
    committed: BTreeMap<String, Position>,
    staged: Option<BTreeMap<String, Position>>,
    /// What the runtime holds: the loaded state, then each acknowledged one.
    persisted: SavedState,
}

impl Cursors {
    pub fn new(saved: Option<SavedState>) -> Self {
        let persisted = saved.unwrap_or_default();
        let committed = persisted
            .next_seq_nums
            .iter()
            .map(|(name, seq_num)| (name.clone(), Position::Next(*seq_num)))
            .collect();
        Self {
            committed,
            staged: None,
            persisted,
        }
    }

    /// The state to hand the runtime with a batch reaching `positions`, when
    /// it differs from what the runtime holds.
    pub fn state_to_save(&self, positions: &BTreeMap<String, Position>) -> Option<SavedState> {
        let saved = Self::saved(positions);
        (saved != self.persisted).then_some(saved)
    }

    pub fn contains(&self, name: &str) -> bool {
        self.committed.contains_key(name)
    }

    /// A newly found stream's start; saved state wins over it.
    pub fn start(&mut self, name: &str, position: Position) {
        self.committed.entry(name.to_string()).or_insert(position);
    }

    /// The positions a poll begins from.
    pub fn working(&self) -> BTreeMap<String, Position> {
        self.committed.clone()
    }

    pub fn stage(&mut self, positions: BTreeMap<String, Position>) {
        self.staged = Some(positions);
    }

    pub fn ack(&mut self) {
        if let Some(staged) = self.staged.take() {
            self.committed.extend(staged);
            self.persisted = Self::saved(&self.committed);
        }
    }

    pub fn nack(&mut self) {
        self.staged = None;
    }

    pub fn saved(positions: &BTreeMap<String, Position>) -> SavedState {
        SavedState {
            next_seq_nums: positions
                .iter()
                .filter_map(|(name, p)| match p {
                    Position::Next(seq_num) => Some((name.clone(), *seq_num)),
                    _ => None,
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staged_positions_commit_on_ack_only() {
        let saved = SavedState {
            next_seq_nums: [("a".to_string(), 5)].into(),
        };
        let mut cursors = Cursors::new(Some(saved));
        cursors.start("a", Position::Earliest);
        cursors.start("b", Position::Earliest);
        let mut working = cursors.working();
        assert_eq!(working["a"], Position::Next(5), "saved state wins");
        working.insert("a".into(), Position::Next(9));
        cursors.stage(working.clone());
        cursors.nack();
        assert_eq!(cursors.working()["a"], Position::Next(5));
        cursors.stage(working);
        cursors.ack();
        assert_eq!(cursors.working()["a"], Position::Next(9));
        let working = cursors.working();
        assert_eq!(
            cursors.state_to_save(&working),
            None,
            "acknowledged already"
        );
        cursors.start("c", Position::Next(3));
        let saved = cursors.state_to_save(&cursors.working()).unwrap();
        assert_eq!(
            saved.next_seq_nums,
            [("a".to_string(), 9), ("c".to_string(), 3)].into()
        );
    }

    #[test]
    fn gaps_are_found_only_from_an_exact_position() {
        assert_eq!(Position::Next(3).after(3, 7), (Position::Next(8), None));
        assert_eq!(
            Position::Next(3).after(10, 12),
            (Position::Next(13), Some(3..10))
        );
        assert_eq!(Position::Earliest.after(10, 12), (Position::Next(13), None));
        assert_eq!(initial(StartFrom::SeqNum(4)), Some(Position::Next(4)));
        assert_eq!(initial(StartFrom::Latest), None);
    }
}
