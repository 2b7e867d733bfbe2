//! The store suite on SQLite, and what only SQLite has: files, URLs, durability, speed.

use super::*;
use crate::store::suite::{LEASE_MS, deploy, job, new_run, progress};
use std::time::{Duration, Instant};

/// A fresh store in its own temporary directory (the guard).
async fn fresh() -> (Arc<dyn Store>, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = SqliteStore::open(&dir.path().join("weir.db"))
        .await
        .expect("open a fresh store");
    (store, dir)
}

mod suite {
    crate::store_suite!(super::fresh());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_writes_survive_closing_and_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state/weir.db");
    let url = format!("sqlite://{}", path.display());
    let store = crate::store::open(&url).await.unwrap();
    let deployed = deploy(&store, job("durable", &["a"])).await;
    let run_id = store
        .create_run(new_run(Some(deployed.0), &deployed.1, 10))
        .await
        .unwrap()
        .run_id;
    store.claim_runs("a", 20, LEASE_MS, 1).await.unwrap();
    let write = RunWrite {
        run_id,
        node: "a".into(),
        progress: Some(progress(LifeCycleState::Running, None)),
        ..RunWrite::default()
    };
    store.write_run(write).await.unwrap();
    let before = store.get_run(run_id).await.unwrap().unwrap();
    drop(store);

    let reopened = crate::store::open(&url).await.unwrap();
    assert_eq!(reopened.get_run(run_id).await.unwrap(), Some(before));
    assert_eq!(
        reopened
            .find_job("durable")
            .await
            .unwrap()
            .map(|j| j.job_id),
        Some(deployed.0)
    );
    assert_eq!(reopened.run_events(0, 10).await.unwrap().len(), 2);
    assert_eq!(
        reopened.renew_leases("a", 30, LEASE_MS).await.unwrap().held,
        vec![run_id],
        "leases are durable too"
    );
    let next = reopened.allocate_run_ids(1).await.unwrap();
    assert!(
        next > run_id + 1,
        "the id sequence continues after a reopen"
    );
}

/// Where the child process of [`acknowledged_writes_survive_kill_9`] keeps its database.
const KILL_CHILD_DB: &str = "WEIR_STORE_KILL_CHILD_DB";
/// Acknowledged creates the parent waits for before it kills the child.
const ACKS_BEFORE_KILL: usize = 200;

/// The child process of [`acknowledged_writes_survive_kill_9`]: creates runs from four tasks
/// at once, printing each acknowledged run id, until it is killed. Does nothing on its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "the child process of acknowledged_writes_survive_kill_9"]
async fn kill_9_child() {
    let Ok(path) = std::env::var(KILL_CHILD_DB) else {
        return;
    };
    let store = SqliteStore::open(std::path::Path::new(&path))
        .await
        .unwrap();
    let deployed = deploy(&store, job("killed", &["a", "b"])).await;
    let writers = (0..4).map(|_| {
        let store = store.clone();
        let deployed = deployed.clone();
        tokio::spawn(async move {
            loop {
                let mut new = new_run(Some(deployed.0), &deployed.1, 1);
                new.admission = None;
                let run_id = store.create_run(new).await.unwrap().run_id;
                let mut out = std::io::stdout().lock();
                std::io::Write::write_all(&mut out, format!("acked {run_id}\n").as_bytes())
                    .and_then(|()| std::io::Write::flush(&mut out))
                    .unwrap();
            }
        })
    });
    futures::future::join_all(writers).await;
}

