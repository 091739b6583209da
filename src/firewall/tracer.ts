/**
 * A small packet tracer for the nftables dialect the firewall compiler writes: it parses the text
 * (tables, sets, maps, chains, `add/delete element` commands) and evaluates packets through the
 * base chains of each hook the way the kernel does: chains in priority order, accept ends a base
 * chain, drop ends the packet, jump/return, verdict maps, set lookups, interval sets, dnat through
 * maps, masquerade. NAT chains see only the first packet of a connection (ct state new).
 *
 * It evaluates the generated text, not the model, so a unit test that traces a packet tests what the
 * kernel will load. It knows only the expressions listed in FIELDS; anything else is a parse error,
 * never a silent match. It does not model routing: the caller gives a HostEnv.
 */
import ipaddr from 'ipaddr.js';

export type Verdict = 'accept' | 'drop';

type FieldType =
  | 'ifname'
  | 'ether_addr'
  | 'ether_type'
  | 'ipv4_addr'
  | 'ipv6_addr'
  | 'inet_proto'
  | 'inet_service'
  | 'nfproto'
  | 'ct_state'
  | 'ct_status'
  | 'fib_addrtype'
  | 'icmpv6_type'
  | 'integer'
  | 'verdict';

/** The expressions the tracer understands (multi-word names are matched longest first). */
const FIELDS: Record<string, FieldType> = {
  iifname: 'ifname',
  oifname: 'ifname',
  'ether saddr': 'ether_addr',
  'ether type': 'ether_type',
  'arp htype': 'integer',
  'arp ptype': 'ether_type',
  'arp hlen': 'integer',
  'arp plen': 'integer',
  'arp saddr ether': 'ether_addr',
  'arp saddr ip': 'ipv4_addr',
  'ip saddr': 'ipv4_addr',
  'ip daddr': 'ipv4_addr',
  'ip6 saddr': 'ipv6_addr',
  'ip6 daddr': 'ipv6_addr',
  'meta l4proto': 'inet_proto',
  'meta nfproto': 'nfproto',
  'th dport': 'inet_service',
  'ct state': 'ct_state',
  'ct status': 'ct_status',
  'fib daddr type': 'fib_addrtype',
  'icmpv6 type': 'icmpv6_type',
  '@th,64,128': 'integer',
};

/** `typeof` expressions -> data types. */
const TYPEOF: Record<string, FieldType> = { iifname: 'ifname', oifname: 'ifname', '@th,64,128': 'integer' };

const TYPE_NAMES: Record<string, FieldType> = {
  ifname: 'ifname',
  ether_addr: 'ether_addr',
  ipv4_addr: 'ipv4_addr',
  ipv6_addr: 'ipv6_addr',
  inet_proto: 'inet_proto',
  inet_service: 'inet_service',
  verdict: 'verdict',
  integer: 'integer',
};

const PROTO_NUMBERS: Record<string, string> = { '1': 'icmp', '6': 'tcp', '17': 'udp', '58': 'ipv6-icmp' };
const ETHER_TYPES: Record<string, string> = { vlan: '8021q', '0x0800': 'ip', '0x0806': 'arp', '0x86dd': 'ip6', '0x8100': '8021q', '0x88a8': '8021ad' };

export class TraceParseError extends Error {}

/** Canonical form of a value of a type, or a prefix "addr/len" for address types. */
function canon(type: FieldType, raw: string): string {
  let v = raw;
  if (v.startsWith('"') && v.endsWith('"')) v = v.slice(1, -1);
  switch (type) {
    case 'ifname':
    case 'verdict':
    case 'ct_state':
    case 'ct_status':
    case 'fib_addrtype':
    case 'nfproto':
    case 'icmpv6_type':
      return v;
    case 'ether_addr':
      return v.toLowerCase();
    case 'ether_type':
      return ETHER_TYPES[v] ?? v;
    case 'inet_proto':
      return PROTO_NUMBERS[v] ?? v;
    case 'inet_service':
      if (!/^\d+$/.test(v)) throw new TraceParseError(`not a port number: ${raw}`);
      return String(Number(v));
    case 'integer':
      return `0x${BigInt(v).toString(16)}`;
    case 'ipv4_addr':
    case 'ipv6_addr': {
      const [a, len] = v.split('/');
      const parsed = ipaddr.parse(a);
      if ((parsed.kind() === 'ipv4') !== (type === 'ipv4_addr')) throw new TraceParseError(`${raw} is not of type ${type}`);
      return len === undefined ? parsed.toString() : `${parsed.toString()}/${Number(len)}`;
    }
  }
}

