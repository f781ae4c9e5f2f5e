//! Configuration files as a user writes them, good and bad. Its `parse` and `MINIMAL`
//! serve the sections' own tests too.

use super::*;

pub(super) fn parse(text: &str) -> Result<Config, String> {
    Config::parse(text, Path::new("/nonexistent"))
}

pub(super) const MINIMAL: &str = r#"
[[component]]
domain = "bot.example.com"
secret = "s3cret"
post_url = "https://example.com/your-api"
"#;

#[test]
fn minimal_file_gets_the_documented_defaults() {
    let config = parse(MINIMAL).expect("valid");
    let c = &config.components[0];
    assert_eq!(c.domain, "bot.example.com");
    assert_eq!((c.server_host.as_str(), c.server_port), ("127.0.0.1", 5347));
    assert_eq!(c.stanzas, [Kind::Message]);
    assert_eq!(c.timeout, Duration::from_secs(10));
    assert_eq!(c.keepalive, Duration::from_secs(60));
    assert_eq!(c.max_in_flight, 256);
    assert_eq!(c.max_connections, 64);
    assert_eq!(c.max_response_size, 1024 * 1024);
    assert_eq!(c.reconnect_delay, Duration::from_millis(500));
    assert_eq!(c.reconnect_max_delay, Duration::from_secs(30));
}

#[test]
fn prosody_option_names_are_aliases() {
    for key in ["component_post_stanzas", "post_stanza_types", "stanzas"] {
        let text = format!(
            "[server]\nhost = \"xmpp.example.com\"\nport = 5275\n[[component]]\n\
             domain = \"bot.example.com\"\ncomponent_secret = \"s\"\n\
             component_post_url = \"http://127.0.0.1:1/\"\n{key} = [\"message\", \"iq\", \"presence\"]\n"
        );
        let config = parse(&text).expect(key);
        let c = &config.components[0];
        assert_eq!(c.stanzas, [Kind::Message, Kind::Iq, Kind::Presence]);
        assert_eq!(c.secret.expose(), "s");
        assert_eq!(
            (c.server_host.as_str(), c.server_port),
            ("xmpp.example.com", 5275)
        );
    }
}

#[test]
fn several_components() {
    let text = format!("{MINIMAL}\n[[component]]\ndomain = \"two.example.com\"\nsecret = \"x\"\npost_url = \"http://localhost/\"\n");
    assert_eq!(parse(&text).expect("valid").components.len(), 2);
    let twice = format!("{MINIMAL}{MINIMAL}");
    assert!(parse(&twice)
        .expect_err("duplicate")
        .contains("configured twice"));
}

#[test]
fn unknown_key_is_named() {
    let error = parse(&MINIMAL.replace("post_url", "post_ur")).expect_err("typo");
    assert!(error.contains("post_ur"), "{error}");
    let error = parse(&format!("{MINIMAL}timeuot = 3\n")).expect_err("typo");
    assert!(error.contains("timeuot"), "{error}");
}

#[test]
fn unknown_stanza_kind_is_named() {
    let error = parse(&format!("{MINIMAL}stanzas = [\"mesage\"]\n")).expect_err("bad kind");
    assert!(error.contains("mesage"), "{error}");
}

#[test]
fn missing_url_or_secret_is_named() {
    let error = parse(&MINIMAL.replace("post_url = \"https://example.com/your-api\"", ""))
        .expect_err("no url");
    assert!(error.contains("post_url"), "{error}");
    let error = parse(&MINIMAL.replace("secret = \"s3cret\"", "")).expect_err("no secret");
    assert!(error.contains("'secret'"), "{error}");
    let error =
        parse("[[component]]\nsecret = \"s\"\npost_url = \"http://a/\"\n").expect_err("no domain");
    assert!(error.contains("domain"), "{error}");
    assert!(parse("[server]\nport = 1\n")
        .expect_err("none")
        .contains("[[component]]"));
}

#[test]
fn secret_file_is_read_and_an_unreadable_one_named() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("bot.secret"), "from-file\n").expect("write");
    let text = MINIMAL.replace("secret = \"s3cret\"", "secret_file = \"bot.secret\"");
    let config = Config::parse(&text, dir.path()).expect("valid");
    assert_eq!(config.components[0].secret.expose(), "from-file");
    let missing = MINIMAL.replace("secret = \"s3cret\"", "secret_file = \"nope\"");
    let error = Config::parse(&missing, dir.path()).expect_err("unreadable");
    assert!(error.contains("secret_file"), "{error}");
}

#[test]
fn bad_values_are_named() {
    let bad_url = MINIMAL.replace("https://example.com/your-api", "ftp://example.com/");
    assert!(parse(&bad_url).expect_err("scheme").contains("post_url"));
    let bad_domain = MINIMAL.replace("bot.example.com", "user@bot.example.com");
    assert!(parse(&bad_domain).expect_err("domain").contains("domain"));
    assert!(parse(&format!("{MINIMAL}timeout = 0\n"))
        .expect_err("timeout")
        .contains("timeout"));
    assert!(parse(&format!("{MINIMAL}max_in_flight = 0\n"))
        .expect_err("bound")
        .contains("max_in_flight"));
    assert!(parse(&format!("{MINIMAL}max_connections = 0\n"))
        .expect_err("bound")
        .contains("max_connections"));
}

