/**
 * The embedded DNS server's names: a pure, immutable table built from a snapshot of containers
 * and networks, and the answer logic of Docker's embedded DNS. No sockets here; server.ts asks
 * `askerOf(sourceIp)` and then `answer(asker, name, type)` for every query.
 *
 * Scoping: a container (the asker, known by its source address) sees the names of the running
 * containers that share a user-defined network with it, and only their addresses on those
 * networks. The table keeps one name map per network and merges the maps of the networks an
 * asker is on into a "scope", built on first use and shared by every asker on the same set of
 * networks. The agent builds a new table whenever containers or networks change, so nothing here
 * is ever stale or mutated, except the round-robin counters.
 *
 * Every record is encoded once, here, with dns-packet into its wire tail (TYPE CLASS TTL
 * RDLENGTH RDATA); the server only copies those bytes after a pointer to the question name.
 */
import { isIPv4, isIPv6 } from 'node:net';
import dnsPacket from 'dns-packet';
import { canonicalIp, parseIp } from '../ipam/cidr.js';
import { HEADER_LEN, QCLASS, QTYPE, type WireRecord } from './wire.js';

/**
 * TTL of every local record, in seconds. Docker uses 600, which keeps a stopped container's
 * address in client caches for ten minutes; names here follow containers within seconds.
 */
export const DNS_TTL = 5;

export interface DnsNetwork {
  id: string;
  name: string;
  internal: boolean;
  /** false for the predefined 'bridge' network: no embedded DNS there */
  userDefined: boolean;
}

export interface DnsEndpoint {
  networkId: string;
  ipv4?: string;
  ipv6?: string;
  aliases: string[];
}

export interface DnsContainer {
  /** 64 hex digits */
  id: string;
  name: string;
  running: boolean;
  endpoints: DnsEndpoint[];
}

export interface DnsSrv {
  /** e.g. _http._tcp.web */
  name: string;
  networkIds: string[];
  target: string;
  port: number;
  priority?: number;
  weight?: number;
}

/** Extra A/AAAA names (services' virtual IPs), scoped to networks like container names. */
export interface DnsExtraName {
  name: string;
  networkIds: string[];
  ipv4?: string[];
  ipv6?: string[];
  /** the name's addresses are these alone: a service's VIP hides its containers' alias of the same name */
  replace?: boolean;
}

/** The world as the DNS server needs to know it; the agent rebuilds it on every change. */
export interface DnsSnapshot {
  networks: DnsNetwork[];
  containers: DnsContainer[];
  srv?: DnsSrv[];
  extra?: DnsExtraName[];
}

/** A container that may ask: a running container, known by one of its addresses. */
export interface Asker {
  /** the address it asked from (canonical text) */
  readonly ip: string;
  readonly containerId: string;
  readonly containerName: string;
  /** the user-defined networks it is on, sorted: the names it sees */
  readonly networkIds: readonly string[];
  /** false if all its networks are internal: unknown names get NXDOMAIN, never forwarded */
  readonly canForward: boolean;
}

export interface SrvRecordData {
  target: string;
  port: number;
  priority: number;
  weight: number;
}

/** One local resource record, with its pre-encoded wire tail. */
export type LocalRecord =
  | { readonly type: 'A' | 'AAAA' | 'PTR'; readonly data: string; readonly wire: Buffer }
  | { readonly type: 'SRV'; readonly data: SrvRecordData; readonly wire: Buffer };

/**
 * What to do with a question:
 * - records: answer with `records`, starting at index `start` and wrapping around (the
 *   round-robin rotation; `rotated()` lists them in that order). Never empty.
 * - nodata: the name exists in the asker's scope but has no record of that type: NOERROR, empty.
 * - nxdomain: the name does not exist and must not be forwarded.
 * - forward: not a local name; relay the query upstream.
 */
export type LocalAnswer =
  | { readonly kind: 'records'; readonly records: readonly LocalRecord[]; readonly start: number }
  | { readonly kind: 'nodata' }
  | { readonly kind: 'nxdomain' }
  | { readonly kind: 'forward' };

export const NODATA: LocalAnswer = Object.freeze({ kind: 'nodata' });
export const NXDOMAIN: LocalAnswer = Object.freeze({ kind: 'nxdomain' });
export const FORWARD: LocalAnswer = Object.freeze({ kind: 'forward' });

