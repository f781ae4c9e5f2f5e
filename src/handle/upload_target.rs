//! Where a component uploads files (XEP-0363): the service from `upload_service`, or the one
//! found by discovery after the handshake, with the service's own size limit; and the
//! component's own limits. Plain state, shared by the API and the dispatch workers; the
//! I/O that fills and uses it is `crate::upload`'s.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use crate::config::ComponentConfig;

/// An upload service as disco#info described it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadService {
    pub jid: String,
    /// The service's `max-file-size` (XEP-0128 form), when it gave one.
    pub max_file_size: Option<u64>,
}

/// A component's upload service and limits.
#[derive(Debug)]
pub struct UploadTarget {
    /// `upload_service`: when set, never replaced by discovery.
    configured: Option<String>,
    service: Mutex<Option<UploadService>>,
    pub max_upload_size: usize,
    pub upload_timeout: Duration,
    /// How long one discovery iq is waited for (the component's `timeout`).
    pub disco_timeout: Duration,
}

impl UploadTarget {
    pub fn new(config: &ComponentConfig) -> UploadTarget {
        UploadTarget {
            configured: config.upload_service.clone(),
            service: Mutex::new(config.upload_service.clone().map(|jid| UploadService {
                jid,
                max_file_size: None,
            })),
            max_upload_size: config.max_upload_size,
            upload_timeout: config.upload_timeout,
            disco_timeout: config.timeout,
        }
    }

    /// The configured service's JID, if `upload_service` is set.
    pub fn configured(&self) -> Option<&str> {
        self.configured.as_deref()
    }

    /// The service uploads go to now, if one is known.
    pub fn service(&self) -> Option<UploadService> {
        self.service
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Records what discovery found (`None`: no service).
    pub fn set_service(&self, service: Option<UploadService>) {
        *self.service.lock().unwrap_or_else(PoisonError::into_inner) = service;
    }
}
