//! `/api/2.2/jobs/runs/*`: submit, get, list, cancel, cancel-all, repair, get-output, delete;
//! and Weir's `/api/weir/runs/wait`.

use super::auth::Caller;
use super::error::{ApiError, ApiResult};
use super::jobs::{page_start, string_map};
use super::permissions;
use super::proto;
use super::render::{self, RunView};
use super::{ApiQuery, Body, Shared};
use crate::engine::RepairRequest;
use crate::spec::{self, JobSettings};
use crate::store::{JobId, PermissionLevel, RunFilter, RunId, RunKind, RunSnapshot, RunVisibility};
use axum::Extension;
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
struct SubmitBody {
    #[serde(default)]
    run_name: Option<String>,
    tasks: Value,
    #[serde(default, deserialize_with = "proto::opt_int64")]
    timeout_seconds: Option<i64>,
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
    #[serde(default)]
    queue: Option<Value>,
}

/// Job settings that `runs/submit` passes on to the run as they are.
const SUBMIT_SETTINGS: &[&str] = &[
    "email_notifications",
    "webhook_notifications",
    "notification_settings",
    "health",
    "queue",
];

/// The run as `caller` may see it: 404 when it does not exist, 403 without `needed`.
async fn find_for(
    state: &super::AppState,
    caller: &Caller,
    run_id: RunId,
    needed: PermissionLevel,
) -> ApiResult<(RunSnapshot, Option<usize>)> {
    let found = find(state, run_id).await?;
    permissions::require_run(state, caller, &found.0.run, needed).await?;
    Ok(found)
}

/// Sets who a rendered run runs as and who created it: as recorded, else its job's owner.
async fn with_identity(
    state: &super::AppState,
    snap: &RunSnapshot,
    mut out: Value,
) -> ApiResult<Value> {
    let store = state.engine.store();
    let (run_as, creator) = match store.get_run_identity(snap.run.run_id).await? {
        Some(ids) => ids,
        None => {
            let owner = match snap.run.job_id {
                Some(job_id) => {
                    permissions::owner(&store.get_job_acl(job_id).await?).map(str::to_string)
                }
                None => None,
            };
            let owner = owner.unwrap_or_else(|| crate::store::ADMIN.to_string());
            (owner.clone(), owner)
        }
    };
    out["run_as_user_name"] = json!(run_as);
    out["creator_user_name"] = json!(creator);
    Ok(out)
}

/// `POST runs/submit`: a run of tasks that are not a stored job, run as the caller.
pub async fn submit(
    state: Shared,
    Extension(caller): Extension<Caller>,
    Body(body): Body,
) -> ApiResult<Json<Value>> {
    let mut takes = vec!["run_name", "tasks", "timeout_seconds", "idempotency_token"];
    takes.extend(SUBMIT_SETTINGS);
    let b: SubmitBody = proto::parse(&body, &takes)?;
    let mut doc = json!({
        "name": b.run_name.clone().filter(|n| !n.is_empty()).unwrap_or_else(|| "Untitled".into()),
        "timeout_seconds": b.timeout_seconds.unwrap_or(0),
        "tasks": b.tasks,
    });
    for (field, value) in SUBMIT_SETTINGS.iter().zip([
        b.email_notifications,
        b.webhook_notifications,
        b.notification_settings,
        b.health,
        b.queue,
    ]) {
        if let Some(v) = value.filter(|v| !v.is_null()) {
            doc[*field] = v;
        }
    }
    let text = serde_json::to_string_pretty(&doc).map_err(|e| ApiError::internal(e.to_string()))?;
    let settings: JobSettings = spec::settings_from_json("submitted run", &text, "")?;
    super::jobs::check_references(&state, &settings, "").await?;
    let created = state.engine.submit(settings, b.idempotency_token).await?;
    if created.created {
        state
            .engine
            .store()
            .put_run_identity(created.run_id, &caller.name, &caller.name)
            .await?;
    }
    Ok(Json(json!({"run_id": created.run_id})))
}

