//! Subjects added to the stream while the source runs. The default consumer
//! is one durable per subject of the stream, planned when the source
//! attaches; a subject added later (the stream's config updated) would never
//! be read. So every `subject_check_interval` the stream's subjects are read
//! again and each new one gets its consumer, under the same non-overlap rule.

use super::Session;
use crate::client::consumers;
use crate::config::{DefaultConsumerSettings, SourceConfig, StartPolicy};
use crate::plan::{self, ConsumerSpec};
use crate::reader::Reader;
use std::time::{Duration, Instant};

pub(super) struct SubjectWatch {
    stream: String,
    defaults: DefaultConsumerSettings,
    interval: Duration,
    next_check: Instant,
    /// The default consumers being read.
    running: Vec<ConsumerSpec>,
    /// The stream's last sequence when its subjects were last read in full:
    /// a subject missing then held nothing the source was asked to read up
    /// to it.
    read_up_to: u64,
    /// The subjects last refused for overlapping, so the warning is not
    /// repeated at every check.
    refused: Option<Vec<String>>,
}

impl SubjectWatch {
    pub(super) fn new(
        config: &SourceConfig,
        running: Vec<ConsumerSpec>,
        last_sequence: u64,
    ) -> Self {
        Self {
            stream: config.stream.clone(),
            defaults: config.default_consumer.clone().unwrap_or_default(),
            interval: config.subject_check_interval,
            next_check: Instant::now() + config.subject_check_interval,
            running,
            read_up_to: last_sequence,
            refused: None,
        }
    }

    pub(super) fn interval(&self) -> Duration {
        self.interval
    }

    /// `new` and `last` mean "from when the source started reading": for a
    /// subject found later, whatever reached it since the previous check
    /// counts as new, or it would be lost between the two.
    fn start_of(&self, mut spec: ConsumerSpec) -> ConsumerSpec {
        if matches!(spec.start, StartPolicy::New | StartPolicy::Last) {
            spec.start = StartPolicy::ByStartSequence(self.read_up_to + 1);
        }
        spec
    }
}

impl Session {
    /// Once `subject_check_interval` has passed: starts a consumer for each
    /// subject added to the stream since the last check. A failure is logged
    /// and tried again at the next check; reading goes on meanwhile.
    pub(super) async fn check_subjects(&mut self) {
        let (Some(watch), Some(stream)) = (&mut self.subject_watch, &self.stream) else {
            return;
        };
        if Instant::now() < watch.next_check {
            return;
        }
        watch.next_check = Instant::now() + watch.interval;
        let info = match stream.get_info().await {
            Ok(info) => info,
            Err(error) => {
                tracing::warn!(
                    "NATS JetStream source {}: cannot read the subjects of stream `{}`: {error}; trying again in {:?}",
                    self.id,
                    watch.stream,
                    watch.interval
                );
                return;
            }
        };
        let subjects = &info.config.subjects;
        let added = match plan::added_subjects(
            &watch.stream,
            &watch.defaults,
            &watch.running,
            subjects,
        ) {
            Ok(added) => added,
            Err(error) => {
                if watch.refused.as_ref() != Some(subjects) {
                    tracing::error!(
                        "NATS JetStream source {}: stream `{}` now has subjects {subjects:?}, not all read: {error}",
                        self.id,
                        watch.stream
                    );
                    watch.refused = Some(subjects.clone());
                }
                return;
            }
        };
        watch.refused = None;
        let mut all_started = true;
        for spec in added {
            let spec = watch.start_of(spec);
            let name = spec.name.clone();
            match consumers::open(stream, &spec, self.committed.last(&name)).await {
                Ok(opened) => {
                    tracing::info!(
                        "NATS JetStream source {}: stream `{}` gained subject `{}`; reading it through `{name}`",
                        self.id,
                        watch.stream,
                        spec.filter_or_empty()
                    );
                    self.committed
                        .consumers
                        .insert(name.clone(), opened.position);
                    if let Some(staged) = &mut self.staged {
                        staged.consumers.insert(name.clone(), opened.position);
                    }
                    self.readers.push(Reader::new(name, opened));
                    watch.running.push(spec);
                }
                Err(error) => {
                    all_started = false;
                    tracing::warn!(
                        "NATS JetStream source {}: {error}; trying again in {:?}",
                        self.id,
                        watch.interval
                    );
                }
            }
        }
        // A subject whose consumer failed starts, next time, from this check's predecessor.
        if all_started {
            watch.read_up_to = info.state.last_sequence;
        }
    }
}
