//! The HTTP API edge (axum): `POST /v1/send` so bots can speak first and answer later,
//! `/v1/rooms` to list, join and leave group chats, `POST /v1/upload` to share a file,
//! `GET /v1/status`, `GET /healthz` and `GET /metrics` so operators see what the daemon does.
//! Every route but `/healthz` needs `Authorization: Bearer <token>`; `/healthz` says more
//! with it. The socket and its limits are `listener.rs`'s.

mod deliveries;
mod files;
pub mod listener;
mod observe;
mod rooms;
mod send;

use std::future::Future;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde_json::json;
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;

use crate::config::ApiConfig;
use crate::descriptors::{api_connections, soft_limit, ApiConnections};
use crate::handle::ComponentHandle;
use crate::metrics::Metrics;
use crate::store::Store;
use listener::{serve_on, ConnectionLimits};

/// Every route, as documented in `docs/openapi.json` (a test keeps the two in step).
pub const ROUTES: &[(&str, &str)] = &[
    ("post", "/v1/send"),
    ("post", "/v1/upload"),
    ("get", "/v1/rooms"),
    ("post", "/v1/rooms"),
    ("delete", "/v1/rooms/{jid}"),
    ("get", "/v1/deliveries"),
    ("get", "/v1/deliveries/{id}"),
    ("post", "/v1/deliveries/{id}/replay"),
    ("post", "/v1/deliveries/replay"),
    ("get", "/v1/status"),
    ("get", "/healthz"),
    ("get", "/metrics"),
];

/// What the handlers share.
pub struct ApiState {
    pub config: ApiConfig,
    pub components: Vec<Arc<ComponentHandle>>,
    pub metrics: Arc<Metrics>,
    /// The delivery log, when there is one (`/v1/deliveries`).
    pub store: Option<Store>,
    token_digest: [u8; 32],
    /// One permit per API iq awaiting its answer (`max_pending_iqs`).
    iq_slots: Semaphore,
}

impl ApiState {
    pub fn new(
        config: ApiConfig,
        components: Vec<Arc<ComponentHandle>>,
        metrics: Arc<Metrics>,
        store: Option<Store>,
    ) -> ApiState {
        let token_digest = Sha256::digest(config.token.expose().as_bytes()).into();
        let iq_slots = Semaphore::new(config.max_pending_iqs.min(Semaphore::MAX_PERMITS));
        ApiState {
            config,
            components,
            metrics,
            store,
            token_digest,
            iq_slots,
        }
    }

    /// The component a request names (`component`), or the only one.
    fn component(&self, named: Option<&str>) -> Result<&Arc<ComponentHandle>, ApiError> {
        match (named, self.components.as_slice()) {
            (None, [only]) => Ok(only),
            (None, _) => Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "missing_field",
                "field 'component' is required when several domains are configured",
            )),
            (Some(domain), components) => components
                .iter()
                .find(|c| c.domain() == domain)
                .ok_or_else(|| {
                    ApiError::new(
                        StatusCode::NOT_FOUND,
                        "unknown_component",
                        format!("no component '{domain}' is configured"),
                    )
                }),
        }
    }

    /// Constant-time: both sides are hashed, then every byte compared.
    fn authorized(&self, header: Option<&HeaderValue>) -> bool {
        let Some(token) = header
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
        else {
            return false;
        };
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        digest
            .iter()
            .zip(self.token_digest.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
    }
}

/// The router, without a socket (tests call it directly).
pub fn router(state: Arc<ApiState>) -> Router {
    let protected = Router::new()
        .route("/v1/send", post(send::send))
        .route("/v1/upload", post(files::upload))
        .route("/v1/rooms", get(rooms::list).post(rooms::join))
        .route("/v1/rooms/{jid}", delete(rooms::leave))
        .route("/v1/deliveries", get(deliveries::list))
        .route("/v1/deliveries/replay", post(deliveries::replay_matching))
        .route("/v1/deliveries/{id}", get(deliveries::show))
        .route("/v1/deliveries/{id}/replay", post(deliveries::replay))
        .route("/v1/status", get(observe::status))
        .route("/metrics", get(observe::metrics))
        .route_layer(middleware::from_fn_with_state(
            Arc::clone(&state),
            require_token,
        ));
    Router::new()
        .route("/healthz", get(observe::healthz))
        .merge(protected)
        .layer(DefaultBodyLimit::max(state.config.max_request_size))
        .with_state(state)
}

async fn require_token(
    State(state): State<Arc<ApiState>>,
    request: Request,
    next: Next,
) -> Response {
    if state.authorized(request.headers().get(header::AUTHORIZATION)) {
        return next.run(request).await;
    }
    let mut response = ApiError::new(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "a valid 'Authorization: Bearer <token>' header is required",
    )
    .into_response();
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    response
}

/// Serves the API on `config.listen` until `shutdown` completes. `reserve`: the descriptors
/// kept for the components (`descriptors::reserve`); the API's connections are bounded by
/// `max_connections`, and by what the open-file limit leaves after the reserve.
pub async fn serve(
    state: Arc<ApiState>,
    reserve: u64,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let max_connections = match api_connections(state.config.max_connections, soft_limit(), reserve)
        .map_err(std::io::Error::other)?
    {
        ApiConnections::AsConfigured(count) => count,
        ApiConnections::Clamped { room, limit } => {
            tracing::warn!(
                "[api] max_connections lowered from {} to {room}: the open-file limit is \
                 {limit} and {reserve} descriptors are kept for the webhook and the server \
                 (raise LimitNOFILE= or ulimit -n)",
                state.config.max_connections
            );
            room
        }
    };
    let limits = ConnectionLimits {
        max_connections,
        header_timeout: state.config.header_timeout,
        write_timeout: state.config.write_timeout,
    };
    let listener = tokio::net::TcpListener::bind(state.config.listen).await?;
    tracing::info!(
        "HTTP API listening on http://{} (at most {max_connections} connections)",
        listener.local_addr()?
    );
    serve_on(listener, router(state), limits, shutdown).await
}

/// A request's body, read within `body_timeout` (else 408, and the connection is closed) and
/// at most `max_request_size` bytes long (else 413).
pub struct TimedBody(pub Bytes);

impl FromRequest<Arc<ApiState>> for TimedBody {
    type Rejection = Response;

    async fn from_request(request: Request, state: &Arc<ApiState>) -> Result<Self, Response> {
        let limit = state.config.body_timeout;
        match tokio::time::timeout(limit, Bytes::from_request(request, state)).await {
            Ok(Ok(body)) => Ok(TimedBody(body)),
            Ok(Err(rejection)) => Err(rejection.into_response()),
            Err(_) => {
                let mut response = ApiError::new(
                    StatusCode::REQUEST_TIMEOUT,
                    "body_timeout",
                    format!(
                        "the request body did not arrive within body_timeout ({} s)",
                        limit.as_secs_f64()
                    ),
                )
                .into_response();
                response
                    .headers_mut()
                    .insert(header::CONNECTION, HeaderValue::from_static("close"));
                Err(response)
            }
        }
    }
}

/// An API error: its status and a stable JSON body `{"error": code, "message": text}`.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    pub(crate) fn retry_after(mut self, seconds: u64) -> ApiError {
        self.retry_after = Some(seconds);
        self
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Json(json!({ "error": self.code, "message": self.message }));
        let mut response = (self.status, body).into_response();
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

#[cfg(test)]
#[path = "api/router_tests.rs"]
mod tests;
