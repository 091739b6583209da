/**
 * The load-balancer compiler: a pure function from service ports (each with its healthy backends)
 * to `table inet weft-svc`, and the transaction that takes some ports from one state to the next.
 *
 * The packet's path (see README.md for the why):
 *
 *   nat prerouting/output:  ip daddr . l4proto . dport  vmap @services4   (VIP:port)
 *                           fib daddr type local: l4proto . dport  vmap @published4   (host port)
 *     -> chain s-KEY        picks a slot: meta mark = KEY << 12 | slot, by the service's algorithm
 *     -> chain lb           dnat to (meta mark) map @backends4 : (KEY << 12) map @ports4
 *   filter forward/output:  a packet still addressed into the service range found no backend (or
 *                           no service): reset / unreachable, never routed on to the network
 *
 * Every service port has one small chain of its own (so `numgen inc` counts per service: exact
 * round robin) that references no set; the only rule that looks into the big backends map is the
 * one in `lb`. This matters: the kernel walks all of a map's elements for every rule bound to it,
 * so 10,000 rules bound to one 100,000-element map take minutes to load, one rule takes a moment.
 * Anonymous sets per service are out for a similar reason (naming them is quadratic).
 *
 * Changes are written so that nft (1.0.6 here) need not read the table back: before a transaction,
 * nft lists every chain of the ruleset for `add element`, `delete element`, `add rule` and `delete
 * chain` (10,000 chains: ~30 ms), but not for `flush chain`, `add chain NAME { RULES }` or `add map
 * NAME { DECLARATION; elements = { ... } }`. So a port's slot table does not change in place: the
 * new one goes to a free range of the port's 4,096 slots, its chain is rewritten to count over the
 * new range, and the old range, which no rule reaches any more, is left as stale elements that a
 * later transaction deletes (one that deletes something anyway, or a collection). See planDelta.
 */
import { maglevTable, weightedRoundRobin, type WeightedBackend } from './tables.js';
import type { LbAlgorithm } from '../model/types.js';

export const LB_TABLE = 'weft-svc';

/** The 12 low bits of the mark are the slot; the 20 high bits the service port's key. */
export const SLOT_BITS = 12;
export const MAX_KEY = 0xfffff;
/** Slots each port owns: KEY << 12 | 0..4095. */
export const PORT_SLOTS = 2 ** SLOT_BITS;
/** Slots 0..2047 are positions (what a selector picks); 2048..4095 stable identities (affinity). */
export const IDENTITY_BASE = 2048;
export const MAX_IDENTITY = 4095 - IDENTITY_BASE;
/** Largest table a selector walks: Maglev's prime size, and the cap for weighted sequences. */
export const LB_MAGLEV_SIZE = 2039;
const MAX_POSITIONS = IDENTITY_BASE;
/**
 * backends4 is declared with a size (the kernel then picks its fixed-size hash, which loads 100,000
 * elements ~20 % faster than the growing one): twice the elements of the full load, at least this.
 * A change that would overflow it rewrites the table instead (planDelta's `overflow`).
 */
export const MIN_BACKENDS_CAPACITY = 65536;

export interface LbBackend {
  /** the container id */
  id: string;
  ip: string;
  /** the target port: one for all backends of a service port */
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
  { name: 'services4', kind: 'map', decl: 'type ipv4_addr . inet_proto . inet_service : verdict' },
  { name: 'published4', kind: 'map', decl: 'type inet_proto . inet_service : verdict' },
  { name: 'backends4', kind: 'map', decl: 'typeof meta mark : ip daddr' },
  { name: 'ports4', kind: 'map', decl: 'typeof meta mark : th dport' },
  { name: 'identity4', kind: 'map', decl: 'typeof meta mark : meta mark' },
  { name: 'live4', kind: 'set', decl: 'typeof meta mark' },
] as const;

