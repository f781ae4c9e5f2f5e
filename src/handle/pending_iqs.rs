//! The iqs sent through `POST /v1/send` that wait for their answer: their ids, drawn from the
//! operating system's CSPRNG so that no user can guess the next one, and the matching of an
//! answer on its id and on the address the iq was sent to (RFC 6120 §8.1.2.1), so that a
//! result sent by anyone else is never taken for the answer.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use minidom::Element;
use tokio::sync::oneshot;

/// Every id the API gives a stanza starts with this, so that answers to API iqs are told
/// from every other stanza without a lookup.
pub const API_ID_PREFIX: &str = "api-";

/// A new id for a stanza sent through the API: [`API_ID_PREFIX`] and 128 bits from the
/// operating system's CSPRNG, in hex. Nothing in one id tells anything about another.
pub fn new_api_id() -> Result<String, getrandom::Error> {
    let mut random = [0u8; 16];
    getrandom::fill(&mut random)?;
    let mut id = String::with_capacity(API_ID_PREFIX.len() + 2 * random.len());
    id.push_str(API_ID_PREFIX);
    for byte in random {
        id.push(char::from(HEX[usize::from(byte >> 4)]));
        id.push(char::from(HEX[usize::from(byte & 0x0f)]));
    }
    Ok(id)
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// An address as servers compare them: the JID normalised (nodeprep, nameprep,
/// resourceprep); text that is not a JID stays as written.
fn normalised(address: &str) -> String {
    match jid::Jid::new(address) {
        Ok(jid) => jid.to_string(),
        Err(_) => address.to_string(),
    }
}

struct Pending {
    /// The iq's `to`, normalised: the only address its answer may come from.
    to: String,
    answer: oneshot::Sender<Element>,
}

/// One API iq awaiting its answer; forgotten when dropped.
pub struct AwaitedIq<'a> {
    pending: &'a PendingIqs,
    id: String,
    receiver: oneshot::Receiver<Element>,
}

impl AwaitedIq<'_> {
    /// The answer, once it comes (`None` if the component drops it, e.g. when stopping).
    pub async fn answer(&mut self) -> Option<Element> {
        (&mut self.receiver).await.ok()
    }

    /// The answer if it has come already.
    #[cfg(test)]
    fn try_answer(&mut self) -> Option<Element> {
        self.receiver.try_recv().ok()
    }
}

impl Drop for AwaitedIq<'_> {
    fn drop(&mut self) {
        self.pending.waiting().remove(&self.id);
    }
}

/// The API iqs of one component awaiting their answers, by id.
#[derive(Default)]
pub struct PendingIqs {
    waiting: Mutex<HashMap<String, Pending>>,
}

