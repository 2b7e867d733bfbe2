//! The task ABI: exit codes, traps, argv/env/context, task values, preopens.

use super::{Fixture, guests, invocation, wait_until};
use crate::exec::{ExitStatus, Preopen};
use serde_json::json;

fn failed(message: &str, exit_code: Option<i32>) -> ExitStatus {
    ExitStatus::Failed {
        message: message.into(),
        exit_code,
    }
}

#[tokio::test]
async fn returning_from_start_or_exiting_0_is_success() {
    let f = Fixture::new();
    for wat in [guests::EMPTY.to_string(), guests::exit(0)] {
        let digest = f.push(&wat).await;
        let outcome = f.run(invocation(&digest)).await;
        assert_eq!(outcome.status, ExitStatus::Success);
        assert!(outcome.values.is_empty());
        assert_eq!(outcome.logs.stdout, "");
    }
}

#[tokio::test]
async fn a_nonzero_exit_fails_with_its_code() {
    let f = Fixture::new();
    let digest = f.push(&guests::exit(3)).await;
    let outcome = f.run(invocation(&digest)).await;
    assert_eq!(outcome.status, failed("exited with code 3", Some(3)));
}

#[tokio::test]
async fn a_trap_fails_with_the_trap_message_and_place() {
    let f = Fixture::new();
    let digest = f.push(guests::DIVIDE).await;
    let outcome = f.run(invocation(&digest)).await;
    let ExitStatus::Failed { message, exit_code } = outcome.status else {
        panic!("expected a failure, got {:?}", outcome.status);
    };
    assert_eq!(exit_code, None);
    assert!(
        message.starts_with("wasm trap: integer divide by zero (in `divide` at offset 0x"),
        "{message}"
    );
}

#[tokio::test]
async fn the_guest_sees_its_args_env_and_context_and_logs_are_split() {
    let f = Fixture::new();
    let digest = f.push(guests::ECHO).await;
    let mut inv = invocation(&digest);
    inv.args = vec!["ingest".into(), "--date".into(), "2024-01-02".into()];
    inv.env = vec![
        ("WEIR_TASK_KEY".into(), "ingest".into()),
        ("LEVEL".into(), "info".into()),
    ];
    inv.context = json!({"parameters": {"region": "eu"}});
    let outcome = f.run(inv).await;
    assert_eq!(outcome.status, ExitStatus::Success);
    assert_eq!(
        outcome.logs.stdout,
        "ingest\0--date\x002024-01-02\0\
         WEIR_TASK_KEY=ingest\0LEVEL=info\0WEIR_CONTEXT=/weir/context.json\0WEIR_OUTPUT=/weir/output.jsonl\0\
         {\"parameters\":{\"region\":\"eu\"}}"
    );
    assert_eq!(outcome.logs.stderr, "oops");
    assert!(!outcome.logs.truncated);
}

#[tokio::test]
async fn task_values_are_collected_and_the_last_write_wins() {
    let f = Fixture::new();
    let lines = "{\"key\":\"rows\",\"value\":1}\n{\"key\":\"tables\",\"value\":[\"a\",\"b\"]}\n{\"key\":\"rows\",\"value\":42}\n";
    let digest = f.push(&guests::values(lines, 0)).await;
    let outcome = f.run(invocation(&digest)).await;
    assert_eq!(outcome.status, ExitStatus::Success);
    assert_eq!(outcome.values.len(), 2);
    assert_eq!(outcome.values["rows"], json!(42));
    assert_eq!(outcome.values["tables"], json!(["a", "b"]));
}

#[tokio::test]
async fn invalid_task_values_fail_a_successful_attempt() {
    let f = Fixture::new();
    let long_key = format!("{{\"key\":\"{}\",\"value\":1}}", "k".repeat(200));
    let big_value = format!("{{\"key\":\"big\",\"value\":\"{}\"}}", "x".repeat(49151));
    let cases = [
        (
            format!("{{\"key\":\"a\",\"value\":1}}\n\n{long_key}\n"),
            "task value line 3: key is 200 characters, over the limit of 128".to_string(),
        ),
        (
            "not json\n".to_string(),
            "task value line 1 is not JSON: ".to_string(),
        ),
        (
            big_value,
            "task value line 1: value of key \"big\" is 49153 bytes as JSON, over the limit of 49152 bytes (48 KiB)".to_string(),
        ),
        (
            "{\"value\":1}".to_string(),
            "task value line 1: \"key\" is missing".to_string(),
        ),
    ];
    for (lines, expected) in cases {
        let digest = f.push(&guests::values(&lines, 0)).await;
        let outcome = f.run(invocation(&digest)).await;
        let ExitStatus::Failed { message, exit_code } = outcome.status else {
            panic!("{lines:?} did not fail: {:?}", outcome.status);
        };
        assert!(message.starts_with(&expected), "{message:?} for {lines:?}");
        assert_eq!(exit_code, Some(0));
        assert!(outcome.values.is_empty());
    }
}

