//! A real nats-server with JetStream on a free loopback port and a temp store,
//! which tests can kill and restart on the same port and store.

#[cfg(feature = "nats-auth")]
pub mod auth;

use crate::process::{ServerProcess, free_port, require_binary};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

pub struct NatsServer {
    pub port: u16,
    store: PathBuf,
    log: PathBuf,
    /// Replaces the listen and JetStream flags when set.
    config: Option<PathBuf>,
    extra_args: Vec<String>,
    process: Option<ServerProcess>,
}

impl NatsServer {
    pub fn start(dir: &Path) -> Self {
        Self::start_with::<&str>(dir, &[])
    }

    /// Starts with extra server flags (e.g. `--user u --pass p`).
    pub fn start_with<S: AsRef<str>>(dir: &Path, extra_args: &[S]) -> Self {
        Self::launched(dir, free_port(), None, extra_args)
    }

    /// Starts from a config file made of the listen address, the JetStream
    /// store and `config`, for settings no flag reaches (NKey users,
    /// operator mode); `extra_args` still apply on top.
    pub fn start_with_config<S: AsRef<str>>(dir: &Path, config: &str, extra_args: &[S]) -> Self {
        let port = free_port();
        let file = dir.join("nats-server.conf");
        // nats-server refuses a store given both here and by `-sd`, so the
        // file carries everything the flags otherwise would.
        let text = format!(
            "listen: \"127.0.0.1:{port}\"\njetstream {{ store_dir: \"{}\" }}\n{config}\n",
            dir.join("nats-store").display()
        );
        std::fs::write(&file, text).expect("nats-server config file");
        Self::launched(dir, port, Some(file), extra_args)
    }

    fn launched<S: AsRef<str>>(
        dir: &Path,
        port: u16,
        config: Option<PathBuf>,
        extra_args: &[S],
    ) -> Self {
        let mut server = Self {
            port,
            store: dir.join("nats-store"),
            log: dir.join("nats-server.log"),
            config,
            extra_args: extra_args.iter().map(|a| a.as_ref().to_string()).collect(),
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
        match &self.config {
            Some(config) => command.arg("-c").arg(config),
            None => command
                .args([
                    "-a",
                    "127.0.0.1",
                    "-p",
                    &self.port.to_string(),
                    "-js",
                    "-sd",
                ])
                .arg(&self.store),
        };
        command.args(&self.extra_args);
        let mut process = ServerProcess::spawn("nats-server", command, &self.log);
        process.await_port(self.port, Duration::from_secs(20));
        self.process = Some(process);
    }

    pub fn pid(&self) -> u32 {
        self.process
            .as_ref()
            .and_then(ServerProcess::pid)
            .expect("nats-server is running")
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
