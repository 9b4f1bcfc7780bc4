//! A real nats-server with JetStream on a free loopback port and a temp store,
//! which tests can kill and restart on the same port and store.

#[cfg(feature = "nats-auth")]
pub mod auth;

use crate::process::{ServerProcess, free_port, require_binary, server_process_methods};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

pub struct NatsServer {
    pub port: u16,
    store: PathBuf,
    /// Replaces the listen and JetStream flags when set.
    config: Option<PathBuf>,
    extra_args: Vec<String>,
    process: ServerProcess,
}

/// The nats-server the tests run: `NATS_SERVER` when set (scripts/test runs
/// the NATS suites a second time with Debian's 2.9 this way), else the
/// current release scripts/install-test-deps builds with `go install`, which
/// is what users run; never a silent fall-back to another version.
pub fn binary() -> PathBuf {
    if let Some(chosen) = std::env::var_os("NATS_SERVER") {
        let chosen = PathBuf::from(chosen);
        assert!(
            chosen.is_file(),
            "NATS_SERVER={} is not a file",
            chosen.display()
        );
        return chosen;
    }
    let current = crate::process::install_root()
        .map(|root| root.join("nats-server/bin/nats-server"))
        .unwrap_or_default();
    require_binary(
        "nats-server",
        &[current.to_str().unwrap_or_default()],
        "run scripts/install-test-deps (go install of nats-server)",
    )
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
            config,
            extra_args: extra_args.iter().map(|a| a.as_ref().to_string()).collect(),
            process: ServerProcess::idle("nats-server", &dir.join("nats-server.log")),
        };
        server.launch();
        server
    }

    fn launch(&mut self) {
        let mut command = Command::new(binary());
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
        self.process.start(command);
        self.process.await_port(self.port, Duration::from_secs(20));
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    // A restart keeps the port and the store.
    server_process_methods!(restartable);
}
