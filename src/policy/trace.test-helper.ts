/**
 * A packet tracer for the nftables dialect of the policy table (src/policy/compile.ts) — a test
 * helper, not a test file. It reads the text that renderPolicyTable produces (counters, sets, verdict
 * maps, chains) and evaluates one new packet through the `forward` base chain as the kernel would:
 * rules in order, a rule matches when all its matches do, `accept` ends the hook, `drop` ends the
 * packet, `jump` runs a chain whose `return` (or end) comes back, the base chain's policy at its
 * end. It checks what nft and the kernel check when loading: every set, map, chain and counter that
 * a rule names exists; a lookup's key has the set's type; ranges and prefixes only in interval
 * sets; no duplicate or overlapping elements (nft: "conflicting intervals specified", the kernel:
 * "File exists"). Anything it does not know is a parse error, never a silent match.
 *
 * Knows only: `ct state A,B accept`, `icmpv6 type { ... } accept`, `counter name "N"`, lookups
 * `EXPR @set` and `EXPR vmap @map` where EXPR is `F` or `F . F . ...` of `ip saddr`, `ip daddr`,
 * `ip6 saddr`, `ip6 daddr`, `meta l4proto`, `th dport`; verdicts accept, drop, return, jump C.
 */
import ipaddr from 'ipaddr.js';

export class TraceParseError extends Error {
  override name = 'TraceParseError';
}

type DataType = 'ipv4_addr' | 'ipv6_addr' | 'inet_proto' | 'inet_service';
type Field = 'ip saddr' | 'ip daddr' | 'ip6 saddr' | 'ip6 daddr' | 'meta l4proto' | 'th dport';
const FIELD_TYPE: Record<Field, DataType> = {
  'ip saddr': 'ipv4_addr',
  'ip daddr': 'ipv4_addr',
  'ip6 saddr': 'ipv6_addr',
  'ip6 daddr': 'ipv6_addr',
  'meta l4proto': 'inet_proto',
  'th dport': 'inet_service',
};
const DATA_TYPES: readonly string[] = ['ipv4_addr', 'ipv6_addr', 'inet_proto', 'inet_service'];
const PROTOCOLS: Record<string, number> = { icmp: 1, tcp: 6, udp: 17, 'ipv6-icmp': 58, icmpv6: 58, sctp: 132 };
const ICMPV6_TYPES = new Set([
  'destination-unreachable',
  'packet-too-big',
  'time-exceeded',
  'parameter-problem',
  'echo-request',
  'echo-reply',
  'mld-listener-query',
  'mld-listener-report',
  'mld-listener-done',
  'mld2-listener-report',
  'nd-router-solicit',
  'nd-router-advert',
  'nd-neighbor-solicit',
  'nd-neighbor-advert',
  'nd-redirect',
]);
const CT_STATES = new Set(['new', 'established', 'related', 'invalid', 'untracked']);

type Interval = readonly [bigint, bigint];
export type TraceVerdict = { kind: 'accept' | 'drop' | 'return' } | { kind: 'jump'; chain: string };

export interface SetDecl {
  name: string;
  kind: 'set' | 'map';
  key: DataType[];
  /** a verdict map */
  verdict: boolean;
  interval: boolean;
  elements: Array<{ text: string; key: Interval[]; verdict?: TraceVerdict }>;
}

type Stmt =
  | { kind: 'ct-state'; states: string[] }
  | { kind: 'icmpv6-type'; types: string[] }
  | { kind: 'lookup'; fields: Field[]; set: string }
  | { kind: 'vmap'; fields: Field[]; map: string }
  | { kind: 'counter'; name: string }
  | { kind: 'verdict'; verdict: TraceVerdict };

interface Rule {
  text: string;
  line: number;
  stmts: Stmt[];
}

export interface ChainDecl {
  name: string;
  base?: { hook: string; priority: string; policy: 'accept' | 'drop' };
  rules: Rule[];
}

