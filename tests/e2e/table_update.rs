//! `trigger.table_update`: change events over HTTP (`POST /api/weir/events`) and from a real
//! Kafka broker (tansu) become runs that report the updated tables; ALL_UPDATED waits for
//! every table; a `kill -9` between consuming and firing neither loses nor doubles a run.

use crate::file_arrival::{job_id, runs_of, wait_runs};
use crate::kafka_broker::Broker;
use crate::support::*;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// A job triggered by `tables` whose task echoes its arguments and context.
fn tables_spec(name: &str, tables: &[&str], extra: &str) -> String {
    format!(
        r#"
name: {name}
trigger:
  table_update:
    table_names: [{tables}]
{extra}
tasks:
  - task_key: echo
    wasm_task:
      module: {m}
      parameters: [echo, "{{{{job.trigger.table_update.updated_tables}}}}"]
"#,
        tables = tables.join(", "),
        m = module("testtask").display()
    )
}

fn updated_tables(run: &Value) -> Vec<String> {
    run["trigger_info"]["updated_tables"]
        .as_array()
        .unwrap_or_else(|| panic!("no updated_tables in the payload: {run:#}"))
        .iter()
        .map(|t| t.as_str().unwrap().to_string())
        .collect()
}

fn post_events(w: &Weir, body: Value) -> Value {
    let (status, out) = w.http("POST", "/api/weir/events", Some(body), None);
    assert_eq!(status, 200, "{out:#}");
    out
}

