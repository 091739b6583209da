#!/usr/bin/env node
// The app's web front: the page, and /api/* passed to the API by its service name.
//   GET / -> a page   GET /api/PATH -> http://api:8080/PATH   GET /reach?url=URL -> can web fetch URL?
import { resolve4 } from 'node:dns/promises';
import http from 'node:http';
import os from 'node:os';

const port = Number(process.env.PORT ?? 80);
const api = process.env.API_URL ?? 'http://api:8080';

function fetchText(url) {
  return new Promise((resolve, reject) => {
    // a new connection per call (no keep-alive): the kernel balances connections, not requests
    const req = http.get(url, { timeout: 2000, agent: false }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode, body }));
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', reject);
  });
}

// Every call asks DNS for the API's address and takes the first: the API's virtual IP (or, for a
// name with several addresses, weft's DNS rotates them; getaddrinfo would re-sort them).
async function apiBase() {
  const u = new URL(api);
  try {
    u.hostname = (await resolve4(u.hostname))[0];
  } catch {
    // not a name, or no answer: let the request report it
  }
  return u.href.replace(/\/$/, '');
}

const server = http.createServer(async (req, res) => {
  const url = new URL(req.url ?? '/', 'http://web');
  const reply = (status, type, body) => {
    res.writeHead(status, { 'content-type': type });
    res.end(body);
  };
  try {
    if (url.pathname.startsWith('/api/')) {
      const r = await fetchText(`${await apiBase()}/${url.pathname.slice(5)}`);
      return reply(r.status, 'application/json', r.body);
    }
    if (url.pathname === '/reach') {
      const r = await fetchText(url.searchParams.get('url') ?? '');
      return reply(200, 'application/json', JSON.stringify({ reached: true, status: r.status }) + '\n');
    }
    reply(200, 'text/plain', `weft example app, web front ${os.hostname()}\ntry /api/hit\n`);
  } catch (e) {
    reply(502, 'application/json', JSON.stringify({ reached: false, error: e.message }) + '\n');
  }
});
server.listen(port, '::', () => console.log(`web listening on :${port}, api at ${api}`));
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => server.close(() => process.exit(0)));
