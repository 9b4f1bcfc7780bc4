//! Records mode over a REAL Kafka table: a Kafka 4.1.1 broker (KRaft, one
//! node), a Flink 1.20.3 session cluster with Flink's Kafka connector in its
//! lib dir, and its SQL Gateway, all from `scripts/install-test-deps`, driven
//! through the real harness binary. The rows are written into the topic by
//! Flink itself (an INSERT through the same gateway), so the JSON the source
//! reads is what Flink's Kafka sink writes. The servers start once, for the
//! first scenario (a start costs a minute and four JVMs), and serve every
//! scenario of this binary (`common::shared`: stopped by PID when the
//! binary ends). Each scenario reads topics no other one writes, names its
//! query's job after itself and cancels what still runs of it at its end.
//!
//! A file of its own rather than scenarios of `gateway.rs`: that cluster
//! has no Kafka connector.

mod common;

use common::shared::{self, CancelJobs, Started, Turn, Turns};
use common::{KEY, TOPIC, assert_ran, header, run_to_rows};
use iggy_harness_test_support::flink::{FlinkCluster, SqlGateway};
use iggy_harness_test_support::kafka::{KafkaServer, flink_connector_jars};
use iggy_harness_test_support::{Workspace, connector, plugin};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::Duration;

/// How long a run goes on once it has put out every row it should (its
/// `--wait-for`: Flink takes up to ~30 s to start a query's job on a busy
/// 2-core machine) and nothing has moved since: after EOS the plugin looks
/// for a stop savepoint for 5 s before it calls a bounded query finished.
const IDLE_AFTER_ROWS: &str = "15s";
/// How long an INSERT's job may take to start and finish.
const INSERT_LIMIT: Duration = Duration::from_secs(120);

struct Servers {
    gateway: SqlGateway,
    cluster: FlinkCluster,
    kafka: KafkaServer,
    /// Set once `BOUNDED_TOPIC` holds its rows.
    bounded_written: OnceLock<()>,
}

/// The broker, cluster and gateway every scenario shares.
fn servers() -> &'static Servers {
    static SERVERS: Started<Servers> = Started::new();
    shared::servers(
        &SERVERS,
        "Kafka, the Flink cluster and its SQL Gateway",
        |dir| {
            let kafka = KafkaServer::start(dir);
            let cluster = FlinkCluster::start_with_jars(dir, &flink_connector_jars());
            let gateway = SqlGateway::start(&cluster, dir);
            Servers {
                gateway,
                cluster,
                kafka,
                bounded_written: OnceLock::new(),
            }
        },
    )
}

static TURNS: Turns = Turns::new();

/// Starts a scenario: the shared servers, its turn, and the cancelling of
/// its query's job (named `job`) when it ends.
fn scenario(job: &str) -> (&'static Servers, Turn<'static>, CancelJobs) {
    let servers = servers();
    let turn = TURNS.take();
    eprintln!("== kafka scenario: {job}");
    (servers, turn, CancelJobs::named(&servers.cluster, &[job]))
}

/// One written row: the `orders` columns.
#[derive(Debug, Clone, PartialEq)]
struct Order {
    id: u64,
    customer: String,
    quantity: i64,
}

fn orders(ids: std::ops::RangeInclusive<u64>) -> Vec<Order> {
    ids.map(|id| Order {
        id,
        customer: format!("customer-{}", id % 7),
        quantity: id as i64 * 3 - 100,
    })
    .collect()
}

const COLUMNS: &str = "id BIGINT, customer STRING, quantity INT";

impl Servers {
    /// `CREATE TEMPORARY TABLE orders` over the topic as a JSON Kafka table.
    fn orders_table(&self, topic: &str) -> String {
        format!(
            "CREATE TEMPORARY TABLE orders ({COLUMNS}) WITH ('connector' = 'kafka', \
             'topic' = '{topic}', 'properties.bootstrap.servers' = '{}', 'format' = 'json')",
            self.kafka.bootstrap_servers()
        )
    }

    /// Writes `rows` into `topic` with one INSERT through the gateway and
    /// waits until its job has FINISHED (every record acknowledged by Kafka).
    fn write(&self, topic: &str, rows: &[Order]) {
        let values: Vec<String> = rows
            .iter()
            .map(|o| format!("({}, '{}', {})", o.id, o.customer, o.quantity))
            .collect();
        let insert = format!("INSERT INTO orders VALUES {}", values.join(", "));
        let jobs = self.gateway.execute(&[&self.orders_table(topic), &insert]);
        let [job] = jobs.as_slice() else {
            panic!("the INSERT started {jobs:?}");
        };
        let finished = self.cluster.wait_until(INSERT_LIMIT, |cluster| {
            matches!(
                cluster.job_state(job).as_str(),
                "FINISHED" | "FAILED" | "CANCELED"
            )
        });
        let state = self.cluster.job_state(job);
        assert!(
            finished && state == "FINISHED",
            "the INSERT into {topic} ended {state}; Flink's logs:\n{}\nKafka's log:\n{}",
            self.cluster.log_tail(),
            self.kafka.log_tail()
        );
    }

