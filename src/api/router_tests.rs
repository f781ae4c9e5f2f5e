//! The API router without a socket: authentication, every error status of `/v1/send`, the
//! bound on iqs awaiting answers, health (details only with the token), and the OpenAPI
//! document kept in step with the routes.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

use super::*;
use crate::component::Component;
use crate::config::Config;

pub(super) const TOKEN: &str = "0123456789abcdef-test";

/// The test configuration: `components`, and the `[api]` keys of `api_keys` too.
fn config(components: &[&str], api_keys: &str) -> Config {
    let mut text = format!(
        "[api]\ntoken = \"{TOKEN}\"\nmax_request_size = 2048\nmax_pending_iqs = 2\n{api_keys}\n"
    );
    for domain in components {
        text.push_str(&format!("[[component]]\ndomain = \"{domain}\"\nsecret = \"s\"\npost_url = \"http://127.0.0.1:9/\"\n"));
    }
    Config::parse(&text, std::path::Path::new(".")).expect("valid config")
}

/// The router over components that are not running; `connected` marks them connected.
fn app(domains: &[&str], connected: bool) -> (Router, Vec<Component>) {
    app_with(domains, connected, "")
}

/// As [`app`], with more `[api]` keys.
pub(super) fn app_with(
    domains: &[&str],
    connected: bool,
    api_keys: &str,
) -> (Router, Vec<Component>) {
    let config = config(domains, api_keys);
    let metrics = Arc::new(Metrics::default());
    let components: Vec<Component> = config
        .components
        .into_iter()
        .map(|c| Component::new(c, &metrics, None))
        .collect();
    let handles: Vec<_> = components.iter().map(Component::handle).collect();
    if connected {
        handles.iter().for_each(|h| h.set_connected());
    }
    let api = config.api.expect("api configured");
    (
        router(Arc::new(ApiState::new(api, handles, metrics, None))),
        components,
    )
}

pub(super) async fn call(
    app: &Router,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> (StatusCode, Value, axum::http::HeaderMap) {
    let mut request = Request::builder().method(method).uri(path);
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let request = request
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .expect("request");
    let response = app.clone().oneshot(request).await.expect("response");
    let (parts, body) = response.into_parts();
    let bytes = body.collect().await.expect("body").to_bytes();
    let json = serde_json::from_slice(&bytes)
        .unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into()));
    (parts.status, json, parts.headers)
}

#[tokio::test]
async fn every_route_but_healthz_needs_the_token() {
    let (app, _components) = app(&["bot.example.com"], true);
    for (method, path) in [
        ("POST", "/v1/send"),
        ("GET", "/v1/status"),
        ("GET", "/metrics"),
    ] {
        let (status, body, headers) = call(&app, method, path, None, "{}").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}");
        assert_eq!(body["error"], "unauthorized");
        assert_eq!(headers["www-authenticate"], "Bearer");
        let (status, ..) = call(&app, method, path, Some("wrong-token-of-some-length"), "{}").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}");
    }
    let (status, body, _) = call(&app, "GET", "/healthz", None, "").await;
    assert_eq!((status, body), (StatusCode::OK, json!({ "status": "ok" })));
}

