//! The `component-http` binary as a user runs it, with nothing else installed: `check-config`
//! on good and bad files (a bad room among them), a corrupt store file refused at start, a
//! missing `--config`, `--version` and `--help`. (Against a real
//! server: tests/cli_against_prosody.rs.)

use std::process::{Command, Output};

const BINARY: &str = env!("CARGO_BIN_EXE_component-http");

fn run(args: &[&str]) -> Output {
    Command::new(BINARY)
        .args(args)
        .output()
        .expect("run component-http")
}

fn write_config(dir: &tempfile::TempDir, text: &str) -> String {
    let path = dir.path().join("component-http.toml");
    std::fs::write(&path, text).expect("write config");
    path.display().to_string()
}

const GOOD: &str = "[server]\nport = 5347\n\n[[component]]\ndomain = \"bot.example.com\"\n\
                    secret = \"s3cret\"\npost_url = \"http://127.0.0.1:8080/hook\"\n";

#[test]
fn check_config_prints_the_effective_configuration_without_secrets() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = write_config(&dir, GOOD);
    let output = run(&["check-config", "--config", &path]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{output:?}");
    assert!(stdout.contains("domain = \"bot.example.com\""), "{stdout}");
    assert!(stdout.contains("timeout = 10.0"), "{stdout}");
    assert!(stdout.contains("secret = \"***\""), "{stdout}");
    assert!(!stdout.contains("s3cret"), "{stdout}");
}

#[test]
fn check_config_names_the_file_and_a_mistyped_key() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = write_config(&dir, &GOOD.replace("post_url", "post_ulr"));
    let output = run(&["check-config", "--config", &path]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(78), "EX_CONFIG: {stderr}");
    assert!(stderr.contains(&path), "{stderr}");
    assert!(stderr.contains("post_ulr"), "{stderr}");
}

#[test]
fn check_config_names_the_file_and_the_key_of_a_bad_room() {
    let dir = tempfile::tempdir().expect("temp dir");
    for (room, key) in [
        (
            "{ jid = \"lobby@conference.example.com\" }",
            "rooms[0].nick",
        ),
        (
            "{ jid = \"conference.example.com\", nick = \"EchoBot\" }",
            "rooms[0].jid",
        ),
    ] {
        let path = write_config(&dir, &format!("{GOOD}rooms = [{room}]\n"));
        let output = run(&["check-config", "--config", &path]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(78), "EX_CONFIG: {stderr}");
        assert!(stderr.contains(&path), "{stderr}");
        assert!(stderr.contains(key), "{stderr}");
    }
    let good = format!(
        "{GOOD}rooms = [{{ jid = \"lobby@conference.example.com\", nick = \"EchoBot\", \
         password = \"hunter2\" }}]\n"
    );
    let output = run(&["check-config", "--config", &write_config(&dir, &good)]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{output:?}");
    assert!(stdout.contains("lobby@conference.example.com"), "{stdout}");
    assert!(
        !stdout.contains("hunter2"),
        "the room's password is a secret: {stdout}"
    );
}

/// A store file that is not a delivery log stops the start, naming the file, before any
/// connection is tried (nothing listens on the configured server port).
#[test]
fn a_corrupt_store_file_is_refused_at_start_with_its_name() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = dir.path().join("deliveries.db");
    std::fs::write(
        &store,
        b"this is not an SQLite database, whatever its name says......".repeat(100),
    )
    .expect("write the corrupt file");
    let config = format!("[store]\npath = \"deliveries.db\"\n\n{GOOD}");
    let path = write_config(&dir, &config);
    let started = std::time::Instant::now();
    let output = run(&["--config", &path]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(stderr.contains(&store.display().to_string()), "{stderr}");
    assert!(stderr.contains("not a database"), "{stderr}");
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    // The file is left as it was: never written over.
    let kept = std::fs::read(&store).expect("still there");
    assert!(kept.starts_with(b"this is not an SQLite database"));
}

#[test]
fn missing_config_option_is_explained() {
    let output = run(&[]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--config"));
}

#[test]
fn version_and_help() {
    let version = run(&["--version"]);
    assert!(String::from_utf8_lossy(&version.stdout).contains(env!("CARGO_PKG_VERSION")));
    let help = run(&["--help"]);
    assert!(String::from_utf8_lossy(&help.stdout).contains("check-config"));
}
