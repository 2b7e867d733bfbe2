//! `weir jobs list|get|delete|pause|resume|run|backfill`.

use super::client::Context;
use super::{CliResult, output};
use clap::Subcommand;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::process::ExitCode;

/// Job commands.
#[derive(Debug, Subcommand)]
pub enum JobsCommand {
    /// List jobs.
    #[command(
        after_help = "Example:\n  weir jobs list\n  weir jobs list --name orders-pipeline --output json"
    )]
    List {
        /// Only the job with this exact name.
        #[arg(long)]
        name: Option<String>,
    },
    /// Show a job's settings.
    #[command(after_help = "Example:\n  weir jobs get orders-pipeline")]
    Get {
        /// Job name or id.
        job: String,
    },
    /// Delete a job (its active runs are canceled; run history stays).
    #[command(after_help = "Example:\n  weir jobs delete orders-pipeline")]
    Delete {
        /// Job name or id.
        job: String,
    },
    /// Pause a job's schedule or trigger.
    #[command(after_help = "Example:\n  weir jobs pause orders-pipeline")]
    Pause {
        /// Job name or id.
        job: String,
    },
    /// Resume a job's schedule or trigger.
    #[command(after_help = "Example:\n  weir jobs resume orders-pipeline")]
    Resume {
        /// Job name or id.
        job: String,
    },
    /// Start one run per fire time of a job's schedule in a past range (both ends included;
    /// fire times that already have a run are not run again).
    #[command(
        after_help = "Example:\n  weir jobs backfill nightly-report --from 2026-11-01 --to 2026-11-07T23:59:59Z"
    )]
    Backfill {
        /// Job name or id.
        job: String,
        /// Start of the range: ISO-8601 (`2024-01-01T00:00:00Z`, `2024-01-01`; UTC without an
        /// offset) or milliseconds since the epoch.
        #[arg(long)]
        from: String,
        /// End of the range (same forms), not in the future.
        #[arg(long)]
        to: String,
    },
    /// Start a run now.
    #[command(after_help = "Example:\n  weir jobs run orders-pipeline --param region=eu --wait")]
    Run {
        /// Job name or id.
        job: String,
        /// Override a job parameter (repeatable).
        #[arg(long = "param", short = 'p', value_name = "NAME=VALUE", value_parser = parse_param)]
        params: Vec<(String, String)>,
        /// Wait for the run to end; exit non-zero unless it succeeded.
        #[arg(long)]
        wait: bool,
        /// Makes retries of this command start one run only.
        #[arg(long)]
        idempotency_token: Option<String>,
    },
}

/// Parses `NAME=VALUE`.
pub fn parse_param(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("{s:?} is not NAME=VALUE")),
    }
}

/// The exit code a finished run maps to: 0 only for SUCCESS and SUCCESS_WITH_FAILURES.
pub fn run_exit_code(run: &Value) -> ExitCode {
    match run["state"]["result_state"].as_str() {
        Some("SUCCESS" | "SUCCESS_WITH_FAILURES") => ExitCode::SUCCESS,
        _ => ExitCode::FAILURE,
    }
}

