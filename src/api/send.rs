//! `POST /v1/send`: the same JSON as a webhook reply (`to`, `from`, `kind`, `type`, `body`,
//! `stanza`, `file`), plus `component` and, for an iq get/set, `timeout`. A `file` is
//! uploaded first (api/files.rs). Other stanzas are queued
//! (202); an iq get/set waits for its answer (200) or times out (504), at most
//! `max_pending_iqs` at once (then 503), holding only its id and address while it waits.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use minidom::rxml::xml_ncname;
use minidom::Element;
use serde_json::{json, Map, Value};

use super::files::send_file;
use super::{ApiError, ApiState, TimedBody};
use crate::handle::pending_iqs::new_api_id;
use crate::handle::{ComponentHandle, QueueError};
use crate::stanza::attachment::{split_file, PendingFile};
use crate::stanza::fields::{stanza_from_fields, text, Defaults, ReplyError};
use crate::stanza::request::{Quoted, WebhookRequest};
use crate::stanza::{Inbound, Kind};
use crate::xml::set_attr;

pub async fn send(State(state): State<Arc<ApiState>>, TimedBody(body): TimedBody) -> Response {
    let outcome = match prepare(&state, body) {
        Ok(Ready::Stanza(prepared)) => deliver(&state, prepared).await,
        Ok(Ready::File {
            component,
            before,
            file,
            id,
        }) => send_file(component, before, file, id).await,
        Err(error) => Err(error),
    };
    outcome.unwrap_or_else(IntoResponse::into_response)
}

/// What a request asks for: one stanza, or a file to upload and the messages to send.
enum Ready<'a> {
    Stanza(Prepared<'a>),
    File {
        component: &'a Arc<ComponentHandle>,
        before: Vec<Element>,
        file: PendingFile,
        id: String,
    },
}

/// A stanza ready to go, and what is needed to send it; the request's body and JSON are
/// gone by then.
struct Prepared<'a> {
    component: &'a Arc<ComponentHandle>,
    stanza: Element,
    id: String,
    /// For an iq get/set: how long to wait for its answer.
    awaits_answer: Option<Duration>,
}

fn prepare(state: &ApiState, body: Bytes) -> Result<Ready<'_>, ApiError> {
    let value: Value = serde_json::from_slice(&body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_json",
            format!("the body is not JSON: {e}"),
        )
    })?;
    drop(body);
    let Value::Object(fields) = value else {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_json",
            "the body must be a JSON object",
        ));
    };
    let component = pick_component(state, &fields)?;
    let id = new_api_id().map_err(|error| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "no_randomness",
            format!("no random id could be drawn: {error}"),
        )
    })?;
    let defaults = Defaults {
        kind: Kind::Message,
        to: None,
        from: component.domain(),
        iq_type: "get",
        iq_id: Some(&id),
        quoted: Quoted::Nothing,
    };
    let policy = component.send_policy();
    let stanza = stanza_from_fields(&fields, &defaults, &policy).map_err(field_error)?;
    let (mut stanzas, file) =
        split_file(&fields, stanza, &defaults, &policy).map_err(field_error)?;
    if let Some(file) = file {
        not_connected(component)?;
        return Ok(Ready::File {
            component,
            before: stanzas,
            file,
            id,
        });
    }
    let mut stanza = stanzas
        .pop()
        .ok_or(field_error(ReplyError::MissingField("body")))?;
    let awaits_answer = stanza.name() == "iq" && matches!(stanza.attr("type"), Some("get" | "set"));
    if awaits_answer || stanza.attr("id").is_none() {
        // Answers to API iqs are found by this id; other stanzas get one to be traced by.
        set_attr(&mut stanza, xml_ncname!("id"), &id);
    }
    let id = stanza.attr("id").unwrap_or_default().to_string();
    not_connected(component)?;
    let awaits_answer = if awaits_answer {
        Some(iq_timeout(state, &fields)?)
    } else {
        None
    };
    Ok(Ready::Stanza(Prepared {
        component,
        stanza,
        id,
        awaits_answer,
    }))
}