/** One new packet (conntrack state `new` unless given). */
export interface Packet {
  saddr: string;
  daddr: string;
  /** tcp, udp, sctp, icmp (ICMPv6 for IPv6 addresses) */
  protocol: string;
  dport?: number;
  /** IPv6 ICMP only; default echo-request */
  icmpv6Type?: string;
  ct?: string;
}

export interface Trace {
  verdict: 'accept' | 'drop';
  /** named counters the packet incremented, in order */
  counters: string[];
  /** chains entered, in order */
  chains: string[];
  /** the rules that matched, as text */
  rules: string[];
}

// --------------------------------------------------------------------------------- values

function addrValue(text: string, type: 'ipv4_addr' | 'ipv6_addr', where: string): bigint {
  if (type === 'ipv4_addr') {
    if (!ipaddr.IPv4.isValidFourPartDecimal(text)) throw new TraceParseError(`${where}: ${text} is not an IPv4 address`);
    return ipaddr.IPv4.parse(text).octets.reduce((v, o) => (v << 8n) | BigInt(o), 0n);
  }
  if (!ipaddr.IPv6.isValid(text) || text.includes('.')) throw new TraceParseError(`${where}: ${text} is not an IPv6 address`);
  return ipaddr.IPv6.parse(text).parts.reduce((v, p) => (v << 16n) | BigInt(p), 0n);
}

function scalar(type: DataType, text: string, where: string): bigint {
  switch (type) {
    case 'ipv4_addr':
    case 'ipv6_addr':
      return addrValue(text, type, where);
    case 'inet_proto': {
      if (/^\d+$/.test(text) && Number(text) < 256) return BigInt(text);
      const n = PROTOCOLS[text];
      if (n === undefined) throw new TraceParseError(`${where}: unknown protocol ${text}`);
      return BigInt(n);
    }
    case 'inet_service':
      if (!/^(0|[1-9]\d*)$/.test(text) || Number(text) > 65535) throw new TraceParseError(`${where}: ${text} is not a port`);
      return BigInt(text);
  }
}

/** One key component: a value, `lo-hi`, or (addresses) `addr/len`; `ranged` when it is not one value. */
function component(type: DataType, text: string, where: string): { iv: Interval; ranged: boolean } {
  const slash = text.indexOf('/');
  if (slash >= 0) {
    if (type !== 'ipv4_addr' && type !== 'ipv6_addr') throw new TraceParseError(`${where}: a prefix in a ${type}`);
    const bits = type === 'ipv4_addr' ? 32 : 128;
    const len = Number(text.slice(slash + 1));
    if (!Number.isInteger(len) || len < 0 || len > bits) throw new TraceParseError(`${where}: bad prefix ${text}`);
    const base = addrValue(text.slice(0, slash), type, where);
    const host = (1n << BigInt(bits - len)) - 1n;
    if ((base & host) !== 0n) throw new TraceParseError(`${where}: ${text} has host bits set`);
    return { iv: [base, base | host], ranged: true };
  }
  // a range: the only `-` between two values (IPv6 and protocol names hold no `-` except ipv6-icmp)
  const dash = type === 'inet_proto' ? -1 : text.indexOf('-');
  if (dash >= 0) {
    const lo = scalar(type, text.slice(0, dash), where);
    const hi = scalar(type, text.slice(dash + 1), where);
    if (hi < lo) throw new TraceParseError(`${where}: empty range ${text}`);
    return { iv: [lo, hi], ranged: true };
  }
  const v = scalar(type, text, where);
  return { iv: [v, v], ranged: false };
}

function parseVerdict(text: string, where: string): TraceVerdict {
  const t = text.trim().split(/\s+/);
  if (t.length === 1 && (t[0] === 'accept' || t[0] === 'drop' || t[0] === 'return')) return { kind: t[0] };
  if (t.length === 2 && t[0] === 'jump') return { kind: 'jump', chain: t[1] };
  throw new TraceParseError(`${where}: unknown verdict "${text}"`);
}

