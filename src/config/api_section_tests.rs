//! The `[api]` section as a user writes it: its documented defaults, and each bad value
//! named with its section and key.

use std::time::Duration;

use super::super::tests::{parse, MINIMAL};

#[test]
fn api_section_has_defaults_and_named_errors() {
    let text = format!("[api]\ntoken = \"0123456789abcdef\"\n{MINIMAL}");
    let api = parse(&text).expect("valid").api.expect("api configured");
    assert_eq!(api.listen.to_string(), "127.0.0.1:5380");
    assert_eq!(api.iq_timeout, Duration::from_secs(30));
    assert_eq!(api.max_iq_timeout, Duration::from_secs(120));
    assert_eq!(api.max_request_size, 256 * 1024);
    assert_eq!(api.max_connections, 256);
    assert_eq!(api.header_timeout, Duration::from_secs(10));
    assert_eq!(api.body_timeout, Duration::from_secs(30));
    assert_eq!(api.write_timeout, Duration::from_secs(30));
    assert_eq!(api.max_pending_iqs, 128);
    assert!(
        parse(MINIMAL).expect("valid").api.is_none(),
        "no [api], no API"
    );
    let no_token = format!("[api]\nlisten = \"127.0.0.1:1\"\n{MINIMAL}");
    assert!(parse(&no_token)
        .expect_err("token")
        .contains("[api]: missing key 'token'"));
    let short = format!("[api]\ntoken = \"short\"\n{MINIMAL}");
    assert!(parse(&short).expect_err("short").contains("16 characters"));
    let bad_listen =
        format!("[api]\ntoken = \"0123456789abcdef\"\nlisten = \"nowhere\"\n{MINIMAL}");
    assert!(parse(&bad_listen).expect_err("listen").contains("'listen'"));
    let printed = parse(&text).expect("valid").to_redacted_toml();
    assert!(!printed.contains("0123456789abcdef"), "{printed}");
}

#[test]
fn api_connection_and_iq_limits_are_checked() {
    let api = |keys: &str| {
        parse(&format!(
            "[api]\ntoken = \"0123456789abcdef\"\n{keys}\n{MINIMAL}"
        ))
    };
    let set = api("max_connections = 8\nheader_timeout = 1.5\nbody_timeout = 2\nwrite_timeout = 3\nmax_pending_iqs = 4")
        .expect("valid")
        .api
        .expect("api configured");
    assert_eq!(set.max_connections, 8);
    assert_eq!(set.header_timeout, Duration::from_millis(1500));
    assert_eq!(set.body_timeout, Duration::from_secs(2));
    assert_eq!(set.write_timeout, Duration::from_secs(3));
    assert_eq!(set.max_pending_iqs, 4);
    for (keys, named) in [
        ("max_connections = 0", "'max_connections'"),
        ("max_connections = 1000001", "'max_connections'"),
        ("max_pending_iqs = 0", "'max_pending_iqs'"),
        ("header_timeout = 0", "'header_timeout'"),
        ("body_timeout = -1", "'body_timeout'"),
        ("write_timeout = 100000", "'write_timeout'"),
    ] {
        let error = api(keys).expect_err(keys);
        assert!(
            error.contains("[api]") && error.contains(named),
            "{keys}: {error}"
        );
    }
    let printed = api("max_connections = 8")
        .expect("valid")
        .to_redacted_toml();
    for key in [
        "max_connections = 8",
        "header_timeout = 10.0",
        "body_timeout = 30.0",
        "write_timeout = 30.0",
        "max_pending_iqs = 128",
    ] {
        assert!(
            printed.contains(key),
            "check-config prints {key}: {printed}"
        );
    }
}
