//! The rich keys of a received stanza ([`RichKeys`]) written into the webhook request's
//! JSON in the same pass as its base fields, in the order and form serde gives them (which
//! the tests compare against).

use std::io::Write as _;

use super::request::JsonString;
use super::rich_read::RichKeys;

impl RichKeys<'_> {
    /// Writes the keys present into `json`, each after a comma (the base fields are
    /// always written first).
    pub(super) fn write_json(&self, json: &mut JsonString) {
        if let Some(url) = &self.oob_url {
            json.field(",\"oob_url\":", url);
        }
        if let Some(oob) = &self.oob {
            json.field(",\"oob\":{\"url\":", &oob.url);
            if let Some(desc) = &oob.desc {
                json.field(",\"desc\":", desc);
            }
            json.raw("}");
        }
        if let Some(reply) = &self.reply {
            json.field(",\"reply\":{\"id\":", reply.id);
            if let Some(to) = reply.to {
                json.field(",\"to\":", to);
            }
            json.raw("}");
        }
        if let Some(id) = self.replace {
            json.field(",\"replace\":", id);
        }
        if let Some(reactions) = &self.reactions {
            json.field(",\"reactions\":{\"id\":", reactions.id);
            json.raw(",\"reactions\":[");
            for (i, reaction) in reactions.reactions.iter().enumerate() {
                json.field(if i == 0 { "" } else { "," }, reaction);
            }
            json.raw("]}");
        }
        if let Some(id) = self.retract {
            json.field(",\"retract\":", id);
        }
        if let Some(state) = self.state {
            json.field(",\"state\":", state);
        }
        if let Some(thread) = &self.thread {
            json.field(",\"thread\":{\"id\":", &thread.id);
            if let Some(parent) = thread.parent {
                json.field(",\"parent\":", parent);
            }
            json.raw("}");
        }
        if let Some(subject) = &self.subject {
            json.field(",\"subject\":", subject);
        }
        if self.receipt_request {
            json.raw(",\"receipt_request\":true");
        }
        if let Some(id) = self.received {
            json.field(",\"received\":", id);
        }
        if self.markable {
            json.raw(",\"markable\":true");
        }
        if let Some(id) = self.displayed {
            json.field(",\"displayed\":", id);
        }
        if let Some(id) = self.stanza_id {
            json.field(",\"stanza_id\":", id);
        }
        self.write_arrays(json);
        if let Some(error) = &self.error {
            json.raw(",\"error\":{");
            if let Some(ty) = error.error_type {
                json.field("\"type\":", ty);
                json.raw(",");
            }
            json.field("\"condition\":", error.condition);
            if let Some(text) = &error.text {
                json.field(",\"text\":", text);
            }
            json.raw("}");
        }
        if let Some(show) = &self.show {
            json.field(",\"show\":", show);
        }
        if let Some(status) = &self.status {
            json.field(",\"status\":", status);
        }
        if let Some(priority) = self.priority {
            json.number(",\"priority\":", i64::from(priority));
        }
    }

    /// `stanza_ids`, `origin_id`, `delay`, `nick` and `fallback`, in the keys' order.
    fn write_arrays(&self, json: &mut JsonString) {
        if !self.stanza_ids.is_empty() {
            json.raw(",\"stanza_ids\":[");
            for (i, sid) in self.stanza_ids.iter().enumerate() {
                json.field(if i == 0 { "{\"id\":" } else { ",{\"id\":" }, sid.id);
                if let Some(by) = sid.by {
                    json.field(",\"by\":", by);
                }
                json.raw("}");
            }
            json.raw("]");
        }
        if let Some(id) = self.origin_id {
            json.field(",\"origin_id\":", id);
        }
        if let Some(stamp) = self.delay {
            json.field(",\"delay\":", stamp);
        }
        if let Some(nick) = &self.nick {
            json.field(",\"nick\":", nick);
        }
        if !self.fallback.is_empty() {
            json.raw(",\"fallback\":[");
            for (i, range) in self.fallback.iter().enumerate() {
                json.raw(if i == 0 { "{" } else { ",{" });
                let mut comma = "";
                if let Some(for_ns) = range.for_ns {
                    json.field("\"for\":", for_ns);
                    comma = ",";
                }
                for (name, value) in [("start", range.start), ("end", range.end)] {
                    if let Some(value) = value {
                        json.raw(comma);
                        json.number(&format!("\"{name}\":"), i64::from(value));
                        comma = ",";
                    }
                }
                json.raw("}");
            }
            json.raw("]");
        }
    }
}

impl JsonString {
    pub(super) fn raw(&mut self, text: &str) {
        self.out.extend_from_slice(text.as_bytes());
    }

    pub(super) fn number(&mut self, name: &str, value: i64) {
        self.raw(name);
        // Writing into a Vec cannot fail.
        let _ = write!(self.out, "{value}");
    }
}
