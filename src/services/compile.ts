/**
 * The load-balancer compiler: a pure function from service ports (each with its healthy backends)
 * to `table inet weft-svc`, and the delta that takes one service from one state to the next.
 *
 * The packet's path (see README.md for the why):
 *
 *   nat prerouting/output:  ip daddr . l4proto . dport  vmap @services4   (VIP:port)
 *                           fib daddr type local: l4proto . dport  vmap @published4   (host port)
 *     -> chain s-KEY        picks a slot: meta mark = KEY << 12 | slot, by the service's algorithm
 *     -> chain lb           dnat to (meta mark) map @backends4
 *   filter forward/output:  a packet still addressed into the service range found no backend (or
 *                           no service): reset / unreachable, never routed on to the network
 *
 * Every service port has one small chain of its own (so `numgen inc` counts per service: exact
 * round robin) that references no set; the only rule that looks into the big backends map is the
 * one in `lb`. This matters: the kernel walks all of a map's elements for every rule bound to it,
 * so 10,000 rules bound to one 100,000-element map take minutes to load, one rule takes a moment.
 * Anonymous sets per service are out for a similar reason (naming them is quadratic).
 */
import { maglevTable, weightedRoundRobin, type WeightedBackend } from './tables.js';
import type { LbAlgorithm } from '../model/types.js';

export const LB_TABLE = 'weft-svc';


/** The 12 low bits of the mark are the slot; the 20 high bits the service port's key. */
export const SLOT_BITS = 12;
export const MAX_KEY = 0xfffff;
/** Slots 0..2047 are positions (what a selector picks); 2048..4095 stable identities (affinity). */
export const IDENTITY_BASE = 2048;
export const MAX_IDENTITY = 4095 - IDENTITY_BASE;
/** Largest table a selector walks: Maglev's prime size, and the cap for weighted sequences. */
export const LB_MAGLEV_SIZE = 2039;
const MAX_POSITIONS = IDENTITY_BASE;

export interface LbBackend {
  /** the container id */
  id: string;
  ip: string;
  port: number;
  /** relative share, >= 1 */
  weight: number;
  /** open connections through this service (least-connections steers by it) */
  conns?: number;
  /** source-affinity: a stable 0..MAX_IDENTITY the caller keeps for this backend while it stays */
  identity?: number;
}

export interface LbPort {
  /** 1..MAX_KEY, unique among all service ports of the host */
  key: number;
  /** the service that owns it (deltas are per service) */
  service: string;
  vip?: string;
  protocol: 'tcp' | 'udp';
  port: number;
  /** published on every host address at this port */
  publish?: number;
  algorithm: LbAlgorithm;
  /** source-affinity: seconds a client stays with its backend after its last new connection */
  affinityTimeout: number;
  /** healthy backends; none: connections are refused */
  backends: LbBackend[];
}

/** Element texts of every map and set, keyed by element key (value is '' for sets). */
export type LbElements = Record<LbSet, Map<string, string>>;
type LbSet = (typeof SETS)[number]['name'];

const SETS = [
  { name: 'services4', decl: 'type ipv4_addr . inet_proto . inet_service : verdict' },
  { name: 'published4', decl: 'type inet_proto . inet_service : verdict' },
  { name: 'backends4', decl: 'typeof meta mark : ip daddr . th dport' },
  { name: 'identity4', decl: 'typeof meta mark : meta mark' },
  { name: 'live4', decl: 'typeof meta mark' },
] as const;

const CHAINS = `  map affinity4 {
    typeof ip saddr . meta mark : meta mark
    size 1048576
    flags dynamic,timeout
  }

  chain prerouting {
    type nat hook prerouting priority dstnat - 5; policy accept;
    ip daddr . meta l4proto . th dport vmap @services4
    fib daddr type local meta l4proto . th dport vmap @published4
  }

  chain output {
    type nat hook output priority -105; policy accept;
    ip daddr . meta l4proto . th dport vmap @services4
    fib daddr type local meta l4proto . th dport vmap @published4
  }

  chain lb {
    meta l4proto { tcp, udp } dnat ip addr . port to meta mark map @backends4
  }

  chain refuse {
    meta l4proto tcp reject with tcp reset
    reject with icmp port-unreachable
  }

  chain forward {
    type filter hook forward priority filter - 5; policy accept;
    ip daddr @range4 jump refuse
  }

  chain filter-output {
    type filter hook output priority filter - 5; policy accept;
    ip daddr @range4 jump refuse
  }
`;

const hex = (n: number) => `0x${n.toString(16).padStart(8, '0')}`;
// multiplication, not <<: keys of 0x80000 and up would turn a 32-bit shift negative
const base = (key: number) => key * 2 ** SLOT_BITS;
export const chainName = (key: number) => `s-${key}`;

