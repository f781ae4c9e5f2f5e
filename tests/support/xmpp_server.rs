//! One real XMPP server for a test, Prosody or ejabberd: `Server` says which one,
//! `XmppServer` is a running one, with what both harnesses offer. Tests written against
//! these run unchanged on both; where the servers themselves behave differently, the
//! difference is a method of `Server` (see "Where the servers differ" below), so that a
//! test checks each server's documented behaviour precisely instead of either.

use std::path::Path;

use super::ejabberd::Ejabberd;
use super::prosody::Prosody;

/// Which server a test runs against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Server {
    /// Prosody 0.12 (tests/support/prosody.rs).
    Prosody,
    /// ejabberd 23.01 (tests/support/ejabberd.rs).
    Ejabberd,
}

impl Server {
    /// Starts this server with external `components` as (domain, secret) and `users` as
    /// (user, password) on host "localhost". Panics (never skips) if it is not installed.
    pub fn start(self, components: &[(&str, &str)], users: &[(&str, &str)]) -> XmppServer {
        match self {
            Server::Prosody => XmppServer::Prosody(Prosody::start(components, users)),
            Server::Ejabberd => XmppServer::Ejabberd(Ejabberd::start(components, users)),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Server::Prosody => "Prosody",
            Server::Ejabberd => "ejabberd",
        }
    }

    // ---- Where the servers differ ------------------------------------------------------
    // Found by running tests/e2e on both (Prosody 0.12, ejabberd 23.01). Each difference
    // the tests meet is a method below; the tests assert its value for each server.
    //
    // - Message `type`: Prosody routes a message's `type` attribute verbatim, whatever
    //   it says. ejabberd decodes and re-encodes every stanza it routes: `normal` (the
    //   default, RFC 6121 5.2.2) is left out, and a value that is not one of the five
    //   types is dropped (the message is routed as `normal`, without the attribute),
    //   both from a client to the component and from the component to a client.
    //   -> `message_type_as_delivered`
    // - Logs: each logs a component's successful handshake in its own words, in its own
    //   file. -> `component_login_log_line`, `XmppServer::log`
    // - A stanza to the component's domain while no component is connected: Prosody
    //   bounces it with `wait/remote-server-timeout` "Component unavailable"; ejabberd
    //   treats the domain as a remote server and bounces `cancel/remote-server-not-found`
    //   "DNS lookup failed: enoname", with the original payload (`<body>`, `<ping/>`)
    //   copied into the error. Tests only wait for the error to stop (fixture.rs
    //   `wait_component_online`), so no method is needed yet.
    // - Several connections for one component domain: Prosody refuses the second with a
    //   `conflict` stream error; ejabberd accepts them all and spreads stanzas among them
    //   (at random, or per `domain_balancing`): tests/e2e/instances.rs and the standby
    //   tests in reliability.rs rely on both.
    // - Several component domains: Prosody serves them all on one port, each connection
    //   getting only the domain it authenticated as; ejabberd gives a component every
    //   domain of the `ejabberd_service` listener it authenticated on, whatever their
    //   passwords, so the harness gives each domain a listener of its own.
    //   -> `component_port_for`
    // - Group chat (conference.localhost, no MAM on either): Prosody 0.12 adds an XEP-0421
    //   `<occupant-id>` to every groupchat message and occupant presence; ejabberd 23.01
    //   has no occupant-id at all. Neither adds an XEP-0359 `<stanza-id by=room>` to a
    //   groupchat message without MAM. -> `adds_occupant_id`, `adds_room_stanza_id`
    // - Start time: Prosody is up in ~0.2 s; ejabberd takes ~2.5 s (an Erlang VM, Mnesia
    //   tables) plus ~1.5 s to register users (one `ejabberdctl` VM each, in parallel).
    //
    // The same on both, although one might expect otherwise: both tag a client's stanzas
    // with the stream's `xml:lang='en'`; both pass the component's stanza errors (every
    // row of the status table), `subscribed` and available presence, probe answers and iq
    // results to the client unchanged; both forward a `type='error'` message to the
    // component; both reject a wrong secret with a `not-authorized` stream error; both
    // send `system-shutdown` to clients on a graceful stop (ejabberd reliably only through
    // `ejabberdctl stop`, which `Ejabberd::stop` uses, not on SIGTERM).