#[tokio::test]
async fn values_of_a_failed_attempt_are_kept_but_it_stays_failed() {
    let f = Fixture::new();
    let digest = f
        .push(&guests::values("{\"key\":\"done\",\"value\":false}\n", 4))
        .await;
    let outcome = f.run(invocation(&digest)).await;
    assert_eq!(outcome.status, failed("exited with code 4", Some(4)));
    assert_eq!(outcome.values["done"], json!(false));

    let digest = f.push(&guests::values("garbage\n", 4)).await;
    let outcome = f.run(invocation(&digest)).await;
    assert_eq!(outcome.status, failed("exited with code 4", Some(4)));
    assert!(outcome.values.is_empty());
}

#[tokio::test]
async fn the_guest_cannot_reach_the_host_file_system() {
    let f = Fixture::new();
    let digest = f.push(guests::ESCAPE).await;
    let outcome = f.run(invocation(&digest)).await;
    assert_eq!(outcome.status, ExitStatus::Success, "{:?}", outcome.status);

    // The probe does detect a second preopen when there is one.
    let mount = tempfile::tempdir().unwrap();
    let mut inv = invocation(&digest);
    inv.preopens = vec![Preopen {
        host: mount.path().to_path_buf(),
        guest: "/lake".into(),
        read_only: true,
    }];
    let outcome = f.run(inv).await;
    assert_eq!(outcome.status, failed("exited with code 2", Some(2)));
}

#[tokio::test]
async fn a_read_write_mount_accepts_writes_and_a_read_only_one_refuses_them() {
    let f = Fixture::new();
    let digest = f.push(&guests::write_file(4, "out.txt", b"hello", 0)).await;
    let mount = tempfile::tempdir().unwrap();
    let preopen = |read_only| Preopen {
        host: mount.path().to_path_buf(),
        guest: "/lake".into(),
        read_only,
    };

    let mut inv = invocation(&digest);
    inv.preopens = vec![preopen(true)];
    let outcome = f.run(inv).await;
    let ExitStatus::Failed { exit_code, .. } = outcome.status.clone() else {
        panic!("a write to a read-only mount succeeded");
    };
    assert!(
        matches!(exit_code, Some(1..=99)),
        "{exit_code:?} {:?}",
        outcome.status
    );
    assert!(!mount.path().join("out.txt").exists());

    let mut inv = invocation(&digest);
    inv.preopens = vec![preopen(false)];
    let outcome = f.run(inv).await;
    assert_eq!(outcome.status, ExitStatus::Success);
    assert_eq!(
        std::fs::read(mount.path().join("out.txt")).unwrap(),
        b"hello"
    );
}

#[tokio::test]
async fn a_missing_mount_source_fails_the_attempt() {
    let f = Fixture::new();
    let digest = f.push(guests::EMPTY).await;
    let mut inv = invocation(&digest);
    inv.preopens = vec![Preopen {
        host: "/no/such/weir/dir".into(),
        guest: "/lake".into(),
        read_only: false,
    }];
    let outcome = f.run(inv).await;
    assert_eq!(
        outcome.status,
        failed("mount source \"/no/such/weir/dir\" does not exist", None)
    );
}

#[tokio::test]
async fn the_attempt_directory_is_reset_for_the_next_attempt() {
    let f = Fixture::new();
    let digest = f
        .push(&guests::values("{\"key\":\"a\",\"value\":1}", 0))
        .await;
    let outcome = f.run(invocation(&digest)).await;
    assert_eq!(outcome.status, ExitStatus::Success);
    let work_dir = f.work_dir();
    let reset = || {
        let slots: Vec<_> = std::fs::read_dir(&work_dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        slots.len() == 1 && {
            let mut names: Vec<String> = std::fs::read_dir(&slots[0])
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            names == ["context.json", "output.jsonl"]
                && std::fs::metadata(slots[0].join("output.jsonl"))
                    .unwrap()
                    .len()
                    == 0
        }
    };
    wait_until("the attempt directory is reset", reset).await;
    let outcome = f.run(invocation(&digest)).await;
    assert_eq!(
        outcome.values.get("a"),
        Some(&serde_json::json!(1)),
        "no value leaks from the last attempt either"
    );
    wait_until("the one slot is reused", reset).await;
}

#[tokio::test]
async fn a_host_call_that_aborts_the_guest_fails_with_its_cause() {
    let f = Fixture::new();
    // Rights with undefined bits make the WASI implementation abort the call.
    let wat = r#"(module
      (import "wasi_snapshot_preview1" "path_open"
        (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
      (memory (export "memory") 1)
      (func $open (export "_start")
        (drop (call $path_open (i32.const 3) (i32.const 0) (i32.const 0) (i32.const 1)
          (i32.const 0) (i64.const -1) (i64.const -1) (i32.const 0) (i32.const 40)))))"#;
    let digest = f.push(wat).await;
    let outcome = f.run(invocation(&digest)).await;
    let ExitStatus::Failed { message, exit_code } = outcome.status else {
        panic!("expected a failure, got {:?}", outcome.status);
    };
    assert_eq!(exit_code, None);
    assert!(
        message.starts_with("task aborted: In func wasi_snapshot_preview1::path_open"),
        "{message}"
    );
    assert!(message.contains("(in `open` at offset 0x"), "{message}");
}
