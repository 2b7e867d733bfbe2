//! `/api/2.2/jobs/*` for jobs: create, get, list, update, reset, delete, run-now; and Weir's
//! pause/resume.

use super::auth::Caller;
use super::error::{ApiError, ApiResult};
use super::permissions::{self, AclRequest};
use super::proto;
use super::{ApiQuery, Body, Shared, render};
use crate::engine::{RunOptions, RunRequest};
use crate::spec::{self, JobSettings, ModuleRef, PathPolicy, PauseStatus, TaskKind};
use crate::store::{AclEntry, JobId, JobRecord, Page, PermissionLevel};
use axum::Extension;
use axum::Json;
use axum::body::Bytes;
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// Checks what only the server can: modules exist in the registry, `run_job_task` jobs exist.
pub(crate) async fn check_references(
    state: &super::AppState,
    settings: &JobSettings,
    path_prefix: &str,
) -> ApiResult<()> {
    for (i, task) in settings.tasks.iter().enumerate() {
        let mut kinds = vec![(format!("{path_prefix}tasks[{i}]"), task)];
        if let Some(fe) = &task.for_each_task {
            kinds.push((
                format!("{path_prefix}tasks[{i}].for_each_task.task"),
                &fe.task,
            ));
        }
        for (path, t) in kinds {
            match t.kind() {
                Some(TaskKind::Wasm(w)) => {
                    for (m, mount) in w.mounts.iter().enumerate() {
                        let host = mount
                            .source
                            .strip_prefix("file://")
                            .unwrap_or(&mount.source);
                        state
                            .mount_policy
                            .check(std::path::Path::new(host))
                            .map_err(|e| {
                                ApiError::invalid(format!(
                                    "{path}.wasm_task.mounts[{m}].source: {e}"
                                ))
                            })?;
                    }
                    let reference = ModuleRef::parse(&w.module)
                        .map_err(|e| ApiError::invalid(format!("{path}.wasm_task.module: {e}")))?;
                    state
                        .engine
                        .registry()
                        .resolve(&reference)
                        .await
                        .map_err(|e| ApiError::invalid(format!("{path}.wasm_task.module: {e}")))?;
                }
                Some(TaskKind::RunJob(r)) => {
                    let store = state.engine.store();
                    let found = match (&r.job_id, &r.job_name) {
                        (Some(id), _) => store.get_job(*id).await?.is_some(),
                        (None, Some(name)) => store.find_job(name).await?.is_some(),
                        (None, None) => true,
                    };
                    if !found {
                        let what = r.job_id.map_or_else(
                            || format!("`{}`", r.job_name.clone().unwrap_or_default()),
                            |id| id.to_string(),
                        );
                        return Err(ApiError::invalid(format!(
                            "{path}.run_job_task: job {what} does not exist; create it first"
                        )));
                    }
                }
                _ => {}
            }
        }
    }
    if let Some(trigger) = &settings.trigger
        && let Some(file_arrival) = &trigger.file_arrival
        && trigger.pause_status != crate::spec::PauseStatus::Paused
    {
        crate::trigger::file_arrival::check_source(file_arrival, state.engine.s3_settings())
            .await
            .map_err(|e| {
                ApiError::invalid(format!("{path_prefix}trigger.file_arrival.url: {e}"))
            })?;
    }
    Ok(())
}

fn body_text(body: &Bytes) -> ApiResult<&str> {
    if body.is_empty() {
        return Err(ApiError::malformed("the request needs a JSON body"));
    }
    std::str::from_utf8(body).map_err(|_| ApiError::malformed("request body is not UTF-8"))
}

async fn load_job(state: &super::AppState, job_id: JobId) -> ApiResult<JobRecord> {
    state
        .engine
        .store()
        .get_job(job_id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("job {job_id} does not exist")))
}