fn not_connected(component: &ComponentHandle) -> Result<(), ApiError> {
    match component.not_connected_because() {
        None => Ok(()),
        Some(why) => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_connected",
            format!("{} is not connected: {why}", component.domain()),
        )
        .retry_after(5)),
    }
}

async fn deliver(state: &ApiState, prepared: Prepared<'_>) -> Result<Response, ApiError> {
    let Prepared {
        component,
        stanza,
        id,
        awaits_answer,
    } = prepared;
    let Some(timeout) = awaits_answer else {
        queue(component, &stanza)?;
        return Ok((StatusCode::ACCEPTED, Json(json!({ "id": id }))).into_response());
    };
    let Ok(_slot) = state.iq_slots.try_acquire() else {
        let limit = state.config.max_pending_iqs;
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "too_many_pending_iqs",
            format!(
                "max_pending_iqs ({limit}) API iqs already await their answers; try again shortly"
            ),
        )
        .retry_after(1));
    };
    // The answer must come from the address the iq goes to; `stanza_from_fields` always
    // sets `to`.
    let to = stanza.attr("to").unwrap_or_default();
    let mut answer = component.await_iq(&id, to);
    queue(component, &stanza)?;
    drop(stanza);
    match tokio::time::timeout(timeout, answer.answer()).await {
        Ok(Some(answer)) => Ok(Json(answer_json(answer)).into_response()),
        Ok(None) | Err(_) => Err(ApiError::new(
            StatusCode::GATEWAY_TIMEOUT,
            "timeout",
            format!("no answer to iq {id} within {:.1} s", timeout.as_secs_f64()),
        )),
    }
}

fn pick_component<'a>(
    state: &'a ApiState,
    fields: &Map<String, Value>,
) -> Result<&'a Arc<ComponentHandle>, ApiError> {
    let named = text(fields, "component").map_err(field_error)?;
    state.component(named.as_deref())
}

fn iq_timeout(state: &ApiState, fields: &Map<String, Value>) -> Result<Duration, ApiError> {
    let bad = || {
        let max = state.config.max_iq_timeout.as_secs_f64();
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            format!("field 'timeout' must be a number of seconds in (0, {max}]"),
        )
    };
    match fields.get("timeout") {
        None | Some(Value::Null) => Ok(state.config.iq_timeout),
        Some(Value::Number(seconds)) => match seconds.as_f64() {
            Some(s) if s > 0.0 && s <= state.config.max_iq_timeout.as_secs_f64() => {
                Ok(Duration::from_secs_f64(s))
            }
            _ => Err(bad()),
        },
        Some(_) => Err(bad()),
    }
}

/// Writes `stanza` for the stream and queues it.
pub(super) fn queue(component: &ComponentHandle, stanza: &Element) -> Result<(), ApiError> {
    let written = component.write_checked(stanza).map_err(|error| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            format!("the stanza cannot be sent: {error}"),
        )
    })?;
    component.try_queue(written).map_err(|error| match error {
        QueueError::Full => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "queue_full",
            "max_queued_replies reached; try again shortly",
        )
        .retry_after(1),
        QueueError::Stopped => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "stopped",
            "the component has stopped",
        ),
    })
}

/// The answer as JSON: the fields a webhook request carries, `stanza` included.
fn answer_json(answer: Element) -> Value {
    match Inbound::new(answer) {
        Ok(inbound) => serde_json::to_value(WebhookRequest::new(&inbound)).unwrap_or(Value::Null),
        Err(error) => json!({ "error": error.to_string() }),
    }
}

fn field_error(error: ReplyError) -> ApiError {
    let (status, code) = match error {
        ReplyError::ForeignFrom { .. } => (StatusCode::FORBIDDEN, "foreign_from"),
        ReplyError::NotTheOccupant { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_from"),
        ReplyError::MissingField(_) => (StatusCode::UNPROCESSABLE_ENTITY, "missing_field"),
        // "field 'reactions' must be …": the message names the field.
        ReplyError::WrongType { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_field"),
        _ => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_field"),
    };
    ApiError::new(status, code, error.to_string())
}
