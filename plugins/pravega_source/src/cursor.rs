//! Where reading resumes: per segment, the position after the last event of
//! a batch the runtime acknowledged (committed), and the positions the batch
//! in flight reached (staged until its Ack or Nack).

use iggy_connector_shared::pravega::client::{ReadEvent, StreamCut};
use serde::{Deserialize, Serialize};

/// What the runtime saves with each batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedState {
    /// `scope/stream`: state of another stream is not used.
    pub stream: String,
    /// Segment number → offset of the next event.
    pub positions: StreamCut,
}

#[derive(Debug)]
pub struct Cursor {
    committed: StreamCut,
    staged: Option<StreamCut>,
    /// Whether the runtime holds `committed`: not yet when it came from the
    /// `start` setting (a `tail` resolved again after a restart would skip
    /// what was written in between).
    persisted: bool,
}

impl Cursor {
    pub fn new(committed: StreamCut, persisted: bool) -> Self {
        Self {
            committed,
            staged: None,
            persisted,
        }
    }

    /// The positions to hand the runtime with a batch reaching `positions`,
    /// when it does not hold them yet.
    pub fn to_save(&self, positions: &StreamCut) -> Option<StreamCut> {
        (*positions != self.committed || !self.persisted).then(|| positions.clone())
    }

    pub fn committed(&self) -> &StreamCut {
        &self.committed
    }

    /// The positions after `events`, from the committed ones.
    pub fn after(&self, events: &[ReadEvent]) -> StreamCut {
        let mut positions = self.committed.clone();
        for event in events {
            let position = positions.entry(event.segment).or_insert(0);
            *position = (*position).max(event.next_offset);
        }
        positions
    }

    pub fn stage(&mut self, positions: StreamCut) {
        self.staged = Some(positions);
    }

    pub fn ack(&mut self) {
        if let Some(staged) = self.staged.take() {
            self.committed = staged;
            self.persisted = true;
        }
    }

    /// Whether a batch was in flight (its events must be read again).
    pub fn nack(&mut self) -> bool {
        self.staged.take().is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(segment: i64, offset: i64, len: i64) -> ReadEvent {
        ReadEvent {
            segment,
            offset,
            next_offset: offset + 8 + len,
            payload: vec![0; len as usize],
        }
    }

    #[test]
    fn start_positions_are_saved_once_even_without_events() {
        let start: StreamCut = [(0, 120)].into();
        let mut cursor = Cursor::new(start.clone(), false);
        assert_eq!(cursor.to_save(&start), Some(start.clone()));
        cursor.stage(start.clone());
        assert!(cursor.nack());
        assert_eq!(cursor.to_save(&start), Some(start.clone()), "not held yet");
        cursor.stage(start.clone());
        cursor.ack();
        assert_eq!(cursor.to_save(&start), None);
        let resumed = Cursor::new(start.clone(), true);
        assert_eq!(resumed.to_save(&start), None);
        assert_eq!(resumed.to_save(&[(0, 130)].into()), Some([(0, 130)].into()));
    }

    #[test]
    fn staged_positions_commit_on_ack_only() {
        let mut cursor = Cursor::new([(0, 0), (1, 40)].into(), true);
        let positions = cursor.after(&[event(0, 0, 2), event(0, 10, 2), event(2, 0, 1)]);
        assert_eq!(positions, [(0, 20), (1, 40), (2, 9)].into());
        cursor.stage(positions.clone());
        assert!(cursor.nack());
        assert_eq!(cursor.committed(), &[(0, 0), (1, 40)].into());
        assert!(!cursor.nack(), "nothing in flight any more");
        cursor.stage(positions.clone());
        cursor.ack();
        assert_eq!(cursor.committed(), &positions);
        cursor.ack();
        assert_eq!(
            cursor.committed(),
            &positions,
            "a second Ack changes nothing"
        );
    }
}