#[tokio::test]
async fn send_queues_a_message_with_defaults() {
    let (app, components) = app(&["bot.example.com"], true);
    let (status, body, _) = call(
        &app,
        "POST",
        "/v1/send",
        Some(TOKEN),
        r#"{"to": "alice@example.com", "body": "ding"}"#,
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert!(
        body["id"].as_str().is_some_and(|id| id.starts_with("api-")),
        "{body}"
    );
    assert_eq!(components[0].handle().queued_replies(), 1);
}

#[tokio::test]
async fn send_errors_name_the_problem() {
    let (app, _components) = app(&["bot.example.com"], true);
    let cases = [
        ("{not json", StatusCode::BAD_REQUEST, "invalid_json"),
        ("[1]", StatusCode::BAD_REQUEST, "invalid_json"),
        (
            r#"{"body": "no to"}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "missing_field",
        ),
        (
            r#"{"to": "a@b", "kind": "chat"}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
        ),
        (
            r#"{"to": "a@b", "body": {"x": 1}}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
        ),
        (
            r#"{"stanza": "<message to='a@b'>"}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
        ),
        (
            r#"{"to": "a@b", "from": "admin@example.com"}"#,
            StatusCode::FORBIDDEN,
            "foreign_from",
        ),
        (
            r#"{"to": "a@b", "component": "other.example.com"}"#,
            StatusCode::NOT_FOUND,
            "unknown_component",
        ),
        (
            r#"{"to": "a@b", "kind": "iq", "timeout": 9999}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
        ),
    ];
    for (request, expected_status, code) in cases {
        let (status, body, _) = call(&app, "POST", "/v1/send", Some(TOKEN), request).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (expected_status, Some(code)),
            "{request}: {body}"
        );
    }
    let huge = format!(r#"{{"to": "a@b", "body": "{}"}}"#, "x".repeat(4096));
    let (status, ..) = call(&app, "POST", "/v1/send", Some(TOKEN), &huge).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn a_rich_key_of_the_wrong_type_is_a_422_naming_it() {
    let (app, components) = app(&["bot.example.com"], true);
    for (request, field) in [
        (r#"{"to": "a@b", "reactions": ["x"]}"#, "reactions"),
        (r#"{"to": "a@b", "reply": {"id": 7}}"#, "reply.id"),
        (r#"{"to": "a@b", "state": "typing"}"#, "state"),
        (
            r#"{"to": "a@b", "kind": "presence", "priority": 1000}"#,
            "priority",
        ),
    ] {
        let (status, body, _) = call(&app, "POST", "/v1/send", Some(TOKEN), request).await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{request}: {body}"
        );
        assert_eq!(body["error"], "invalid_field", "{request}: {body}");
        let message = body["message"].as_str().unwrap_or_default();
        assert!(
            message.starts_with(&format!("field '{field}' must be ")),
            "{request}: {message}"
        );
    }
    assert_eq!(components[0].handle().queued_replies(), 0);
    let good = r#"{"to": "a@b", "oob_url": "https://x.example/a.png", "markable": true}"#;
    let (status, body, _) = call(&app, "POST", "/v1/send", Some(TOKEN), good).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
}

#[tokio::test]
async fn several_components_need_the_component_field() {
    let (app, _components) = app(&["one.example.com", "two.example.com"], true);
    let (status, body, _) = call(&app, "POST", "/v1/send", Some(TOKEN), r#"{"to": "a@b"}"#).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("missing_field"))
    );
    let (status, ..) = call(
        &app,
        "POST",
        "/v1/send",
        Some(TOKEN),
        r#"{"to": "a@b", "component": "two.example.com"}"#,
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
}

#[tokio::test]
async fn disconnected_component_is_503_with_retry_after_and_unhealthy() {
    let (app, _components) = app(&["bot.example.com"], false);
    let (status, body, headers) =
        call(&app, "POST", "/v1/send", Some(TOKEN), r#"{"to": "a@b"}"#).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, Some("not_connected"))
    );
    assert!(headers.contains_key("retry-after"));
    // Without the token (or with a wrong one), only ok / not ok: the reason names the
    // server's address and its error.
    for token in [None, Some("wrong-token-of-some-length")] {
        let (status, body, _) = call(&app, "GET", "/healthz", token, "").await;
        assert_eq!(
            (status, body),
            (
                StatusCode::SERVICE_UNAVAILABLE,
                json!({ "status": "unavailable" })
            )
        );
    }
    let (status, body, _) = call(&app, "GET", "/healthz", Some(TOKEN), "").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["status"], "unavailable");
    assert!(
        body["reason"]
            .as_str()
            .is_some_and(|r| r.contains("bot.example.com: not connected yet")),
        "{body}"
    );
}

#[tokio::test]
async fn healthy_is_just_ok_with_or_without_the_token() {
    let (app, _components) = app(&["bot.example.com"], true);
    for token in [None, Some(TOKEN)] {
        let (status, body, _) = call(&app, "GET", "/healthz", token, "").await;
        assert_eq!((status, body), (StatusCode::OK, json!({ "status": "ok" })));
    }
}

#[tokio::test]
async fn iqs_past_max_pending_iqs_get_503_naming_the_limit() {
    let (app, components) = app(&["bot.example.com"], true);
    let handle = components[0].handle();
    let iq = r#"{"to": "alice@example.com/phone", "kind": "iq", "timeout": 1}"#;
    let waiting: Vec<_> = (0..2)
        .map(|_| {
            let app = app.clone();
            tokio::spawn(async move { call(&app, "POST", "/v1/send", Some(TOKEN), iq).await })
        })
        .collect();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    while handle.pending_iqs() < 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the iqs never waited"
        );
        tokio::task::yield_now().await;
    }
    let (status, body, headers) = call(&app, "POST", "/v1/send", Some(TOKEN), iq).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Some("too_many_pending_iqs")
        ),
        "{body}"
    );
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("max_pending_iqs (2)")),
        "{body}"
    );
    assert_eq!(headers["retry-after"], "1");
    // Messages do not wait, so they are not bounded by it.
    let message = r#"{"to": "alice@example.com", "body": "still sent"}"#;
    let (status, ..) = call(&app, "POST", "/v1/send", Some(TOKEN), message).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    for request in waiting {
        let (status, ..) = request.await.expect("request task");
        assert_eq!(status, StatusCode::GATEWAY_TIMEOUT);
    }
    assert_eq!(handle.pending_iqs(), 0, "timed-out iqs are forgotten");
    let quick = r#"{"to": "alice@example.com/phone", "kind": "iq", "timeout": 0.1}"#;
    let (status, ..) = call(&app, "POST", "/v1/send", Some(TOKEN), quick).await;
    assert_eq!(
        status,
        StatusCode::GATEWAY_TIMEOUT,
        "the slots were given back"
    );
}

