//! A delivery log written by the first build that had one (schema version 1: the body in
//! the delivery's row, an index of the unfinished ones), left with a delivery in flight, as
//! a crash of that build would leave it: the binary of this build moves the file to its own
//! schema at start and makes that delivery again, with its webhook-id, and the sender gets
//! the reply.

use std::path::Path;
use std::time::Duration;

use serde_json::json;

use super::{
    api, bodies_received, echo_after, eventually, prosody_with_senders, senders, store_config,
    webhook_id, DaemonProcess,
};
use crate::fixture::DOMAIN;
use crate::support::server_process::free_port;
use crate::webhook_server::WebhookServer;

/// Version 1's table and index, as that build made them.
const VERSION_1: &str = "
CREATE TABLE deliveries (seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE,
    component TEXT NOT NULL, sender TEXT NOT NULL, recipient TEXT NOT NULL,
    kind TEXT NOT NULL, stanza_type TEXT, stanza_id TEXT, from_room INTEGER NOT NULL,
    receipt INTEGER NOT NULL, party TEXT NOT NULL, request BLOB NOT NULL,
    received_at INTEGER NOT NULL, status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0, attempt_log TEXT NOT NULL DEFAULT '',
    finished_at INTEGER, sent TEXT, error TEXT);
CREATE INDEX deliveries_unfinished ON deliveries (component, seq)
    WHERE status IN ('in_flight', 'queued');
PRAGMA user_version = 1;
";

const ID: &str = "msg_left_by_version_1";

/// A version 1 file holding `rows` (id, body, status), each a chat message from
/// `u0@localhost` to the component; a version 1 file is what any later build reads.
pub(super) fn version_1_file(path: &Path, rows: &[(String, String, &str)]) {
    let mut connection = rusqlite::Connection::open(path).expect("sqlite");
    connection
        .execute_batch(VERSION_1)
        .expect("version 1's tables");
    let transaction = connection.transaction().expect("transaction");
    for (id, body, status) in rows {
        let request = json!({
            "kind": "message", "type": "chat", "id": format!("s-{id}"),
            "from": "u0@localhost/old", "to": DOMAIN, "body": body,
        });
        transaction
            .execute(
                "INSERT INTO deliveries (id, component, sender, recipient, kind, stanza_type, \
                 stanza_id, from_room, receipt, party, request, received_at, status) \
                 VALUES (?1, ?2, 'u0@localhost', ?2, 'message', 'chat', ?3, 0, 0, \
                 'u0@localhost', ?4, 1, ?5)",
                rusqlite::params![
                    id,
                    DOMAIN,
                    format!("s-{id}"),
                    request.to_string().into_bytes(),
                    status
                ],
            )
            .expect("a delivery");
    }
    transaction.commit().expect("commit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_1_file_is_moved_at_start_and_its_delivery_in_flight_made_again() {
    let server = prosody_with_senders(1);
    let webhook = WebhookServer::start(echo_after(Duration::ZERO)).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let rows = [
        ("msg_finished_by_version_1", "answered", "delivered"),
        (ID, "left in flight", "in_flight"),
    ]
    .map(|(id, body, status)| (id.to_string(), body.to_string(), status));
    version_1_file(&dir.path().join("deliveries.db"), &rows);
    let api_port = free_port();
    let config = store_config(&server, &webhook.url, dir.path(), api_port, "");
    let mut clients = senders(&server, 1).await;
    let daemon = DaemonProcess::start(dir.path(), &config);

    let bodies = bodies_received(&mut clients[0], 1, Duration::from_secs(30)).await;
    assert_eq!(
        bodies,
        ["echo left in flight"],
        "daemon log:\n{}",
        daemon.log_text()
    );
    let ids: Vec<String> = webhook.requests().iter().map(webhook_id).collect();
    assert_eq!(ids, [ID], "the finished one is not made again");
    // Its outcome is written in the writer's next batch after the reply went out.
    let url = format!("http://127.0.0.1:{api_port}/v1/deliveries/{ID}");
    let detail = || async {
        let (status, detail) = api(reqwest::Method::GET, url.clone(), None).await;
        assert_eq!(status, 200, "{detail}");
        detail
    };
    eventually(
        Duration::from_secs(10),
        "the delivery kept as delivered",
        || async { detail().await["status"] == "delivered" },
    )
    .await;
    assert_eq!(detail().await["request"]["body"], "left in flight");
    daemon.stop().await;
}
