/**
 * weft's nftables tables on a real kernel (root). Everything happens in lab namespaces:
 *
 *   OUT (192.0.2.2, 2001:db8:1::2) --veth-- HOST (up0: 192.0.2.1, 2001:db8:1::1)
 *                                             wbr1 net1 10.91.1.0/24 fd91:1::/64  icc      c1a c1b (c1c later)
 *                                             wbr2 net2 10.91.2.0/24              no icc   c2a c2b
 *                                             wbr3 net3 10.91.3.0/24              internal c3a c3b
 *                                             (wbr4 net4 10.91.4.0/24 with c4a, added by a test)
 *
 * The compiled tables are loaded into HOST with nftReplaceTable; traffic is real (ping, TCP and UDP
 * through small node servers, raw frames from python3 for ND/RA/VLAN). A "controls" test removes
 * weft's tables and shows that each kind of traffic the other tests expect to be blocked does flow
 * without them, so no "blocked" assertion passes for an unrelated reason.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { compileFirewall, endpointElements, ip6Hex, networkElements, portElements } from '../../src/firewall/compile.js';
import type { FirewallModel, FwEndpoint, FwNetwork, FwPort } from '../../src/firewall/model.js';
import {
  nftApply,
  nftDeleteTable,
  nftListSetElements,
  nftListTable,
  nftReplaceTable,
} from '../../src/kernel/nft.js';
import { KernelError } from '../../src/kernel/exec.js';
import { NetnsFixture } from './netns-fixture.js';

const fx = new NetnsFixture('fw');
let HOST = '';
let OUT = '';
const C: Record<string, string> = {};

const UP4 = '192.0.2.1';
const OUT4 = '192.0.2.2';
const UP6 = '2001:db8:1::1';
const OUT6 = '2001:db8:1::2';

interface Ctr {
  name: string;
  net: 1 | 2 | 3 | 4;
  host: number;
}
const CONTAINERS: Ctr[] = [
  { name: 'c1a', net: 1, host: 2 },
  { name: 'c1b', net: 1, host: 3 },
  { name: 'c2a', net: 2, host: 2 },
  { name: 'c2b', net: 2, host: 3 },
  { name: 'c3a', net: 3, host: 2 },
  { name: 'c3b', net: 3, host: 3 },
];
const mac = (c: Ctr) => `02:91:0${c.net}:00:00:0${c.host}`;
const ip4 = (c: Ctr) => `10.91.${c.net}.${c.host}`;
const ip6 = (c: Ctr) => (c.net === 1 ? `fd91:1::${c.host}` : undefined);
const vethOf = (c: Ctr) => `wv${c.name.slice(1)}`;
const byName = (n: string) => CONTAINERS.find((c) => c.name === n)!;

const NETWORKS: FwNetwork[] = [
  { bridge: 'wbr1', subnets4: ['10.91.1.0/24'], subnets6: ['fd91:1::/64'], internal: false, icc: true },
  { bridge: 'wbr2', subnets4: ['10.91.2.0/24'], subnets6: [], internal: false, icc: false },
  { bridge: 'wbr3', subnets4: ['10.91.3.0/24'], subnets6: [], internal: true, icc: true },
];

const PORTS: FwPort[] = [
  { family: 4, protocol: 'tcp', hostIp: UP4, hostPort: 8080, targetIp: '10.91.1.2', targetPort: 80 },
  { family: 4, protocol: 'tcp', hostPort: 8080, targetIp: '10.91.1.3', targetPort: 80 },
  { family: 4, protocol: 'tcp', hostPort: 8082, targetIp: '10.91.1.3', targetPort: 80 },
  { family: 6, protocol: 'tcp', hostPort: 8082, targetIp: 'fd91:1::3', targetPort: 80 },
  { family: 4, protocol: 'udp', hostPort: 5353, targetIp: '10.91.1.3', targetPort: 80 },
];

const endpoints: FwEndpoint[] = [];
let model: FirewallModel;

// ---- small programs run inside the namespaces ----

/** TCP and UDP on one port; answers "NAME PEER-ADDRESS" (TCP: then closes; "echo" mode echoes lines). */
const SERVER = `
const net = require('net'), dgram = require('dgram');
const [name, port, mode] = process.argv.slice(1);
const peer = (a) => a.replace(/^::ffff:/, '');
net.createServer((s) => {
  if (mode === 'echo') { s.on('data', (d) => s.write(d)); s.on('error', () => {}); return; }
  s.end(name + ' ' + peer(s.remoteAddress) + '\\n');
}).listen({ port: +port, host: '::' }, () => {
  const u = dgram.createSocket({ type: 'udp6' });
  u.on('message', (m, r) => u.send(name + ' ' + peer(r.address) + '\\n', r.port, r.address));
  u.bind(+port, '::', () => console.log('ready'));
});`;

