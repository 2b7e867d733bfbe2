//! Containment: time limits, cancellation, memory limits, log caps.

use super::{Fixture, LOG_LIMIT, PATIENCE, guests, invocation, wait_until};
use crate::exec::ExitStatus;
use std::time::Duration;

/// Waits until every attempt directory of `f` is gone (stopped attempts' slots are removed).
async fn work_dir_emptied(f: &Fixture) {
    let work_dir = f.work_dir();
    wait_until("the attempt directory is removed", || {
        std::fs::read_dir(&work_dir).unwrap().count() == 0
    })
    .await;
}

#[tokio::test]
async fn an_infinite_loop_is_stopped_by_its_time_limit() {
    let f = Fixture::new();
    let digest = f.push(guests::LOOP).await;
    let mut inv = invocation(&digest);
    inv.timeout = Some(Duration::from_millis(100));
    let outcome = f.run(inv).await;
    assert_eq!(outcome.status, ExitStatus::TimedOut);
    assert_eq!(f.executor.instances_alive(), 0);
    work_dir_emptied(&f).await;
}

/// Starts `guest`, cancels it once its instance is alive, and checks it stopped at once.
async fn cancel_while_running(guest: &str) {
    let f = Fixture::new();
    let digest = f.push(guest).await;
    let attempt = f.executor.start(invocation(&digest));
    wait_until("the guest runs", || f.executor.instances_alive() == 1).await;
    attempt.cancel.cancel();
    let outcome = tokio::time::timeout(PATIENCE, attempt.outcome)
        .await
        .expect("cancel stopped the guest")
        .unwrap();
    assert_eq!(outcome.status, ExitStatus::Canceled);
    assert_eq!(f.executor.instances_alive(), 0);
    work_dir_emptied(&f).await;
}

#[tokio::test]
async fn an_infinite_loop_is_stopped_by_cancel() {
    cancel_while_running(guests::LOOP).await;
}

#[tokio::test]
async fn a_guest_sleeping_in_poll_oneoff_is_stopped_by_cancel() {
    cancel_while_running(guests::SLEEP).await;
}

#[tokio::test]
async fn a_cancel_before_the_attempt_starts_is_not_lost() {
    let f = Fixture::new();
    let digest = f.push(guests::SLEEP).await;
    let attempt = f.executor.start(invocation(&digest));
    attempt.cancel.cancel();
    let outcome = tokio::time::timeout(PATIENCE, attempt.outcome)
        .await
        .expect("cancel stopped the guest")
        .unwrap();
    assert_eq!(outcome.status, ExitStatus::Canceled);
}

#[tokio::test]
async fn a_memory_bomb_fails_with_the_memory_message() {
    let f = Fixture::new();
    let digest = f.push(guests::MEMORY_BOMB).await;
    let mut inv = invocation(&digest);
    inv.memory_limit_bytes = 8 << 20;
    let outcome = f.run(inv).await;
    assert_eq!(
        outcome.status,
        ExitStatus::Failed {
            message: "memory limit of 8 MiB exceeded".into(),
            exit_code: None,
        }
    );
    assert_eq!(f.executor.instances_alive(), 0);
}

#[tokio::test]
async fn the_memory_limit_is_capped_by_the_executor_maximum() {
    let f = Fixture::new();
    let digest = f.push(guests::MEMORY_BOMB).await;
    let mut inv = invocation(&digest);
    inv.memory_limit_bytes = 1 << 40;
    let outcome = f.run(inv).await;
    assert_eq!(
        outcome.status,
        ExitStatus::Failed {
            message: "memory limit of 64 MiB exceeded".into(),
            exit_code: None,
        }
    );
}

#[tokio::test]
async fn huge_output_is_truncated_with_a_mark_and_the_guest_still_succeeds() {
    let f = Fixture::new();
    let digest = f.push(guests::FLOOD).await;
    let outcome = f.run(invocation(&digest)).await;
    assert_eq!(outcome.status, ExitStatus::Success);
    assert!(outcome.logs.truncated);
    let written = 100 * 4096;
    let expected = format!(
        "{}\n[weir: output truncated: {LOG_LIMIT} bytes kept, {} more dropped]\n",
        "x".repeat(LOG_LIMIT),
        written - LOG_LIMIT
    );
    assert_eq!(outcome.logs.stdout, expected);
    assert_eq!(outcome.logs.stderr, "");
}

#[tokio::test]
async fn instances_never_exceed_the_slots() {
    let f = Fixture::new();
    let digest = f.push(guests::SLEEP).await;
    let attempts: Vec<_> = (0..6)
        .map(|_| f.executor.start(invocation(&digest)))
        .collect();
    wait_until("the slots fill", || f.executor.instances_alive() == 4).await;
    for attempt in &attempts {
        attempt.cancel.cancel();
    }
    for attempt in attempts {
        let outcome = tokio::time::timeout(PATIENCE, attempt.outcome)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(outcome.status, ExitStatus::Canceled);
    }
    assert_eq!(f.executor.instances_alive(), 0);
}