// --------------------------------------------------------------------------------- parsing

/** Splits a rule into tokens: words, `"strings"`, and `{ ... }` anonymous sets as one token. */
function tokens(text: string, where: string): string[] {
  const out: string[] = [];
  let i = 0;
  while (i < text.length) {
    const c = text[i];
    if (c === ' ') {
      i++;
    } else if (c === '{' || c === '"') {
      const close = text.indexOf(c === '{' ? '}' : '"', i + 1);
      if (close < 0) throw new TraceParseError(`${where}: unclosed ${c}`);
      out.push(text.slice(i, close + 1));
      i = close + 1;
    } else {
      let j = i;
      while (j < text.length && text[j] !== ' ') j++;
      out.push(text.slice(i, j));
      i = j;
    }
  }
  return out;
}

function parseRule(text: string, line: number): Rule {
  const where = `line ${line} "${text}"`;
  const t = tokens(text, where);
  const stmts: Stmt[] = [];
  let i = 0;
  const fieldAt = (k: number): Field | undefined => {
    const f = `${t[k]} ${t[k + 1]}`;
    return f in FIELD_TYPE ? (f as Field) : undefined;
  };
  while (i < t.length) {
    const w = t[i];
    if (w === 'ct' && t[i + 1] === 'state') {
      const states = (t[i + 2] ?? '').split(',');
      for (const s of states) if (!CT_STATES.has(s)) throw new TraceParseError(`${where}: unknown ct state ${s}`);
      stmts.push({ kind: 'ct-state', states });
      i += 3;
    } else if (w === 'icmpv6' && t[i + 1] === 'type') {
      const v = t[i + 2] ?? '';
      const types = v.startsWith('{') ? v.slice(1, -1).split(',').map((s) => s.trim()) : [v];
      for (const s of types) if (!ICMPV6_TYPES.has(s)) throw new TraceParseError(`${where}: unknown icmpv6 type ${s}`);
      stmts.push({ kind: 'icmpv6-type', types });
      i += 3;
    } else if (w === 'counter') {
      if (t[i + 1] !== 'name' || !/^"[^"]+"$/.test(t[i + 2] ?? '')) throw new TraceParseError(`${where}: only named counters are known`);
      stmts.push({ kind: 'counter', name: t[i + 2].slice(1, -1) });
      i += 3;
    } else if (w === 'accept' || w === 'drop' || w === 'return') {
      stmts.push({ kind: 'verdict', verdict: { kind: w } });
      i += 1;
    } else if (w === 'jump') {
      if (!t[i + 1]) throw new TraceParseError(`${where}: jump where?`);
      stmts.push({ kind: 'verdict', verdict: { kind: 'jump', chain: t[i + 1] } });
      i += 2;
    } else if (fieldAt(i)) {
      const fields: Field[] = [fieldAt(i)!];
      i += 2;
      while (t[i] === '.') {
        const f = fieldAt(i + 1);
        if (!f) throw new TraceParseError(`${where}: unknown expression after "."`);
        fields.push(f);
        i += 3;
      }
      if (t[i] === 'vmap' && t[i + 1]?.startsWith('@')) {
        stmts.push({ kind: 'vmap', fields, map: t[i + 1].slice(1) });
        i += 2;
      } else if (t[i]?.startsWith('@')) {
        stmts.push({ kind: 'lookup', fields, set: t[i].slice(1) });
        i += 1;
      } else {
        throw new TraceParseError(`${where}: only set and map lookups are known, not "${t[i] ?? ''}"`);
      }
    } else {
      throw new TraceParseError(`${where}: unknown statement "${w}"`);
    }
  }
  const last = stmts.findIndex((s) => s.kind === 'verdict');
  if (last >= 0 && last !== stmts.length - 1) throw new TraceParseError(`${where}: statements after a verdict`);
  if (!stmts.length) throw new TraceParseError(`${where}: empty rule`);
  return { text, line, stmts };
}

