//! `GET /v1/deliveries`, `GET /v1/deliveries/{id}`, `POST /v1/deliveries/{id}/replay` and
//! `POST /v1/deliveries/replay`: the delivery log read back (newest first, a cursor to the
//! next page), one delivery with its request and attempts, and replays (the same
//! `webhook-id`; the reply goes to the original sender). Without a `[store]` every route
//! answers 404 `no_store`.

use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};

use super::{ApiError, ApiState, TimedBody};
use crate::store::{Detail, Filter, Finished, Status, Store, StoreError};

/// A page's size when the request does not say.
const DEFAULT_PAGE: usize = 50;
/// The most deliveries one page, or one bulk replay, takes.
const MAX_PAGE: usize = 1000;

pub async fn list(State(state): State<Arc<ApiState>>, RawQuery(query): RawQuery) -> Response {
    let answer = async {
        let store = store_of(&state)?;
        let filter = filter_from_query(query.as_deref().unwrap_or(""))?;
        let limit = filter.limit;
        let page = blocking(store, move |store| store.list(&filter)).await?;
        // A full page may have more after it: its last entry is where the next starts.
        let cursor = page
            .last()
            .filter(|_| page.len() == limit)
            .map(|last| last.seq.to_string());
        Ok(Json(json!({ "deliveries": page, "next_cursor": cursor })))
    };
    respond(answer.await)
}

pub async fn show(State(state): State<Arc<ApiState>>, Path(id): Path<String>) -> Response {
    let answer = async {
        let store = store_of(&state)?;
        let detail = blocking(store, move |store| store.detail(&id)).await?;
        let detail = detail.ok_or_else(unknown_delivery)?;
        Ok(Json(described(detail)))
    };
    respond(answer.await)
}

pub async fn replay(State(state): State<Arc<ApiState>>, Path(id): Path<String>) -> Response {
    let answer = async {
        let store = store_of(&state)?;
        let detail = blocking(store, move |store| store.detail(&id)).await?;
        let detail = detail.ok_or_else(unknown_delivery)?;
        replay_one(&state, store, detail)?;
        Ok((StatusCode::ACCEPTED, Json(json!({ "replayed": 1 }))))
    };
    respond(answer.await)
}

/// Bulk replay: a JSON filter (`component`, `status` (`failed`, the default, or
/// `delivered`), `from`, `since`, `limit`); every finished delivery it matches goes again.
pub async fn replay_matching(
    State(state): State<Arc<ApiState>>,
    TimedBody(body): TimedBody,
) -> Response {
    let answer = async {
        let store = store_of(&state)?;
        let Ok(Value::Object(fields)) = serde_json::from_slice::<Value>(&body) else {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_json",
                "the body must be a JSON object",
            ));
        };
        let mut filter = filter_from_fields(&fields)?;
        let status = filter.status.unwrap_or(Status::Failed);
        if !matches!(status, Status::Failed | Status::Delivered) {
            return Err(bad_field(
                "field 'status': only finished deliveries (failed, delivered) are replayed",
            ));
        }
        filter.status = Some(status);
        let page = blocking(store, move |store| store.list(&filter)).await?;
        let mut ids = Vec::new();
        for summary in page {
            let id = summary.id.clone();
            let detail = blocking(store, move |store| store.detail(&id)).await?;
            if let Some(detail) = detail {
                replay_one(&state, store, detail)?;
                ids.push(summary.id);
            }
        }
        Ok((
            StatusCode::ACCEPTED,
            Json(json!({ "replayed": ids.len(), "ids": ids })),
        ))
    };
    respond(answer.await)
}

fn replay_one(state: &ApiState, store: &Store, detail: Detail) -> Result<(), ApiError> {
    if matches!(detail.summary.status, Status::InFlight | Status::Queued) {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "not_finished",
            format!(
                "delivery {} is {}: it is still being delivered",
                detail.summary.id,
                detail.summary.status.as_str()
            ),
        ));
    }
    let component = state.component(Some(&detail.received.component))?;
    // In flight from now on, in the writer's order: before the new outcome is written.
    store.replayed(&detail.received.id);
    let id = detail.received.id.clone();
    component.replay(detail.received).map_err(|error| {
        // Not replayed after all: the delivery gets its old outcome back.
        let old = Finished {
            status: detail.summary.status,
            sent: detail.sent.unwrap_or_default(),
            error: detail.summary.error,
        };
        store.finished(&id, Vec::new(), old);
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "replays_waiting",
            format!("cannot replay now: {error}"),
        )
        .retry_after(1)
    })
}

