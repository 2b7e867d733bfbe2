//! `schedule` (a Quartz cron expression in a time zone) and `trigger.periodic` (every
//! `interval` `unit`s): a run per fire time, on the second.
//!
//! - The watch sleeps on the engine's clock until the next fire time, then fires it through
//!   [`TriggerContext::fire`] with the idempotency key `weir:<kind>:<job>:<fire_ms>` (kind
//!   `schedule` or `periodic`) and commits the fire time in the run's transaction
//!   ([`TriggerState::last_fire_time`] and the cursor `{"last_fire_time": ms}`). So a fire time
//!   yields one run however many nodes or restarts see it.
//! - Fire times count from the later of the last fire time and the arming time (deploy,
//!   redeploy with new trigger settings, resume): a new or changed schedule starts from its
//!   next fire time, a resumed one skips what passed while it was paused.
//! - Fire times missed while the node was down (or stalled past a fire time) give one run: the
//!   latest missed fire time, marked `catch_up: true` in its payload. Never a flood.
//! - `trigger.periodic` fires at `armed_time + k × interval` (k = 1, 2, ...): a fixed grid,
//!   not "interval after the last run ended", and no wall-clock or DST adjustment.
//! - [`backfill`] replays fire times of a past range with the same keys.

pub mod backfill;
pub mod cron;

use super::{
    ScheduledFire, Trigger, TriggerContext, TriggerError, TriggerEvent, TriggerPayload, WatchedJob,
};
use crate::spec::{JobSettings, PeriodicUnit};
use crate::store::{JobId, Millis, TriggerCommit, TriggerKind, TriggerState};
use async_trait::async_trait;
use chrono_tz::Tz;
use cron::Cron;
use std::sync::Arc;

/// A fire time this long past (or more) when it is fired counts as a catch-up.
pub const CATCH_UP_AFTER_MS: Millis = 5_000;

/// When a job's schedule or interval fires.
#[derive(Debug, Clone)]
pub enum FirePlan {
    /// A Quartz cron expression in a time zone.
    Cron {
        /// The expression.
        cron: Box<Cron>,
        /// Its time zone.
        tz: Tz,
    },
    /// Every `interval` milliseconds from `anchor`.
    Every {
        /// A fire time of the grid (the arming time).
        anchor: Millis,
        /// The interval, at least 1 ms.
        interval: Millis,
    },
}

/// Parses an IANA time zone name (`Europe/Paris`, `UTC`).
pub fn time_zone(name: &str) -> Result<Tz, String> {
    name.parse::<Tz>().map_err(|_| {
        format!(
            "timezone_id {name:?} is not an IANA time zone: expected a name such as UTC, \
             Europe/Paris or America/New_York"
        )
    })
}

/// Milliseconds of a periodic interval; `None` when it overflows.
pub fn interval_ms(interval: u64, unit: PeriodicUnit) -> Option<Millis> {
    let unit_ms: u64 = match unit {
        PeriodicUnit::Seconds => 1_000,
        PeriodicUnit::Minutes => 60_000,
        PeriodicUnit::Hours => 3_600_000,
        PeriodicUnit::Days => 86_400_000,
        PeriodicUnit::Weeks => 7 * 86_400_000,
    };
    interval
        .checked_mul(unit_ms)
        .and_then(|ms| Millis::try_from(ms).ok())
        .filter(|ms| *ms > 0)
}

