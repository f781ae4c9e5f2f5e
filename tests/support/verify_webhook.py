#!/usr/bin/env python3
"""A webhook that checks component-http's signatures with an independent verifier.

It uses the `standardwebhooks` package from PyPI (the Standard Webhooks reference library),
not the daemon's own code: every POST is verified with the secret given on the command
line, and answered `{"body": "verified <webhook-id> auth=<Authorization header>"}`, or
401 when the signature does not verify.

Usage: python3 verify_webhook.py PORT whsec_SECRET   (prints "listening" when ready)
"""
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook


class Verifier(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        headers = {name.lower(): value for name, value in self.headers.items()}
        try:
            WEBHOOK.verify(body, headers)
        except Exception as error:  # the library raises WebhookVerificationError
            return self.answer(401, {"error": str(error)})
        auth = headers.get("authorization", "")
        text = f"verified {headers['webhook-id']} auth={auth}"
        return self.answer(200, {"body": text})

    def answer(self, status, obj):
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *_args):
        pass


if __name__ == "__main__":
    WEBHOOK = Webhook(sys.argv[2])
    server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Verifier)
    print("listening", flush=True)
    server.serve_forever()
