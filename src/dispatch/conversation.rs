//! With `ordered`: the conversations with a worker at them, and the stanzas waiting behind
//! each, at most `max_queued_per_conversation` of them.
//!
//! A stanza past that bound is refused at once rather than in its turn: keeping its answer
//! in place would mean keeping it in the queue, which is what the bound is for. So its
//! error goes out ahead of the answers to the stanzas still waiting before it in its
//! conversation; it keeps its `id`, so the sender can tell which stanza it answers, and it
//! stays in order with every other refusal and with the answers of the stanzas accepted
//! after it.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

/// A hash of (sender's bare JID, component JID): the unit of ordering. Two conversations
/// with the same hash would only wait for each other; the hash is keyed at random, so no
/// sender can choose to collide with another.
pub type Conversation = u64;

/// What became of a call handed to [`Conversations::wait_in_turn`].
pub enum Turn<T> {
    /// Its conversation was free, and is now taken: deliver it.
    Now(T),
    /// It waits behind the call in progress, in arrival order.
    Waiting,
    /// Its conversation has `max_queued` calls waiting already: refuse it.
    Full(T),
}

pub struct Conversations<T> {
    max_queued: usize,
    taken: Mutex<HashMap<Conversation, VecDeque<T>>>,
}

impl<T> Conversations<T> {
    pub fn new(max_queued: usize) -> Conversations<T> {
        Conversations {
            max_queued,
            taken: Mutex::new(HashMap::new()),
        }
    }

    /// `call` back when its conversation is free (it is now taken), or queued behind the
    /// call in progress, or back as refused when the queue is full.
    pub fn wait_in_turn(&self, conversation: Conversation, call: T) -> Turn<T> {
        // Poisoned by a panicking worker: deliver without ordering rather than not at all.
        let Ok(mut taken) = self.taken.lock() else {
            return Turn::Now(call);
        };
        match taken.get_mut(&conversation) {
            Some(waiting) if waiting.len() >= self.max_queued => Turn::Full(call),
            Some(waiting) => {
                waiting.push_back(call);
                Turn::Waiting
            }
            None => {
                taken.insert(conversation, VecDeque::new());
                Turn::Now(call)
            }
        }
    }

    /// Like `wait_in_turn`, but never refused: `Some(call)` when the conversation was free
    /// (it is now taken), `None` when it waits. For calls accepted once already (made
    /// again from the store), which the bound must not turn away.
    pub fn queue_behind(&self, conversation: Conversation, call: T) -> Option<T> {
        let Ok(mut taken) = self.taken.lock() else {
            return Some(call);
        };
        match taken.get_mut(&conversation) {
            Some(waiting) => {
                waiting.push_back(call);
                None
            }
            None => {
                taken.insert(conversation, VecDeque::new());
                Some(call)
            }
        }
    }

    /// The conversation's next call, or `None` (and the conversation is free).
    pub fn next_in(&self, conversation: Conversation) -> Option<T> {
        let mut taken = self.taken.lock().ok()?;
        let next = taken.get_mut(&conversation).and_then(VecDeque::pop_front);
        if next.is_none() {
            taken.remove(&conversation);
        }
        next
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now<T>(turn: Turn<T>) -> T {
        match turn {
            Turn::Now(call) => call,
            Turn::Waiting | Turn::Full(_) => panic!("not delivered at once"),
        }
    }

    #[test]
    fn calls_wait_in_arrival_order_up_to_the_bound() {
        let conversations = Conversations::new(2);
        assert_eq!(now(conversations.wait_in_turn(7, 0)), 0);
        assert!(matches!(conversations.wait_in_turn(7, 1), Turn::Waiting));
        assert!(matches!(conversations.wait_in_turn(7, 2), Turn::Waiting));
        assert!(matches!(conversations.wait_in_turn(7, 3), Turn::Full(3)));
        // Another conversation is not held up by this one's queue.
        assert_eq!(now(conversations.wait_in_turn(8, 10)), 10);
        assert_eq!(conversations.next_in(7), Some(1));
        // A place came free: the next one waits again.
        assert!(matches!(conversations.wait_in_turn(7, 4), Turn::Waiting));
        assert_eq!(conversations.next_in(7), Some(2));
        assert_eq!(conversations.next_in(7), Some(4));
        assert_eq!(conversations.next_in(7), None);
        // Free again: delivered at once.
        assert_eq!(now(conversations.wait_in_turn(7, 5)), 5);
        // Past the bound, a call made again from the store still waits its turn.
        assert!(matches!(conversations.wait_in_turn(7, 6), Turn::Waiting));
        assert!(matches!(conversations.wait_in_turn(7, 7), Turn::Waiting));
        assert_eq!(conversations.queue_behind(7, 8), None);
        assert_eq!(conversations.queue_behind(9, 90), Some(90));
        let order: Vec<_> = std::iter::from_fn(|| conversations.next_in(7)).collect();
        assert_eq!(order, [6, 7, 8]);
    }

    #[test]
    fn a_bound_of_zero_allows_only_the_call_in_progress() {
        let conversations = Conversations::new(0);
        assert_eq!(now(conversations.wait_in_turn(1, 'a')), 'a');
        assert!(matches!(
            conversations.wait_in_turn(1, 'b'),
            Turn::Full('b')
        ));
        assert_eq!(conversations.next_in(1), None);
        assert_eq!(now(conversations.wait_in_turn(1, 'c')), 'c');
    }
}
