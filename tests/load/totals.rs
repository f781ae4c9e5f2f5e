//! The accounting at the end: every client's messages against the webhook's record, summed
//! into the counts the test prints (sent, re-sent and why, outcomes, missing, skipped,
//! stalled, duplicates, latencies, where the webhook's answers went) and asserts on.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::client_report::{ClientReport, Outcome, Resent};
use crate::echo_webhook::HookRecord;
use crate::{id, secs, OVERDUE, STALL};

pub struct Totals {
    pub sent: usize,
    sends: usize,
    resent_ids: usize,
    replies: usize,
    errors: BTreeMap<String, usize>,
    pub missing: usize,
    pub missing_examples: Vec<String>,
    overdue: usize,
    overdue_examples: Vec<(String, Duration)>,
    pub skipped: Vec<String>,
    pub stalled: Vec<String>,
    /// Re-sent ids the webhook answered more than once: the first copy was not lost on the
    /// way in after all (it was still queued); its reply was then bounced or a duplicate.
    resent_posted_twice: usize,
    duplicates: usize,
    pub unexpected: Vec<String>,
    other_stanzas: usize,
    /// Chat state notices without a body (`typing_after`): not outcomes, just counted.
    chat_states: usize,
    reconnections: usize,
    resent: Resent,
    latencies: Vec<Duration>,
    hook_posts: usize,
    hook_bodies: usize,
    hook_answered: usize,
    hook_bounces: usize,
    /// Bounces of the echo replies (they carry the message's id), not of chat states.
    hook_bounced_replies: usize,
    /// 200 answers of the webhook (every POST answered), replies received by the clients,
    /// and answers neither received nor bounced back by the server.
    hook_answers: usize,
    replies_received: usize,
    replies_unaccounted: usize,
    /// Answers given while the daemon was disconnected, and the ids of those lost.
    replies_held: usize,
    pub replies_held_lost: Vec<String>,
    /// Each id with an unaccounted answer: ms from the nearest kill/stop to the nearest of
    /// its webhook answers (negative: answered before it), and a description.
    unaccounted: Vec<(i64, String)>,
    errors_per_client: Vec<usize>,
}