/** value (canonical) equals or is inside pattern (canonical; may be a prefix). */
function valueMatches(type: FieldType, value: string, pattern: string): boolean {
  if ((type === 'ipv4_addr' || type === 'ipv6_addr') && pattern.includes('/')) {
    const [net, len] = pattern.split('/');
    const a = ipaddr.parse(value);
    const n = ipaddr.parse(net);
    return a.kind() === n.kind() && a.match(n, Number(len));
  }
  return value === pattern;
}

interface Element {
  key: string[];
  data?: string[];
}

interface NftSet {
  name: string;
  keyTypes: FieldType[];
  dataTypes?: FieldType[];
  interval: boolean;
  elements: Element[];
}

type Stmt =
  | { kind: 'verdict'; verdict: 'accept' | 'drop' | 'return' }
  | { kind: 'jump'; chain: string }
  | { kind: 'masquerade' }
  | { kind: 'dnat'; family: 4 | 6; key: string[]; map: string }
  | { kind: 'vmap'; key: string[]; set?: string; inline?: Element[] };

interface Match {
  fields: string[];
  negate: boolean;
  set?: string;
  values?: string[];
}

interface Rule {
  text: string;
  matches: Match[];
  stmt?: Stmt;
}

interface BaseHook {
  type: 'filter' | 'nat';
  hook: string;
  priority: number;
  policy: Verdict;
}

interface Chain {
  name: string;
  base?: BaseHook;
  rules: Rule[];
}

interface Table {
  family: string;
  name: string;
  sets: Map<string, NftSet>;
  chains: Map<string, Chain>;
}

// ---- tokenizing ----

function tokenize(text: string): string[] {
  const out: string[] = [];
  const re = /@th,\d+,\d+|"[^"]*"|[{},;]|[^\s{},;"]+/g;
  for (const m of text.matchAll(re)) out.push(m[0]);
  return out;
}

