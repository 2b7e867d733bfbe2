//! `{{dynamic value references}}`: parsing and rendering.
//!
//! A template is text with `{{ reference }}` segments. References are Lakeflow's set (see
//! [`Reference`]); anything else is an error at deploy time, never a blank at run time.

use std::fmt;

/// An argument of `{{job.start_time.<arg>}}` and `{{job.trigger.time.<arg>}}` (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TimeArg {
    /// `2026-11-22`
    IsoDate,
    /// `2026-11-22T06:47:37Z`
    IsoDatetime,
    /// Milliseconds since the epoch.
    TimestampMs,
    /// `2026`
    Year,
    /// `11`
    Month,
    /// `22`
    Day,
    /// `6`
    Hour,
    /// `47`
    Minute,
    /// `37`
    Second,
    /// `true` Monday to Friday.
    IsWeekday,
}

impl TimeArg {
    const ALL: [(&'static str, TimeArg); 10] = [
        ("iso_date", TimeArg::IsoDate),
        ("iso_datetime", TimeArg::IsoDatetime),
        ("timestamp_ms", TimeArg::TimestampMs),
        ("year", TimeArg::Year),
        ("month", TimeArg::Month),
        ("day", TimeArg::Day),
        ("hour", TimeArg::Hour),
        ("minute", TimeArg::Minute),
        ("second", TimeArg::Second),
        ("is_weekday", TimeArg::IsWeekday),
    ];

    fn parse(s: &str) -> Option<TimeArg> {
        Self::ALL.iter().find(|(n, _)| *n == s).map(|(_, a)| *a)
    }

    fn expected() -> String {
        Self::ALL
            .iter()
            .map(|(n, _)| *n)
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Formats a time (ms since the epoch, UTC) for this argument.
    pub fn render(self, ms: i64) -> String {
        use chrono::{Datelike, Timelike};
        let t = chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default();
        match self {
            TimeArg::IsoDate => t.format("%Y-%m-%d").to_string(),
            TimeArg::IsoDatetime => t.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            TimeArg::TimestampMs => ms.to_string(),
            TimeArg::Year => t.year().to_string(),
            TimeArg::Month => t.month().to_string(),
            TimeArg::Day => t.day().to_string(),
            TimeArg::Hour => t.hour().to_string(),
            TimeArg::Minute => t.minute().to_string(),
            TimeArg::Second => t.second().to_string(),
            TimeArg::IsWeekday => (t.weekday().number_from_monday() <= 5).to_string(),
        }
    }
}

/// One dynamic value reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Reference {
    /// `{{job.id}}`
    JobId,
    /// `{{job.name}}`
    JobName,
    /// `{{job.run_id}}`
    JobRunId,
    /// `{{job.repair_count}}`
    JobRepairCount,
    /// `{{job.start_time.<arg>}}`
    JobStartTime(TimeArg),
    /// `{{job.trigger.type}}`
    JobTriggerType,
    /// `{{job.trigger.time.<arg>}}`
    JobTriggerTime(TimeArg),
    /// `{{job.trigger.file_arrival.location}}`
    FileArrivalLocation,
    /// `{{job.trigger.table_update.updated_tables}}`
    UpdatedTables,
    /// `{{job.parameters.<name>}}`
    JobParameter(String),
    /// `{{task.name}}`
    TaskName,
    /// `{{task.run_id}}`
    TaskRunId,
    /// `{{task.execution_count}}`
    TaskExecutionCount,
    /// `{{tasks.<key>.run_id}}`
    UpstreamRunId(String),
    /// `{{tasks.<key>.result_state}}`
    UpstreamResultState(String),
    /// `{{tasks.<key>.values.<name>}}`
    UpstreamValue(String, String),
    /// `{{input}}` or `{{input.<field>...}}` inside a for-each task.
    Input(Vec<String>),
}

impl Reference {
    /// Parses the text between the braces (already trimmed).
    pub fn parse(s: &str) -> Result<Reference, String> {
        let parts: Vec<&str> = s.split('.').collect();
        let unknown = || format!("unknown reference {{{{{s}}}}}");
        let time = |arg: Option<&&str>, what: &str| -> Result<TimeArg, String> {
            let arg = arg.ok_or_else(|| {
                format!(
                    "{{{{{s}}}}} needs an argument: {what}.<one of {}>",
                    TimeArg::expected()
                )
            })?;
            TimeArg::parse(arg).ok_or_else(|| {
                format!(
                    "unknown argument `{arg}` in {{{{{s}}}}}; expected one of {}",
                    TimeArg::expected()
                )
            })
        };
        let r = match parts.as_slice() {
            ["job", "id"] => Reference::JobId,
            ["job", "name"] => Reference::JobName,
            ["job", "run_id"] => Reference::JobRunId,
            ["job", "repair_count"] => Reference::JobRepairCount,
            ["job", "start_time", rest @ ..] if rest.len() <= 1 => {
                Reference::JobStartTime(time(rest.first(), "job.start_time")?)
            }
            ["job", "trigger", "type"] => Reference::JobTriggerType,
            ["job", "trigger", "time", rest @ ..] if rest.len() <= 1 => {
                Reference::JobTriggerTime(time(rest.first(), "job.trigger.time")?)
            }
            ["job", "trigger", "file_arrival", "location"] => Reference::FileArrivalLocation,
            ["job", "trigger", "table_update", "updated_tables"] => Reference::UpdatedTables,
            ["job", "parameters", name @ ..] if !name.is_empty() => {
                Reference::JobParameter(name.join("."))
            }
            ["task", "name"] => Reference::TaskName,
            ["task", "run_id"] => Reference::TaskRunId,
            ["task", "execution_count"] => Reference::TaskExecutionCount,
            ["tasks", key, "run_id"] => Reference::UpstreamRunId(key.to_string()),
            ["tasks", key, "result_state"] => Reference::UpstreamResultState(key.to_string()),
            ["tasks", key, "values", name @ ..] if !name.is_empty() => {
                Reference::UpstreamValue(key.to_string(), name.join("."))
            }
            ["input", path @ ..] => {
                if path.iter().any(|p| p.is_empty()) {
                    return Err(unknown());
                }
                Reference::Input(path.iter().map(|p| p.to_string()).collect())
            }
            _ => return Err(unknown()),
        };
        if parts.iter().any(|p| p.is_empty()) {
            return Err(unknown());
        }
        Ok(r)
    }

