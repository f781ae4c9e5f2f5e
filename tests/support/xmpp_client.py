#!/usr/bin/env python3
"""A real XMPP client (slixmpp) that the integration tests and the demo drive as a user.

It exists so that tests exercise component-http through a genuine c2s client and a real
server (Prosody) instead of a hand-rolled mock. Only the Python standard library and
slixmpp are used. Plaintext only, no TLS: it is meant for loopback test servers.

Line mode (default), a JSON-lines protocol on stdin/stdout:
  stdout: {"event": "online", "jid": "<full jid>"}     once, when the server has
                                                         processed our initial presence
          {"event": "stanza", "xml": "<...>"}            every message/presence/iq received
          {"event": "stream_error", "xml": "<...>"}      a stream error from the server
          {"event": "disconnected"}                      unexpected disconnect (exit 1)
          {"event": "failed_auth"}                       authentication failed (exit 2)
          {"event": "connection_failed", "reason": ".."} TCP connect failed (exit 3)
  stdin:  one raw XML stanza per line, sent verbatim; EOF = disconnect cleanly, exit 0.
  Received iq get/set are printed and never answered; nothing is auto-replied.

Rich mode (--rich, with line mode): slixmpp's own plugins for the XEPs of rich messages
are registered (0066 OOB, 0085 chat states, 0184 receipts, without auto-acks, 0308
corrections, 0333 markers, 0424 retractions, 0428 fallbacks, 0444 reactions, 0461
replies), and what they parse is added to each received message's event:
  {"event": "stanza", "xml": "<...>", "parsed": {"body", "oob_url", "oob_desc", "reply":
   {"id", "to"}, "fallback_body", "replace_id", "reactions": {"id", "values"}, "retract_id",
   "chat_state", "receipt", "request_receipt", "displayed", "markable"}}
  (a key only when the message has it). A stdin line that starts with "{" is a JSON
  command: {"send": {"to", "type", "id", "body", "oob_url", "reply": {"id", "to"},
  "replace", "reactions": {"id", "values"}, "retract", "state", "request_receipt"}} builds
  the message through those plugins' stanza interfaces and sends it.

One-shot mode: --send-to JID --body TEXT [--timeout S]
  sends one chat message, waits for the first <message> with a body from JID's bare
  address, prints "reply from <from>: <body>" and exits 0; exit 1 on timeout or on a
  type='error' message from that JID (e.g. a bounce when the component is offline).
"""

import argparse
import asyncio
import json
import os
import sys
import threading

import slixmpp
from slixmpp.jid import JID
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher.base import MatcherBase
from slixmpp.xmlstream.tostring import tostring

CLIENT_NS = "jabber:client"
STANZA_TAGS = {"{%s}%s" % (CLIENT_NS, t) for t in ("message", "presence", "iq")}

PRESENCE_ECHO_TIMEOUT = 5.0  # seconds

# Built-in handlers that would answer or swallow stanzas on our behalf.
AUTO_HANDLERS = ("IM", "IMError", "Presence", "Roster Update")


class AnyStanza(MatcherBase):
    """Matches every top-level message, presence and iq."""

    def __init__(self):
        super().__init__(None)

    def match(self, xml):
        return xml.xml.tag in STANZA_TAGS