const hex = (n: number) => `0x${n.toString(16).padStart(8, '0')}`;
// multiplication, not <<: keys of 0x80000 and up would turn a 32-bit shift negative
const base = (key: number) => key * 2 ** SLOT_BITS;
/** the port key of a mark */
const keyOf = (mark: number) => Math.floor(mark / 2 ** SLOT_BITS);
const KEY_MASK = hex(MAX_KEY * 2 ** SLOT_BITS);
export const chainName = (key: number) => `s-${key}`;

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
    meta l4proto { tcp, udp } dnat ip to meta mark map @backends4 : meta mark & ${KEY_MASK} map @ports4
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

function checkPort(p: LbPort): void {
  if (!Number.isInteger(p.key) || p.key < 1 || p.key > MAX_KEY) throw new Error(`service port key ${p.key} is out of range 1..${MAX_KEY}`);
  for (const b of p.backends) {
    if (!Number.isInteger(b.weight) || b.weight < 1) throw new Error(`backend ${b.id}: weight ${b.weight} is not a whole number >= 1`);
    if (p.algorithm === 'source-affinity' && (b.identity === undefined || b.identity < 0 || b.identity > MAX_IDENTITY))
      throw new Error(`backend ${b.id}: source affinity needs an identity in 0..${MAX_IDENTITY}`);
    if (b.port !== p.backends[0].port)
      throw new Error(`service port ${p.port}/${p.protocol}: backends ${p.backends[0].id} and ${b.id} have different target ports (${p.backends[0].port}, ${b.port})`);
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

const isAffinity = (a: LbAlgorithm) => a === 'source-affinity';

/**
 * The rules of a port's chain `s-KEY`: one rule that picks the slot from the port's range
 * [offset, offset + slots) and goes to `lb` (source affinity: a few, see README.md).
 */
export function chainRules(p: LbPort, slots = slotTable(p), offset = 0): string[] {
  if (!slots.length) return [];
  const b = base(p.key);
  const n = slots.length;
  const from = b + offset;
  switch (p.algorithm) {
    case 'maglev':
      return [`meta mark set jhash ip saddr mod ${n} seed ${hex(p.key)} offset ${from} goto lb`];
    case 'random':
      return [`meta mark set numgen random mod ${n} offset ${from} goto lb`];
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
      return [`meta mark set numgen inc mod ${n} offset ${from} goto lb`];
  }
}

/**
 * What one port puts in the sets, kept compact: a full load writes it out directly, and the maps
 * of `CompiledPort.elements` (which deltas compare) are built only when asked for.
 */
interface PortData {
  /** services4 / published4 keys, both going to the port's chain */
  service?: string;
  published?: string;
  verdict: string;
  /** ports4: the port's base mark and the target port */
  base: string;
  target: string;
  /** backends4 (not source affinity): keys from..from+n-1, the backend address of each slot */
  from: number;
  ips: string[];
  /** source affinity: identity4 (position -> identity mark), and backends4 / live4 by identity mark */
  positions?: string[];
  identities?: [string, string][];
}

function portData(p: LbPort, slots: number[], offset: number): PortData {
  const b = base(p.key);
  const d: PortData = {
    service: p.vip ? `${p.vip} . ${p.protocol} . ${p.port}` : undefined,
    published: p.publish ? `${p.protocol} . ${p.publish}` : undefined,
    verdict: `goto ${chainName(p.key)}`,
    base: String(b),
    target: String(p.backends[0].port),
    from: b + offset,
    ips: [],
  };
  if (isAffinity(p.algorithm)) {
    d.positions = slots.map((i) => String(b + IDENTITY_BASE + p.backends[i].identity!));
    d.identities = p.backends.map((be) => [String(b + IDENTITY_BASE + be.identity!), be.ip]);
  } else d.ips = slots.map((i) => p.backends[i].ip);
  return d;
}

/** Calls `fn` with every element the port puts in `set`. */
function eachElement(d: PortData, set: LbSet, fn: (k: string, v: string) => void): void {
  switch (set) {
    case 'services4':
      if (d.service) fn(d.service, d.verdict);
      break;
    case 'published4':
      if (d.published) fn(d.published, d.verdict);
      break;
    case 'ports4':
      fn(d.base, d.target);
      break;
    case 'backends4':
      if (d.identities) for (const [id, ip] of d.identities) fn(id, ip);
      else for (let i = 0; i < d.ips.length; i++) fn(String(d.from + i), d.ips[i]);
      break;
    case 'identity4':
      if (d.positions) for (let i = 0; i < d.positions.length; i++) fn(String(Number(d.base) + i), d.positions[i]);
      break;
    case 'live4':
      if (d.identities) for (const [id] of d.identities) fn(id, '');
      break;
  }
}

export function emptyElements(): LbElements {
  return {
    services4: new Map(),
    published4: new Map(),
    backends4: new Map(),
    ports4: new Map(),
    identity4: new Map(),
    live4: new Map(),
  };
}

export interface CompiledPort {
  readonly key: number;
  readonly algorithm: LbAlgorithm;
  /** where the slot table starts among the port's slots (source affinity: always 0) */
  readonly offset: number;
  readonly rules: string[];
  readonly elements: LbElements;
}

/** A compiled port; its element maps are built on first use. */
class Compiled implements CompiledPort {
  private built?: LbElements;

  constructor(
    readonly key: number,
    readonly algorithm: LbAlgorithm,
    readonly offset: number,
    readonly rules: string[],
    /** undefined: no backend (nothing dispatches, and the filter refuses what is addressed to the VIP) */
    readonly data: PortData | undefined,
  ) {}

  get elements(): LbElements {
    if (!this.built) {
      const els = emptyElements();
      if (this.data) for (const s of SETS) eachElement(this.data, s.name, (k, v) => els[s.name].set(k, v));
      this.built = els;
    }
    return this.built;
  }
}

/** Calls `fn` with every element a compiled port puts in `set`. */
function portElements(c: CompiledPort, set: LbSet, fn: (k: string, v: string) => void): void {
  if (c instanceof Compiled) {
    if (c.data) eachElement(c.data, set, fn);
  } else for (const [k, v] of c.elements[set]) fn(k, v);
}

function compileAt(p: LbPort, slots: number[], offset: number): CompiledPort {
  if (isAffinity(p.algorithm) ? offset !== 0 : !Number.isInteger(offset) || offset < 0 || offset + slots.length > PORT_SLOTS)
    throw new Error(`service port ${p.port}/${p.protocol}: a slot table of ${slots.length} does not fit at slot ${offset} (a port has ${PORT_SLOTS})`);
  return new Compiled(p.key, p.algorithm, offset, chainRules(p, slots, offset), slots.length ? portData(p, slots, offset) : undefined);
}

/** One port, its slot table at the start of its slots (`ports.map(compilePort)` works). */
export function compilePort(p: LbPort): CompiledPort {
  return compilePortAt(p, 0);
}

/** One port, its slot table at `offset` among its slots. */
export function compilePortAt(p: LbPort, offset: number): CompiledPort {
  checkPort(p);
  return compileAt(p, slotTable(p), offset);
}

function samePort(a: CompiledPort, b: CompiledPort): boolean {
  if (a.algorithm !== b.algorithm || a.offset !== b.offset || a.rules.join('\n') !== b.rules.join('\n')) return false;
  for (const s of SETS) {
    const x = a.elements[s.name];
    const y = b.elements[s.name];
    if (x.size !== y.size) return false;
    for (const [k, v] of x) if (y.get(k) !== v) return false;
  }
  return true;
}

/**
 * Compiles a port for a change from `before` (what the kernel holds for it): a port that does not
 * change stays where it is; otherwise its slot table goes to the first range of its slots that
 * holds neither the current table nor stale slots, so the change only adds (a fast transaction).
 * When none is free it goes where only the current table is not (the stale slots in the way are
 * deleted in the same transaction); source affinity always sits at 0 (changed in place).
 */
export function placePort(p: LbPort, before: CompiledPort | undefined, state: LbTableState): CompiledPort {
  checkPort(p);
  const slots = slotTable(p);
  if (isAffinity(p.algorithm)) return compileAt(p, slots, 0);
  if (before && !isAffinity(before.algorithm) && before.offset + slots.length <= PORT_SLOTS) {
    const here = compileAt(p, slots, before.offset);
    if (samePort(here, before)) return here;
  }
  if (!slots.length) return compileAt(p, slots, before && !isAffinity(before.algorithm) ? before.offset : 0);
  const b = base(p.key);
  const live = new Uint8Array(PORT_SLOTS);
  if (before) for (const k of before.elements.backends4.keys()) live[Number(k) - b] = 1;
  const busy = live.slice();
  for (const k of state.staleOf(p.key)) busy[k - b] = 1;
  const at = firstFree(busy, slots.length) ?? firstFree(live, slots.length) ?? 0;
  return compileAt(p, slots, at);
}

function firstFree(busy: Uint8Array, n: number): number | undefined {
  let run = 0;
  for (let i = 0; i < busy.length; i++) {
    run = busy[i] ? 0 : run + 1;
    if (run === n) return i - n + 1;
  }
  return undefined;
}

const elementLine = (k: string, v: string) => (v ? `${k} : ${v}` : k);
/** elements per command: keeps each netlink batch message modest */
const CHUNK = 5000;

/** `delete element` commands (these make nft list the ruleset's chains first). */
function deleteCommands(els: LbElements): string[] {
  const out: string[] = [];
  for (const s of SETS) {
    const keys = [...els[s.name].keys()];
    for (let i = 0; i < keys.length; i += CHUNK) out.push(`delete element inet ${LB_TABLE} ${s.name} { ${keys.slice(i, i + CHUNK).join(', ')} }`);
  }
  return out;
}

/** Element additions as set declarations with elements, which nft applies without listing chains. */
function addCommands(els: LbElements): string[] {
  const out: string[] = [];
  for (const s of SETS) {
    const items = [...els[s.name]].map(([k, v]) => elementLine(k, v));
    for (let i = 0; i < items.length; i += CHUNK)
      out.push(`add ${s.kind} inet ${LB_TABLE} ${s.name} { ${s.decl}; elements = { ${items.slice(i, i + CHUNK).join(', ')} }; }`);
  }
  return out;
}

function chainBlock(c: CompiledPort): string {
  return `  chain ${chainName(c.key)} {\n${c.rules.map((r) => `    ${r}\n`).join('')}  }\n`;
}

/** backends4's declared size for a table of `elements`. */
export function backendsCapacity(elements: number): number {
  let c = MIN_BACKENDS_CAPACITY;
  while (c < 2 * elements) c *= 2;
  return c;
}

/**
 * What the kernel holds besides the ports themselves: backends4's declared size, how many elements
 * it has, and per port the stale slots (backends4 keys no rule reaches any more, not yet deleted).
 * Immutable: a plan gives the state after its transaction, to keep once that transaction applied.
 */
export class LbTableState {
  constructor(
    readonly capacity: number,
    /** backends4 elements, stale ones included */
    readonly count: number,
    private readonly staleByPort: ReadonlyMap<number, readonly number[]> = new Map(),
  ) {}

  /** stale slots in all */
  get stale(): number {
    let n = 0;
    for (const s of this.staleByPort.values()) n += s.length;
    return n;
  }

  staleOf(key: number): readonly number[] {
    return this.staleByPort.get(key) ?? [];
  }

  /** @internal */
  staleMap(): ReadonlyMap<number, readonly number[]> {
    return this.staleByPort;
  }
}

/**
 * The whole table as one transaction script: the table is declared empty, deleted and built
 * again, so the result does not depend on what was there. Chains come before the elements that
 * jump to them. Also the state it leaves (no stale slots).
 */
export function planFull(compiled: CompiledPort[], ranges: string[]): { script: string; state: LbTableState } {
  // the keys of backends4, ports4, identity4 and live4 lie in their port's own slots: no merging needed
  let count = 0;
  const adds: string[] = [];
  for (const s of SETS) {
    // one command per CHUNK elements, each written as soon as it is full (short-lived garbage)
    let chunk: string[] = [];
    let n = 0;
    const flush = () => {
      if (chunk.length) adds.push(`add ${s.kind} inet ${LB_TABLE} ${s.name} { ${s.decl}; elements = { ${chunk.join(', ')} }; }`);
      chunk = [];
    };
    const push = (k: string, v: string) => {
      chunk.push(elementLine(k, v));
      n++;
      if (chunk.length === CHUNK) flush();
    };
    if (s.name === 'services4' || s.name === 'published4') {
      const m = new Map<string, string>();
      for (const c of compiled) portElements(c, s.name, (k, v) => m.set(k, v));
      for (const [k, v] of m) push(k, v);
    } else for (const c of compiled) portElements(c, s.name, push);
    flush();
    if (s.name === 'backends4') count = n;
  }
  const capacity = backendsCapacity(count);
  const decls = SETS.map((s) => `  ${s.kind} ${s.name} {\n    ${s.decl}\n${s.name === 'backends4' ? `    size ${capacity}\n` : ''}  }\n`).join('\n');
  const range = `  set range4 {\n    type ipv4_addr\n    flags interval\n${ranges.length ? `    elements = { ${ranges.join(', ')} }\n` : ''}  }\n`;
  const body = [
    `  comment "weft: service virtual IPs and load balancing (managed by weft, do not edit)"\n`,
    decls,
    range,
    CHAINS,
    ...compiled.map(chainBlock),
  ].join('\n');
  const script = [
    `table inet ${LB_TABLE} {}`,
    `delete table inet ${LB_TABLE}`,
    `table inet ${LB_TABLE} {\n${body}}`,
    ...adds,
    '',
  ].join('\n');
  return { script, state: new LbTableState(capacity, count) };
}

export function fullScript(compiled: CompiledPort[], ranges: string[]): string {
  return planFull(compiled, ranges).script;
}

function mergeInto(into: LbElements, from: LbElements): void {
  for (const s of SETS) {
    const m = into[s.name];
    for (const [k, v] of from[s.name]) m.set(k, v);
  }
}

/** The union of several ports' elements (one service's). */
export function unionElements(ports: CompiledPort[]): LbElements {
  const all = emptyElements();
  for (const p of ports) mergeInto(all, p.elements);
  return all;
}

/** One service's change: its ports as the kernel holds them, and as they should be. */
export interface LbChange {
  before: CompiledPort[];
  after: CompiledPort[];
}

export interface LbPlan {
  script: string;
  /** the state after the transaction */
  state: LbTableState;
  /** the transaction deletes (nft lists the ruleset's chains first: slower) */
  deletes: boolean;
  /** backends4 would exceed its declared size: rewrite the whole table instead */
  overflow: boolean;
}

/**
 * The transaction for some services' changes (either side of a change may be empty): elements to
 * delete first, then chains, then new elements, so nothing ever jumps to a missing chain and
 * connections already tracked are not touched. Elements whose value changed are deleted and added
 * in the same transaction: there is no instant without them.
 *
 * With `defer` (the agent's way), backends4 slots that the port's new rule no longer reaches are
 * not deleted but become stale (see placePort), so a change that only moves slot tables is a
 * transaction without deletes; stale slots go with the next transaction that deletes anyway, or
 * that `collect` asks for, or that would otherwise overflow backends4.
 */
export function planDelta(state: LbTableState, changes: LbChange[], opts: { defer?: boolean; collect?: boolean } = {}): LbPlan {
  const stale = new Map<number, number[]>([...state.staleMap()].map(([k, v]) => [k, [...v]]));
  const gone = emptyElements();
  const added = emptyElements();
  const deleteChains: string[] = [];
  const chainLines: string[] = [];
  let setRules = false;
  for (const { before, after } of changes) {
    const old = unionElements(before);
    const neu = unionElements(after);
    const afterByKey = new Map(after.map((c) => [c.key, c]));
    const beforeByKey = new Map(before.map((c) => [c.key, c]));
    // a slot of a port that is not source-affinity, before or after, is reached only through its own rule
    const deferrable = (mark: string): boolean => {
      const k = keyOf(Number(mark));
      const a = afterByKey.get(k);
      const b = beforeByKey.get(k);
      return !!opts.defer && !!b && !isAffinity(b.algorithm) && (!a || !isAffinity(a.algorithm));
    };
    for (const s of SETS) {
      for (const [k, v] of old[s.name]) {
        if (neu[s.name].get(k) === v) continue;
        if (s.name === 'backends4' && !neu.backends4.has(k) && deferrable(k)) {
          const port = keyOf(Number(k));
          stale.set(port, [...(stale.get(port) ?? []), Number(k)]);
        } else gone[s.name].set(k, v);
      }
      for (const [k, v] of neu[s.name]) if (old[s.name].get(k) !== v) added[s.name].set(k, v);
    }
    for (const c of before) if (!afterByKey.has(c.key)) deleteChains.push(`delete chain inet ${LB_TABLE} ${chainName(c.key)}`);
    for (const c of after) {
      const prev = beforeByKey.get(c.key);
      if (prev && prev.rules.join('\n') === c.rules.join('\n')) continue;
      const name = `inet ${LB_TABLE} ${chainName(c.key)}`;
      chainLines.push(prev ? `flush chain ${name}` : `add chain ${name}`);
      if (!c.rules.length) continue;
      // rules that name a set need nft's set cache: `add rule` reads it (with the chains)
      if (c.rules.some((r) => r.includes('@'))) {
        setRules = true;
        for (const r of c.rules) chainLines.push(`add rule ${name} ${r}`);
      } else {
        if (!prev) chainLines.pop();
        chainLines.push(`add chain ${name} {\n${c.rules.map((r) => `  ${r}\n`).join('')}}`);
      }
    }
  }
  // a new slot on a stale one: the stale one goes first
  for (const k of added.backends4.keys()) {
    const port = keyOf(Number(k));
    const list = stale.get(port);
    const i = list?.indexOf(Number(k)) ?? -1;
    if (i >= 0) {
      list!.splice(i, 1);
      gone.backends4.set(k, '');
    }
  }
  const countAfter = () => state.count - gone.backends4.size + added.backends4.size;
  const deletes = () => SETS.some((s) => gone[s.name].size > 0) || deleteChains.length > 0;
  // nft reads the ruleset anyway (or the caller asks, or backends4 would be full): stale slots go too
  if (opts.collect || deletes() || setRules || countAfter() > state.capacity) {
    for (const [, list] of stale) for (const k of list) gone.backends4.set(String(k), '');
    stale.clear();
  }
  for (const [k, list] of stale) if (!list.length) stale.delete(k);
  const lines = [...deleteCommands(gone), ...deleteChains, ...chainLines, ...addCommands(added)];
  const count = countAfter();
  return {
    script: lines.length ? `${lines.join('\n')}\n` : '',
    state: new LbTableState(state.capacity, count, stale),
    deletes: deletes(),
    overflow: count > state.capacity,
  };
}

/**
 * The transaction that takes one service from `before` to `after` in place (every element that no
 * longer belongs is deleted in it).
 */
export function deltaScript(before: CompiledPort[], after: CompiledPort[]): string {
  return planDelta(new LbTableState(Infinity, 0), [{ before, after }]).script;
}
