//! `alert`: runs when an upstream task failed (`run_if: AT_LEAST_ONE_FAILED`) and says which
//! one, and which were only skipped because of it.
//! Task value: `failed_tasks`.

use weir_examples::{Error, Flags};

fn main() {
    weir_sdk::run(|ctx| {
        Flags::parse(ctx.args(), &[])?;
        let mut failed = Vec::new();
        for (key, task) in ctx.tasks() {
            let state = task.result_state.as_deref().unwrap_or("NO_RESULT");
            match state {
                "SUCCESS" => println!("task {key}: succeeded"),
                "UPSTREAM_FAILED" | "UPSTREAM_CANCELED" => {
                    println!("task {key}: did not run ({state})")
                }
                _ => {
                    println!(
                        "ALERT: job {} run {}: task {key} {state}",
                        ctx.job_name(),
                        ctx.run_id()
                    );
                    failed.push(key.clone());
                }
            }
        }
        if failed.is_empty() {
            println!("no upstream task failed");
        }
        ctx.set_value("failed_tasks", &failed)?;
        Ok::<(), Error>(())
    })
}
