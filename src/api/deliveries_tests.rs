//! The delivery routes over a real store file (no component running): pages and their
//! cursor, one delivery, replays refused while in flight and accepted once finished, each
//! bad parameter answered 422 naming it, and 404 `no_store` without a `[store]`.

use std::sync::Arc;

use axum::http::StatusCode;
use serde_json::json;

use super::super::tests::{app_with, call, TOKEN};
use super::super::{router, ApiState};
use crate::component::Component;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::store::{now_ms, AttemptLog, Finished, Received, Status, Store};

fn record(id: &str, from: &str) -> Received {
    Received {
        id: id.into(),
        component: "bot.example.com".into(),
        from: from.into(),
        to: "bot.example.com".into(),
        kind: "message".into(),
        stanza_type: Some("chat".into()),
        stanza_id: Some("m1".into()),
        from_room: false,
        receipt: false,
        party: "alice@example.com".into(),
        request: bytes::Bytes::from_static(br#"{"body":"hi"}"#),
        received_at: now_ms(),
    }
}

/// The router with a store in `dir`, holding three deliveries: `a` failed (404), `b`
/// delivered, `c` in flight.
fn app_with_store(dir: &std::path::Path) -> (axum::Router, Vec<Component>, Store) {
    let text = format!(
        "[api]\ntoken = \"{TOKEN}\"\n[store]\npath = \"{}\"\n[[component]]\ndomain = \"bot.example.com\"\nsecret = \"s\"\npost_url = \"http://127.0.0.1:9/\"\n",
        dir.join("d.db").display()
    );
    let config = Config::parse(&text, dir).expect("valid config");
    let metrics = Arc::new(Metrics::default());
    let store = Store::open(
        config.store.as_ref().expect("store"),
        metrics.store_errors(),
    )
    .expect("store opens");
    let components: Vec<Component> = config
        .components
        .into_iter()
        .map(|c| Component::new(c, &metrics, Some(store.clone())))
        .collect();
    let handles = components.iter().map(Component::handle).collect();
    let state = ApiState::new(
        config.api.expect("api"),
        handles,
        metrics,
        Some(store.clone()),
    );
    for (id, from) in [
        ("a", "alice@example.com/phone"),
        ("b", "bob@example.com/pc"),
        ("c", "alice@example.com/pc"),
    ] {
        store.received(record(id, from));
    }
    let attempt = AttemptLog {
        at: now_ms(),
        status: Some(404),
        duration_ms: 3,
        error: Some("webhook answered HTTP 404 Not Found".into()),
    };
    let failed = Finished {
        status: Status::Failed,
        sent: "<message type='error'/>".into(),
        error: attempt.error.clone(),
    };
    store.finished("a", vec![attempt], failed);
    let delivered = Finished {
        status: Status::Delivered,
        sent: "<message/>".into(),
        error: None,
    };
    store.finished("b", vec![], delivered);
    store.flush();
    (router(Arc::new(state)), components, store)
}

#[tokio::test]
async fn deliveries_are_listed_newest_first_with_a_cursor() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (app, _components, _store) = app_with_store(dir.path());
    let (status, page, _) = call(&app, "GET", "/v1/deliveries", Some(TOKEN), "").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let ids: Vec<_> = page["deliveries"]
        .as_array()
        .expect("array")
        .iter()
        .map(|d| d["id"].clone())
        .collect();
    assert_eq!(ids, [json!("c"), json!("b"), json!("a")]);
    assert_eq!(page["next_cursor"], json!(null));
    let (_, first, _) = call(&app, "GET", "/v1/deliveries?limit=2", Some(TOKEN), "").await;
    let cursor = first["next_cursor"].as_str().expect("a cursor").to_string();
    let (_, rest, _) = call(
        &app,
        "GET",
        &format!("/v1/deliveries?limit=2&cursor={cursor}"),
        Some(TOKEN),
        "",
    )
    .await;
    assert_eq!(rest["deliveries"][0]["id"], "a");
    assert_eq!(rest["deliveries"].as_array().map(Vec::len), Some(1));
    let (_, failed, _) = call(
        &app,
        "GET",
        "/v1/deliveries?status=failed&from=alice%40example.com",
        Some(TOKEN),
        "",
    )
    .await;
    assert_eq!(failed["deliveries"].as_array().map(Vec::len), Some(1));
    assert_eq!(failed["deliveries"][0]["id"], "a");

    let (status, a, _) = call(&app, "GET", "/v1/deliveries/a", Some(TOKEN), "").await;
    assert_eq!(status, StatusCode::OK, "{a}");
    assert_eq!(a["request"], json!({ "body": "hi" }));
    assert_eq!(a["attempts"][0]["status"], 404);
    assert_eq!(a["status"], "failed");
    assert_eq!(a["sent"], "<message type='error'/>");
    let (status, missing, _) = call(&app, "GET", "/v1/deliveries/zz", Some(TOKEN), "").await;
    assert_eq!(
        (status, &missing["error"]),
        (StatusCode::NOT_FOUND, &json!("unknown_delivery"))
    );
}