    /// `BOUNDED_TOPIC` with its rows, written by the first scenario that reads it.
    fn bounded_topic(&self) {
        self.bounded_written
            .get_or_init(|| self.write(BOUNDED_TOPIC, &bounded_orders()));
    }

    /// A records-mode source over the topics `table` names (its
    /// `source_identifier` or `source_pattern`, and `initial_offset`), its
    /// query's job named `job`; `bounded` stops the query at the offsets it
    /// saw at its start.
    fn source(&self, ws: &Workspace, job: &str, table: &str, bounded: bool) {
        let bound = if bounded {
            "\"scan.bounded.mode\" = \"latest-offset\"\n"
        } else {
            ""
        };
        let columns: Vec<String> = COLUMNS.split(", ").map(|c| format!("\"{c}\"")).collect();
        let config = format!(
            "flink_cluster_url = \"{}\"\nsql_gateway_url = \"{}\"\npoll_interval_ms = 50\n\
             max_poll_interval_ms = 200\n\n\
             [plugin_config.records]\njob_name = \"{job}\"\nsource_type = \"kafka\"\n{table}\n\
             columns = [{}]\nsavepoint_on_close = false\n\n\
             [plugin_config.records.properties]\nformat = \"json\"\n\
             \"properties.bootstrap.servers\" = \"{}\"\n{bound}",
            self.cluster.rest_url(),
            self.gateway.url(),
            columns.join(", "),
            self.kafka.bootstrap_servers()
        );
        ws.source(KEY, &plugin("iggy_connector_flink_source"), TOPIC, &config);
    }

    /// A bounded run of the source over `table` (every fourth batch Nacked
    /// and read again) that ends once `rows` messages are out and then
    /// nothing moves; the rows it delivered.
    fn read_bounded(&self, job: &str, table: &str, rows: usize) -> (Rows, String, Value) {
        let ws = Workspace::new();
        self.source(&ws, job, table, true);
        let (output, report) =
            run_to_rows(&ws, rows, IDLE_AFTER_ROWS, &["--fault", "nack-every=4"]);
        assert_ran(&output, &report);
        let log = stderr(&output);
        assert!(log.contains("the query reached its end"), "{log}");
        (delivered(&ws.dump(TOPIC)), log, report)
    }
}

fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).to_string()
}

/// Rows by (topic, Kafka offset).
type Rows = BTreeMap<(String, u64), Order>;

/// Every delivered row by its `source` (topic) and `offset` headers, each
/// checked to be an INSERT from partition 0 (the broker makes new topics
/// with one); panics on a row delivered twice.
fn delivered(messages: &[Value]) -> Rows {
    let mut rows = Rows::new();
    for message in messages {
        let payload = &message["payload"];
        let order = Order {
            id: payload["id"].as_u64().expect("id column"),
            customer: payload["customer"]
                .as_str()
                .expect("customer column")
                .to_string(),
            quantity: payload["quantity"].as_i64().expect("quantity column"),
        };
        assert_eq!(header(message, "row_kind"), Some("INSERT"), "{message}");
        assert_eq!(header(message, "partition"), Some("0"), "{message}");
        let topic = header(message, "source").expect("source header");
        let offset = header(message, "offset")
            .and_then(|o| o.parse::<u64>().ok())
            .unwrap_or_else(|| panic!("no offset header: {message}"));
        let key = (topic.to_string(), offset);
        assert!(
            rows.insert(key.clone(), order).is_none(),
            "{key:?} delivered twice"
        );
    }
    rows
}

/// The rows of `topic` as written: one INSERT after the other, in order,
/// so row `id` sits at offset `id - 1`.
fn written(topic: &str, orders: &[Order]) -> Rows {
    orders
        .iter()
        .map(|order| ((topic.to_string(), order.id - 1), order.clone()))
        .collect()
}