function checkPort(p: LbPort): void {
  if (!Number.isInteger(p.key) || p.key < 1 || p.key > MAX_KEY) throw new Error(`service port key ${p.key} is out of range 1..${MAX_KEY}`);
  for (const b of p.backends) {
    if (!Number.isInteger(b.weight) || b.weight < 1) throw new Error(`backend ${b.id}: weight ${b.weight} is not a whole number >= 1`);
    if (p.algorithm === 'source-affinity' && (b.identity === undefined || b.identity < 0 || b.identity > MAX_IDENTITY))
      throw new Error(`backend ${b.id}: source affinity needs an identity in 0..${MAX_IDENTITY}`);
  }
}

/** Divides weights by their common divisor and scales them down so their sum fits `cap`. */
export function fitWeights(weights: number[], cap: number): number[] {
  const gcd = (a: number, b: number): number => (b ? gcd(b, a % b) : a);
  const g = weights.reduce(gcd, 0) || 1;
  let w = weights.map((x) => x / g);
  const sum = w.reduce((s, x) => s + x, 0);
  if (sum > cap) w = w.map((x) => Math.max(1, Math.floor((x * cap) / sum)));
  while (w.reduce((s, x) => s + x, 0) > cap) w[w.indexOf(Math.max(...w))]--;
  return w;
}

/**
 * The slots a port's selector walks, each a backend index. Round robin and random take every
 * backend once per weight unit in smooth order; Maglev fills its prime table; least connections
 * takes only the backends with the fewest connections per weight.
 */
export function slotTable(p: LbPort): number[] {
  const bs = p.backends;
  if (!bs.length) return [];
  if (p.algorithm === 'maglev') return maglevTable(weighted(bs), LB_MAGLEV_SIZE);
  if (p.algorithm === 'least-connections') {
    const load = bs.map((b) => (b.conns ?? 0) / b.weight);
    const min = Math.min(...load);
    return bs.map((_, i) => i).filter((i) => load[i] === min);
  }
  if (p.algorithm === 'round-robin') return bs.map((_, i) => i);
  const w = fitWeights(bs.map((b) => b.weight), MAX_POSITIONS);
  return weightedRoundRobin(bs.map((b, i) => ({ id: b.id, weight: w[i] })));
}

function weighted(bs: LbBackend[]): WeightedBackend[] {
  const w = fitWeights(bs.map((b) => b.weight), 64);
  return bs.map((b, i) => ({ id: b.id, weight: w[i] }));
}

/** The rules of a port's chain `s-KEY`. */
export function chainRules(p: LbPort, slots = slotTable(p)): string[] {
  if (!slots.length) return [];
  const b = base(p.key);
  const n = slots.length;
  switch (p.algorithm) {
    case 'maglev':
      return [`meta mark set jhash ip saddr mod ${n} seed ${hex(p.key)} offset ${b}`, 'goto lb'];
    case 'random':
      return [`meta mark set numgen random mod ${n} offset ${b}`, 'goto lb'];
    case 'source-affinity':
      return [
        `meta mark set ${hex(b)}`,
        'meta mark set ip saddr . meta mark map @affinity4',
        `meta mark != @live4 meta mark set numgen random mod ${n} offset ${b}`,
        `meta mark < ${hex(b + IDENTITY_BASE)} meta mark set meta mark map @identity4`,
        `update @affinity4 { ip saddr . ${hex(b)} timeout ${Math.max(1, Math.round(p.affinityTimeout))}s : meta mark }`,
        'goto lb',
      ];
    default:
      return [`meta mark set numgen inc mod ${n} offset ${b}`, 'goto lb'];
  }
}

/** The elements one port contributes. */
function portElements(p: LbPort, slots: number[], into: LbElements): void {
  const verdict = `goto ${chainName(p.key)}`;
  if (p.vip) into.services4.set(`${p.vip} . ${p.protocol} . ${p.port}`, verdict);
  if (p.publish) into.published4.set(`${p.protocol} . ${p.publish}`, verdict);
  const b = base(p.key);
  const target = (i: number) => `${p.backends[i].ip} . ${p.backends[i].port}`;
  if (p.algorithm === 'source-affinity') {
    slots.forEach((i, pos) => into.identity4.set(String(b + pos), String(b + IDENTITY_BASE + p.backends[i].identity!)));
    p.backends.forEach((be, i) => {
      const id = b + IDENTITY_BASE + be.identity!;
      into.backends4.set(String(id), target(i));
      into.live4.set(String(id), '');
    });
  } else {
    slots.forEach((i, pos) => into.backends4.set(String(b + pos), target(i)));
  }
}