/** Splits `a, b, c` at top-level commas. */
function splitElements(text: string): string[] {
  return text
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

function parseElement(text: string, set: NftSet): Element {
  const [k, d] = text.split(' : ');
  const keyParts = k.trim().split(' . ');
  if (keyParts.length !== set.keyTypes.length) throw new TraceParseError(`element "${text}" does not fit set ${set.name}`);
  const el: Element = { key: keyParts.map((p, i) => canon(set.keyTypes[i], p.trim())) };
  if (set.dataTypes) {
    if (d === undefined) throw new TraceParseError(`element "${text}" of map ${set.name} has no value`);
    const dataParts = set.dataTypes[0] === 'verdict' ? [d.trim()] : d.trim().split(' . ');
    el.data = dataParts.map((p, i) => canon(set.dataTypes![i], p.trim()));
  }
  return el;
}

const sameKey = (a: Element, b: Element) => a.key.length === b.key.length && a.key.every((x, i) => x === b.key[i]);
const sameData = (a: Element, b: Element) => (a.data ?? []).join(' . ') === (b.data ?? []).join(' . ');

function parseTypes(line: string): { keyTypes: FieldType[]; dataTypes?: FieldType[] } {
  const typeofMode = line.startsWith('typeof ');
  const rest = line.replace(/^typeof |^type /, '');
  const [k, d] = rest.split(' : ');
  const conv = (s: string): FieldType => {
    const t = typeofMode ? TYPEOF[s] : TYPE_NAMES[s];
    if (!t) throw new TraceParseError(`unknown set type "${s}"`);
    return t;
  };
  return {
    keyTypes: k.split(' . ').map((s) => conv(s.trim())),
    dataTypes: d === undefined ? undefined : d.split(' . ').map((s) => (s.trim() === 'verdict' ? 'verdict' : conv(s.trim()))),
  };
}

const PRIORITIES: Record<string, number> = { raw: -300, mangle: -150, dstnat: -100, filter: 0, security: 50, srcnat: 100 };

function parseHook(line: string): BaseHook {
  const m = /^type (filter|nat) hook (\w+) priority (-?\d+|\w+); policy (accept|drop);$/.exec(line);
  if (!m) throw new TraceParseError(`cannot parse base chain line "${line}"`);
  const priority = /^-?\d+$/.test(m[3]) ? Number(m[3]) : PRIORITIES[m[3]];
  if (priority === undefined) throw new TraceParseError(`unknown priority ${m[3]}`);
  return { type: m[1] as 'filter' | 'nat', hook: m[2], priority, policy: m[4] as Verdict };
}

function fieldAt(tokens: string[], i: number): [string, number] | undefined {
  for (const n of [3, 2, 1]) {
    const name = tokens.slice(i, i + n).join(' ');
    if (FIELDS[name]) return [name, i + n];
  }
  return undefined;
}

function parseRule(text: string): Rule {
  const t = tokenize(text);
  const rule: Rule = { text, matches: [] };
  let i = 0;
  const fail = (why: string): never => {
    throw new TraceParseError(`cannot parse rule "${text}": ${why} at token ${i} (${t[i] ?? 'end'})`);
  };
  const selector = (): string[] => {
    const fields: string[] = [];
    for (;;) {
      const f = fieldAt(t, i);
      if (!f) fail('expected an expression');
      const [name, next] = f!;
      fields.push(name);
      i = next;
      if (t[i] !== '.') return fields;
      i++;
    }
  };
  const inlineElements = (keyTypes: FieldType[], dataTypes?: FieldType[]): Element[] => {
    if (t[i] !== '{') fail('expected {');
    const end = t.indexOf('}', i);
    if (end < 0) fail('unclosed {');
    const body = t.slice(i + 1, end).join(' ');
    i = end + 1;
    const set: NftSet = { name: '(anonymous)', keyTypes, dataTypes, interval: false, elements: [] };
    return body
      .split(' , ')
      .map((s) => s.trim())
      .filter(Boolean)
      .map((s) => parseElement(s, set));
  };
  while (i < t.length) {
    const w = t[i];
    if (rule.stmt) fail('statement after a terminal statement');
    if (w === 'counter') {
      i++;
    } else if (w === 'accept' || w === 'drop' || w === 'return') {
      rule.stmt = { kind: 'verdict', verdict: w };
      i++;
    } else if (w === 'jump') {
      rule.stmt = { kind: 'jump', chain: t[i + 1] ?? fail('jump to where?') };
      i += 2;
    } else if (w === 'masquerade') {
      rule.stmt = { kind: 'masquerade' };
      i++;
    } else if (w === 'dnat') {
      const fam = t[i + 1] === 'ip' ? 4 : t[i + 1] === 'ip6' ? 6 : fail('dnat needs ip or ip6');
      i += 2;
      if (t[i] === 'addr' && t[i + 1] === '.' && t[i + 2] === 'port') i += 3;
      if (t[i++] !== 'to') fail('expected to');
      const key = selector();
      if (t[i++] !== 'map' || !t[i]?.startsWith('@')) fail('expected map @name');
      rule.stmt = { kind: 'dnat', family: fam as 4 | 6, key, map: t[i++].slice(1) };
    } else {
      const fields = selector();
      if (t[i] === 'vmap') {
        i++;
        if (t[i]?.startsWith('@')) rule.stmt = { kind: 'vmap', key: fields, set: t[i++].slice(1) };
        else rule.stmt = { kind: 'vmap', key: fields, inline: inlineElements(fields.map((f) => FIELDS[f]), ['verdict']) };
        continue;
      }
      const negate = t[i] === '!=';
      if (negate) i++;
      if (t[i]?.startsWith('@')) {
        rule.matches.push({ fields, negate, set: t[i++].slice(1) });
      } else if (t[i] === '{') {
        if (fields.length !== 1) fail('anonymous concatenated sets are not supported');
        const els = inlineElements([FIELDS[fields[0]]]);
        rule.matches.push({ fields, negate, values: els.map((e) => e.key[0]) });
      } else {
        if (fields.length !== 1) fail('a concatenation needs a set');
        const values: string[] = [];
        for (;;) {
          const v = t[i] ?? fail('expected a value');
          values.push(canon(FIELDS[fields[0]], v));
          i++;
          if (t[i] !== ',') break;
          i++;
        }
        rule.matches.push({ fields, negate, values });
      }
    }
  }
  return rule;
}

// ---- the ruleset ----

/** The packet as the tracer sees it: field name (see FIELDS) -> canonical value. */
export type Fields = Record<string, string>;

export interface TraceStep {
  table: string;
  chain: string;
  rule?: string;
  verdict?: string;
}

export class Ruleset {
  private tables = new Map<string, Table>();

  /** Applies an nft script (tables, `add/delete element`) atomically: on error nothing changes. */
  apply(script: string): this {
    const backup = this.clone();
    try {
      this.applyUnsafe(script);
    } catch (e) {
      this.tables = backup;
      throw e;
    }
    return this;
  }

  table(family: string, name: string): Table | undefined {
    return this.tables.get(`${family} ${name}`);
  }

  /** Elements of a set as canonical strings "k1 . k2 : d1 . d2" (for assertions). */
  elements(family: string, table: string, set: string): string[] {
    const s = this.table(family, table)?.sets.get(set);
    if (!s) throw new Error(`no set ${family} ${table} ${set}`);
    return s.elements.map((e) => e.key.join(' . ') + (e.data ? ` : ${e.data.join(' . ')}` : '')).sort();
  }

  private clone(): Map<string, Table> {
    const out = new Map<string, Table>();
    for (const [k, t] of this.tables) {
      const sets = new Map<string, NftSet>();
      for (const [n, s] of t.sets) sets.set(n, { ...s, elements: s.elements.map((e) => ({ ...e })) });
      out.set(k, { ...t, sets, chains: new Map(t.chains) });
    }
    return out;
  }

  private applyUnsafe(script: string): void {
    const lines = script.split('\n');
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i].trim();
      if (!line || line.startsWith('#')) continue;
      let m: RegExpExecArray | null;
      if ((m = /^table (\w+) ([\w.-]+) \{\}$/.exec(line))) {
        this.ensureTable(m[1], m[2]);
      } else if ((m = /^table (\w+) ([\w.-]+) \{$/.exec(line))) {
        let depth = 1;
        const body: string[] = [];
        for (i++; i < lines.length; i++) {
          depth += (lines[i].match(/\{/g) ?? []).length - (lines[i].match(/\}/g) ?? []).length;
          if (depth === 0) break;
          body.push(lines[i]);
        }
        if (depth !== 0) throw new TraceParseError(`table ${m[1]} ${m[2]} is not closed`);
        this.loadBody(this.ensureTable(m[1], m[2]), body);
      } else if ((m = /^delete table (\w+) ([\w.-]+)$/.exec(line))) {
        if (!this.tables.delete(`${m[1]} ${m[2]}`)) throw new TraceParseError(`delete table ${m[1]} ${m[2]}: No such file or directory`);
      } else if ((m = /^(add|delete) element (\w+) ([\w.-]+) ([\w.-]+) \{ (.*) \}$/.exec(line))) {
        const set = this.table(m[2], m[3])?.sets.get(m[4]);
        if (!set) throw new TraceParseError(`${m[1]} element: no set ${m[2]} ${m[3]} ${m[4]}`);
        for (const text of splitElements(m[5])) {
          const el = parseElement(text, set);
          const at = set.elements.findIndex((e) => sameKey(e, el));
          if (m[1] === 'add') {
            if (at < 0) set.elements.push(el);
            else if (!sameData(set.elements[at], el)) throw new TraceParseError(`add element ${text}: File exists`);
          } else {
            if (at < 0) throw new TraceParseError(`delete element ${text}: No such file or directory`);
            set.elements.splice(at, 1);
          }
        }
      } else {
        throw new TraceParseError(`cannot parse command "${line}"`);
      }
    }
  }

  private ensureTable(family: string, name: string): Table {
    const key = `${family} ${name}`;
    let t = this.tables.get(key);
    if (!t) this.tables.set(key, (t = { family, name, sets: new Map(), chains: new Map() }));
    return t;
  }

  private loadBody(table: Table, lines: string[]): void {
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i].trim();
      if (!line || line.startsWith('comment ')) continue;
      const m = /^(set|map|chain) ([\w.-]+) \{$/.exec(line);
      if (!m) throw new TraceParseError(`cannot parse "${line}" in table ${table.family} ${table.name}`);
      const inner: string[] = [];
      let depth = 1;
      for (i++; i < lines.length; i++) {
        depth += (lines[i].match(/\{/g) ?? []).length - (lines[i].match(/\}/g) ?? []).length;
        if (depth === 0) break;
        inner.push(lines[i].trim());
      }
      if (depth !== 0) throw new TraceParseError(`${m[1]} ${m[2]} is not closed`);
      if (m[1] === 'chain') {
        if (table.chains.has(m[2])) throw new TraceParseError(`chain ${m[2]} defined twice`);
        const chain: Chain = { name: m[2], rules: [] };
        for (const l of inner) {
          if (!l) continue;
          if (l.startsWith('type ')) chain.base = parseHook(l);
          else chain.rules.push(parseRule(l));
        }
        table.chains.set(m[2], chain);
      } else {
        const typeLine = inner.find((l) => l.startsWith('type ') || l.startsWith('typeof '));
        if (!typeLine) throw new TraceParseError(`set ${m[2]} has no type`);
        const types = parseTypes(typeLine);
        if ((m[1] === 'map') !== (types.dataTypes !== undefined)) throw new TraceParseError(`${m[1]} ${m[2]}: wrong kind for its type`);
        const set: NftSet = { name: m[2], ...types, interval: inner.includes('flags interval'), elements: [] };
        let start = inner.findIndex((l) => l.startsWith('elements = {'));
        if (start >= 0) {
          const text = inner.slice(start).join(' ').replace(/^elements = \{/, '').replace(/\}$/, '');
          for (const e of splitElements(text)) set.elements.push(parseElement(e, set));
        } else start = inner.length;
        for (const l of inner.slice(0, start)) {
          if (l && l !== typeLine && l !== 'flags interval') throw new TraceParseError(`set ${m[2]}: cannot parse "${l}"`);
        }
        table.sets.set(m[2], set);
      }
    }
  }

  /**
   * Runs a packet through every base chain of `hook` in tables of `families`, lowest priority
   * first. `mutate` lets NAT statements change the packet. Returns the verdict of the hook.
   */
  runHook(families: string[], hook: string, type: 'filter' | 'nat', pkt: Fields, env: NatEnv, steps: TraceStep[]): Verdict {
    const chains: [Table, Chain][] = [];
    for (const t of this.tables.values()) {
      if (!families.includes(t.family)) continue;
      for (const c of t.chains.values()) if (c.base && c.base.hook === hook && c.base.type === type) chains.push([t, c]);
    }
    chains.sort((a, b) => a[1].base!.priority - b[1].base!.priority);
    for (const [t, c] of chains) {
      const v = this.runChain(t, c, pkt, env, steps, 0);
      const verdict = v === 'continue' ? c.base!.policy : v;
      steps.push({ table: `${t.family} ${t.name}`, chain: c.name, verdict });
      if (verdict === 'drop') return 'drop';
    }
    return 'accept';
  }

  private runChain(t: Table, c: Chain, pkt: Fields, env: NatEnv, steps: TraceStep[], depth: number): Verdict | 'continue' {
    if (depth > 16) throw new Error(`jump loop at ${c.name}`);
    for (const rule of c.rules) {
      if (!rule.matches.every((m) => this.matches(t, m, pkt))) continue;
      const s = rule.stmt;
      if (!s) continue;
      const step = (verdict?: string) => steps.push({ table: `${t.family} ${t.name}`, chain: c.name, rule: rule.text, verdict });
      switch (s.kind) {
        case 'verdict':
          step(s.verdict);
          if (s.verdict === 'return') return 'continue';
          return s.verdict;
        case 'jump': {
          const target = t.chains.get(s.chain);
          if (!target) throw new Error(`jump to missing chain ${s.chain}`);
          step(`jump ${s.chain}`);
          const v = this.runChain(t, target, pkt, env, steps, depth + 1);
          if (v !== 'continue') return v;
          break;
        }
        case 'vmap': {
          const key = s.key.map((f) => pkt[f]);
          if (key.some((k) => k === undefined)) break;
          const els = s.set ? this.set(t, s.set).elements : s.inline!;
          const types = s.key.map((f) => FIELDS[f]);
          const hit = els.find((e) => e.key.every((p, i) => valueMatches(types[i], key[i], p)));
          if (!hit) break;
          const v = hit.data![0];
          step(v);
          if (v === 'accept' || v === 'drop') return v;
          if (v === 'return') return 'continue';
          const jm = /^jump (.+)$/.exec(v);
          if (!jm) throw new Error(`unsupported verdict ${v}`);
          const target = t.chains.get(jm[1]);
          if (!target) throw new Error(`jump to missing chain ${jm[1]}`);
          const r = this.runChain(t, target, pkt, env, steps, depth + 1);
          if (r !== 'continue') return r;
          break;
        }
        case 'dnat': {
          const want = s.family === 4 ? 'ipv4' : 'ipv6';
          if (pkt['meta nfproto'] !== want) break;
          const key = s.key.map((f) => pkt[f]);
          if (key.some((k) => k === undefined)) break;
          const map = this.set(t, s.map);
          const hit = map.elements.find((e) => e.key.every((p, i) => valueMatches(map.keyTypes[i], key[i], p)));
          if (!hit) break;
          const [addr, port] = hit.data!;
          pkt[s.family === 4 ? 'ip daddr' : 'ip6 daddr'] = addr;
          if (port !== undefined) pkt['th dport'] = port;
          pkt['ct status'] = 'dnat';
          step(`dnat to ${addr}${port ? ` port ${port}` : ''}`);
          return 'accept';
        }
        case 'masquerade': {
          const fam = pkt['meta nfproto'] === 'ipv4' ? 4 : 6;
          const oif = pkt.oifname;
          const addr = oif === undefined ? undefined : env.addressOf(oif, fam);
          if (addr === undefined) throw new Error(`masquerade: no IPv${fam} address on ${oif}`);
          pkt[fam === 4 ? 'ip saddr' : 'ip6 saddr'] = addr;
          pkt['ct status'] = pkt['ct status'] ? `${pkt['ct status']},snat` : 'snat';
          step(`masquerade to ${addr}`);
          return 'accept';
        }
      }
    }
    return 'continue';
  }

  private set(t: Table, name: string): NftSet {
    const s = t.sets.get(name);
    if (!s) throw new Error(`no set @${name} in table ${t.family} ${t.name}`);
    return s;
  }

  private matches(t: Table, m: Match, pkt: Fields): boolean {
    const key = m.fields.map((f) => pkt[f]);
    if (key.some((k) => k === undefined)) return false; // nft: the expression's dependency fails
    const types = m.fields.map((f) => FIELDS[f]);
    let hit: boolean;
    if (m.set) {
      const s = this.set(t, m.set);
      if (s.keyTypes.length !== key.length) throw new Error(`@${m.set} has ${s.keyTypes.length} key parts, rule gives ${key.length}`);
      s.keyTypes.forEach((kt, i) => {
        if (kt !== types[i]) throw new Error(`@${m.set} part ${i} is ${kt}, rule gives ${types[i]}`);
      });
      hit = s.elements.some((e) => e.key.every((p, i) => valueMatches(types[i], key[i], p)));
    } else {
      const type = types[0];
      const values = m.values!;
      if (type === 'ct_state' || type === 'ct_status') {
        const have = key[0].split(',');
        hit = values.some((v) => have.includes(v));
      } else {
        hit = values.some((v) => valueMatches(type, key[0], v));
      }
    }
    return m.negate ? !hit : hit;
  }
}

