//! Records mode against a REAL Flink 1.20.3 SQL Gateway in front of a real
//! session cluster (the PyPI distribution, with the gateway's jar from Maven
//! Central: see `scripts/install-test-deps`), driven through the real harness
//! binary. One cluster and one gateway, started by the first scenario, serve
//! every scenario of this binary (`common::shared`: stopped by PID when the
//! binary ends); the scenarios that restart or freeze a gateway start one of
//! their own in front of the same cluster. Each scenario names its query's
//! job after itself and cancels what still runs of it at its end. Without
//! Java, pyflink or the gateway jar every scenario fails.

mod common;

use common::shared::{self, CancelJobs, Started, Turn, Turns};
use common::{KEY, TOPIC, assert_ran, header, run, run_to_rows, run_until};
use iggy_harness_test_support::flink::{FlinkCluster, SqlGateway, run_for};
use iggy_harness_test_support::process::{exit_within, signal};
use iggy_harness_test_support::{Workspace, connector, harness_binary, plugin};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long a run of a bounded query goes on once it has put out every row
/// (`--wait-for`: Flink takes up to ~30 s to start a query's job on a busy
/// 2-core machine) and nothing has moved since: after EOS the plugin looks
/// for a stop savepoint for 5 s before it calls the query finished.
const BOUNDED_IDLE: &str = "15s";
/// The longest run of an endless query: long enough for its job to start
/// and rows to flow. Most runs end sooner, once they have put out the rows
/// their checks need (`run_until`).
const RUN: &str = "45s";
/// What a run of an endless query waits for: a few checkpoints' worth of
/// the counting table's rows.
const ROWS_PER_RUN: u64 = 100;

struct Flink {
    gateway: SqlGateway,
    cluster: FlinkCluster,
    /// The servers' dir: scenarios put their files and own gateways here.
    dir: PathBuf,
}

/// The cluster and gateway every scenario shares.
fn flink() -> &'static Flink {
    static FLINK: Started<Flink> = Started::new();
    shared::servers(&FLINK, "the Flink cluster and its SQL Gateway", |dir| {
        let cluster = FlinkCluster::start(dir);
        let gateway = SqlGateway::start(&cluster, dir);
        Flink {
            gateway,
            cluster,
            dir: dir.to_path_buf(),
        }
    })
}

static TURNS: Turns = Turns::new();

/// Starts a scenario: the shared servers, its turn, and the cancelling of
/// its jobs (named `job`) when it ends.
fn scenario(job: &str) -> (&'static Flink, Turn<'static>, CancelJobs) {
    let flink = flink();
    let turn = TURNS.take();
    eprintln!("== gateway scenario: {job}");
    (flink, turn, CancelJobs::named(&flink.cluster, &[job]))
}

impl Flink {
    /// `[plugin_config]` for records mode against `gateway` (the shared one
    /// or a scenario's own) and the cluster; the query's job is named `job`.
    fn records_config(
        &self,
        gateway: &SqlGateway,
        job: &str,
        records: &str,
        extra: &str,
    ) -> String {
        format!(
            "flink_cluster_url = \"{}\"\nsql_gateway_url = \"{}\"\npoll_interval_ms = 50\n\
             max_poll_interval_ms = 200\nmetrics_log_interval = \"2s\"\n{extra}\n\n\
             [plugin_config.records]\njob_name = \"{job}\"\n{records}\n",
            self.cluster.rest_url(),
            gateway.url()
        )
    }

    fn source(&self, ws: &Workspace, job: &str, records: &str, extra: &str) {
        self.source_via(&self.gateway, ws, job, records, extra);
    }

    fn source_via(
        &self,
        gateway: &SqlGateway,
        ws: &Workspace,
        job: &str,
        records: &str,
        extra: &str,
    ) {
        ws.source(
            KEY,
            &plugin("iggy_connector_flink_source"),
            TOPIC,
            &self.records_config(gateway, job, records, extra),
        );
    }

