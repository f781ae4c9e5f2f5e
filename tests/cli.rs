//! The `component-http` binary as a user runs it, with nothing else installed: `check-config`
//! on good and bad files (a bad room among them), a missing `--config`, `--version` and `--help`. (Against a real
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
        ("{ jid = \"lobby@conference.example.com\" }", "rooms[0].nick"),
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
    assert!(!stdout.contains("hunter2"), "the room's password is a secret: {stdout}");
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