#[test]
fn connections_are_never_more_than_the_stanzas_in_flight() {
    let config = parse(&format!("{MINIMAL}max_in_flight = 8\n")).expect("valid");
    assert_eq!(config.components[0].max_connections, 8);
    let config = parse(&format!(
        "{MINIMAL}max_in_flight = 10000\nmax_connections = 32\n"
    ))
    .expect("valid");
    assert_eq!(config.components[0].max_connections, 32);
}

#[test]
fn load_names_the_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, MINIMAL.replace("post_url", "post_ur")).expect("write");
    let error = Config::load(&path).expect_err("typo").to_string();
    assert!(error.starts_with(&path.display().to_string()), "{error}");
    assert!(error.contains("post_ur"), "{error}");
}

#[test]
fn printed_configuration_hides_secrets() {
    let printed = parse(MINIMAL).expect("valid").to_redacted_toml();
    assert!(printed.contains("secret = \"***\""), "{printed}");
    assert!(!printed.contains("s3cret"));
    assert!(format!("{:?}", parse(MINIMAL).expect("valid")).contains("***"));
    let with_password = MINIMAL.replace("https://example.com", "https://bot:hunter2@example.com");
    let printed = parse(&with_password).expect("valid").to_redacted_toml();
    assert!(
        printed.contains("https://bot:***@example.com/"),
        "{printed}"
    );
    assert!(!printed.contains("hunter2"));
    let debugged = format!("{:?}", parse(&with_password).expect("valid"));
    assert!(
        debugged.contains("https://bot:***@example.com/"),
        "{debugged}"
    );
    assert!(!debugged.contains("hunter2"), "{debugged}");
}

#[test]
fn delivery_keys_have_documented_defaults() {
    let c = &parse(MINIMAL).expect("valid").components[0];
    assert!(c.ordered);
    assert_eq!(
        c.rate_limit,
        Some(RateLimit {
            per_second: 10.0,
            burst: 50,
            max_senders: 100_000
        })
    );
    assert_eq!(
        c.retry,
        RetryPolicy {
            max_attempts: 3,
            max_elapsed: Duration::from_secs(30)
        }
    );
    assert!(c.signing_secret.is_none());
    assert!(c.post_headers.is_empty());
    assert_eq!(c.max_stanza_size, 256 * 1024);
    assert_eq!(c.max_read_size, 4 * 1024 * 1024);
    assert_eq!(c.max_queued_replies, 1024);
    assert_eq!(c.shutdown_timeout, Duration::from_secs(10));
}

