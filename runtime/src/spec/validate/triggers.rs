//! Trigger settings (`schedule`, `trigger`, `continuous`) and notification destinations.

use super::Checker;
use crate::spec::location::FieldPath;
use crate::spec::{EmailNotifications, JobSettings, TriggerSettings, WebhookNotifications};
use crate::trigger::schedule::cron::Cron;
use crate::trigger::schedule::{interval_ms, time_zone};

/// Checks the job's trigger settings and job-level notifications.
pub(super) fn check(checker: &mut Checker<'_>, settings: &JobSettings, path: &FieldPath) {
    let set: Vec<&str> = [
        ("schedule", settings.schedule.is_some()),
        ("trigger", settings.trigger.is_some()),
        ("continuous", settings.continuous.is_some()),
    ]
    .into_iter()
    .filter(|(_, is_set)| *is_set)
    .map(|(name, _)| name)
    .collect();
    for extra in set.iter().skip(1) {
        checker.report(
            path.key(extra),
            format!(
                "a job has at most one of `schedule`, `trigger` and `continuous`, found `{}` and \
                 `{extra}`",
                set[0]
            ),
        );
    }
    if let Some(schedule) = &settings.schedule {
        let at = path.key("schedule");
        if schedule.quartz_cron_expression.trim().is_empty() {
            checker.report(
                at.key("quartz_cron_expression"),
                "quartz_cron_expression is empty: expected a Quartz cron expression such as \
                 \"0 */5 * * * ?\"",
            );
        } else if let Err(e) = Cron::parse(&schedule.quartz_cron_expression) {
            checker.report(
                at.key("quartz_cron_expression"),
                format!(
                    "bad Quartz cron expression {:?}: {e}",
                    schedule.quartz_cron_expression
                ),
            );
        }
        if let Err(e) = time_zone(&schedule.timezone_id) {
            checker.report(at.key("timezone_id"), e);
        }
    }
    if let Some(trigger) = &settings.trigger {
        check_trigger(checker, trigger, &path.key("trigger"));
    }
    check_notifications(
        checker,
        settings.email_notifications.as_ref(),
        settings.webhook_notifications.as_ref(),
        path,
    );
}

fn check_trigger(checker: &mut Checker<'_>, trigger: &TriggerSettings, path: &FieldPath) {
    let kinds: Vec<&str> = [
        ("file_arrival", trigger.file_arrival.is_some()),
        ("table_update", trigger.table_update.is_some()),
        ("periodic", trigger.periodic.is_some()),
    ]
    .into_iter()
    .filter(|(_, is_set)| *is_set)
    .map(|(name, _)| name)
    .collect();
    if kinds.len() != 1 {
        let found = if kinds.is_empty() {
            "none".to_string()
        } else {
            kinds.join(" and ")
        };
        checker.report(
            path.clone(),
            format!(
                "`trigger` needs exactly one of `file_arrival`, `table_update` and `periodic`, \
                 found {found}"
            ),
        );
    }
    if let Some(file_arrival) = &trigger.file_arrival
        && !valid_arrival_url(&file_arrival.url)
    {
        checker.report(
            path.key("file_arrival").key("url"),
            format!(
                "file_arrival url {:?} must be file:///abs/dir/ or s3://bucket/prefix/",
                file_arrival.url
            ),
        );
    }
    if let Some(file_arrival) = &trigger.file_arrival {
        let at = path.key("file_arrival");
        if let Some(glob) = &file_arrival.path_glob
            && let Err(e) = crate::trigger::file_arrival::filter::PathFilter::new(Some(glob))
        {
            checker.report(at.key("path_glob"), e.to_string());
        }
        if file_arrival.list_interval_seconds == Some(0) {
            checker.report(
                at.key("list_interval_seconds"),
                "list_interval_seconds is 0: expected at least 1 (or leave it out for the \
                 node's default)",
            );
        }
    }
    if let Some(table_update) = &trigger.table_update {
        let names = path.key("table_update").key("table_names");
        if table_update.table_names.is_empty() {
            checker.report(
                names.clone(),
                "table_update needs at least one table in `table_names`",
            );
        }
        for (i, name) in table_update.table_names.iter().enumerate() {
            let parts: Vec<&str> = name.split('.').collect();
            if parts.len() != 3 || parts.iter().any(|p| p.trim().is_empty()) {
                checker.report(
                    names.index(i),
                    format!("table name {name:?} must be catalog.schema.table"),
                );
            }
        }
    }
    if let Some(periodic) = &trigger.periodic
        && periodic.interval >= 1
        && interval_ms(periodic.interval, periodic.unit).is_none()
    {
        checker.report(
            path.key("periodic").key("interval"),
            format!(
                "interval {} is out of range: too large for its unit",
                periodic.interval
            ),
        );
    }
    if let Some(periodic) = &trigger.periodic
        && periodic.interval < 1
    {
        checker.report(
            path.key("periodic").key("interval"),
            format!(
                "interval {} is out of range: expected at least 1",
                periodic.interval
            ),
        );
    }
}

