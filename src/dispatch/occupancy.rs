//! The dispatcher's side of the rooms: a stanza from one of them is taken care of by the
//! room directory (a join answered, a self-ping, an occupant seen), skipped (the bot's own
//! reflection, history, ...), or POSTed with the room's fields; and the rejoin after a kick,
//! waited out on a task of its own.

use std::sync::Arc;

use super::Dispatcher;
use crate::handle::ComponentHandle;
use crate::room::directory::{Arrival, Rejoin};
use crate::stanza::request::RoomFields;
use crate::stanza::Inbound;
use crate::xml::outgoing::OutgoingStanza;

/// Where a stanza goes once the rooms have seen it.
pub(super) enum RoomStep {
    /// Not from a room: the usual way.
    Elsewhere,
    /// Done with: send these.
    Done(Vec<OutgoingStanza>),
    /// To the webhook, with these fields.
    Post(RoomFields),
}

impl Dispatcher {
    pub(super) fn room_step(&self, inbound: &Inbound) -> RoomStep {
        let handle = &self.inner.handle;
        match handle.rooms().arrival(inbound, &self.inner.forwarded) {
            Arrival::Elsewhere => RoomStep::Elsewhere,
            Arrival::Post(fields) => RoomStep::Post(fields),
            Arrival::Skipped(why) => {
                tracing::debug!(
                    domain = %handle.domain(),
                    from = inbound.from(),
                    "not posted: {why}"
                );
                RoomStep::Done(Vec::new())
            }
            Arrival::Handled { send, rejoin } => {
                if let Some(rejoin) = rejoin {
                    schedule_rejoin(Arc::clone(handle), rejoin);
                }
                RoomStep::Done(send.iter().filter_map(|s| handle.write(s)).collect())
            }
        }
    }
}

/// Joins the room again after `rejoin.after`, unless it was joined or left meanwhile.
fn schedule_rejoin(handle: Arc<ComponentHandle>, rejoin: Rejoin) {
    tokio::spawn(async move {
        tokio::time::sleep(rejoin.after).await;
        if let Some(join) = handle.rooms().rejoin(&rejoin) {
            tracing::info!("{}: joining {} again", handle.domain(), rejoin.room);
            handle.queue_reply(&join, &rejoin.room);
        }
    });
}
