//! `GET /api/weir/alerts`: the alerts Weir recorded, their destinations and delivery state.

use super::auth::Caller;
use super::error::{ApiError, ApiResult};
use super::permissions;
use super::{ApiQuery, Shared};
use crate::store::{AlertFilter, AlertRecord, AlertStatus, JobId, PermissionLevel, RunId};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// `?...` of `alerts`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    #[serde(default)]
    job_id: Option<JobId>,
    #[serde(default)]
    job_name: Option<String>,
    #[serde(default)]
    run_id: Option<RunId>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    limit: Option<u32>,
}

/// One alert as the API shows it.
pub fn render(a: &AlertRecord) -> Value {
    let mut v = json!({
        "alert_id": a.alert_id,
        "job_id": a.job_id,
        "job_name": a.payload["job"]["name"],
        "run_id": a.run_id,
        "event": a.event,
        "event_type": a.payload["event_type"],
        "channel": a.channel.as_str(),
        "destination": a.destination,
        "status": a.status.as_str(),
        "attempts": a.attempts,
        "last_error": a.last_error,
        "idempotency_key": a.payload["idempotency_key"],
        "created_time": a.created_time,
        "updated_time": a.updated_time,
    });
    if let Some(task) = &a.task_key {
        v["task_key"] = json!(task);
    }
    if a.status == AlertStatus::Pending {
        v["next_attempt_time"] = json!(a.next_attempt_time);
    }
    v
}

/// `GET /api/weir/alerts?job_id=|job_name=&run_id=&status=&limit=`, newest first: the alerts of
/// the jobs the caller may view (`CAN_VIEW` on a job it names).
pub async fn list(
    state: Shared,
    Extension(caller): Extension<Caller>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<Json<Value>> {
    let store = state.engine.store();
    let job_id = match (q.job_id, &q.job_name) {
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid("give job_id or job_name, not both"));
        }
        (Some(id), None) => Some(id),
        (None, Some(name)) => Some(
            store
                .find_job(name)
                .await?
                .ok_or_else(|| ApiError::not_found(format!("job {name:?} does not exist")))?
                .job_id,
        ),
        (None, None) => None,
    };
    if let Some(job_id) = job_id {
        permissions::require_job(&state, &caller, job_id, PermissionLevel::CanView).await?;
    }
    let status = match &q.status {
        None => None,
        Some(s) => Some(AlertStatus::parse(s).ok_or_else(|| {
            ApiError::invalid(format!(
                "status {s:?} is not one of PENDING, DELIVERED, FAILED"
            ))
        })?),
    };
    let alerts = store
        .list_alerts(&AlertFilter {
            job_id,
            run_id: q.run_id,
            status,
            limit: q.limit.unwrap_or(0),
        })
        .await?;
    // Like the job and run lists: a caller sees the alerts of the jobs it may view (one-time
    // runs' alerts, which have no job, only admins).
    let mut visible: BTreeMap<Option<JobId>, bool> = BTreeMap::new();
    let mut shown = Vec::with_capacity(alerts.len());
    for alert in &alerts {
        if !caller.is_admin() {
            let may_view = match visible.get(&alert.job_id) {
                Some(v) => *v,
                None => {
                    let v = match alert.job_id {
                        Some(id) => {
                            let acl = store.get_job_acl(id).await?;
                            permissions::level_in(&acl, &caller).is_some()
                        }
                        None => false,
                    };
                    visible.insert(alert.job_id, v);
                    v
                }
            };
            if !may_view {
                continue;
            }
        }
        shown.push(render(alert));
    }
    Ok(Json(json!({ "alerts": shown })))
}
