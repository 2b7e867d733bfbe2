//! `weir runs list|get|logs|cancel|repair`.

use super::client::Context;
use super::jobs::{parse_param, run_exit_code};
use super::{CliResult, output};
use clap::Subcommand;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::process::ExitCode;

/// Run commands.
#[derive(Debug, Subcommand)]
pub enum RunsCommand {
    /// List runs, newest first.
    #[command(after_help = "Example:\n  weir runs list --job orders-pipeline --active")]
    List {
        /// Only runs of this job (name or id).
        #[arg(long)]
        job: Option<String>,
        /// Only queued, pending or running runs.
        #[arg(long)]
        active: bool,
        /// Only finished runs.
        #[arg(long)]
        completed: bool,
        /// How many runs.
        #[arg(long, default_value_t = 25)]
        limit: u32,
    },
    /// Show a run and its tasks.
    #[command(after_help = "Example:\n  weir runs get 42 --history")]
    Get {
        /// Run id.
        run_id: i64,
        /// Also show task runs replaced by repairs.
        #[arg(long)]
        history: bool,
    },
    /// Print the logs of a run's tasks (or of one task run).
    #[command(after_help = "Example:\n  weir runs logs 42 --task ingest")]
    Logs {
        /// Run id (or task run id).
        run_id: i64,
        /// Only this task.
        #[arg(long)]
        task: Option<String>,
    },
    /// Cancel a run.
    #[command(after_help = "Example:\n  weir runs cancel 42 --wait")]
    Cancel {
        /// Run id.
        run_id: i64,
        /// Wait until it has stopped.
        #[arg(long)]
        wait: bool,
    },
    /// Rerun tasks of a finished run (and, with --rerun-dependents, what depends on them).
    #[command(
        after_help = "Example:\n  weir runs repair 42 --all-failed --rerun-dependents --wait"
    )]
    Repair {
        /// Run id.
        run_id: i64,
        /// A task to rerun (repeatable).
        #[arg(long = "task")]
        tasks: Vec<String>,
        /// Rerun every task that did not succeed.
        #[arg(long)]
        all_failed: bool,
        /// Also rerun the tasks downstream of the rerun ones.
        #[arg(long)]
        rerun_dependents: bool,
        /// Override a job parameter (repeatable).
        #[arg(long = "param", short = 'p', value_name = "NAME=VALUE", value_parser = parse_param)]
        params: Vec<(String, String)>,
        /// Wait for the repaired run to end; exit non-zero unless it succeeded.
        #[arg(long)]
        wait: bool,
    },
}

/// Runs a runs command.
pub async fn run(ctx: &Context, cmd: RunsCommand) -> CliResult {
    match cmd {
        RunsCommand::List {
            job,
            active,
            completed,
            limit,
        } => {
            let mut q = vec![
                ("limit", limit.to_string()),
                ("active_only", active.to_string()),
                ("completed_only", completed.to_string()),
            ];
            if let Some(j) = job {
                q.push(("job_id", ctx.job_id(&j).await?.to_string()));
            }
            let page = ctx.get("/api/2.2/jobs/runs/list", &q).await?;
            if ctx.json() {
                ctx.print_json(&page);
            } else {
                let rows: Vec<Vec<String>> = page["runs"]
                    .as_array()
                    .map(|runs| {
                        runs.iter()
                            .map(|r| {
                                vec![
                                    r["run_id"].to_string(),
                                    r["run_name"].as_str().unwrap_or_default().to_string(),
                                    output::state(r),
                                    r["trigger"].as_str().unwrap_or_default().to_string(),
                                    output::time(r["start_time"].as_i64().unwrap_or(0)),
                                    output::duration(r["run_duration"].as_i64().unwrap_or(0)),
                                ]
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                print!(
                    "{}",
                    output::table(
                        &["RUN ID", "JOB", "STATE", "TRIGGER", "STARTED", "DURATION"],
                        &rows
                    )
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        RunsCommand::Get { run_id, history } => {
            let run = ctx
                .get(
                    "/api/2.2/jobs/runs/get",
                    &[
                        ("run_id", run_id.to_string()),
                        ("include_history", history.to_string()),
                    ],
                )
                .await?;
            ctx.print_run(&run);
            Ok(ExitCode::SUCCESS)
        }
        RunsCommand::Logs { run_id, task } => logs(ctx, run_id, task.as_deref()).await,
        RunsCommand::Cancel { run_id, wait } => {
            ctx.post("/api/2.2/jobs/runs/cancel", &json!({"run_id": run_id}))
                .await?;
            if wait {
                let run = ctx.wait_run(run_id).await?;
                ctx.print_run(&run);
            } else if ctx.json() {
                ctx.print_json(&json!({}));
            } else {
                println!("cancel requested for run {run_id}");
            }
            Ok(ExitCode::SUCCESS)
        }
        RunsCommand::Repair {
            run_id,
            tasks,
            all_failed,
            rerun_dependents,
            params,
            wait,
        } => {
            let params: BTreeMap<String, String> = params.into_iter().collect();
            let body = json!({
                "run_id": run_id,
                "rerun_tasks": tasks,
                "rerun_all_failed_tasks": all_failed,
                "rerun_dependent_tasks": rerun_dependents,
                "job_parameters": params,
            });
            let out = ctx.post("/api/2.2/jobs/runs/repair", &body).await?;
            if !wait {
                if ctx.json() {
                    ctx.print_json(&out);
                } else {
                    println!("repair {} of run {run_id} started", out["repair_id"]);
                }
                return Ok(ExitCode::SUCCESS);
            }
            let run = ctx.wait_run(run_id).await?;
            ctx.print_run(&run);
            Ok(run_exit_code(&run))
        }
    }
}

async fn logs(ctx: &Context, run_id: i64, task: Option<&str>) -> CliResult {
    let run = ctx
        .get("/api/2.2/jobs/runs/get", &[("run_id", run_id.to_string())])
        .await?;
    // A task run id shows that task run; a job run id shows every (or the chosen) task.
    let task_runs: Vec<Value> = match run["tasks"].as_array() {
        Some(tasks) => tasks
            .iter()
            .filter(|t| task.is_none_or(|k| t["task_key"] == k))
            .cloned()
            .collect(),
        None => vec![run.clone()],
    };
    if let Some(k) = task
        && task_runs.is_empty()
    {
        anyhow::bail!("run {run_id} has no task {k:?}");
    }
    let mut outputs = Vec::new();
    for t in &task_runs {
        let id = t["run_id"].as_i64().unwrap_or_default();
        let out = ctx
            .get(
                "/api/2.2/jobs/runs/get-output",
                &[("run_id", id.to_string())],
            )
            .await?;
        if !ctx.json() {
            println!(
                "==> {} (attempt {}, task run {id}): {}",
                t["task_key"].as_str().unwrap_or_default(),
                t["attempt_number"],
                output::state(t)
            );
            print!("{}", out["stdout"].as_str().unwrap_or_default());
            let stderr = out["stderr"].as_str().unwrap_or_default();
            if !stderr.is_empty() {
                print!("{stderr}");
            }
            if let Some(err) = out["error"].as_str() {
                println!("error: {err}");
            }
        }
        outputs.push(out);
    }
    if ctx.json() {
        ctx.print_json(&json!({"outputs": outputs}));
    }
    Ok(ExitCode::SUCCESS)
}