    /// A gateway of the scenario's own in front of the shared cluster, for
    /// scenarios that restart or freeze it; stopped when dropped.
    fn own_gateway(&self, scenario: &str) -> SqlGateway {
        let dir = self.dir.join(scenario);
        std::fs::create_dir_all(&dir).expect("the scenario's dir");
        SqlGateway::start(&self.cluster, &dir)
    }
}

/// A run of a bounded query: until it has put out its `rows`, then until
/// nothing moved for [`BOUNDED_IDLE`].
fn run_bounded(ws: &Workspace, rows: u64, extra: &[&str]) -> (std::process::Output, Value) {
    run_to_rows(ws, rows as usize, BOUNDED_IDLE, extra)
}

fn ids(messages: &[Value]) -> BTreeSet<String> {
    messages
        .iter()
        .map(|m| m["id"].as_str().expect("id").to_string())
        .collect()
}

fn kinds(messages: &[Value]) -> Vec<String> {
    messages
        .iter()
        .map(|m| header(m, "row_kind").expect("row_kind").to_string())
        .collect()
}

/// The `id` column of every row, in delivery order.
fn row_ids(messages: &[Value]) -> Vec<u64> {
    messages
        .iter()
        .map(|m| m["payload"]["id"].as_u64().expect("id column"))
        .collect()
}

fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).to_string()
}

/// A bounded datagen table built from the source settings: every row
/// arrives once, as JSON with its kind and job, and the query stays done.
#[test]
fn datagen_rows_are_counted_exactly() {
    const JOB: &str = "datagen_rows_are_counted_exactly";
    let (flink, _turn, _jobs) = scenario(JOB);
    const ROWS: u64 = 2_500;
    let ws = Workspace::new();
    flink.source(
        &ws,
        JOB,
        &format!(
            "source_type = \"datagen\"\ncolumns = [\"id BIGINT\", \"name STRING\"]\n\
             savepoint_on_close = false\n\
             [plugin_config.records.properties]\n\"number-of-rows\" = \"{ROWS}\"\n\
             \"fields.id.kind\" = \"sequence\"\n\"fields.id.start\" = \"1\"\n\"fields.id.end\" = \"{ROWS}\"\n\
             \"fields.name.length\" = \"6\""
        ),
        "batch_size = 300",
    );
    // Every third batch is Nacked: it is read again from the same page.
    let (output, report) = run_bounded(&ws, ROWS, &["--fault", "nack-every=3"]);
    assert_ran(&output, &report);
    let messages = ws.dump(TOPIC);
    let log = stderr(&output);
    assert_eq!(messages.len() as u64, ROWS, "{log}");
    assert!(
        connector(&report, KEY)["nacks"].as_u64().unwrap_or(0) > 0,
        "{report}"
    );
    let mut seen = row_ids(&messages);
    seen.sort_unstable();
    assert_eq!(seen, (1..=ROWS).collect::<Vec<_>>());
    assert_eq!(ids(&messages).len() as u64, ROWS, "every row its own id");
    let job = header(&messages[0], "job_id").expect("job_id").to_string();
    assert_eq!(job.len(), 32, "{job}");
    for message in &messages {
        assert_eq!(header(message, "row_kind"), Some("INSERT"));
        assert_eq!(header(message, "job_id"), Some(job.as_str()));
        assert_eq!(header(message, "source"), Some("datagen"), "{message}");
        let name = message["payload"]["name"].as_str().expect("name");
        assert_eq!(name.len(), 6, "{message}");
    }
    assert_eq!(connector(&report, KEY)["messages_out"], ROWS, "{report}");
    assert!(log.contains("the query reached its end"), "{log}");
    assert_eq!(flink.cluster.job_state(&job), "FINISHED");

    // The state says the query is done: a second run reads nothing.
    let (output, report) = run(&ws, "2s", &[]);
    assert_ran(&output, &report);
    assert_eq!(ws.dump(TOPIC).len() as u64, ROWS);
    assert!(
        stderr(&output).contains("the query reached its end in an earlier run"),
        "{}",
        stderr(&output)
    );
}