/** The records of an answer in the order they are sent. */
export function rotated(answer: LocalAnswer): LocalRecord[] {
  if (answer.kind !== 'records') return [];
  const { records, start } = answer;
  return records.map((_, i) => records[(start + i) % records.length]);
}

/** The records of one name in one scope. */
interface RRSet {
  a: LocalRecord[];
  aaaa: LocalRecord[];
  ptr: LocalRecord[];
  srv: LocalRecord[];
  /** everything above, for ANY */
  all: LocalRecord[];
  /** round-robin counter: bumped by every query that returns two or more records */
  turn: number;
}

type Scope = Map<string, RRSet>;

const EMPTY: readonly LocalRecord[] = Object.freeze([]);

export class NameTable {
  /** Problems met while building (invalid addresses or names, duplicate addresses): log them. */
  readonly warnings: string[] = [];
  private readonly askers = new Map<string, Asker>();
  /** network id -> (name -> records) */
  private readonly byNetwork = new Map<string, Scope>();
  /** an asker's scope key (its sorted network ids) -> merged names, built on first use */
  private readonly scopes = new Map<string, Scope>();
  private readonly scopeKeys = new Map<Asker, string>();
  /** one record object per (type, data), shared by every name that carries it */
  private readonly recordCache = new Map<string, LocalRecord>();

