/**
 * Published ports: each host port is claimed in the store (so two containers never get the same
 * one) and checked against the host's sockets (so a port a process already listens on is refused
 * with a clear error). The agent then holds a socket on each published port, as Docker does, so
 * no other process can take it while it is published; traffic itself never reaches that socket,
 * nftables DNATs it first.
 */
import net from 'node:net';
import dgram from 'node:dgram';
import type { PortBinding, Protocol } from '../model/types.js';
import type { PortRequest } from '../api/schemas.js';
import { familyOf } from '../ipam/cidr.js';
import { K } from './keys.js';
import { badRequest, conflict } from './errors.js';
import type { Daemon } from './daemon.js';

const EPHEMERAL = { first: 49153, last: 60999 };

type Holder = net.Server | dgram.Socket;
const held = new Map<string, Holder>();

function holdKey(p: PortBinding): string {
  return `${p.protocol}/${p.hostPort}/${p.hostIp}`;
}

/** Binds the port on the host to reserve it; rejects with the OS error (EADDRINUSE...). */
function bind(p: PortBinding): Promise<Holder> {
  const host = p.hostIp || '0.0.0.0';
  return new Promise((resolve, reject) => {
    if (p.protocol === 'tcp') {
      const srv = net.createServer((s) => s.destroy());
      srv.once('error', reject);
      srv.listen({ host, port: p.hostPort, exclusive: true, ipv6Only: host.includes(':') }, () => resolve(srv));
    } else {
      const sock = dgram.createSocket({ type: host.includes(':') ? 'udp6' : 'udp4', ipv6Only: host.includes(':') });
      sock.once('error', reject);
      sock.bind({ address: host, port: p.hostPort, exclusive: true }, () => resolve(sock));
    }
  });
}

/** A claim key /weft/ports/<proto>/<port>/<hostIp> back as a binding (container port unknown). */
export function claimBinding(key: string): PortBinding {
  const [proto, port, ...ip] = key.slice(K.ports.length).split('/');
  return { protocol: proto as Protocol, hostPort: Number(port), hostIp: ip.join('/'), containerPort: 0 };
}

function closeHolder(h: Holder): void {
  if (h instanceof net.Server) h.close();
  else h.close();
}

/** Normalises and validates requests (no I/O). */
export function normalisePorts(reqs: PortRequest[]): PortBinding[] {
  return reqs.map((r) => {
    const hostIp = r.hostIp ?? '';
    if (hostIp && !familyOf(hostIp)) throw badRequest(`invalid host IP "${hostIp}" in published port ${r.containerPort}; give an IPv4 or IPv6 address`);
    const spec: PortBinding = { hostIp, hostPort: r.hostPort ?? 0, containerPort: r.containerPort, protocol: (r.protocol ?? 'tcp') as Protocol };
    if (r.hostPortEnd !== undefined && r.hostPortEnd !== spec.hostPort) {
      if (!spec.hostPort || r.hostPortEnd < spec.hostPort) {
        throw badRequest(`invalid host port range ${spec.hostPort}-${r.hostPortEnd} for published port ${r.containerPort}: give hostPort <= hostPortEnd`);
      }
      spec.hostPortEnd = r.hostPortEnd;
    }
    return spec;
  });
}

function overlapsHost(a: string, b: string): boolean {
  const wild = (x: string) => x === '' || x === '0.0.0.0' || x === '::';
  return a === b || wild(a) || wild(b);
}

function describe(p: PortBinding): string {
  return `${p.hostIp || '0.0.0.0'}:${p.hostPort}/${p.protocol}`;
}

/**
 * Claims every binding for owner: picks free host ports for hostPort 0, refuses ports published
 * by another container or held by another process. All or nothing.
 */