/// Writes CSV files into a new directory under `dir`.
fn csv_dir(dir: &Path, name: &str, files: &[(&str, &str)]) -> String {
    let path = dir.join(name);
    std::fs::create_dir_all(&path).expect("csv dir");
    for (file, text) in files {
        std::fs::write(path.join(file), text).expect("csv file");
    }
    path.to_str().expect("utf-8 path").to_string()
}

const ORDERS_A: &str = "1,alice,10.50\n2,bob,7.25\n3,alice,100.00\n";
const ORDERS_B: &str = "4,carol,0.99\n5,bob,12345678.90\n";

/// The rows of `ORDERS_A` and `ORDERS_B`: (id, customer, amount, file).
/// Flink writes a DECIMAL without its trailing zeros (1.00 as `1`), so
/// amounts are compared as numbers.
fn orders() -> Vec<(u64, &'static str, f64, &'static str)> {
    vec![
        (1, "alice", 10.5, "a.csv"),
        (2, "bob", 7.25, "a.csv"),
        (3, "alice", 100.0, "a.csv"),
        (4, "carol", 0.99, "b.csv"),
        (5, "bob", 12345678.9, "b.csv"),
    ]
}

/// A filesystem table built from the source settings over a directory of
/// CSV files: every row with its exact values, its file as `source`.
#[test]
fn filesystem_rows_carry_their_values_and_file() {
    const JOB: &str = "filesystem_rows_carry_their_values_and_file";
    let (flink, _turn, _jobs) = scenario(JOB);
    let dir = csv_dir(
        &flink.dir,
        "orders",
        &[("a.csv", ORDERS_A), ("b.csv", ORDERS_B)],
    );
    let ws = Workspace::new();
    flink.source(
        &ws,
        JOB,
        &format!(
            "source_type = \"filesystem\"\nsource_identifier = \"{dir}\"\n\
             columns = [\"id BIGINT\", \"customer STRING\", \"amount DECIMAL(10,2)\"]\n\
             savepoint_on_close = false\n\
             [plugin_config.records.properties]\nformat = \"csv\""
        ),
        "batch_size = 2",
    );
    let (output, report) = run_bounded(&ws, orders().len() as u64, &[]);
    assert_ran(&output, &report);
    let messages = ws.dump(TOPIC);
    let mut got: Vec<(u64, String, f64, String)> = messages
        .iter()
        .map(|m| {
            let payload = m["payload"].as_object().expect("object payload");
            assert_eq!(
                payload.keys().collect::<Vec<_>>(),
                ["amount", "customer", "id"],
                "the file.path column leaves the payload: {m}"
            );
            let source = header(m, "source").expect("source header");
            (
                payload["id"].as_u64().expect("id"),
                payload["customer"].as_str().expect("customer").to_string(),
                payload["amount"].as_f64().expect("amount"),
                source.rsplit('/').next().unwrap_or_default().to_string(),
            )
        })
        .collect();
    got.sort_by_key(|row| row.0);
    let expected: Vec<(u64, String, f64, String)> = orders()
        .into_iter()
        .map(|(id, customer, amount, file)| (id, customer.into(), amount, file.into()))
        .collect();
    assert_eq!(got, expected, "{}", stderr(&output));
    for message in &messages {
        let source = header(message, "source").expect("source");
        assert!(source.contains(&dir), "the file's full path: {source}");
    }
}

