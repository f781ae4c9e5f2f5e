//! The webhook's keep-alive HTTP/1.1 connections. A call drives its connection's I/O in
//! its own task while it waits for the answer: no connection task to hand each request to
//! and be woken by (two task switches per call). Between calls, connections wait on a stack
//! and the next call takes the one used last, so a quiet component keeps few of them warm.

use std::future::{poll_fn, Future};
use std::pin::{pin, Pin};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Wake, Waker};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, Uri};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, Connection, SendRequest};
use hyper_rustls::{HttpsConnector, MaybeHttpsStream};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::time::Instant;
use tower_service::Service;

/// How long an unused keep-alive connection stays open.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// How often unused connections are looked at: closed by the webhook, or idle too long.
const SWEEP_EVERY: Duration = Duration::from_secs(10);

pub type Connector = HttpsConnector<HttpConnector>;
type Io = MaybeHttpsStream<TokioIo<TcpStream>>;
type Body = Full<Bytes>;
type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// How to reach one webhook, and its unused connections, the one used last on top; at most
/// `max` of them.
#[derive(Clone)]
pub struct Connections {
    connector: Connector,
    /// The URL as the connector takes it.
    uri: Uri,
    unused: Arc<Mutex<Vec<OpenConnection>>>,
    max: usize,
}

/// An open connection: the handle requests go through and the future that does its I/O.
pub struct OpenConnection {
    sender: SendRequest<Body>,
    /// `None` once it has finished (the peer closed, or an error). It is dropped then, as
    /// only that answers the requests still queued in it (with an error, or given back).
    connection: Option<Pin<Box<Connection<Io, Body>>>>,
    idle_since: Instant,
}

impl Connections {
    pub fn new(connector: Connector, uri: Uri, max: usize) -> Connections {
        Connections {
            connector,
            uri,
            unused: Arc::new(Mutex::new(Vec::new())),
            max,
        }
    }

    /// Sends `request` on the connection used last, or on a new one: also when that one
    /// turns out to have closed before the request went out. The connection is the caller's
    /// until it gives it back with [`Connections::keep`], its answer read whole; a call cut
    /// short (timeout, shutdown) drops it, as it should: it is mid-request.
    pub async fn send(
        &self,
        mut request: Request<Body>,
    ) -> Result<(OpenConnection, Response<Incoming>), BoxError> {
        if let Some(mut open) = self.take() {
            match open.send(request).await {
                Ok(response) => return Ok((open, response)),
                Err(mut error) => match error.take_message() {
                    Some(unsent) => request = unsent,
                    None => return Err(error.into_error().into()),
                },
            }
        }
        let mut open = OpenConnection::connect(&self.connector, self.uri.clone()).await?;
        let response = open.send(request).await.map_err(|e| e.into_error())?;
        Ok((open, response))
    }

    /// The connection used last, unless it is known closed or was unused too long (then
    /// none: those below it have waited longer).
    fn take(&self) -> Option<OpenConnection> {
        let open = lock(&self.unused).pop()?;
        (open.is_open() && open.idle_since.elapsed() < IDLE_TIMEOUT).then_some(open)
    }

    /// Keeps `open` for the next call, unless it has ended or `max` are kept already.
    pub fn keep(&self, mut open: OpenConnection) {
        if !open.is_open() {
            return;
        }
        open.idle_since = Instant::now();
        let mut unused = lock(&self.unused);
        if unused.len() < self.max {
            unused.push(open);
        }
    }

    /// Every `SWEEP_EVERY`, closes the unused connections that the webhook closed (their
    /// I/O is done here, which sees it) or that were unused for [`IDLE_TIMEOUT`]. To be
    /// spawned: it holds them weakly, and ends once they are dropped.
    pub fn sweep(&self) -> impl Future<Output = ()> + Send + 'static {
        let unused = Arc::downgrade(&self.unused);
        async move {
            loop {
                tokio::time::sleep(SWEEP_EVERY).await;
                let Some(unused) = unused.upgrade() else {
                    return;
                };
                let mut unused = lock(&unused);
                // No need to be woken: the next sweep or call polls them again.
                let waker = Waker::from(Arc::new(Unwoken));
                let mut cx = Context::from_waker(&waker);
                for open in unused.iter_mut() {
                    open.poll_connection(&mut cx);
                }
                unused.retain(|open| open.is_open() && open.idle_since.elapsed() < IDLE_TIMEOUT);
            }
        }
    }
}

/// The stack, also after a panic elsewhere while it was held: pushing, popping and
/// retaining leave it whole.
fn lock(unused: &Mutex<Vec<OpenConnection>>) -> MutexGuard<'_, Vec<OpenConnection>> {
    unused.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The waker of the sweep's polls, which wait for nothing.
struct Unwoken;

impl Wake for Unwoken {
    fn wake(self: Arc<Self>) {}
}

impl OpenConnection {
    /// Opens a connection to `uri`'s host (TCP, then TLS for https).
    async fn connect(connector: &Connector, uri: Uri) -> Result<OpenConnection, BoxError> {
        let mut connector = connector.clone();
        poll_fn(|cx| connector.poll_ready(cx)).await?;
        let io = connector.call(uri).await?;
        let (sender, connection) = http1::Builder::new().handshake(io).await?;
        Ok(OpenConnection {
            sender,
            connection: Some(Box::pin(connection)),
            idle_since: Instant::now(),
        })
    }

    /// Sends `request`. An `Err` holding the request means it was not sent (the connection
    /// had closed), so it may go again on another connection.
    async fn send(
        &mut self,
        request: Request<Body>,
    ) -> Result<Response<Incoming>, hyper::client::conn::TrySendError<Request<Body>>> {
        let response = self.sender.try_send_request(request);
        self.drive(response).await
    }

    /// Runs `work` (sending a request, reading its answer) while doing the connection's I/O.
    pub async fn drive<F: Future>(&mut self, work: F) -> F::Output {
        let mut work = pin!(work);
        poll_fn(|cx| {
            self.poll_connection(cx);
            work.as_mut().poll(cx)
        })
        .await
    }

    fn is_open(&self) -> bool {
        self.connection.is_some() && !self.sender.is_closed()
    }

    /// Does the connection's pending I/O; drops it once it has finished. (Its result says
    /// how it ended; the request it cut short gets the same error.)
    fn poll_connection(&mut self, cx: &mut Context<'_>) {
        if let Some(connection) = &mut self.connection {
            if connection.as_mut().poll(cx).is_ready() {
                self.connection = None;
            }
        }
    }
}

#[cfg(test)]
#[path = "pool_tests.rs"]
mod tests;
