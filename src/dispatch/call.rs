//! A stanza on its way to the webhook (`Call`): what a worker needs to POST it and answer
//! it, and its record in the delivery log — the `Received` written before its first
//! attempt, and the call made again from that record after a crash or for a replay.

use bytes::Bytes;
use tokio::sync::OwnedSemaphorePermit;

use super::conversation::Conversation;
use super::fairness::Held;
use crate::stanza::request::Quoted;
use crate::stanza::{Head, Kind};
use crate::store::{now_ms, Received};

/// A stanza on its way to the webhook. One the session read holds one of the
/// `max_in_flight` permits (and counts against its sender's `max_in_flight_per_sender`)
/// until its answer is queued; one made again from the store holds neither (there are at
/// most as many as the store kept, and they must not wait behind new traffic).
pub(super) struct Call {
    pub(super) head: Head,
    /// It asked for a XEP-0184 receipt and `receipts` is on: one goes back after a 2xx.
    pub(super) receipt: bool,
    /// The `webhook-id`: the same on every attempt, redelivery and replay.
    pub(super) id: Box<str>,
    pub(super) work: Work,
    /// Its conversation (the other end's address → the component's address), hashed; 0
    /// when neither `ordered` nor queue mode keeps conversations apart.
    pub(super) key: Conversation,
    /// With `ordered`: `key`, for the conversation's turn.
    pub(super) conversation: Option<Conversation>,
    pub(super) _held: Option<Held>,
    pub(super) _permit: Option<OwnedSemaphorePermit>,
}

#[derive(Clone)]
pub(super) enum Work {
    Post {
        json: Bytes,
        has_body: bool,
    },
    /// Refused in its turn, so that the conversation's answers stay in order.
    TooLarge,
}

impl Call {
    /// What the store keeps of this call before its first attempt (`party`: the other
    /// end of its conversation).
    pub(super) fn record(&self, component: &str, party: String) -> Option<Received> {
        let Work::Post { json, .. } = &self.work else {
            return None;
        };
        let head = &self.head;
        Some(Received {
            id: self.id.to_string(),
            component: component.into(),
            from: head.from().into(),
            to: head.to().into(),
            kind: head.kind().as_str().into(),
            stanza_type: head.stanza_type().map(str::to_string),
            stanza_id: head.id().map(str::to_string),
            from_room: head.is_from_room(),
            receipt: self.receipt,
            party,
            request: json.clone(),
            received_at: now_ms(),
        })
    }

    /// The call a stored record stands for, without permits (`key`: its conversation,
    /// hashed by the caller); `None` for a record of a kind this build does not know.
    pub(super) fn from_record(record: Received, key: Conversation, ordered: bool) -> Option<Call> {
        let kind = Kind::of(&record.kind)?;
        let mut head = Head::new(
            kind,
            &record.from,
            &record.to,
            record.stanza_type.as_deref(),
            record.stanza_id.as_deref(),
        );
        if record.from_room {
            head.mark_from_room();
        }
        Some(Call {
            head,
            receipt: record.receipt,
            id: record.id.into_boxed_str(),
            work: Work::Post {
                json: record.request,
                // The typing notice is for a chat user waiting now, not for a redelivery.
                has_body: false,
            },
            key,
            conversation: ordered.then_some(key),
            _held: None,
            _permit: None,
        })
    }

    /// A copy without permits, doing `work`: what queue mode keeps of a call.
    pub(super) fn detached(&self, work: Work) -> Call {
        Call {
            head: self.head.clone(),
            receipt: self.receipt,
            id: self.id.clone(),
            work,
            key: self.key,
            conversation: None,
            _held: None,
            _permit: None,
        }
    }

    /// The JSON body it POSTs (empty for a stanza refused in its turn).
    pub(super) fn json(&self) -> Bytes {
        match &self.work {
            Work::Post { json, .. } => json.clone(),
            Work::TooLarge => Bytes::new(),
        }
    }

    /// The body a reply with `fallback: true` quotes: read from the request when one does
    /// (so a redelivered or replayed call quotes it too).
    pub(super) fn quoted(&self) -> Quoted<'_> {
        match &self.work {
            Work::Post { json, .. } => Quoted::Request(json),
            Work::TooLarge => Quoted::Nothing,
        }
    }

    /// Whether queue mode may keep it: only messages (an iq's sender waits for its answer
    /// now, and a presence is not worth keeping).
    pub(super) fn may_be_queued(&self) -> bool {
        self.head.kind() == Kind::Message && matches!(self.work, Work::Post { .. })
    }
}
