//! A local Apache Flink session cluster for tests: the distribution inside
//! the PyPI package `apache-flink` (found through `python3`), run with Java
//! 17 on free loopback ports and temp dirs, started by Flink's own scripts
//! and stopped by the PIDs in their pid files (on drop too); and its SQL
//! Gateway, started the same way with the gateway's jar from Maven Central
//! (`FLINK_OPT_DIR`, see `scripts/install-test-deps`); connector jars join
//! both through a lib dir of links (`FLINK_LIB_DIR`). Also a small HTTP
//! client for its REST API (jar upload and run included), a javac step for
//! test jobs, and `run_for`, a harness run of fixed length for sources that
//! never go idle.

use crate::Workspace;
use crate::process::free_port;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const INSTALL_HINT: &str = "run scripts/install-test-deps (PyPI apache-flink==1.20.3 and a JDK 17)";

/// The Flink distribution inside the installed `pyflink` package.
pub fn flink_home() -> PathBuf {
    let output = Command::new("python3")
        .args([
            "-c",
            "import os, pyflink; print(os.path.dirname(pyflink.__file__))",
        ])
        .output()
        .unwrap_or_else(|e| panic!("python3 is not available ({e}); {INSTALL_HINT}"));
    assert!(
        output.status.success(),
        "pyflink is not installed: {}; {INSTALL_HINT}",
        String::from_utf8_lossy(&output.stderr).trim()
    );
    let home = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
    assert!(
        home.join("bin/jobmanager.sh").is_file() && home.join("lib").is_dir(),
        "{} holds no Flink distribution; {INSTALL_HINT}",
        home.display()
    );
    home
}

