//! A real S2 API server (s2-lite) on a free loopback port, in memory or on a
//! temp dir, with basins made at start; tests can kill and restart it. Also
//! what both S2 plugins' tests reach it with: their connection settings and
//! (feature `s2`) a client of its own.

use crate::process::{ServerProcess, free_port, server_process_methods};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

pub struct S2Lite {
    pub port: u16,
    /// Set: records survive a restart.
    local_root: Option<PathBuf>,
    init_file: PathBuf,
    process: ServerProcess,
}

/// The s2-lite `server` binary: from the install root scripts/install-test-deps
/// uses, else from PATH; a loud failure when neither has it.
pub fn binary() -> PathBuf {
    let installed = crate::process::install_root().map(|root| root.join("s2-lite/bin/server"));
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .map(|dir| dir.join("server"));
    installed
        .into_iter()
        .chain(on_path)
        .find(|path| path.is_file())
        .unwrap_or_else(|| {
            panic!(
                "s2-lite is not installed; run scripts/install-test-deps (cargo install s2-lite)"
            )
        })
}

impl S2Lite {
    /// In memory, with `basins` created.
    pub fn start(dir: &Path, basins: &[&str]) -> Self {
        Self::launch_new(dir, basins, false)
    }

    /// On a directory under `dir`, so a restart keeps the records.
    pub fn start_on_disk(dir: &Path, basins: &[&str]) -> Self {
        Self::launch_new(dir, basins, true)
    }

    fn launch_new(dir: &Path, basins: &[&str], on_disk: bool) -> Self {
        let init_file = dir.join("s2-init.json");
        let basins: Vec<String> = basins
            .iter()
            .map(|name| format!("{{\"name\":\"{name}\"}}"))
            .collect();
        std::fs::write(&init_file, format!("{{\"basins\":[{}]}}", basins.join(",")))
            .expect("s2-lite init file");
        let mut server = Self {
            port: free_port(),
            local_root: on_disk.then(|| dir.join("s2-data")),
            init_file,
            process: ServerProcess::idle("s2-lite", &dir.join("s2-lite.log")),
        };
        server.launch();
        server
    }

    fn launch(&mut self) {
        let mut command = Command::new(binary());
        command
            .args([
                "--port",
                &self.port.to_string(),
                "--no-dashboard",
                "--init-file",
            ])
            .arg(&self.init_file);
        if let Some(root) = &self.local_root {
            command.arg("--local-root").arg(root);
        }
        self.process.start(command);
        self.process.await_port(self.port, Duration::from_secs(30));
        self.await_health(Duration::from_secs(30));
    }

    fn await_health(&self, limit: Duration) {
        let until = Instant::now() + limit;
        while Instant::now() < until {
            if self.healthy() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "s2-lite on port {} never became healthy; log:\n{}",
            self.port,
            self.log_tail()
        );
    }

    fn healthy(&self) -> bool {
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
        let request = "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
        let mut response = String::new();
        stream.write_all(request.as_bytes()).is_ok()
            && stream.read_to_string(&mut response).is_ok()
            && response.starts_with("HTTP/1.1 200")
    }

    /// For the plugins' `endpoint` setting and the SDK's `S2Endpoints::for_endpoint`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The `[plugin_config]` lines with which both S2 plugins reach `basin`
    /// on this server (any token does for s2-lite), with a short request timeout.
    pub fn connection(&self, basin: &str) -> String {
        format!(
            "access_token = \"test-token-123\"\nendpoint = \"{}\"\nbasin = \"{basin}\"\nrequest_timeout = \"2s\"\n",
            self.endpoint()
        )
    }

    // A restart keeps the port, and the records when on disk.
    server_process_methods!(restartable);
}

/// The `[plugin_config]` lines of an S2 plugin sent to `port` on loopback,
/// where nothing listens, giving up at once; `token` must never be shown.
pub fn unreachable_connection(port: u16, basin: &str, token: &str) -> String {
    format!(
        "access_token = \"{token}\"\nendpoint = \"http://127.0.0.1:{port}\"\nbasin = \"{basin}\"\n\
         request_timeout = \"500ms\"\nmax_retries = 0\n"
    )
}

/// A runtime for the test's own S2 clients ([`S2Lite::basin_client`]).
#[cfg(feature = "s2")]
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

#[cfg(feature = "s2")]
impl S2Lite {
    /// A client for `basin` on this server, built inside `runtime`: the SDK
    /// starts its connection tasks on the runtime it is built in.
    pub fn basin_client(&self, runtime: &tokio::runtime::Runtime, basin: &str) -> s2_sdk::S2Basin {
        let _inside = runtime.enter();
        let endpoints =
            s2_sdk::types::S2Endpoints::for_endpoint(&self.endpoint()).expect("s2-lite endpoint");
        let config = s2_sdk::types::S2Config::new("test-token")
            .with_endpoints(endpoints)
            .with_rustls_ring_crypto_provider();
        let name = basin
            .parse::<s2_sdk::types::BasinName>()
            .expect("basin name");
        s2_sdk::S2::new(config).expect("s2-sdk client").basin(name)
    }
}
