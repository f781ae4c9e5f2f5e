#!/usr/bin/env python3
# Webhook echo bot for component-http (standard library only): run `python3 examples/echo_bot.py [PORT]` (or PORT=8080) and point `post_url` at http://127.0.0.1:PORT/.
"""Answers every message that has a body with "Did you say <body>?".

component-http POSTs each stanza as a JSON object ({"to", "from", "kind", "stanza",
"body"?}); a 200 reply with Content-Type application/json becomes the answer stanza,
a 204 means "send nothing".
"""
import json
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class EchoBot(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: component-http reuses connections

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        try:
            event = json.loads(raw)
        except ValueError:
            return self.reply(400, {"error": "request body is not JSON"})
        if isinstance(event, dict) and event.get("kind", "message") == "message" and "body" in event:
            return self.reply(200, {"body": f"Did you say {event['body']}?"})
        return self.reply(204)

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
    server = ThreadingHTTPServer((host, port), EchoBot)
    print(f"echo bot listening on http://{host}:{port}/", file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
