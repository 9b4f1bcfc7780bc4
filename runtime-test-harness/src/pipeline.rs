//! `run`: opens every enabled connector of a directory against one store,
//! moves data until stopped, closes everything in the runtime's order
//! (sources, then sinks) and reports per connector.

use crate::connector_file::{ConnectorFile, ConnectorKind, read_dir};
use crate::faults::Faults;
use crate::library::{self, SinkApi, SourceApi, SourceProtocolChoice};
use crate::plugin_log::log_callback;
use crate::sink_runner::{self, SinkOptions};
use crate::source_runner::{self, SourceWorker};
use crate::state_file::StateFile;
use crate::stats::{ConnectorReport, ConnectorStats, Status, progress_line};
use iggy_harness_store::StreamStore;
use serde::Serialize;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub struct PipelineOptions {
    pub connectors_dir: PathBuf,
    pub state_dir: PathBuf,
    /// `None` keeps the store in memory.
    pub data_dir: Option<PathBuf>,
    pub partitions: u32,
    pub sink: SinkOptions,
    pub faults: Faults,
    pub duration: Option<Duration>,
    pub exit_when_idle: Option<Duration>,
    /// Idle time does not count until each named connector has put out at
    /// least this many messages: a slow starter (a Flink query takes 10-30 s
    /// to deliver its first row) would otherwise end the run too early.
    pub wait_for: Vec<OutputGoal>,
    pub progress: bool,
    pub validate_payloads: bool,
    pub source_protocol: SourceProtocolChoice,
}

/// A connector key and the messages it must have put out.
#[derive(Clone, Debug, PartialEq)]
pub struct OutputGoal {
    pub key: String,
    pub messages: u64,
}

impl std::str::FromStr for OutputGoal {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let (key, messages) = text
            .split_once('=')
            .ok_or_else(|| format!("`{text}` is not <connector key>=<messages>"))?;
        let messages = messages
            .parse()
            .map_err(|_| format!("`{messages}` in `{text}` is not a message count"))?;
        Ok(Self {
            key: key.to_string(),
            messages,
        })
    }
}

#[derive(Debug, Serialize)]
pub struct RunReport {
    pub ok: bool,
    pub elapsed_secs: f64,
    pub connectors: Vec<ConnectorReport>,
}

enum Running {
    Sink {
        api: SinkApi,
        id: u32,
        threads: Vec<JoinHandle<()>>,
    },
    Source {
        api: SourceApi,
        id: u32,
        worker: JoinHandle<()>,
        stopping: Arc<AtomicBool>,
    },
}

struct Connector {
    stats: Arc<ConnectorStats>,
    running: Option<Running>,
}

/// Sets the flag on Ctrl-C so a run stops and closes its connectors.
pub fn stop_on_ctrl_c(flag: Arc<AtomicBool>) {
    std::thread::spawn(move || {
        let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
        else {
            return;
        };
        if runtime.block_on(tokio::signal::ctrl_c()).is_ok() {
            eprintln!("stopping: closing connectors");
            flag.store(true, Ordering::Relaxed);
        }
    });
}

/// Opens a sink; returns its id. A refusal is reported as the runtime
/// reports it (runtime/src/sink.rs, `init_sink`), with the code added.
pub fn open_sink(api: &SinkApi, config_json: &str) -> Result<u32, String> {
    let id = library::next_plugin_id();
    // SAFETY: the config buffer outlives the call.
    let code = unsafe { (api.open)(id, config_json.as_ptr(), config_json.len(), log_callback) };
    match code {
        0 => Ok(id),
        code => Err(format!(
            "Plugin initialization failed (ID: {id}): iggy_sink_open returned {code}"
        )),
    }
}

