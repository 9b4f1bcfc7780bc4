//! Attaching to the stream: planning and opening the consumers. The runtime
//! opens every source before any sink (runtime/src/main.rs, `main`: the
//! sources' `init` runs before the sinks') and never opens a failed
//! connector again, so a stream
//! that a NATS sink of the same runtime creates at its own open does not
//! exist yet when this source opens. The source then opens anyway and each
//! poll looks for the stream again, every `stream_check_interval`.

use super::{Session, SubjectWatch};
use crate::bounds::StopRules;
use crate::client::{self, consumers};
use crate::config::SourceConfig;
use crate::plan;
use crate::reader::Reader;
use async_nats::jetstream::stream::Stream;
use iggy_connector_sdk::Error;

impl Session {
    /// Plans and opens the consumers of `stream`, which from then on is read.
    pub(super) async fn attach(
        &mut self,
        stream: Stream,
        config: &SourceConfig,
    ) -> Result<(), String> {
        let stream_info = stream.cached_info();
        let specs = plan::plan(config, &stream_info.config.subjects)?;
        let committed = &mut self.committed;
        if config.stop.as_ref().is_some_and(|s| s.at_last_sequence)
            && committed.last_sequence_at_start.is_none()
        {
            committed.last_sequence_at_start = Some(stream_info.state.last_sequence);
        }
        self.rules = config
            .stop
            .as_ref()
            .map(|s| StopRules::new(s, committed.last_sequence_at_start));
        let mut readers = Vec::with_capacity(specs.len());
        // A finished bounded source reads nothing, so its consumers are left alone.
        if !committed.finished {
            for spec in &specs {
                let opened = consumers::open(&stream, spec, committed.last(&spec.name)).await?;
                committed
                    .consumers
                    .insert(spec.name.clone(), opened.position);
                readers.push(Reader::new(spec.name.clone(), opened));
            }
            committed
                .consumers
                .retain(|name, _| specs.iter().any(|s| &s.name == name));
        }
        self.subject_watch = config
            .consumers
            .is_empty()
            .then(|| SubjectWatch::new(config, specs.clone(), stream_info.state.last_sequence));
        let names: Vec<String> = specs
            .iter()
            .map(|s| format!("`{}` ({})", s.name, s.filter.as_deref().unwrap_or(">")))
            .collect();
        tracing::info!(
            "NATS JetStream source {} reads stream `{}` on {} through {}{}{}",
            self.id,
            config.stream,
            config.connection.servers_for_logs(),
            names.join(", "),
            self.subject_watch
                .as_ref()
                .map(|w| format!(
                    "; subjects added to the stream are looked for every {:?}",
                    w.interval()
                ))
                .unwrap_or_default(),
            if self.committed.finished {
                "; it finished its bounded read earlier and produces nothing more"
            } else {
                ""
            }
        );
        self.readers = readers;
        self.stream = Some(stream);
        Ok(())
    }

    pub(super) fn wait_for_stream(&mut self, config: SourceConfig) {
        tracing::warn!(
            "NATS JetStream source {}: stream `{}` (setting `stream`) does not exist on {} yet; waiting for it, looking again every {:?}",
            self.id,
            config.stream,
            config.connection.servers_for_logs(),
            self.stream_check_interval
        );
        self.waiting = Some(config);
    }

    /// Whether the stream is attached; while it is not, looks for it once
    /// and, not finding it, sleeps `stream_check_interval` (the runtime polls
    /// again at once after an empty batch or an error).
    pub(super) async fn look_for_stream(&mut self) -> Result<bool, Error> {
        let Some(config) = self.waiting.take() else {
            return Ok(true);
        };
        let found = client::find_stream(&self.client, &config.connection, &config.stream).await;
        let outcome = match found {
            Ok(Some(stream)) => self.attach(stream, &config).await.map(|()| true),
            Ok(None) => Ok(false),
            Err(error) => Err(error),
        };
        if matches!(outcome, Ok(true)) {
            tracing::info!(
                "NATS JetStream source {}: stream `{}` appeared",
                self.id,
                config.stream
            );
            return Ok(true);
        }
        self.waiting = Some(config);
        tokio::time::sleep(self.stream_check_interval).await;
        outcome.map_err(Error::Connection)
    }
}
