//! Where reading resumes: per segment, the position after the last event of
//! a batch the runtime acknowledged (committed), and the positions the batch
//! in flight reached (staged until its Ack or Nack). After the stream
//! scales, sealed segments give way to their successors (`settle`).

use iggy_connector_pravega_common::client::{ReadEvent, StreamCut, Successors};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

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

/// Takes out of `positions` every sealed segment (a key of `sealed`, which
/// maps it to its successors) that the reader group is done with, once all
/// its successors can be read; those without a position join at offset 0.
///
/// Why: a reader group started from positions that hold a sealed segment
/// reads it to its end again and then (re)starts each successor at offset
/// 0, overwriting any position the successor had (pravega-client 0.3.7,
/// event/reader_group_state.rs, segment_completed_internal) — every event
/// of the successors would come again after each Nack or restart. And a
/// sealed segment left in the positions would stay there for good.
///
/// A segment is done with when one of its successors has a position: the
/// reader group hands out a successor only after all of its predecessors
/// were read to their end. A successor can be read once all of its
/// predecessors are done with. A sealed segment some of whose successors
/// still wait for another, unfinished predecessor stays (see the README's
/// limits).
pub fn settle(positions: &mut StreamCut, sealed: &BTreeMap<i64, Successors>) {
    // Each round takes one segment out; there are finitely many.
    for _ in 0..=sealed.len() {
        let done: BTreeSet<i64> = sealed
            .values()
            .flatten()
            .filter(|(successor, _)| positions.contains_key(successor))
            .flat_map(|(_, predecessors)| predecessors.iter().copied())
            .collect();
        let finished = positions.keys().find_map(|segment| {
            let successors = sealed.get(segment)?;
            let ready = done.contains(segment)
                && successors
                    .values()
                    .all(|predecessors| predecessors.iter().all(|p| done.contains(p)));
            ready.then_some((*segment, successors))
        });
        let Some((segment, successors)) = finished else {
            return;
        };
        positions.remove(&segment);
        for successor in successors.keys() {
            positions.entry(*successor).or_insert(0);
        }
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

    fn successors(pairs: &[(i64, &[i64])]) -> Successors {
        pairs.iter().map(|(n, p)| (*n, p.to_vec())).collect()
    }

    #[test]
    fn a_split_segment_gives_way_to_all_its_successors_once_one_is_read() {
        // 0 split into 2 and 3; 1 open.
        let split = successors(&[(2, &[0]), (3, &[0])]);
        let sealed: BTreeMap<i64, Successors> = [(0, split)].into();
        let mut positions: StreamCut = [(0, 500), (1, 40)].into();
        settle(&mut positions, &sealed);
        assert_eq!(
            positions,
            [(0, 500), (1, 40)].into(),
            "no successor read yet"
        );
        let mut positions: StreamCut = [(0, 500), (1, 40), (2, 16)].into();
        settle(&mut positions, &sealed);
        assert_eq!(positions, [(1, 40), (2, 16), (3, 0)].into());
    }

    #[test]
    fn merged_segments_give_way_together_and_an_uneven_scale_keeps_the_sealed_one() {
        let merge = successors(&[(2, &[0, 1])]);
        let sealed: BTreeMap<i64, Successors> = [(0, merge.clone()), (1, merge)].into();
        let mut positions: StreamCut = [(0, 30), (1, 30), (2, 9)].into();
        settle(&mut positions, &sealed);
        assert_eq!(positions, [(2, 9)].into());

        // 0 and 1 became 2 (after both) and 3 (after 1 only): 3 read, 0 not
        // finished, so 1 cannot go without losing 2.
        let uneven = successors(&[(2, &[0, 1]), (3, &[1])]);
        let sealed: BTreeMap<i64, Successors> = [(0, uneven.clone()), (1, uneven)].into();
        let mut positions: StreamCut = [(0, 10), (1, 30), (3, 9)].into();
        settle(&mut positions, &sealed);
        assert_eq!(positions, [(0, 10), (1, 30), (3, 9)].into());
    }

    #[test]
    fn successive_scales_leave_only_the_open_segments() {
        // 0 → 1, 2; 1 → 3, 4; 3 → 5.
        let sealed: BTreeMap<i64, Successors> = [
            (0, successors(&[(1, &[0]), (2, &[0])])),
            (1, successors(&[(3, &[1]), (4, &[1])])),
            (3, successors(&[(5, &[3])])),
        ]
        .into();
        let mut positions: StreamCut = [(0, 80), (1, 50), (2, 7), (3, 20), (5, 3)].into();
        settle(&mut positions, &sealed);
        assert_eq!(positions, [(2, 7), (4, 0), (5, 3)].into());
    }
}
