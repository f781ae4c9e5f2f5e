//! `POST /v1/upload?component=&filename=`: the raw body (its `Content-Type` kept) uploaded
//! through the component's XEP-0363 service, answered `{"url": "<get URL>"}`; the body is
//! bounded by the component's `max_upload_size`, not by `max_request_size`. Also the `file`
//! field of `POST /v1/send`: uploaded the same way, then its message queued (after the
//! described message when it has a `body`), answered 202 `{"id", "url"}`.

use std::sync::Arc;

use axum::body::to_bytes;
use axum::extract::{RawQuery, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use minidom::rxml::xml_ncname;
use minidom::Element;
use serde_json::json;

use super::send::queue;
use super::{ApiError, ApiState};
use crate::handle::ComponentHandle;
use crate::stanza::attachment::{is_file_name, is_media_type, PendingFile};
use crate::upload::{upload as upload_file, UploadError};
use crate::xml::set_attr;

pub async fn upload(
    State(state): State<Arc<ApiState>>,
    RawQuery(query): RawQuery,
    request: Request,
) -> Response {
    let outcome = match checked(&state, query.as_deref(), request.headers()) {
        Ok((component, filename, content_type)) => {
            match read_body(&state, component, request).await {
                Ok(body) => upload_file(component, &filename, &content_type, body)
                    .await
                    .map(|url| Json(json!({ "url": url })).into_response())
                    .map_err(upload_error),
                Err(error) => Err(error),
            }
        }
        Err(error) => Err(error),
    };
    outcome.unwrap_or_else(IntoResponse::into_response)
}

/// The component, the file name and the media type, checked before the body is read; a
/// `Content-Length` over the limits is refused at once.
fn checked<'a>(
    state: &'a ApiState,
    query: Option<&str>,
    headers: &HeaderMap,
) -> Result<(&'a Arc<ComponentHandle>, String, String), ApiError> {
    let param = |name: &str| {
        query.and_then(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.into_owned())
        })
    };
    let component = state.component(param("component").as_deref())?;
    let filename = param("filename").ok_or_else(|| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "missing_field",
            "query parameter 'filename' is required",
        )
    })?;
    if !is_file_name(&filename) {
        return Err(invalid(
            "query parameter 'filename' must be 1 to 255 bytes, without '/' or control characters",
        ));
    }
    let content_type = match headers.get(header::CONTENT_TYPE) {
        None => "application/octet-stream".to_string(),
        Some(value) => match value.to_str() {
            Ok(text) if is_media_type(text) => text.to_string(),
            _ => return Err(invalid("header 'Content-Type' is not a media type")),
        },
    };
    if let Some(why) = component.not_connected_because() {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_connected",
            format!("{} is not connected: {why}", component.domain()),
        )
        .retry_after(5));
    }
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if let Some(size) = declared {
        let uploads = component.uploads();
        let service_limit = uploads.service().and_then(|s| s.max_file_size);
        if size > uploads.max_upload_size || service_limit.is_some_and(|l| size as u64 > l) {
            return Err(upload_error(UploadError::TooLarge {
                size,
                max_upload_size: uploads.max_upload_size,
                service_limit,
            }));
        }
    }
    Ok((component, filename, content_type))
}

/// The body, at most `max_upload_size` bytes (else 413) within `body_timeout` (else 408).
async fn read_body(
    state: &ApiState,
    component: &ComponentHandle,
    request: Request,
) -> Result<Bytes, ApiError> {
    let limit = component.uploads().max_upload_size;
    let timeout = state.config.body_timeout;
    match tokio::time::timeout(timeout, to_bytes(request.into_body(), limit)).await {
        Ok(Ok(body)) => Ok(body),
        Ok(Err(error)) => Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!(
                "the body is larger than max_upload_size ({limit} bytes), or broke off: {error}"
            ),
        )),
        Err(_) => Err(ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "body_timeout",
            format!(
                "the request body did not arrive within body_timeout ({} s)",
                timeout.as_secs_f64()
            ),
        )),
    }
}

/// `POST /v1/send` with `file`: uploads it, then queues `before` (the described message,
/// when it had a `body`) and the file's message, whose id is `id`.
pub(super) async fn send_file(
    component: &ComponentHandle,
    before: Vec<Element>,
    mut file: PendingFile,
    id: String,
) -> Result<Response, ApiError> {
    let data = Bytes::from(std::mem::take(&mut file.attachment.data));
    let attachment = &file.attachment;
    let url = upload_file(component, &attachment.name, &attachment.content_type, data)
        .await
        .map_err(upload_error)?;
    for (index, mut stanza) in before.into_iter().enumerate() {
        if stanza.attr("id").is_none() {
            set_attr(&mut stanza, xml_ncname!("id"), &format!("{id}-{index}"));
        }
        queue(component, &stanza)?;
    }
    let mut message = file.message_with_url(&url);
    if message.attr("id").is_none() {
        set_attr(&mut message, xml_ncname!("id"), &id);
    }
    let id = message.attr("id").unwrap_or_default().to_string();
    queue(component, &message)?;
    Ok((StatusCode::ACCEPTED, Json(json!({ "id": id, "url": url }))).into_response())
}

fn invalid(message: &str) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", message)
}

/// An upload's failure as the API answers it: 413 too large (both limits named), the slot
/// refused by the service as 4xx with its condition, the PUT failed as 502.
fn upload_error(error: UploadError) -> ApiError {
    let (status, code) = match &error {
        UploadError::TooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "too_large"),
        UploadError::NoService => (StatusCode::SERVICE_UNAVAILABLE, "no_upload_service"),
        UploadError::Refused { condition, .. } => match condition.as_str() {
            "forbidden" | "not-authorized" | "not-allowed" => {
                (StatusCode::FORBIDDEN, "slot_refused")
            }
            "resource-constraint" | "policy-violation" => {
                (StatusCode::TOO_MANY_REQUESTS, "slot_refused")
            }
            "bad-request" => (StatusCode::BAD_REQUEST, "slot_refused"),
            _ => (StatusCode::UNPROCESSABLE_ENTITY, "slot_refused"),
        },
        UploadError::BadSlot(_) => (StatusCode::BAD_GATEWAY, "bad_slot"),
        UploadError::NotSent(_) => (StatusCode::SERVICE_UNAVAILABLE, "not_sent"),
        UploadError::TimedOut(_) => (StatusCode::GATEWAY_TIMEOUT, "timeout"),
        UploadError::PutFailed(_) => (StatusCode::BAD_GATEWAY, "put_failed"),
    };
    ApiError::new(status, code, error.to_string())
}
