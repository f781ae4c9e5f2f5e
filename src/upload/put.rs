//! The HTTP PUT of a file to its slot's URL: one hyper HTTP/1.1 connection per upload
//! (rustls for https, with the platform's verifier; plain http as well, e.g. a service on
//! loopback), its connect bounded by `upload_timeout`, the slot's allowed headers added.
//! Any answer but 2xx is a failure.

use std::future::poll_fn;

use bytes::Bytes;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE, HOST, USER_AGENT};
use http::{Request, Uri};
use http_body_util::Full;
use hyper_util::client::legacy::connect::HttpConnector;
use tower_service::Service;

use super::slot::Slot;
use super::UploadError;
use crate::webhook::pool::Connector;

/// PUTs `data` to the slot.
pub async fn put(
    slot: &Slot,
    content_type: &str,
    data: Bytes,
    timeout: std::time::Duration,
) -> Result<(), UploadError> {
    let failed = |why: String| UploadError::PutFailed(why);
    let uri: Uri = slot
        .put_url
        .parse()
        .map_err(|e| failed(format!("'{}' is not a URL: {e}", slot.put_url)))?;
    let authority = uri
        .authority()
        .ok_or_else(|| failed(format!("'{}' has no host", slot.put_url)))?
        .to_string();
    let mut connector = connector(uri.scheme_str() == Some("https"), timeout)?;
    poll_fn(|cx| connector.poll_ready(cx))
        .await
        .map_err(|e| failed(e.to_string()))?;
    let io = connector
        .call(uri.clone())
        .await
        .map_err(|e| failed(format!("cannot connect to {authority}: {e}")))?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| failed(e.to_string()))?;
    let target = uri.path_and_query().map_or("/", |p| p.as_str());
    let mut request = Request::put(target)
        .header(HOST, authority.as_str())
        .header(USER_AGENT, crate::webhook::USER_AGENT)
        .header(CONTENT_TYPE, content_type)
        .header(CONTENT_LENGTH, data.len());
    for (name, value) in &slot.headers {
        request = request.header(*name, value.as_str());
    }
    let request = request
        .body(Full::new(data))
        .map_err(|e| failed(format!("the slot's headers cannot be sent: {e}")))?;
    let sent = sender.send_request(request);
    tokio::pin!(connection);
    let response = tokio::select! {
        response = sent => response.map_err(|e| failed(e.to_string()))?,
        ended = &mut connection => {
            return Err(failed(match ended {
                Ok(()) => "the connection closed before an answer".into(),
                Err(e) => e.to_string(),
            }))
        }
    };
    let status = response.status();
    if status.is_success() {
        Ok(())
    } else {
        Err(failed(format!("{authority} answered {status}")))
    }
}

fn connector(https: bool, timeout: std::time::Duration) -> Result<Connector, UploadError> {
    let mut tcp = HttpConnector::new();
    tcp.enforce_http(false);
    tcp.set_nodelay(true);
    tcp.set_connect_timeout(Some(timeout));
    let tls = if https {
        hyper_rustls::HttpsConnectorBuilder::new()
            .try_with_platform_verifier()
            .map_err(|e| UploadError::PutFailed(format!("cannot set up TLS: {e}")))?
    } else {
        hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(
            rustls::ClientConfig::builder()
                .with_root_certificates(rustls::RootCertStore::empty())
                .with_no_client_auth(),
        )
    };
    Ok(tls.https_or_http().enable_http1().wrap_connector(tcp))
}
