//! Backfill: one run per fire time of a job's schedule (or interval) in a past range.
//!
//! Each run is recorded through [`Engine::fire`] under the same idempotency key as a live fire
//! of that time (`weir:schedule:<job>:<fire_ms>`), so a backfill never duplicates a run the
//! schedule made, and a second identical backfill creates nothing. Runs are admitted or queued
//! under the job's `max_concurrent_runs` like any run. A paused schedule can be backfilled.

use super::{FirePlan, fire_key, payload};
use crate::engine::{Engine, EngineError};
use crate::store::{JobId, Millis, RunId, StoreError, TriggerCommit};
use crate::trigger::{ScheduledFire, TriggerEvent};
use tracing::Instrument;

/// Most runs one backfill creates; a larger range is refused before anything is created.
pub const MAX_BACKFILL_RUNS: usize = 1000;

/// Why a backfill was refused or stopped.
#[derive(Debug, thiserror::Error)]
pub enum BackfillError {
    /// No such job.
    #[error("job {job_id} does not exist")]
    NoJob {
        /// The job.
        job_id: JobId,
    },
    /// The job has no schedule or interval.
    #[error(
        "job {job_id} has no schedule or trigger.periodic: only jobs with fire times can be \
         backfilled"
    )]
    NotScheduled {
        /// The job.
        job_id: JobId,
    },
    /// `from` is after `to`.
    #[error("the range is reversed: --from {from} is after --to {to}")]
    Reversed {
        /// The start, as written back (ISO-8601).
        from: String,
        /// The end.
        to: String,
    },
    /// `to` is in the future.
    #[error(
        "--to {to} is in the future (now is {now}): a backfill replays past fire times; the \
         schedule fires the future ones"
    )]
    Future {
        /// The end.
        to: String,
        /// The node's time.
        now: String,
    },
    /// More fire times than [`MAX_BACKFILL_RUNS`].
    #[error(
        "job {job_id}: more than {limit} fire times between {from} and {to} (the most one \
         backfill creates): split the range"
    )]
    TooMany {
        /// The job.
        job_id: JobId,
        /// The limit.
        limit: usize,
        /// The start.
        from: String,
        /// The end.
        to: String,
    },
    /// The job's schedule cannot be evaluated.
    #[error("job {job_id}: {message}")]
    Settings {
        /// The job.
        job_id: JobId,
        /// What is wrong.
        message: String,
    },
    /// Recording a run failed (the runs before it are recorded; a retry completes the range).
    #[error("job {job_id}: cannot record the run of fire time {fire_time}")]
    Fire {
        /// The job.
        job_id: JobId,
        /// The fire time.
        fire_time: String,
        /// Why.
        #[source]
        source: EngineError,
    },
    /// The state store failed.
    #[error("job {job_id}: cannot read the job")]
    Store {
        /// The job.
        job_id: JobId,
        /// Why.
        #[source]
        source: StoreError,
    },
}

/// One fire time of a backfill and its run.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BackfillRun {
    /// The fire time (`{{job.trigger.time.*}}` of the run).
    pub fire_time: Millis,
    /// The run.
    pub run_id: RunId,
    /// False when the run already existed (a live fire, or an earlier backfill).
    pub created: bool,
}

/// Milliseconds as ISO-8601 UTC, for messages.
pub fn iso(ms: Millis) -> String {
    chrono::DateTime::from_timestamp_millis(ms).map_or_else(
        || ms.to_string(),
        |t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
    )
}

/// Parses a backfill bound: milliseconds since the epoch (`1704067200000`), an ISO-8601 time
/// with an offset (`2024-01-01T00:00:00Z`, `2024-01-01T01:00:00+01:00`), one without (UTC:
/// `2024-01-01T00:00:00`, `2024-01-01 00:00`), or a date (UTC midnight: `2024-01-01`).
pub fn parse_time(text: &str) -> Result<Millis, String> {
    let t = text.trim();
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        return t
            .parse::<Millis>()
            .map_err(|_| format!("time {text:?} is out of range"));
    }
    if let Ok(dt) = chrono::DateTime::parse_from_rfc3339(t) {
        return Ok(dt.timestamp_millis());
    }
    for format in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M",
    ] {
        if let Ok(naive) = chrono::NaiveDateTime::parse_from_str(t, format) {
            return Ok(naive.and_utc().timestamp_millis());
        }
    }
    if let Ok(date) = chrono::NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        return Ok(date
            .and_time(chrono::NaiveTime::MIN)
            .and_utc()
            .timestamp_millis());
    }
    Err(format!(
        "time {text:?} is neither ISO-8601 (2024-01-01T00:00:00Z, 2024-01-01) nor milliseconds \
         since the epoch"
    ))
}