    /// The upstream task this reference reads, if any.
    pub fn upstream_task(&self) -> Option<&str> {
        match self {
            Reference::UpstreamRunId(k)
            | Reference::UpstreamResultState(k)
            | Reference::UpstreamValue(k, _) => Some(k),
            _ => None,
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let arg = |a: &TimeArg| {
            TimeArg::ALL
                .iter()
                .find(|(_, x)| x == a)
                .map(|(n, _)| *n)
                .unwrap_or_default()
        };
        match self {
            Reference::JobId => write!(f, "{{{{job.id}}}}"),
            Reference::JobName => write!(f, "{{{{job.name}}}}"),
            Reference::JobRunId => write!(f, "{{{{job.run_id}}}}"),
            Reference::JobRepairCount => write!(f, "{{{{job.repair_count}}}}"),
            Reference::JobStartTime(a) => write!(f, "{{{{job.start_time.{}}}}}", arg(a)),
            Reference::JobTriggerType => write!(f, "{{{{job.trigger.type}}}}"),
            Reference::JobTriggerTime(a) => write!(f, "{{{{job.trigger.time.{}}}}}", arg(a)),
            Reference::FileArrivalLocation => {
                write!(f, "{{{{job.trigger.file_arrival.location}}}}")
            }
            Reference::UpdatedTables => {
                write!(f, "{{{{job.trigger.table_update.updated_tables}}}}")
            }
            Reference::JobParameter(n) => write!(f, "{{{{job.parameters.{n}}}}}"),
            Reference::TaskName => write!(f, "{{{{task.name}}}}"),
            Reference::TaskRunId => write!(f, "{{{{task.run_id}}}}"),
            Reference::TaskExecutionCount => write!(f, "{{{{task.execution_count}}}}"),
            Reference::UpstreamRunId(k) => write!(f, "{{{{tasks.{k}.run_id}}}}"),
            Reference::UpstreamResultState(k) => write!(f, "{{{{tasks.{k}.result_state}}}}"),
            Reference::UpstreamValue(k, n) => write!(f, "{{{{tasks.{k}.values.{n}}}}}"),
            Reference::Input(path) if path.is_empty() => write!(f, "{{{{input}}}}"),
            Reference::Input(path) => write!(f, "{{{{input.{}}}}}", path.join(".")),
        }
    }
}

/// A piece of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    /// Literal text.
    Text(String),
    /// A reference to substitute.
    Ref(Reference),
}

/// A parsed template string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template(pub Vec<Segment>);

impl Template {
    /// Parses `text`, refusing unknown references and unclosed braces.
    pub fn parse(text: &str) -> Result<Template, String> {
        let mut segments = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find("{{") {
            if open > 0 {
                segments.push(Segment::Text(rest[..open].to_string()));
            }
            let after = &rest[open + 2..];
            let close = after
                .find("}}")
                .ok_or_else(|| format!("unclosed `{{{{` in {text:?}: expected `}}}}`"))?;
            segments.push(Segment::Ref(Reference::parse(after[..close].trim())?));
            rest = &after[close + 2..];
        }
        if !rest.is_empty() {
            segments.push(Segment::Text(rest.to_string()));
        }
        Ok(Template(segments))
    }

