#!/usr/bin/env node
// The backend of bench/services.ts: a TCP server that, on every connection, writes the address the
// connection arrived at (`socket.localAddress`, i.e. which backend a load balancer picked) and a
// newline, then holds the connection until the client closes it.
//
//   node svc-server.mjs PORT [PORT...]      (listens on 0.0.0.0; prints "listening" when ready)
import net from 'node:net';

const ports = process.argv.slice(2).map(Number);
if (!ports.length || ports.some((p) => !Number.isInteger(p) || p < 1 || p > 65535)) {
  process.stderr.write('usage: svc-server.mjs PORT [PORT...]\n');
  process.exit(2);
}
let ready = 0;
for (const port of ports) {
  const server = net.createServer((socket) => {
    socket.on('error', () => {}); // clients end with RST on purpose
    socket.setNoDelay(true);
    socket.write(`${(socket.localAddress ?? '?').replace(/^::ffff:/, '')}\n`);
    socket.resume(); // ignore what the client sends; 'end' then closes our side too
  });
  server.on('error', (e) => {
    process.stderr.write(`svc-server: port ${port}: ${e.message}\n`);
    process.exit(1);
  });
  server.listen({ port, host: '0.0.0.0', backlog: 4096 }, () => {
    if (++ready === ports.length) process.stdout.write(`listening on ${ports.join(', ')}\n`);
  });
}
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => process.exit(0));