// ---- packets and paths ----

export interface NatEnv {
  /** the address masquerade picks on an interface */
  addressOf(ifname: string, family: 4 | 6): string | undefined;
}

/** The host the ruleset runs on, as far as the tracer needs it (routing is the caller's). */
export interface HostEnv extends NatEnv {
  /** addresses of the host (fib daddr type local) */
  local: string[];
  /** output interface for a destination that is not local */
  route(daddr: string): string;
}

export interface IpPacket {
  family: 4 | 6;
  /** input interface (a bridge for traffic from containers); absent for locally generated */
  iif?: string;
  saddr: string;
  daddr: string;
  proto: 'tcp' | 'udp' | 'icmp' | 'ipv6-icmp';
  dport?: number;
  /** conntrack state of the packet (default new) */
  ct?: 'new' | 'established' | 'related';
}

export interface PathResult {
  verdict: Verdict;
  /** where an accepted packet goes: a local socket, or out of an interface */
  to?: { local: true } | { oif: string };
  /** the packet's addresses after NAT */
  saddr: string;
  daddr: string;
  dport?: number;
  dnat: boolean;
  snat: boolean;
  steps: TraceStep[];
}

function ipFields(p: IpPacket): Fields {
  const f: Fields = {
    'meta nfproto': p.family === 4 ? 'ipv4' : 'ipv6',
    'meta l4proto': p.proto,
    'ct state': p.ct ?? 'new',
    'ct status': '',
  };
  const a = p.family === 4 ? 'ip' : 'ip6';
  const type = p.family === 4 ? 'ipv4_addr' : 'ipv6_addr';
  f[`${a} saddr`] = canon(type, p.saddr);
  f[`${a} daddr`] = canon(type, p.daddr);
  if (p.dport !== undefined) f['th dport'] = String(p.dport);
  if (p.iif !== undefined) f.iifname = p.iif;
  return f;
}