async fn name_conflict(
    state: &super::AppState,
    settings: &JobSettings,
    job_id: Option<JobId>,
) -> ApiResult<()> {
    if let Some(other) = state.engine.store().find_job(&settings.name).await?
        && Some(other.job_id) != job_id
    {
        return Err(ApiError::conflict(format!(
            "a job named `{}` already exists (job_id {})",
            settings.name, other.job_id
        )));
    }
    Ok(())
}

/// Takes `access_control_list` and `run_as` out of a create request: the job's initial
/// permissions (the caller owns it unless the list names another owner), and a `run_as` that
/// must name that owner (runs run as the job's owner).
async fn take_access(
    state: &super::AppState,
    caller: &Caller,
    text: &str,
) -> ApiResult<(Option<String>, Vec<AclEntry>)> {
    let Ok(Value::Object(mut doc)) = serde_json::from_str::<Value>(text) else {
        // The spec parser reports what is wrong with the body.
        return Ok((None, permissions::initial_acl(state, caller, vec![]).await?));
    };
    let acl = doc.remove("access_control_list");
    let run_as = doc.remove("run_as");
    if acl.is_none() && run_as.is_none() {
        return Ok((None, permissions::initial_acl(state, caller, vec![]).await?));
    }
    let requested: Vec<AclRequest> = match acl {
        None | Some(Value::Null) => vec![],
        Some(v) => serde_path_to_error::deserialize(v).map_err(|e| {
            ApiError::invalid(format!(
                "access_control_list{}: {}",
                match e.path().to_string() {
                    p if p == "." => String::new(),
                    p => format!(".{p}"),
                },
                e.into_inner()
            ))
        })?,
    };
    let acl = permissions::initial_acl(state, caller, requested).await?;
    let owner = permissions::owner(&acl).unwrap_or_default().to_string();
    if let Some(run_as) = run_as.filter(|v| !v.is_null()) {
        let named = ["user_name", "service_principal_name"]
            .iter()
            .find_map(|k| run_as.get(*k).and_then(Value::as_str));
        if named != Some(owner.as_str()) {
            return Err(ApiError::invalid(format!(
                "run_as: runs run as the job's owner `{owner}`; name the owner in run_as, or make the principal the owner with IS_OWNER in access_control_list"
            )));
        }
    }
    let text = serde_json::to_string_pretty(&Value::Object(doc))
        .map_err(|e| ApiError::internal(e.to_string()))?;
    Ok((Some(text), acl))
}

/// `POST jobs/create`: the caller owns the new job.
pub async fn create(
    state: Shared,
    Extension(caller): Extension<Caller>,
    Body(body): Body,
) -> ApiResult<Json<Value>> {
    let original = body_text(&body)?;
    let (rewritten, acl) = take_access(&state, &caller, original).await?;
    let original = rewritten.as_deref().unwrap_or(original);
    let text = proto::settings_text(original, "")?;
    let settings = spec::settings_from_json("request body", &text, "")?;
    check_references(&state, &settings, "").await?;
    name_conflict(&state, &settings, None).await?;
    let store = state.engine.store();
    let job_id = store.create_job(&settings, state.engine.now()).await?;
    store.put_job_acl(job_id, &acl).await?;
    tracing::info!(job.id = job_id, job.name = %settings.name, "weir.api.jobs.create");
    Ok(Json(json!({"job_id": job_id})))
}

/// Sets the identities of a rendered job: its owner created it and its runs run as it.
async fn with_owner(state: &super::AppState, job_id: JobId, mut out: Value) -> ApiResult<Value> {
    let acl = state.engine.store().get_job_acl(job_id).await?;
    if let Some(owner) = permissions::owner(&acl) {
        out["creator_user_name"] = json!(owner);
        out["run_as_user_name"] = json!(owner);
    }
    Ok(out)
}

/// `?job_id=` of `jobs/get`.
#[derive(Deserialize)]
pub struct JobIdQuery {
    job_id: JobId,
    /// Pages of a job's arrays: Weir returns every task on the first page.
    #[serde(default)]
    page_token: Option<String>,
}