/// Waits until the job's trigger state satisfies `f` (`jobs get`).
fn wait_trigger_state(w: &Weir, name: &str, f: impl Fn(&Value) -> bool) -> Value {
    let start = Instant::now();
    loop {
        let (ok, job) = w.cli_json(&["jobs", "get", name]);
        assert!(ok, "{job:#}");
        if f(&job["trigger_state"]) {
            return job["trigger_state"].clone();
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "trigger state of {name} never matched: {job:#}\nnode log:\n{}",
            w.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn an_http_event_runs_the_job_with_the_updated_tables() {
    let w = Weir::start();
    w.deploy(
        "tables.yaml",
        &tables_spec(
            "orders-job",
            &["main.sales.orders", "main.sales.customers"],
            "",
        ),
    );
    let id = job_id(&w, "orders-job");
    let out = post_events(
        &w,
        json!({"table": "MAIN.Sales.Orders", "version": 7, "ts_ms": 1700000000000i64}),
    );
    assert_eq!(out["accepted"], 1, "{out:#}");
    assert_eq!(out["job_ids"], json!([id]));
    let runs = wait_runs(&w, id, 1);
    let run = &runs[0];
    assert_eq!(run["trigger"], "TABLE", "{run:#}");
    assert_eq!(run_result(run), "SUCCESS", "{run:#}");
    assert_eq!(updated_tables(run), ["main.sales.orders"]);
    let change = &run["trigger_info"]["tables"][0];
    assert_eq!(change["version"], 7);
    assert_eq!(change["event_time"], 1700000000000i64);
    assert_eq!(change["source"], "api");
    let values = &task(run, "echo")["values"];
    assert_eq!(
        values["args"],
        json!(["echo", "echo", "[\"main.sales.orders\"]"])
    );
    assert_eq!(
        values["context"]["trigger"]["updated_tables"],
        json!(["main.sales.orders"])
    );
    assert_eq!(values["env"]["WEIR_TRIGGER_TYPE"], "table");

    // Unknown tables are reported, not recorded; bad events and missing tokens change nothing.
    let out = post_events(&w, json!([{"table": "other.db.t"}]));
    assert_eq!(out["unmatched_tables"], json!(["other.db.t"]));
    let (status, err) = w.http(
        "POST",
        "/api/weir/events",
        Some(json!({"events": [{"table": "main.sales.orders"}, {"table": "orders"}]})),
        None,
    );
    assert_eq!(status, 400, "{err:#}");
    let message = err["message"].as_str().unwrap();
    assert!(
        message.contains("events[1]") && message.contains("catalog.schema.table"),
        "{message}"
    );
    let (status, _) = w.http(
        "POST",
        "/api/weir/events",
        Some(json!({"table": "main.sales.orders"})),
        Some("not-a-token"),
    );
    assert_eq!(status, 401);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(runs_of(&w, id).len(), 1, "nothing else fired");
    let (status, stats) = w.http("GET", "/api/weir/events", None, None);
    assert_eq!(status, 200, "{stats:#}");
    assert_eq!(stats["matched"], 1, "{stats:#}");
    assert_eq!(stats["unmatched"], 1, "{stats:#}");
    assert_eq!(stats["runs"], 1, "{stats:#}");
    assert_eq!(stats["kafka"]["consuming"], false, "{stats:#}");
}

#[test]
fn all_updated_waits_for_every_table_and_coalesces_changes() {
    let w = Weir::start();
    w.deploy(
        "all.yaml",
        &tables_spec(
            "all-job",
            &["main.sales.orders", "main.sales.customers"],
            "    condition: ALL_UPDATED",
        ),
    );
    let id = job_id(&w, "all-job");
    post_events(&w, json!({"table": "main.sales.orders", "version": 1}));
    post_events(&w, json!({"table": "main.sales.orders", "version": 2}));
    std::thread::sleep(Duration::from_secs(1));
    assert!(runs_of(&w, id).is_empty(), "one table of two is not enough");
    post_events(&w, json!({"table": "main.sales.customers", "version": 9}));
    let runs = wait_runs(&w, id, 1);
    assert_eq!(
        updated_tables(&runs[0]),
        ["main.sales.orders", "main.sales.customers"]
    );
    assert_eq!(
        runs[0]["trigger_info"]["tables"][0]["version"], 2,
        "the latest change"
    );
    // The accumulator starts afresh after the run.
    post_events(&w, json!({"table": "main.sales.customers", "version": 10}));
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(runs_of(&w, id).len(), 1);
}

#[test]
fn pending_changes_survive_a_restart_and_fire_once() {
    let mut w = Weir::start();
    w.deploy(
        "wait.yaml",
        &tables_spec(
            "waiting-job",
            &["main.sales.orders"],
            "    wait_after_last_change_seconds: 3",
        ),
    );
    let id = job_id(&w, "waiting-job");
    post_events(&w, json!({"table": "main.sales.orders", "id": "evt-1"}));
    wait_trigger_state(&w, "waiting-job", |t| t["next_fire_time"].is_i64());
    w.kill9();
    w.spawn();
    let runs = wait_runs(&w, id, 1);
    assert_eq!(updated_tables(&runs[0]), ["main.sales.orders"]);
    assert_eq!(runs[0]["trigger_info"]["tables"][0]["event_id"], "evt-1");
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(runs_of(&w, id).len(), 1);
}

/// A node consuming `topic` on `broker`, with extra `weir.toml` lines.
fn kafka_node(broker: &Broker, topic: &str, extra_toml: &str) -> Weir {
    Weir::start_with(
        &format!(
            "kafka_brokers = \"{}\"\nkafka_topics = \"{topic}\"\n{extra_toml}",
            broker.address
        ),
        &[],
    )
}

fn debezium(db: &str, schema: &str, table: &str, lsn: i64) -> Value {
    json!({
        "schema": {"type": "struct", "name": format!("srv.{schema}.{table}.Envelope")},
        "payload": {
            "before": null,
            "after": {"id": lsn},
            "source": {"connector": "postgresql", "db": db, "schema": schema, "table": table, "lsn": lsn, "ts_ms": 1},
            "op": "c",
            "ts_ms": 1700000000123i64
        }
    })
}

#[test]
fn kafka_change_events_trigger_runs_and_poison_never_blocks() {
    let mut broker = Broker::start();
    broker.create_topic("weir.table-updates", 1);
    let w = kafka_node(&broker, "weir.table-updates", "");
    w.deploy(
        "k.yaml",
        &tables_spec("kafka-job", &["main.sales.orders"], ""),
    );
    let id = job_id(&w, "kafka-job");
    broker.produce_json(
        "weir.table-updates",
        &debezium("main", "sales", "orders", 41),
    );
    let runs = wait_runs(&w, id, 1);
    assert_eq!(updated_tables(&runs[0]), ["main.sales.orders"]);
    let change = &runs[0]["trigger_info"]["tables"][0];
    assert_eq!(change["source"], "kafka", "{change:#}");
    assert_eq!(change["topic"], "weir.table-updates");
    assert_eq!(change["partition"], 0);
    assert_eq!(change["version"], 41);
    assert_eq!(change["event_time"], 1700000000123i64);
    assert_eq!(
        task(&runs[0], "echo")["values"]["args"][2],
        "[\"main.sales.orders\"]"
    );
    // Poison, a tombstone and an unknown table are skipped; the plain event after them fires.
    broker.produce("weir.table-updates", "p", Some(b"{not json"));
    broker.produce("weir.table-updates", "t", None);
    broker.produce_json("weir.table-updates", &json!({"table": "x.y.z"}));
    broker.produce_json(
        "weir.table-updates",
        &json!({"table": "main.sales.orders", "version": 3}),
    );
    let runs = wait_runs(&w, id, 2);
    assert_eq!(runs[1]["trigger_info"]["tables"][0]["version"], 3);
    assert!(
        w.log()
            .contains("skipped a message that is no change event"),
        "{}",
        w.log()
    );
}

#[test]
fn kill_9_after_consuming_before_firing_runs_once_and_redelivery_is_dropped() {
    let mut broker = Broker::start();
    broker.create_topic("cdc", 1);
    // Offsets are never committed before the kill: the message is redelivered after it.
    let mut w = kafka_node(
        &broker,
        "cdc",
        "kafka_group = \"kill-test\"\n[kafka_properties]\n\"auto.commit.interval.ms\" = \"600000\"\n",
    );
    w.deploy(
        "kill.yaml",
        &tables_spec(
            "killed-job",
            &["main.sales.orders", "main.sales.customers"],
            "    wait_after_last_change_seconds: 3",
        ),
    );
    let id = job_id(&w, "killed-job");
    broker.produce_json("cdc", &debezium("main", "sales", "orders", 1));
    wait_trigger_state(&w, "killed-job", |t| t["next_fire_time"].is_i64());
    assert!(
        runs_of(&w, id).is_empty(),
        "the run waits for the settle window"
    );
    w.kill9();
    w.spawn();
    let runs = wait_runs(&w, id, 1);
    assert_eq!(updated_tables(&runs[0]), ["main.sales.orders"]);
    // The redelivered message makes no second run; a new one does, once the consumer rejoined.
    broker.produce_json("cdc", &debezium("main", "sales", "customers", 2));
    let runs = wait_runs(&w, id, 2);
    assert_eq!(updated_tables(&runs[1]), ["main.sales.customers"]);
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(runs_of(&w, id).len(), 2, "{}", w.log());
}
