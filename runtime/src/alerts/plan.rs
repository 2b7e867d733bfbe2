//! Which alerts a run state change raises, by the Jobs API's rules. Pure: no I/O.
//!
//! - `on_start`: the run entered `RUNNING`.
//! - `on_success`: it ended `SUCCESS` (or `SUCCESS_WITH_FAILURES`: the run succeeded, a non-leaf
//!   task failed).
//! - `on_failure`: it ended `FAILED`, `TIMEDOUT` or `INTERNAL_ERROR`; also when it was
//!   `CANCELED` (unless `no_alert_for_canceled_runs`) or `SKIPPED` (unless
//!   `no_alert_for_skipped_runs`, in `notification_settings` or, deprecated,
//!   `email_notifications`).
//! - `on_duration_warning_threshold_exceeded`: a `RUN_DURATION_SECONDS` / `GREATER_THAN` health
//!   rule was broken while the run was still running (the planner watches the clock).

use crate::spec::{
    EmailNotifications, HealthMetric, HealthOperator, JobSettings, WebhookNotifications,
};
use crate::store::{AlertChannel, LifeCycleState, ResultState};
use serde::Serialize;

/// The events a job can be notified of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertEvent {
    /// The run started.
    OnStart,
    /// The run succeeded.
    OnSuccess,
    /// The run failed (or was canceled or skipped, unless filtered).
    OnFailure,
    /// The run is still running past its duration threshold.
    OnDurationWarningThresholdExceeded,
}

impl AlertEvent {
    /// The spec field name (`on_failure`).
    pub fn as_str(self) -> &'static str {
        match self {
            AlertEvent::OnStart => "on_start",
            AlertEvent::OnSuccess => "on_success",
            AlertEvent::OnFailure => "on_failure",
            AlertEvent::OnDurationWarningThresholdExceeded => {
                "on_duration_warning_threshold_exceeded"
            }
        }
    }

    /// The webhook `event_type` (`jobs.on_failure`), as Databricks sends it.
    pub fn event_type(self) -> String {
        format!("jobs.{}", self.as_str())
    }
}

/// The event a run state change raises for a job's settings, after its notification filters;
/// `None` when it raises none.
pub fn event_for(
    settings: &JobSettings,
    state: LifeCycleState,
    result: Option<ResultState>,
) -> Option<AlertEvent> {
    let filters = settings.notification_settings.clone().unwrap_or_default();
    let skipped_filtered = filters.no_alert_for_skipped_runs
        || settings
            .email_notifications
            .as_ref()
            .is_some_and(|e| e.no_alert_for_skipped_runs);
    match (state, result) {
        (LifeCycleState::Running, _) => Some(AlertEvent::OnStart),
        (LifeCycleState::InternalError, _) => Some(AlertEvent::OnFailure),
        (LifeCycleState::Skipped, _) => (!skipped_filtered).then_some(AlertEvent::OnFailure),
        (LifeCycleState::Terminated, Some(r)) if r.is_success() => Some(AlertEvent::OnSuccess),
        (LifeCycleState::Terminated, Some(ResultState::Canceled))
        | (LifeCycleState::Terminated, Some(ResultState::UpstreamCanceled)) => {
            (!filters.no_alert_for_canceled_runs).then_some(AlertEvent::OnFailure)
        }
        (LifeCycleState::Terminated, Some(ResultState::MaximumConcurrentRunsReached)) => {
            (!skipped_filtered).then_some(AlertEvent::OnFailure)
        }
        (LifeCycleState::Terminated, Some(_)) => Some(AlertEvent::OnFailure),
        _ => None,
    }
}

/// Where an event's alerts go: every e-mail address and webhook URL listed for it, each once.
pub fn destinations(
    emails: Option<&EmailNotifications>,
    webhooks: Option<&WebhookNotifications>,
    event: AlertEvent,
) -> Vec<(AlertChannel, String)> {
    let mut out: Vec<(AlertChannel, String)> = Vec::new();
    if let Some(e) = emails {
        let list = match event {
            AlertEvent::OnStart => &e.on_start,
            AlertEvent::OnSuccess => &e.on_success,
            AlertEvent::OnFailure => &e.on_failure,
            AlertEvent::OnDurationWarningThresholdExceeded => {
                &e.on_duration_warning_threshold_exceeded
            }
        };
        out.extend(
            list.iter()
                .map(|a| (AlertChannel::Email, a.trim().to_string())),
        );
    }
    if let Some(w) = webhooks {
        let list = match event {
            AlertEvent::OnStart => &w.on_start,
            AlertEvent::OnSuccess => &w.on_success,
            AlertEvent::OnFailure => &w.on_failure,
            AlertEvent::OnDurationWarningThresholdExceeded => {
                &w.on_duration_warning_threshold_exceeded
            }
        };
        out.extend(list.iter().map(|h| (AlertChannel::Webhook, h.url.clone())));
    }
    let mut seen = std::collections::HashSet::new();
    out.retain(|d| seen.insert(d.clone()));
    out
}