/// `GET jobs/get`.
pub async fn get(
    state: Shared,
    Extension(caller): Extension<Caller>,
    ApiQuery(q): ApiQuery<JobIdQuery>,
) -> ApiResult<Json<Value>> {
    let job = permissions::require_job(&state, &caller, q.job_id, PermissionLevel::CanView).await?;
    if let Some(t) = q.page_token.as_deref().filter(|t| !t.is_empty()) {
        return Err(ApiError::invalid(format!(
            "page_token {t:?} is not a token this API issued (jobs/get returns every task at once)"
        )));
    }
    let trigger = state.engine.store().get_trigger_state(job.job_id).await?;
    let mut out = render::job(&job, true);
    if let Some(t) = render::trigger_state(&job, trigger.as_ref()) {
        out["trigger_state"] = t;
    }
    Ok(Json(with_owner(&state, job.job_id, out).await?))
}

/// `?...` of `jobs/list`.
#[derive(Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    limit: Option<u64>,
    #[serde(default)]
    offset: Option<u64>,
    #[serde(default)]
    page_token: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    expand_tasks: Option<bool>,
}

/// The offset a page token or offset names.
pub(crate) fn page_start(offset: Option<u64>, token: Option<&str>) -> ApiResult<u64> {
    match token.filter(|t| !t.is_empty()) {
        Some(t) => t.parse().map_err(|_| {
            ApiError::invalid(format!("page_token {t:?} is not a token this API issued"))
        }),
        None => Ok(offset.unwrap_or(0)),
    }
}

/// The page of jobs `caller` may view: admins page in the store; others through the jobs
/// they have a permission on.
async fn visible_jobs(
    state: &super::AppState,
    caller: &Caller,
    page: Page,
    name: Option<&str>,
) -> ApiResult<(Vec<JobRecord>, bool)> {
    let store = state.engine.store();
    if caller.is_admin() {
        return Ok(store.list_jobs(page, name).await?);
    }
    let visible: std::collections::HashSet<JobId> = store
        .jobs_visible_to(&caller.identities())
        .await?
        .into_iter()
        .collect();
    let want = (page.offset + page.limit + 1) as usize;
    let mut found = Vec::new();
    let mut offset = 0;
    loop {
        let (jobs, more) = store
            .list_jobs(
                Page {
                    offset,
                    limit: 1000,
                },
                name,
            )
            .await?;
        offset += jobs.len() as u64;
        found.extend(jobs.into_iter().filter(|j| visible.contains(&j.job_id)));
        if !more || found.len() >= want {
            break;
        }
    }
    let has_more = found.len() > (page.offset + page.limit) as usize;
    let jobs = found
        .into_iter()
        .skip(page.offset as usize)
        .take(page.limit as usize)
        .collect();
    Ok((jobs, has_more))
}

/// `GET jobs/list`: the jobs the caller may view.
pub async fn list(
    state: Shared,
    Extension(caller): Extension<Caller>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<Json<Value>> {
    let limit = q.limit.unwrap_or(20);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::invalid(format!(
            "limit must be between 1 and 100, got {limit}"
        )));
    }
    let offset = page_start(q.offset, q.page_token.as_deref())?;
    let (jobs, has_more) =
        visible_jobs(&state, &caller, Page { offset, limit }, q.name.as_deref()).await?;
    let expand = q.expand_tasks.unwrap_or(false);
    let triggers: std::collections::HashMap<JobId, _> = state
        .engine
        .store()
        .list_trigger_states()
        .await?
        .into_iter()
        .map(|t| (t.job_id, t))
        .collect();
    let mut rendered: Vec<Value> = Vec::with_capacity(jobs.len());
    for j in &jobs {
        let mut out = render::job(j, expand);
        if let Some(t) = render::trigger_state(j, triggers.get(&j.job_id)) {
            out["trigger_state"] = t;
        }
        rendered.push(with_owner(&state, j.job_id, out).await?);
    }
    let mut out = json!({
        "jobs": rendered,
        "has_more": has_more,
    });
    if has_more {
        out["next_page_token"] = json!((offset + limit).to_string());
    }
    if offset > 0 {
        out["prev_page_token"] = json!(offset.saturating_sub(limit).to_string());
    }
    Ok(Json(out))
}

