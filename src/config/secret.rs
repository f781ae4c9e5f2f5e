//! Secrets in the configuration — the component secret, the webhook signing key, static
//! request headers, a password in the webhook URL — kept out of every printout, and read
//! from files when asked.

use std::fmt;
use std::ops::Deref;
use std::path::Path;

use serde::{Serialize, Serializer};

/// A shared secret; never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str("***")
    }
}

/// The key that signs webhook requests (Standard Webhooks); never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningKey(Vec<u8>);

impl SigningKey {
    pub fn bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl Serialize for SigningKey {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str("***")
    }
}

/// The webhook URL (`post_url`); a password in it is printed as `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct PostUrl(url::Url);

impl PostUrl {
    pub fn new(url: url::Url) -> PostUrl {
        PostUrl(url)
    }

    /// The URL as printed: its password, if any, replaced by `***`.
    fn shown(&self) -> url::Url {
        let mut shown = self.0.clone();
        if shown.password().is_some() {
            let _ = shown.set_password(Some("***"));
        }
        shown
    }
}

impl Deref for PostUrl {
    type Target = url::Url;

    fn deref(&self) -> &url::Url {
        &self.0
    }
}

impl fmt::Debug for PostUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.shown().as_str(), f)
    }
}

impl Serialize for PostUrl {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.shown().as_str())
    }
}

/// `whsec_` followed by base64: the Standard Webhooks form of a signing key.
pub(super) fn signing_key(text: &str) -> Result<SigningKey, String> {
    use base64::Engine;
    let encoded = text
        .strip_prefix("whsec_")
        .ok_or("key 'signing_secret' must start with 'whsec_' (then base64)")?;
    match base64::engine::general_purpose::STANDARD.decode(encoded) {
        Ok(key) if !key.is_empty() => Ok(SigningKey(key)),
        _ => Err("key 'signing_secret': the part after 'whsec_' is not base64".into()),
    }
}

/// Header names and values checked now, so that every request can carry them.
pub(super) fn post_headers(
    raw: std::collections::BTreeMap<String, String>,
) -> Result<Vec<(String, Secret)>, String> {
    let mut headers = Vec::new();
    for (name, value) in raw {
        let lower = name.to_ascii_lowercase();
        if lower == "content-type" || lower.starts_with("webhook-") {
            return Err(format!(
                "key 'post_headers.{name}': this header is set by component-http"
            ));
        }
        if http::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
            return Err(format!(
                "key 'post_headers.{name}': not a valid header name"
            ));
        }
        if http::header::HeaderValue::from_str(&value).is_err() {
            return Err(format!(
                "key 'post_headers.{name}': not a valid header value"
            ));
        }
        headers.push((name, Secret(value)));
    }
    Ok(headers)
}

pub(super) fn read_secret_file(path: &Path) -> Result<String, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("key 'secret_file': cannot read {}: {e}", path.display()))?;
    Ok(text.trim_end_matches(['\r', '\n']).to_string())
}