impl Totals {
    pub fn of(
        reports: &[ClientReport],
        hook: &HookRecord,
        t0: Instant,
        restarts: &[Instant],
        held: &[(Instant, Instant)],
    ) -> Totals {
        let mut t = Totals {
            sent: 0,
            sends: 0,
            resent_ids: 0,
            replies: 0,
            errors: BTreeMap::new(),
            missing: 0,
            missing_examples: Vec::new(),
            overdue: 0,
            overdue_examples: Vec::new(),
            skipped: Vec::new(),
            stalled: Vec::new(),
            resent_posted_twice: 0,
            duplicates: 0,
            unexpected: Vec::new(),
            other_stanzas: 0,
            chat_states: 0,
            reconnections: 0,
            resent: Resent::default(),
            latencies: Vec::new(),
            hook_posts: hook.posts,
            hook_bodies: hook.bodies.len(),
            hook_answered: hook
                .bodies
                .values()
                .filter(|b| !b.answered.is_empty())
                .count(),
            hook_bounces: hook.bounces,
            hook_bounced_replies: hook
                .bounced_ids
                .iter()
                .filter(|(id, _)| id.starts_with('L'))
                .map(|(_, count)| count)
                .sum(),
            hook_answers: hook.bodies.values().map(|b| b.answered.len()).sum(),
            replies_received: 0,
            replies_unaccounted: 0,
            replies_held: 0,
            replies_held_lost: Vec::new(),
            unaccounted: Vec::new(),
            errors_per_client: vec![0; reports.len()],
        };
        for report in reports {
            t.reconnections += report.reconnections;
            t.resent.into_dead_server += report.resent.into_dead_server;
            t.resent.answered_before += report.resent.answered_before;
            t.resent.unanswered += report.resent.unanswered;
            t.resent.max_age = t.resent.max_age.max(report.resent.max_age);
            t.overdue += report.overdue.len();
            t.overdue_examples
                .extend(report.overdue.iter().take(5).cloned());
            t.unexpected.extend(report.unexpected.iter().cloned());
            t.skipped.extend(report.skipped.iter().cloned());
            t.stalled.extend(report.stalled.iter().cloned());
            t.other_stanzas += report.other_stanzas;
            t.chat_states += report.chat_states;
            for (n, message) in report.messages.iter().enumerate() {
                if message.sends == 0 {
                    continue;
                }
                t.sent += 1;
                t.sends += message.sends as usize;
                t.resent_ids += usize::from(message.sends > 1);
                if message.sends > 1 {
                    let answers = hook
                        .bodies
                        .get(&id(report.c, n))
                        .map_or(0, |b| b.answered.len());
                    t.resent_posted_twice += usize::from(answers > 1);
                }
                t.duplicates += message.later_outcomes as usize;
                t.replies_received += message.replies as usize;
                let answers = hook
                    .bodies
                    .get(&id(report.c, n))
                    .map_or(0, |b| b.answered.len());
                let bounced = hook.bounced_ids.get(&id(report.c, n)).copied().unwrap_or(0);
                let unaccounted = answers.saturating_sub(message.replies as usize + bounced);
                t.replies_unaccounted += unaccounted;
                // Answers given while the daemon had no connection: their replies waited
                // and went out on the next one, so each must have been received or bounced.
                let held_answers = hook.bodies.get(&id(report.c, n)).map_or(0, |b| {
                    b.answered
                        .iter()
                        .filter(|&&a| held.iter().any(|&(from, to)| from < a && a < to))
                        .count()
                });
                t.replies_held += held_answers;
                let held_lost = held_answers.saturating_sub(message.replies as usize + bounced);
                if held_lost > 0 {
                    t.replies_held_lost.push(id(report.c, n));
                }
                if unaccounted > 0 {
                    let answered = &hook.bodies[&id(report.c, n)].answered;
                    let at = |i: Instant| secs(i.saturating_duration_since(t0));
                    // Signed ms from the nearest kill/stop to the nearest of its answers.
                    let nearest = answered
                        .iter()
                        .flat_map(|&a| restarts.iter().map(move |&r| signed_ms(a, r)))
                        .min_by_key(|ms| ms.abs())
                        .unwrap_or(i64::MAX);
                    let answers: Vec<String> =
                        answered.iter().map(|&a| format!("{:.2}", at(a))).collect();
                    let outcome = match &message.outcome {
                        Some(Outcome { error: None, .. }) => "a reply".to_string(),
                        Some(Outcome { error: Some(e), .. }) => format!("error {e}"),
                        None => "none".to_string(),
                    };
                    t.unaccounted.push((
                        nearest,
                        format!(
                            "{}: sent {}x from t={:.2}s, answered 200 at t={}s, outcome {outcome}",
                            id(report.c, n),
                            message.sends,
                            at(message.first_sent.expect("sent")),
                            answers.join("/")
                        ),
                    ));
                }
                match &message.outcome {
                    None => {
                        t.missing += 1;
                        if t.missing_examples.len() < 20 {
                            let seen = hook.bodies.get(&id(report.c, n));
                            t.missing_examples.push(format!(
                                "{} (sent {}x; webhook: {})",
                                id(report.c, n),
                                message.sends,
                                seen.map_or("never seen".into(), |s| format!(
                                    "{} POSTs, {} answered",
                                    s.posts,
                                    s.answered.len()
                                ))
                            ));
                        }
                    }
                    Some(outcome) => {
                        let first = message.first_sent.expect("sent");
                        t.latencies
                            .push(outcome.at.saturating_duration_since(first));
                        match &outcome.error {
                            None => t.replies += 1,
                            Some(error) => {
                                *t.errors.entry(error.clone()).or_default() += 1;
                                t.errors_per_client[report.c] += 1;
                            }
                        }
                    }
                }
            }
        }
        t.latencies.sort();
        t
    }

