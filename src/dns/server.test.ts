import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { once } from 'node:events';
import { type AddressInfo, Socket, createServer, type Server } from 'node:net';
import { after, before, describe, test } from 'node:test';
import dnsPacket from 'dns-packet';
import { type DnsSnapshot, NameTable } from './records.js';
import { DnsServer, type Upstream } from './server.js';
import { FrameReader } from './wire.js';

// The server answers only containers; in these tests the asker is a container whose address
// is 127.0.0.1. Clients bound to 127.0.0.2 play an unknown source.
const NET = 'a'.repeat(64);
const OTHER = 'b'.repeat(64);
const HOST = '127.0.0.1';
const STRANGER = '127.0.0.2';

function snapshot(extraAlias = 'web'): DnsSnapshot {
  const many = Array.from({ length: 60 }, (_, i) => ({
    id: (i + 10).toString(16).padStart(64, '0'), name: `m${i}`, running: true,
    endpoints: [{ networkId: NET, ipv4: `10.1.0.${i + 10}`, aliases: ['many'] }],
  }));
  return {
    networks: [
      { id: NET, name: 'testnet', internal: false, userDefined: true },
      { id: OTHER, name: 'other', internal: false, userDefined: true },
    ],
    containers: [
      { id: 'c'.repeat(64), name: 'client', running: true, endpoints: [{ networkId: NET, ipv4: HOST, aliases: [] }] },
      { id: 'd'.repeat(64), name: 'web', running: true, endpoints: [{ networkId: NET, ipv4: '10.1.0.2', ipv6: 'fd00::2', aliases: [extraAlias] }] },
      { id: 'e'.repeat(64), name: 'hidden', running: true, endpoints: [{ networkId: OTHER, ipv4: '10.2.0.2', aliases: [] }] },
      ...many,
    ],
  };
}

/** A decoded record; dns-packet's Answer union includes OPT, which has no data or ttl. */
interface Rr {
  name: string;
  type: string;
  ttl?: number;
  data?: unknown;
}
type Reply = Omit<dnsPacket.DecodedPacket, 'answers'> & { answers?: Rr[]; rcode?: string; opcode?: string };

function decode(msg: Buffer): Reply {
  return dnsPacket.decode(msg) as Reply;
}

function encodeQuery(name: string, type: dnsPacket.RecordType = 'A', opts: { id?: number; edns?: number } = {}): Buffer {
  return dnsPacket.encode({
    type: 'query', id: opts.id ?? Math.floor(Math.random() * 65536), flags: dnsPacket.RECURSION_DESIRED,
    questions: [{ type, name }],
    additionals: opts.edns
      ? [{ type: 'OPT', name: '.', udpPayloadSize: opts.edns, extendedRcode: 0, ednsVersion: 0, flags: 0, flag_do: false, options: [] }]
      : [],
  });
}

/** A UDP client bound to `from`; collects every datagram it receives. */
async function udpClient(from = HOST): Promise<{ sock: dgram.Socket; received: Buffer[]; ask(port: number, msg: Buffer): Promise<Buffer> }> {
  const sock = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => sock.bind(0, from, resolve));
  const received: Buffer[] = [];
  const waiters = new Map<number, (b: Buffer) => void>();
  sock.on('message', (m) => {
    received.push(m);
    if (m.length >= 2) waiters.get(m.readUInt16BE(0))?.(m);
  });
  return {
    sock,
    received,
    ask: (port, msg) =>
      new Promise<Buffer>((resolve) => {
        waiters.set(msg.readUInt16BE(0), resolve);
        sock.send(msg, port, HOST);
      }),
  };
}

async function udpAsk(port: number, msg: Buffer): Promise<Reply> {
  const c = await udpClient();
  try {
    return decode(await c.ask(port, msg));
  } finally {
    c.sock.close();
  }
}