function daddrOf(f: Fields): string {
  return f['ip daddr'] ?? f['ip6 daddr'];
}

function result(verdict: Verdict, f: Fields, steps: TraceStep[], to?: PathResult['to']): PathResult {
  const status = f['ct status'].split(',');
  return {
    verdict,
    to: verdict === 'accept' ? to : undefined,
    saddr: f['ip saddr'] ?? f['ip6 saddr'],
    daddr: daddrOf(f),
    dport: f['th dport'] === undefined ? undefined : Number(f['th dport']),
    dnat: status.includes('dnat'),
    snat: status.includes('snat'),
    steps,
  };
}

function setFib(f: Fields, env: HostEnv): void {
  const d = daddrOf(f);
  const v4 = f['meta nfproto'] === 'ipv4';
  const local = env.local.some((l) => l.includes(':') !== v4 && canon(v4 ? 'ipv4_addr' : 'ipv6_addr', l) === d);
  f['fib daddr type'] = local ? 'local' : 'unicast';
}

function isLocal(f: Fields, env: HostEnv): boolean {
  setFib(f, env);
  return f['fib daddr type'] === 'local';
}

/**
 * A packet that arrives at the host on `iif` (from a container through its bridge, or from an
 * uplink): prerouting (nat) -> routing -> forward (filter) -> postrouting (nat), or local delivery.
 * With br_netfilter, a frame bridged between two ports of one bridge takes the same path with
 * iif = oif = the bridge.
 */