/// Fails loudly unless `java` and `javac` run.
pub fn require_java() {
    for tool in ["java", "javac"] {
        let works = Command::new(tool)
            .arg("-version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success());
        assert!(works, "{tool} is not installed; {INSTALL_HINT}");
    }
}

pub struct FlinkCluster {
    pub rest_port: u16,
    home: PathBuf,
    /// The distribution's `lib/`, or a dir of links to its jars and extra
    /// ones (`FLINK_LIB_DIR` for every script).
    lib_dir: PathBuf,
    conf_dir: PathBuf,
    pid_dir: PathBuf,
    log_dir: PathBuf,
    pub savepoint_dir: PathBuf,
    running: bool,
}

impl FlinkCluster {
    /// Starts a JobManager and one TaskManager (4 slots) under `dir` and waits
    /// until the REST API reports the TaskManager.
    pub fn start(dir: &Path) -> Self {
        Self::start_with_jars(dir, &[])
    }

    /// [`FlinkCluster::start`] with `jars` (a connector and what it needs) in
    /// the lib dir beside the distribution's own, as a deployment adds them:
    /// on the JobManager's and TaskManager's classpath and on that of a
    /// [`SqlGateway`] started for this cluster.
    pub fn start_with_jars(dir: &Path, jars: &[PathBuf]) -> Self {
        require_java();
        let home = flink_home();
        let lib_dir = lib_dir_with(&home, dir, jars);
        let conf_dir = dir.join("flink-conf");
        let pid_dir = dir.join("flink-pids");
        let log_dir = dir.join("flink-logs");
        let tmp_dir = dir.join("flink-tmp");
        let savepoint_dir = dir.join("flink-savepoints");
        let checkpoint_dir = dir.join("flink-checkpoints");
        for d in [
            &conf_dir,
            &pid_dir,
            &log_dir,
            &tmp_dir,
            &savepoint_dir,
            &checkpoint_dir,
        ] {
            std::fs::create_dir_all(d).expect("flink dir");
        }
        // Logging configs come from the distribution; everything else is ours.
        for entry in std::fs::read_dir(home.join("conf")).expect("flink conf dir") {
            let path = entry.expect("conf entry").path();
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            if name.starts_with("log4j") || name.starts_with("logback") {
                std::fs::copy(&path, conf_dir.join(name)).expect("copy logging config");
            }
        }
        std::fs::write(conf_dir.join("masters"), "127.0.0.1\n").expect("masters");
        std::fs::write(conf_dir.join("workers"), "127.0.0.1\n").expect("workers");
        let rest_port = free_port();
        let rpc_port = free_port();
        let config = format!(
            "env:\n  java:\n    opts:\n      all: {java_opts}\n  pid:\n    dir: {pid}\n  log:\n    dir: {log}\n\
             jobmanager:\n  bind-host: 127.0.0.1\n  rpc:\n    address: 127.0.0.1\n    port: {rpc_port}\n  memory:\n    process:\n      size: 1024m\n\
             taskmanager:\n  bind-host: 127.0.0.1\n  host: 127.0.0.1\n  numberOfTaskSlots: 4\n  memory:\n    process:\n      size: 1024m\n\
             rest:\n  address: 127.0.0.1\n  bind-address: 127.0.0.1\n  port: {rest_port}\n\
             parallelism:\n  default: 1\n\
             io:\n  tmp:\n    dirs: {tmp}\n\
             execution:\n  checkpointing:\n    dir: file://{checkpoints}\n    savepoint-dir: file://{savepoints}\n",
            java_opts = java_opts(&home),
            pid = pid_dir.display(),
            log = log_dir.display(),
            tmp = tmp_dir.display(),
            checkpoints = checkpoint_dir.display(),
            savepoints = savepoint_dir.display(),
        );
        std::fs::write(conf_dir.join("config.yaml"), config).expect("config.yaml");
        let mut cluster = Self {
            rest_port,
            home,
            lib_dir,
            conf_dir,
            pid_dir,
            log_dir,
            savepoint_dir,
            running: true,
        };
        cluster.script("jobmanager.sh");
        cluster.script("taskmanager.sh");
        let ready = cluster.wait_until(Duration::from_secs(90), |c| {
            c.try_get("/overview")
                .is_some_and(|(status, body)| status == 200 && body["taskmanagers"] == 1)
        });
        if !ready {
            let logs = cluster.log_tail();
            cluster.stop();
            panic!("the Flink cluster did not come up within 90 s; logs:\n{logs}");
        }
        cluster
    }

    fn script(&self, name: &str) {
        let command = daemon_command(
            &self.home,
            &self.lib_dir,
            &self.conf_dir,
            &self.log_dir,
            name,
        );
        run_daemon_script(command, name, &self.log_dir, || self.log_tail());
    }

    pub fn rest_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.rest_port)
    }

    /// Polls `done` every 250 ms until it holds or `limit` passes.
    pub fn wait_until(&self, limit: Duration, mut done: impl FnMut(&Self) -> bool) -> bool {
        let until = Instant::now() + limit;
        while Instant::now() < until {
            if done(self) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        false
    }

    pub fn get(&self, path: &str) -> (u16, serde_json::Value) {
        self.try_get(path)
            .unwrap_or_else(|| panic!("GET {path} on the Flink cluster got no answer"))
    }

    fn try_get(&self, path: &str) -> Option<(u16, serde_json::Value)> {
        http_request(self.rest_port, "GET", path, None)
    }

    pub fn post_json(&self, path: &str, body: &serde_json::Value) -> (u16, serde_json::Value) {
        let bytes = body.to_string().into_bytes();
        http_request(
            self.rest_port,
            "POST",
            path,
            Some(("application/json", &bytes)),
        )
        .unwrap_or_else(|| panic!("POST {path} on the Flink cluster got no answer"))
    }

    /// `PATCH /jobs/:id?mode=cancel`.
    pub fn cancel(&self, job_id: &str) {
        let (status, answer) = http_request(
            self.rest_port,
            "PATCH",
            &format!("/jobs/{job_id}?mode=cancel"),
            None,
        )
        .unwrap_or_else(|| panic!("cancel of {job_id} got no answer"));
        assert_eq!(status, 202, "cancel {job_id}: {answer}");
    }

    /// The ids of the jobs that are RUNNING.
    pub fn running_jobs(&self) -> std::collections::BTreeSet<String> {
        let (_, overview) = self.get("/jobs/overview");
        overview["jobs"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|job| job["state"] == "RUNNING")
            .filter_map(|job| job["jid"].as_str().map(str::to_string))
            .collect()
    }

    /// The job's state (`RUNNING`, `FINISHED`, ...).
    pub fn job_state(&self, job_id: &str) -> String {
        let (_, answer) = self.get(&format!("/jobs/{job_id}/status"));
        answer["status"].as_str().unwrap_or_default().to_string()
    }

    /// Compiles one `.java` file against Flink's jars and packs it as a jar.
    pub fn compile_job(&self, source: &Path, work: &Path) -> PathBuf {
        let classes = work.join("job-classes");
        std::fs::create_dir_all(&classes).expect("classes dir");
        let classpath = format!("{}/*", self.home.join("lib").display());
        let output = Command::new("javac")
            .args(["-nowarn", "-Xlint:none", "-cp", &classpath, "-d"])
            .arg(&classes)
            .arg(source)
            .output()
            .expect("javac runs");
        assert!(
            output.status.success(),
            "javac failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let jar = work.join("job.jar");
        let output = Command::new("jar")
            .arg("cf")
            .arg(&jar)
            .arg("-C")
            .arg(&classes)
            .arg(".")
            .output()
            .expect("jar runs");
        assert!(
            output.status.success(),
            "jar failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        jar
    }

    /// `POST /jars/upload` (multipart field `jarfile`); returns the jar id.
    pub fn upload_jar(&self, jar: &Path) -> String {
        const BOUNDARY: &str = "iggy-flink-test-boundary";
        let bytes = std::fs::read(jar).expect("read jar");
        let mut body = format!(
            "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"jarfile\"; filename=\"job.jar\"\r\n\
             Content-Type: application/x-java-archive\r\n\r\n"
        )
        .into_bytes();
        body.extend_from_slice(&bytes);
        body.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
        let content_type = format!("multipart/form-data; boundary={BOUNDARY}");
        let (status, answer) = http_request(
            self.rest_port,
            "POST",
            "/jars/upload",
            Some((&content_type, &body)),
        )
        .expect("jar upload answered");
        assert_eq!(status, 200, "jar upload: {answer}");
        let filename = answer["filename"].as_str().expect("uploaded file name");
        filename.rsplit('/').next().expect("jar id").to_string()
    }

    /// `POST /jars/:id/run`; returns the job id.
    pub fn run_jar(&self, jar_id: &str, entry_class: &str, args: &[&str]) -> String {
        let (status, answer) = self.post_json(
            &format!("/jars/{jar_id}/run"),
            &serde_json::json!({ "entryClass": entry_class, "programArgsList": args }),
        );
        assert_eq!(status, 200, "jar run: {answer}");
        answer["jobid"].as_str().expect("job id").to_string()
    }

    /// The end of the JobManager's and TaskManager's logs.
    pub fn log_tail(&self) -> String {
        tail_of_dir(&self.log_dir)
    }

    /// Ends the JVMs by the PIDs Flink's scripts wrote (TERM, then KILL).
    pub fn stop(&mut self) {
        if !std::mem::take(&mut self.running) {
            return;
        }
        let pids = pids_in(&self.pid_dir);
        signal(&pids, "-TERM");
        let until = Instant::now() + Duration::from_secs(15);
        while Instant::now() < until && pids.iter().any(|pid| alive(pid)) {
            std::thread::sleep(Duration::from_millis(100));
        }
        signal(&pids, "-KILL");
    }
}

impl Drop for FlinkCluster {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The distribution's `lib/` when there are no extra jars; else a new
/// `flink-lib` under `dir` with links to its jars and to `jars` (the
/// installed distribution stays untouched).
fn lib_dir_with(home: &Path, dir: &Path, jars: &[PathBuf]) -> PathBuf {
    if jars.is_empty() {
        return home.join("lib");
    }
    let lib = dir.join("flink-lib");
    std::fs::create_dir_all(&lib).expect("flink lib dir");
    let own = std::fs::read_dir(home.join("lib"))
        .expect("the distribution's lib dir")
        .flatten()
        .map(|entry| entry.path());
    for jar in own.chain(jars.iter().cloned()) {
        let name = jar.file_name().expect("a jar's file name");
        std::os::unix::fs::symlink(&jar, lib.join(name))
            .unwrap_or_else(|e| panic!("link {} into {}: {e}", jar.display(), lib.display()));
    }
    lib
}

/// `bin/<name> start` of the distribution with this configuration; the
/// script's own output goes to `<log_dir>/<name>.out`.
fn daemon_command(
    home: &Path,
    lib_dir: &Path,
    conf_dir: &Path,
    log_dir: &Path,
    name: &str,
) -> Command {
    let mut command = Command::new("bash");
    command
        .arg(home.join("bin").join(name))
        .arg("start")
        .env("FLINK_HOME", home)
        .env("FLINK_LIB_DIR", lib_dir)
        .env("FLINK_CONF_DIR", conf_dir)
        .env("FLINK_LOG_DIR", log_dir)
        .stdin(Stdio::null());
    command
}

fn run_daemon_script(
    mut command: Command,
    name: &str,
    log_dir: &Path,
    log_tail: impl FnOnce() -> String,
) {
    let log = std::fs::File::create(log_dir.join(format!("{name}.out"))).expect("log");
    let err = log.try_clone().expect("log");
    let status = command
        .stdout(log)
        .stderr(err)
        .status()
        .unwrap_or_else(|e| panic!("cannot run {name}: {e}"));
    assert!(
        status.success(),
        "{name} start failed; logs:\n{}",
        log_tail()
    );
}

/// Where scripts/install-test-deps puts the SQL Gateway's jar: the PyPI
/// distribution has none in its `opt/`, and Flink's scripts look for it in
/// `FLINK_OPT_DIR`.
pub fn sql_gateway_opt_dir() -> PathBuf {
    installed_sql_gateway_opt_dir().unwrap_or_else(|| {
        panic!(
            "no flink-sql-gateway jar in the user's cache (flink-opt); run scripts/install-test-deps (Maven Central org.apache.flink:flink-sql-gateway:1.20.3)"
        )
    })
}

/// [`sql_gateway_opt_dir`] if the jar is there.
pub fn installed_sql_gateway_opt_dir() -> Option<PathBuf> {
    let dir = crate::process::install_root()?.join("flink-opt");
    let entries = std::fs::read_dir(&dir).ok()?;
    let has_jar = entries.flatten().any(|e| {
        e.file_name()
            .to_str()
            .is_some_and(|n| n.starts_with("flink-sql-gateway") && n.ends_with(".jar"))
    });
    has_jar.then_some(dir)
}

/// Flink's SQL Gateway (REST endpoint) in front of a [`FlinkCluster`], on a
/// free loopback port, with its own pid and log dirs so it can be frozen,
/// killed and restarted without touching the cluster. Stopped by PID (on
/// drop too).
pub struct SqlGateway {
    pub port: u16,
    home: PathBuf,
    lib_dir: PathBuf,
    conf_dir: PathBuf,
    opt_dir: PathBuf,
    pid_dir: PathBuf,
    log_dir: PathBuf,
    pid: Option<u32>,
}

impl SqlGateway {
    /// Starts a gateway submitting to `cluster` (it reads the cluster's
    /// configuration, so `rest.address`/`rest.port` point at it) and waits
    /// until it answers `GET /v1/info`.
    pub fn start(cluster: &FlinkCluster, dir: &Path) -> Self {
        let pid_dir = dir.join("sql-gateway-pids");
        let log_dir = dir.join("sql-gateway-logs");
        for d in [&pid_dir, &log_dir] {
            std::fs::create_dir_all(d).expect("sql gateway dir");
        }
        let mut gateway = Self {
            port: free_port(),
            home: cluster.home.clone(),
            lib_dir: cluster.lib_dir.clone(),
            conf_dir: cluster.conf_dir.clone(),
            opt_dir: sql_gateway_opt_dir(),
            pid_dir,
            log_dir,
            pid: None,
        };
        gateway.launch();
        gateway
    }

    fn launch(&mut self) {
        let mut command = daemon_command(
            &self.home,
            &self.lib_dir,
            &self.conf_dir,
            &self.log_dir,
            "sql-gateway.sh",
        );
        command
            .env("FLINK_OPT_DIR", &self.opt_dir)
            .env("FLINK_PID_DIR", &self.pid_dir)
            .env("JVM_ARGS", "-Xmx512m")
            .args([
                "-Dsql-gateway.endpoint.rest.address=127.0.0.1".to_string(),
                "-Dsql-gateway.endpoint.rest.bind-address=127.0.0.1".to_string(),
                format!("-Dsql-gateway.endpoint.rest.port={}", self.port),
                "-Dexecution.target=remote".to_string(),
            ]);
        run_daemon_script(command, "sql-gateway.sh", &self.log_dir, || self.log_tail());
        self.pid = pids_in(&self.pid_dir)
            .last()
            .and_then(|pid| pid.parse().ok());
        let up = crate::process::wait_until(Duration::from_secs(60), || {
            http_request(self.port, "GET", "/v1/info", None).filter(|(status, _)| *status == 200)
        });
        if up.is_none() {
            let logs = self.log_tail();
            self.stop();
            panic!("the SQL Gateway did not answer within 60 s; logs:\n{logs}");
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Runs `statements` in order in a new session, each until the gateway
    /// has its result (for an INSERT: once its job is submitted, not done);
    /// the ids of the jobs they started. Panics with Flink's answer when
    /// one fails. For tests that prepare data through SQL.
    pub fn execute(&self, statements: &[&str]) -> Vec<String> {
        let post = |path: &str, body: serde_json::Value| {
            let bytes = body.to_string().into_bytes();
            http_request(self.port, "POST", path, Some(("application/json", &bytes)))
                .unwrap_or_else(|| panic!("POST {path} on the SQL Gateway got no answer"))
        };
        let (status, answer) = post("/v1/sessions", serde_json::json!({}));
        assert_eq!(status, 200, "open a session: {answer}");
        let session = answer["sessionHandle"].as_str().expect("session handle");
        let mut jobs = Vec::new();
        for statement in statements {
            let (status, answer) = post(
                &format!("/v1/sessions/{session}/statements"),
                serde_json::json!({ "statement": statement }),
            );
            assert_eq!(status, 200, "{statement}: {answer}");
            let operation = answer["operationHandle"]
                .as_str()
                .expect("operation handle");
            let path = format!("/v1/sessions/{session}/operations/{operation}/result/0");
            let result = crate::process::wait_until(Duration::from_secs(60), || {
                http_request(self.port, "GET", &path, None).filter(|(status, answer)| {
                    *status != 200 || answer["resultType"] != "NOT_READY"
                })
            });
            let (status, answer) =
                result.unwrap_or_else(|| panic!("{statement}: no result within 60 s"));
            assert_eq!(status, 200, "{statement}: {answer}");
            if let Some(job) = answer["jobID"].as_str() {
                jobs.push(job.to_string());
            }
        }
        // The jobs it started run on without it.
        let _ = http_request(
            self.port,
            "DELETE",
            &format!("/v1/sessions/{session}"),
            None,
        );
        jobs
    }

    /// The gateway JVM's PID (for SIGSTOP/SIGCONT).
    pub fn pid(&self) -> u32 {
        self.pid.expect("the SQL Gateway runs")
    }

    /// Kills the gateway and starts a new one on the same port: every
    /// session and result it held in memory is gone, the cluster's jobs stay.
    pub fn restart(&mut self) {
        self.stop();
        self.launch();
    }

    pub fn log_tail(&self) -> String {
        tail_of_dir(&self.log_dir)
    }

    /// Ends the JVM by its PID (TERM, then KILL), thawing it first in case a
    /// test left it frozen.
    pub fn stop(&mut self) {
        let Some(pid) = self.pid.take() else {
            return;
        };
        let pids = [pid.to_string()];
        signal(&pids, "-CONT");
        signal(&pids, "-TERM");
        let until = Instant::now() + Duration::from_secs(15);
        while Instant::now() < until && alive(&pids[0]) {
            std::thread::sleep(Duration::from_millis(100));
        }
        signal(&pids, "-KILL");
        let _ = std::fs::remove_dir_all(&self.pid_dir);
        let _ = std::fs::create_dir_all(&self.pid_dir);
    }
}

impl Drop for SqlGateway {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The PIDs in the `*.pid` files Flink's scripts wrote into `dir`.
fn pids_in(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| e.path().extension().is_some_and(|x| x == "pid"))
                .flat_map(|e| {
                    std::fs::read_to_string(e.path())
                        .unwrap_or_default()
                        .split_whitespace()
                        .map(str::to_string)
                        .collect::<Vec<_>>()
                })
                .filter(|pid| pid.parse::<u32>().is_ok())
                .collect()
        })
        .unwrap_or_default()
}

/// The last lines of every log file in `dir`.
fn tail_of_dir(dir: &Path) -> String {
    let mut text = String::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let content = std::fs::read_to_string(entry.path()).unwrap_or_default();
            let lines: Vec<&str> = content.lines().collect();
            text.push_str(&format!("== {}\n", entry.path().display()));
            text.push_str(&lines[lines.len().saturating_sub(15)..].join("\n"));
            text.push('\n');
        }
    }
    text
}

fn signal(pids: &[String], signal: &str) {
    let alive: Vec<&String> = pids.iter().filter(|pid| alive(pid)).collect();
    if alive.is_empty() {
        return;
    }
    let _ = Command::new("kill")
        .arg(signal)
        .args(alive)
        .stderr(Stdio::null())
        .status();
}

fn alive(pid: &str) -> bool {
    // A zombie still has a /proc entry; its state is Z.
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit(')')
            .next()
            .is_some_and(|rest| !rest.trim_start().starts_with('Z'))
    })
}

