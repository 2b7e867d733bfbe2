//! Prometheus metrics: every metric name in one place ([`DESCRIPTORS`]), counters and
//! histograms kept in-process, and the text exposition format served at `/metrics`.
//!
//! Counters and histograms are process-wide (one node per process); gauges are read when
//! `/metrics` is scraped (queue depth from the state store, instances from the executor).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{LazyLock, Mutex};

/// Runs that entered `RUNNING`.
pub const RUNS_STARTED: &str = "weir_runs_started_total";
/// Runs that ended, by `result` (`SUCCESS`, `FAILED`, ..., or the life cycle state when final
/// without a result).
pub const RUNS_FINISHED: &str = "weir_runs_finished_total";
/// Wall time of finished runs, from start to end, in seconds.
pub const RUN_DURATION: &str = "weir_run_duration_seconds";
/// Task attempts that ended, by `result`.
pub const TASK_ATTEMPTS: &str = "weir_task_attempts_total";
/// Wall time of finished task attempts, in seconds.
pub const TASK_DURATION: &str = "weir_task_duration_seconds";
/// Runs created by a trigger, by `kind`.
pub const TRIGGER_FIRES: &str = "weir_trigger_fires_total";
/// Alerts delivered, by `channel`.
pub const ALERTS_DELIVERED: &str = "weir_alerts_delivered_total";
/// Alerts given up on, by `channel`.
pub const ALERTS_FAILED: &str = "weir_alerts_failed_total";
/// Failed delivery attempts (retried or not), by `channel`.
pub const ALERT_ATTEMPTS_FAILED: &str = "weir_alert_attempts_failed_total";
/// Runs in each non-final state (`QUEUED`: the queue depth), across all nodes.
pub const RUNS_ACTIVE: &str = "weir_runs_active";
/// Runs this node coordinates.
pub const RUNS_COORDINATED: &str = "weir_runs_coordinated";
/// Wasm instances alive on this node (0 when idle: scale to zero).
pub const INSTANCES_ALIVE: &str = "weir_instances_alive";
/// Compiled modules held in memory on this node.
pub const MODULES_CACHED: &str = "weir_modules_cached";

/// A metric's type in the exposition format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Only goes up.
    Counter,
    /// Goes up and down.
    Gauge,
    /// Observations in buckets.
    Histogram,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// Every metric Weir exports: name, type, help text.
pub const DESCRIPTORS: &[(&str, Kind, &str)] = &[
    (RUNS_STARTED, Kind::Counter, "Runs that started."),
    (RUNS_FINISHED, Kind::Counter, "Runs that ended, by result."),
    (
        RUN_DURATION,
        Kind::Histogram,
        "Wall time of finished runs in seconds.",
    ),
    (
        TASK_ATTEMPTS,
        Kind::Counter,
        "Task attempts that ended, by result.",
    ),
    (
        TASK_DURATION,
        Kind::Histogram,
        "Wall time of finished task attempts in seconds.",
    ),
    (
        TRIGGER_FIRES,
        Kind::Counter,
        "Runs created by triggers, by trigger kind.",
    ),
    (
        ALERTS_DELIVERED,
        Kind::Counter,
        "Alerts delivered, by channel.",
    ),
    (
        ALERTS_FAILED,
        Kind::Counter,
        "Alerts given up on after their last attempt, by channel.",
    ),
    (
        ALERT_ATTEMPTS_FAILED,
        Kind::Counter,
        "Failed alert delivery attempts, by channel.",
    ),
    (
        RUNS_ACTIVE,
        Kind::Gauge,
        "Runs in each non-final life cycle state (QUEUED is the queue depth).",
    ),
    (RUNS_COORDINATED, Kind::Gauge, "Runs this node coordinates."),
    (
        INSTANCES_ALIVE,
        Kind::Gauge,
        "Wasm instances alive on this node.",
    ),
    (
        MODULES_CACHED,
        Kind::Gauge,
        "Compiled modules held in memory on this node.",
    ),
];

/// Histogram bucket bounds, in seconds.
pub const BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0,
];

