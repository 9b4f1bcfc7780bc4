//! A real InfluxDB 1.x (`influxd` of the Debian package `influxdb`) on free
//! loopback ports with its data in a temp dir, the stand-in for openGemini's
//! write and query API, plus a small HTTP/1.0 client to query it.

use crate::process::{ServerProcess, free_port, require_binary, server_process_methods};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

#[derive(Debug, Default, Clone)]
pub struct InfluxOptions {
    /// Turns `[http] auth-enabled` on and creates this admin user.
    pub admin: Option<(String, String)>,
    /// `[http] max-body-size` in bytes (413 above it); InfluxDB's default is 25 MB.
    pub max_body_size: Option<usize>,
}

pub struct InfluxServer {
    pub port: u16,
    admin: Option<(String, String)>,
    process: ServerProcess,
    config_file: PathBuf,
}

impl InfluxServer {
    pub fn start(dir: &Path) -> Self {
        Self::start_with(dir, &InfluxOptions::default())
    }

    /// Auth on, with `user` as an admin.
    pub fn start_with_auth(dir: &Path, user: &str, password: &str) -> Self {
        Self::start_with(
            dir,
            &InfluxOptions {
                admin: Some((user.into(), password.into())),
                ..InfluxOptions::default()
            },
        )
    }

    pub fn start_with(dir: &Path, options: &InfluxOptions) -> Self {
        let root = dir.join("influxdb");
        std::fs::create_dir_all(&root).expect("influxdb dir");
        let (port, rpc_port) = (free_port(), free_port());
        let mut http = format!(
            "bind-address = \"127.0.0.1:{port}\"\nlog-enabled = false\nauth-enabled = {}\n",
            options.admin.is_some()
        );
        if let Some(limit) = options.max_body_size {
            http.push_str(&format!("max-body-size = {limit}\n"));
        }
        let config = format!(
            "reporting-disabled = true\nbind-address = \"127.0.0.1:{rpc_port}\"\n\n\
             [meta]\ndir = \"{root}/meta\"\n\n\
             [data]\ndir = \"{root}/data\"\nwal-dir = \"{root}/wal\"\nquery-log-enabled = false\n\n\
             [http]\n{http}\n\
             [monitor]\nstore-enabled = false\n\n\
             [continuous_queries]\nenabled = false\n\n\
             [subscriber]\nenabled = false\n",
            root = root.display()
        );
        let config_file = root.join("influxdb.conf");
        std::fs::write(&config_file, config).expect("influxdb config");
        let mut server = Self {
            port,
            admin: options.admin.clone(),
            process: ServerProcess::idle("influxd", &root.join("influxd.log")),
            config_file,
        };
        server.launch();
        if let Some((user, password)) = &options.admin {
            // With auth on, the first admin may be created without credentials.
            let (status, body) = request(
                port,
                "POST",
                &format!(
                    "/query?q={}",
                    encode(&format!(
                        "CREATE USER \"{user}\" WITH PASSWORD '{password}' WITH ALL PRIVILEGES"
                    ))
                ),
            );
            assert_eq!(status, 200, "creating the admin user: {body}");
        }
        server
    }

    fn await_ping(&self) {
        let until = Instant::now() + Duration::from_secs(30);
        while Instant::now() < until {
            if request_checked(self.port, "GET", "/ping").is_ok_and(|(status, _)| status == 204) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("influxd never answered /ping; log:\n{}", self.log_tail());
    }

    /// Starts influxd on its config (port and data) and waits until it answers `/ping`.
    fn launch(&mut self) {
        let binary = require_binary(
            "influxd",
            &["/usr/bin/influxd", "/usr/local/bin/influxd"],
            "run scripts/install-test-deps (Debian package influxdb)",
        );
        let mut command = Command::new(binary);
        command.arg("run").arg("-config").arg(&self.config_file);
        self.process.start(command);
        self.process.await_port(self.port, Duration::from_secs(30));
        self.await_ping();
    }

    // A restart keeps the port and the data.
    server_process_methods!(restartable);

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Runs a statement (`CREATE DATABASE …`, `DROP …`) as the admin; panics on an error.
    pub fn execute(&self, statement: &str) -> serde_json::Value {
        let path = format!("/query?q={}{}", encode(statement), self.credentials());
        let (status, body) = request(self.port, "POST", &path);
        let json: serde_json::Value = serde_json::from_str(&body)
            .unwrap_or_else(|e| panic!("{statement}: {status} {body}: {e}"));
        assert!(
            status == 200 && json["results"][0].get("error").is_none(),
            "{statement}: {status} {body}"
        );
        json
    }

    /// The rows a `SELECT` returns (as the admin), each a map of column to
    /// value, tags of `GROUP BY` included; times are integer nanoseconds.
    pub fn select(
        &self,
        database: &str,
        query: &str,
    ) -> Vec<serde_json::Map<String, serde_json::Value>> {
        let path = format!(
            "/query?db={}&epoch=ns&q={}{}",
            encode(database),
            encode(query),
            self.credentials()
        );
        let (status, body) = request(self.port, "GET", &path);
        let json: serde_json::Value =
            serde_json::from_str(&body).unwrap_or_else(|e| panic!("{query}: {status} {body}: {e}"));
        assert!(
            status == 200 && json["results"][0].get("error").is_none(),
            "{query}: {status} {body}"
        );
        let mut rows = Vec::new();
        for series in json["results"][0]["series"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let columns: Vec<&str> = series["columns"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|c| c.as_str())
                .collect();
            for values in series["values"].as_array().into_iter().flatten() {
                let mut row = serde_json::Map::new();
                if let Some(tags) = series["tags"].as_object() {
                    row.extend(tags.clone());
                }
                for (column, value) in columns.iter().zip(values.as_array().into_iter().flatten()) {
                    row.insert(column.to_string(), value.clone());
                }
                rows.push(row);
            }
        }
        rows
    }

    /// A counter of the HTTP service from `/debug/vars`: `writeReq` (writes
    /// that passed authentication, whatever their answer), `authFail`, …
    pub fn http_stat(&self, name: &str) -> u64 {
        let (status, body) = request(self.port, "GET", "/debug/vars");
        assert_eq!(status, 200, "/debug/vars: {body}");
        let vars: serde_json::Value = serde_json::from_str(&body).expect("/debug/vars JSON");
        vars[format!("httpd:127.0.0.1:{}", self.port)]["values"][name]
            .as_u64()
            .unwrap_or_else(|| panic!("no httpd counter `{name}` in /debug/vars"))
    }

    fn credentials(&self) -> String {
        match &self.admin {
            Some((user, password)) => format!("&u={}&p={}", encode(user), encode(password)),
            None => String::new(),
        }
    }
}

/// One HTTP/1.0 request (so the answer is never chunked); status and body.
fn request(port: u16, method: &str, path: &str) -> (u16, String) {
    request_checked(port, method, path)
        .unwrap_or_else(|e| panic!("{method} {path} on 127.0.0.1:{port}: {e}"))
}

fn request_checked(port: u16, method: &str, path: &str) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    stream.set_write_timeout(Some(Duration::from_secs(30)))?;
    write!(
        stream,
        "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n"
    )?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer)?;
    let text = String::from_utf8_lossy(&answer);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("not an HTTP answer: {head}")))?;
    Ok((status, body.to_string()))
}

/// Percent-encodes everything but unreserved characters.
pub fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