/// Body of `jobs/reset`.
#[derive(Deserialize)]
struct ResetBody {
    #[serde(deserialize_with = "proto::int64")]
    job_id: JobId,
    #[allow(dead_code)]
    new_settings: Value,
}

/// `POST jobs/reset`: replaces all settings (needs `CAN_MANAGE`).
pub async fn reset(
    state: Shared,
    Extension(caller): Extension<Caller>,
    Body(body): Body,
) -> ApiResult<Json<Value>> {
    let ResetBody { job_id, .. } = proto::parse(&body, &["job_id", "new_settings"])?;
    let text = proto::settings_text(body_text(&body)?, "new_settings")?;
    let settings = spec::settings_from_json("request body", &text, "new_settings")?;
    permissions::require_job(&state, &caller, job_id, PermissionLevel::CanManage).await?;
    check_references(&state, &settings, "new_settings.").await?;
    name_conflict(&state, &settings, Some(job_id)).await?;
    state.engine.store().update_job(job_id, &settings).await?;
    Ok(Json(json!({})))
}

/// Body of `jobs/update`.
#[derive(Deserialize)]
struct UpdateBody {
    #[serde(deserialize_with = "proto::int64")]
    job_id: JobId,
    #[serde(default)]
    new_settings: Option<serde_json::Map<String, Value>>,
    #[serde(default, deserialize_with = "proto::list")]
    fields_to_remove: Vec<String>,
}

/// Applies a partial update: top-level fields are replaced; `tasks` are merged by `task_key`;
/// `fields_to_remove` names top-level fields or `tasks/<task_key>`.
fn merge_update(
    current: &JobSettings,
    new: serde_json::Map<String, Value>,
    remove: &[String],
) -> ApiResult<Value> {
    let mut merged =
        serde_json::to_value(current).map_err(|e| ApiError::internal(e.to_string()))?;
    let obj = merged.as_object_mut().expect("settings are an object");
    for field in remove {
        if let Some(key) = field.strip_prefix("tasks/") {
            let tasks = obj
                .get_mut("tasks")
                .and_then(Value::as_array_mut)
                .expect("tasks");
            let before = tasks.len();
            tasks.retain(|t| t.get("task_key").and_then(Value::as_str) != Some(key));
            if tasks.len() == before {
                return Err(ApiError::invalid(format!(
                    "fields_to_remove: the job has no task `{key}`"
                )));
            }
        } else if field == "name" || field == "tasks" {
            return Err(ApiError::invalid(format!(
                "fields_to_remove: `{field}` cannot be removed"
            )));
        } else {
            obj.remove(field);
        }
    }
    for (k, v) in new {
        if k == "tasks" {
            let Value::Array(new_tasks) = v else {
                return Err(ApiError::invalid("new_settings.tasks must be a list"));
            };
            let tasks = obj
                .get_mut("tasks")
                .and_then(Value::as_array_mut)
                .expect("tasks");
            for t in new_tasks {
                let key = t.get("task_key").cloned();
                match tasks.iter_mut().find(|e| e.get("task_key") == key.as_ref()) {
                    Some(existing) => *existing = t,
                    None => tasks.push(t),
                }
            }
        } else {
            obj.insert(k, v);
        }
    }
    Ok(merged)
}