fn respond<T: IntoResponse>(answer: Result<T, ApiError>) -> Response {
    answer.map_or_else(IntoResponse::into_response, IntoResponse::into_response)
}

fn store_of(state: &ApiState) -> Result<&Store, ApiError> {
    state.store.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "no_store",
            "the daemon runs without a [store] section: no deliveries are kept",
        )
    })
}

/// Runs a store read off the async threads.
async fn blocking<T: Send + 'static>(
    store: &Store,
    read: impl FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, ApiError> {
    let store = store.clone();
    let read = tokio::task::spawn_blocking(move || read(&store).map_err(|e| e.to_string()));
    let failed =
        |message: String| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "store_error", message);
    read.await
        .map_err(|e| failed(e.to_string()))?
        .map_err(failed)
}

fn unknown_delivery() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "unknown_delivery",
        "no delivery with this id is kept",
    )
}

fn bad_field(message: &str) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", message)
}

/// One delivery as `GET /v1/deliveries/{id}` shows it: the request as JSON.
fn described(detail: Detail) -> Value {
    let mut value = serde_json::to_value(&detail.summary).unwrap_or_default();
    let request: Value = serde_json::from_slice(&detail.received.request).unwrap_or_else(|_| {
        Value::String(String::from_utf8_lossy(&detail.received.request).into())
    });
    if let Value::Object(fields) = &mut value {
        fields.insert("stanza_type".into(), json!(detail.received.stanza_type));
        fields.insert("stanza_id".into(), json!(detail.received.stanza_id));
        fields.insert("request".into(), request);
        fields.insert("attempts".into(), json!(detail.attempts));
        fields.insert("sent".into(), json!(detail.sent));
    }
    value
}

/// `?component=&status=&from=&since=&limit=&cursor=`, each checked, naming the field.
fn filter_from_query(query: &str) -> Result<Filter, ApiError> {
    let mut fields = Map::new();
    for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
        let key = key.into_owned();
        if !matches!(
            key.as_str(),
            "component" | "status" | "from" | "since" | "limit" | "cursor"
        ) {
            return Err(bad_field(&format!("unknown parameter '{key}'")));
        }
        let value = match key.as_str() {
            "since" | "limit" | "cursor" => value
                .parse::<f64>()
                .ok()
                .filter(|n| n.is_finite())
                .map(Value::from)
                .ok_or_else(|| {
                    bad_field(&format!("parameter '{key}': '{value}' is not a number"))
                })?,
            _ => Value::String(value.into_owned()),
        };
        fields.insert(key, value);
    }
    filter_from_fields(&fields)
}

/// The filter of a query or a bulk replay's body.
fn filter_from_fields(fields: &Map<String, Value>) -> Result<Filter, ApiError> {
    let text = |name: &str| -> Result<Option<String>, ApiError> {
        match fields.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(text)) => Ok(Some(text.clone())),
            Some(_) => Err(bad_field(&format!("field '{name}' must be a string"))),
        }
    };
    let number = |name: &str| -> Result<Option<f64>, ApiError> {
        match fields.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => Ok(n.as_f64()),
            Some(_) => Err(bad_field(&format!("field '{name}' must be a number"))),
        }
    };
    let status = match text("status")? {
        None => None,
        Some(name) => Some(
            serde_json::from_value::<Status>(Value::String(name.clone())).map_err(|_| {
                bad_field(&format!(
                    "field 'status': '{name}' is not delivered, failed, queued or in_flight"
                ))
            })?,
        ),
    };
    let limit = match number("limit")? {
        None => DEFAULT_PAGE,
        Some(n) if n >= 1.0 && n <= MAX_PAGE as f64 && n.fract() == 0.0 => n as usize,
        Some(n) => {
            return Err(bad_field(&format!(
                "field 'limit': {n} is not a whole number in 1..={MAX_PAGE}"
            )))
        }
    };
    let since = match number("since")? {
        None => None,
        Some(n) if n >= 0.0 => Some((n * 1000.0) as i64),
        Some(n) => return Err(bad_field(&format!("field 'since': {n} is before 1970"))),
    };
    let before = match number("cursor")? {
        None => None,
        Some(n) if n >= 1.0 && n.fract() == 0.0 => Some(n as i64),
        Some(_) => return Err(bad_field("field 'cursor' is not a cursor this API gave")),
    };
    Ok(Filter {
        component: text("component")?,
        status,
        from: text("from")?,
        since,
        limit,
        before,
    })
}

#[cfg(test)]
#[path = "deliveries_tests.rs"]
mod tests;
