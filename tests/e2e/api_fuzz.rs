//! A bounded schemathesis run (PyPI) against the OpenAPI document: generated requests, many
//! of them malformed, sent to the real API of a daemon connected to a real Prosody. No
//! response may be a server error, and the daemon must keep serving.

use std::time::Duration;

use crate::fixture::World;
use crate::support::xmpp_server::Server;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_server_error() {
    let port = crate::support::server_process::free_port();
    let token = "schemathesis-token-0123456789";
    // With a delivery log, so that /v1/deliveries and the replays are exercised, not 404.
    let store = tempfile::tempdir().expect("temp dir for the store");
    let extra = format!(
        "[api]\nlisten = \"127.0.0.1:{port}\"\ntoken = \"{token}\"\niq_timeout = 2\nmax_iq_timeout = 3\n\
         [store]\npath = \"{}\"\n",
        store.path().join("deliveries.db").display()
    );
    let world = World::start_on(Server::Prosody, &extra).await;
    let mut alice = world.client("alice").await;
    // A delivery in the log, for the routes to find.
    crate::fixture::ask(&mut alice, crate::fixture::DOMAIN, "hello").await;
    let schema = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/openapi.json");
    // schemathesis keeps an example database in its working directory: not in the repo.
    let scratch = tempfile::tempdir().expect("temp dir");
    let run = tokio::process::Command::new("schemathesis")
        .args(["run", schema, "--url", &format!("http://127.0.0.1:{port}")])
        .args(["--header", &format!("Authorization: Bearer {token}")])
        .args([
            "--checks",
            "not_a_server_error",
            "--max-examples",
            "40",
            "--seed",
            "1",
        ])
        .env("SCHEMATHESIS_TELEMETRY", "false")
        .current_dir(scratch.path())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(300), run)
        .await
        .expect("schemathesis finishes within 5 minutes")
        .expect("schemathesis is installed (run scripts/test)");
    let report = String::from_utf8_lossy(&output.stdout);
    println!("{report}");
    assert!(
        output.status.success(),
        "schemathesis found problems:\n{report}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let health = reqwest::get(format!("http://127.0.0.1:{port}/healthz"))
        .await
        .expect("API still up");
    assert_eq!(
        health.status().as_u16(),
        200,
        "the daemon is still connected after the run"
    );
}
