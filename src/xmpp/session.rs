//! One live component stream: reads stanzas while a `max_in_flight` permit is free (else TCP
//! back-pressure), writes queued replies in bursts (through [`super::writer`]), keeps an
//! idle connection alive with pings, and stops reading at the first hard error.

use std::time::Duration;

use minidom::Element;
use tokio::sync::{mpsc, OwnedSemaphorePermit};
use tokio::time::Instant;

use super::socket::{ComponentSocket, Received};
use super::writer::{send_keepalive, write_all, KEEPALIVE_ID};
use super::{ServerStreamError, XmppError};
use crate::dispatch::Dispatcher;
use crate::handle::ComponentHandle;
use crate::shutdown::{Shutdown, ABANDON_GRACE};
use crate::stanza::error::StanzaError;
use crate::stanza::{Inbound, Kind};
use crate::xml::outgoing::OutgoingStanza;

/// Replies written in one burst, at most.
const MAX_BURST: usize = 64;
/// How long a broken connection's unread stanzas are read and dispatched, at most.
const SALVAGE_TIME: Duration = Duration::from_secs(5);

/// What a session needs from its component.
pub struct SessionContext<'a> {
    pub domain: &'a str,
    pub keepalive: Duration,
    pub drain_timeout: Duration,
    pub dispatcher: &'a Dispatcher,
    pub handle: &'a ComponentHandle,
}

/// Serves one stream until it fails (`Err`) or `shutdown` turns true (`Ok`, after in-flight
/// webhook calls are answered, within `drain_timeout`). `unsent` holds the stanzas of a burst
/// whose write failed on an earlier connection: they go out first.
pub async fn serve(
    mut stream: ComponentSocket,
    context: &SessionContext<'_>,
    outbox: &mut mpsc::Receiver<OutgoingStanza>,
    unsent: &mut Vec<OutgoingStanza>,
    shutdown: &mut Shutdown,
) -> Result<(), XmppError> {
    let served = serve_stream(&mut stream, context, outbox, unsent, shutdown).await;
    if let Err(XmppError::WriteFailed(_)) = &served {
        salvage(&mut stream, context).await;
    }
    match served {
        Ok(()) => drain(stream, context, outbox, unsent).await,
        Err(error) => Err(error),
    }
}

async fn serve_stream(
    stream: &mut ComponentSocket,
    context: &SessionContext<'_>,
    outbox: &mut mpsc::Receiver<OutgoingStanza>,
    unsent: &mut Vec<OutgoingStanza>,
    shutdown: &mut Shutdown,
) -> Result<(), XmppError> {
    if !unsent.is_empty() {
        tracing::info!(
            "{}: sending {} stanza(s) whose write failed before",
            context.domain,
            unsent.len()
        );
        write_all(stream, unsent, context.handle).await?;
    }
    // Read only while a `max_in_flight` slot is free. The session is the only task that
    // takes slots, so one seen free stays free until the element read next takes it.
    let mut slot_free = false;
    let mut last_write = Instant::now();
    let mut keepalive = tokio::time::interval(context.keepalive);
    keepalive.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Made once, not per turn of the loop: a new one per stanza subscribed and unsubscribed
    // to the flag each time.
    let stopped = shutdown.stopped();
    tokio::pin!(stopped);
    loop {
        tokio::select! {
            biased;
            () = &mut stopped => return Ok(()),
            Some(first) = outbox.recv() => {
                unsent.push(first);
                // Let the replies being finished right now join this burst: fewer, larger
                // writes cost the server less per stanza (one read, one parse call).
                tokio::task::yield_now().await;
                while unsent.len() < MAX_BURST {
                    match outbox.try_recv() {
                        Ok(next) => unsent.push(next),
                        Err(_) => break,
                    }
                }
                write_all(stream, unsent, context.handle).await?;
                last_write = Instant::now();
            }
            _ = keepalive.tick() => {
                if last_write.elapsed() >= context.keepalive {
                    send_keepalive(stream, context.handle).await?;
                    last_write = Instant::now();
                }
            }
            () = context.handle.slot_freed(), if !slot_free => {
                slot_free = true;
            }
            item = stream.next(), if slot_free => match item? {
                None => {
                    send_keepalive(stream, context.handle).await?;
                    last_write = Instant::now();
                }
                Some(received) => {
                    let held = take_slot(context).await?;
                    slot_free = context.handle.has_free_slot();
                    unsent.extend(handle(received, held, context)?);
                    if !unsent.is_empty() {
                        write_all(stream, unsent, context.handle).await?;
                        last_write = Instant::now();
                    }
                }
            },
        }
    }
}

async fn take_slot(context: &SessionContext<'_>) -> Result<OwnedSemaphorePermit, XmppError> {
    context.handle.take_slot().await.ok_or(XmppError::Closed)
}