type Labels = Vec<(&'static str, String)>;

#[derive(Debug, Clone, Default)]
struct Histogram {
    buckets: Vec<u64>,
    sum: f64,
    count: u64,
}

#[derive(Default)]
struct Registry {
    counters: BTreeMap<(&'static str, Labels), u64>,
    histograms: BTreeMap<(&'static str, Labels), Histogram>,
}

static REGISTRY: LazyLock<Mutex<Registry>> = LazyLock::new(Default::default);

fn labels(pairs: &[(&'static str, &str)]) -> Labels {
    pairs.iter().map(|(k, v)| (*k, (*v).to_string())).collect()
}

/// Adds one to a counter.
pub fn inc(name: &'static str, pairs: &[(&'static str, &str)]) {
    let mut r = REGISTRY.lock().expect("metrics lock");
    *r.counters.entry((name, labels(pairs))).or_default() += 1;
}

/// Records an observation (seconds) in a histogram.
pub fn observe(name: &'static str, pairs: &[(&'static str, &str)], seconds: f64) {
    let mut r = REGISTRY.lock().expect("metrics lock");
    let h = r.histograms.entry((name, labels(pairs))).or_default();
    if h.buckets.is_empty() {
        h.buckets = vec![0; BUCKETS.len()];
    }
    for (i, bound) in BUCKETS.iter().enumerate() {
        if seconds <= *bound {
            h.buckets[i] += 1;
        }
    }
    h.sum += seconds;
    h.count += 1;
}

/// A gauge's value at scrape time.
#[derive(Debug, Clone, PartialEq)]
pub struct GaugeValue {
    /// One of the gauge names above.
    pub name: &'static str,
    /// Its labels.
    pub labels: Vec<(&'static str, String)>,
    /// Its value.
    pub value: f64,
}

impl GaugeValue {
    /// A gauge without labels.
    pub fn new(name: &'static str, value: f64) -> GaugeValue {
        GaugeValue {
            name,
            labels: Vec::new(),
            value,
        }
    }
}

fn write_labels(out: &mut String, labels: &[(&'static str, String)], extra: Option<(&str, &str)>) {
    let mut parts: Vec<String> = labels
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
        .collect();
    if let Some((k, v)) = extra {
        parts.push(format!("{k}=\"{v}\""));
    }
    if !parts.is_empty() {
        let _ = write!(out, "{{{}}}", parts.join(","));
    }
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn number(v: f64) -> String {
    if v.is_infinite() {
        if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        }
    } else {
        format!("{v}")
    }
}

/// The exposition text: every metric of [`DESCRIPTORS`] with its `# HELP` and `# TYPE`, the
/// process's counters and histograms, and `gauges`.
pub fn render(gauges: &[GaugeValue]) -> String {
    let r = REGISTRY.lock().expect("metrics lock");
    let mut out = String::new();
    for (name, kind, help) in DESCRIPTORS {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {}", kind.as_str());
        match kind {
            Kind::Counter => {
                for ((n, l), v) in r.counters.iter().filter(|((n, _), _)| n == name) {
                    out.push_str(n);
                    write_labels(&mut out, l, None);
                    let _ = writeln!(out, " {v}");
                }
            }
            Kind::Histogram => {
                for ((n, l), h) in r.histograms.iter().filter(|((n, _), _)| n == name) {
                    for (bound, count) in BUCKETS.iter().zip(&h.buckets) {
                        let _ = write!(out, "{n}_bucket");
                        write_labels(&mut out, l, Some(("le", &number(*bound))));
                        let _ = writeln!(out, " {count}");
                    }
                    let _ = write!(out, "{n}_bucket");
                    write_labels(&mut out, l, Some(("le", "+Inf")));
                    let _ = writeln!(out, " {}", h.count);
                    let _ = write!(out, "{n}_sum");
                    write_labels(&mut out, l, None);
                    let _ = writeln!(out, " {}", number(h.sum));
                    let _ = write!(out, "{n}_count");
                    write_labels(&mut out, l, None);
                    let _ = writeln!(out, " {}", h.count);
                }
            }
            Kind::Gauge => {
                for g in gauges.iter().filter(|g| g.name == *name) {
                    out.push_str(g.name);
                    write_labels(&mut out, &g.labels, None);
                    let _ = writeln!(out, " {}", number(g.value));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(text: &str, line_start: &str) -> Option<f64> {
        text.lines()
            .find(|l| l.starts_with(line_start))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
    }

    #[test]
    fn counters_histograms_and_gauges_render_in_the_text_format() {
        let before = render(&[]);
        let ok = sample(&before, "weir_task_attempts_total{result=\"SUCCESS\"}").unwrap_or(0.0);
        inc(TASK_ATTEMPTS, &[("result", "SUCCESS")]);
        inc(TASK_ATTEMPTS, &[("result", "SUCCESS")]);
        observe(TASK_DURATION, &[], 0.3);
        let text = render(&[
            GaugeValue::new(INSTANCES_ALIVE, 0.0),
            GaugeValue {
                name: RUNS_ACTIVE,
                labels: vec![("state", "QUEUED".into())],
                value: 3.0,
            },
        ]);
        assert_eq!(
            sample(&text, "weir_task_attempts_total{result=\"SUCCESS\"}"),
            Some(ok + 2.0)
        );
        assert!(
            text.contains("# TYPE weir_task_duration_seconds histogram\n"),
            "{text}"
        );
        assert!(
            text.contains("weir_task_duration_seconds_bucket{le=\"0.25\"} "),
            "{text}"
        );
        let le_half = sample(&text, "weir_task_duration_seconds_bucket{le=\"0.5\"}").unwrap();
        let inf = sample(&text, "weir_task_duration_seconds_bucket{le=\"+Inf\"}").unwrap();
        assert!(le_half >= 1.0 && inf >= le_half, "{text}");
        assert!(text.contains("weir_instances_alive 0\n"), "{text}");
        assert!(
            text.contains("weir_runs_active{state=\"QUEUED\"} 3\n"),
            "{text}"
        );
        for (name, _, _) in DESCRIPTORS {
            assert!(text.contains(&format!("# HELP {name} ")), "{name}");
            assert!(name.starts_with("weir_"), "{name}");
        }
    }

    #[test]
    fn label_values_are_escaped() {
        let mut out = String::new();
        write_labels(&mut out, &[("k", "a\"b\\c\nd".into())], None);
        assert_eq!(out, "{k=\"a\\\"b\\\\c\\nd\"}");
    }
}