function boxesOverlap(a: Interval[], b: Interval[]): boolean {
  return a.every((x, i) => x[0] <= b[i][1] && b[i][0] <= x[1]);
}

function parseElements(decl: SetDecl, body: string, line: number): void {
  const where = `line ${line} (${decl.kind} ${decl.name})`;
  const parts = body.split(',').map((s) => s.trim());
  if (parts.some((p) => p === '')) throw new TraceParseError(`${where}: empty element`);
  for (const text of parts) {
    let keyText = text;
    let verdict: TraceVerdict | undefined;
    if (decl.verdict) {
      const at = text.indexOf(' : ');
      if (at < 0) throw new TraceParseError(`${where}: map element without a verdict: ${text}`);
      keyText = text.slice(0, at);
      verdict = parseVerdict(text.slice(at + 3), where);
    }
    const comps = keyText.split(' . ');
    if (comps.length !== decl.key.length) throw new TraceParseError(`${where}: element ${text} does not have the type ${decl.key.join(' . ')}`);
    const key: Interval[] = [];
    for (let k = 0; k < comps.length; k++) {
      const { iv, ranged } = component(decl.key[k], comps[k], where);
      if (ranged && !decl.interval) {
        throw new TraceParseError(`${where}: ${text}: you must add 'flags interval' to your set declaration if you want to add range elements`);
      }
      key.push(iv);
    }
    for (const other of decl.elements) {
      const same = other.key.every((iv, k) => iv[0] === key[k][0] && iv[1] === key[k][1]);
      if (same) throw new TraceParseError(`${where}: duplicate element ${text} (File exists)`);
      if (boxesOverlap(other.key, key)) {
        throw new TraceParseError(`${where}: elements ${other.text} and ${text} overlap (conflicting intervals / File exists)`);
      }
    }
    decl.elements.push({ text, key, verdict });
  }
}

export class PolicyTable {
  readonly sets = new Map<string, SetDecl>();
  readonly chains = new Map<string, ChainDecl>();
  /** counter name -> value it was declared with */
  readonly counters = new Map<string, { packets: number; bytes: number }>();
  comment?: string;