/// `POST jobs/update`: changes some settings (needs `CAN_MANAGE`).
pub async fn update(
    state: Shared,
    Extension(caller): Extension<Caller>,
    Body(body): Body,
) -> ApiResult<Json<Value>> {
    let u: UpdateBody = proto::parse(&body, &["job_id", "new_settings", "fields_to_remove"])?;
    let mut new_settings = u.new_settings.unwrap_or_default();
    proto::strip_settings(&mut new_settings, "new_settings.")?;
    let job =
        permissions::require_job(&state, &caller, u.job_id, PermissionLevel::CanManage).await?;
    let merged = merge_update(&job.settings, new_settings, &u.fields_to_remove)?;
    let text =
        serde_json::to_string_pretty(&merged).map_err(|e| ApiError::internal(e.to_string()))?;
    let source = format!("job {} settings after the update", u.job_id);
    let settings = spec::settings_from_json(&source, &text, "")?;
    check_references(&state, &settings, "").await?;
    name_conflict(&state, &settings, Some(u.job_id)).await?;
    state.engine.store().update_job(u.job_id, &settings).await?;
    Ok(Json(json!({})))
}

/// Body with a job id.
#[derive(Deserialize)]
struct JobIdBody {
    #[serde(deserialize_with = "proto::int64")]
    job_id: JobId,
}

impl JobIdBody {
    fn parse(body: &Bytes) -> ApiResult<JobId> {
        let b: JobIdBody = proto::parse(body, &["job_id"])?;
        Ok(b.job_id)
    }
}

/// `POST jobs/delete`: cancels the job's active runs and deletes it (its run history stays;
/// needs `CAN_MANAGE`).
pub async fn delete(
    state: Shared,
    Extension(caller): Extension<Caller>,
    Body(body): Body,
) -> ApiResult<Json<Value>> {
    let job_id = JobIdBody::parse(&body)?;
    permissions::require_job(&state, &caller, job_id, PermissionLevel::CanManage).await?;
    state.engine.cancel_all(job_id).await?;
    state.engine.store().delete_job(job_id).await?;
    Ok(Json(json!({})))
}

/// Body of `jobs/run-now`.
#[derive(Deserialize)]
struct RunNowBody {
    #[serde(deserialize_with = "proto::int64")]
    job_id: JobId,
    #[serde(default, deserialize_with = "string_map")]
    job_parameters: BTreeMap<String, String>,
    #[serde(default)]
    idempotency_token: Option<String>,
    #[serde(default, deserialize_with = "proto::list")]
    only: Vec<String>,
    #[serde(default)]
    queue: Option<QueueBody>,
}

/// `queue` of `run-now`: overrides the job's queueing for this run.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct QueueBody {
    enabled: bool,
}

const RUN_NOW_FIELDS: &[&str] = &[
    "job_id",
    "job_parameters",
    "idempotency_token",
    "only",
    "queue",
];

/// A map of parameter values; numbers and booleans are accepted as their text, `null` as no
/// map.
pub(crate) fn string_map<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<String, String>, D::Error> {
    let raw: BTreeMap<String, Value> = Option::deserialize(d)?.unwrap_or_default();
    raw.into_iter()
        .map(|(k, v)| match v {
            Value::String(s) => Ok((k, s)),
            Value::Number(n) => Ok((k, n.to_string())),
            Value::Bool(b) => Ok((k, b.to_string())),
            other => Err(serde::de::Error::custom(format!(
                "parameter `{k}` must be a string, number or boolean, got {other}"
            ))),
        })
        .collect()
}

