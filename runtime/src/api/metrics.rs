//! `GET /metrics`: Prometheus text exposition (names in [`crate::metrics`]).

use super::Shared;
use crate::metrics::{self, GaugeValue};
use axum::http::header;
use axum::response::{IntoResponse, Response};

/// `GET /metrics`.
pub async fn get(state: Shared) -> Response {
    let engine = &state.engine;
    let executor = engine.executor();
    let mut gauges = vec![
        GaugeValue::new(metrics::RUNS_COORDINATED, engine.active_runs() as f64),
        GaugeValue::new(metrics::INSTANCES_ALIVE, executor.instances_alive() as f64),
        GaugeValue::new(metrics::MODULES_CACHED, executor.modules_cached() as f64),
    ];
    let counts = engine
        .store()
        .count_active_runs()
        .await
        .unwrap_or_else(|e| {
            tracing::warn!(error = %e, "weir.api.metrics: cannot count active runs");
            Vec::new()
        });
    for state in ["QUEUED", "PENDING", "RUNNING", "TERMINATING"] {
        let n = counts
            .iter()
            .find(|(s, _)| s.as_str() == state)
            .map_or(0, |(_, n)| *n);
        gauges.push(GaugeValue {
            name: metrics::RUNS_ACTIVE,
            labels: vec![("state", state.to_string())],
            value: n as f64,
        });
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        metrics::render(&gauges),
    )
        .into_response()
}