/// `?...` of `runs/get`.
#[derive(Deserialize)]
pub struct GetQuery {
    run_id: RunId,
    /// Pages of a run's arrays: Weir returns every task on the first page.
    #[serde(default)]
    page_token: Option<String>,
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

/// `GET runs/get`: a job run, or a task run by its own id (needs `CAN_VIEW`).
pub async fn get(
    state: Shared,
    Extension(caller): Extension<Caller>,
    ApiQuery(q): ApiQuery<GetQuery>,
) -> ApiResult<Json<Value>> {
    if let Some(t) = q.page_token.as_deref().filter(|t| !t.is_empty()) {
        return Err(ApiError::invalid(format!(
            "page_token {t:?} is not a token this API issued (runs/get returns every task at once)"
        )));
    }
    let (snap, task) = find_for(&state, &caller, q.run_id, PermissionLevel::CanView).await?;
    let out = render_found(&snap, task, view(&q));
    Ok(Json(with_identity(&state, &snap, out).await?))
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
pub async fn wait(
    state: Shared,
    Extension(caller): Extension<Caller>,
    ApiQuery(q): ApiQuery<WaitQuery>,
) -> ApiResult<Json<Value>> {
    find_for(&state, &caller, q.run_id, PermissionLevel::CanView).await?;
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
    #[serde(default)]
    run_type: Option<String>,
}

/// `GET runs/list`: newest first, the runs the caller may view.
pub async fn list(
    state: Shared,
    Extension(caller): Extension<Caller>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<Json<Value>> {
    // As in the Jobs API, a limit of 0 means the largest page.
    let limit = match q.limit.unwrap_or(25) {
        0 => 1000,
        n => n,
    };
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
    let run_type = match q.run_type.as_deref().filter(|t| !t.is_empty()) {
        None => None,
        Some(t) => Some(RunKind::parse(t).ok_or_else(|| {
            ApiError::invalid(format!(
                "run_type {t:?} is not one of JOB_RUN, WORKFLOW_RUN, SUBMIT_RUN"
            ))
        })?),
    };
    let filter = RunFilter {
        job_id: q.job_id,
        active_only,
        completed_only,
        start_time_from: q.start_time_from,
        start_time_to: q.start_time_to,
        offset,
        limit,
        run_type,
        visible_to: None,
    };
    let store = state.engine.store();
    let mut filter = filter;
    if !caller.is_admin() {
        if let Some(job_id) = q.job_id
            && store.get_job(job_id).await?.is_some()
        {
            permissions::require_job(&state, &caller, job_id, PermissionLevel::CanView).await?;
        }
        filter.visible_to = Some(RunVisibility {
            job_ids: store.jobs_visible_to(&caller.identities()).await?,
            principals: caller.identities(),
        });
    }
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
        let rendered = render::run(&snap, view);
        out.push(with_identity(&state, &snap, rendered).await?);
    }
    let mut body = json!({"runs": out, "has_more": has_more});
    if has_more {
        body["next_page_token"] = json!((offset + limit).to_string());
    }
    if offset > 0 {
        body["prev_page_token"] = json!(offset.saturating_sub(limit).to_string());
    }
    Ok(Json(body))
}

/// Body with a run id.
#[derive(Deserialize)]
struct RunIdBody {
    #[serde(deserialize_with = "proto::int64")]
    run_id: RunId,
}

impl RunIdBody {
    fn parse(body: &axum::body::Bytes) -> ApiResult<RunId> {
        let b: RunIdBody = proto::parse(body, &["run_id"])?;
        Ok(b.run_id)
    }
}

/// `POST runs/cancel` (needs `CAN_MANAGE_RUN`).
pub async fn cancel(
    state: Shared,
    Extension(caller): Extension<Caller>,
    Body(body): Body,
) -> ApiResult<Json<Value>> {
    let run_id = RunIdBody::parse(&body)?;
    find_for(&state, &caller, run_id, PermissionLevel::CanManageRun).await?;
    state.engine.cancel(run_id).await?;
    Ok(Json(json!({})))
}

/// Body of `runs/cancel-all`.
#[derive(Deserialize)]
struct CancelAllBody {
    #[serde(default, deserialize_with = "proto::opt_int64")]
    job_id: Option<JobId>,
}

/// `POST runs/cancel-all`: every active and queued run of a job (needs `CAN_MANAGE_RUN`).
pub async fn cancel_all(
    state: Shared,
    Extension(caller): Extension<Caller>,
    Body(body): Body,
) -> ApiResult<Json<Value>> {
    // Weir cancels a job's queued runs with its active ones: `all_queued_runs` is what it does.
    let b: CancelAllBody = proto::parse(&body, &["job_id", "all_queued_runs"])?;
    let Some(job_id) = b.job_id else {
        return Err(ApiError::invalid(
            "job_id: required; Weir cancels the active and queued runs of one job at a time",
        ));
    };
    permissions::require_job(&state, &caller, job_id, PermissionLevel::CanManageRun).await?;
    state.engine.cancel_all(job_id).await?;
    Ok(Json(json!({})))
}

/// Body of `runs/repair`.
#[derive(Deserialize)]
struct RepairBody {
    #[serde(deserialize_with = "proto::int64")]
    run_id: RunId,
    #[serde(default, deserialize_with = "proto::list")]
    rerun_tasks: Vec<String>,
    #[serde(default, deserialize_with = "proto::opt_bool")]
    rerun_all_failed_tasks: bool,
    #[serde(default, deserialize_with = "proto::opt_bool")]
    rerun_dependent_tasks: bool,
    #[serde(default, deserialize_with = "proto::opt_int64")]
    latest_repair_id: Option<i64>,
    #[serde(default, deserialize_with = "string_map")]
    job_parameters: BTreeMap<String, String>,
}

/// `POST runs/repair` (needs `CAN_MANAGE_RUN`).
pub async fn repair(
    state: Shared,
    Extension(caller): Extension<Caller>,
    Body(body): Body,
) -> ApiResult<Json<Value>> {
    let b: RepairBody = proto::parse(
        &body,
        &[
            "run_id",
            "rerun_tasks",
            "rerun_all_failed_tasks",
            "rerun_dependent_tasks",
            "latest_repair_id",
            "job_parameters",
        ],
    )?;
    find_for(&state, &caller, b.run_id, PermissionLevel::CanManageRun).await?;
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
    Extension(caller): Extension<Caller>,
    ApiQuery(q): ApiQuery<OutputQuery>,
) -> ApiResult<Json<Value>> {
    let (snap, task) = find_for(&state, &caller, q.run_id, PermissionLevel::CanView).await?;
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

/// `POST runs/delete`: a finished run and its task runs (needs `CAN_MANAGE_RUN`).
pub async fn delete(
    state: Shared,
    Extension(caller): Extension<Caller>,
    Body(body): Body,
) -> ApiResult<Json<Value>> {
    let run_id = RunIdBody::parse(&body)?;
    find_for(&state, &caller, run_id, PermissionLevel::CanManageRun).await?;
    state.engine.store().delete_run(run_id).await?;
    Ok(Json(json!({})))
}