/// The run duration, in seconds, past which a job's health rules warn: the smallest
/// `RUN_DURATION_SECONDS` `GREATER_THAN` value.
pub fn duration_threshold_seconds(settings: &JobSettings) -> Option<i64> {
    settings
        .health
        .as_ref()?
        .rules
        .iter()
        .filter(|r| {
            r.metric == HealthMetric::RunDurationSeconds && r.op == HealthOperator::GreaterThan
        })
        .map(|r| r.value.max(0))
        .min()
}

/// Whether a job has any alert destination at all (the planner skips loading runs otherwise).
pub fn has_destinations(settings: &JobSettings) -> bool {
    [
        AlertEvent::OnStart,
        AlertEvent::OnSuccess,
        AlertEvent::OnFailure,
        AlertEvent::OnDurationWarningThresholdExceeded,
    ]
    .into_iter()
    .any(|e| {
        !destinations(
            settings.email_notifications.as_ref(),
            settings.webhook_notifications.as_ref(),
            e,
        )
        .is_empty()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn settings(extra: serde_json::Value) -> JobSettings {
        let mut base =
            json!({"name": "j", "tasks": [{"task_key": "a", "wasm_task": {"module": "m"}}]});
        for (k, v) in extra.as_object().unwrap() {
            base[k] = v.clone();
        }
        serde_json::from_value(base).unwrap()
    }

    #[test]
    fn state_changes_map_to_events() {
        use LifeCycleState::*;
        let s = settings(json!({}));
        assert_eq!(event_for(&s, Running, None), Some(AlertEvent::OnStart));
        assert_eq!(event_for(&s, Pending, None), None);
        assert_eq!(event_for(&s, Queued, None), None);
        assert_eq!(
            event_for(&s, Terminated, Some(ResultState::Success)),
            Some(AlertEvent::OnSuccess)
        );
        assert_eq!(
            event_for(&s, Terminated, Some(ResultState::SuccessWithFailures)),
            Some(AlertEvent::OnSuccess)
        );
        for r in [
            ResultState::Failed,
            ResultState::Timedout,
            ResultState::Canceled,
        ] {
            assert_eq!(
                event_for(&s, Terminated, Some(r)),
                Some(AlertEvent::OnFailure)
            );
        }
        assert_eq!(
            event_for(&s, InternalError, None),
            Some(AlertEvent::OnFailure)
        );
        assert_eq!(
            event_for(&s, Skipped, Some(ResultState::MaximumConcurrentRunsReached)),
            Some(AlertEvent::OnFailure)
        );
    }

    #[test]
    fn notification_settings_filter_canceled_and_skipped_runs() {
        use LifeCycleState::*;
        let s = settings(json!({"notification_settings": {
            "no_alert_for_canceled_runs": true, "no_alert_for_skipped_runs": true}}));
        assert_eq!(event_for(&s, Terminated, Some(ResultState::Canceled)), None);
        assert_eq!(event_for(&s, Skipped, None), None);
        assert_eq!(
            event_for(&s, Terminated, Some(ResultState::Failed)),
            Some(AlertEvent::OnFailure)
        );
        let deprecated =
            settings(json!({"email_notifications": {"no_alert_for_skipped_runs": true}}));
        assert_eq!(event_for(&deprecated, Skipped, None), None);
        assert_eq!(
            event_for(&deprecated, Terminated, Some(ResultState::Canceled)),
            Some(AlertEvent::OnFailure)
        );
    }

    #[test]
    fn destinations_list_each_address_and_url_once() {
        let s = settings(json!({
            "email_notifications": {"on_failure": ["a@x.io", "b@x.io", "a@x.io"], "on_start": ["s@x.io"]},
            "webhook_notifications": {"on_failure": [{"url": "http://h/1"}]}
        }));
        let d = destinations(
            s.email_notifications.as_ref(),
            s.webhook_notifications.as_ref(),
            AlertEvent::OnFailure,
        );
        assert_eq!(
            d,
            vec![
                (AlertChannel::Email, "a@x.io".to_string()),
                (AlertChannel::Email, "b@x.io".to_string()),
                (AlertChannel::Webhook, "http://h/1".to_string()),
            ]
        );
        assert!(
            destinations(
                s.email_notifications.as_ref(),
                s.webhook_notifications.as_ref(),
                AlertEvent::OnSuccess
            )
            .is_empty()
        );
        assert!(has_destinations(&s));
        assert!(!has_destinations(&settings(json!({}))));
    }

    #[test]
    fn the_smallest_duration_rule_wins() {
        let s = settings(json!({"health": {"rules": [
            {"metric": "RUN_DURATION_SECONDS", "op": "GREATER_THAN", "value": 600},
            {"metric": "RUN_DURATION_SECONDS", "op": "GREATER_THAN", "value": 30}]}}));
        assert_eq!(duration_threshold_seconds(&s), Some(30));
        assert_eq!(duration_threshold_seconds(&settings(json!({}))), None);
    }
}