/// A topic filled before the run, read from the earliest offset up to the
/// latest one at the query's start (every fourth batch Nacked and read
/// again): every row once, with its values and its topic, partition and
/// offset; the query reaches its end.
#[test]
fn a_bounded_query_reads_every_row_once() {
    const JOB: &str = "a_bounded_query_reads_every_row_once";
    let (servers, _turn, _jobs) = scenario(JOB);
    servers.bounded_topic();
    let rows = bounded_orders();
    let table = format!("source_identifier = \"{BOUNDED_TOPIC}\"\ninitial_offset = \"earliest\"");
    let (delivered, log, report) = servers.read_bounded(JOB, &table, rows.len());
    assert_eq!(delivered, written(BOUNDED_TOPIC, &rows), "{log}");
    assert_eq!(
        connector(&report, KEY)["messages_out"],
        rows.len(),
        "{report}"
    );
}

/// An endless query over a topic: the rows written before the run and
/// those written while it runs all arrive, each once. The run ends once
/// all of them are out and nothing has moved since for a while.
#[test]
fn rows_written_while_the_query_runs_arrive() {
    const JOB: &str = "rows_written_while_the_query_runs_arrive";
    let (servers, _turn, _jobs) = scenario(JOB);
    let before = orders(1..=100);
    let during = orders(101..=250);
    servers.write(LIVE_TOPIC, &before);
    let ws = Workspace::new();
    let table = format!("source_identifier = \"{LIVE_TOPIC}\"\ninitial_offset = \"earliest\"");
    servers.source(&ws, JOB, &table, false);
    let (output, report) = std::thread::scope(|scope| {
        // Its query's job starts (up to ~30 s), then the second INSERT's
        // job runs (up to ~30 s), then its rows are read.
        let run = scope.spawn(|| {
            run_to_rows(
                &ws,
                before.len() + during.len(),
                IDLE_AFTER_ROWS,
                &["--duration", "120s"],
            )
        });
        // Write once the query's job runs, so these rows come after its start.
        let running = servers
            .cluster
            .wait_until(Duration::from_secs(60), |cluster| {
                shared::live_jobs_named(cluster, JOB)
                    .iter()
                    .any(|job| cluster.job_state(job) == "RUNNING")
            });
        assert!(
            running,
            "the query's job did not start; logs:\n{}",
            servers.cluster.log_tail()
        );
        servers.write(LIVE_TOPIC, &during);
        run.join().expect("the harness run")
    });
    assert_ran(&output, &report);
    let all: Vec<Order> = before.into_iter().chain(during).collect();
    assert_eq!(
        delivered(&ws.dump(TOPIC)),
        written(LIVE_TOPIC, &all),
        "{}",
        stderr(&output)
    );
}

/// `source_pattern` (Kafka's `topic-pattern`) over two topics (not the one
/// `LIVE_TOPIC` is): every row of each once, its own topic as `source`.
#[test]
fn a_topic_pattern_reads_every_matching_topic() {
    const JOB: &str = "a_topic_pattern_reads_every_matching_topic";
    let (servers, _turn, _jobs) = scenario(JOB);
    let pattern_rows = orders(1..=50);
    servers.write(PATTERN_TOPIC, &pattern_rows);
    servers.bounded_topic();
    let mut expected = written(BOUNDED_TOPIC, &bounded_orders());
    expected.extend(written(PATTERN_TOPIC, &pattern_rows));
    let table = "source_pattern = \"orders-(bounded|pattern)\"\ninitial_offset = \"earliest\"";
    let (delivered, log, _) = servers.read_bounded(JOB, table, expected.len());
    assert_eq!(delivered, expected, "{log}");
}

/// `initial_offset = { offsets = ... }` (Kafka's `specific-offsets`): the
/// query starts at that offset of partition 0, the rows before it are not
/// read.
#[test]
fn given_offsets_start_the_query_there() {
    const JOB: &str = "given_offsets_start_the_query_there";
    let (servers, _turn, _jobs) = scenario(JOB);
    servers.bounded_topic();
    let table = format!(
        "source_identifier = \"{BOUNDED_TOPIC}\"\ninitial_offset = {{ offsets = {{ \"0\" = 200 }} }}"
    );
    let expected = written(BOUNDED_TOPIC, &orders(201..=300));
    let (delivered, log, _) = servers.read_bounded(JOB, &table, expected.len());
    assert_eq!(delivered, expected, "{log}");
}

/// Read by several scenarios; written once.
const BOUNDED_TOPIC: &str = "orders-bounded";
/// Written and read by one scenario each.
const LIVE_TOPIC: &str = "orders-live";
const PATTERN_TOPIC: &str = "orders-pattern";

fn bounded_orders() -> Vec<Order> {
    orders(1..=300)
}