  /**
   * Parses a table body as renderPolicyTable writes it. `counters: false` accepts a body without
   * counter declarations (compilePolicies' body alone).
   */
  static parse(text: string, opts: { counters?: boolean } = {}): PolicyTable {
    const t = new PolicyTable();
    const lines = text.split('\n');
    let i = 0;
    const fail = (msg: string): never => {
      throw new TraceParseError(`line ${i + 1}: ${msg}: "${lines[i]}"`);
    };
    while (i < lines.length) {
      const l = lines[i].trim();
      let m: RegExpExecArray | null;
      if (l === '') {
        i++;
      } else if ((m = /^comment "([^"]*)"$/.exec(l))) {
        t.comment = m[1];
        i++;
      } else if ((m = /^counter (\S+) \{$/.exec(l))) {
        const name = m[1];
        if (t.counters.has(name)) fail('counter declared twice');
        i++;
        const v = /^packets (\d+) bytes (\d+)$/.exec(lines[i]?.trim() ?? '');
        if (!v) fail('expected "packets N bytes M"');
        t.counters.set(name, { packets: Number(v![1]), bytes: Number(v![2]) });
        i++;
        if (lines[i]?.trim() !== '}') fail('expected }');
        i++;
      } else if ((m = /^(set|map) (\S+) \{$/.exec(l))) {
        const decl: SetDecl = { name: m[2], kind: m[1] as 'set' | 'map', key: [], verdict: false, interval: false, elements: [] };
        if (t.sets.has(decl.name)) fail('set declared twice');
        i++;
        let typed = false;
        while (lines[i]?.trim() !== '}') {
          if (i >= lines.length) fail('unclosed set');
          const s = lines[i].trim();
          let n: RegExpExecArray | null;
          if ((n = /^type (.+)$/.exec(s))) {
            let type = n[1];
            if (decl.kind === 'map') {
              if (!type.endsWith(' : verdict')) fail('only verdict maps are known');
              decl.verdict = true;
              type = type.slice(0, -' : verdict'.length);
            }
            decl.key = type.split(' . ').map((x) => {
              if (!DATA_TYPES.includes(x)) fail(`unknown type ${x}`);
              return x as DataType;
            });
            typed = true;
          } else if (s === 'flags interval') {
            if (decl.elements.length) fail('flags after elements');
            decl.interval = true;
          } else if ((n = /^elements = \{ (.*) \}$/.exec(s))) {
            if (!typed) fail('elements before type');
            parseElements(decl, n[1], i + 1);
          } else {
            fail('unknown set line');
          }
          i++;
        }
        if (!typed) fail('set without type');
        t.sets.set(decl.name, decl);
        i++;
      } else if ((m = /^chain (\S+) \{$/.exec(l))) {
        const chain: ChainDecl = { name: m[1], rules: [] };
        if (t.chains.has(chain.name)) fail('chain declared twice');
        i++;
        while (lines[i]?.trim() !== '}') {
          if (i >= lines.length) fail('unclosed chain');
          const s = lines[i].trim();
          const b = /^type filter hook (\w+) priority ([^;]+); policy (accept|drop);$/.exec(s);
          if (b) {
            if (chain.rules.length || chain.base) fail('base chain declaration must come first');
            chain.base = { hook: b[1], priority: b[2], policy: b[3] as 'accept' | 'drop' };
          } else if (s !== '') {
            chain.rules.push(parseRule(s, i + 1));
          }
          i++;
        }
        t.chains.set(chain.name, chain);
        i++;
      } else {
        fail('unknown declaration');
      }
    }
    t.check(opts.counters ?? true);
    return t;
  }

  /** What nft checks when it loads the table: names resolve and types agree. */
  private check(counters: boolean): void {
    for (const c of this.chains.values()) {
      for (const r of c.rules) {
        const where = `chain ${c.name}, line ${r.line} "${r.text}"`;
        for (const s of r.stmts) {
          if (s.kind === 'lookup' || s.kind === 'vmap') {
            const name = s.kind === 'lookup' ? s.set : s.map;
            const decl = this.sets.get(name);
            if (!decl) throw new TraceParseError(`${where}: no set or map ${name}`);
            if (s.kind === 'vmap' && !decl.verdict) throw new TraceParseError(`${where}: ${name} is not a verdict map`);
            if (s.kind === 'lookup' && decl.verdict) throw new TraceParseError(`${where}: ${name} is a map, not a set`);
            const want = s.fields.map((f) => FIELD_TYPE[f]).join(' . ');
            if (want !== decl.key.join(' . ')) throw new TraceParseError(`${where}: datatype mismatch: ${want} against ${decl.key.join(' . ')}`);
            for (const e of decl.elements) if (e.verdict?.kind === 'jump') this.checkJump(e.verdict.chain, where);
          } else if (s.kind === 'counter') {
            if (counters && !this.counters.has(s.name)) throw new TraceParseError(`${where}: no counter ${s.name}`);
          } else if (s.kind === 'verdict' && s.verdict.kind === 'jump') {
            this.checkJump(s.verdict.chain, where);
          }
        }
      }
    }
  }

  private checkJump(chain: string, where: string): void {
    const target = this.chains.get(chain);
    if (!target) throw new TraceParseError(`${where}: no chain ${chain}`);
    if (target.base) throw new TraceParseError(`${where}: cannot jump to base chain ${chain}`);
  }

  /** Every element of every set and map. */
  elementCount(): number {
    let n = 0;
    for (const s of this.sets.values()) n += s.elements.length;
    return n;
  }

  /** Traces one packet through the forward hook. */
  trace(p: Packet): Trace {
    const v4 = ipaddr.IPv4.isValidFourPartDecimal(p.saddr);
    if (v4 !== ipaddr.IPv4.isValidFourPartDecimal(p.daddr)) throw new Error(`mixed families: ${p.saddr} -> ${p.daddr}`);
    const addrType = v4 ? 'ipv4_addr' : 'ipv6_addr';
    const saddr = addrValue(p.saddr, addrType, 'packet');
    const daddr = addrValue(p.daddr, addrType, 'packet');
    const protoName = p.protocol === 'icmp' && !v4 ? 'ipv6-icmp' : p.protocol;
    const l4 = PROTOCOLS[protoName];
    if (l4 === undefined) throw new Error(`unknown protocol ${p.protocol}`);
    const hasPorts = l4 === 6 || l4 === 17 || l4 === 132;
    if (hasPorts !== (p.dport !== undefined)) throw new Error(`${p.protocol} ${hasPorts ? 'needs' : 'has no'} a port`);
    const ct = p.ct ?? 'new';
    const icmpv6Type = l4 === 58 ? (p.icmpv6Type ?? 'echo-request') : undefined;

    // a field's value, or undefined when the packet has none (the match then fails, as the
    // kernel's implicit `meta nfproto` / `meta l4proto` dependency does)
    const value = (f: Field): bigint | undefined => {
      switch (f) {
        case 'ip saddr':
          return v4 ? saddr : undefined;
        case 'ip daddr':
          return v4 ? daddr : undefined;
        case 'ip6 saddr':
          return v4 ? undefined : saddr;
        case 'ip6 daddr':
          return v4 ? undefined : daddr;
        case 'meta l4proto':
          return BigInt(l4);
        case 'th dport':
          return p.dport === undefined ? undefined : BigInt(p.dport);
      }
    };
    const find = (fields: Field[], set: SetDecl) => {
      const key = fields.map(value);
      if (key.some((k) => k === undefined)) return undefined;
      return set.elements.find((e) => e.key.every((iv, k) => iv[0] <= key[k]! && key[k]! <= iv[1]));
    };

    const out: Trace = { verdict: 'accept', counters: [], chains: [], rules: [] };
    const run = (chain: ChainDecl, depth: number): 'accept' | 'drop' | 'continue' => {
      if (depth > 16) throw new Error('jump loop');
      out.chains.push(chain.name);
      for (const r of chain.rules) {
        let matched = true;
        let verdict: TraceVerdict | undefined;
        for (const s of r.stmts) {
          if (s.kind === 'ct-state') matched = s.states.includes(ct);
          else if (s.kind === 'icmpv6-type') matched = icmpv6Type !== undefined && s.types.includes(icmpv6Type);
          else if (s.kind === 'lookup') matched = find(s.fields, this.sets.get(s.set)!) !== undefined;
          else if (s.kind === 'vmap') {
            const e = find(s.fields, this.sets.get(s.map)!);
            matched = e !== undefined;
            verdict = e?.verdict;
          } else if (s.kind === 'counter') out.counters.push(s.name); // counts when reached, as the kernel does
          else verdict = s.verdict;
          if (!matched) break;
        }
        if (!matched) continue;
        out.rules.push(r.text);
        if (!verdict) continue;
        if (verdict.kind === 'jump') {
          // the jumped-to chain's return (or end) comes back here, to the next rule
          const r2 = run(this.chains.get(verdict.chain)!, depth + 1);
          if (r2 !== 'continue') return r2;
          continue;
        }
        if (verdict.kind === 'return') {
          if (chain.base) throw new Error(`return in base chain ${chain.name}`);
          return 'continue';
        }
        return verdict.kind;
      }
      return 'continue';
    };
    const bases = [...this.chains.values()].filter((c) => c.base?.hook === 'forward');
    if (bases.length !== 1) throw new Error(`expected one forward base chain, found ${bases.length}`);
    const r = run(bases[0], 0);
    out.verdict = r === 'continue' ? bases[0].base!.policy : r;
    return out;
  }
}