/// Runs a jobs command.
pub async fn run(ctx: &Context, cmd: JobsCommand) -> CliResult {
    match cmd {
        JobsCommand::List { name } => {
            let mut jobs = Vec::new();
            let mut token = String::new();
            loop {
                let mut q = vec![("limit", "100".to_string()), ("page_token", token.clone())];
                if let Some(n) = &name {
                    q.push(("name", n.clone()));
                }
                let page = ctx.get("/api/2.2/jobs/list", &q).await?;
                jobs.extend(page["jobs"].as_array().cloned().unwrap_or_default());
                match page["next_page_token"].as_str() {
                    Some(t) => token = t.to_string(),
                    None => break,
                }
            }
            if ctx.json() {
                ctx.print_json(&json!({"jobs": jobs, "has_more": false}));
            } else {
                let rows: Vec<Vec<String>> = jobs
                    .iter()
                    .map(|j| {
                        vec![
                            j["job_id"].to_string(),
                            j["settings"]["name"]
                                .as_str()
                                .unwrap_or_default()
                                .to_string(),
                            output::time(j["created_time"].as_i64().unwrap_or(0)),
                            trigger_cell(&j["trigger_state"]),
                            output::time(
                                j["trigger_state"]["next_fire_time"].as_i64().unwrap_or(0),
                            ),
                        ]
                    })
                    .collect();
                print!(
                    "{}",
                    output::table(
                        &["JOB ID", "NAME", "CREATED", "TRIGGER", "NEXT FIRE"],
                        &rows
                    )
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        JobsCommand::Get { job } => {
            let id = ctx.job_id(&job).await?;
            let j = ctx
                .get("/api/2.2/jobs/get", &[("job_id", id.to_string())])
                .await?;
            if ctx.json() {
                ctx.print_json(&j);
            } else {
                println!(
                    "job {} ({})",
                    id,
                    j["settings"]["name"].as_str().unwrap_or_default()
                );
                if let Some(trigger) = trigger_line(&j["trigger_state"]) {
                    println!("trigger: {trigger}");
                }
                println!(
                    "{}",
                    serde_json::to_string_pretty(&j["settings"]).unwrap_or_default()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        JobsCommand::Delete { job } => {
            let id = ctx.job_id(&job).await?;
            let out = ctx
                .post("/api/2.2/jobs/delete", &json!({"job_id": id}))
                .await?;
            if ctx.json() {
                ctx.print_json(&out);
            } else {
                println!("deleted job {job} (job_id {id})");
            }
            Ok(ExitCode::SUCCESS)
        }
        JobsCommand::Backfill { job, from, to } => backfill(ctx, &job, &from, &to).await,
        JobsCommand::Pause { job } => pause(ctx, &job, "pause").await,
        JobsCommand::Resume { job } => pause(ctx, &job, "resume").await,
        JobsCommand::Run {
            job,
            params,
            wait,
            idempotency_token,
        } => {
            let id = ctx.job_id(&job).await?;
            let params: BTreeMap<String, String> = params.into_iter().collect();
            let mut body = json!({"job_id": id, "job_parameters": params});
            if let Some(t) = idempotency_token {
                body["idempotency_token"] = json!(t);
            }
            let started = ctx.post("/api/2.2/jobs/run-now", &body).await?;
            let run_id = started["run_id"].as_i64().unwrap_or_default();
            if !wait {
                if ctx.json() {
                    ctx.print_json(&started);
                } else {
                    println!("started run {run_id} of {job}");
                }
                return Ok(ExitCode::SUCCESS);
            }
            if !ctx.json() {
                eprintln!("started run {run_id} of {job}; waiting for it to end");
            }
            let run = ctx.wait_run(run_id).await?;
            ctx.print_run(&run);
            Ok(run_exit_code(&run))
        }
    }
}

async fn pause(ctx: &Context, job: &str, verb: &str) -> CliResult {
    let id = ctx.job_id(job).await?;
    let out = ctx
        .post(&format!("/api/weir/jobs/{verb}"), &json!({"job_id": id}))
        .await?;
    if ctx.json() {
        ctx.print_json(&out);
    } else {
        println!("{verb}d job {job} (job_id {id})");
    }
    Ok(ExitCode::SUCCESS)
}

/// `schedule`, `periodic (paused)`, or `-` for a job without a trigger.
fn trigger_cell(t: &Value) -> String {
    match t["kind"].as_str() {
        Some(kind) if t["paused"].as_bool() == Some(true) => format!("{kind} (paused)"),
        Some(kind) => kind.to_string(),
        None => "-".into(),
    }
}

/// `schedule, next fire 2026-11-22 07:01:00 UTC, last fire ... (run 12)`.
fn trigger_line(t: &Value) -> Option<String> {
    t["kind"].as_str()?;
    let mut line = trigger_cell(t);
    if let Some(next) = t["next_fire_time"].as_i64() {
        line.push_str(&format!(", next fire {}", output::time(next)));
    }
    if let Some(last) = t["last_fire_time"].as_i64() {
        line.push_str(&format!(", last fire {}", output::time(last)));
        if let Some(run) = t["last_run_id"].as_i64() {
            line.push_str(&format!(" (run {run})"));
        }
    }
    if let Some(error) = t["last_error"].as_str() {
        line.push_str(&format!(", last error: {error}"));
    }
    Some(line)
}

async fn backfill(ctx: &Context, job: &str, from: &str, to: &str) -> CliResult {
    use crate::trigger::schedule::backfill::parse_time;
    let from = parse_time(from).map_err(|e| anyhow::anyhow!("--from: {e}"))?;
    let to = parse_time(to).map_err(|e| anyhow::anyhow!("--to: {e}"))?;
    let id = ctx.job_id(job).await?;
    let out = ctx
        .post(
            "/api/weir/jobs/backfill",
            &json!({"job_id": id, "from": from, "to": to}),
        )
        .await?;
    if ctx.json() {
        ctx.print_json(&out);
        return Ok(ExitCode::SUCCESS);
    }
    let runs = out["runs"].as_array().cloned().unwrap_or_default();
    let rows: Vec<Vec<String>> = runs
        .iter()
        .map(|r| {
            vec![
                r["run_id"].to_string(),
                output::time(r["fire_time"].as_i64().unwrap_or(0)),
                if r["created"].as_bool() == Some(true) {
                    "created".into()
                } else {
                    "already there".into()
                },
            ]
        })
        .collect();
    print!("{}", output::table(&["RUN ID", "FIRE TIME", "RUN"], &rows));
    println!(
        "backfilled job {job} (job_id {id}): {} fire times, {} new runs",
        runs.len(),
        out["created"]
    );
    Ok(ExitCode::SUCCESS)
}
