//! `--store s3://bucket/prefix`: modules and compiled artifacts in an S3-compatible bucket.

use crate::s3_server::S3Server;
use crate::support::*;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn modules_and_artifacts_live_in_the_s3_store() {
    let s3 = S3Server::start();
    s3.create_bucket("weir-store");
    let w = Weir::start_with("store = \"s3://weir-store/node-a/\"\n", &s3.env());
    w.deploy(
        "s3.yaml",
        &format!(
            "name: from-s3\ntasks:\n  - task_key: t\n    wasm_task: {{module: {}, parameters: [set, \"x=1\"]}}\n",
            module("testtask").display()
        ),
    );
    let (ok, run) = w.run_wait("from-s3", &[]);
    assert!(ok, "{run:#}\n{}", w.log());
    let keys = s3.keys("weir-store", "node-a/");
    assert!(
        keys.iter()
            .any(|k| k.starts_with("node-a/modules/sha256/") && k.ends_with(".wasm")),
        "{keys:?}"
    );
    assert!(
        keys.iter().any(|k| k.starts_with("node-a/compiled/")),
        "the compiled artifact is shared through the store: {keys:?}"
    );
    assert!(keys.iter().all(|k| k.starts_with("node-a/")), "{keys:?}");
}

/// Runs `weir serve` expecting it to refuse to start; returns its stderr.
fn refused(store: &str, env: &[(String, String)]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(weir_bin())
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--store",
            store,
            "--data-dir",
        ])
        .arg(dir.path())
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(!status.success());
            let mut err = String::new();
            std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
            return err;
        }
        if start.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            panic!("weir serve --store {store} did not refuse to start");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_missing_bucket_or_an_unreachable_server_is_refused_at_start() {
    let s3 = S3Server::start();
    let err = refused("s3://no-such-bucket/x", &s3.env());
    assert!(
        err.contains("cannot open object store s3://no-such-bucket/x"),
        "{err}"
    );
    let mut down = s3.env();
    for (k, v) in &mut down {
        if k == "AWS_ENDPOINT_URL" {
            // A port nothing listens on.
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            *v = format!("http://127.0.0.1:{port}");
        }
    }
    let err = refused("s3://weir-store/x", &down);
    assert!(
        err.contains("cannot open object store s3://weir-store/x"),
        "{err}"
    );
    assert!(err.contains("does not answer"), "{err}");
    let err = refused("s3://Bad_Bucket/x", &s3.env());
    assert!(err.contains("is not an S3 URL"), "{err}");
}