/// The connection broke while writing, but what the server had sent before is still in
/// the socket (unread while every `max_in_flight` slot was busy): read it to the end and
/// dispatch it like any stanza. Answers wait in the outbox for the next connection.
async fn salvage(stream: &mut ComponentSocket, context: &SessionContext<'_>) {
    let deadline = Instant::now() + SALVAGE_TIME;
    let mut salvaged = 0usize;
    loop {
        let received = match tokio::time::timeout_at(deadline, stream.next()).await {
            Ok(Ok(None)) => continue,
            Ok(Ok(Some(received))) => received,
            Ok(Err(_)) | Err(_) => break,
        };
        let Ok(Ok(held)) = tokio::time::timeout_at(deadline, take_slot(context)).await else {
            break;
        };
        let Ok(answers) = handle(received, held, context) else {
            break;
        };
        salvaged += 1;
        for answer in answers {
            context.handle.queue_written(answer, context.domain);
        }
    }
    if salvaged > 0 {
        tracing::info!(
            "{}: dispatched {salvaged} stanza(s) the server sent before the connection broke",
            context.domain
        );
    }
}

/// One element read from the server: a stanza for the dispatcher, our own keepalive coming
/// back, or a stream-level element; or a stanza nested too deeply, refused unread.
fn handle(
    received: Received,
    permit: OwnedSemaphorePermit,
    context: &SessionContext<'_>,
) -> Result<Vec<OutgoingStanza>, XmppError> {
    let element = match received {
        Received::Element(element) => element,
        Received::TooDeep(head) => return Ok(refuse_too_deep(head, context)),
    };
    if let Some(error) = ServerStreamError::from_element(&element) {
        return Err(XmppError::StreamError(error));
    }
    if element.attr("id") == Some(KEEPALIVE_ID) && element.attr("from") == Some(context.domain) {
        return Ok(Vec::new());
    }
    let element = match context.handle.answer_iq(element) {
        Ok(()) => return Ok(Vec::new()),
        Err(element) => element,
    };
    match Inbound::new(element) {
        Ok(inbound) => Ok(context.dispatcher.dispatch(inbound, permit)),
        Err(error) => {
            tracing::warn!(
                "{}: ignored an element from the server: {error}",
                context.domain
            );
            Ok(Vec::new())
        }
    }
}

/// A stanza nested past `max_depth`: its sender is told, the connection goes on.
fn refuse_too_deep(head: Element, context: &SessionContext<'_>) -> Vec<OutgoingStanza> {
    let Ok(mut inbound) = Inbound::new(head) else {
        tracing::warn!(
            "{}: ignored an element from the server nested more than max_depth deep",
            context.domain
        );
        return Vec::new();
    };
    if inbound.kind() != Kind::Iq && context.handle.rooms().is_room(inbound.from()) {
        // A room expels an occupant that sends it errors: the answer is withheld.
        inbound.mark_from_room();
    }
    let answer = StanzaError::TOO_DEEP.reply_to(&inbound);
    tracing::warn!(
        "{}: refused a {} from {}: nested more than max_depth deep; answered with {}",
        context.domain,
        inbound.kind().as_str(),
        inbound.from(),
        if answer.is_some() && !inbound.is_from_room() {
            "a modify/policy-violation error"
        } else {
            "nothing"
        }
    );
    context
        .handle
        .write_answers(answer.into_iter().collect(), inbound.head())
}

/// Shutdown: read nothing more, wait (up to `drain_timeout`) for in-flight webhook calls and
/// send their answers; calls still running then are answered with an error, never silence.
/// Then close the stream.
async fn drain(
    mut stream: ComponentSocket,
    context: &SessionContext<'_>,
    outbox: &mut mpsc::Receiver<OutgoingStanza>,
    unsent: &mut Vec<OutgoingStanza>,
) -> Result<(), XmppError> {
    let all_done = context.handle.all_calls_done();
    tokio::pin!(all_done);
    let mut deadline = Box::pin(tokio::time::sleep(context.drain_timeout));
    let mut abandoned = false;
    loop {
        tokio::select! {
            biased;
            Some(first) = outbox.recv() => {
                unsent.push(first);
                write_all(&stream, unsent, context.handle).await?;
            }
            _ = &mut all_done => break,
            _ = &mut deadline => {
                if abandoned {
                    break;
                }
                let running = context.handle.calls_in_flight();
                tracing::warn!(
                    "{}: shutdown_timeout reached with {running} webhook call(s) in flight: answering them with an error",
                    context.domain
                );
                context.dispatcher.abandon_in_flight();
                abandoned = true;
                deadline = Box::pin(tokio::time::sleep(ABANDON_GRACE));
            }
        }
    }
    while let Ok(stanza) = outbox.try_recv() {
        unsent.push(stanza);
    }
    write_all(&stream, unsent, context.handle).await?;
    stream.close().await?;
    Ok(())
}