def emit(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def as_xml(stanza):
    """Serialise with the stanza's namespace declared on the root element.

    str(stanza) omits xmlns="jabber:client" (the stream default); without a stream,
    slixmpp's tostring declares it, so every printed stanza is standalone XML.
    """
    return tostring(stanza.xml, top_level=True)


def log(msg):
    sys.stderr.write("xmpp_client: %s\n" % msg)
    sys.stderr.flush()


class TestClient(slixmpp.ClientXMPP):
    def __init__(self, args, done):
        super().__init__(args.jid, args.password)
        self.args = args
        self.done = done  # future resolved with the process exit code
        self.exit_code = None  # set once we are closing on purpose
        self.online = False
        self.enable_starttls = False
        self.enable_direct_tls = False
        self.enable_plaintext = True
        self.plugin["feature_mechanisms"].unencrypted_plain = True
        # No automatic subscription answers, no roster pushes answered, no
        # feature-not-implemented errors: the catch-all handler "handles" all.
        self.auto_authorize = None
        self.auto_subscribe = False
        for name in AUTO_HANDLERS:
            self.remove_handler(name)
        self.register_handler(Callback("Test catch-all", AnyStanza(), self.on_stanza))
        self.add_event_handler("session_start", self.on_session_start)
        self.add_event_handler("disconnected", self.on_disconnected)
        self.add_event_handler("failed_all_auth", self.on_failed_auth)
        self.add_event_handler("connection_failed", self.on_connection_failed)
        self.add_event_handler("stream_error", self.on_stream_error)
        if args.rich:
            for plugin in RICH_PLUGINS:
                self.register_plugin(plugin)
            # Receipts are the component's to send, and the tests' to look at: none back.
            self.plugin["xep_0184"].auto_ack = False

    def finish(self, code):
        if not self.done.done():
            self.done.set_result(code)

    # --- events -------------------------------------------------------------

    async def on_session_start(self, _event):
        # Online only once the server has processed our initial presence, which it
        # reflects back to us (RFC 6121 4.2.2): until then messages to our bare JID
        # would not reach us. Fall back to a timer should a server not reflect it.
        self.send_presence()
        self.loop.call_later(PRESENCE_ECHO_TIMEOUT, self.on_presence_echo_timeout)

    def on_presence_echo_timeout(self):
        if not self.online:
            log("no reflected initial presence after %ss; going on" % PRESENCE_ECHO_TIMEOUT)
            self.go_online()

    def is_presence_echo(self, stanza):
        return (
            not self.online
            and stanza.xml.tag == "{%s}presence" % CLIENT_NS
            and stanza.xml.get("type") is None
            and stanza["from"] == self.boundjid
        )

    def go_online(self):
        if self.online:
            return
        self.online = True
        if self.args.send_to:
            self.send_message(mto=self.args.send_to, mbody=self.args.body, mtype="chat")
            self.loop.call_later(self.args.timeout, self.on_timeout)
        else:
            emit({"event": "online", "jid": str(self.boundjid.full)})
            start_stdin_reader(self)

    def on_stanza(self, stanza):
        if self.is_presence_echo(stanza):
            self.go_online()
        elif self.args.send_to:
            self.check_reply(stanza)
        elif self.online:
            event = {"event": "stanza", "xml": as_xml(stanza)}
            if self.args.rich and stanza.xml.tag == "{%s}message" % CLIENT_NS:
                event["parsed"] = parsed(stanza)
            emit(event)

    def on_stream_error(self, err):
        if not self.args.send_to:
            emit({"event": "stream_error", "xml": as_xml(err)})
        else:
            log("stream error: %s" % err)

    def on_disconnected(self, _reason):
        if self.exit_code is not None:
            self.finish(self.exit_code)
            return
        if not self.args.send_to:
            emit({"event": "disconnected"})
        else:
            log("disconnected before a reply arrived")
        self.finish(1)

    def on_failed_auth(self, _event=None):
        if not self.args.send_to:
            emit({"event": "failed_auth"})
        log("authentication failed for %s" % self.args.jid)
        self.exit_code = 2  # the disconnect that follows is expected
        self.finish(2)
        self.abort()

    def on_connection_failed(self, reason):
        if not self.args.send_to:
            emit({"event": "connection_failed", "reason": str(reason)})
        log("cannot connect to %s:%s: %s" % (self.args.host, self.args.port, reason))
        self.exit_code = 3
        self.cancel_connection_attempt()  # slixmpp would otherwise retry forever
        self.finish(3)

    # --- one-shot mode --------------------------------------------------------

    def check_reply(self, stanza):
        if stanza.xml.tag != "{%s}message" % CLIENT_NS:
            return
        if stanza["from"].bare != JID(self.args.send_to).bare:
            return
        if stanza.xml.get("type") == "error":
            log("error from %s: %s" % (stanza["from"], as_xml(stanza)))
            self.close(1)
            return
        body = stanza.xml.find("{%s}body" % CLIENT_NS)
        if body is None or body.text is None:
            return
        print("reply from %s: %s" % (stanza["from"], body.text), flush=True)
        self.close(0)

    def on_timeout(self):
        if not self.done.done():
            log("no reply from %s within %ss" % (self.args.send_to, self.args.timeout))
            self.close(1)

    # --- line mode ------------------------------------------------------------

    def send_line(self, line):
        line = line.strip()
        if line.startswith("{"):
            self.command(json.loads(line))
        elif line:
            self.send_raw(line)

    def command(self, command):
        """A JSON line (rich mode): a message built through the plugins' interfaces."""
        fields = command["send"]
        msg = self.make_message(mto=fields["to"], mtype=fields.get("type", "chat"))
        if "id" in fields:
            msg["id"] = fields["id"]
        if "body" in fields:
            msg["body"] = fields["body"]
        if "oob_url" in fields:
            msg["oob"]["url"] = fields["oob_url"]
        if "reply" in fields:
            msg["reply"]["id"] = fields["reply"]["id"]
            if "to" in fields["reply"]:
                msg["reply"]["to"] = fields["reply"]["to"]
        if "replace" in fields:
            msg["replace"]["id"] = fields["replace"]
        if "reactions" in fields:
            msg["reactions"]["id"] = fields["reactions"]["id"]
            msg["reactions"].set_values(fields["reactions"]["values"], all_chars=True)
        if "retract" in fields:
            msg["retract"]["id"] = fields["retract"]
        if "state" in fields:
            msg["chat_state"] = fields["state"]
        if fields.get("request_receipt"):
            msg["request_receipt"] = True
        msg.send()

    def close(self, code):
        """Close the stream cleanly, then exit with `code`."""
        if self.exit_code is not None:
            return
        self.exit_code = code
        fut = self.disconnect(wait=2.0)
        fut.add_done_callback(lambda _f: self.finish(code))


RICH_PLUGINS = (
    "xep_0066",
    "xep_0085",
    "xep_0184",
    "xep_0308",
    "xep_0333",
    "xep_0424",
    "xep_0428",
    "xep_0444",
    "xep_0461",
)


def has(msg, namespace, name):
    return msg.xml.find("{%s}%s" % (namespace, name)) is not None


def parsed(msg):
    """What the plugins read of a received message. Each interface is read only when its
    element is there: reading an absent plugin would add an empty element."""
    out = {}
    if msg["body"]:
        out["body"] = msg["body"]
    if has(msg, "jabber:x:oob", "x"):
        out["oob_url"] = msg["oob"]["url"]
        if msg["oob"]["desc"]:
            out["oob_desc"] = msg["oob"]["desc"]
    if has(msg, "urn:xmpp:reply:0", "reply"):
        out["reply"] = {"id": msg["reply"]["id"]}
        if msg["reply"].xml.get("to"):
            out["reply"]["to"] = str(msg["reply"]["to"])
        if has(msg, "urn:xmpp:fallback:0", "fallback"):
            out["fallback_body"] = msg["reply"].get_fallback_body()
            out["stripped_body"] = msg["reply"].strip_fallback_content()
    if has(msg, "urn:xmpp:message-correct:0", "replace"):
        out["replace_id"] = msg["replace"]["id"]
    if has(msg, "urn:xmpp:reactions:0", "reactions"):
        values = msg["reactions"].get_values(all_chars=True)
        out["reactions"] = {"id": msg["reactions"]["id"], "values": sorted(values)}
    if has(msg, "urn:xmpp:message-retract:1", "retract"):
        out["retract_id"] = msg["retract"]["id"]
    if msg["chat_state"]:
        out["chat_state"] = msg["chat_state"]
    if msg["receipt"]:
        out["receipt"] = msg["receipt"]
    if msg["request_receipt"]:
        out["request_receipt"] = True
    if has(msg, "urn:xmpp:chat-markers:0", "displayed"):
        out["displayed"] = msg["displayed"]["id"]
    if has(msg, "urn:xmpp:chat-markers:0", "markable"):
        out["markable"] = True
    return out


def start_stdin_reader(xmpp):
    """Read stdin in a thread (works for pipes, files and ttys alike)."""
    loop = xmpp.loop

    def reader():
        for raw in sys.stdin.buffer:
            line = raw.decode("utf-8", errors="replace")
            loop.call_soon_threadsafe(xmpp.send_line, line)
        loop.call_soon_threadsafe(xmpp.close, 0)

    threading.Thread(target=reader, name="stdin", daemon=True).start()


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--jid", required=True, help="bare or full JID to log in as")
    p.add_argument("--password", required=True)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True, help="c2s port")
    p.add_argument("--send-to", metavar="JID", help="one-shot mode: message this JID")
    p.add_argument("--body", help="one-shot mode: message body")
    p.add_argument("--timeout", type=float, default=10.0, help="one-shot reply timeout (s)")
    p.add_argument("--rich", action="store_true", help="register the rich-message plugins")
    args = p.parse_args(argv)
    if args.send_to and args.body is None:
        p.error("--send-to needs --body")
    if args.body is not None and not args.send_to:
        p.error("--body needs --send-to")
    return args


async def run(args):
    done = asyncio.get_running_loop().create_future()
    xmpp = TestClient(args, done)
    xmpp.connect(args.host, args.port)
    code = await done
    if xmpp.transport is not None:  # e.g. auth failure: make sure the socket is gone
        xmpp.abort()
    return code


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        code = asyncio.run(run(args))
    except KeyboardInterrupt:
        code = 130
    # The stdin thread may still be blocked in a read: a normal interpreter shutdown
    # would then abort ("could not acquire lock for <stdin>"), so leave directly.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    main()