export function emptyElements(): LbElements {
  return Object.fromEntries(SETS.map((s) => [s.name, new Map<string, string>()])) as LbElements;
}

export interface CompiledPort {
  key: number;
  rules: string[];
  elements: LbElements;
}

export function compilePort(p: LbPort): CompiledPort {
  checkPort(p);
  const slots = slotTable(p);
  const elements = emptyElements();
  // no backend: nothing dispatches, and the filter refuses what is addressed to the VIP
  if (slots.length) portElements(p, slots, elements);
  return { key: p.key, rules: chainRules(p, slots), elements };
}

const elementLine = (k: string, v: string) => (v ? `${k} : ${v}` : k);

/** `add element` lines for some elements, in the declared order of the sets. */
function elementCommands(op: 'add' | 'delete', els: LbElements, withValues = op === 'add'): string[] {
  const out: string[] = [];
  for (const s of SETS) {
    const m = els[s.name];
    if (!m.size) continue;
    const items = [...m].map(([k, v]) => (withValues ? elementLine(k, v) : k));
    // one command per 5,000 elements keeps each netlink batch message modest
    for (let i = 0; i < items.length; i += 5000)
      out.push(`${op} element inet ${LB_TABLE} ${s.name} { ${items.slice(i, i + 5000).join(', ')} }`);
  }
  return out;
}

function chainBlock(c: CompiledPort): string {
  return `  chain ${chainName(c.key)} {\n${c.rules.map((r) => `    ${r}\n`).join('')}  }\n`;
}

/**
 * The whole table as one transaction script: the table is declared empty, deleted and built
 * again, so the result does not depend on what was there. Chains come before the elements that
 * jump to them.
 */
export function fullScript(compiled: CompiledPort[], ranges: string[]): string {
  const decls = SETS.map((s) => `  ${s.decl.includes(' : ') ? 'map' : 'set'} ${s.name} {\n    ${s.decl}\n  }\n`).join('\n');
  const range = `  set range4 {\n    type ipv4_addr\n    flags interval\n${ranges.length ? `    elements = { ${ranges.join(', ')} }\n` : ''}  }\n`;
  const body = [
    `  comment "weft: service virtual IPs and load balancing (managed by weft, do not edit)"\n`,
    decls,
    range,
    CHAINS,
    ...compiled.map(chainBlock),
  ].join('\n');
  return [
    `table inet ${LB_TABLE} {}`,
    `delete table inet ${LB_TABLE}`,
    `table inet ${LB_TABLE} {\n${body}}`,
    ...elementCommands('add', unionElements(compiled)),
    '',
  ].join('\n');
}

function mergeInto(into: LbElements, from: LbElements): void {
  for (const s of SETS) for (const [k, v] of from[s.name]) into[s.name].set(k, v);
}

/** The union of several ports' elements (one service's). */
export function unionElements(ports: CompiledPort[]): LbElements {
  const all = emptyElements();
  for (const p of ports) mergeInto(all, p.elements);
  return all;
}

/**
 * The transaction that takes one service from `before` to `after` (either may be empty): stale
 * elements go first, then the chains are rewritten, then new elements come, so nothing ever jumps
 * to a missing chain and connections already tracked are not touched. Elements whose value
 * changed are deleted and added in the same transaction: there is no instant without them.
 */
export function deltaScript(before: CompiledPort[], after: CompiledPort[]): string {
  const old = unionElements(before);
  const neu = unionElements(after);
  const gone = emptyElements();
  const added = emptyElements();
  for (const s of SETS) {
    for (const [k, v] of old[s.name]) if (neu[s.name].get(k) !== v) gone[s.name].set(k, v);
    for (const [k, v] of neu[s.name]) if (old[s.name].get(k) !== v) added[s.name].set(k, v);
  }
  const lines = [...elementCommands('delete', gone)];
  const afterKeys = new Set(after.map((c) => c.key));
  const beforeByKey = new Map(before.map((c) => [c.key, c]));
  for (const c of before) if (!afterKeys.has(c.key)) lines.push(`delete chain inet ${LB_TABLE} ${chainName(c.key)}`);
  for (const c of after) {
    const prev = beforeByKey.get(c.key);
    if (prev && prev.rules.join('\n') === c.rules.join('\n')) continue;
    lines.push(prev ? `flush chain inet ${LB_TABLE} ${chainName(c.key)}` : `add chain inet ${LB_TABLE} ${chainName(c.key)}`);
    for (const r of c.rules) lines.push(`add rule inet ${LB_TABLE} ${chainName(c.key)} ${r}`);
  }
  lines.push(...elementCommands('add', added));
  return lines.length ? `${lines.join('\n')}\n` : '';
}
