//! XEP-0363 HTTP upload, done by the daemon for `POST /v1/upload` and the `file` field: a
//! slot asked of the upload service as the component (`slot.rs`), the bytes PUT to it
//! (`put.rs`), the GET URL handed back; and the service found after each handshake when
//! `upload_service` is not set (`discovery.rs`). Every step is bounded: the file by
//! `max_upload_size` and the service's own limit, the whole upload by `upload_timeout`.

mod discovery;
mod put;
mod slot;

pub use discovery::discover;

use std::time::Duration;

use bytes::Bytes;
use minidom::rxml::xml_ncname;
use minidom::Element;

use crate::handle::pending_iqs::new_api_id;
use crate::handle::ComponentHandle;
use crate::stanza::attachment::{PendingFile, FILE_TOO_LARGE, UPLOAD_FAILED};
use crate::stanza::Head;
use crate::xml::set_attr;

/// XEP-0363's namespace.
pub const UPLOAD_NS: &str = "urn:xmpp:http:upload:0";

/// Why a file was not uploaded.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error("the file is {size} bytes: larger than {}", limits(*max_upload_size, *service_limit))]
    TooLarge {
        size: usize,
        max_upload_size: usize,
        service_limit: Option<u64>,
    },
    #[error("no upload service: set 'upload_service', or let the server list one (disco#items)")]
    NoService,
    #[error("the upload service {service} refused a slot: {condition}{}", text.as_deref().map(|t| format!(" ({t})")).unwrap_or_default())]
    Refused {
        service: String,
        condition: String,
        text: Option<String>,
    },
    #[error("the upload service's answer is not a slot: {0}")]
    BadSlot(String),
    #[error("the slot request could not be sent: {0}")]
    NotSent(String),
    #[error("no upload within upload_timeout ({0:.1} s)")]
    TimedOut(f64),
    #[error("the upload (HTTP PUT) failed: {0}")]
    PutFailed(String),
}

fn limits(max_upload_size: usize, service_limit: Option<u64>) -> String {
    match service_limit {
        Some(limit) => format!(
            "max_upload_size ({max_upload_size} bytes) or the service's max-file-size ({limit} bytes)"
        ),
        None => format!("max_upload_size ({max_upload_size} bytes)"),
    }
}

/// Uploads `data` as `name` for the component of `handle`, within `upload_timeout`; the
/// URL it can be fetched from.
pub async fn upload(
    handle: &ComponentHandle,
    name: &str,
    content_type: &str,
    data: Bytes,
) -> Result<String, UploadError> {
    let target = handle.uploads();
    let service = target.service();
    let service_limit = service.as_ref().and_then(|s| s.max_file_size);
    let too_large = data.len() > target.max_upload_size
        || service_limit.is_some_and(|limit| data.len() as u64 > limit);
    if too_large {
        return Err(UploadError::TooLarge {
            size: data.len(),
            max_upload_size: target.max_upload_size,
            service_limit,
        });
    }
    let service = service.ok_or(UploadError::NoService)?;
    let timeout = target.upload_timeout;
    let work = async {
        let slot = slot::request(handle, &service.jid, name, content_type, data.len()).await?;
        put::put(&slot, content_type, data, timeout).await?;
        Ok(slot.get_url)
    };
    match tokio::time::timeout(timeout, work).await {
        Ok(Err(UploadError::TooLarge { size, .. })) => Err(UploadError::TooLarge {
            size,
            max_upload_size: target.max_upload_size,
            service_limit,
        }),
        Ok(outcome) => outcome,
        Err(_) => Err(UploadError::TimedOut(timeout.as_secs_f64())),
    }
}

/// The bot's `file` in its reply to `inbound`, uploaded: the message carrying its URL, or,
/// when the upload fails, the error its sender gets (`modify/not-acceptable` for a file too
/// large, `wait/remote-server-timeout` for any other failure), with a warning naming why.
pub async fn file_answer(
    handle: &ComponentHandle,
    inbound: &Head,
    mut file: PendingFile,
) -> Option<Element> {
    let data = Bytes::from(std::mem::take(&mut file.attachment.data));
    let attachment = &file.attachment;
    match upload(handle, &attachment.name, &attachment.content_type, data).await {
        Ok(url) => Some(file.message_with_url(&url)),
        Err(error) => {
            let stanza_error = match error {
                UploadError::TooLarge { .. } => FILE_TOO_LARGE,
                _ => UPLOAD_FAILED,
            };
            tracing::warn!(
                "{}: the webhook's file '{}' for {} was not sent: {error}; answered with a {}/{} error",
                handle.domain(),
                attachment.name,
                inbound.from(),
                stanza_error.error_type,
                stanza_error.condition
            );
            stanza_error.reply_to(inbound)
        }
    }
}

/// Sends the iq `iq` (a get, without an id) from the component to `to` and waits up to
/// `timeout` for its answer (`None`: none came). Answers are matched as the API's iqs are
/// (handle/pending_iqs.rs): on a random id and on the address the iq went to.
async fn ask(
    handle: &ComponentHandle,
    mut iq: Element,
    to: &str,
    timeout: Duration,
) -> Result<Option<Element>, UploadError> {
    let id = new_api_id().map_err(|e| UploadError::NotSent(e.to_string()))?;
    set_attr(&mut iq, xml_ncname!("id"), &id);
    set_attr(&mut iq, xml_ncname!("to"), to);
    set_attr(&mut iq, xml_ncname!("from"), handle.domain());
    let mut awaited = handle.await_iq(&id, to);
    let written = handle
        .write_checked(&iq)
        .map_err(|e| UploadError::NotSent(e.to_string()))?;
    drop(iq);
    handle
        .try_queue(written)
        .map_err(|e| UploadError::NotSent(e.to_string()))?;
    Ok(tokio::time::timeout(timeout, awaited.answer())
        .await
        .ok()
        .flatten())
}