/// Creates one run per fire time of the job's schedule in `[from, to]` (milliseconds, both
/// included), in fire-time order; refuses reversed or future ranges and more than
/// [`MAX_BACKFILL_RUNS`] fire times, changing nothing.
pub async fn backfill(
    engine: &Engine,
    job_id: JobId,
    from: Millis,
    to: Millis,
) -> Result<Vec<BackfillRun>, BackfillError> {
    let span = tracing::info_span!("weir.trigger.backfill", job.id = job_id);
    record(engine, job_id, from, to).instrument(span).await
}

async fn record(
    engine: &Engine,
    job_id: JobId,
    from: Millis,
    to: Millis,
) -> Result<Vec<BackfillRun>, BackfillError> {
    if from > to {
        return Err(BackfillError::Reversed {
            from: iso(from),
            to: iso(to),
        });
    }
    let now = engine.now();
    if to > now {
        return Err(BackfillError::Future {
            to: iso(to),
            now: iso(now),
        });
    }
    let store_error = |source| BackfillError::Store { job_id, source };
    let job = engine
        .store()
        .get_job(job_id)
        .await
        .map_err(store_error)?
        .ok_or(BackfillError::NoJob { job_id })?;
    let state = engine
        .store()
        .get_trigger_state(job_id)
        .await
        .map_err(store_error)?;
    let scheduled = job.settings.schedule.is_some()
        || job
            .settings
            .trigger
            .as_ref()
            .is_some_and(|t| t.periodic.is_some());
    if !scheduled {
        return Err(BackfillError::NotScheduled { job_id });
    }
    // An interval's grid is anchored where its trigger was armed (its deploy time otherwise).
    let anchor = state.map_or(job.created_time, |s| s.armed_time);
    let (kind, plan) = FirePlan::of(&job.settings, anchor)
        .map_err(|message| BackfillError::Settings { job_id, message })?;
    let times = plan
        .between(from, to, MAX_BACKFILL_RUNS)
        .map_err(|_| BackfillError::TooMany {
            job_id,
            limit: MAX_BACKFILL_RUNS,
            from: iso(from),
            to: iso(to),
        })?;
    let mut runs = Vec::with_capacity(times.len());
    for fire_time in times {
        let created = engine
            .fire(TriggerEvent {
                job_id,
                payload: payload(
                    kind,
                    ScheduledFire {
                        time: fire_time,
                        catch_up: false,
                        backfill: true,
                    },
                ),
                idempotency_key: fire_key(kind, job_id, fire_time),
                job_parameters: Default::default(),
                commit: TriggerCommit::default(),
            })
            .await
            .map_err(|source| BackfillError::Fire {
                job_id,
                fire_time: iso(fire_time),
                source,
            })?;
        runs.push(BackfillRun {
            fire_time,
            run_id: created.run_id,
            created: created.created,
        });
    }
    tracing::info!(
        runs = runs.len(),
        created = runs.iter().filter(|r| r.created).count(),
        "weir.trigger.backfill: recorded"
    );
    Ok(runs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_are_iso_8601_or_milliseconds() {
        let midnight = 1_704_067_200_000;
        for text in [
            "1704067200000",
            "2024-01-01T00:00:00Z",
            "2024-01-01T01:00:00+01:00",
            "2024-01-01T00:00:00.000Z",
            "2024-01-01T00:00:00",
            "2024-01-01 00:00",
            "2024-01-01",
        ] {
            assert_eq!(parse_time(text), Ok(midnight), "{text}");
        }
        assert_eq!(parse_time("2024-01-01T00:00:00.250Z"), Ok(midnight + 250));
        assert!(
            parse_time("yesterday")
                .unwrap_err()
                .contains("is neither ISO-8601")
        );
        assert_eq!(iso(midnight), "2024-01-01T00:00:00.000Z");
    }
}