/// `POST jobs/run-now` (needs `CAN_MANAGE_RUN`; the run runs as the job's owner).
pub async fn run_now(
    state: Shared,
    Extension(caller): Extension<Caller>,
    Body(body): Body,
) -> ApiResult<Json<Value>> {
    let b: RunNowBody = proto::parse(&body, RUN_NOW_FIELDS)?;
    permissions::require_job(&state, &caller, b.job_id, PermissionLevel::CanManageRun).await?;
    let acl = state.engine.store().get_job_acl(b.job_id).await?;
    let run_as = permissions::owner(&acl)
        .unwrap_or(caller.name.as_str())
        .to_string();
    if let Some(t) = &b.idempotency_token
        && (t.is_empty() || t.len() > 64)
    {
        return Err(ApiError::invalid(
            "idempotency_token must be 1 to 64 characters",
        ));
    }
    let created = state
        .engine
        .run_now_with(
            b.job_id,
            RunRequest {
                job_parameters: b.job_parameters,
                idempotency_token: b.idempotency_token,
            },
            RunOptions {
                only: b.only,
                queue_enabled: b.queue.map(|q| q.enabled),
            },
        )
        .await?;
    if created.created {
        state
            .engine
            .store()
            .put_run_identity(created.run_id, &run_as, &caller.name)
            .await?;
    }
    Ok(Json(
        json!({"run_id": created.run_id, "number_in_job": created.run_id}),
    ))
}

async fn set_pause(
    state: Shared,
    caller: Caller,
    body: Bytes,
    status: PauseStatus,
) -> ApiResult<Json<Value>> {
    let job_id = JobIdBody::parse(&body)?;
    let job = permissions::require_job(&state, &caller, job_id, PermissionLevel::CanManage).await?;
    let mut settings = job.settings;
    let mut found = false;
    if let Some(s) = settings.schedule.as_mut() {
        s.pause_status = status;
        found = true;
    }
    if let Some(t) = settings.trigger.as_mut() {
        t.pause_status = status;
        found = true;
    }
    if let Some(c) = settings.continuous.as_mut() {
        c.pause_status = status;
        found = true;
    }
    if !found {
        return Err(ApiError::invalid_state(format!(
            "job {job_id} has no schedule, trigger or continuous setting to pause or resume"
        )));
    }
    spec::validate_settings(&settings, PathPolicy::Server)?;
    state.engine.store().update_job(job_id, &settings).await?;
    Ok(Json(render::job(&load_job(&state, job_id).await?, true)))
}

/// `POST /api/weir/jobs/pause` (needs `CAN_MANAGE`).
pub async fn pause(
    state: Shared,
    Extension(caller): Extension<Caller>,
    Body(body): Body,
) -> ApiResult<Json<Value>> {
    set_pause(state, caller, body, PauseStatus::Paused).await
}

/// `POST /api/weir/jobs/resume` (needs `CAN_MANAGE`).
pub async fn resume(
    state: Shared,
    Extension(caller): Extension<Caller>,
    Body(body): Body,
) -> ApiResult<Json<Value>> {
    set_pause(state, caller, body, PauseStatus::Unpaused).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> JobSettings {
        serde_json::from_value(json!({
            "name": "j",
            "max_concurrent_runs": 2,
            "tasks": [
                {"task_key": "a", "wasm_task": {"module": "m"}},
                {"task_key": "b", "wasm_task": {"module": "m"}}
            ]
        }))
        .unwrap()
    }

    #[test]
    fn updates_replace_fields_and_merge_tasks_by_key() {
        let new = json!({
            "max_concurrent_runs": 5,
            "tasks": [{"task_key": "b", "wasm_task": {"module": "n"}}, {"task_key": "c", "wasm_task": {"module": "m"}}]
        });
        let merged = merge_update(
            &settings(),
            new.as_object().unwrap().clone(),
            &["tasks/a".into()],
        )
        .unwrap();
        assert_eq!(merged["max_concurrent_runs"], 5);
        let keys: Vec<&str> = merged["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["task_key"].as_str().unwrap())
            .collect();
        assert_eq!(keys, ["b", "c"]);
        assert_eq!(merged["tasks"][0]["wasm_task"]["module"], "n");
    }

    #[test]
    fn updates_refuse_removing_unknown_tasks_or_the_name() {
        let empty = serde_json::Map::new();
        assert!(
            merge_update(&settings(), empty.clone(), &["tasks/zzz".into()])
                .unwrap_err()
                .message
                .contains("zzz")
        );
        assert!(merge_update(&settings(), empty, &["name".into()]).is_err());
    }
}