/// GROUP BY over a bounded filesystem table: the first row of a group is an
/// INSERT, each later one an UPDATE_BEFORE/UPDATE_AFTER pair, and replaying
/// the changelog gives the final totals.
#[test]
fn an_aggregating_query_delivers_its_changelog() {
    const JOB: &str = "an_aggregating_query_delivers_its_changelog";
    let (flink, _turn, _jobs) = scenario(JOB);
    let dir = csv_dir(
        &flink.dir,
        "orders-agg",
        &[("a.csv", ORDERS_A), ("b.csv", ORDERS_B)],
    );
    let ws = Workspace::new();
    flink.source(
        &ws,
        JOB,
        &format!(
            "setup_statements = [\"CREATE TEMPORARY TABLE orders (id BIGINT, customer STRING, amount DECIMAL(10,2)) \
             WITH ('connector' = 'filesystem', 'path' = '{dir}', 'format' = 'csv')\"]\n\
             sql = \"SELECT customer, COUNT(*) AS cnt, SUM(amount) AS total FROM orders GROUP BY customer\"\n\
             savepoint_on_close = false"
        ),
        "",
    );
    // alice and bob twice, carol once: 3 inserts and 2 update pairs.
    let (output, report) = run_bounded(&ws, 7, &[]);
    assert_ran(&output, &report);
    let messages = ws.dump(TOPIC);
    let kinds = kinds(&messages);
    let count = |kind: &str| kinds.iter().filter(|k| *k == kind).count();
    assert_eq!(
        (
            count("INSERT"),
            count("UPDATE_BEFORE"),
            count("UPDATE_AFTER")
        ),
        (3, 2, 2),
        "{kinds:?}"
    );
    let mut totals: BTreeMap<String, Value> = BTreeMap::new();
    for (message, kind) in messages.iter().zip(&kinds) {
        let payload = &message["payload"];
        let customer = payload["customer"].as_str().expect("customer").to_string();
        match kind.as_str() {
            "INSERT" => {
                assert!(!totals.contains_key(&customer), "{kinds:?}");
                totals.insert(customer, payload.clone());
            }
            "UPDATE_BEFORE" => {
                assert_eq!(
                    totals.get(&customer),
                    Some(payload),
                    "retracts the last value"
                );
            }
            "UPDATE_AFTER" => {
                totals.insert(customer, payload.clone());
            }
            other => panic!("unexpected row kind {other}"),
        }
    }
    let finals: Vec<String> = totals.values().map(Value::to_string).collect();
    assert_eq!(
        finals,
        [
            r#"{"cnt":2,"customer":"alice","total":110.5}"#,
            r#"{"cnt":2,"customer":"bob","total":12345686.15}"#,
            r#"{"cnt":1,"customer":"carol","total":0.99}"#,
        ]
    );
}

/// A query Flink rejects fails open with Flink's reason on one line.
#[test]
fn a_query_flink_rejects_fails_open_with_its_reason() {
    const JOB: &str = "a_query_flink_rejects_fails_open_with_its_reason";
    let (flink, _turn, _jobs) = scenario(JOB);
    let ws = Workspace::new();
    flink.source(&ws, JOB, "sql = \"SELECT * FROM no_such_table\"", "");
    let file = ws.connectors().join(format!("{KEY}.toml"));
    let output = ws.harness(&["--json", "check", file.to_str().expect("path")]);
    let text = String::from_utf8_lossy(&output.stdout).to_string() + &stderr(&output);
    assert!(!output.status.success(), "{text}");
    assert!(
        text.contains("the query failed:") && text.contains("Object 'no_such_table' not found"),
        "{text}"
    );
    assert!(
        !text.contains("\tat org.apache"),
        "stack trace lines leaked: {text}"
    );
}