    /// The `type` attribute a message sent with `type='{sent}'` has once the server has
    /// routed it (None: no `type` attribute, which means `normal`).
    pub fn message_type_as_delivered(self, sent: &'static str) -> Option<&'static str> {
        match self {
            Server::Prosody => Some(sent),
            Server::Ejabberd => match sent {
                "chat" | "error" | "groupchat" | "headline" => Some(sent),
                _ => None,
            },
        }
    }

    /// Whether the MUC service tags an occupant's groupchat messages with an XEP-0421
    /// occupant-id (then the webhook's `occupant.id` carries it).
    pub fn adds_occupant_id(self) -> bool {
        self == Server::Prosody
    }

    /// Whether the MUC service gives a groupchat message an XEP-0359 stanza-id of its
    /// own (then the webhook's `stanza_id` carries it): neither does without MAM.
    pub fn adds_room_stanza_id(self) -> bool {
        false
    }

    /// The text the server logs (in `XmppServer::log`) once for every component
    /// connection whose handshake succeeded.
    pub fn component_login_log_line(self) -> &'static str {
        match self {
            Server::Prosody => "External component successfully authenticated",
            Server::Ejabberd => "Accepted external component handshake authentication for",
        }
    }
}

/// A running (or stopped, after `stop`/`kill9`) server owned by one test.
pub enum XmppServer {
    Prosody(Prosody),
    Ejabberd(Ejabberd),
}

impl XmppServer {
    pub fn kind(&self) -> Server {
        match self {
            XmppServer::Prosody(_) => Server::Prosody,
            XmppServer::Ejabberd(_) => Server::Ejabberd,
        }
    }

    /// Client-to-server port on 127.0.0.1 (users are on host "localhost").
    pub fn c2s_port(&self) -> u16 {
        match self {
            XmppServer::Prosody(s) => s.c2s_port,
            XmppServer::Ejabberd(s) => s.c2s_port,
        }
    }

    /// XEP-0114 component port on 127.0.0.1 (open only if a component is configured).
    pub fn component_port(&self) -> u16 {
        match self {
            XmppServer::Prosody(s) => s.component_port,
            XmppServer::Ejabberd(s) => s.component_port,
        }
    }

    /// The XEP-0114 port of component `domain` (Prosody: one port for all; ejabberd: a
    /// listener per component, see `Ejabberd::component_port_for`).
    pub fn component_port_for(&self, domain: &str) -> u16 {
        match self {
            XmppServer::Prosody(s) => s.component_port,
            XmppServer::Ejabberd(s) => s.component_port_for(domain),
        }
    }

    /// The server process proper (prosody, or ejabberd's beam.smp), if running: a
    /// benchmark reads its CPU time from /proc.
    pub fn pid(&self) -> Option<u32> {
        match self {
            XmppServer::Prosody(s) => s.pid(),
            XmppServer::Ejabberd(s) => s.pid(),
        }
    }

    /// The server's temp dir (config, data, logs); removed on drop.
    pub fn dir(&self) -> &Path {
        match self {
            XmppServer::Prosody(s) => s.dir(),
            XmppServer::Ejabberd(s) => s.dir(),
        }
    }

    pub fn is_running(&mut self) -> bool {
        match self {
            XmppServer::Prosody(s) => s.is_running(),
            XmppServer::Ejabberd(s) => s.is_running(),
        }
    }

    /// Graceful shutdown, waiting for the server to exit.
    pub fn stop(&mut self) {
        match self {
            XmppServer::Prosody(s) => s.stop(),
            XmppServer::Ejabberd(s) => s.stop(),
        }
    }

    /// Abrupt death (SIGKILL): no stream errors are sent.
    pub fn kill9(&mut self) {
        match self {
            XmppServer::Prosody(s) => s.kill9(),
            XmppServer::Ejabberd(s) => s.kill9(),
        }
    }

    /// Stops the server if running and starts it again: same ports, same users.
    pub fn restart(&mut self) {
        match self {
            XmppServer::Prosody(s) => s.restart(),
            XmppServer::Ejabberd(s) => s.restart(),
        }
    }

    /// The server's main log, all runs: `prosody.log`, or ejabberd's `logs/ejabberd.log`.
    pub fn log(&self) -> String {
        let name = match self {
            XmppServer::Prosody(_) => "prosody.log",
            XmppServer::Ejabberd(_) => "logs/ejabberd.log",
        };
        std::fs::read_to_string(self.dir().join(name)).unwrap_or_default()
    }

    /// The last lines of the server's logs, for panic messages.
    pub fn log_tail(&self) -> String {
        match self {
            XmppServer::Prosody(s) => s.log_tail(),
            XmppServer::Ejabberd(s) => s.log_tail(),
        }
    }
}