/** One request: prints the answer, exit 0; exit 1 on error, 2 on timeout. */
const CLIENT = `
const net = require('net'), dgram = require('dgram');
const [host, port, proto] = process.argv.slice(1);
setTimeout(() => { console.error('timeout'); process.exit(2); }, 1500);
if (proto === 'udp') {
  const u = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4');
  u.on('message', (m) => { process.stdout.write(m.toString()); process.exit(0); });
  u.send('hi', +port, host);
} else {
  const s = net.connect({ host, port: +port });
  let d = '';
  s.on('data', (x) => (d += x));
  s.on('end', () => { process.stdout.write(d); process.exit(0); });
  s.on('error', (e) => { console.error(e.message); process.exit(1); });
}`;

/** A long-lived TCP client: sends a line every 100 ms, prints "ok N" for every echo. */
const STREAM = `
const net = require('net');
const [host, port] = process.argv.slice(1);
const s = net.connect({ host, port: +port }, () => { console.log('connected'); setInterval(() => s.write('x\\n'), 100); });
let n = 0;
s.on('data', (d) => { n += String(d).split('\\n').length - 1; console.log('ok ' + n); });
s.on('error', (e) => { console.log('error ' + e.message); process.exit(1); });
s.on('close', () => { console.log('closed'); process.exit(1); });`;

/** python3: raw ICMPv6 (NA or RA) to ff02::1 on IFNAME, hop limit 255. */
const ICMP6 = `
import socket, struct, sys
kind, ifname, mac = sys.argv[1:4]
idx = socket.if_nametoindex(ifname)
s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 255)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, idx)
lla = bytes.fromhex(mac.replace(':', ''))
if kind == 'na':
    msg = struct.pack('!BBHI', 136, 0, 0, 0x20000000) + socket.inet_pton(socket.AF_INET6, sys.argv[4]) + bytes([2, 1]) + lla
else:
    msg = struct.pack('!BBHBBHII', 134, 0, 0, 64, 0, 1800, 0, 0) + bytes([1, 1]) + lla
for _ in range(3):
    s.sendto(msg, ('ff02::1', 0, 0, idx))
`;

/** python3: 802.1Q-tagged IPv4/UDP frames carrying MARKER, from SRC MAC to DST MAC. */
const VLAN_SEND = `
import socket, struct, sys, time
ifname, dst, src, saddr, daddr, marker = sys.argv[1:7]
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((ifname, 0))
data = marker.encode()
udp = struct.pack('!HHHH', 40000, 9999, 8 + len(data), 0) + data
hdr = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0, socket.inet_aton(saddr), socket.inet_aton(daddr))
c = sum(struct.unpack('!10H', hdr)); c = (c & 0xffff) + (c >> 16); c = (c & 0xffff) + (c >> 16)
hdr = hdr[:10] + struct.pack('!H', ~c & 0xffff) + hdr[12:]
mac = lambda m: bytes.fromhex(m.replace(':', ''))
frame = mac(dst) + mac(src) + struct.pack('!HHH', 0x8100, 10, 0x0800) + hdr + udp
for _ in range(5):
    s.send(frame); time.sleep(0.05)
`;

/** python3: prints "ready", then "GOT" if a frame containing MARKER arrives on IFNAME within SECONDS. */
const SNIFF = `
import socket, sys, time
ifname, marker, secs = sys.argv[1], sys.argv[2].encode(), float(sys.argv[3])
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
s.bind((ifname, 0)); s.settimeout(0.2)
print('ready', flush=True)
end = time.time() + secs
while time.time() < end:
    try:
        if marker in s.recv(4096):
            print('GOT', flush=True); break
    except socket.timeout:
        pass
print('done', flush=True)
`;

// ---- helpers ----

async function ping(ns: string, dst: string, opts: { src?: string; wait?: number } = {}): Promise<boolean> {
  const args = ['-n', '-c1', `-W${opts.wait ?? 1}`];
  if (dst.includes(':')) args.unshift('-6');
  if (opts.src) args.push('-I', opts.src);
  args.push(dst);
  const r = await fx.exec(ns, 'ping', args, { okCodes: [0, 1, 2] });
  return r.code === 0;
}

