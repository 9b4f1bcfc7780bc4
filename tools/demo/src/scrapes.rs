//! Each connector's Prometheus endpoint, scraped once a second while the
//! pipeline runs (the endpoints close with their connectors), and the last
//! scrape of each printed at the end.

use iggy_harness_test_support::metrics::scrape;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

pub struct Scraper {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<Vec<(String, Option<String>)>>,
}

impl Scraper {
    pub fn start(endpoints: Vec<(String, u16)>) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let mut last: Vec<(String, Option<String>)> = endpoints
                .iter()
                .map(|(key, _)| (key.clone(), None))
                .collect();
            // Ends with the pipeline, which `--timeout` bounds.
            while !stopping.load(Ordering::Relaxed) {
                for ((_, port), (_, text)) in endpoints.iter().zip(last.iter_mut()) {
                    if let Some(answer) = scrape(*port) {
                        *text = Some(answer.text);
                    }
                }
                std::thread::sleep(Duration::from_secs(1));
            }
            last
        });
        Self { stop, thread }
    }

    /// Each connector's last scrape, or `None` if it never answered.
    pub fn finish(self) -> Vec<(String, Option<String>)> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap_or_default()
    }
}

/// The samples of each scrape (histogram buckets left out for brevity);
/// whether every endpoint answered.
pub fn print(scrapes: &[(String, Option<String>)]) -> bool {
    println!("\nmetrics (each connector's last scrape; histogram buckets left out):");
    for (key, text) in scrapes {
        let Some(text) = text else {
            println!("  {key}: its endpoint never answered");
            continue;
        };
        for line in text
            .lines()
            .filter(|line| !line.starts_with('#') && !line.contains("_bucket{"))
        {
            println!("  {line}");
        }
    }
    scrapes.iter().all(|(_, text)| text.is_some())
}
