//! One sender of the instances tests (instances.rs): its messages at an even pace, re-sent
//! when an outcome is overdue, and what it got back: replies, errors, duplicates.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use minidom::Element;

use super::{is_answer, message, PER_SENDER, SENDERS};
use crate::fixture::{body, error_of};
use crate::support::client::{to_xml, XmppClient};

/// Each sender sends its messages at an even pace over this long (125 messages/s in all).
const SEND_FOR: Duration = Duration::from_secs(8);
/// After the last send, how long a sender waits for its missing outcomes.
const OUTCOMES_WITHIN: Duration = Duration::from_secs(30);
/// After this long without an outcome, a message is re-sent (only in the kill test).
const RESEND_AFTER: Duration = Duration::from_secs(5);
/// Sends of one message, at most (the first and the re-sends).
const MAX_SENDS: u32 = 4;

/// What one sender saw.
#[derive(Default)]
pub(super) struct SenderLog {
    /// Times each message was sent (1, or more when re-sent).
    pub(super) sends: BTreeMap<usize, u32>,
    pub(super) first_sent: BTreeMap<usize, Instant>,
    /// The message numbers of the replies, in arrival order (first outcome of each only).
    pub(super) replies: Vec<usize>,
    /// Error stanzas: message number → "type/condition text" (first outcome of each only).
    pub(super) errors: BTreeMap<usize, String>,
    /// Outcomes after the first for the same message.
    pub(super) duplicates: usize,
    /// Messages from the bot that name no message of ours (should not happen).
    pub(super) unknown: Vec<String>,
}

impl SenderLog {
    pub(super) fn has_outcome(&self, n: usize) -> bool {
        self.errors.contains_key(&n) || self.replies.contains(&n)
    }

    pub(super) fn outcomes(&self) -> usize {
        self.replies.len() + self.errors.len()
    }

    pub(super) fn resent(&self) -> impl Iterator<Item = usize> + '_ {
        self.sends.iter().filter(|(_, &s)| s > 1).map(|(&n, _)| n)
    }

    /// Replies that came after the reply to a later message of the same sender, among
    /// messages sent once (a re-sent message is answered late by design).
    pub(super) fn out_of_order(&self) -> usize {
        let mut highest = None;
        let mut late = 0;
        for &n in &self.replies {
            if self.sends.get(&n) != Some(&1) {
                continue;
            }
            if highest.is_some_and(|h| n < h) {
                late += 1;
            }
            highest = highest.max(Some(n));
        }
        late
    }

    fn send_one(&mut self, n: usize) {
        *self.sends.entry(n).or_default() += 1;
        self.first_sent.entry(n).or_insert_with(Instant::now);
    }

    fn record(&mut self, sender: usize, stanza: &Element) {
        let prefix = format!("S{sender}-");
        let number = stanza
            .attr("id")
            .and_then(|id| id.strip_prefix(&prefix))
            .and_then(|n| n.parse::<usize>().ok());
        let Some(n) = number else {
            self.unknown.push(to_xml(stanza));
            return;
        };
        if self.has_outcome(n) {
            self.duplicates += 1;
        } else if stanza.attr("type") == Some("error") {
            let (kind, condition, text) = error_of(stanza);
            let text = text.unwrap_or_default();
            self.errors.insert(n, format!("{kind}/{condition} {text}"));
        } else if body(stanza) == format!("S{sender}-{n}") {
            self.replies.push(n);
        } else {
            self.unknown.push(to_xml(stanza));
        }
    }
}

/// One sender: `PER_SENDER` messages at an even pace from `start`, reading outcomes all the
/// while; with `resend`, a message without an outcome `RESEND_AFTER` after it was (last)
/// sent is sent again, at most `MAX_SENDS` times in all. Returns once every message has an
/// outcome, or `OUTCOMES_WITHIN` after the last send.
pub(super) async fn converse(
    mut client: XmppClient,
    sender: usize,
    start: Instant,
    resend: bool,
) -> SenderLog {
    let mut log = SenderLog::default();
    let gap = SEND_FOR / PER_SENDER as u32;
    // Senders take turns within each gap.
    let offset = gap * sender as u32 / SENDERS.len() as u32;
    let due = |n: usize| start + offset + gap * n as u32;
    let deadline = due(PER_SENDER) + OUTCOMES_WITHIN;
    let mut last_sent: HashMap<usize, Instant> = HashMap::new();
    let mut next = 0;
    // Bounded by `deadline`: every iteration sends, or waits at most 200 ms.
    while Instant::now() < deadline {
        let now = Instant::now();
        if next < PER_SENDER && now >= due(next) {
            client.send(&message(sender, next)).await;
            log.send_one(next);
            last_sent.insert(next, now);
            next += 1;
            continue;
        }
        if resend {
            let overdue: Vec<usize> = last_sent
                .iter()
                .filter(|(n, at)| {
                    now.duration_since(**at) >= RESEND_AFTER
                        && !log.has_outcome(**n)
                        && log.sends[n] < MAX_SENDS
                })
                .map(|(n, _)| *n)
                .collect();
            for n in overdue {
                client.send(&message(sender, n)).await;
                log.send_one(n);
                last_sent.insert(n, now);
            }
        }
        if next == PER_SENDER && log.outcomes() == PER_SENDER {
            break;
        }
        let wake = if next < PER_SENDER {
            due(next)
        } else {
            deadline
        };
        let wait = wake
            .min(now + Duration::from_millis(200))
            .saturating_duration_since(now);
        if let Some(stanza) = client.recv_matching(wait, is_answer).await {
            log.record(sender, &stanza);
        }
        assert!(
            !client.is_disconnected(),
            "{}: disconnected\n{}",
            client.full_jid(),
            client.stderr()
        );
    }
    // Duplicates would come now.
    while let Some(stanza) = client
        .recv_matching(Duration::from_millis(500), is_answer)
        .await
    {
        log.record(sender, &stanza);
    }
    log
}
