//! component-http: write an XMPP bot in any language as an HTTP webhook.
pub mod stanza;