export function traceArriving(rs: Ruleset, env: HostEnv, p: IpPacket): PathResult {
  if (p.iif === undefined) throw new Error('an arriving packet needs iif');
  const f = ipFields(p);
  const steps: TraceStep[] = [];
  const isNew = f['ct state'] === 'new';
  setFib(f, env);
  if (isNew && rs.runHook(['inet', f['meta nfproto'] === 'ipv4' ? 'ip' : 'ip6'], 'prerouting', 'nat', f, env, steps) === 'drop') {
    return result('drop', f, steps);
  }
  if (isLocal(f, env)) return result('accept', f, steps, { local: true });
  f.oifname = env.route(daddrOf(f));
  const fams = ['inet', f['meta nfproto'] === 'ipv4' ? 'ip' : 'ip6'];
  if (rs.runHook(fams, 'forward', 'filter', f, env, steps) === 'drop') return result('drop', f, steps);
  if (isNew && rs.runHook(fams, 'postrouting', 'nat', f, env, steps) === 'drop') return result('drop', f, steps);
  return result('accept', f, steps, { oif: f.oifname });
}

/** A packet the host itself sends: output (nat) -> routing -> postrouting (nat). */
export function traceLocalOut(rs: Ruleset, env: HostEnv, p: IpPacket): PathResult {
  const f = ipFields({ ...p, iif: undefined });
  const steps: TraceStep[] = [];
  const isNew = f['ct state'] === 'new';
  const fams = ['inet', f['meta nfproto'] === 'ipv4' ? 'ip' : 'ip6'];
  setFib(f, env);
  if (isNew && rs.runHook(fams, 'output', 'nat', f, env, steps) === 'drop') return result('drop', f, steps);
  if (isLocal(f, env)) return result('accept', f, steps, { local: true });
  f.oifname = env.route(daddrOf(f));
  if (isNew && rs.runHook(fams, 'postrouting', 'nat', f, env, steps) === 'drop') return result('drop', f, steps);
  return result('accept', f, steps, { oif: f.oifname });
}

