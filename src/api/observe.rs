//! What operators look at: `GET /v1/status` (per component), `GET /healthz` (200 only when
//! every component is connected) and `GET /metrics` (Prometheus / OpenMetrics text).

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::ApiState;

pub async fn status(State(state): State<Arc<ApiState>>) -> Response {
    let components: Vec<_> = state.components.iter().map(|c| c.status()).collect();
    Json(json!({ "components": components })).into_response()
}

pub async fn healthz(State(state): State<Arc<ApiState>>) -> Response {
    let reasons: Vec<String> = state
        .components
        .iter()
        .filter_map(|c| {
            c.not_connected_because()
                .map(|why| format!("{}: {why}", c.domain))
        })
        .collect();
    if reasons.is_empty() {
        return Json(json!({ "status": "ok" })).into_response();
    }
    let body = json!({ "status": "unavailable", "reason": reasons.join("; ") });
    (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
}

pub async fn metrics(State(state): State<Arc<ApiState>>) -> Response {
    for component in &state.components {
        component
            .metrics
            .in_flight
            .set(component.calls_in_flight() as i64);
        component
            .metrics
            .queued_replies
            .set(component.queued_replies() as i64);
    }
    let content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8";
    (
        [(header::CONTENT_TYPE, content_type)],
        state.metrics.encode(),
    )
        .into_response()
}