/// `kill -9` of a process that is busy writing loses no acknowledged write and leaves no
/// half-written one.
#[test]
fn acknowledged_writes_survive_kill_9() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("killed.db");
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "store::sqlite::tests::kill_9_child"])
        .args(["--ignored", "--nocapture", "--test-threads=1"])
        .env(KILL_CHILD_DB, &path)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let acked: Vec<RunId> = lines
        .map_while(Result::ok)
        .filter_map(|line| line.strip_prefix("acked ").map(|id| id.parse().unwrap()))
        .take(ACKS_BEFORE_KILL)
        .collect();
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(
        acked.len(),
        ACKS_BEFORE_KILL,
        "the child stopped before being killed"
    );

    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let store = SqliteStore::open(&path).await.unwrap();
        for run_id in &acked {
            let snapshot = store.get_run(*run_id).await.unwrap();
            let snapshot = snapshot.unwrap_or_else(|| panic!("acknowledged run {run_id} lost"));
            assert_eq!(snapshot.tasks.len(), 2);
        }
    });
    let conn = rusqlite::Connection::open(&path).unwrap();
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    let partial: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM runs r WHERE
               (SELECT COUNT(*) FROM task_runs t WHERE t.run_id = r.run_id) != 2
               OR NOT EXISTS (SELECT 1 FROM run_events e WHERE e.run_id = r.run_id)",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(
        partial, 0,
        "runs without all their task runs or their event"
    );
}

#[tokio::test]
async fn open_refuses_other_schemes_and_bad_options() {
    let err = crate::store::open("postgres://db/weir")
        .await
        .err()
        .unwrap();
    assert!(err.to_string().contains("expected sqlite://PATH"), "{err}");
    let err = crate::store::open("sqlite://x.db?synchronous=sometimes")
        .await
        .err()
        .unwrap();
    assert!(err.to_string().contains("expected full or normal"), "{err}");
}

#[tokio::test]
async fn synchronous_full_store_works() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!(
        "sqlite://{}?synchronous=full",
        dir.path().join("w.db").display()
    );
    let store = crate::store::open(&url).await.unwrap();
    let job_id = store.create_job(&job("fsynced", &["a"]), 1).await.unwrap();
    assert_eq!(
        store.get_job(job_id).await.unwrap().unwrap().settings.name,
        "fsynced"
    );
}

/// Prints the commit latency of a typical `write_run` and the throughput of 400 concurrent
/// ones: `cargo test -p weir-runtime --release --lib store::sqlite::tests::write_run_speed
/// -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, not a check; run by hand"]
async fn write_run_speed() {
    for (name, query) in [("normal", ""), ("full", "?synchronous=full")] {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}{query}", dir.path().join("w.db").display());
        let store = crate::store::open(&url).await.unwrap();
        let keys: Vec<String> = (0..400).map(|i| format!("t{i}")).collect();
        let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
        let deployed = deploy(&store, job("bench", &keys)).await;
        let run_id = store
            .create_run(new_run(Some(deployed.0), &deployed.1, 1))
            .await
            .unwrap()
            .run_id;
        let snapshot = store.claim_runs("n", 2, 60_000, 1).await.unwrap().remove(0);
        let finished = |i: usize| {
            let mut task = snapshot.tasks[i].clone();
            task.life_cycle_state = LifeCycleState::Terminated;
            task.result_state = Some(ResultState::Success);
            task.start_time = Some(3);
            task.end_time = Some(4);
            task.exit_code = Some(0);
            task.values.insert("rows".into(), serde_json::json!(i));
            RunWrite {
                run_id,
                node: "n".into(),
                tasks: vec![task],
                logs: vec![(snapshot.tasks[i].task_run_id, TaskLogs::default())],
                ..RunWrite::default()
            }
        };

        let rounds = 200;
        let started = Instant::now();
        for i in 0..rounds {
            store.write_run(finished(i % 400)).await.unwrap();
        }
        let latency = started.elapsed() / rounds as u32;

        let started = Instant::now();
        let writes = (0..400).map(|i| {
            let store = store.clone();
            let write = finished(i);
            tokio::spawn(async move { store.write_run(write).await.unwrap() })
        });
        futures::future::join_all(writes).await;
        let elapsed = started.elapsed().max(Duration::from_micros(1));
        println!(
            "synchronous={name}: sequential write_run {latency:?} each; 400 concurrent \
             write_runs in {elapsed:?} = {:.0}/s",
            400.0 / elapsed.as_secs_f64()
        );
    }
}