#[test]
fn delivery_keys_are_read() {
    let text = format!(
        "{MINIMAL}ordered = false\nsigning_secret = \"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"\n\
         rate_limit = {{ per_second = 2.5, burst = 5 }}\nretry = {{ max_attempts = 5, max_elapsed = 60 }}\n\
         post_headers = {{ Authorization = \"Bearer t0ken\" }}\n"
    );
    let config = parse(&text).expect("valid");
    let c = &config.components[0];
    assert!(!c.ordered);
    let limit = c.rate_limit.expect("rate limit");
    assert_eq!((limit.per_second, limit.burst), (2.5, 5));
    assert_eq!(c.retry.max_attempts, 5);
    assert_eq!(c.signing_secret.as_ref().map(|k| k.bytes().len()), Some(24));
    assert_eq!(c.post_headers[0].0, "Authorization");
    let printed = config.to_redacted_toml();
    assert!(
        !printed.contains("t0ken") && !printed.contains("MfKQ9r8"),
        "{printed}"
    );
    assert!(!format!("{config:?}").contains("t0ken"));
}

#[test]
fn bad_delivery_keys_are_named() {
    let bad_key = format!("{MINIMAL}signing_secret = \"not-whsec\"\n");
    assert!(parse(&bad_key)
        .expect_err("prefix")
        .contains("signing_secret"));
    let reserved = format!("{MINIMAL}post_headers = {{ webhook-id = \"x\" }}\n");
    assert!(parse(&reserved)
        .expect_err("reserved")
        .contains("post_headers.webhook-id"));
    let bad_rate = format!("{MINIMAL}rate_limit = {{ per_second = 0 }}\n");
    assert!(parse(&bad_rate)
        .expect_err("rate")
        .contains("rate_limit.per_second"));
    let typo = format!("{MINIMAL}retry = {{ max_atempts = 2 }}\n");
    assert!(parse(&typo).expect_err("typo").contains("max_atempts"));
    let small_read = format!("{MINIMAL}max_read_size = 1000\n");
    assert!(parse(&small_read)
        .expect_err("below max_stanza_size")
        .contains("max_read_size"));
}

#[test]
fn stanza_limits_have_defaults_and_bounds() {
    let config = parse(MINIMAL).expect("valid");
    let c = &config.components[0];
    assert_eq!(c.max_depth, 64);
    assert_eq!(c.max_outgoing_size, 512 * 1024);
    let printed = config.to_redacted_toml();
    assert!(printed.contains("max_depth = 64"), "{printed}");
    assert!(printed.contains("max_outgoing_size = 524288"), "{printed}");
    let set = parse(&format!(
        "{MINIMAL}max_depth = 1024
max_outgoing_size = 65536
"
    ));
    let set = set.expect("valid");
    assert_eq!(set.components[0].max_depth, 1024);
    assert_eq!(set.components[0].max_outgoing_size, 65536);
    for bad in [
        "max_depth = 1",
        "max_depth = 1025",
        "max_outgoing_size = 100",
    ] {
        let key = bad.split(' ').next().unwrap_or_default();
        let error = parse(&format!(
            "{MINIMAL}{bad}
"
        ))
        .expect_err(bad);
        assert!(error.contains(key), "{bad}: {error}");
    }
}

#[test]
fn typing_notice_can_be_turned_off() {
    let c = &parse(MINIMAL).expect("valid").components[0];
    assert_eq!(c.typing_after, Some(Duration::from_secs(1)));
    let off = parse(&format!("{MINIMAL}typing_after = 0\n")).expect("valid");
    assert_eq!(off.components[0].typing_after, None);
}

#[test]
fn chat_states_are_forwarded_and_receipts_sent_unless_turned_off() {
    let c = &parse(MINIMAL).expect("valid").components[0];
    assert!(c.forward_chat_states && c.receipts);
    let text = format!("{MINIMAL}forward_chat_states = false\nreceipts = false\n");
    let c = &parse(&text).expect("valid").components[0];
    assert!(!c.forward_chat_states && !c.receipts);
    let wrong = parse(&format!("{MINIMAL}receipts = \"yes\"\n")).expect_err("not a bool");
    assert!(wrong.contains("receipts"), "{wrong}");
}

#[test]
fn fairness_bounds_have_documented_defaults() {
    let c = &parse(MINIMAL).expect("valid").components[0];
    assert_eq!(c.max_queued_per_conversation, 32);
    assert_eq!(c.max_in_flight_per_sender, 64);
    let text = format!("{MINIMAL}max_queued_per_conversation = 0\nmax_in_flight_per_sender = 5\n");
    let c = &parse(&text).expect("valid").components[0];
    assert_eq!(
        (c.max_queued_per_conversation, c.max_in_flight_per_sender),
        (0, 5)
    );
    // Never more than max_in_flight: past it, the slots bound it anyway.
    let small = format!("{MINIMAL}max_in_flight = 16\n");
    assert_eq!(
        parse(&small).expect("valid").components[0].max_in_flight_per_sender,
        16
    );
    assert!(parse(&format!("{MINIMAL}max_in_flight_per_sender = 0\n"))
        .expect_err("bound")
        .contains("max_in_flight_per_sender"));
}

#[test]
fn rate_limit_is_on_unless_turned_off() {
    let limit = |extra: &str| {
        parse(&format!("{MINIMAL}{extra}\n"))
            .expect("valid")
            .components[0]
            .rate_limit
    };
    assert_eq!(limit("rate_limit = false"), None);
    assert_eq!(limit("rate_limit = true"), Some(DEFAULT_RATE_LIMIT));
    assert_eq!(limit(""), Some(DEFAULT_RATE_LIMIT));
    // A table says what it says: `burst` still defaults to `per_second` rounded up.
    assert_eq!(
        limit("rate_limit = { per_second = 2.5, max_senders = 7 }"),
        Some(RateLimit {
            per_second: 2.5,
            burst: 3,
            max_senders: 7
        })
    );
    let typo = parse(&format!("{MINIMAL}rate_limit = {{ per_secnod = 2 }}\n")).expect_err("typo");
    assert!(typo.contains("per_secnod"), "{typo}");
    let wrong = parse(&format!("{MINIMAL}rate_limit = \"off\"\n")).expect_err("a string");
    assert!(
        wrong.contains("rate_limit") && wrong.contains("false, true or a table"),
        "{wrong}"
    );
    let printed = parse(&format!("{MINIMAL}rate_limit = false\n"))
        .expect("valid")
        .to_redacted_toml();
    assert!(!printed.contains("per_second"), "{printed}");
    assert!(printed.contains("\nrate_limit = false\n"), "{printed}");
    let printed = parse(MINIMAL).expect("valid").to_redacted_toml();
    assert!(printed.contains("per_second = 10.0"), "{printed}");
}

#[test]
fn own_domains_are_every_domain_served() {
    let text = format!("{MINIMAL}\n[[component]]\ndomain = \"two.example.com\"\nsecret = \"x\"\npost_url = \"http://localhost/\"\nforward_from_own_domains = true\n");
    let config = parse(&text).expect("valid");
    for c in &config.components {
        assert_eq!(c.own_domains, ["bot.example.com", "two.example.com"]);
    }
    assert!(!config.components[0].forward_from_own_domains);
    assert!(config.components[1].forward_from_own_domains);
    let printed = config.to_redacted_toml();
    assert!(
        !printed.lines().any(|line| line.starts_with("own_domains")),
        "derived, not configured: {printed}"
    );
}
