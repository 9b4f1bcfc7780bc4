//! The HTTP endpoint a scraper reads: `GET /metrics` answers the text
//! format, anything else 404. One short-lived connection per scrape, so a
//! hand-written HTTP/1.1 answer does; a server framework would cost every
//! plugin its compile time for this one page.

use std::net::SocketAddr;
use std::time::Duration;

use iggy_connector_sdk::Error;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use super::exposition::Exposed;
use super::settings::MetricsSettings;

/// A scraper that sends nothing is dropped after this long.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Request heads beyond this are refused: a scrape's is a few hundred bytes.
const MAX_REQUEST: usize = 8 * 1024;

/// Serves until dropped (a connector's `close` drops it).
#[derive(Debug)]
pub struct MetricsEndpoint {
    address: SocketAddr,
    task: JoinHandle<()>,
}

impl MetricsEndpoint {
    /// Listens on the configured address; a port in use or an address not
    /// on this host fails `open`, naming the setting.
    pub async fn start(
        settings: &MetricsSettings,
        id: u32,
        exposed: Exposed,
    ) -> Result<Self, Error> {
        let listener = TcpListener::bind(settings.address).await.map_err(|error| {
            Error::InitError(format!(
                "metrics: cannot serve on {}: {error}",
                settings.address
            ))
        })?;
        let address = listener
            .local_addr()
            .map_err(|error| Error::InitError(format!("metrics: {error}")))?;
        let connector = settings.connector_label(exposed.plugin, id);
        tracing::info!(
            "{} {id}: metrics on http://{address}/metrics (connector=\"{connector}\")",
            exposed.plugin
        );
        let task = tokio::spawn(serve(listener, exposed, connector));
        Ok(Self { address, task })
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }
}

impl Drop for MetricsEndpoint {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(listener: TcpListener, exposed: Exposed, connector: String) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            // Out of descriptors, say: try again rather than stop serving.
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let page = exposed.clone();
        let connector = connector.clone();
        tokio::spawn(async move {
            let _ = tokio::time::timeout(REQUEST_TIMEOUT, answer(stream, &page, &connector)).await;
        });
    }
}

async fn answer(mut stream: TcpStream, exposed: &Exposed, connector: &str) -> std::io::Result<()> {
    let mut head = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let read = stream.read(&mut chunk).await?;
        if read == 0 || head.len() + read > MAX_REQUEST {
            return Ok(());
        }
        head.extend_from_slice(&chunk[..read]);
    }
    let request_line = head.split(|b| *b == b'\r').next().unwrap_or_default();
    let mut parts = request_line.split(|b| *b == b' ');
    let (method, path) = (parts.next(), parts.next());
    let (status, body) = match (method, path) {
        (Some(b"GET"), Some(b"/metrics")) => ("200 OK", exposed.render(connector)),
        (Some(b"GET"), _) => ("404 Not Found", "only /metrics is served\n".to_string()),
        _ => ("405 Method Not Allowed", "GET /metrics\n".to_string()),
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Counters;
    use crate::metrics::BatchMetrics;
    use std::sync::Arc;

    async fn get(address: SocketAddr, request: &str) -> String {
        let mut stream = TcpStream::connect(address).await.unwrap();
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).await.unwrap();
        response
    }

    fn exposed() -> Exposed {
        Exposed {
            plugin: "test_source",
            counters: Arc::new(Counters::new(&["events"])),
            batches: Arc::new(BatchMetrics::source()),
            gauges: Vec::new(),
        }
    }

    fn on_any_loopback_port() -> MetricsSettings {
        MetricsSettings {
            address: "127.0.0.1:0".parse().unwrap(),
            connector: None,
        }
    }

    #[tokio::test]
    async fn serves_the_live_counters_until_dropped() {
        let exposed = exposed();
        let counters = Arc::clone(&exposed.counters);
        let endpoint = MetricsEndpoint::start(&on_any_loopback_port(), 4, exposed)
            .await
            .unwrap();
        let address = endpoint.address();
        counters.add("events", 12);
        let response = get(address, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
        assert!(response.contains("text/plain; version=0.0.4"), "{response}");
        assert!(
            response.contains("iggy_test_source_events_total{connector=\"test_source-4\"} 12"),
            "{response}"
        );
        let response = get(address, "GET / HTTP/1.1\r\n\r\n").await;
        assert!(response.starts_with("HTTP/1.1 404"), "{response}");
        let response = get(address, "POST /metrics HTTP/1.1\r\n\r\n").await;
        assert!(response.starts_with("HTTP/1.1 405"), "{response}");
        drop(endpoint);
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(TcpStream::connect(address).await.is_err(), "still serving");
    }

    #[tokio::test]
    async fn a_port_in_use_fails_open_naming_the_setting() {
        let first = MetricsEndpoint::start(&on_any_loopback_port(), 1, exposed())
            .await
            .unwrap();
        let taken = MetricsSettings {
            address: first.address(),
            connector: None,
        };
        let error = MetricsEndpoint::start(&taken, 2, exposed())
            .await
            .unwrap_err()
            .to_string();
        assert!(error.contains("metrics: cannot serve on"), "{error}");
        assert!(error.contains(&first.address().to_string()), "{error}");
    }
}
