//! Weir's schedule additions: `POST /api/weir/jobs/backfill`.

use super::auth::Caller;
use super::error::{ApiError, ApiResult};
use super::permissions;
use super::{Body, Shared, proto};
use crate::store::PermissionLevel;
use crate::store::{JobId, Millis};
use crate::trigger::schedule::backfill::{self, BackfillError, MAX_BACKFILL_RUNS};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{Value, json};

/// A backfill bound: milliseconds or an ISO-8601 string.
#[derive(Deserialize)]
#[serde(untagged)]
enum Bound {
    Millis(Millis),
    Text(String),
}

impl Bound {
    fn millis(&self, field: &str) -> ApiResult<Millis> {
        match self {
            Bound::Millis(ms) => Ok(*ms),
            Bound::Text(t) => {
                backfill::parse_time(t).map_err(|e| ApiError::invalid(format!("{field}: {e}")))
            }
        }
    }
}

#[derive(Deserialize)]
struct BackfillBody {
    #[serde(deserialize_with = "proto::int64")]
    job_id: JobId,
    from: Bound,
    to: Bound,
}

/// `POST /api/weir/jobs/backfill` `{"job_id", "from", "to"}` (milliseconds or ISO-8601, both
/// included): one run per fire time of the job's schedule in the range, at most
/// [`MAX_BACKFILL_RUNS`]; answers `{"job_id", "runs": [{"run_id", "fire_time", "created"}],
/// "created": n}` (`created: false`: the run of that fire time already existed). Needs
/// `CAN_MANAGE_RUN` on the job.
pub async fn backfill(
    state: Shared,
    Extension(caller): Extension<Caller>,
    Body(body): Body,
) -> ApiResult<Json<Value>> {
    let b: BackfillBody = proto::parse(&body, &["job_id", "from", "to"])?;
    permissions::require_job(&state, &caller, b.job_id, PermissionLevel::CanManageRun).await?;
    let (from, to) = (b.from.millis("from")?, b.to.millis("to")?);
    let runs = backfill::backfill(&state.engine, b.job_id, from, to)
        .await
        .map_err(|e| match e {
            BackfillError::NoJob { .. } => ApiError::not_found(e.to_string()),
            BackfillError::NotScheduled { .. } => ApiError::invalid_state(e.to_string()),
            BackfillError::Fire { source, .. } => source.into(),
            BackfillError::Store { source, .. } => source.into(),
            BackfillError::Reversed { .. }
            | BackfillError::Future { .. }
            | BackfillError::TooMany { .. }
            | BackfillError::Settings { .. } => ApiError::invalid(e.to_string()),
        })?;
    let created = runs.iter().filter(|r| r.created).count();
    Ok(Json(json!({
        "job_id": b.job_id,
        "runs": runs,
        "created": created,
        "limit": MAX_BACKFILL_RUNS,
    })))
}
