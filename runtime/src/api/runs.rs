//! `/api/2.2/jobs/runs/*`: submit, get, list, cancel, cancel-all, repair, get-output, delete;
//! and Weir's `/api/weir/runs/wait`.

use super::error::{ApiError, ApiResult};
use super::jobs::{page_start, string_map};
use super::render::{self, RunView};
use super::{ApiQuery, Body, Shared, parse_body};
use crate::engine::RepairRequest;
use crate::spec::{self, JobSettings};
use crate::store::{JobId, RunFilter, RunId, RunSnapshot};
use axum::Json;
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::Duration;

/// The run holding `run_id`, which may be a job run id or a task run id.
async fn find(state: &super::AppState, run_id: RunId) -> ApiResult<(RunSnapshot, Option<usize>)> {
    let store = state.engine.store();
    if let Some(snap) = store.get_run(run_id).await? {
        return Ok((snap, None));
    }
    if let Some(task) = store.get_task_run(run_id).await?
        && let Some(snap) = store.get_run(task.run_id).await?
    {
        let idx = snap.tasks.iter().position(|t| t.task_run_id == run_id);
        return Ok((snap, idx));
    }
    Err(ApiError::not_found(format!("run {run_id} does not exist")))
}

/// Body of `runs/submit`: a one-time run of tasks that are not a stored job.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SubmitBody {
    #[serde(default)]
    run_name: Option<String>,
    tasks: Value,
    #[serde(default)]
    timeout_seconds: Option<u64>,
    #[serde(default)]
    idempotency_token: Option<String>,
    #[serde(default)]
    email_notifications: Option<Value>,
    #[serde(default)]
    webhook_notifications: Option<Value>,
    #[serde(default)]
    notification_settings: Option<Value>,
    #[serde(default)]
    health: Option<Value>,
}

/// `POST runs/submit`.
pub async fn submit(state: Shared, Body(body): Body) -> ApiResult<Json<Value>> {
    let b: SubmitBody = parse_body(&body)?;
    let mut doc = json!({
        "name": b.run_name.unwrap_or_else(|| "Untitled".into()),
        "timeout_seconds": b.timeout_seconds.unwrap_or(0),
        "tasks": b.tasks,
    });
    // The alert settings of a one-time run, as the Jobs API takes them.
    for (key, value) in [
        ("email_notifications", b.email_notifications),
        ("webhook_notifications", b.webhook_notifications),
        ("notification_settings", b.notification_settings),
        ("health", b.health),
    ] {
        if let Some(v) = value {
            doc[key] = v;
        }
    }
    let text = serde_json::to_string_pretty(&doc).map_err(|e| ApiError::internal(e.to_string()))?;
    let settings: JobSettings = spec::settings_from_json("submitted run", &text, "")?;
    super::jobs::check_references(&state, &settings, "").await?;
    let created = state.engine.submit(settings, b.idempotency_token).await?;
    Ok(Json(json!({"run_id": created.run_id})))
}

/// `?...` of `runs/get`.
#[derive(Deserialize)]
pub struct GetQuery {
    run_id: RunId,
    #[serde(default)]
    include_history: Option<bool>,
    #[serde(default)]
    include_resolved_values: Option<bool>,
}

fn view(q: &GetQuery) -> RunView {
    RunView {
        include_history: q.include_history.unwrap_or(false),
        include_resolved_values: q.include_resolved_values.unwrap_or(false),
        expand_tasks: true,
    }
}

fn render_found(snap: &RunSnapshot, task: Option<usize>, view: RunView) -> Value {
    match task {
        Some(i) => render::task_run_alone(snap, &snap.tasks[i], view),
        None => render::run(snap, view),
    }
}

/// `GET runs/get`: a job run, or a task run by its own id.
pub async fn get(state: Shared, ApiQuery(q): ApiQuery<GetQuery>) -> ApiResult<Json<Value>> {
    let (snap, task) = find(&state, q.run_id).await?;
    Ok(Json(render_found(&snap, task, view(&q))))
}

/// `?...` of `/api/weir/runs/wait`.
#[derive(Deserialize)]
pub struct WaitQuery {
    run_id: RunId,
    #[serde(default)]
    timeout_seconds: Option<u64>,
}

/// `GET /api/weir/runs/wait`: answers when the run is final, or after `timeout_seconds`
/// (default 30, at most 300) with its current state.
pub async fn wait(state: Shared, ApiQuery(q): ApiQuery<WaitQuery>) -> ApiResult<Json<Value>> {
    let timeout = Duration::from_secs(q.timeout_seconds.unwrap_or(30).min(300));
    let snap = state.engine.wait(q.run_id, timeout).await?;
    let view = RunView {
        expand_tasks: true,
        ..Default::default()
    };
    Ok(Json(render::run(&snap, view)))
}

/// `?...` of `runs/list`.
#[derive(Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    job_id: Option<JobId>,
    #[serde(default)]
    active_only: Option<bool>,
    #[serde(default)]
    completed_only: Option<bool>,
    #[serde(default)]
    offset: Option<u64>,
    #[serde(default)]
    limit: Option<u64>,
    #[serde(default)]
    page_token: Option<String>,
    #[serde(default)]
    start_time_from: Option<i64>,
    #[serde(default)]
    start_time_to: Option<i64>,
    #[serde(default)]
    expand_tasks: Option<bool>,
}