/** Reachability that should succeed: a few tries, for ARP/ND on first contact. */
async function reach(ns: string, dst: string, opts: { src?: string } = {}): Promise<boolean> {
  for (let i = 0; i < 3; i++) if (await ping(ns, dst, { ...opts, wait: 1 })) return true;
  return false;
}

/** One TCP/UDP request from ns: exit code (0 answered, 1 error such as refused, 2 timeout) and answer. */
async function requestRaw(ns: string, host: string, port: number, proto: 'tcp' | 'udp' = 'tcp'): Promise<{ code: number; answer: string }> {
  const r = await fx.exec(ns, process.execPath, ['-e', CLIENT, host, String(port), proto], { okCodes: [0, 1, 2] });
  return { code: r.code, answer: r.stdout.trim() };
}

/** One TCP/UDP request from ns; the answer line, or undefined if there was none. */
async function request(ns: string, host: string, port: number, proto: 'tcp' | 'udp' = 'tcp'): Promise<string | undefined> {
  const r = await requestRaw(ns, host, port, proto);
  return r.code === 0 ? r.answer : undefined;
}

function ctrModel(c: Ctr, linkLocal6?: string): FwEndpoint {
  return { hostIfname: vethOf(c), mac: mac(c), ipv4: ip4(c), ipv6: ip6(c), linkLocal6 };
}

/** The EUI-64 link-local address the kernel derives from a MAC (addr_gen_mode 0, the default). */
function eui64LinkLocal(m: string): string {
  const b = m.split(':').map((x) => parseInt(x, 16));
  b[0] ^= 0x02;
  const words = [(b[0] << 8) | b[1], (b[2] << 8) | 0xff, (0xfe << 8) | b[3], (b[4] << 8) | b[5]];
  return `fe80::${words.map((w) => w.toString(16)).join(':')}`;
}

/** A container namespace joined to bridge `br` in HOST by its veth (wv<net><letter>). */
async function addContainer(c: Ctr, br: string): Promise<string> {
  const ns = await fx.netns(c.name);
  // no DAD waits in the lab: addresses are usable at once
  await fx.sysctl(ns, 'net.ipv6.conf.all.accept_dad', 0);
  await fx.sysctl(ns, 'net.ipv6.conf.default.accept_dad', 0);
  await fx.ip(HOST, 'link', 'add', vethOf(c), 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns);
  await fx.ip(ns, 'link', 'set', 'eth0', 'address', mac(c));
  await fx.ip(HOST, 'link', 'set', vethOf(c), 'master', br, 'up');
  await fx.ip(ns, 'link', 'set', 'eth0', 'up');
  await fx.ip(ns, 'addr', 'add', `${ip4(c)}/24`, 'dev', 'eth0');
  await fx.ip(ns, 'route', 'add', 'default', 'via', `10.91.${c.net}.1`);
  const v6 = ip6(c);
  if (v6) {
    await fx.ip(ns, 'addr', 'add', `${v6}/64`, 'dev', 'eth0', 'nodad');
    await fx.ip(ns, '-6', 'route', 'add', 'default', 'via', `fd91:${c.net}::1`);
  }
  return ns;
}

async function loadFirewall(m: FirewallModel): Promise<void> {
  const compiled = compileFirewall(m);
  await nftReplaceTable('bridge', 'weft', compiled.bridge, { netns: HOST });
  await nftReplaceTable('inet', 'weft', compiled.inet, { netns: HOST });
}

async function withoutTables<T>(fn: () => Promise<T>): Promise<T> {
  await nftDeleteTable('bridge', 'weft', { netns: HOST });
  await nftDeleteTable('inet', 'weft', { netns: HOST });
  try {
    return await fn();
  } finally {
    await loadFirewall(model);
  }
}

async function neighMac(ns: string, addr: string, dev: string): Promise<string | undefined> {
  const { stdout } = await fx.ip(ns, '-j', 'neigh', 'show', addr, 'dev', dev);
  const n = JSON.parse(stdout) as { lladdr?: string }[];
  return n[0]?.lladdr;
}

async function sniffVlan(from: string, to: string): Promise<boolean> {
  const marker = `weft-vlan-${Math.random().toString(36).slice(2)}`;
  const sniffer = fx.spawn(C[to], 'python3', ['-c', SNIFF, 'eth0', marker, '2']);
  await sniffer.waitFor('ready');
  const src = byName(from);
  const dst = byName(to);
  await fx.exec(C[from], 'python3', ['-c', VLAN_SEND, 'eth0', mac(dst), mac(src), '10.91.1.66', ip4(dst), marker]);
  await sniffer.waitFor('done', 5000);
  return sniffer.output().includes('GOT');
}

