//! `weir alerts list`.

use super::client::Context;
use super::{CliResult, output};
use clap::{Subcommand, ValueEnum};
use serde_json::Value;
use std::process::ExitCode;

/// Alert commands.
#[derive(Debug, Subcommand)]
pub enum AlertsCommand {
    /// List alerts, newest first: event, destination, delivery state, attempts, last error.
    #[command(after_help = "Example:\n  weir alerts list --job orders-pipeline --status failed")]
    List {
        /// Only alerts about runs of this job (name or id).
        #[arg(long)]
        job: Option<String>,
        /// Only alerts about this run.
        #[arg(long)]
        run: Option<i64>,
        /// Only alerts in this delivery state.
        #[arg(long, value_enum)]
        status: Option<Status>,
        /// How many alerts.
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
}

/// Delivery states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Status {
    /// Not delivered yet (maybe retrying).
    Pending,
    /// Delivered.
    Delivered,
    /// Given up on.
    Failed,
}

/// Runs an alerts command.
pub async fn run(ctx: &Context, cmd: AlertsCommand) -> CliResult {
    match cmd {
        AlertsCommand::List {
            job,
            run,
            status,
            limit,
        } => {
            let mut q = vec![("limit", limit.to_string())];
            if let Some(j) = job {
                q.push(("job_id", ctx.job_id(&j).await?.to_string()));
            }
            if let Some(r) = run {
                q.push(("run_id", r.to_string()));
            }
            if let Some(s) = status {
                let s = s.to_possible_value().expect("no skipped values");
                q.push(("status", s.get_name().to_ascii_uppercase()));
            }
            let page = ctx.get("/api/weir/alerts", &q).await?;
            if ctx.json() {
                ctx.print_json(&page);
            } else {
                print!("{}", table(&page));
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn table(page: &Value) -> String {
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    };
    let rows: Vec<Vec<String>> = page["alerts"]
        .as_array()
        .map(|alerts| {
            alerts
                .iter()
                .map(|a| {
                    vec![
                        text(&a["alert_id"]),
                        text(&a["job_name"]),
                        text(&a["run_id"]),
                        text(&a["event"]),
                        format!("{} {}", text(&a["channel"]), text(&a["destination"])),
                        text(&a["status"]),
                        text(&a["attempts"]),
                        output::time(a["updated_time"].as_i64().unwrap_or(0)),
                        text(&a["last_error"]),
                    ]
                })
                .collect()
        })
        .unwrap_or_default();
    output::table(
        &[
            "ALERT",
            "JOB",
            "RUN",
            "EVENT",
            "DESTINATION",
            "STATUS",
            "ATTEMPTS",
            "UPDATED",
            "LAST ERROR",
        ],
        &rows,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn alerts_print_as_a_table() {
        let page = json!({"alerts": [{
            "alert_id": 3, "job_name": "orders", "run_id": 41, "event": "on_failure",
            "channel": "webhook", "destination": "http://h/hook", "status": "FAILED",
            "attempts": 5, "updated_time": 0, "last_error": "POST http://h/hook answered 500"
        }]});
        let t = table(&page);
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[0].starts_with("ALERT  JOB"), "{t}");
        assert!(lines[1].contains("on_failure"), "{t}");
        assert!(lines[1].contains("webhook http://h/hook"), "{t}");
        assert!(lines[1].ends_with("POST http://h/hook answered 500"), "{t}");
    }
}
