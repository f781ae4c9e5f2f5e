//! What one client knows about its messages and sessions: each message's sends and outcome,
//! why re-sent ones had none, and the per-session checks (`skipped`, `stalled`) made when a
//! session ends, which re-sending cannot hide.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use crate::{id, secs, STALL};

/// What one client knows about one of its messages.
#[derive(Clone, Debug, Default)]
pub struct Message {
    pub first_sent: Option<Instant>,
    pub last_sent: Option<Instant>,
    pub sends: u32,
    pub outcome: Option<Outcome>,
    pub later_outcomes: u32,
    /// Replies received for it (first outcome or later), for the reply accounting.
    pub replies: u32,
}

#[derive(Clone, Debug)]
pub struct Outcome {
    /// None: a reply; Some("type/condition \"text\""): an error stanza.
    pub error: Option<String>,
    pub at: Instant,
}

/// Where a message re-sent after a reconnection had been lost, per the webhook's record.
#[derive(Debug, Default)]
pub struct Resent {
    /// Written by the client after the server had been killed/stopped: it cannot have
    /// arrived anywhere.
    pub into_dead_server: usize,
    /// Sent before, and the webhook had answered it 200 before the disconnection: its reply
    /// was lost on the way back (dying connection, or the client's session was gone).
    pub answered_before: usize,
    /// Sent before, and the webhook had not answered it at the disconnection: lost on the
    /// way in (inside the server or the component's connection when it died), or still
    /// queued in the daemon (then its reply comes later: a duplicate, or a bounce).
    pub unanswered: usize,
    /// How long the oldest of them had been waiting at the disconnection.
    pub max_age: Duration,
}

pub struct ClientReport {
    pub c: usize,
    pub messages: Vec<Message>,
    pub reconnections: usize,
    pub resent: Resent,
    pub overdue: Vec<(String, Duration)>,
    /// Messages without an outcome although a later message of the same session got one.
    pub skipped: Vec<String>,
    pub unexpected: Vec<String>,
    /// Stanzas other than replies and errors (presences, iqs): not outcomes, just counted.
    pub other_stanzas: usize,
    /// Chat state notices without a body (`typing_after`): not outcomes, just counted.
    pub chat_states: usize,
    /// The current session: what it sent, in order (message, and whether that was its first
    /// send ever), what got an outcome during it, and when it last got one (or began).
    pub session_sent: Vec<(usize, bool)>,
    pub session_answered: HashSet<usize>,
    pub session_progress: Instant,
    /// Sessions that ended with messages waiting and no outcome for longer than `STALL`.
    pub stalled: Vec<String>,
    /// What happened to this client's sessions, with times (printed at the end).
    pub events: Vec<String>,
}

impl ClientReport {
    /// At the end of a session: within one session (one Prosody run: a restart ends every
    /// client session), the path is first-in first-out end to end — one c2s stream, one
    /// component stream, one `ordered` conversation, the outbox — so a message sent before
    /// one that got its outcome during the session must have got its own outcome first.
    /// One that did not was skipped: lost without a restart to explain it. This holds
    /// however slow the machine is.
    ///
    /// A daemon that stops answering altogether until the restart skips nothing: that
    /// shows as a session that ends with messages waiting and no outcome for `STALL`.
    pub fn end_session(&mut self, c: usize, t0: Instant) {
        let now = Instant::now();
        let sent = std::mem::take(&mut self.session_sent);
        let answered = std::mem::take(&mut self.session_answered);
        let waiting = sent
            .iter()
            .filter(|&&(n, _)| self.messages[n].outcome.is_none())
            .count();
        let quiet = now - self.session_progress;
        self.events.push(format!(
            "t={:.1} session ends ({} sent, {} answered in it, {waiting} waiting, last outcome \
             {:.1}s ago)",
            secs(now - t0),
            sent.len(),
            answered.len(),
            secs(quiet)
        ));
        if waiting > 0 && quiet > STALL {
            self.stalled.push(format!(
                "L{c}: session ending at t={:.1}s: {waiting} waiting, no outcome for {:.1}s",
                secs(now - t0),
                secs(quiet)
            ));
        }
        // The latest message sent for the first time in this session that got its outcome
        // in it (a re-sent one may have been answered by its earlier copy, out of order).
        let Some(last) = sent
            .iter()
            .rposition(|(n, first)| *first && answered.contains(n))
        else {
            return;
        };
        for &(n, _) in &sent[..last] {
            if !answered.contains(&n) && self.messages[n].outcome.is_none() {
                self.skipped.push(id(c, n));
            }
        }
    }
}
