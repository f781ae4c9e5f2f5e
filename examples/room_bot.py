#!/usr/bin/env python3
# Webhook room bot for component-http (standard library only): run `python3 examples/room_bot.py [PORT]` (or PORT=8080), point `post_url` at http://127.0.0.1:PORT/ and list rooms in the component's `rooms`.
"""Answers "!ping" with "pong" in the group chats the bot has joined, and echoes one to one.

component-http POSTs each stanza as a JSON object ({"to", "from", "kind", "stanza",
"body"?}); a 200 reply with Content-Type application/json becomes the answer stanza,
a 204 means "send nothing". A stanza from a room the bot is in carries three more fields,
which are all this bot looks at:

  "room"      the room's bare JID (lobby@conference.example.com); present only for
              room traffic, so it tells a group chat from a one-to-one chat
  "occupant"  who spoke: {"nick": "alice", "id"?, "jid"?}; "nick" is always there
  "mentioned" true when the message names the bot's nick (always true for a private
              message from an occupant)

A reply to room traffic needs only a "body": component-http sends it back where it came
from, to the room as a groupchat message (or to the occupant, for a private message),
from the JID that joined. The bot never sets "to", "from" or "type" for a room answer.
A room bot answers when it is asked, never to every message: anything else gets 204.
"""
import json
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HELP = "I answer !ping with pong."


def command_of(body):
    """The body without a leading address ("EchoBot: !ping" -> "!ping")."""
    words = body.split()
    if len(words) > 1 and words[0][-1] in ":,":
        words = words[1:]
    return " ".join(words)


def answer(event):
    """The reply object for one webhook request, or None for "send nothing"."""
    if not isinstance(event, dict) or event.get("kind", "message") != "message":
        return None
    body = event.get("body")
    if not isinstance(body, str):
        return None  # a subject change, a chat state, or no body at all
    if "room" not in event:
        return {"body": f"Did you say {body}?"}  # one to one: echo, as echo_bot.py does
    if command_of(body) == "!ping":
        return {"body": "pong"}
    if event.get("mentioned") is True:
        occupant = event.get("occupant")
        nick = occupant.get("nick") if isinstance(occupant, dict) else None
        return {"body": f"{nick}: {HELP}" if isinstance(nick, str) and nick else HELP}
    return None


class RoomBot(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: component-http reuses connections

    def do_POST(self):
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            self.close_connection = True  # the body's end is unknown: do not read on
            return self.reply(400, {"error": "bad Content-Length"})
        raw = self.rfile.read(max(length, 0))
        try:
            event = json.loads(raw)
        except ValueError:
            return self.reply(400, {"error": "request body is not JSON"})
        reply = answer(event)
        return self.reply(204) if reply is None else self.reply(200, reply)

    def do_GET(self):
        self.reply(405, {"error": "POST stanzas here"}, {"Allow": "POST"})

    def reply(self, status, obj=None, headers=None):
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if obj is None:
            self.end_headers()  # 204: no body, no Content-Length
            return
        data = json.dumps(obj, ensure_ascii=False).encode("utf-8")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def main():
    port = int(sys.argv[1] if len(sys.argv) > 1 else os.environ.get("PORT", "8080"))
    host = os.environ.get("HOST", "127.0.0.1")
    server = ThreadingHTTPServer((host, port), RoomBot)
    print(f"room bot listening on http://{host}:{port}/", file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