/** Sends `msgs` over one TCP connection (in `chunk`-byte pieces) and returns `msgs.length` replies. */
async function tcpAsk(port: number, msgs: Buffer[], chunk = 0): Promise<Reply[]> {
  const sock = new Socket();
  await new Promise<void>((resolve, reject) => {
    sock.once('error', reject);
    sock.connect(port, HOST, resolve);
  });
  const replies: Reply[] = [];
  const reader = new FrameReader();
  const done = new Promise<void>((resolve, reject) => {
    sock.on('data', (c: Buffer) =>
      reader.push(c, (f) => {
        replies.push(decode(Buffer.from(f)));
        if (replies.length === msgs.length) resolve();
      }));
    sock.on('close', () => reject(new Error(`connection closed after ${replies.length} replies`)));
  });
  const stream = Buffer.concat(msgs.map((m) => Buffer.concat([Buffer.from([m.length >> 8, m.length & 0xff]), m])));
  if (chunk > 0) {
    for (let i = 0; i < stream.length; i += chunk) {
      sock.write(stream.subarray(i, i + chunk));
      await new Promise((r) => setImmediate(r));
    }
  } else {
    sock.write(stream);
  }
  await done;
  sock.destroy();
  return replies;
}

/** Resolves when `sock` is closed (by the server). */
function closed(sock: Socket): Promise<void> {
  return sock.destroyed ? Promise.resolve() : once(sock, 'close').then(() => undefined);
}

/**
 * A fake upstream resolver on UDP and TCP: example.com A 93.184.216.34; big.example with 40 A
 * records (UDP answers it truncated and empty, TCP in full); fail.example SERVFAIL.
 */
class FakeUpstream {
  udp = dgram.createSocket('udp4');
  tcp: Server = createServer();
  port = 0;
  queries: { name: string; id: number; tcp: boolean }[] = [];

  async start(): Promise<void> {
    await new Promise<void>((resolve) => this.udp.bind(0, HOST, resolve));
    this.port = (this.udp.address() as AddressInfo).port;
    await new Promise<void>((resolve) => this.tcp.listen(this.port, HOST, resolve));
    this.udp.on('message', (m, r) => {
      const out = this.answer(m, false);
      if (out) this.udp.send(out, r.port, r.address);
    });
    this.tcp.on('connection', (s) => {
      const reader = new FrameReader();
      s.on('error', () => {});
      s.on('data', (c: Buffer) =>
        reader.push(c, (f) => {
          const out = this.answer(Buffer.from(f), true);
          if (out) s.write(Buffer.concat([Buffer.from([out.length >> 8, out.length & 0xff]), out]));
        }));
    });
  }

  upstream(): Upstream {
    return { host: HOST, port: this.port };
  }

  private answer(m: Buffer, tcp: boolean): Buffer | undefined {
    let p: dnsPacket.DecodedPacket;
    try {
      p = dnsPacket.decode(m);
    } catch {
      return undefined;
    }
    const q = p.questions?.[0];
    if (!q || p.type !== 'query') return undefined;
    this.queries.push({ name: q.name, id: p.id ?? 0, tcp });
    const base = { type: 'response' as const, id: p.id, flags: dnsPacket.RECURSION_AVAILABLE, questions: [q], additionals: p.additionals?.filter((a) => a.type === 'OPT') };
    const name = q.name.toLowerCase();
    if (name === 'example.com') return dnsPacket.encode({ ...base, answers: [{ type: 'A', name: q.name, ttl: 60, data: '93.184.216.34' }] });
    if (name === 'big.example') {
      if (!tcp) return dnsPacket.encode({ ...base, flags: base.flags | dnsPacket.TRUNCATED_RESPONSE, answers: [] });
      const answers = Array.from({ length: 40 }, (_, i) => ({ type: 'A' as const, name: q.name, ttl: 60, data: `192.0.2.${i + 1}` }));
      return dnsPacket.encode({ ...base, answers });
    }
    if (name === 'fail.example') return dnsPacket.encode({ ...base, flags: base.flags | 2 /* SERVFAIL */ });
    return dnsPacket.encode({ ...base, flags: base.flags | 3 /* NXDOMAIN */ });
  }

  async stop(): Promise<void> {
    this.udp.close();
    await new Promise((r) => this.tcp.close(r));
  }
}

