//! The `component-http` binary against a real Prosody (`--features system-tests`): a wrong
//! secret must make it exit with EX_CONFIG and a message that says to check the secret.
//! (Its runs without a server: tests/cli.rs.)

mod support;

use std::process::Command;
use std::time::Duration;

const BINARY: &str = env!("CARGO_BIN_EXE_component-http");

fn write_config(dir: &tempfile::TempDir, text: &str) -> String {
    let path = dir.path().join("component-http.toml");
    std::fs::write(&path, text).expect("write config");
    path.display().to_string()
}

#[test]
fn wrong_secret_exits_non_zero_with_a_clear_message() {
    let prosody = support::prosody::Prosody::start(&[("bot.localhost", "right")], &[]);
    let dir = tempfile::tempdir().expect("temp dir");
    let text = format!(
        "[server]\nport = {}\n\n[[component]]\ndomain = \"bot.localhost\"\nsecret = \"wrong\"\n\
         post_url = \"http://127.0.0.1:9/\"\n",
        prosody.component_port
    );
    let path = write_config(&dir, &text);
    let mut child = Command::new(BINARY)
        .args(["--config", &path])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start component-http");
    let started = std::time::Instant::now();
    while child.try_wait().expect("poll child").is_none() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "still running with a wrong secret"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let output = child.wait_with_output().expect("collect output");
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("exit status {:?}, stderr:\n{stderr}", output.status.code());
    assert_eq!(output.status.code(), Some(78), "EX_CONFIG: {stderr}");
    assert!(
        stderr.contains("handshake rejected by the server for bot.localhost: check the secret"),
        "{stderr}"
    );
}