#[tokio::test]
async fn bad_parameters_are_named() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (app, _components, _store) = app_with_store(dir.path());
    for (query, named) in [
        ("limit=0", "limit"),
        ("limit=5000", "limit"),
        ("status=lost", "status"),
        ("since=x", "since"),
        ("colour=red", "colour"),
        ("cursor=-3", "cursor"),
    ] {
        let (status, error, _) = call(
            &app,
            "GET",
            &format!("/v1/deliveries?{query}"),
            Some(TOKEN),
            "",
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{query}: {error}");
        assert!(
            error["message"].as_str().is_some_and(|m| m.contains(named)),
            "{query}: {error}"
        );
    }
    let (status, error, _) = call(
        &app,
        "POST",
        "/v1/deliveries/replay",
        Some(TOKEN),
        r#"{"status":"queued"}"#,
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{error}");
    // At the bound and one past it.
    let (status, page, _) = call(&app, "GET", "/v1/deliveries?limit=1000", Some(TOKEN), "").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let (status, error, _) = call(&app, "GET", "/v1/deliveries?limit=1001", Some(TOKEN), "").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{error}");
    let body = r#"{"limit":1001}"#;
    let (status, error, _) = call(&app, "POST", "/v1/deliveries/replay", Some(TOKEN), body).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{error}");
}

#[tokio::test]
async fn a_finished_delivery_is_replayed_and_one_in_flight_is_not() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (app, _components, store) = app_with_store(dir.path());
    let (status, refused, _) = call(&app, "POST", "/v1/deliveries/c/replay", Some(TOKEN), "").await;
    assert_eq!(
        (status, &refused["error"]),
        (StatusCode::CONFLICT, &json!("not_finished"))
    );
    let (status, replayed, _) =
        call(&app, "POST", "/v1/deliveries/a/replay", Some(TOKEN), "").await;
    assert_eq!(status, StatusCode::ACCEPTED, "{replayed}");
    store.flush();
    let a = store.detail("a").expect("read").expect("kept");
    assert_eq!(
        a.summary.status,
        Status::InFlight,
        "back in flight until its new outcome"
    );
    // In bulk: the failed ones (none left) by default, the delivered ones when asked.
    let (status, bulk, _) = call(&app, "POST", "/v1/deliveries/replay", Some(TOKEN), "{}").await;
    assert_eq!(
        (status, &bulk["replayed"]),
        (StatusCode::ACCEPTED, &json!(0))
    );
    let (_, bulk, _) = call(
        &app,
        "POST",
        "/v1/deliveries/replay",
        Some(TOKEN),
        r#"{"status":"delivered"}"#,
    )
    .await;
    assert_eq!(bulk["ids"], json!(["b"]));
}

#[tokio::test]
async fn without_a_store_the_routes_say_so() {
    let (app, _components) = app_with(&["bot.example.com"], true, "");
    for (method, path) in [
        ("GET", "/v1/deliveries"),
        ("GET", "/v1/deliveries/x"),
        ("POST", "/v1/deliveries/x/replay"),
    ] {
        let (status, error, _) = call(&app, method, path, Some(TOKEN), "").await;
        assert_eq!(
            (status, &error["error"]),
            (StatusCode::NOT_FOUND, &json!("no_store")),
            "{method} {path}"
        );
    }
}
