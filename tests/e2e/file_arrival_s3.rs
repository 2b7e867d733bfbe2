//! `trigger.file_arrival` on an S3 URL (a real S3-compatible server): listing, rewritten
//! objects, `/input` fetched before the task, objects uploaded while Weir is stopped, and an
//! S3 server that goes away and comes back.

use crate::file_arrival::{arrival_spec, files_of, job_id, runs_of, wait_runs};
use crate::s3_server::S3Server;
use crate::support::*;
use std::time::{Duration, Instant};

fn node(s3: &S3Server) -> Weir {
    Weir::start_with("file_arrival_list_interval_seconds = 1\n", &s3.env())
}

#[test]
fn uploads_give_one_run_each_and_a_rewritten_object_counts_as_new() {
    let s3 = S3Server::start();
    s3.create_bucket("landing");
    s3.put("landing", "elsewhere/ignored.csv", b"not under the prefix");
    let w = node(&s3);
    let url = "s3://landing/orders/";
    w.deploy("s3.yaml", &arrival_spec("s3-orders", url, ""));
    let id = job_id(&w, "s3-orders");
    for i in 0..10 {
        let key = format!("orders/2024/o-{i}.csv");
        s3.put("landing", &key, format!("order {i}").as_bytes());
        let runs = wait_runs(&w, id, i + 1);
        let run = &runs[i];
        let name = format!("2024/o-{i}.csv");
        assert_eq!(files_of(run), [name.as_str()], "{run:#}");
        let file = &run["trigger_info"]["files"][0];
        assert!(
            file["etag"].as_str().is_some_and(|e| !e.is_empty()),
            "{run:#}"
        );
        assert_eq!(file["size"], format!("order {i}").len());
        let values = &task(run, "read")["values"];
        assert_eq!(values["contents"][&name], format!("order {i}"), "{run:#}");
        assert_eq!(values["location"], url);
    }
    s3.put("landing", "orders/2024/o-3.csv", b"order 3, corrected");
    let runs = wait_runs(&w, id, 11);
    assert_eq!(files_of(&runs[10]), ["2024/o-3.csv"]);
    assert_eq!(
        task(&runs[10], "read")["values"]["contents"]["2024/o-3.csv"],
        "order 3, corrected"
    );
    // Ignored names under the prefix never trigger.
    s3.put("landing", "orders/_SUCCESS", b"");
    s3.put("landing", "orders/.o-11.csv.tmp", b"x");
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(runs_of(&w, id).len(), 11);
}

#[test]
fn objects_uploaded_while_weir_is_stopped_trigger_once_at_start() {
    let s3 = S3Server::start();
    s3.create_bucket("drops");
    let mut w = node(&s3);
    w.deploy("s3.yaml", &arrival_spec("s3-stopped", "s3://drops/", ""));
    let id = job_id(&w, "s3-stopped");
    s3.put("drops", "first.csv", b"1");
    wait_runs(&w, id, 1);
    w.kill9();
    s3.put("drops", "second.csv", b"2");
    s3.put("drops", "third.csv", b"3");
    w.spawn();
    let runs = wait_runs(&w, id, 2);
    assert_eq!(files_of(&runs[1]), ["second.csv", "third.csv"]);
    w.stop();
    w.spawn();
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(runs_of(&w, id).len(), 2);
}

#[test]
fn an_s3_outage_is_shown_as_the_trigger_error_and_nothing_is_lost_or_doubled_after() {
    let mut s3 = S3Server::start();
    s3.create_bucket("flaky");
    let w = node(&s3);
    w.deploy("s3.yaml", &arrival_spec("s3-outage", "s3://flaky/in/", ""));
    let id = job_id(&w, "s3-outage");
    s3.put("flaky", "in/a.csv", b"a");
    wait_runs(&w, id, 1);
    s3.stop();
    let start = Instant::now();
    loop {
        let (_, job) = w.cli_json(&["jobs", "get", "s3-outage"]);
        let shown = job.to_string();
        if shown.contains("cannot list s3://flaky/in/") {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the trigger error never showed in jobs get:\n{job:#}\n{}",
            w.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // Back (empty: the server keeps objects in memory), with the old object and a new one.
    s3.restart();
    s3.create_bucket("flaky");
    s3.put("flaky", "in/a.csv", b"a");
    s3.put("flaky", "in/b.csv", b"b");
    let runs = wait_runs(&w, id, 2);
    // The same key with a new upload has a new ETag only if the content differs; moto's ETag
    // is the MD5 of the content, so `a.csv` is the same version and stays covered.
    assert_eq!(files_of(&runs[1]), ["b.csv"]);
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(runs_of(&w, id).len(), 2);
}

#[test]
fn a_missing_bucket_is_refused_at_deploy() {
    let s3 = S3Server::start();
    let w = node(&s3);
    let spec = w.dir.path().join("nobucket.yaml");
    std::fs::write(
        &spec,
        arrival_spec("nobucket", "s3://no-such-bucket/in/", ""),
    )
    .unwrap();
    let out = w.cli(&["deploy", spec.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("trigger.file_arrival.url"), "{err}");
    assert!(err.contains("cannot list s3://no-such-bucket/in/"), "{err}");
}
