//! `GET /v1/rooms`, `POST /v1/rooms` and `DELETE /v1/rooms/{jid}`: the rooms every component
//! sits in, joining one (answered once the room has: 200, or its refusal as 4xx/5xx with the
//! condition, or 504 after `join_timeout`), and leaving one. Rooms joined here are kept
//! until left, across reconnects; not across restarts.

use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::{ApiError, ApiState, TimedBody};
use crate::handle::ComponentHandle;
use crate::room::directory::{AddError, JoinFailure, Joining};
use crate::room::RoomConfig;
use crate::stanza::fields::text;

pub async fn list(State(state): State<Arc<ApiState>>) -> Response {
    let rooms: Vec<_> = state
        .components
        .iter()
        .flat_map(|c| c.rooms().list())
        .collect();
    Json(json!({ "rooms": rooms })).into_response()
}

pub async fn join(State(state): State<Arc<ApiState>>, TimedBody(body): TimedBody) -> Response {
    match start_join(&state, &body) {
        Ok((component, joining)) => finish_join(component, joining).await,
        Err(error) => Err(error),
    }
    .unwrap_or_else(IntoResponse::into_response)
}

fn start_join<'a>(
    state: &'a ApiState,
    body: &[u8],
) -> Result<(&'a Arc<ComponentHandle>, Joining), ApiError> {
    let Ok(Value::Object(fields)) = serde_json::from_slice::<Value>(body) else {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_json",
            "the body must be a JSON object",
        ));
    };
    let field = |name: &'static str| {
        text(&fields, name)
            .map_err(|e| bad_field(&e.to_string()))
            .map(|value| value.map(|v| v.into_owned()))
    };
    let named = field("component")?;
    let component = state.component(named.as_deref())?;
    let room = RoomConfig::check(
        component.domain(),
        field("jid")?.as_deref(),
        field("nick")?.as_deref(),
        field("password")?.as_deref(),
        field("from")?.as_deref(),
        field("forward")?.as_deref(),
    )
    .map_err(|e| bad_field(&format!("field '{}': {}", e.field, e.message)))?;
    let connected = component.not_connected_because().is_none();
    let jid = room.jid.clone();
    let joining = component
        .rooms()
        .add(room, connected)
        .map_err(|error| match error {
            AddError::Exists(_) => {
                ApiError::new(StatusCode::CONFLICT, "room_exists", error.to_string())
            }
            AddError::TooMany(_) | AddError::TooManyWaiting(_) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "too_many_rooms",
                error.to_string(),
            ),
        })?;
    if let Joining::Waiting {
        presence: Some(presence),
        ..
    } = &joining
    {
        component.queue_reply(presence, &jid);
    }
    Ok((component, joining))
}

async fn finish_join(component: &ComponentHandle, joining: Joining) -> Result<Response, ApiError> {
    let outcome = match joining {
        Joining::Already(room) => return Ok(Json(room).into_response()),
        Joining::Waiting { outcome, .. } => outcome,
    };
    let timeout = component.rooms().join_timeout();
    match tokio::time::timeout(timeout, outcome).await {
        Ok(Ok(Ok(room))) => Ok(Json(room).into_response()),
        Ok(Ok(Err(failure))) => Err(refused(&failure)),
        Ok(Err(_)) | Err(_) => Err(ApiError::new(
            StatusCode::GATEWAY_TIMEOUT,
            "join_timeout",
            format!(
                "the room did not answer within join_timeout ({} s); the join goes on",
                timeout.as_secs_f64()
            ),
        )),
    }
}

/// The room's refusal, as the HTTP status closest to its condition.
fn refused(failure: &JoinFailure) -> ApiError {
    // The code is the room's condition when it is one of these (a known set), else
    // `join_refused`.
    let (status, code) = match failure.condition.as_str() {
        "forbidden" => (StatusCode::FORBIDDEN, "forbidden"),
        "not-authorized" => (StatusCode::FORBIDDEN, "not-authorized"),
        "registration-required" => (StatusCode::FORBIDDEN, "registration-required"),
        "banned" => (StatusCode::FORBIDDEN, "banned"),
        "not-allowed" => (StatusCode::FORBIDDEN, "not-allowed"),
        "item-not-found" => (StatusCode::NOT_FOUND, "item-not-found"),
        "gone" => (StatusCode::NOT_FOUND, "gone"),
        "remote-server-not-found" => (StatusCode::NOT_FOUND, "remote-server-not-found"),
        "conflict" => (StatusCode::CONFLICT, "conflict"),
        "left" => (StatusCode::CONFLICT, "left"),
        "kicked" => (StatusCode::BAD_GATEWAY, "kicked"),
        "service-unavailable" => (StatusCode::SERVICE_UNAVAILABLE, "service-unavailable"),
        _ => (StatusCode::BAD_GATEWAY, "join_refused"),
    };
    ApiError::new(
        status,
        code,
        format!(
            "{} refused the join: {}",
            failure.room.jid, failure.condition
        ),
    )
}

pub async fn leave(
    State(state): State<Arc<ApiState>>,
    Path(jid): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let named = query.as_deref().and_then(|q| {
        url::form_urlencoded::parse(q.as_bytes())
            .find(|(key, _)| key == "component")
            .map(|(_, value)| value.into_owned())
    });
    let component = match state.component(named.as_deref()) {
        Ok(component) => component,
        Err(error) => return error.into_response(),
    };
    let Some((room, presence)) = component.rooms().leave(&jid) else {
        return ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_room",
            format!("{} is in no room {jid}", component.domain()),
        )
        .into_response();
    };
    if component.not_connected_because().is_none() {
        component.queue_reply(&presence, &room.jid);
    }
    Json(room).into_response()
}

/// As `POST /v1/send` answers a bad field.
fn bad_field(message: &str) -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
        message.to_string(),
    )
}
