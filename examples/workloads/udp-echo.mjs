#!/usr/bin/env node
// A tiny UDP echo for demos and tests.
//   node udp-echo.mjs serve [PORT]          answers each datagram with "<name> got <text> from <addr>"
//   node udp-echo.mjs send HOST PORT TEXT   prints the answer; exit 1 if none comes within 2 s
import dgram from 'node:dgram';
import os from 'node:os';

const [mode, a, b, text] = process.argv.slice(2);
if (mode === 'serve') {
  const port = Number(a ?? 9053);
  const sock = dgram.createSocket({ type: 'udp6', ipv6Only: false });
  sock.on('message', (msg, rinfo) => {
    const from = rinfo.address.replace(/^::ffff:/, '');
    console.log(`got ${msg.toString().trim()} from ${from}`);
    sock.send(`${process.env.NAME ?? os.hostname()} got ${msg.toString().trim()} from ${from}`, rinfo.port, rinfo.address);
  });
  sock.bind(port, () => console.log(`listening on udp :${port}`));
  for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => process.exit(0));
} else if (mode === 'send') {
  const sock = dgram.createSocket(a.includes(':') ? 'udp6' : 'udp4');
  const timer = setTimeout(() => {
    console.error('no answer');
    process.exit(1);
  }, 2000);
  sock.on('message', (msg) => {
    clearTimeout(timer);
    console.log(msg.toString());
    sock.close();
  });
  sock.send(text ?? 'hello', Number(b), a);
} else {
  console.error('usage: udp-echo.mjs serve [PORT] | send HOST PORT TEXT');
  process.exit(2);
}