    /// The references the template uses.
    pub fn references(&self) -> impl Iterator<Item = &Reference> {
        self.0.iter().filter_map(|s| match s {
            Segment::Ref(r) => Some(r),
            Segment::Text(_) => None,
        })
    }

    /// Substitutes every reference with `resolve`'s answer.
    pub fn render(&self, mut resolve: impl FnMut(&Reference) -> String) -> String {
        let mut out = String::new();
        for s in &self.0 {
            match s {
                Segment::Text(t) => out.push_str(t),
                Segment::Ref(r) => out.push_str(&resolve(r)),
            }
        }
        out
    }
}

/// Parses and renders in one go; an invalid template renders as itself (validation at deploy
/// time refuses invalid templates, so this only matters for specs stored by older versions).
pub fn render(text: &str, resolve: impl FnMut(&Reference) -> String) -> String {
    if !text.contains("{{") {
        return text.to_string();
    }
    match Template::parse(text) {
        Ok(t) => t.render(resolve),
        Err(_) => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_reference_kind() {
        let cases = [
            ("job.id", Reference::JobId),
            ("job.run_id", Reference::JobRunId),
            (
                "job.start_time.iso_date",
                Reference::JobStartTime(TimeArg::IsoDate),
            ),
            (
                "job.trigger.time.is_weekday",
                Reference::JobTriggerTime(TimeArg::IsWeekday),
            ),
            ("job.trigger.type", Reference::JobTriggerType),
            (
                "job.parameters.region",
                Reference::JobParameter("region".into()),
            ),
            (
                "tasks.ingest.values.rows",
                Reference::UpstreamValue("ingest".into(), "rows".into()),
            ),
            (
                "tasks.ingest.result_state",
                Reference::UpstreamResultState("ingest".into()),
            ),
            ("input", Reference::Input(vec![])),
            (
                "input.file.name",
                Reference::Input(vec!["file".into(), "name".into()]),
            ),
        ];
        for (text, want) in cases {
            assert_eq!(Reference::parse(text).unwrap(), want, "{text}");
            assert_eq!(want.to_string(), format!("{{{{{text}}}}}"));
        }
    }

    #[test]
    fn refuses_unknown_references_with_the_reason() {
        assert!(
            Reference::parse("job.nope")
                .unwrap_err()
                .contains("unknown reference")
        );
        assert!(
            Reference::parse("job.start_time.week")
                .unwrap_err()
                .contains("iso_date")
        );
        assert!(
            Reference::parse("tasks.a.values")
                .unwrap_err()
                .contains("unknown")
        );
        assert!(Reference::parse("job..id").is_err());
        assert!(
            Template::parse("a {{job.id")
                .unwrap_err()
                .contains("unclosed")
        );
    }

    #[test]
    fn renders_templates() {
        let t = Template::parse("run-{{ job.run_id }}-{{task.name}}!").unwrap();
        let out = t.render(|r| match r {
            Reference::JobRunId => "7".into(),
            Reference::TaskName => "ingest".into(),
            _ => unreachable!(),
        });
        assert_eq!(out, "run-7-ingest!");
        assert_eq!(render("plain", |_| unreachable!()), "plain");
    }

    #[test]
    fn renders_time_arguments_in_utc() {
        let ms = 1_763_794_057_000; // 2025-11-22T06:47:37Z, a Saturday
        assert_eq!(TimeArg::IsoDate.render(ms), "2025-11-22");
        assert_eq!(TimeArg::IsoDatetime.render(ms), "2025-11-22T06:47:37Z");
        assert_eq!(TimeArg::Hour.render(ms), "6");
        assert_eq!(TimeArg::IsWeekday.render(ms), "false");
        assert_eq!(TimeArg::TimestampMs.render(ms), ms.to_string());
    }
}
