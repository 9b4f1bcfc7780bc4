//! Scraping a plugin's Prometheus endpoint while `iggy-harness run` moves
//! data, as a monitoring system would.

use crate::{BackgroundRun, Workspace, json_report};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// One answer of `GET /metrics`.
#[derive(Debug)]
pub struct Scrape {
    pub text: String,
}

impl Scrape {
    /// The value of the first sample whose name (with its labels) starts
    /// with `series`, e.g. `iggy_s2_sink_appended_total{`.
    pub fn value(&self, series: &str) -> Option<f64> {
        self.text
            .lines()
            .filter(|line| !line.starts_with('#') && line.starts_with(series))
            .find_map(|line| line.rsplit(' ').next()?.parse().ok())
    }

    /// `iggy_<plugin>_<name>_total` of the connector labelled `connector`.
    pub fn counter(&self, plugin: &str, name: &str, connector: &str) -> Option<f64> {
        self.value(&format!(
            "iggy_{plugin}_{name}_total{{connector=\"{connector}\"}}"
        ))
    }

    /// The batch histograms hold `messages` in at least one batch, and a
    /// sink's write times one per batch.
    pub fn assert_batches(&self, plugin: &str, connector: &str, messages: u64, sink: bool) {
        let series = |name: &str| {
            self.value(&format!(
                "iggy_{plugin}_{name}{{connector=\"{connector}\"}}"
            ))
        };
        let batches = series("batch_messages_count").unwrap_or(0.0);
        assert!(batches >= 1.0, "no batch counted:\n{}", self.text);
        assert_eq!(
            series("batch_messages_sum"),
            Some(messages as f64),
            "{}",
            self.text
        );
        let write_times = series("write_seconds_count");
        let expected = sink.then_some(batches);
        assert_eq!(write_times, expected, "{}", self.text);
    }
}

/// `GET /metrics` on a loopback port; `None` while nothing answers 200.
pub fn scrape(port: u16) -> Option<Scrape> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.1 200").then(|| Scrape {
        text: body.to_string(),
    })
}

/// Runs the workspace's connectors in the background, scraping every port
/// of `ports` every 100 ms until `done` holds for one round, and lets the
/// run end once idle for 2 s (60 s at most), so what was counted is also
/// stored. Returns that round of scrapes (the last complete one if `done`
/// never held) and the run's JSON report.
pub fn scrape_while_running(
    ws: &Workspace,
    ports: &[u16],
    done: impl Fn(&[Scrape]) -> bool,
) -> (Vec<Scrape>, serde_json::Value) {
    let mut run = BackgroundRun::start(ws, "2s", &[]);
    let mut last = Vec::new();
    while run.is_running() {
        std::thread::sleep(Duration::from_millis(100));
        let Some(round) = ports
            .iter()
            .map(|port| scrape(*port))
            .collect::<Option<Vec<_>>>()
        else {
            continue;
        };
        let finished = done(&round);
        last = round;
        if finished {
            break;
        }
    }
    let report = json_report(&run.wait());
    assert!(
        ports.iter().all(|port| scrape(*port).is_none()),
        "an endpoint outlived its connector"
    );
    (last, report)
}
