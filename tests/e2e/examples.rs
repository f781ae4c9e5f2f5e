//! Proves the example bots in examples/ work through the real daemon: each one is started
//! as its header comment says, and a real XMPP user gets its echo (and nothing for a
//! body-less message, which the bots answer with 204); the image bot draws a valid PNG
//! for an image's URL in its `file` reply field.

use std::net::Ipv4Addr;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use tokio::time::Instant;

use crate::fixture::{ask, body, World};
use crate::support::server_process::free_port;
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

/// Checks a PNG with the Python standard library, independently of the bot's code: the
/// signature, every chunk's CRC, a `width`x`height` 8-bit RGB header, and image data that
/// inflates to one filter byte and `width` pixels per row. Prints the first pixel's colour.
const CHECK_PNG: &str = r#"
import struct, sys, zlib
png = sys.stdin.buffer.read()
assert png[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG signature"
at, chunks = 8, []
while at < len(png):
    (length,) = struct.unpack(">I", png[at:at + 4])
    kind, data = png[at + 4:at + 8], png[at + 8:at + 8 + length]
    (crc,) = struct.unpack(">I", png[at + 8 + length:at + 12 + length])
    assert zlib.crc32(kind + data) & 0xFFFFFFFF == crc, "bad CRC in %r" % kind
    chunks.append((kind, data))
    at += 12 + length
assert [k for k, _ in chunks][0] == b"IHDR" and chunks[-1][0] == b"IEND", chunks
width, height, depth, colour = struct.unpack(">IIBB", chunks[0][1][:10])
assert (depth, colour) == (8, 2), "not 8-bit RGB"
pixels = zlib.decompress(b"".join(d for k, d in chunks if k == b"IDAT"))
assert len(pixels) == height * (1 + 3 * width), len(pixels)
print("%dx%d #%02x%02x%02x" % (width, height, pixels[1], pixels[2], pixels[3]))
"#;

/// What `CHECK_PNG` says of `png`: "64x64 #rrggbb"; panics if it is not a valid PNG.
async fn check_png(png: &[u8]) -> String {
    let mut checker = Command::new("python3")
        .args(["-c", CHECK_PNG])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3");
    let mut stdin = checker.stdin.take().expect("stdin");
    tokio::io::AsyncWriteExt::write_all(&mut stdin, png)
        .await
        .expect("write the PNG");
    drop(stdin);
    let output = checker.wait_with_output().await.expect("checker output");
    assert!(
        output.status.success(),
        "not a valid PNG: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

/// POSTs `request` to the bot as component-http would; returns the status and the JSON.
async fn post_to(bot: &ExampleBot, request: serde_json::Value) -> (u16, serde_json::Value) {
    let response = reqwest::Client::new()
        .post(&bot.url)
        .header("content-type", "application/json")
        .body(request.to_string())
        .send()
        .await
        .expect("the bot answers");
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
    )
}

/// The image bot: through the daemon, its help line for a message without an image and
/// nothing for a chat state; POSTed an image's `oob_url`, a PNG it drew in `file`, the
/// same for the same URL and another for another.
async fn python_image_bot(server: Server) {
    let bot = ExampleBot::start("python3", &["examples/image_bot.py", "{port}"]).await;
    let world = World::start_for_url_on(server, &bot.url, "").await;
    let mut alice = world.client("alice").await;
    let help = ask(&mut alice, "echo@bot.localhost", "hello").await;
    assert!(
        body(&help).starts_with("Send me an image"),
        "bot stderr:\n{}",
        bot.stderr()
    );
    alice
        .send(
            "<message type='chat' to='echo@bot.localhost'>\
               <composing xmlns='http://jabber.org/protocol/chatstates'/></message>",
        )
        .await;
    let answer = alice
        .expect_nothing(SILENCE, |s| s.name() == "message")
        .await;
    assert!(
        answer.is_none(),
        "a chat state was answered: {:?}",
        answer.map(|s| String::from(&s))
    );

    let image = |url: &str| {
        serde_json::json!({ "to": "echo@bot.localhost", "from": "alice@localhost/phone",
                            "kind": "message", "type": "chat", "stanza": "<message/>",
                            "body": url, "oob_url": url, "oob": { "url": url } })
    };
    let mut drawn = Vec::new();
    for url in [
        "https://example.org/cat.png",
        "https://example.org/cat.png",
        "https://example.org/dog.jpg",
    ] {
        let (status, reply) = post_to(&bot, image(url)).await;
        assert_eq!(status, 200, "{reply}");
        let file = &reply["file"];
        assert_eq!(file["content_type"], "image/png", "{reply}");
        assert_eq!(file["name"], "reply.png", "{reply}");
        let data = file["data"].as_str().expect("file.data is a string");
        let png = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, data)
            .expect("file.data is base64");
        let seen = check_png(&png).await;
        assert!(seen.starts_with("64x64 #"), "{seen}");
        drawn.push(seen);
    }
    assert_eq!(drawn[0], drawn[1], "the same URL, the same picture");
    assert_ne!(drawn[0], drawn[2], "another URL, another colour");
}
on_both_servers!(python_image_bot);

fn in_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|d| d.join(program).is_file()))
        .unwrap_or(false)
}
