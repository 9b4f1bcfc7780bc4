//! A real nats-server with JetStream on a free loopback port and a temp store,
//! which tests can kill and restart on the same port and store.

use crate::process::{ServerProcess, free_port, require_binary};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

pub struct NatsServer {
    pub port: u16,
    store: PathBuf,
    log: PathBuf,
    extra_args: Vec<String>,
    process: Option<ServerProcess>,
}

impl NatsServer {
    pub fn start(dir: &Path) -> Self {
        Self::start_with(dir, &[])
    }

    /// Starts with extra server flags (e.g. `--user u --pass p`).
    pub fn start_with(dir: &Path, extra_args: &[&str]) -> Self {
        let mut server = Self {
            port: free_port(),
            store: dir.join("nats-store"),
            log: dir.join("nats-server.log"),
            extra_args: extra_args.iter().map(|a| a.to_string()).collect(),
            process: None,
        };
        server.launch();
        server
    }

    fn launch(&mut self) {
        let binary = require_binary(
            "nats-server",
            &[
                "/usr/sbin/nats-server",
                "/usr/bin/nats-server",
                "/usr/local/bin/nats-server",
            ],
            "run scripts/install-test-deps (Debian package nats-server)",
        );
        let mut command = Command::new(binary);
        command
            .args([
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-js",
                "-sd",
            ])
            .arg(&self.store)
            .args(&self.extra_args);
        let mut process = ServerProcess::spawn("nats-server", command, &self.log);
        process.await_port(self.port, Duration::from_secs(20));
        self.process = Some(process);
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Kills the server (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut process) = self.process.take() {
            process.stop();
        }
    }

    /// Starts it again on the same port with the same store.
    pub fn restart(&mut self) {
        self.kill();
        self.launch();
    }

    pub fn log_tail(&self) -> String {
        self.process
            .as_ref()
            .map(ServerProcess::log_tail)
            .unwrap_or_default()
    }
}