fn valid_arrival_url(url: &str) -> bool {
    if let Some(path) = url.strip_prefix("file://") {
        return path.starts_with('/');
    }
    url.strip_prefix("s3://")
        .and_then(|rest| rest.split('/').next())
        .is_some_and(|bucket| !bucket.is_empty())
}

/// Checks e-mail addresses and webhook URLs of a job or a task at `path`.
pub(super) fn check_notifications(
    checker: &mut Checker<'_>,
    emails: Option<&EmailNotifications>,
    webhooks: Option<&WebhookNotifications>,
    path: &FieldPath,
) {
    if let Some(emails) = emails {
        let at = path.key("email_notifications");
        if !emails.on_streaming_backlog_exceeded.is_empty() {
            checker.report(
                at.key("on_streaming_backlog_exceeded"),
                "on_streaming_backlog_exceeded is not supported: Weir has no streaming tasks \
                 (use on_failure or on_duration_warning_threshold_exceeded)"
                    .to_string(),
            );
        }
        for (event, addresses) in [
            ("on_start", &emails.on_start),
            ("on_success", &emails.on_success),
            ("on_failure", &emails.on_failure),
            (
                "on_duration_warning_threshold_exceeded",
                &emails.on_duration_warning_threshold_exceeded,
            ),
        ] {
            for (i, address) in addresses.iter().enumerate() {
                let (local, domain) = address.split_once('@').unwrap_or(("", ""));
                if local.trim().is_empty() || domain.trim().is_empty() {
                    checker.report(
                        at.key(event).index(i),
                        format!("e-mail address {address:?} must look like name@domain"),
                    );
                }
            }
        }
    }
    if let Some(webhooks) = webhooks {
        let at = path.key("webhook_notifications");
        if !webhooks.on_streaming_backlog_exceeded.is_empty() {
            checker.report(
                at.key("on_streaming_backlog_exceeded"),
                "on_streaming_backlog_exceeded is not supported: Weir has no streaming tasks \
                 (use on_failure or on_duration_warning_threshold_exceeded)"
                    .to_string(),
            );
        }
        for (event, hooks) in [
            ("on_start", &webhooks.on_start),
            ("on_success", &webhooks.on_success),
            ("on_failure", &webhooks.on_failure),
            (
                "on_duration_warning_threshold_exceeded",
                &webhooks.on_duration_warning_threshold_exceeded,
            ),
        ] {
            for (i, hook) in hooks.iter().enumerate() {
                let host = hook
                    .url
                    .strip_prefix("http://")
                    .or_else(|| hook.url.strip_prefix("https://"));
                if host.is_none_or(|h| h.is_empty() || h.starts_with('/')) {
                    checker.report(
                        at.key(event).index(i).key("url"),
                        format!(
                            "webhook url {:?} must be an http:// or https:// URL",
                            hook.url
                        ),
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_arrival_urls() {
        assert!(valid_arrival_url("file:///srv/landing/"));
        assert!(valid_arrival_url("s3://bucket/prefix/"));
        assert!(valid_arrival_url("s3://bucket"));
        assert!(!valid_arrival_url("s3:///prefix"));
        assert!(!valid_arrival_url("file://host/x"));
        assert!(!valid_arrival_url("/srv/landing"));
        assert!(!valid_arrival_url("gs://bucket/x"));
    }
}