/// A row whose `source` column is over the 255-byte header limit cannot
/// become a message: without `skip_errors` the poll fails and nothing of
/// its page is lost; with it the row is skipped (counted, logged) and the
/// rest delivered. The CSV line Flink cannot parse does not fail the job
/// either (`csv.ignore-parse-errors`, which `skip_errors` sets for a built
/// table): Flink delivers it with the field it could not parse as null.
#[test]
fn bad_rows_fail_the_poll_or_are_skipped() {
    const JOB: &str = "bad_rows_fail_the_poll_or_are_skipped";
    let (flink, _turn, _jobs) = scenario(JOB);
    let long = "s".repeat(300);
    let dir = csv_dir(
        &flink.dir,
        "orders-bad",
        &[(
            "a.csv",
            &format!("1,short,1.00\n2,{long},2.00\nnot-a-number,x,3.00\n4,short,4.00\n"),
        )],
    );
    let records = |skip: bool| {
        format!(
            "source_type = \"filesystem\"\nsource_identifier = \"{dir}\"\n\
             columns = [\"id BIGINT\", \"src STRING\", \"amount DECIMAL(10,2)\"]\n\
             header_columns = {{ source = \"src\" }}\nskip_errors = {skip}\n\
             savepoint_on_close = false\n\
             [plugin_config.records.properties]\nformat = \"csv\"\n\"csv.ignore-parse-errors\" = \"true\""
        )
    };
    let ws = Workspace::new();
    flink.source(&ws, JOB, &records(false), "");
    let (output, report) = run_for(&ws, "6s");
    let log = stderr(&output);
    assert!(
        log.contains("set skip_errors = true to skip such rows")
            && log.contains("value of 300 bytes"),
        "{report}\n{log}"
    );
    assert!(
        ws.dump(TOPIC).is_empty(),
        "no row of the bad page is delivered"
    );

    // The same connector with skip_errors: the page is read again from
    // where the failed poll left it; only the bad row is missing.
    flink.source(&ws, JOB, &records(true), "");
    let (output, report) = run_bounded(&ws, 3, &[]);
    assert_ran(&output, &report);
    let log = stderr(&output);
    let messages = ws.dump(TOPIC);
    // Flink's csv.ignore-parse-errors sets a field it cannot parse to null.
    let rows: Vec<(Value, Option<&str>)> = messages
        .iter()
        .map(|m| (m["payload"]["id"].clone(), header(m, "source")))
        .collect();
    assert_eq!(
        rows,
        [
            (Value::from(1), Some("short")),
            (Value::Null, Some("x")),
            (Value::from(4), Some("short"))
        ],
        "{log}"
    );
    assert!(
        log.contains("skipped row") && log.contains("value of 300 bytes"),
        "{log}"
    );
}

/// A datagen table that outlasts every run: `id` counts up from 1 at 50 rows
/// a second, and its position is in Flink's checkpoints and savepoints
/// (Flink keeps the whole sequence in memory and in every checkpoint, so it
/// stays short).
fn counting_table(settings: &str) -> String {
    format!(
        "source_type = \"datagen\"\ncolumns = [\"id BIGINT\"]\n{settings}\n\
         [plugin_config.records.properties]\n\"rows-per-second\" = \"50\"\n\
         \"fields.id.kind\" = \"sequence\"\n\"fields.id.start\" = \"1\"\n\"fields.id.end\" = \"100000\""
    )
}

/// The distinct job ids of the rows, in delivery order.
fn jobs(messages: &[Value]) -> Vec<String> {
    let mut jobs: Vec<String> = Vec::new();
    for message in messages {
        let job = header(message, "job_id").expect("job_id").to_string();
        if jobs.last() != Some(&job) {
            jobs.push(job);
        }
    }
    jobs
}

