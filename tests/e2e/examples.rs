//! Proves the example bots in examples/ work through the real daemon: each one is started
//! as its header comment says, and a real XMPP user gets its echo (and nothing for a
//! body-less message, which the bots answer with 204).

use std::net::{Ipv4Addr, TcpListener};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use tokio::time::Instant;

use crate::fixture::{ask, body, World};
use crate::support::xmpp_server::Server;

const BOT_START_TIMEOUT: Duration = Duration::from_secs(10);
const SILENCE: Duration = Duration::from_secs(2);

/// One example bot, running as a child process (killed on drop) on a loopback port.
pub struct ExampleBot {
    child: Child,
    stderr: Arc<Mutex<String>>,
    pub url: String,
}

impl ExampleBot {
    /// Runs `program args...` (`{port}` in an argument becomes the chosen port) from the
    /// crate root and returns once the port accepts TCP connections. Panics if `program`
    /// is missing, or with the bot's stderr if it does not listen within 10 s.
    pub async fn start(program: &str, args: &[&str]) -> ExampleBot {
        let install_hint = format!(
            "`{program}` not found in PATH: run scripts/test (it installs python3, php-cli \
             and nodejs for the example bots)"
        );
        assert!(in_path(program), "{install_hint}");
        let port = free_port();
        let args: Vec<String> = args
            .iter()
            .map(|a| a.replace("{port}", &port.to_string()))
            .collect();
        let mut child = Command::new(program)
            .args(&args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot spawn {program} {args:?}: {e}\n{install_hint}"));
        let mut pipe = child.stderr.take().expect("child stderr is piped");
        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = Arc::clone(&stderr);
        // Drain stderr continuously (the bots log every request there).
        tokio::spawn(async move {
            let mut buf = [0u8; 4096];
            while let Ok(n) = pipe.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                let text = String::from_utf8_lossy(&buf[..n]);
                sink.lock().expect("stderr buffer lock").push_str(&text);
            }
        });
        let mut bot = ExampleBot {
            child,
            stderr,
            url: format!("http://127.0.0.1:{port}/"),
        };
        let deadline = Instant::now() + BOT_START_TIMEOUT;
        loop {
            if TcpStream::connect((Ipv4Addr::LOCALHOST, port))
                .await
                .is_ok()
            {
                return bot;
            }
            let exited = bot.child.try_wait().expect("poll the bot process");
            if exited.is_some() || Instant::now() > deadline {
                let what = match exited {
                    Some(status) => format!("exited ({status})"),
                    None => format!("is not listening after {BOT_START_TIMEOUT:?}"),
                };
                let _ = bot.child.kill().await;
                // Give the stderr task a moment to collect the last output.
                tokio::time::sleep(Duration::from_millis(100)).await;
                panic!(
                    "{program} {args:?} {what}\nstderr:\n{}",
                    bot.stderr.lock().expect("stderr buffer lock")
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().expect("stderr buffer lock").clone()
    }
}

/// Starts `server` and component-http against `bot`, then checks the echo and the silence.
async fn echoes_through_the_daemon(server: Server, bot: &ExampleBot) {
    let world = World::start_for_url_on(server, &bot.url, "").await;
    let mut alice = world.client("alice").await;

    let reply = ask(&mut alice, "echo@bot.localhost", "hello").await;
    assert_eq!(
        body(&reply),
        "Did you say hello?",
        "bot stderr:\n{}",
        bot.stderr()
    );
    assert_eq!(reply.attr("from"), Some("echo@bot.localhost"));

    // No body: the bot answers 204, so nothing (not even an error) comes back.
    alice
        .send("<message type='chat' to='echo@bot.localhost'><x xmlns='urn:no-body'/></message>")
        .await;
    let answer = alice
        .expect_nothing(SILENCE, |s| s.name() == "message")
        .await;
    assert!(
        answer.is_none(),
        "a body-less message was answered: {}\nbot stderr:\n{}",
        answer.as_ref().map(String::from).unwrap_or_default(),
        bot.stderr()
    );
}

async fn python_echo_bot(server: Server) {
    let bot = ExampleBot::start("python3", &["examples/echo_bot.py", "{port}"]).await;
    echoes_through_the_daemon(server, &bot).await;
}
on_both_servers!(python_echo_bot);

async fn php_echo_bot(server: Server) {
    let bot = ExampleBot::start("php", &["-S", "127.0.0.1:{port}", "examples/echo_bot.php"]).await;
    echoes_through_the_daemon(server, &bot).await;
}
on_both_servers!(php_echo_bot);

async fn node_echo_bot(server: Server) {
    let bot = ExampleBot::start("node", &["examples/echo_bot.js", "{port}"]).await;
    echoes_through_the_daemon(server, &bot).await;
}
on_both_servers!(node_echo_bot);

/// A port on 127.0.0.1 that was free a moment ago.
fn free_port() -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local_addr").port()
}

fn in_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|d| d.join(program).is_file()))
        .unwrap_or(false)
}
