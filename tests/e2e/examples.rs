//! The example jobs of `examples/` deploy and run as the README shows.

use crate::support::*;

#[test]
fn the_example_pipeline_and_failure_handling_run() {
    // The examples reference their modules and lake relative to the repository; deploy a copy
    // of the lake so the test does not write into the source tree. Tasks mount it: the node
    // allows mounts under its directory (never under its data directory).
    let outside = tempfile::tempdir().unwrap();
    let w = Weir::start_with_config(&format!(
        "mount_roots = [{:?}]\n",
        outside.path().display().to_string()
    ));
    let root = repo_root();
    let lake = outside.path().join("lake");
    std::fs::create_dir_all(lake.join("landing")).unwrap();
    for f in std::fs::read_dir(root.join("examples/lake/landing")).unwrap() {
        let f = f.unwrap().path();
        std::fs::copy(&f, lake.join("landing").join(f.file_name().unwrap())).unwrap();
    }
    let jobs = w.dir.path().join("jobs");
    std::fs::create_dir_all(&jobs).unwrap();
    for name in ["orders-pipeline.yaml", "failure-handling.yaml"] {
        let text = std::fs::read_to_string(root.join("examples/jobs").join(name)).unwrap();
        let wasm_dir = module("ingest").parent().unwrap().display().to_string();
        let text = text
            .replace("../../target/wasm32-wasip1/release", &wasm_dir)
            .replace("../lake", lake.to_str().unwrap());
        std::fs::write(jobs.join(name), text).unwrap();
    }
    w.cli_ok(&["deploy", jobs.to_str().unwrap()]);
    let (ok, run) = w.run_wait("orders-pipeline", &[]);
    assert!(ok, "{run:#}");
    for t in ["ingest", "validate", "aggregate", "report"] {
        assert_eq!(result(&run, t), "SUCCESS", "{t}");
    }
    assert!(task(&run, "ingest")["values"]["rows"].as_i64().unwrap() > 0);
    assert!(lake.join("gold/totals.json").exists());
    let (ok, run) = w.run_wait("failure-handling", &[]);
    assert!(ok, "{run:#}");
    assert_eq!(
        attempts(&run, "extract").len(),
        3,
        "extract fails twice, then succeeds"
    );
    let (_, run) = w.run_wait("failure-handling", &["--param", "fail_load=true"]);
    assert_eq!(result(&run, "load"), "FAILED");
    assert_eq!(result(&run, "alert"), "SUCCESS");
    assert_eq!(result(&run, "cleanup"), "SUCCESS");
    assert_eq!(run_result(&run), "SUCCESS_WITH_FAILURES");
}