/// `close` stops the job with a savepoint; the next start reads what the
/// job produced before it from the old session: every number once, in
/// order. Then it runs the query again from that savepoint, which Flink
/// 1.20.3 cannot do for a query read through the gateway: the restored
/// collect sink brings back its old result offset, and the gateway's new
/// result fetcher refuses it ("userVisibleTail should not be larger than
/// offset"); the plugin reports that on every poll and delivers nothing
/// more (see the README's limits).
#[test]
fn a_restart_delivers_the_rows_before_the_close_savepoint() {
    const JOB: &str = "a_restart_delivers_the_rows_before_the_close_savepoint";
    let (flink, _turn, _jobs) = scenario(JOB);
    let ws = Workspace::new();
    let savepoints = flink.cluster.savepoint_dir.join("records");
    let records = counting_table(&format!(
        "savepoint_dir = \"file://{}\"",
        savepoints.display()
    ));
    flink.source(&ws, JOB, &records, "");
    // Full length: a run stopped soon after its first rows has been seen
    // to leave no row between them and the savepoint.
    let (output, report) = run_for(&ws, RUN);
    assert_ran(&output, &report);
    let first = ws.dump(TOPIC);
    let log = stderr(&output);
    assert!(!first.is_empty(), "{log}");
    assert!(
        log.contains(&format!("with savepoint file:{}", savepoints.display())),
        "{log}"
    );
    let first_job = jobs(&first);
    assert_eq!(first_job.len(), 1, "{first_job:?}");
    assert_eq!(flink.cluster.job_state(&first_job[0]), "FINISHED");

    // Full length too: the refused resume's poll errors are not counted
    // in the run's progress lines, so nothing tells when it has been seen.
    let (output, _) = run_for(&ws, RUN);
    let log = stderr(&output);
    let messages = ws.dump(TOPIC);
    let ids = row_ids(&messages);
    let expected: Vec<u64> = (1..=ids.len() as u64).collect();
    assert_eq!(ids, expected, "every number once, in order: {log}");
    assert!(messages.len() > first.len(), "{log}");
    assert_eq!(jobs(&messages), first_job, "{log}");
    assert!(log.contains("delivered every row of job"), "{log}");
    assert!(
        log.contains("starting the query from savepoint")
            && log.contains("userVisibleTail should not be larger than offset"),
        "{log}"
    );
}

/// With `savepoint_on_close = false` the query runs on between two runs,
/// and the second reads on from the first one's cursor: one job, every
/// number once, in order.
#[test]
fn a_restart_without_savepoint_reads_on() {
    const JOB: &str = "a_restart_without_savepoint_reads_on";
    let (flink, _turn, _jobs) = scenario(JOB);
    let ws = Workspace::new();
    let records = counting_table("savepoint_on_close = false");
    flink.source(&ws, JOB, &records, "");
    let (output, report) = run_until(&ws, RUN, ROWS_PER_RUN);
    assert_ran(&output, &report);
    let first = ws.dump(TOPIC).len();
    assert!(first > 0, "{}", stderr(&output));
    let (output, report) = run_until(&ws, RUN, ROWS_PER_RUN);
    assert_ran(&output, &report);
    let log = stderr(&output);
    let messages = ws.dump(TOPIC);
    let ids = row_ids(&messages);
    assert!(ids.len() > first, "{log}");
    let expected: Vec<u64> = (1..=ids.len() as u64).collect();
    assert_eq!(ids, expected, "every number once, in order: {log}");
    let jobs = jobs(&messages);
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    assert!(
        log.contains("reading on from the earlier run's query"),
        "{log}"
    );
}

/// The gateway restarts between two runs (the query was left running): its
/// session and results are gone. The plugin says so and starts the query
/// again; with no savepoint of the job, from the start (the README's
/// at-least-once after a lost session): the counter starts over, under a
/// new job, with new message ids.
#[test]
fn a_lost_session_starts_the_query_again() {
    const JOB: &str = "a_lost_session_starts_the_query_again";
    let (flink, _turn, _jobs) = scenario(JOB);
    let mut gateway = flink.own_gateway(JOB);
    let ws = Workspace::new();
    let records = counting_table("savepoint_on_close = false");
    flink.source_via(&gateway, &ws, JOB, &records, "");
    let (output, report) = run_until(&ws, RUN, ROWS_PER_RUN);
    assert_ran(&output, &report);
    let first = ws.dump(TOPIC);
    assert!(!first.is_empty(), "{}", stderr(&output));
    gateway.restart();

    // The lost session is found out and the query submitted again before
    // its new job starts: a longer run.
    let (output, report) = run_until(&ws, "50s", ROWS_PER_RUN);
    assert_ran(&output, &report);
    let log = stderr(&output);
    assert!(log.contains("the query can no longer be read"), "{log}");
    assert!(log.contains("does not exist"), "{log}");
    let messages = ws.dump(TOPIC);
    let jobs = jobs(&messages);
    assert_eq!(jobs.len(), 2, "{jobs:?}\n{log}");
    let again = row_ids(&messages[first.len()..]);
    let expected: Vec<u64> = (1..=again.len() as u64).collect();
    assert_eq!(again, expected, "the new job counts from 1: {log}");
    assert_eq!(ids(&messages).len(), messages.len(), "no message id twice");
}