    pub fn print(&self) {
        let errors: usize = self.errors.values().sum();
        println!("sent:      {:>6} messages (distinct ids)", self.sent);
        println!(
            "re-sent:   {:>6} sends of {} ids, after {} client reconnections \
             (re-sends add up to {} sends in all)",
            self.sends - self.sent,
            self.resent_ids,
            self.reconnections,
            self.sends
        );
        println!(
            "           why they had no outcome at the disconnection: {} written after the \
             server was killed/stopped; {} answered 200 by the webhook before it (reply lost on \
             the way back); {} not answered by then (lost on the way in, or still queued); the \
             oldest had been sent {:.2}s before the client saw the disconnection",
            self.resent.into_dead_server,
            self.resent.answered_before,
            self.resent.unanswered,
            secs(self.resent.max_age)
        );
        println!(
            "           {} of the re-sent ids were answered 200 twice by the webhook (the first \
             copy had not been lost but was still queued; its reply bounced or came twice)",
            self.resent_posted_twice
        );
        println!("replies:   {:>6}", self.replies);
        println!(
            "errors:    {errors:>6}   (per client: {:?})",
            self.errors_per_client
        );
        for (error, count) in &self.errors {
            let who = if error.contains("Component unavailable") {
                "Prosody: component not connected"
            } else {
                "component-http"
            };
            println!("           {count:>6}  {error}  ({who})");
        }
        println!(
            "missing:   {:>6}   (no reply and no error by the end)",
            self.missing
        );
        println!(
            "overdue:   {:>6}   (informational: still waiting > {}s after being sent, at a \
             disconnection; high when the machine is slow)",
            self.overdue,
            OVERDUE.as_secs()
        );
        println!(
            "skipped:   {:>6}   (no outcome, though a later message of the same session got one)",
            self.skipped.len()
        );
        println!(
            "stalled:   {:>6}   (sessions ending with messages waiting and no outcome for > {}s)",
            self.stalled.len(),
            STALL.as_secs()
        );
        println!(
            "duplicates: {:>5}   (a second outcome for an id, after a re-send)",
            self.duplicates
        );
        println!(
            "unexpected: {:>5}   other stanzas (not outcomes): {} chat state notices \
             (typing_after), {} others",
            self.unexpected.len(),
            self.chat_states,
            self.other_stanzas
        );
        if !self.latencies.is_empty() {
            let at = |q: f64| {
                let i = ((self.latencies.len() - 1) as f64 * q) as usize;
                secs(self.latencies[i])
            };
            println!(
                "latency (first send -> outcome): p50 {:.3}s  p90 {:.3}s  p99 {:.3}s  max {:.3}s",
                at(0.5),
                at(0.9),
                at(0.99),
                at(1.0)
            );
        }
        println!(
            "webhook:   {} POSTs for {} distinct messages ({} answered 200); {} bounces \
             (type=error messages from the server, e.g. a reply to a client that had gone), {} \
             of them of echo replies",
            self.hook_posts,
            self.hook_bodies,
            self.hook_answered,
            self.hook_bounces,
            self.hook_bounced_replies
        );
        println!(
            "replies:   the webhook answered 200 {} times; the clients received {} replies; the \
             server bounced {}; unaccounted {} (answered, then neither received nor bounced: \
             lost with a dying connection, or by the daemon)",
            self.hook_answers,
            self.replies_received,
            self.hook_bounced_replies,
            self.replies_unaccounted
        );
        println!(
            "           {} answers were given while component-http had no server connection \
             (held in its outbox for the next one); lost of those: {}",
            self.replies_held,
            self.replies_held_lost.len()
        );
        if !self.unaccounted.is_empty() {
            let mut ms: Vec<i64> = self.unaccounted.iter().map(|(ms, _)| *ms).collect();
            ms.sort();
            println!(
                "           ms from the nearest kill/stop to their nearest webhook answer \
                 (negative: before it): {ms:?}"
            );
            let mut far: Vec<&(i64, String)> = self.unaccounted.iter().collect();
            far.sort_by_key(|(ms, _)| std::cmp::Reverse(ms.abs()));
            for (_, example) in far.iter().take(8) {
                println!("             {example}");
            }
        }
    }
}

fn signed_ms(at: Instant, reference: Instant) -> i64 {
    if at >= reference {
        (at - reference).as_millis() as i64
    } else {
        -((reference - at).as_millis() as i64)
    }
}
