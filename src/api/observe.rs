//! What operators look at: `GET /v1/status` (per component), `GET /healthz` (200 only when
//! every component is connected; why not only with the token, as the reason names the
//! server's address and its error) and `GET /metrics` (Prometheus / OpenMetrics text).

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::ApiState;

pub async fn status(State(state): State<Arc<ApiState>>) -> Response {
    let components: Vec<_> = state.components.iter().map(|c| c.status()).collect();
    Json(json!({ "components": components })).into_response()
}

pub async fn healthz(State(state): State<Arc<ApiState>>, headers: HeaderMap) -> Response {
    let healthy = state
        .components
        .iter()
        .all(|c| c.not_connected_because().is_none());
    if healthy {
        return Json(json!({ "status": "ok" })).into_response();
    }
    let unavailable = StatusCode::SERVICE_UNAVAILABLE;
    if !state.authorized(headers.get(header::AUTHORIZATION)) {
        return (unavailable, Json(json!({ "status": "unavailable" }))).into_response();
    }
    let reasons: Vec<String> = state
        .components
        .iter()
        .filter_map(|c| {
            c.not_connected_because()
                .map(|why| format!("{}: {why}", c.domain()))
        })
        .collect();
    let body = json!({ "status": "unavailable", "reason": reasons.join("; ") });
    (unavailable, Json(body)).into_response()
}

pub async fn metrics(State(state): State<Arc<ApiState>>) -> Response {
    for component in &state.components {
        component
            .metrics()
            .in_flight
            .set(component.calls_in_flight() as i64);
        component
            .metrics()
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
