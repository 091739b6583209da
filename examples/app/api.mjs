#!/usr/bin/env node
// The app's API: counts visits in the store, reached by its service name.
//   GET /hit -> { served_by, hits }   GET /health -> ok
import http from 'node:http';
import os from 'node:os';

const port = Number(process.env.PORT ?? 8080);
const store = process.env.STORE_URL ?? 'http://store:7000';

function call(url, method = 'GET') {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, timeout: 2000 }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode, body }));
    });
    req.on('timeout', () => req.destroy(new Error(`${url}: timed out`)));
    req.on('error', reject);
    req.end();
  });
}

const server = http.createServer(async (req, res) => {
  const send = (status, body) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body) + '\n');
  };
  if (req.url === '/health') return send(200, { ok: true });
  if (req.url !== '/hit') return send(404, { error: 'use /hit' });
  try {
    const r = await call(`${store}/kv/hits/incr`, 'POST');
    send(200, { served_by: os.hostname(), hits: JSON.parse(r.body).value });
  } catch (e) {
    send(502, { served_by: os.hostname(), error: `the store is unreachable: ${e.message}` });
  }
});
server.listen(port, '::', () => console.log(`api ${os.hostname()} listening on :${port}, store at ${store}`));
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => server.close(() => process.exit(0)));
