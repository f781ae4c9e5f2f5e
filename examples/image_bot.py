#!/usr/bin/env python3
# Webhook image bot for component-http (standard library only): run `python3 examples/image_bot.py [PORT]` (or PORT=8080) and point `post_url` at http://127.0.0.1:PORT/.
"""Answers an image with an image: a small PNG it draws, in colours taken from the URL.

component-http POSTs each stanza as a JSON object ({"to", "from", "kind", "stanza",
"body"?} and, for rich messages, more keys). An image sent from a client such as
Conversations arrives with "oob_url" (XEP-0066): the link to the uploaded file. This bot
never downloads it: it draws a 64x64 gradient whose colours come from a hash of the URL,
and answers with the reply field

  "file": {"name": "reply.png", "content_type": "image/png", "data": "<base64>"}

which component-http uploads through the server's XEP-0363 service and sends as a
message with the file's URL (as body and as "oob_url", so clients show it inline).
A message with a body but no image gets a line that says what the bot does; anything
else (a chat state, a receipt) gets 204, "send nothing". With `forward_chat_states =
false` in the component's block, those last ones are not even POSTed.
"""
import base64
import hashlib
import json
import os
import struct
import sys
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SIZE = 64
HELP = "Send me an image and I answer with a picture drawn from its link."


def chunk(kind, data):
    """One PNG chunk: length, type, data, CRC of type and data."""
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def draw_png(seed):
    """A SIZE x SIZE RGB PNG: a diagonal gradient between two colours taken from `seed`."""
    digest = hashlib.sha256(seed.encode("utf-8")).digest()
    start, end = digest[0:3], digest[3:6]
    rows = bytearray()
    for y in range(SIZE):
        rows.append(0)  # filter type 0 (None) for each scanline
        for x in range(SIZE):
            t = (x + y) / (2 * (SIZE - 1))
            rows.extend(round(a + (b - a) * t) for a, b in zip(start, end))
    header = struct.pack(">IIBBBBB", SIZE, SIZE, 8, 2, 0, 0, 0)  # 8-bit RGB
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(bytes(rows), 9))
        + chunk(b"IEND", b"")
    )


def image_url(event):
    """The attachment's URL: "oob_url", or the "url" of "oob"; None without one."""
    url = event.get("oob_url")
    if not isinstance(url, str):
        oob = event.get("oob")
        url = oob.get("url") if isinstance(oob, dict) else None
    return url if isinstance(url, str) and url else None


def answer(event):
    """The reply object for one webhook request, or None for "send nothing"."""
    if not isinstance(event, dict) or event.get("kind", "message") != "message":
        return None
    url = image_url(event)
    if url is not None:
        picture = base64.b64encode(draw_png(url)).decode("ascii")
        return {
            "body": "Here is a picture for your image.",
            "file": {"name": "reply.png", "content_type": "image/png", "data": picture},
        }
    if isinstance(event.get("body"), str):
        return {"body": HELP}
    return None  # a chat state, a receipt, a marker: nothing to say


class ImageBot(BaseHTTPRequestHandler):
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
    server = ThreadingHTTPServer((host, port), ImageBot)
    print(f"image bot listening on http://{host}:{port}/", file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