  constructor(snap: DnsSnapshot) {
    const networks = new Map(snap.networks.map((n) => [n.id, n]));
    const named = (id: string): DnsNetwork | undefined => {
      const n = networks.get(id);
      return n && n.userDefined ? n : undefined;
    };
    for (const c of snap.containers) {
      if (!c.running) continue;
      const name = c.name.replace(/^\//, '');
      const shortId = c.id.length >= 12 ? c.id.slice(0, 12) : '';
      const askerNets: string[] = [];
      const askerIps: string[] = [];
      for (const ep of c.endpoints) {
        const net = named(ep.networkId);
        if (!net) continue;
        askerNets.push(net.id);
        const v4 = this.address(ep.ipv4, 4, `container ${name}`);
        const v6 = this.address(ep.ipv6, 6, `container ${name}`);
        const labels = [name, shortId, ...ep.aliases];
        const names = [...labels, ...[name, ...ep.aliases].map((l) => `${l}.${net.name}`)];
        for (const n of names) {
          if (v4) this.add(net.id, n, 'A', v4);
          if (v6) this.add(net.id, n, 'AAAA', v6);
          if (!v4 && !v6) this.add(net.id, n); // the name exists: NODATA rather than forwarded
        }
        for (const ip of [v4, v6]) {
          if (!ip) continue;
          askerIps.push(ip);
          this.add(net.id, reverseName(ip), 'PTR', `${name}.${net.name}`);
        }
      }
      if (askerIps.length === 0) continue;
      const canForward = c.endpoints.some((ep) => networks.get(ep.networkId)?.internal === false);
      const networkIds = [...new Set(askerNets)].sort();
      for (const ip of askerIps) {
        if (this.askers.has(ip)) this.warnings.push(`address ${ip} is claimed by several containers; ${name} wins`);
        const asker: Asker = { ip, containerId: c.id, containerName: name, networkIds, canForward };
        this.askers.set(ip, asker);
        this.scopeKeys.set(asker, networkIds.join(','));
      }
    }
    for (const s of snap.srv ?? []) {
      const data: SrvRecordData = { target: s.target, port: s.port, priority: s.priority ?? 0, weight: s.weight ?? 0 };
      if (!validName(s.target) || !validU16(s.port) || !validU16(data.priority) || !validU16(data.weight)) {
        this.warnings.push(`SRV ${s.name}: invalid target, port, priority or weight; skipped`);
        continue;
      }
      for (const id of s.networkIds) {
        const net = named(id);
        if (!net) continue;
        this.add(id, s.name, 'SRV', data);
        this.add(id, `${s.name}.${net.name}`, 'SRV', data);
      }
    }
    for (const e of snap.extra ?? []) {
      const v4 = (e.ipv4 ?? []).map((ip) => this.address(ip, 4, `name ${e.name}`));
      const v6 = (e.ipv6 ?? []).map((ip) => this.address(ip, 6, `name ${e.name}`));
      for (const id of e.networkIds) {
        const net = named(id);
        if (!net) continue;
        for (const n of [e.name, `${e.name}.${net.name}`]) {
          if (e.replace) this.byNetwork.get(id)?.delete(normalizeName(n));
          for (const ip of v4) if (ip) this.add(id, n, 'A', ip);
          for (const ip of v6) if (ip) this.add(id, n, 'AAAA', ip);
          this.add(id, n);
        }
      }
    }
    for (const scope of this.byNetwork.values()) for (const set of scope.values()) collectAll(set);
  }

  /** The container asking from `ip` (as a socket reports it), or undefined: then drop the query. */
  askerOf(ip: string): Asker | undefined {
    const hit = this.askers.get(ip);
    if (hit || !ip.includes(':')) return hit;
    // IPv6 text from elsewhere, an IPv4-mapped address or a zone index: canonicalise and retry
    const bare = ip.replace(/%.*$/, '');
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(bare);
    if (mapped) return this.askers.get(mapped[1]);
    try {
      return this.askers.get(canonicalIp(bare));
    } catch {
      return undefined;
    }
  }

  /**
   * The answer for `asker` to a question. `name` is case-insensitive, with or without its
   * trailing dot; `qtype` and `qclass` are the wire numbers (QTYPE, QCLASS in wire.ts).
   * Class IN and ANY are served from local names; other classes are never local.
   */
  answer(asker: Asker, name: string, qtype: number, qclass: number = QCLASS.IN): LocalAnswer {
    const key = normalizeName(name);
    const set = qclass === QCLASS.IN || qclass === QCLASS.ANY ? this.scopeOf(asker).get(key) : undefined;
    if (!set) return unmatched(asker, key, qtype);
    let list: readonly LocalRecord[];
    switch (qtype) {
      case QTYPE.A: list = set.a; break;
      case QTYPE.AAAA: list = set.aaaa; break;
      case QTYPE.PTR: list = set.ptr; break;
      case QTYPE.SRV: list = set.srv; break;
      case QTYPE.ANY: list = set.all; break;
      default: list = EMPTY;
    }
    if (list.length === 0) return NODATA;
    let start = 0;
    if (list.length > 1) {
      start = set.turn % list.length;
      set.turn = (set.turn + 1) & 0x3fffffff;
    }
    return { kind: 'records', records: list, start };
  }

  /** The merged names of the asker's networks (one network's map itself when it has one). */
  private scopeOf(asker: Asker): Scope {
    const key = this.scopeKeys.get(asker) ?? asker.networkIds.join(',');
    let scope = this.scopes.get(key);
    if (scope) return scope;
    if (asker.networkIds.length === 1) {
      scope = this.byNetwork.get(asker.networkIds[0]) ?? new Map<string, RRSet>();
    } else {
      scope = new Map<string, RRSet>();
      for (const id of asker.networkIds) {
        for (const [name, set] of this.byNetwork.get(id) ?? []) {
          const into = scope.get(name);
          if (!into) scope.set(name, { ...set, turn: 0 });
          else mergeInto(into, set);
        }
      }
    }
    this.scopes.set(key, scope);
    return scope;
  }

  /** Canonical text of a valid address of `family`, or undefined (with a warning if given). */
  private address(ip: string | undefined, family: 4 | 6, owner: string): string | undefined {
    if (ip === undefined || ip === '') return undefined;
    if (family === 4 ? isIPv4(ip) : isIPv6(ip)) {
      try {
        return canonicalIp(ip);
      } catch {
        // falls through to the warning
      }
    }
    this.warnings.push(`${owner}: "${ip}" is not an IPv${family} address; skipped`);
    return undefined;
  }

  /**
   * Registers a record under `name` on network `id`; without a type, only makes the name exist.
   * Names that could never be asked for (empty or too-long labels...) are skipped with a warning.
   */
  private add(id: string, name: string, type?: LocalRecord['type'], data?: string | SrvRecordData): void {
    const key = normalizeName(name);
    if (!validName(key)) {
      if (name !== '') this.warnings.push(`name "${name}" is not a valid DNS name; skipped`);
      return;
    }
    if (type === 'PTR' && !validName(data as string)) {
      this.warnings.push(`PTR target "${String(data)}" is not a valid DNS name; skipped`);
      return;
    }
    let scope = this.byNetwork.get(id);
    if (!scope) this.byNetwork.set(id, (scope = new Map()));
    let set = scope.get(key);
    if (!set) scope.set(key, (set = { a: [], aaaa: [], ptr: [], srv: [], all: [], turn: 0 }));
    if (!type || data === undefined) return;
    const cacheKey = `${type} ${typeof data === 'string' ? data : JSON.stringify(data)}`;
    let record = this.recordCache.get(cacheKey);
    if (!record) this.recordCache.set(cacheKey, (record = makeRecord(type, data)));
    const list = listOf(set, type);
    if (!list.includes(record)) list.push(record);
  }
}

/** Unknown names: forwarded, except for internal-only askers and bare names (see README). */
function unmatched(asker: Asker, key: string, qtype: number): LocalAnswer {
  if (!asker.canForward) return NXDOMAIN;
  // dnsmasq's domain-needed: an address lookup of a plain name never leaves the host
  if (key !== '' && !key.includes('.') && (qtype === QTYPE.A || qtype === QTYPE.AAAA || qtype === QTYPE.ANY)) {
    return NXDOMAIN;
  }
  return FORWARD;
}

function listOf(set: RRSet, type: LocalRecord['type']): LocalRecord[] {
  switch (type) {
    case 'A': return set.a;
    case 'AAAA': return set.aaaa;
    case 'PTR': return set.ptr;
    case 'SRV': return set.srv;
  }
}

function collectAll(set: RRSet): void {
  set.all = [...set.a, ...set.aaaa, ...set.ptr, ...set.srv];
}

function mergeInto(into: RRSet, from: RRSet): void {
  const merge = (a: LocalRecord[], b: LocalRecord[]): LocalRecord[] =>
    b.length === 0 ? a : [...a, ...b.filter((r) => !a.includes(r))];
  into.a = merge(into.a, from.a);
  into.aaaa = merge(into.aaaa, from.aaaa);
  into.ptr = merge(into.ptr, from.ptr);
  into.srv = merge(into.srv, from.srv);
  collectAll(into);
}

/** Lower case, without the trailing dot. */
export function normalizeName(name: string): string {
  const n = name.endsWith('.') ? name.slice(0, -1) : name;
  return n.toLowerCase();
}

/** A name we can register and encode: 1-63 printable ASCII characters a label, 253 in all. */
function validName(name: string): boolean {
  if (name.length === 0 || name.length > 253) return false;
  for (const label of name.replace(/\.$/, '').split('.')) {
    if (label.length === 0 || label.length > 63 || !/^[\x21-\x7e]+$/.test(label) || label.includes('\\')) return false;
  }
  return true;
}

function validU16(n: number): boolean {
  return Number.isInteger(n) && n >= 0 && n <= 0xffff;
}

/** The reverse-lookup name of a canonical address: 2.0.18.172.in-addr.arpa, or 32 nibbles. */
export function reverseName(ip: string): string {
  if (isIPv4(ip)) return `${ip.split('.').reverse().join('.')}.in-addr.arpa`;
  const hex = parseIp(ip).value.toString(16).padStart(32, '0');
  return `${[...hex].reverse().join('.')}.ip6.arpa`;
}

/** A record and its wire tail, encoded by dns-packet as an answer owned by the root name. */
function makeRecord(type: LocalRecord['type'], data: string | SrvRecordData): LocalRecord {
  const answer = type === 'SRV'
    ? { type, name: '.', ttl: DNS_TTL, class: 'IN' as const, data: data as SrvRecordData }
    : { type, name: '.', ttl: DNS_TTL, class: 'IN' as const, data: data as string };
  const packet = dnsPacket.encode({ type: 'response', id: 0, flags: 0, answers: [answer] });
  // header, then the owner name '.' (one zero byte), then the tail we keep
  const wire = Buffer.from(packet.subarray(HEADER_LEN + 1));
  return (type === 'SRV'
    ? { type, data: data as SrvRecordData, wire }
    : { type, data: data as string, wire }) satisfies LocalRecord & WireRecord;
}