export interface Frame {
  /** the bridge port it enters by (a container's host veth) */
  iif: string;
  srcMac: string;
  etherType: 'ip' | 'ip6' | 'arp' | '8021q' | '8021ad';
  /** ARP: sender hardware and protocol addresses (htype 1, ptype ip, hlen 6, plen 4 unless given) */
  arp?: { senderMac: string; senderIp: string; htype?: number; hlen?: number; plen?: number };
  /** IPv4/IPv6 source; for IPv6 also ICMPv6 type and ND target */
  saddr?: string;
  l4proto?: 'tcp' | 'udp' | 'icmp' | 'ipv6-icmp';
  icmpv6Type?: string;
  ndTarget?: string;
}

/** A frame entering a bridge port: the bridge family's prerouting hook. */
export function traceFrame(rs: Ruleset, fr: Frame): { verdict: Verdict; steps: TraceStep[] } {
  const f: Fields = { iifname: fr.iif, 'ether saddr': canon('ether_addr', fr.srcMac), 'ether type': fr.etherType };
  if (fr.etherType === 'arp' && fr.arp) {
    f['arp htype'] = canon('integer', String(fr.arp.htype ?? 1));
    f['arp ptype'] = 'ip';
    f['arp hlen'] = canon('integer', String(fr.arp.hlen ?? 6));
    f['arp plen'] = canon('integer', String(fr.arp.plen ?? 4));
    f['arp saddr ether'] = canon('ether_addr', fr.arp.senderMac);
    f['arp saddr ip'] = canon('ipv4_addr', fr.arp.senderIp);
  }
  if (fr.etherType === 'ip' && fr.saddr) {
    f['ip saddr'] = canon('ipv4_addr', fr.saddr);
    if (fr.l4proto) f['meta l4proto'] = fr.l4proto;
  }
  if (fr.etherType === 'ip6' && fr.saddr) {
    f['ip6 saddr'] = canon('ipv6_addr', fr.saddr);
    if (fr.l4proto) f['meta l4proto'] = fr.l4proto;
    if (fr.l4proto === 'ipv6-icmp' && fr.icmpv6Type) {
      f['icmpv6 type'] = fr.icmpv6Type;
      if (fr.ndTarget) f['@th,64,128'] = canon('integer', `0x${ipaddr.IPv6.parse(fr.ndTarget).toByteArray().map((b) => b.toString(16).padStart(2, '0')).join('')}`);
    }
  }
  const steps: TraceStep[] = [];
  const verdict = rs.runHook(['bridge'], 'prerouting', 'filter', f, { addressOf: () => undefined }, steps);
  return { verdict, steps };
}