/// Opens a source with its saved state, if any; returns its id. A refusal
/// is reported as the runtime reports it (runtime/src/source.rs, `init_source`).
pub fn open_source(
    api: &SourceApi,
    config_json: &str,
    state: Option<&[u8]>,
) -> Result<u32, String> {
    let id = library::next_plugin_id();
    let (state_ptr, state_len) = state.map_or((std::ptr::null(), 0), |s| (s.as_ptr(), s.len()));
    // SAFETY: the buffers outlive the call.
    let code = unsafe {
        (api.open)(
            id,
            config_json.as_ptr(),
            config_json.len(),
            state_ptr,
            state_len,
            log_callback,
        )
    };
    match code {
        0 => Ok(id),
        code => Err(format!(
            "Plugin initialization failed (ID: {id}): iggy_source_open returned {code}"
        )),
    }
}

/// A connector that opened and waits to be started.
enum Opened {
    Sink {
        api: SinkApi,
        id: u32,
    },
    Source {
        api: SourceApi,
        id: u32,
        worker: Box<SourceWorker>,
    },
}

fn open_connector(
    file: &ConnectorFile,
    options: &PipelineOptions,
    store: &StreamStore,
    stats: &Arc<ConnectorStats>,
) -> Result<Opened, String> {
    if let Some(warning) = file.schema_mismatch() {
        eprintln!("connector {}: warning: {warning}", file.key);
    }
    let path = library::resolve_path(&file.path)?;
    let library = library::load(&path)?;
    let config = file.plugin_config_json()?;
    match file.kind {
        ConnectorKind::Sink => {
            let api = library.sink_api()?;
            let id = open_sink(&api, &config)?;
            stats.set_id(id);
            Ok(Opened::Sink { api, id })
        }
        ConnectorKind::Source => {
            let api = library.source_api_for(options.source_protocol)?;
            let state = StateFile::new(&options.state_dir, &file.key);
            let saved = state.load()?;
            let id = open_source(&api, &config, saved.as_deref())?;
            stats.set_id(id);
            match SourceWorker::new(file, &api, id, store, state, &options.faults, stats) {
                Ok(mut worker) => {
                    worker.validate_payloads = options.validate_payloads;
                    Ok(Opened::Source {
                        api,
                        id,
                        worker: Box::new(worker),
                    })
                }
                Err(error) => {
                    // As runtime/src/source.rs `init` closes a source whose
                    // producer cannot be set up.
                    // SAFETY: plain call with an id.
                    unsafe { (api.close)(id) };
                    Err(error)
                }
            }
        }
    }
}

fn start_connector(
    file: &ConnectorFile,
    opened: Opened,
    options: &PipelineOptions,
    store: &StreamStore,
    stats: &Arc<ConnectorStats>,
    sink_stop: &Arc<AtomicBool>,
) -> Result<Running, String> {
    match opened {
        Opened::Sink { api, id } => {
            match sink_runner::start(file, &api, id, store, &options.sink, stats, sink_stop) {
                Ok(threads) => {
                    // runtime/src/main.rs: Running once its consumers are spawned.
                    stats.set_status(Status::Running);
                    Ok(Running::Sink { api, id, threads })
                }
                Err(error) => {
                    // SAFETY: plain call with an id.
                    unsafe { (api.close)(id) };
                    Err(error)
                }
            }
        }
        Opened::Source { api, id, worker } => {
            let stopping = Arc::clone(&worker.stopping);
            let receiver = source_runner::register(id, stats);
            let worker = match (*worker).spawn(receiver) {
                Ok(worker) => worker,
                Err(error) => {
                    source_runner::unregister(id);
                    // SAFETY: plain call with an id.
                    unsafe { (api.close)(id) };
                    return Err(format!("cannot start the worker: {error}"));
                }
            };
            let code = source_runner::handle(&api, id);
            if code != 0 {
                // The runtime ignores this code (runtime/src/source.rs,
                // spawn_source_handler) and would show a source that never
                // produces as running; the harness reports it instead.
                stopping.store(true, Ordering::Relaxed);
                // SAFETY: plain call with an id.
                unsafe { (api.close)(id) };
                source_runner::unregister(id);
                let _ = worker.join();
                return Err(format!(
                    "iggy_source_handle ({}) returned {code}",
                    api.protocol.name()
                ));
            }
            eprintln!(
                "source {} ({}) runs the {} protocol",
                file.key,
                file.name,
                api.protocol.name()
            );
            Ok(Running::Source {
                api,
                id,
                worker,
                stopping,
            })
        }
    }
}