impl FirePlan {
    /// The plan of a job's `schedule` or `trigger.periodic` (periodic grids anchored at
    /// `anchor`); an error says what is wrong with the settings.
    pub fn of(settings: &JobSettings, anchor: Millis) -> Result<(TriggerKind, FirePlan), String> {
        if let Some(s) = &settings.schedule {
            let cron = Cron::parse(&s.quartz_cron_expression).map_err(|e| {
                format!("quartz_cron_expression {:?}: {e}", s.quartz_cron_expression)
            })?;
            let tz = time_zone(&s.timezone_id)?;
            return Ok((
                TriggerKind::Schedule,
                FirePlan::Cron {
                    cron: Box::new(cron),
                    tz,
                },
            ));
        }
        if let Some(p) = settings.trigger.as_ref().and_then(|t| t.periodic.as_ref()) {
            let interval = interval_ms(p.interval, p.unit)
                .ok_or_else(|| format!("periodic interval {} is out of range", p.interval))?;
            return Ok((TriggerKind::Periodic, FirePlan::Every { anchor, interval }));
        }
        Err("the job has neither a schedule nor a trigger.periodic".into())
    }

    /// The first fire time strictly after `after`, if any.
    pub fn next_after(&self, after: Millis) -> Option<Millis> {
        match self {
            FirePlan::Cron { cron, tz } => cron.next_after(tz, after),
            FirePlan::Every { anchor, interval } => {
                let k = (after - anchor).div_euclid(*interval) + 1;
                anchor.checked_add(k.checked_mul(*interval)?)
            }
        }
    }

    /// The latest fire time in `(after, until]`, if any.
    pub fn latest_in(&self, after: Millis, until: Millis) -> Option<Millis> {
        let first = self.next_after(after)?;
        if first > until {
            return None;
        }
        match self {
            FirePlan::Every { anchor, interval } => {
                let k = (until - anchor).div_euclid(*interval);
                Some(anchor + k * interval)
            }
            FirePlan::Cron { .. } => {
                // Look back from `until` in growing windows: the smallest window that holds a
                // fire time is walked forward, so a long outage costs a few steps, not one per
                // missed fire time.
                const WINDOWS: [Millis; 12] = [
                    1_000,
                    10_000,
                    60_000,
                    600_000,
                    3_600_000,
                    6 * 3_600_000,
                    86_400_000,
                    7 * 86_400_000,
                    32 * 86_400_000,
                    93 * 86_400_000,
                    367 * 86_400_000,
                    5 * 367 * 86_400_000,
                ];
                let mut from = first;
                for w in WINDOWS {
                    let start = (until - w).max(after);
                    if let Some(t) = self.next_after(start)
                        && t <= until
                    {
                        from = t;
                        break;
                    }
                }
                let mut latest = from;
                while let Some(t) = self.next_after(latest) {
                    if t > until {
                        break;
                    }
                    latest = t;
                }
                Some(latest)
            }
        }
    }

    /// The fire times in `[from, to]`, at most `limit` of them; `Err(limit + 1)` when there
    /// are more.
    pub fn between(&self, from: Millis, to: Millis, limit: usize) -> Result<Vec<Millis>, usize> {
        let mut out = Vec::new();
        let mut at = from - 1;
        while let Some(t) = self.next_after(at) {
            if t > to {
                break;
            }
            if out.len() == limit {
                return Err(limit + 1);
            }
            out.push(t);
            at = t;
        }
        Ok(out)
    }
}

/// The idempotency key of a fire time: `weir:schedule:<job>:<fire_ms>` or
/// `weir:periodic:<job>:<fire_ms>`. Do not change: live fires and backfills share it.
pub fn fire_key(kind: TriggerKind, job_id: JobId, fire_time: Millis) -> String {
    format!("weir:{}:{job_id}:{fire_time}", kind.as_str())
}

/// The payload of a fire time.
pub fn payload(kind: TriggerKind, fire: ScheduledFire) -> TriggerPayload {
    if kind == TriggerKind::Periodic {
        TriggerPayload::Periodic(fire)
    } else {
        TriggerPayload::Schedule(fire)
    }
}

/// The last fire time a trigger state records (its cursor, else `last_fire_time`).
fn last_fired(state: &TriggerState) -> Option<Millis> {
    state
        .cursor
        .get("last_fire_time")
        .and_then(|v| v.as_i64())
        .or(state.last_fire_time)
}

