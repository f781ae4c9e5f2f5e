//! The HTTP API edge (axum): `POST /v1/send` so bots can speak first and answer later,
//! `GET /v1/status`, `GET /healthz` and `GET /metrics` so operators see what the daemon does.
//! Every route but `/healthz` needs `Authorization: Bearer <token>`.

mod observe;
mod send;

use std::future::Future;
use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::config::ApiConfig;
use crate::handle::ComponentHandle;
use crate::metrics::Metrics;

/// Every route, as documented in `docs/openapi.json` (a test keeps the two in step).
pub const ROUTES: &[(&str, &str)] = &[
    ("post", "/v1/send"),
    ("get", "/v1/status"),
    ("get", "/healthz"),
    ("get", "/metrics"),
];

/// What the handlers share.
pub struct ApiState {
    pub config: ApiConfig,
    pub components: Vec<Arc<ComponentHandle>>,
    pub metrics: Arc<Metrics>,
    token_digest: [u8; 32],
}

impl ApiState {
    pub fn new(
        config: ApiConfig,
        components: Vec<Arc<ComponentHandle>>,
        metrics: Arc<Metrics>,
    ) -> ApiState {
        let token_digest = Sha256::digest(config.token.expose().as_bytes()).into();
        ApiState {
            config,
            components,
            metrics,
            token_digest,
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

/// Serves the API on `config.listen` until `shutdown` completes.
pub async fn serve(
    state: Arc<ApiState>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(state.config.listen).await?;
    tracing::info!("HTTP API listening on http://{}", listener.local_addr()?);
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
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

    fn retry_after(mut self, seconds: u64) -> ApiError {
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
#[path = "tests.rs"]
mod tests;