export async function claimPorts(d: Daemon, owner: string, wanted: PortBinding[]): Promise<PortBinding[]> {
  if (!wanted.length) return [];
  return d.locks.run('ports', async () => {
    const { kvs } = await d.store.range(K.ports);
    const claims = kvs.map((kv) => ({ ...claimBinding(kv.key), owner: kv.value }));
    const taken = (p: PortBinding) =>
      claims.find((c) => c.protocol === p.protocol && c.hostPort === p.hostPort && overlapsHost(c.hostIp, p.hostIp));
    const done: PortBinding[] = [];
    try {
      for (const want of wanted) {
        let p = want;
        if (p.hostPort === 0) p = await pickFree(p, taken, EPHEMERAL, true);
        else if (p.hostPortEnd) p = await pickFree(p, taken, { first: p.hostPort, last: p.hostPortEnd }, false);
        else {
          const other = taken(p);
          if (other) throw conflict(`port ${describe(p)} is already published by container ${other.owner.slice(0, 12)}; choose another host port`);
          await holdOrExplain(p);
        }
        claims.push({ ...p, owner });
        done.push(p);
      }
      const res = await d.store.txn(
        done.map((p) => ({ key: K.port(p.protocol, p.hostPort, p.hostIp), target: 'create' as const, op: '=' as const, value: 0 })),
        done.map((p) => ({ type: 'put' as const, key: K.port(p.protocol, p.hostPort, p.hostIp), value: owner })),
      );
      if (!res.succeeded) throw conflict('a published port was claimed concurrently; try again');
      return done;
    } catch (e) {
      for (const p of done) releaseHold(p);
      throw e;
    }
  });
}

async function holdOrExplain(p: PortBinding): Promise<void> {
  try {
    held.set(holdKey(p), await bind(p));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE') throw conflict(`port ${describe(p)} is already in use on the host by another process; choose another host port`);
    if (code === 'EADDRNOTAVAIL') throw badRequest(`cannot publish on ${describe(p)}: ${p.hostIp} is not an address of this host`);
    throw e;
  }
}

/** A free port in range: from a random place (the ephemeral range) or from its first port. */
async function pickFree(p: PortBinding, taken: (p: PortBinding) => unknown, range: { first: number; last: number }, random: boolean): Promise<PortBinding> {
  const span = range.last - range.first + 1;
  const start = random ? Math.floor(Math.random() * span) : 0;
  const { hostPortEnd: _, ...rest } = p;
  for (let i = 0; i < Math.min(span, 200); i++) {
    const cand = { ...rest, hostPort: range.first + ((start + i) % span) };
    if (taken(cand)) continue;
    try {
      held.set(holdKey(cand), await bind(cand));
      return cand;
    } catch {
      // in use on the host: try the next one
    }
  }
  throw conflict(`no free host port for ${p.containerPort}/${p.protocol} in ${range.first}-${range.last}`);
}

function releaseHold(p: PortBinding): void {
  const h = held.get(holdKey(p));
  if (h) closeHolder(h);
  held.delete(holdKey(p));
}

/** Releases the claims and sockets of owner's bindings (all of owner's claims if none given). */
export async function releasePorts(d: Daemon, owner: string): Promise<void> {
  await d.locks.run('ports', async () => {
    const { kvs } = await d.store.range(K.ports);
    const mine = kvs.filter((kv) => kv.value === owner);
    for (const kv of mine) releaseHold(claimBinding(kv.key));
    if (mine.length) await d.store.txn([], mine.map((kv) => ({ type: 'delete' as const, key: kv.key })));
  });
}

/** After a restart: hold the sockets of every claim again (best effort: log what fails). */
export async function rehold(d: Daemon, owners: Set<string>): Promise<void> {
  const { kvs } = await d.store.range(K.ports);
  for (const kv of kvs) {
    if (!owners.has(kv.value)) continue;
    const p = claimBinding(kv.key);
    if (held.has(holdKey(p))) continue;
    try {
      held.set(holdKey(p), await bind(p));
    } catch (e) {
      d.log.warn({ port: describe(p), err: String(e) }, 'could not hold a published port again');
    }
  }
}

export function closeAllHolds(): void {
  for (const h of held.values()) closeHolder(h);
  held.clear();
}