/// The `schedule` or the `trigger.periodic` kind.
pub struct ScheduleKind {
    kind: TriggerKind,
}

impl ScheduleKind {
    /// The `schedule` trigger (Quartz cron).
    pub fn cron() -> ScheduleKind {
        ScheduleKind {
            kind: TriggerKind::Schedule,
        }
    }

    /// The `trigger.periodic` trigger.
    pub fn periodic() -> ScheduleKind {
        ScheduleKind {
            kind: TriggerKind::Periodic,
        }
    }
}

#[async_trait]
impl Trigger for ScheduleKind {
    fn kind(&self) -> TriggerKind {
        self.kind
    }

    async fn watch(
        self: Arc<Self>,
        job: WatchedJob,
        ctx: TriggerContext,
    ) -> Result<(), TriggerError> {
        let job_id = job.job_id;
        let mut state = job.state.clone();
        let (kind, plan) = FirePlan::of(&job.settings, state.armed_time)
            .map_err(|message| TriggerError::Settings { job_id, message })?;
        if kind != self.kind {
            return Err(TriggerError::Settings {
                job_id,
                message: format!("the job's trigger is a {kind}, not a {}", self.kind),
            });
        }
        let mut last = last_fired(&state).map_or(state.armed_time, |t| t.max(state.armed_time));
        loop {
            let now = ctx.now();
            let next = plan.next_after(last);
            if next.is_none_or(|n| n > now) {
                if state.next_fire_time != next || state.last_error.is_some() {
                    state.next_fire_time = next;
                    state.last_error = None;
                    state.last_error_time = None;
                    state.updated_time = now;
                    ctx.save_state(&state).await?;
                }
                let Some(next) = next else {
                    tracing::info!(
                        job.id = job_id,
                        "weir.trigger.schedule: the schedule has no fire time left"
                    );
                    return Ok(());
                };
                ctx.clock().sleep_until(next).await;
                continue;
            }
            let next = next.expect("a fire time at or before now");
            let fire_time = plan.latest_in(last, now).unwrap_or(next);
            let catch_up = fire_time != next || now - fire_time >= CATCH_UP_AFTER_MS;
            state = fire(&ctx, self.kind, job_id, &plan, state, fire_time, catch_up).await?;
            last = fire_time;
        }
    }
}

/// Records the run of one fire time, with the trigger's new state in its transaction.
async fn fire(
    ctx: &TriggerContext,
    kind: TriggerKind,
    job_id: JobId,
    plan: &FirePlan,
    state: TriggerState,
    fire_time: Millis,
    catch_up: bool,
) -> Result<TriggerState, TriggerError> {
    let mut next = state;
    next.cursor = serde_json::json!({ "last_fire_time": fire_time });
    next.last_fire_time = Some(fire_time);
    next.next_fire_time = plan.next_after(fire_time);
    next.last_error = None;
    next.last_error_time = None;
    next.updated_time = ctx.now();
    let created = ctx
        .fire(TriggerEvent {
            job_id,
            payload: payload(
                kind,
                ScheduledFire {
                    time: fire_time,
                    catch_up,
                    backfill: false,
                },
            ),
            idempotency_key: fire_key(kind, job_id, fire_time),
            job_parameters: Default::default(),
            commit: TriggerCommit {
                state: Some(next.clone()),
                seen: Vec::new(),
            },
        })
        .await?;
    tracing::info!(
        job.id = job_id,
        run.id = created.run_id,
        fire_time,
        catch_up,
        created = created.created,
        lateness_ms = ctx.now() - fire_time,
        "weir.trigger.{kind}.fire"
    );
    next.last_run_id = Some(created.run_id);
    // Best effort: `last_run_id` is for display; the run and the fire time are committed.
    if let Err(e) = ctx.save_state(&next).await {
        tracing::warn!(job.id = job_id, error = %e.chain(), "weir.trigger.schedule: cannot record the last run id");
    }
    Ok(next)
}

#[cfg(test)]
mod tests;