impl PendingIqs {
    fn waiting(&self) -> std::sync::MutexGuard<'_, HashMap<String, Pending>> {
        self.waiting.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers the iq `id` sent to `to`. The answer comes through the returned
    /// [`AwaitedIq`]; when it is dropped (answered, timed out, or the request given up
    /// because its client went away), the iq is no longer awaited.
    pub fn expect(&self, id: &str, to: &str) -> AwaitedIq<'_> {
        let (answer, receiver) = oneshot::channel();
        let to = normalised(to);
        self.waiting()
            .insert(id.to_string(), Pending { to, answer });
        AwaitedIq {
            pending: self,
            id: id.to_string(),
            receiver,
        }
    }

    /// How many iqs are waiting.
    pub fn len(&self) -> usize {
        self.waiting().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Hands an iq `result`/`error` to the API request awaiting it, when both its id and its
    /// `from` (the address the iq was sent to) match; gives every other stanza back, a
    /// forged answer included, for the dispatcher to treat as any other stanza.
    pub fn answer(&self, element: Element, domain: &str) -> Result<(), Element> {
        let id = match element.attr("id") {
            Some(id)
                if id.starts_with(API_ID_PREFIX)
                    && element.name() == "iq"
                    && matches!(element.attr("type"), Some("result" | "error")) =>
            {
                id
            }
            _ => return Err(element),
        };
        let mut waiting = self.waiting();
        let Some(pending) = waiting.get(id) else {
            return Err(element);
        };
        let from = element.attr("from").unwrap_or_default();
        if from != pending.to && normalised(from) != pending.to {
            tracing::warn!(
                "{domain}: an answer to API iq {id} came from {from}, not from {}, the address \
                 it was sent to: not taken as the answer",
                pending.to
            );
            return Err(element);
        }
        match waiting.remove(id) {
            Some(pending) => pending.answer.send(element),
            None => Err(element),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iq(kind: &str, id: &str, from: &str) -> Element {
        let xml = format!("<iq xmlns='jabber:component:accept' type='{kind}' id='{id}' from='{from}' to='bot.example.com'/>");
        xml.parse().expect("valid iq")
    }

    #[test]
    fn ids_carry_128_random_bits_and_share_nothing_but_the_prefix() {
        let ids: Vec<String> = (0..1000)
            .map(|_| new_api_id().expect("randomness"))
            .collect();
        for id in &ids {
            let hex = id.strip_prefix(API_ID_PREFIX).expect("prefixed");
            assert_eq!(hex.len(), 32, "{id}");
            assert!(hex.bytes().all(|b| HEX.contains(&b)), "{id}");
        }
        // A per-process prefix followed by a count (the ids before) would share their first
        // half and differ only at the end: random ids differ from the start.
        let mut halves: Vec<&str> = ids.iter().map(|id| &id[4..20]).collect();
        halves.sort_unstable();
        halves.dedup();
        assert_eq!(halves.len(), ids.len(), "the first 64 bits repeat");
        let mut tails: Vec<&str> = ids.iter().map(|id| &id[20..]).collect();
        tails.sort_unstable();
        tails.dedup();
        assert_eq!(tails.len(), ids.len(), "the last 64 bits repeat");
    }

    #[test]
    fn an_answer_from_the_address_the_iq_went_to_is_taken() {
        let pending = PendingIqs::default();
        let mut answer = pending.expect("api-1", "alice@example.com/phone");
        let result = iq("result", "api-1", "alice@example.com/phone");
        assert!(pending.answer(result, "bot.example.com").is_ok());
        assert_eq!(
            answer.try_answer().expect("answered").attr("type"),
            Some("result")
        );
        assert!(pending.is_empty());
    }

    #[test]
    fn an_answer_from_anyone_else_is_given_back_and_the_iq_still_waits() {
        let pending = PendingIqs::default();
        let mut answer = pending.expect("api-2", "bob@example.com/laptop");
        for from in [
            "alice@example.com/attacker",
            "bob@example.com",
            "bob@example.com/other",
            "example.com",
            "",
        ] {
            let forged = iq("result", "api-2", from);
            let given_back = pending.answer(forged, "bot.example.com");
            assert!(given_back.is_err(), "taken from '{from}'");
        }
        let no_from: Element =
            "<iq xmlns='jabber:component:accept' type='error' id='api-2' to='bot.example.com'/>"
                .parse()
                .expect("valid iq");
        assert!(pending.answer(no_from, "bot.example.com").is_err());
        assert!(answer.try_answer().is_none(), "nothing was handed over");
        assert_eq!(pending.len(), 1);
        let real = iq("error", "api-2", "bob@example.com/laptop");
        assert!(pending.answer(real, "bot.example.com").is_ok());
        assert_eq!(
            answer.try_answer().expect("answered").attr("type"),
            Some("error")
        );
    }

    #[test]
    fn addresses_are_compared_as_jids() {
        let pending = PendingIqs::default();
        let mut answer = pending.expect("api-3", "Bob@Example.COM");
        let result = iq("result", "api-3", "bob@example.com");
        assert!(pending.answer(result, "bot.example.com").is_ok());
        assert!(answer.try_answer().is_some());
        let mut answer = pending.expect("api-4", "example.com");
        let result = iq("result", "api-4", "EXAMPLE.com");
        assert!(pending.answer(result, "bot.example.com").is_ok());
        assert!(answer.try_answer().is_some());
    }

    #[test]
    fn a_request_given_up_forgets_its_iq() {
        let pending = PendingIqs::default();
        let awaited = pending.expect("api-7", "alice@example.com");
        assert_eq!(pending.len(), 1);
        drop(awaited);
        assert!(pending.is_empty());
        let late = iq("result", "api-7", "alice@example.com");
        assert!(pending.answer(late, "bot.example.com").is_err());
    }

    #[test]
    fn other_stanzas_are_given_back_untouched() {
        let pending = PendingIqs::default();
        let _answer = pending.expect("api-5", "alice@example.com");
        for xml in [
            "<iq xmlns='jabber:component:accept' type='get' id='api-5' from='alice@example.com'/>",
            "<message xmlns='jabber:component:accept' type='error' id='api-5' from='alice@example.com'/>",
            "<iq xmlns='jabber:component:accept' type='result' id='other-5' from='alice@example.com'/>",
            "<iq xmlns='jabber:component:accept' type='result' id='api-6' from='alice@example.com'/>",
        ] {
            let element: Element = xml.parse().expect("valid stanza");
            assert!(pending.answer(element, "bot.example.com").is_err(), "{xml}");
        }
        assert_eq!(pending.len(), 1);
    }
}