/// The distribution's JVM options (the `--add-opens` Flink needs on Java 17).
fn java_opts(home: &Path) -> String {
    let config = std::fs::read_to_string(home.join("conf/config.yaml")).unwrap_or_default();
    config
        .lines()
        .map(str::trim)
        .find_map(|line| line.strip_prefix("all: --add-"))
        .map(|rest| format!("--add-{rest}"))
        .expect("the distribution's config.yaml sets env.java.opts.all")
}

/// One HTTP/1.1 request to 127.0.0.1:`port` (connection closed after it);
/// `None` when nothing answers.
fn http_request(
    port: u16,
    method: &str,
    path: &str,
    body: Option<(&str, &[u8])>,
) -> Option<(u16, serde_json::Value)> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .ok()?;
    let mut request =
        format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n");
    if let Some((content_type, bytes)) = body {
        request.push_str(&format!(
            "Content-Type: {content_type}\r\nContent-Length: {}\r\n",
            bytes.len()
        ));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).ok()?;
    if let Some((_, bytes)) = body {
        stream.write_all(bytes).ok()?;
    }
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).ok()?;
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let mut payload = raw[split + 4..].to_vec();
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        payload = dechunk(&payload);
    }
    let value = serde_json::from_slice(&payload)
        .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(&payload).into()));
    Some((status, value))
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(line_end) = data.windows(2).position(|w| w == b"\r\n") {
        let size_text = String::from_utf8_lossy(&data[..line_end]);
        let Ok(size) = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
        else {
            break;
        };
        data = &data[line_end + 2..];
        if size == 0 || data.len() < size {
            break;
        }
        out.extend_from_slice(&data[..size]);
        data = data.get(size + 2..).unwrap_or_default();
    }
    out
}

/// `run` over the workspace's connectors for exactly `duration`, for sources
/// that keep producing (the default run stops when idle).
pub fn run_for(ws: &Workspace, duration: &str) -> (Output, serde_json::Value) {
    ws.run_ending(&["--duration", duration])
}