/// `GET runs/list`: newest first.
pub async fn list(state: Shared, ApiQuery(q): ApiQuery<ListQuery>) -> ApiResult<Json<Value>> {
    let limit = q.limit.unwrap_or(25);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::invalid(format!(
            "limit must be between 1 and 1000, got {limit}"
        )));
    }
    let active_only = q.active_only.unwrap_or(false);
    let completed_only = q.completed_only.unwrap_or(false);
    if active_only && completed_only {
        return Err(ApiError::invalid(
            "active_only and completed_only cannot both be true",
        ));
    }
    let offset = page_start(q.offset, q.page_token.as_deref())?;
    let filter = RunFilter {
        job_id: q.job_id,
        active_only,
        completed_only,
        start_time_from: q.start_time_from,
        start_time_to: q.start_time_to,
        offset,
        limit,
    };
    let store = state.engine.store();
    let (runs, has_more) = store.list_runs(&filter).await?;
    let expand = q.expand_tasks.unwrap_or(false);
    let view = RunView {
        expand_tasks: expand,
        ..Default::default()
    };
    let mut out = Vec::with_capacity(runs.len());
    for r in runs {
        let snap = if expand {
            store.get_run(r.run_id).await?.unwrap_or(RunSnapshot {
                run: r,
                tasks: vec![],
            })
        } else {
            RunSnapshot {
                run: r,
                tasks: vec![],
            }
        };
        out.push(render::run(&snap, view));
    }
    let mut body = json!({"runs": out, "has_more": has_more});
    if has_more {
        body["next_page_token"] = json!((offset + limit).to_string());
    }
    Ok(Json(body))
}

/// Body with a run id.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RunIdBody {
    run_id: RunId,
}

/// `POST runs/cancel`.
pub async fn cancel(state: Shared, Body(body): Body) -> ApiResult<Json<Value>> {
    let RunIdBody { run_id } = parse_body(&body)?;
    state.engine.cancel(run_id).await?;
    Ok(Json(json!({})))
}

/// Body of `runs/cancel-all`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CancelAllBody {
    job_id: JobId,
    #[serde(default)]
    #[allow(dead_code)]
    all_queued_runs: bool,
}

/// `POST runs/cancel-all`: every active and queued run of a job.
pub async fn cancel_all(state: Shared, Body(body): Body) -> ApiResult<Json<Value>> {
    let b: CancelAllBody = parse_body(&body)?;
    if state.engine.store().get_job(b.job_id).await?.is_none() {
        return Err(ApiError::not_found(format!(
            "job {} does not exist",
            b.job_id
        )));
    }
    state.engine.cancel_all(b.job_id).await?;
    Ok(Json(json!({})))
}

/// Body of `runs/repair`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RepairBody {
    run_id: RunId,
    #[serde(default)]
    rerun_tasks: Vec<String>,
    #[serde(default)]
    rerun_all_failed_tasks: bool,
    #[serde(default)]
    rerun_dependent_tasks: bool,
    #[serde(default)]
    latest_repair_id: Option<i64>,
    #[serde(default, deserialize_with = "string_map")]
    job_parameters: BTreeMap<String, String>,
}

/// `POST runs/repair`.
pub async fn repair(state: Shared, Body(body): Body) -> ApiResult<Json<Value>> {
    let b: RepairBody = parse_body(&body)?;
    if b.rerun_all_failed_tasks && !b.rerun_tasks.is_empty() {
        return Err(ApiError::invalid(
            "give either rerun_tasks or rerun_all_failed_tasks, not both",
        ));
    }
    let repair_id = state
        .engine
        .repair(
            b.run_id,
            RepairRequest {
                rerun_tasks: b.rerun_tasks,
                rerun_all_failed_tasks: b.rerun_all_failed_tasks,
                rerun_dependent_tasks: b.rerun_dependent_tasks,
                latest_repair_id: b.latest_repair_id,
                job_parameters: b.job_parameters,
            },
        )
        .await?;
    Ok(Json(json!({"repair_id": repair_id})))
}

/// `?run_id=` of `runs/get-output`.
#[derive(Deserialize)]
pub struct OutputQuery {
    run_id: RunId,
}

/// `GET runs/get-output`: logs, error and task values of one task run.
pub async fn get_output(
    state: Shared,
    ApiQuery(q): ApiQuery<OutputQuery>,
) -> ApiResult<Json<Value>> {
    let (snap, task) = find(&state, q.run_id).await?;
    let Some(i) = task else {
        let tasks: Vec<String> = render::visible_tasks(&snap, false)
            .iter()
            .map(|t| {
                format!(
                    "{} ({} attempt {})",
                    t.task_run_id, t.task_key, t.attempt_number
                )
            })
            .collect();
        return Err(ApiError::invalid(format!(
            "run {} is a job run; get-output takes the run_id of one task run: {}",
            q.run_id,
            tasks.join(", ")
        )));
    };
    let row = &snap.tasks[i];
    let logs = state
        .engine
        .store()
        .get_logs(row.task_run_id)
        .await?
        .unwrap_or_default();
    let view = RunView {
        expand_tasks: true,
        ..Default::default()
    };
    let mut out = json!({
        "metadata": render::task_run_alone(&snap, row, view),
        "logs": format!("{}{}", logs.stdout, logs.stderr),
        "logs_truncated": logs.truncated,
        "stdout": logs.stdout,
        "stderr": logs.stderr,
        "values": row.values,
    });
    if row.is_final()
        && row.result_state.is_some_and(|r| !r.is_success())
        && !row.state_message.is_empty()
    {
        out["error"] = json!(row.state_message);
    }
    if let Some(child) = row.child_run_id {
        out["run_job_output"] = json!({"run_id": child});
    }
    Ok(Json(out))
}

/// `POST runs/delete`: a finished run and its task runs.
pub async fn delete(state: Shared, Body(body): Body) -> ApiResult<Json<Value>> {
    let RunIdBody { run_id } = parse_body(&body)?;
    state.engine.store().delete_run(run_id).await?;
    Ok(Json(json!({})))
}
