//! Text rendering of API objects for the terminal.

use serde_json::Value;
use std::fmt::Write as _;

/// `1.2s`, `340ms`, `2m05s`.
pub fn duration(ms: i64) -> String {
    match ms {
        ms if ms < 1000 => format!("{ms}ms"),
        ms if ms < 60_000 => format!("{:.1}s", ms as f64 / 1000.0),
        ms => format!("{}m{:02}s", ms / 60_000, (ms % 60_000) / 1000),
    }
}

/// `2026-11-22 07:01:02 UTC`, or `-` for 0.
pub fn time(ms: i64) -> String {
    if ms <= 0 {
        return "-".into();
    }
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|| "-".into())
}

/// `TERMINATED SUCCESS`, `RUNNING`, ...
pub fn state(v: &Value) -> String {
    let life = v["state"]["life_cycle_state"].as_str().unwrap_or("?");
    match v["state"]["result_state"].as_str() {
        Some(r) => format!("{life} {r}"),
        None => life.to_string(),
    }
}

fn s(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Lays out rows as aligned columns.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let mut out = String::new();
    let line = |cells: Vec<String>, out: &mut String| {
        let last = cells.len() - 1;
        for (i, c) in cells.into_iter().enumerate() {
            if i == last {
                out.push_str(&c);
            } else {
                let _ = write!(out, "{c:<w$}  ", w = widths[i]);
            }
        }
        out.push('\n');
    };
    line(header.iter().map(|h| h.to_string()).collect(), &mut out);
    for r in rows {
        line(r.clone(), &mut out);
    }
    out
}

/// A run with its tasks.
pub fn run(v: &Value) -> String {
    let mut out = String::new();
    let job = v["job_id"]
        .as_i64()
        .map(|j| format!(" (job {j})"))
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "run {} of {}{job}: {}",
        v["run_id"],
        s(&v["run_name"]),
        state(v)
    );
    let msg = v["state"]["state_message"].as_str().unwrap_or_default();
    if !msg.is_empty() {
        let _ = writeln!(out, "  {msg}");
    }
    let _ = writeln!(
        out,
        "  trigger {}, started {}, ran {}{}",
        s(&v["trigger"]),
        time(v["start_time"].as_i64().unwrap_or(0)),
        duration(v["run_duration"].as_i64().unwrap_or(0)),
        match v["queue_duration"].as_i64() {
            Some(q) if q > 0 => format!(", queued {}", duration(q)),
            _ => String::new(),
        }
    );
    if let Some(params) = v["job_parameters"].as_array().filter(|p| !p.is_empty()) {
        let list: Vec<String> = params
            .iter()
            .map(|p| format!("{}={}", s(&p["name"]), s(&p["value"])))
            .collect();
        let _ = writeln!(out, "  parameters: {}", list.join(" "));
    }
    if let Some(repairs) = v["repair_history"].as_array().filter(|r| !r.is_empty()) {
        let _ = writeln!(out, "  repairs: {}", repairs.len() - 1);
    }
    let rows: Vec<Vec<String>> = v["tasks"]
        .as_array()
        .map(|tasks| {
            tasks
                .iter()
                .map(|t| {
                    let mut message = s(&t["state"]["state_message"]);
                    if let Some(o) = t["condition_task"]["outcome"].as_str() {
                        message = format!("outcome {o}");
                    }
                    if let Some(stats) = t["for_each_task"]["stats"]["task_run_stats"].as_object() {
                        message = format!(
                            "{}/{} iterations succeeded {message}",
                            stats["succeeded_iterations"], stats["total_iterations"]
                        );
                    }
                    let values = t["values"]
                        .as_object()
                        .filter(|m| !m.is_empty())
                        .map(|m| {
                            m.iter()
                                .map(|(k, v)| format!("{k}={v}"))
                                .collect::<Vec<_>>()
                                .join(" ")
                        })
                        .unwrap_or_default();
                    vec![
                        s(&t["task_key"]),
                        s(&t["attempt_number"]),
                        s(&t["run_id"]),
                        state(t),
                        duration(t["run_duration"].as_i64().unwrap_or(0)),
                        values,
                        message,
                    ]
                })
                .collect()
        })
        .unwrap_or_default();
    if !rows.is_empty() {
        out.push('\n');
        out.push_str(&table(
            &[
                "TASK", "ATTEMPT", "TASK RUN", "STATE", "DURATION", "VALUES", "MESSAGE",
            ],
            &rows,
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn durations_read_well() {
        assert_eq!(duration(340), "340ms");
        assert_eq!(duration(1200), "1.2s");
        assert_eq!(duration(125_000), "2m05s");
    }

    #[test]
    fn a_run_prints_its_tasks() {
        let v = json!({
            "run_id": 5, "job_id": 1, "run_name": "orders",
            "state": {"life_cycle_state": "TERMINATED", "result_state": "SUCCESS", "state_message": ""},
            "trigger": "ONE_TIME", "start_time": 1763794057000i64, "run_duration": 1200,
            "tasks": [{"task_key": "ingest", "attempt_number": 0, "run_id": 6,
                       "state": {"life_cycle_state": "TERMINATED", "result_state": "SUCCESS"},
                       "run_duration": 12, "values": {"rows": 20}}]
        });
        let text = run(&v);
        assert!(
            text.starts_with("run 5 of orders (job 1): TERMINATED SUCCESS"),
            "{text}"
        );
        assert!(text.contains("ingest"), "{text}");
        assert!(text.contains("rows=20"), "{text}");
    }
}
