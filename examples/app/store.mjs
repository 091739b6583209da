#!/usr/bin/env node
// The app's store: a tiny key-value server over HTTP, in memory.
//   GET /kv/KEY -> the value (404 if unset)   POST /kv/KEY/incr -> the value after adding 1
import http from 'node:http';

const port = Number(process.env.PORT ?? 7000);
const data = new Map();
const server = http.createServer((req, res) => {
  const m = /^\/kv\/([\w.-]+)(\/incr)?$/.exec(req.url ?? '');
  const send = (status, body) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body) + '\n');
  };
  if (!m) return send(404, { error: 'use /kv/KEY' });
  if (m[2] && req.method === 'POST') data.set(m[1], (data.get(m[1]) ?? 0) + 1);
  if (!data.has(m[1])) return send(404, { error: `${m[1]} is not set` });
  send(200, { key: m[1], value: data.get(m[1]) });
});
server.listen(port, '::', () => console.log(`store listening on :${port}`));
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => server.close(() => process.exit(0)));