/** A port with nothing listening on it (UDP or TCP) on 127.0.0.1. */
async function deadPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, HOST, resolve));
  const port = (s.address() as AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

describe('DnsServer', () => {
  const upstream = new FakeUpstream();
  let table = new NameTable(snapshot());
  let upstreams: Upstream[] = [];
  const warnings: string[] = [];
  const server = new DnsServer({
    table: () => table,
    upstreams: () => upstreams,
    forwardTimeoutMs: 150,
    tcpIdleTimeoutMs: 300,
    tcpFrameTimeoutMs: 100,
    log: { warn: (o, msg) => warnings.push(`${msg} ${JSON.stringify(o)}`) },
  });
  let port = 0;

  before(async () => {
    await upstream.start();
    upstreams = [upstream.upstream()];
    await server.listen(HOST, 0);
    port = server.port(HOST)!;
    assert.ok(port > 0);
  });
  after(async () => {
    await server.closeAll();
    await upstream.stop();
    assert.deepEqual(warnings, []);
    assert.equal(server.stats().errors, 0);
  });

  test('serves the address it was given, once', async () => {
    assert.deepEqual(server.addresses(), [HOST]);
    await assert.rejects(server.listen(HOST, 0), /already listening/);
    await assert.rejects(server.listen('localhost', 0), /not an IP address/);
  });

  test('answers a container over UDP and TCP', async () => {
    const u = await udpAsk(port, encodeQuery('WEB', 'A', { id: 321 }));
    assert.equal(u.id, 321);
    assert.equal(u.rcode, 'NOERROR');
    assert.ok(u.flag_aa && u.flag_qr && u.flag_rd);
    assert.deepEqual(u.questions, [{ name: 'WEB', type: 'A', class: 'IN' }]);
    assert.deepEqual(u.answers?.map((a) => [a.name, a.type, a.ttl, a.data]), [['WEB', 'A', 5, '10.1.0.2']]);

    const [t6, tptr, tnx, tnodata] = await tcpAsk(port, [
      encodeQuery('web.testnet', 'AAAA'),
      encodeQuery('2.0.1.10.in-addr.arpa', 'PTR'),
      encodeQuery('hidden'),
      encodeQuery('client', 'AAAA'),
    ]);
    assert.deepEqual(t6.answers?.map((a) => a.data), ['fd00::2']);
    assert.deepEqual(tptr.answers?.map((a) => a.data), ['web.testnet']);
    assert.equal(tnx.rcode, 'NXDOMAIN', 'hidden is on a network the client is not on');
    assert.equal(tnodata.rcode, 'NOERROR');
    assert.equal(tnodata.answers?.length, 0);
  });

  test('TCP: several queries, split into single bytes, with zero-length frames between', async () => {
    const msgs = [encodeQuery('web'), encodeQuery('client')];
    const sock = new Socket();
    await new Promise<void>((resolve) => sock.connect(port, HOST, resolve));
    const replies: Reply[] = [];
    const reader = new FrameReader();
    const done = new Promise<void>((resolve) =>
      sock.on('data', (c: Buffer) => reader.push(c, (f) => {
        replies.push(decode(Buffer.from(f)));
        if (replies.length === 2) resolve();
      })));
    const stream = Buffer.concat([
      Buffer.from([0, 0]), Buffer.from([0, msgs[0].length]), msgs[0],
      Buffer.from([0, 0, 0, 3, 1, 2, 3]), // a zero-length and a 3-byte frame: dropped
      Buffer.from([0, msgs[1].length]), msgs[1],
    ]);
    for (const b of stream) {
      sock.write(Buffer.from([b]));
      await new Promise((r) => setImmediate(r));
    }
    await done;
    sock.destroy();
    assert.deepEqual(replies.map((r) => r.answers?.[0]?.data), ['10.1.0.2', HOST]);
  });

  test('a long answer is truncated over UDP and complete over TCP', async () => {
    const before = server.stats().truncated;
    const u = await udpAsk(port, encodeQuery('many'));
    assert.ok(u.flag_tc, 'TC set');
    assert.ok((u.answers?.length ?? 0) < 60);
    assert.equal(server.stats().truncated, before + 1);
    const [t] = await tcpAsk(port, [encodeQuery('many')]);
    assert.ok(!t.flag_tc);
    assert.equal(t.answers?.length, 60);
    assert.equal(new Set(t.answers?.map((a) => a.data)).size, 60);
    // with EDNS the client takes 4096 bytes over UDP: it all fits
    const e = await udpAsk(port, encodeQuery('many', 'A', { edns: 4096 }));
    assert.ok(!e.flag_tc);
    assert.equal(e.answers?.length, 60);
  });

  test('answers rotate between queries', async () => {
    const firsts = new Set<string>();
    for (let i = 0; i < 5; i++) {
      const r = await udpAsk(port, encodeQuery('many', 'A', { edns: 4096 }));
      firsts.add(String(r.answers?.[0]?.data));
    }
    assert.equal(firsts.size, 5);
  });

  test('a new table takes effect at once', async () => {
    table = new NameTable(snapshot('fresh'));
    try {
      const r = await udpAsk(port, encodeQuery('fresh'));
      assert.deepEqual(r.answers?.map((a) => a.data), ['10.1.0.2']);
    } finally {
      table = new NameTable(snapshot());
    }
    assert.equal((await udpAsk(port, encodeQuery('fresh'))).rcode, 'NXDOMAIN');
  });

  test('forwards other names upstream over UDP and TCP, restoring the ID', async () => {
    const n = upstream.queries.length;
    const u = await udpAsk(port, encodeQuery('Example.com', 'A', { id: 4711 }));
    assert.equal(u.id, 4711);
    assert.deepEqual(u.answers?.map((a) => a.data), ['93.184.216.34']);
    assert.equal(u.flag_aa, false);
    const [t] = await tcpAsk(port, [encodeQuery('example.com', 'A', { id: 4712 })]);
    assert.equal(t.id, 4712);
    assert.deepEqual(t.answers?.map((a) => a.data), ['93.184.216.34']);
    assert.deepEqual(upstream.queries.slice(n).map((q) => [q.name, q.tcp]), [['Example.com', false], ['example.com', true]]);
    const nx = await udpAsk(port, encodeQuery('nosuch.example'));
    assert.equal(nx.rcode, 'NXDOMAIN');
  });

  test('bare unknown names are answered NXDOMAIN without asking upstream', async () => {
    const n = upstream.queries.length;
    assert.equal((await udpAsk(port, encodeQuery('nosuchhost'))).rcode, 'NXDOMAIN');
    assert.equal(upstream.queries.length, n);
  });

  test('a truncated upstream answer is fetched again over TCP', async () => {
    const full = await udpAsk(port, encodeQuery('big.example', 'A', { edns: 1232 }));
    assert.ok(!full.flag_tc);
    assert.equal(full.answers?.length, 40);
    // without EDNS the 40 records do not fit in 512 bytes: the client gets TC and retries
    const cut = await udpAsk(port, encodeQuery('big.example'));
    assert.ok(cut.flag_tc);
    const [t] = await tcpAsk(port, [encodeQuery('big.example')]);
    assert.equal(t.answers?.length, 40);
  });

  test('SERVFAIL from one upstream: the next is asked', async () => {
    // `bad` answers SERVFAIL to everything; `failing` (a FakeUpstream) to fail.example only
    const failing = new FakeUpstream();
    await failing.start();
    const bad = dgram.createSocket('udp4');
    await new Promise<void>((resolve) => bad.bind(0, HOST, resolve));
    bad.on('message', (m, r) => {
      const p = dnsPacket.decode(m);
      bad.send(dnsPacket.encode({ type: 'response', id: p.id, flags: 2, questions: p.questions }), r.port, r.address);
    });
    upstreams = [{ host: HOST, port: (bad.address() as AddressInfo).port }, upstream.upstream()];
    try {
      const r = await udpAsk(port, encodeQuery('example.com'));
      assert.equal(r.rcode, 'NOERROR');
      assert.deepEqual(r.answers?.map((a) => a.data), ['93.184.216.34']);
      // both fail: the last failure is relayed
      upstreams = [{ host: HOST, port: (bad.address() as AddressInfo).port }, failing.upstream()];
      assert.equal((await udpAsk(port, encodeQuery('fail.example'))).rcode, 'SERVFAIL');
    } finally {
      upstreams = [upstream.upstream()];
      bad.close();
      await failing.stop();
    }
  });

  test('SERVFAIL when every upstream is dead, over UDP and TCP', async () => {
    const dead = await deadPort();
    upstreams = [{ host: HOST, port: dead }, { host: '127.0.0.3', port: dead }];
    const failed = server.stats().forwardFailed;
    try {
      const u = await udpAsk(port, encodeQuery('example.com', 'A', { id: 99 }));
      assert.equal(u.rcode, 'SERVFAIL');
      assert.equal(u.id, 99);
      assert.deepEqual(u.questions, [{ name: 'example.com', type: 'A', class: 'IN' }]);
      const [t] = await tcpAsk(port, [encodeQuery('example.com', 'A', { id: 98 })]);
      assert.equal(t.rcode, 'SERVFAIL');
      assert.equal(t.id, 98);
      upstreams = [];
      assert.equal((await udpAsk(port, encodeQuery('example.com'))).rcode, 'SERVFAIL', 'no upstream at all');
    } finally {
      upstreams = [upstream.upstream()];
    }
    assert.equal(server.stats().forwardFailed, failed + 3);
    assert.equal(server.stats().pendingForwards, 0);
  });

  test('drops queries from addresses that are not containers, before forwarding', async () => {
    const stranger = await udpClient(STRANGER);
    const known = await udpClient(HOST);
    const s0 = server.stats();
    const n = upstream.queries.length;
    try {
      stranger.sock.send(encodeQuery('web', 'A', { id: 1 }), port, HOST);
      stranger.sock.send(encodeQuery('example.com', 'A', { id: 2 }), port, HOST);
      // a known client's answer proves the server has handled the datagrams sent before it
      const r = decode(await known.ask(port, encodeQuery('web', 'A', { id: 3 })));
      assert.equal(r.answers?.length, 1);
      await new Promise((res) => setImmediate(res));
      assert.equal(stranger.received.length, 0);
      assert.equal(server.stats().dropped, s0.dropped + 2);
      assert.equal(upstream.queries.length, n, 'nothing forwarded');
    } finally {
      stranger.sock.close();
      known.sock.close();
    }
    // over TCP the connection is refused at once
    const sock = new Socket();
    const refused = server.stats().tcpRefused;
    sock.on('error', () => {});
    sock.connect({ port, host: HOST, localAddress: STRANGER });
    await closed(sock);
    assert.equal(server.stats().tcpRefused, refused + 1);
  });

  test('FORMERR, NOTIMP, BADVERS; responses are not answered', async () => {
    const c = await udpClient();
    try {
      const two = dnsPacket.encode({ type: 'query', id: 11, questions: [{ type: 'A', name: 'a' }, { type: 'A', name: 'b' }] });
      const fe = decode(await c.ask(port, two));
      assert.equal(fe.rcode, 'FORMERR');
      const status = encodeQuery('web', 'A', { id: 12 });
      status[2] |= 2 << 3;
      const ni = decode(await c.ask(port, status));
      assert.equal(ni.rcode, 'NOTIMP');
      assert.equal(ni.opcode, 'STATUS');
      const v1 = encodeQuery('web', 'A', { id: 13, edns: 1232 });
      v1[v1.length - 5] = 1; // EDNS version 1
      const bv = dnsPacket.decode(await c.ask(port, v1));
      assert.equal((bv.additionals?.[0] as dnsPacket.OptAnswer).extendedRcode, 1, 'BADVERS');
      const before = server.stats().dropped;
      const response = encodeQuery('web', 'A', { id: 14 });
      response[2] |= 0x80;
      c.sock.send(response, port, HOST);
      c.sock.send(Buffer.from([1, 2, 3]), port, HOST);
      await c.ask(port, encodeQuery('web', 'A', { id: 15 }));
      assert.equal(server.stats().dropped, before + 2);
      assert.ok(!c.received.some((m) => m.readUInt16BE(0) === 14));
    } finally {
      c.sock.close();
    }
  });

  test('slow TCP clients are cut off and do not block others', async () => {
    const idle = new Socket();
    await new Promise<void>((resolve) => idle.connect(port, HOST, resolve));
    idle.write(Buffer.from([0])); // half a length prefix, then nothing
    const drip = new Socket();
    await new Promise<void>((resolve) => drip.connect(port, HOST, resolve));
    drip.write(Buffer.from([0, 100])); // announces 100 bytes, sends them one by one
    let dripping = true;
    const dripper = (async () => {
      while (dripping && !drip.destroyed) {
        drip.write(Buffer.from([0]));
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    drip.on('error', () => {});
    // meanwhile everyone else is served
    assert.equal((await udpAsk(port, encodeQuery('web'))).answers?.length, 1);
    assert.equal((await tcpAsk(port, [encodeQuery('web')]))[0].answers?.length, 1);
    await closed(drip);
    dripping = false;
    await dripper;
    await closed(idle);
    while (server.stats().tcpConnections > 0) await new Promise((r) => setTimeout(r, 10));
  });

  test('fuzz: random and mutated packets over UDP and TCP crash nothing', async () => {
    const rand = prng(0x5eed);
    const seeds = [
      encodeQuery('web'), encodeQuery('many', 'A', { edns: 1232 }), encodeQuery('example.com', 'AAAA'),
      encodeQuery('2.0.1.10.in-addr.arpa', 'PTR'), encodeQuery('_x._tcp.web', 'SRV'), encodeQuery('.', 'NS'),
      // compression pointers pointing at themselves and at each other
      Buffer.from([0, 1, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0, 1, 0x61, 0, 0, 1, 0, 1, 0xc0, 0x13, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0]),
      Buffer.from([0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1, 1, 0x61, 0, 0, 1, 0, 1, 0xc0, 0x14, 0xc0, 0x13, 0, 41, 2, 0, 0, 0, 0, 0, 0, 0]),
    ];
    const packets: Buffer[] = [];
    for (let i = 0; i < 4000; i++) packets.push(mutate(rand, seeds));

    const c = await udpClient();
    try {
      for (let i = 0; i < packets.length; i++) {
        c.sock.send(packets[i], port, HOST);
        if (i % 50 === 49) await new Promise((r) => setTimeout(r, 1));
      }
      // TCP: the same packets framed on a few connections, cut at random places
      for (let conn = 0; conn < 8; conn++) {
        const sock = new Socket();
        sock.on('error', () => {});
        await new Promise<void>((resolve) => sock.connect(port, HOST, resolve));
        const part = packets.slice(conn * 200, conn * 200 + 200);
        const stream = Buffer.concat(part.map((m) => Buffer.concat([Buffer.from([m.length >> 8, m.length & 0xff]), m])));
        for (let off = 0; off < stream.length;) {
          const n = 1 + Math.floor(rand() * 700);
          sock.write(stream.subarray(off, off + n));
          off += n;
        }
        // and raw garbage, including a length prefix that promises more than ever comes
        sock.write(randomBytes(rand, 3000));
        sock.resume(); // read and discard the answers, so that the close comes through
        sock.end();
        await closed(sock);
      }
      // everything still works, and every answer the server gave was well-formed DNS
      const r = decode(await c.ask(port, encodeQuery('web', 'A', { id: 65000 })));
      assert.deepEqual(r.answers?.map((a) => a.data), ['10.1.0.2']);
      assert.ok(c.received.length > 100, `only ${c.received.length} answers`);
      for (const m of c.received) {
        const p = dnsPacket.decode(m);
        assert.equal(p.type, 'response');
      }
      const [t] = await tcpAsk(port, [encodeQuery('many')]);
      assert.equal(t.answers?.length, 60);
      const s = server.stats();
      assert.equal(s.errors, 0);
      assert.ok(s.malformed > 100);
    } finally {
      c.sock.close();
    }
  });
});

/** A small deterministic PRNG (mulberry32), so a failing fuzz run can be replayed. */
function prng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function randomBytes(rand: () => number, n: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = Math.floor(rand() * 256);
  return b;
}

/** Random bytes, or a seed query with bit flips, byte changes, cuts, extensions or odd counts. */
function mutate(rand: () => number, seeds: Buffer[]): Buffer {
  const pick = rand();
  if (pick < 0.15) return randomBytes(rand, Math.floor(rand() * 600));
  const m = Buffer.from(seeds[Math.floor(rand() * seeds.length)]);
  if (pick < 0.25) {
    // header counts set to large or odd values
    m.writeUInt16BE(Math.floor(rand() * 65536), 4 + 2 * Math.floor(rand() * 4));
    return m;
  }
  if (pick < 0.35) return m.subarray(0, Math.floor(rand() * m.length));
  if (pick < 0.45) return Buffer.concat([m, randomBytes(rand, Math.floor(rand() * 100))]);
  if (pick < 0.5) {
    m[2] |= 0x80; // a response
    return m;
  }
  const flips = 1 + Math.floor(rand() * 4);
  for (let i = 0; i < flips; i++) {
    const at = Math.floor(rand() * m.length);
    if (rand() < 0.5) m[at] ^= 1 << Math.floor(rand() * 8);
    else m[at] = Math.floor(rand() * 256);
  }
  // keep the ID away from the final check's
  if (m.length >= 2 && m.readUInt16BE(0) === 65000) m[0] = 0;
  return m;
}

describe('DnsServer forward cap', () => {
  test('forwards beyond maxPendingForwards are dropped; closeAll abandons the rest', async () => {
    // an upstream that reads queries and never answers
    const silent = dgram.createSocket('udp4');
    await new Promise<void>((resolve) => silent.bind(0, HOST, resolve));
    const heard: Buffer[] = [];
    silent.on('message', (m) => heard.push(m));
    const table = new NameTable(snapshot());
    const server = new DnsServer({
      table: () => table,
      upstreams: () => [{ host: HOST, port: (silent.address() as AddressInfo).port }],
      forwardTimeoutMs: 600_000,
      maxPendingForwards: 2,
    });
    await server.listen(HOST, 0);
    const c = await udpClient();
    try {
      for (let i = 0; i < 5; i++) c.sock.send(encodeQuery(`q${i}.example`, 'A', { id: i }), server.port(HOST)!, HOST);
      while (server.stats().queries < 5 || heard.length < 2) await new Promise((r) => setTimeout(r, 5));
      const s = server.stats();
      assert.equal(s.forwarded, 2);
      assert.equal(s.dropped, 3);
      assert.equal(s.pendingForwards, 2);
      // the upstream saw IDs of our choosing and the question as asked
      assert.deepEqual(heard.map((m) => dnsPacket.decode(m).questions?.[0].name), ['q0.example', 'q1.example']);
    } finally {
      c.sock.close();
      await server.closeAll();
      silent.close();
    }
    // nothing is left pending (a leftover 600 s timer would hold this test file open)
    assert.equal(server.stats().pendingForwards, 0);
  });
});

describe('DnsServer over IPv6', () => {
  test('listens on ::1 and answers a container at ::1', async (t) => {
    const probe = dgram.createSocket('udp6');
    const hasV6 = await new Promise<boolean>((resolve) => {
      probe.once('error', () => resolve(false));
      probe.bind(0, '::1', () => resolve(true));
    });
    probe.close();
    if (!hasV6) {
      t.skip('no IPv6 loopback here');
      return;
    }
    const table = new NameTable({
      networks: [{ id: NET, name: 'v6net', internal: false, userDefined: true }],
      containers: [
        { id: 'c'.repeat(64), name: 'client', running: true, endpoints: [{ networkId: NET, ipv6: '::1', aliases: [] }] },
        { id: 'd'.repeat(64), name: 'web', running: true, endpoints: [{ networkId: NET, ipv6: 'fd00::2', aliases: [] }] },
      ],
    });
    const server = new DnsServer({ table: () => table, upstreams: () => [] });
    await server.listen('0:0::1', 0);
    try {
      assert.deepEqual(server.addresses(), ['::1']);
      const port = server.port('::1')!;
      const sock = dgram.createSocket('udp6');
      const reply = await new Promise<Buffer>((resolve) => {
        sock.on('message', resolve);
        sock.send(encodeQuery('web', 'AAAA'), port, '::1');
      });
      sock.close();
      assert.deepEqual(decode(reply).answers?.map((a) => a.data), ['fd00::2']);
      const [tcp] = await new Promise<Reply[]>((resolve, reject) => {
        const s = new Socket();
        const reader = new FrameReader();
        s.on('error', reject);
        s.on('data', (c: Buffer) => reader.push(c, (f) => {
          s.destroy();
          resolve([decode(Buffer.from(f))]);
        }));
        const q = encodeQuery('2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa', 'PTR');
        s.connect(port, '::1', () => s.write(Buffer.concat([Buffer.from([0, q.length]), q])));
      });
      assert.deepEqual(tcp.answers?.map((a) => a.data), ['web.v6net']);
    } finally {
      await server.closeAll();
    }
  });
});