/// The run ends while the gateway is frozen (SIGSTOP) with a fetch in
/// flight: `close` (which stops the job through the cluster's REST API,
/// not the gateway) still returns soon after the run's end.
#[test]
fn close_is_bounded_while_the_gateway_is_frozen() {
    const JOB: &str = "close_is_bounded_while_the_gateway_is_frozen";
    let (flink, _turn, _jobs) = scenario(JOB);
    const RUN_LENGTH: Duration = Duration::from_secs(40);
    let gateway = flink.own_gateway(JOB);
    let ws = Workspace::new();
    flink.source_via(
        &gateway,
        &ws,
        JOB,
        &counting_table(""),
        "request_timeout = \"3s\"",
    );
    let args = ws.run_args(&["--duration", "40s"]);
    let started = Instant::now();
    let mut run = Command::new(harness_binary())
        .args(&args)
        .current_dir(ws.dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("harness starts");
    // Freeze once this run's job runs (rows flow), at the latest 18 s
    // before the run ends.
    let running = flink
        .cluster
        .wait_until(RUN_LENGTH - Duration::from_secs(18), |cluster| {
            shared::live_jobs_named(cluster, JOB)
                .iter()
                .any(|job| cluster.job_state(job) == "RUNNING")
        });
    // The job runs a moment before `open` has seen the gateway accept the
    // query: freeze once polls run.
    std::thread::sleep(Duration::from_secs(8));
    let pid = gateway.pid();
    signal(pid, "STOP");
    let ended = exit_within(&mut run, started, RUN_LENGTH + Duration::from_secs(90));
    let elapsed = started.elapsed();
    signal(pid, "CONT");
    let output = run.wait_with_output().expect("harness output");
    let log = stderr(&output);
    assert!(running, "the query's job never ran: {log}");
    assert!(ended.is_some(), "still running after {elapsed:?}: {log}");
    assert!(
        elapsed < RUN_LENGTH + Duration::from_secs(30),
        "closed {elapsed:?} after the start: {log}"
    );
    assert!(log.contains("stopped the query's job"), "{log}");
    eprintln!("the run of {RUN_LENGTH:?} ended {elapsed:?} after its start");
}

/// `configs/connectors/flink_source.toml`, pointed at this gateway and
/// cluster: its query runs and rows arrive.
#[test]
fn the_shipped_connector_file_runs() {
    // The file's own job name.
    const JOB: &str = "iggy-orders-from-flink";
    let (flink, _turn, _jobs) = scenario(JOB);
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs/connectors/flink_source.toml");
    let text = std::fs::read_to_string(&path).expect("shipped connector file");
    let (_, plugin_config) = text
        .split_once("[plugin_config]\n")
        .expect("a [plugin_config] table");
    let plugin_config = plugin_config
        .replace(
            "\"http://127.0.0.1:8081\"",
            &format!("\"{}\"", flink.cluster.rest_url()),
        )
        .replace(
            "\"http://127.0.0.1:8083\"",
            &format!("\"{}\"", flink.gateway.url()),
        );
    assert!(
        plugin_config.contains(&flink.gateway.url())
            && plugin_config.contains(&format!("job_name = \"{JOB}\"")),
        "{plugin_config}"
    );
    let ws = Workspace::new();
    ws.source(
        KEY,
        &plugin("iggy_connector_flink_source"),
        TOPIC,
        &plugin_config,
    );
    // The file's datagen table makes 10 rows a second.
    let (output, report) = run_until(&ws, RUN, 20);
    assert_ran(&output, &report);
    let messages = ws.dump(TOPIC);
    assert!(!messages.is_empty(), "{}", stderr(&output));
    for message in &messages {
        let payload = message["payload"].as_object().expect("object payload");
        assert_eq!(
            payload.keys().collect::<Vec<_>>(),
            ["amount", "customer", "order_id", "ts"],
            "{message}"
        );
        assert_eq!(header(message, "source"), Some("datagen"));
    }
    let jobs = jobs(&messages);
    assert_eq!(jobs.len(), 1, "{jobs:?}");
}

/// Rows with a TIMESTAMP(3) event time, as Flink's CSV format reads it
/// (no zone: the plugin reads it as UTC), and that time in epoch microseconds.
const EVENTS: [(u64, &str, u64); 3] = [
    (1, "2026-01-02 03:04:05.678", 1_767_323_045_678_000),
    (2, "2026-06-30 23:59:59.001", 1_782_863_999_001_000),
    (3, "1999-12-31 00:00:00", 946_598_400_000_000),
];

/// A flat `[plugin_config]` written for the proposed Iggy Flink source
/// (its keys: `connection_timeout_secs`, `source_type` as `{ custom = ... }`, `source_identifier`,
/// `enable_checkpointing`, `checkpoint_interval_secs`, `max_retries`,
/// `output_schema`, `properties`), plus what this plugin needs on top (the
/// gateway, the columns, a time column): every row once, its event time in
/// the `origin_timestamp` header (the runtime, and so the harness, stamps
/// the stored message's own origin timestamp itself), and the query's job
/// checkpointed every 2 s.
#[test]
fn a_file_in_the_proposals_shape_runs() {
    const JOB: &str = "a_file_in_the_proposals_shape_runs";
    let (flink, _turn, _jobs) = scenario(JOB);
    let csv: String = EVENTS
        .iter()
        .map(|(id, at, _)| format!("{id},{at}\n"))
        .collect();
    let dir = csv_dir(&flink.dir, "events", &[("events.csv", &csv)]);
    let ws = Workspace::new();
    ws.source(
        KEY,
        &plugin("iggy_connector_flink_source"),
        TOPIC,
        &format!(
            "flink_cluster_url = \"{}\"\nsql_gateway_url = \"{}\"\n\
             connection_timeout_secs = 30\nmax_retries = 3\n\
             source_type = {{ custom = \"filesystem\" }}\nsource_identifier = \"{dir}\"\n\
             batch_size = 100\npoll_interval_ms = 50\noutput_schema = \"json\"\n\
             enable_checkpointing = true\ncheckpoint_interval_secs = 2\n\
             [plugin_config.properties]\nformat = \"csv\"\n\
             [plugin_config.records]\ncolumns = [\"id BIGINT\", \"ts TIMESTAMP(3)\"]\n\
             timestamp_column = \"ts\"\nsavepoint_on_close = false\njob_name = \"{JOB}\"\n",
            flink.cluster.rest_url(),
            flink.gateway.url()
        ),
    );
    let (output, report) = run_bounded(&ws, EVENTS.len() as u64, &[]);
    assert_ran(&output, &report);
    let messages = ws.dump(TOPIC);
    let mut got: Vec<(u64, u64)> = messages
        .iter()
        .map(|m| {
            let id = m["payload"]["id"].as_u64().expect("id");
            assert!(
                m["payload"]["ts"].is_string(),
                "the time stays in the payload: {m}"
            );
            let origin = header(m, "origin_timestamp").expect("origin_timestamp header");
            (id, origin.parse().expect("epoch microseconds"))
        })
        .collect();
    got.sort_unstable();
    let expected: Vec<(u64, u64)> = EVENTS.iter().map(|(id, _, at)| (*id, *at)).collect();
    assert_eq!(got, expected, "{}", stderr(&output));
    let jobs = jobs(&messages);
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    let (status, config) = flink
        .cluster
        .get(&format!("/jobs/{}/checkpoints/config", jobs[0]));
    assert_eq!(status, 200, "{config}");
    assert_eq!(
        config["interval"], 2000,
        "checkpoint_interval_secs: {config}"
    );
}