#[tokio::test]
async fn status_lists_each_component() {
    let (app, _components) = app(&["bot.example.com"], true);
    let (status, body, _) = call(&app, "GET", "/v1/status", Some(TOKEN), "").await;
    assert_eq!(status, StatusCode::OK);
    let component = &body["components"][0];
    assert_eq!(component["domain"], "bot.example.com");
    assert_eq!(component["connected"], true);
    assert_eq!(component["in_flight"], 0);
    assert_eq!(component["webhook_requests"]["2xx"], 0);
}

#[test]
fn openapi_document_lists_exactly_the_routes() {
    let document: Value =
        serde_json::from_str(include_str!("../../docs/openapi.json")).expect("valid JSON");
    let mut documented: Vec<(String, String)> = Vec::new();
    for (path, operations) in document["paths"].as_object().expect("paths") {
        for method in operations.as_object().expect("operations").keys() {
            documented.push((method.clone(), path.clone()));
        }
    }
    let mut routes: Vec<(String, String)> = ROUTES
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    documented.sort();
    routes.sort();
    assert_eq!(documented, routes);
}

#[tokio::test]
async fn every_documented_status_of_send_is_one_the_code_can_return() {
    let document: Value =
        serde_json::from_str(include_str!("../../docs/openapi.json")).expect("valid JSON");
    let documented: Vec<&String> = document["paths"]["/v1/send"]["post"]["responses"]
        .as_object()
        .expect("responses")
        .keys()
        .collect();
    let source = include_str!("send.rs").to_string() + include_str!("../api.rs");
    for status in documented {
        let constant = StatusCode::from_bytes(status.as_bytes())
            .expect("status")
            .canonical_reason()
            .expect("reason");
        let name = constant.to_ascii_uppercase().replace([' ', '-'], "_");
        let mentioned = source.contains(&format!("StatusCode::{name}"))
            || matches!(status.as_str(), "200" | "413");
        assert!(
            mentioned,
            "documented status {status} ({name}) is never returned by the code"
        );
    }
}