/// How long a stopping connector's threads are waited for before it is
/// closed anyway (runtime/src/manager/source.rs and sink.rs, `stop_connector`).
const STOP_WAIT: Duration = Duration::from_secs(5);

enum Joined {
    Finished,
    StillRunning,
    Panicked,
}

/// Waits for a thread as the runtime waits for a connector's tasks when it
/// stops one: up to `limit`, then it goes on without them.
fn join_within(thread: JoinHandle<()>, limit: Duration) -> Joined {
    let deadline = Instant::now() + limit;
    while !thread.is_finished() {
        if Instant::now() >= deadline {
            return Joined::StillRunning;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    match thread.join() {
        Ok(()) => Joined::Finished,
        Err(_) => Joined::Panicked,
    }
}

fn stop_connector(key: &str, running: Running, stats: &ConnectorStats) {
    let close = |close: library::Close, id: u32| {
        // SAFETY: plain call with an id.
        let code = unsafe { close(id) };
        if code != 0 {
            stats.fail(format!("close returned {code}"));
        }
    };
    let waited = |thread: JoinHandle<()>, what: &str| match join_within(thread, STOP_WAIT) {
        Joined::Finished => {}
        Joined::StillRunning => eprintln!(
            "{what} of {key} still busy after {STOP_WAIT:?}: going on without it, as the runtime does"
        ),
        Joined::Panicked => stats.fail(format!("{what} of {key} panicked")),
    };
    match running {
        // runtime/src/manager/source.rs, stop_connector: close, stop routing
        // the callbacks, then wait for the forwarding loop (which ends once
        // it has taken what was queued).
        Running::Source {
            api,
            id,
            worker,
            stopping,
        } => {
            stopping.store(true, Ordering::Relaxed);
            close(api.close, id);
            source_runner::unregister(id);
            waited(worker, "the worker");
        }
        // runtime/src/manager/sink.rs, stop_connector: signal the consumers,
        // wait for them, then close even if a consume is still running.
        Running::Sink { api, id, threads } => {
            for thread in threads {
                waited(thread, "a consumer thread");
            }
            close(api.close, id);
        }
    }
}

pub fn run(options: &PipelineOptions, shutdown: &Arc<AtomicBool>) -> Result<RunReport, String> {
    let files = read_dir(&options.connectors_dir)?;
    if files.is_empty() {
        return Err(format!(
            "no enabled connectors in {}",
            options.connectors_dir.display()
        ));
    }
    std::fs::create_dir_all(&options.state_dir).map_err(|e| {
        format!(
            "cannot create state directory {}: {e}",
            options.state_dir.display()
        )
    })?;
    let store = match &options.data_dir {
        Some(dir) => StreamStore::open(dir).map_err(|e| e.to_string())?,
        None => StreamStore::in_memory(),
    };
    for file in &files {
        for settings in &file.streams {
            for topic in settings.topics.iter().chain(settings.topic.iter()) {
                store
                    .ensure_topic(&settings.stream, topic, options.partitions)
                    .map_err(|e| format!("{}: {e}", file.key))?;
            }
        }
    }

    let sink_stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    // runtime/src/main.rs: every source is opened (source::init), then every
    // sink (sink::init); only then do the sources' loops start
    // (source::handle) and the sinks' consumers (sink::consume). A connector
    // whose open fails stays out for the rest of the run, in status error.
    let mut ordered: Vec<&ConnectorFile> = files.iter().collect();
    ordered.sort_by_key(|f| f.kind == ConnectorKind::Sink);
    let mut connectors: Vec<Connector> = Vec::new();
    let mut opened: Vec<Option<Opened>> = Vec::new();
    for file in &ordered {
        let kind = if file.kind == ConnectorKind::Sink {
            "sink"
        } else {
            "source"
        };
        let stats = Arc::new(ConnectorStats::new(&file.key, kind));
        opened.push(match open_connector(file, options, &store, &stats) {
            Ok(opened) => Some(opened),
            Err(reason) => {
                eprintln!(
                    "connector {} ({}) did not open: {reason}",
                    file.key, file.name
                );
                stats.fail(reason);
                None
            }
        });
        connectors.push(Connector {
            stats,
            running: None,
        });
    }
    for ((file, connector), opened) in ordered.iter().zip(&mut connectors).zip(opened) {
        let Some(opened) = opened else { continue };
        match start_connector(file, opened, options, &store, &connector.stats, &sink_stop) {
            Ok(running) => connector.running = Some(running),
            Err(reason) => {
                eprintln!(
                    "connector {} ({}) did not start: {reason}",
                    file.key, file.name
                );
                connector.stats.fail(reason);
            }
        }
    }

    let active = wait(options, shutdown, &connectors, started);

    // runtime/src/main.rs: every source is stopped, then every sink.
    for connector in &mut connectors {
        if matches!(connector.running, Some(Running::Source { .. }))
            && let Some(running) = connector.running.take()
        {
            stop_connector(&connector.stats.key, running, &connector.stats);
        }
    }
    sink_stop.store(true, Ordering::Relaxed);
    for connector in &mut connectors {
        if let Some(running) = connector.running.take() {
            stop_connector(&connector.stats.key, running, &connector.stats);
        }
    }
    store.sync().map_err(|e| e.to_string())?;
    let elapsed = started.elapsed();
    // Rates over each connector's active time, not the idle tail of the run.
    // The status is the one it had while running (the runtime shows every
    // connector `stopped` once closed), or `error` if closing failed.
    let reports: Vec<ConnectorReport> = connectors
        .iter()
        .zip(active)
        .map(|(c, active)| c.stats.report(active.unwrap_or(elapsed)))
        .collect();
    Ok(RunReport {
        ok: !reports.iter().any(ConnectorReport::failed),
        elapsed_secs: elapsed.as_secs_f64(),
        connectors: reports,
    })
}

fn goals_met(goals: &[OutputGoal], stats: &[Arc<ConnectorStats>]) -> bool {
    goals.iter().all(|goal| {
        stats
            .iter()
            .filter(|s| s.key == goal.key)
            .any(|s| s.messages_out.load(Ordering::Relaxed) >= goal.messages)
    })
}

/// Moves data until told to stop; returns, per connector, how long after the
/// start its output last grew (`None` if it never produced).
fn wait(
    options: &PipelineOptions,
    shutdown: &AtomicBool,
    connectors: &[Connector],
    started: Instant,
) -> Vec<Option<Duration>> {
    let stats: Vec<Arc<ConnectorStats>> = connectors.iter().map(|c| Arc::clone(&c.stats)).collect();
    let mut outputs = vec![(0u64, None); stats.len()];
    let show_progress = options.progress || std::io::stderr().is_terminal();
    let mut last_total = u64::MAX;
    let mut last_change = Instant::now();
    let mut last_progress = Instant::now();
    while !shutdown.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(25));
        let now = Instant::now();
        if options
            .duration
            .is_some_and(|limit| started.elapsed() >= limit)
        {
            break;
        }
        for (stat, (last, active)) in stats.iter().zip(outputs.iter_mut()) {
            let out = stat.messages_out.load(Ordering::Relaxed);
            if out != *last {
                *last = out;
                *active = Some(started.elapsed());
            }
        }
        let total: u64 = stats
            .iter()
            .map(|s| {
                s.messages_in.load(Ordering::Relaxed)
                    + s.messages_out.load(Ordering::Relaxed)
                    + s.errors.load(Ordering::Relaxed)
            })
            .sum();
        let busy = stats
            .iter()
            .any(|s| s.in_flight.load(Ordering::Relaxed) > 0);
        if total != last_total || busy {
            last_total = total;
            last_change = now;
        }
        if options
            .exit_when_idle
            .is_some_and(|idle| now - last_change >= idle)
            && goals_met(&options.wait_for, &stats)
        {
            break;
        }
        if show_progress && now - last_progress >= Duration::from_secs(1) {
            last_progress = now;
            eprintln!("{}", progress_line(&stats, started.elapsed()));
        }
    }
    outputs.into_iter().map(|(_, active)| active).collect()
}
