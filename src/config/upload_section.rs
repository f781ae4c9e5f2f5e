//! A component's file-upload keys (XEP-0363): `upload_service` (the service's JID, or found
//! by discovery at connect when left out), `max_upload_size` and `upload_timeout`, checked.

use std::time::Duration;

use super::duration;

/// 10 MiB: Prosody's mod_http_file_share default limit.
pub const DEFAULT_MAX_UPLOAD_SIZE: usize = 10 * 1024 * 1024;
pub const DEFAULT_UPLOAD_TIMEOUT: f64 = 60.0;

/// The upload keys, checked.
pub(super) struct UploadKeys {
    pub(super) upload_service: Option<String>,
    pub(super) max_upload_size: usize,
    pub(super) upload_timeout: Duration,
}

/// Checks the upload keys as serde read them: `upload_service` must be a domain JID (a
/// service has no node or resource), `max_upload_size` at least one byte.
pub(super) fn check_upload(
    upload_service: Option<String>,
    max_upload_size: Option<usize>,
    upload_timeout: Option<f64>,
) -> Result<UploadKeys, String> {
    let upload_service = match upload_service {
        None => None,
        Some(service) => match jid::Jid::new(&service) {
            Ok(jid) if jid.node().is_none() && jid.resource().is_none() => Some(jid.to_string()),
            _ => {
                return Err(format!(
                    "key 'upload_service': '{service}' is not a service's JID (a domain)"
                ))
            }
        },
    };
    let max_upload_size = max_upload_size.unwrap_or(DEFAULT_MAX_UPLOAD_SIZE);
    if max_upload_size == 0 {
        return Err("key 'max_upload_size' must be at least 1".into());
    }
    Ok(UploadKeys {
        upload_service,
        max_upload_size,
        upload_timeout: duration("upload_timeout", upload_timeout, DEFAULT_UPLOAD_TIMEOUT)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_checks() {
        let keys = check_upload(None, None, None).expect("defaults");
        assert!(keys.upload_service.is_none());
        assert_eq!(keys.max_upload_size, 10_485_760);
        assert_eq!(keys.upload_timeout, Duration::from_secs(60));
        let keys = check_upload(Some("Upload.Example.COM".into()), Some(5), Some(2.0))
            .expect("valid keys");
        assert_eq!(keys.upload_service.as_deref(), Some("upload.example.com"));
        for service in ["user@upload.example.com", "upload.example.com/r", ""] {
            let error = check_upload(Some(service.into()), None, None)
                .err()
                .expect("refused");
            assert!(error.contains("upload_service"), "{error}");
        }
        let error = check_upload(None, Some(0), None).err().expect("refused");
        assert!(error.contains("max_upload_size"), "{error}");
        let error = check_upload(None, None, Some(0.0)).err().expect("refused");
        assert!(error.contains("upload_timeout"), "{error}");
    }
}