async function raRouteAppears(): Promise<boolean> {
  await fx.exec(C.c1a, 'python3', ['-c', ICMP6, 'ra', 'eth0', mac(byName('c1a'))]);
  await new Promise((r) => setTimeout(r, 300));
  const { stdout } = await fx.ip(C.c1b, '-6', 'route', 'show', 'default', 'proto', 'ra');
  return stdout.trim() !== '';
}

describe('weft nftables tables on a real kernel', { timeout: 240_000 }, () => {
  before(async () => {
    HOST = await fx.netns('host');
    OUT = await fx.netns('out');
    // HOST: uplink to OUT, default routes, forwarding; all of it inside the lab namespaces
    await fx.sysctl(HOST, 'net.ipv6.conf.all.accept_dad', 0);
    await fx.sysctl(HOST, 'net.ipv6.conf.default.accept_dad', 0);
    await fx.sysctl(OUT, 'net.ipv6.conf.default.accept_dad', 0);
    await fx.veth(HOST, 'up0', OUT, 'eth0');
    await fx.ip(HOST, 'addr', 'add', `${UP4}/24`, 'dev', 'up0');
    await fx.ip(HOST, 'addr', 'add', `${UP6}/64`, 'dev', 'up0', 'nodad');
    await fx.ip(OUT, 'addr', 'add', `${OUT4}/24`, 'dev', 'eth0');
    await fx.ip(OUT, 'addr', 'add', `${OUT6}/64`, 'dev', 'eth0', 'nodad');
    await fx.ip(HOST, 'route', 'add', 'default', 'via', OUT4);
    await fx.ip(HOST, '-6', 'route', 'add', 'default', 'via', OUT6);
    // OUT can route to the container subnets through HOST: only the firewall stands in the way
    await fx.ip(OUT, 'route', 'add', '10.91.0.0/16', 'via', UP4);
    await fx.ip(OUT, '-6', 'route', 'add', 'fd91::/16', 'via', UP6);
    await fx.sysctl(HOST, 'net.ipv4.ip_forward', 1);
    await fx.sysctl(HOST, 'net.ipv6.conf.all.forwarding', 1);
    await fx.sysctl(HOST, 'net.bridge.bridge-nf-call-iptables', 1);
    await fx.sysctl(HOST, 'net.bridge.bridge-nf-call-ip6tables', 1);
    for (const n of [1, 2, 3]) {
      const br = `wbr${n}`;
      // a fixed MAC: otherwise the bridge takes the lowest MAC of its ports and changes it when a
      // port with a lower (random) MAC joins, leaving the containers' gateway entries stale
      await fx.ip(HOST, 'link', 'add', br, 'address', `02:91:0${n}:00:00:01`, 'type', 'bridge');
      await fx.ip(HOST, 'link', 'set', br, 'up');
      await fx.ip(HOST, 'addr', 'add', `10.91.${n}.1/24`, 'dev', br);
      if (n === 1) await fx.ip(HOST, 'addr', 'add', 'fd91:1::1/64', 'dev', br, 'nodad');
      await fx.sysctl(HOST, `net.ipv4.conf.${br}.route_localnet`, 1);
    }
    for (const c of CONTAINERS) C[c.name] = await addContainer(c, `wbr${c.net}`);
    for (const c of CONTAINERS) endpoints.push(ctrModel(c, ip6(c) ? eui64LinkLocal(mac(c)) : undefined));
    model = { networks: NETWORKS, endpoints, ports: PORTS };
    await loadFirewall(model);

    const servers = [
      fx.spawn(C.c1a, process.execPath, ['-e', SERVER, 'c1a', '80']),
      fx.spawn(C.c1b, process.execPath, ['-e', SERVER, 'c1b', '80']),
      fx.spawn(OUT, process.execPath, ['-e', SERVER, 'out', '7000']),
      fx.spawn(OUT, process.execPath, ['-e', SERVER, 'echo', '7001', 'echo']),
    ];
    await Promise.all(servers.map((s) => s.waitFor('ready')));
  });

  after(async () => {
    await fx.cleanup();
  });

  it('loads what was compiled: every set and map lists exactly the compiled elements', async () => {
    const compiled = compileFirewall(model);
    for (const family of ['bridge', 'inet'] as const) {
      for (const [set, want] of Object.entries(compiled.elements[family])) {
        const got = await nftListSetElements(family, 'weft', set, { netns: HOST });
        assert.deepEqual(got, want, `${family} weft ${set}`);
      }
    }
    const inet = await nftListTable('inet', 'weft', { netns: HOST });
    const chains = (inet ?? []).filter((o) => 'chain' in o).map((o) => (o.chain as { name: string }).name).sort();
    assert.deepEqual(chains, ['forward', 'input', 'output', 'postrouting', 'prerouting', 'publish']);
  });

  it('controls: without the tables, every kind of traffic the other tests block does flow', async () => {
    await withoutTables(async () => {
      assert.ok(await reach(C.c2a, ip4(byName('c2b'))), 'icc off: c2a -> c2b');
      assert.ok(await reach(C.c1a, ip4(byName('c2a'))), 'cross-network: c1a -> c2a');
      assert.ok(await reach(C.c3a, OUT4), 'internal -> outside');
      assert.equal(await request(OUT, ip4(byName('c1b')), 80), `c1b ${OUT4}`, 'outside -> container directly');
      assert.equal(await request(C.c1a, OUT4, 7000), 'out 10.91.1.2', 'no masquerade without the tables');
      // spoofed IPv4 source (and ARP), spoofed MAC, spoofed IPv6 source
      await fx.ip(C.c1a, 'addr', 'add', '10.91.1.99/24', 'dev', 'eth0');
      await fx.ip(C.c1a, 'addr', 'add', 'fd91:1::99/64', 'dev', 'eth0', 'nodad');
      try {
        assert.ok(await reach(C.c1a, ip4(byName('c1b')), { src: '10.91.1.99' }), 'spoofed IPv4 source');
        assert.ok(await reach(C.c1a, 'fd91:1::3', { src: 'fd91:1::99' }), 'spoofed IPv6 source');
      } finally {
        await fx.ip(C.c1a, 'addr', 'del', '10.91.1.99/24', 'dev', 'eth0');
        await fx.ip(C.c1a, 'addr', 'del', 'fd91:1::99/64', 'dev', 'eth0');
      }
      await fx.ip(C.c1a, 'link', 'set', 'eth0', 'address', '02:91:01:00:00:99');
      try {
        await fx.ip(C.c1b, 'neigh', 'flush', 'all');
        assert.ok(await reach(C.c1a, ip4(byName('c1b'))), 'spoofed MAC');
      } finally {
        await fx.ip(C.c1a, 'link', 'set', 'eth0', 'address', mac(byName('c1a')));
        await fx.ip(C.c1b, 'neigh', 'flush', 'all');
      }
      // a forged Neighbor Advertisement rewrites the host's neighbour entry for c1b
      assert.ok(await reach(HOST, 'fd91:1::3'));
      await fx.exec(C.c1a, 'python3', ['-c', ICMP6, 'na', 'eth0', mac(byName('c1a')), 'fd91:1::3']);
      assert.equal(await neighMac(HOST, 'fd91:1::3', 'wbr1'), mac(byName('c1a')), 'forged NA');
      await fx.ip(HOST, 'neigh', 'flush', 'dev', 'wbr1');
      // a rogue Router Advertisement gives c1b a default route via c1a
      assert.ok(await raRouteAppears(), 'rogue RA');
      await fx.ip(C.c1b, '-6', 'route', 'flush', 'proto', 'ra');
      // VLAN-tagged frames with a spoofed source cross the bridge
      assert.ok(await sniffVlan('c1a', 'c1b'), 'tagged frame');
    });
  });

  it('containers on one network reach each other (icc on), over IPv4 and IPv6', async () => {
    assert.ok(await reach(C.c1a, ip4(byName('c1b'))));
    assert.ok(await reach(C.c1b, ip4(byName('c1a'))));
    assert.ok(await reach(C.c1a, 'fd91:1::3'));
    assert.equal(await request(C.c1a, ip4(byName('c1b')), 80), 'c1b 10.91.1.2', 'TCP, source not rewritten');
  });

  it('icc off: containers of that network cannot reach each other, but reach the gateway and the outside', async () => {
    assert.equal(await ping(C.c2a, ip4(byName('c2b'))), false);
    assert.equal(await ping(C.c2b, ip4(byName('c2a'))), false);
    assert.ok(await reach(C.c2a, '10.91.2.1'));
    assert.ok(await reach(C.c2a, OUT4));
  });

  it('networks are isolated from each other in both directions', async () => {
    assert.equal(await ping(C.c1a, ip4(byName('c2a'))), false);
    assert.equal(await ping(C.c2a, ip4(byName('c1a'))), false);
    assert.equal(await request(C.c2a, ip4(byName('c1b')), 80), undefined);
  });

  it('an internal network talks only inside its bridge', async () => {
    assert.ok(await reach(C.c3a, ip4(byName('c3b'))), 'inside the bridge');
    assert.ok(await reach(C.c3a, '10.91.3.1'), 'its gateway (the host)');
    assert.equal(await ping(C.c3a, OUT4), false, 'to the outside');
    assert.equal(await ping(C.c3a, ip4(byName('c1a'))), false, 'to another network');
    assert.equal(await ping(C.c1a, ip4(byName('c3a'))), false, 'from another network');
    assert.equal(await ping(OUT, ip4(byName('c3a'))), false, 'from the outside');
    assert.equal(await request(C.c3a, '10.91.3.1', 8082), undefined, 'through a published port');
  });

  it('masquerades traffic to the outside: the outside sees the uplink address (IPv4 and IPv6)', async () => {
    assert.equal(await request(C.c1a, OUT4, 7000), `out ${UP4}`);
    assert.equal(await request(C.c2b, OUT4, 7000), `out ${UP4}`);
    assert.equal(await request(C.c1b, OUT6, 7000), `out ${UP6}`);
  });

  it('the outside cannot open connections to containers directly', async () => {
    assert.equal(await request(OUT, ip4(byName('c1b')), 80), undefined);
    assert.equal(await request(OUT, 'fd91:1::3', 80), undefined);
    assert.equal(await ping(OUT, ip4(byName('c1a'))), false);
  });

  it('published ports: from the outside, the host (uplink IP and 127.0.0.1), and containers (hairpin)', async () => {
    // host-IP-specific mapping wins over the wildcard for that address; the client address is kept
    assert.equal(await request(OUT, UP4, 8080), `c1a ${OUT4}`);
    assert.equal(await request(OUT, UP4, 8082), `c1b ${OUT4}`);
    assert.equal(await request(OUT, UP6, 8082), `c1b ${OUT6}`);
    assert.equal(await request(OUT, UP4, 5353, 'udp'), `c1b ${OUT4}`);
    assert.equal(await request(OUT, UP4, 8081), undefined, 'an unpublished port');
    // from the host itself
    assert.equal(await request(HOST, UP4, 8080), `c1a ${UP4}`);
    assert.equal(await request(HOST, UP4, 8082), `c1b ${UP4}`);
    assert.equal(await request(HOST, '127.0.0.1', 8082), 'c1b 10.91.1.1');
    assert.equal(await request(HOST, '127.0.0.1', 8080), 'c1b 10.91.1.1', '127.0.0.1 is not the specific host IP');
    // [::1] cannot be DNAT'ed out of the host (IPv6 has no route_localnet): it is left alone, so the
    // client is refused at once instead of hanging
    assert.equal((await requestRaw(HOST, '::1', 8082)).code, 1, '[::1]:8082 is refused, not black-holed');
    // hairpin: a container through the host's address to a container on the same bridge
    assert.equal(await request(C.c1a, UP4, 8082), 'c1b 10.91.1.1');
    // a container to itself through its published port: br_netfilter turns the DNAT'ed packet back
    // into a bridged one, which leaves by the port it came in on only with hairpin mode on that port
    // (the bridge driver's job, as in Docker without the userland proxy)
    await fx.ip(HOST, 'link', 'set', vethOf(byName('c1b')), 'type', 'bridge_slave', 'hairpin', 'on');
    try {
      assert.equal(await request(C.c1b, UP4, 8082), 'c1b 10.91.1.1', 'a container to itself');
    } finally {
      await fx.ip(HOST, 'link', 'set', vethOf(byName('c1b')), 'type', 'bridge_slave', 'hairpin', 'off');
    }
    // and from another network (published ports are public), with its own address: replies are
    // routed back through the host, so only same-bridge clients need masquerading
    assert.equal(await request(C.c2a, UP4, 8082), 'c1b 10.91.2.2');
  });

  it('anti-spoofing: a container cannot use an IPv4 or IPv6 address or a MAC that is not its own', async () => {
    await fx.ip(C.c1a, 'addr', 'add', '10.91.1.99/24', 'dev', 'eth0');
    await fx.ip(C.c1a, 'addr', 'add', 'fd91:1::99/64', 'dev', 'eth0', 'nodad');
    try {
      assert.equal(await ping(C.c1a, ip4(byName('c1b')), { src: '10.91.1.99' }), false);
      assert.equal(await ping(C.c1a, 'fd91:1::3', { src: 'fd91:1::99' }), false);
      assert.ok(await reach(C.c1a, ip4(byName('c1b')), { src: ip4(byName('c1a')) }), 'its own address still works');
      assert.ok(await reach(C.c1a, 'fd91:1::3', { src: 'fd91:1::2' }), 'its own IPv6 address still works');
    } finally {
      await fx.ip(C.c1a, 'addr', 'del', '10.91.1.99/24', 'dev', 'eth0');
      await fx.ip(C.c1a, 'addr', 'del', 'fd91:1::99/64', 'dev', 'eth0');
    }
    await fx.ip(C.c1a, 'link', 'set', 'eth0', 'address', '02:91:01:00:00:99');
    try {
      await fx.ip(C.c1b, 'neigh', 'flush', 'all');
      assert.equal(await ping(C.c1a, ip4(byName('c1b'))), false, 'foreign MAC');
    } finally {
      await fx.ip(C.c1a, 'link', 'set', 'eth0', 'address', mac(byName('c1a')));
      await fx.ip(C.c1b, 'neigh', 'flush', 'all');
    }
    assert.ok(await reach(C.c1a, ip4(byName('c1b'))), 'its own MAC works again');
  });

  it('anti-spoofing: forged Neighbor Advertisements, rogue Router Advertisements and VLAN tags are dropped', async () => {
    assert.ok(await reach(HOST, 'fd91:1::3'));
    assert.equal(await neighMac(HOST, 'fd91:1::3', 'wbr1'), mac(byName('c1b')));
    await fx.exec(C.c1a, 'python3', ['-c', ICMP6, 'na', 'eth0', mac(byName('c1a')), 'fd91:1::3']);
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(await neighMac(HOST, 'fd91:1::3', 'wbr1'), mac(byName('c1b')), 'the forged NA changed nothing');
    // a container may advertise its own addresses (gratuitous NA)
    const own = await fx.exec(C.c1a, 'python3', ['-c', ICMP6, 'na', 'eth0', mac(byName('c1a')), 'fd91:1::2']);
    assert.equal(own.code, 0);
    assert.equal(await raRouteAppears(), false, 'rogue RA');
    assert.equal(await sniffVlan('c1a', 'c1b'), false, 'tagged frame');
  });

  it('incremental: a published port added and deleted with one small transaction each', async () => {
    const port: FwPort = { family: 4, protocol: 'tcp', hostPort: 9090, targetIp: '10.91.1.2', targetPort: 80 };
    assert.equal(await request(OUT, UP4, 9090), undefined);
    await nftApply(portElements(port, 'add'), { netns: HOST });
    assert.equal(await request(OUT, UP4, 9090), `c1a ${OUT4}`);
    await nftApply(portElements(port, 'delete'), { netns: HOST });
    assert.equal(await request(OUT, UP4, 9090), undefined);
    // deleting again is a no-op, not an error
    await nftApply(portElements(port, 'delete'), { netns: HOST });
    assert.deepEqual(await nftListSetElements('inet', 'weft', 'publish4', { netns: HOST }), compileFirewall(model).elements.inet.publish4);
  });

  it('incremental: a container attached after the load is policed once its endpoint elements are added', async () => {
    const c: Ctr = { name: 'c1c', net: 1, host: 4 };
    C.c1c = await addContainer(c, 'wbr1');
    const ep = ctrModel(c, eui64LinkLocal(mac(c)));
    await fx.ip(C.c1c, 'addr', 'add', '10.91.1.98/24', 'dev', 'eth0');
    // an unknown port is not weft's: not policed (the driver adds elements before attaching)
    assert.ok(await reach(C.c1c, ip4(byName('c1b')), { src: '10.91.1.98' }), 'before add');
    await nftApply(endpointElements(ep, 'add'), { netns: HOST });
    await fx.ip(C.c1b, 'neigh', 'flush', 'all');
    assert.equal(await ping(C.c1c, ip4(byName('c1b')), { src: '10.91.1.98' }), false, 'after add: spoofed');
    assert.ok(await reach(C.c1c, ip4(byName('c1b'))), 'after add: its own address');
    assert.ok(await reach(C.c1c, 'fd91:1::3'), 'after add: its own IPv6 address');
    const after = await nftListSetElements('bridge', 'weft', 'port-nd', { netns: HOST });
    assert.ok(after?.includes(`"wv1c" . ${ip6Hex('fd91:1::4')}`));
    await nftApply(endpointElements(ep, 'delete'), { netns: HOST });
    assert.ok(await reach(C.c1c, ip4(byName('c1b')), { src: '10.91.1.98' }), 'after delete');
    assert.deepEqual(await nftListSetElements('bridge', 'weft', 'ports', { netns: HOST }), compileFirewall(model).elements.bridge.ports);
  });

  it('incremental: a network added later is masqueraded and isolated; icc toggled by deltas', async () => {
    const net4: FwNetwork = { bridge: 'wbr4', subnets4: ['10.91.4.0/24'], subnets6: [], internal: false, icc: true };
    await fx.ip(HOST, 'link', 'add', 'wbr4', 'address', '02:91:04:00:00:01', 'type', 'bridge');
    await fx.ip(HOST, 'link', 'set', 'wbr4', 'up');
    await fx.ip(HOST, 'addr', 'add', '10.91.4.1/24', 'dev', 'wbr4');
    C.c4a = await addContainer({ name: 'c4a', net: 4, host: 2 }, 'wbr4');
    // not yet a weft network: neither masqueraded nor isolated
    assert.equal(await request(C.c4a, OUT4, 7000), 'out 10.91.4.2');
    await nftApply(networkElements(net4, 'add'), { netns: HOST });
    assert.equal(await request(C.c4a, OUT4, 7000), `out ${UP4}`);
    assert.equal(await ping(C.c4a, ip4(byName('c1a'))), false);
    await nftApply(networkElements(net4, 'delete'), { netns: HOST });
    assert.equal(await request(C.c4a, OUT4, 7000), 'out 10.91.4.2');
    // icc of net2 off -> on -> off, each one transaction
    const net2 = NETWORKS[1];
    await nftApply(networkElements(net2, 'delete') + networkElements({ ...net2, icc: true }, 'add'), { netns: HOST });
    assert.ok(await reach(C.c2a, ip4(byName('c2b'))));
    await nftApply(networkElements({ ...net2, icc: true }, 'delete') + networkElements(net2, 'add'), { netns: HOST });
    assert.equal(await ping(C.c2a, ip4(byName('c2b'))), false);
    const inet = compileFirewall(model).elements.inet;
    for (const set of ['bridges', 'intra-bridge', 'subnets4', 'masq4']) {
      assert.deepEqual(await nftListSetElements('inet', 'weft', set, { netns: HOST }), inet[set], set);
    }
  });

  it('an established connection survives a full replace of both tables', async () => {
    const stream = fx.spawn(C.c1a, process.execPath, ['-e', STREAM, OUT4, '7001']);
    try {
      await stream.waitFor('ok 3');
      await loadFirewall(model);
      await loadFirewall(model);
      const count = () => Number(/ok (\d+)\s*$/.exec(stream.output())?.[1] ?? 0);
      const before = count();
      await new Promise((r) => setTimeout(r, 600));
      assert.ok(count() >= before + 3, `the stream went on (${before} -> ${count()}): ${stream.output().slice(-200)}`);
      assert.ok(!stream.output().includes('closed'));
    } finally {
      fx.kill(stream);
    }
  });

  it('touches only its own tables; errors are KernelErrors with nft\'s message and leave nothing applied', async () => {
    await nftApply('table inet bystander {\n  chain c {\n    type filter hook forward priority 10; policy accept;\n  }\n}\n', { netns: HOST });
    await loadFirewall(model);
    await nftDeleteTable('inet', 'weft', { netns: HOST });
    await nftDeleteTable('inet', 'weft', { netns: HOST }); // absent: no error
    assert.equal(await nftListTable('inet', 'weft', { netns: HOST }), undefined);
    assert.equal(await nftListSetElements('inet', 'weft', 'bridges', { netns: HOST }), undefined);
    assert.ok(await nftListTable('inet', 'bystander', { netns: HOST }), 'the other table is still there');
    assert.ok(await nftListTable('bridge', 'weft', { netns: HOST }), 'the bridge table is still there');
    await loadFirewall(model);

    await assert.rejects(nftApply('table inet weft {\n  chain x {\n    nonsense here\n  }\n}\n', { netns: HOST }), (e: unknown) => {
      assert.ok(e instanceof KernelError);
      assert.match(e.message, /Error: /);
      assert.match(e.message, /nonsense/);
      return true;
    });
    // one good command and one failing command: neither is applied
    const port: FwPort = { family: 4, protocol: 'tcp', hostPort: 9191, targetIp: '10.91.1.2', targetPort: 80 };
    await assert.rejects(
      nftApply(`${portElements(port, 'add')}delete element inet weft bridges { "nosuch" }\n`, { netns: HOST }),
      KernelError,
    );
    assert.ok(!(await nftListSetElements('inet', 'weft', 'publish4', { netns: HOST }))?.some((e) => e.includes('9191')));
    await nftDeleteTable('inet', 'bystander', { netns: HOST });
  });
});
