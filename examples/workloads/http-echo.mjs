#!/usr/bin/env node
// A tiny HTTP server for demos and tests: answers every request with who it is and who asked.
//   node http-echo.mjs [PORT]   (default 8080; env NAME overrides the reported name)
import http from 'node:http';
import os from 'node:os';

const port = Number(process.argv[2] ?? process.env.PORT ?? 8080);
const name = process.env.NAME ?? os.hostname();
const server = http.createServer((req, res) => {
  const body = JSON.stringify({ server: name, hostname: os.hostname(), client: req.socket.remoteAddress?.replace(/^::ffff:/, ''), path: req.url }) + '\n';
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
});
server.listen(port, '::', () => console.log(`${name} listening on :${port}`));
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => server.close(() => process.exit(0)));
