#!/usr/bin/env node
// Webhook echo bot for component-http (Node standard library only): run `node examples/echo_bot.js [PORT]` (or PORT=8080) and point `post_url` at http://127.0.0.1:PORT/.
//
// component-http POSTs each stanza as a JSON object ({"to", "from", "kind", "stanza",
// "body"?}); a 200 reply with Content-Type application/json becomes the answer stanza,
// a 204 means "send nothing".
'use strict';
const http = require('node:http');

const port = Number(process.argv[2] || process.env.PORT || 8080);
const host = process.env.HOST || '127.0.0.1';

function reply(res, status, obj, headers = {}) {
  if (obj === undefined) {
    res.writeHead(status, headers).end(); // 204: no body
    return;
  }
  const data = Buffer.from(JSON.stringify(obj), 'utf8');
  res.writeHead(status, { ...headers, 'Content-Type': 'application/json', 'Content-Length': data.length });
  res.end(data);
}

const server = http.createServer((req, res) => {
  if (req.method !== 'POST') return reply(res, 405, { error: 'POST stanzas here' }, { Allow: 'POST' });
  const chunks = [];
  req.on('data', (chunk) => chunks.push(chunk));
  req.on('end', () => {
    let event;
    try {
      event = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    } catch {
      return reply(res, 400, { error: 'request body is not JSON' });
    }
    if (event && typeof event === 'object' && (event.kind ?? 'message') === 'message' && 'body' in event) {
      return reply(res, 200, { body: `Did you say ${event.body}?` });
    }
    return reply(res, 204);
  });
});

server.listen(port, host, () => console.error(`echo bot listening on http://${host}:${port}/`));
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    server.close(() => process.exit(0));
    server.closeAllConnections();
  });
}
