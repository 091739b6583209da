/**
 * The policy compiler: a pure function from the policy world (projects, pods, policies) to the
 * body of `table inet weft-policy`. See README.md beside this file for the packet's path.
 *
 *   filter forward (priority filter - 10):
 *     established/related, IPv6 neighbour discovery, a pod to itself: accept
 *     ip saddr vmap @egress4    -> chain eg-N of the source pod's egress program
 *     ip daddr vmap @ingress4   -> chain in-N of the destination pod's ingress program
 *
 * A program is what the policies selecting a pod allow, as rules that `return` on a match, then one
 * named counter per isolating policy and `drop`. Pods with equal programs share one chain, so the
 * number of chains follows the number of distinct (policies, resolved named ports) combinations,
 * and a packet pays two map lookups plus the rules of the policies that select its own two ends:
 * never a walk over every policy. Peers and ports are named sets, shared between chains by content.
 *
 * Output is deterministic: equal worlds give byte-equal text.
 */
import { AddrRanges, merge } from './ranges.js';
import { byRef } from './evaluate.js';
import { ipBlockContains, matchSelector, portProtocol, portRange, projectLabels, resolveNamedPort } from './select.js';
import type { Family } from '../ipam/cidr.js';
import { familyOf } from '../ipam/cidr.js';
import type { LabelSelector, Pod, Policy, PolicyPeer, PolicyPort, PolicyType, PolicyWorld } from './types.js';

export const POLICY_TABLE = 'weft-policy';
export const POLICY_PRIORITY = 'filter - 10';

/** The named counter that counts a policy's drops (policy ids are 64 hex characters). */
export const dropCounter = (policyId: string) => `drop-${policyId.slice(0, 16)}`;

export interface CounterValue {
  packets: number;
  bytes: number;
}

export interface CompiledPolicies {
  /** the table body without its counters (renderPolicyTable adds them) */
  body: string;
  /** counter name -> policy id, for every policy */
  counters: Map<string, string>;
  stats: { pods: number; isolatedIngress: number; isolatedEgress: number; chains: number; sets: number; elements: number };
}

// ------------------------------------------------------------------------------------- indexes

/** Pods by project and by label pair, so a selector looks only at its candidates. */
class PodIndex {
  readonly byProject = new Map<string, Pod[]>();
  private readonly byLabel = new Map<string, Pod[]>();
  private readonly byKey = new Map<string, Pod[]>();

  constructor(readonly pods: Pod[]) {
    for (const p of pods) {
      push(this.byProject, p.project, p);
      for (const [k, v] of Object.entries(p.labels)) {
        push(this.byLabel, `${k}=${v}`, p);
        push(this.byKey, k, p);
      }
    }
  }

  /** Pods of the project that the selector matches. */
  select(sel: LabelSelector, project: string): Pod[] {
    let candidates = this.byProject.get(project) ?? [];
    for (const [k, v] of Object.entries(sel.matchLabels)) {
      const list = this.byLabel.get(`${k}=${v}`) ?? [];
      if (list.length < candidates.length) candidates = list;
    }
    for (const e of sel.matchExpressions) {
      if (e.operator !== 'In' && e.operator !== 'Exists') continue;
      const list = this.byKey.get(e.key) ?? [];
      if (list.length < candidates.length) candidates = list;
    }
    return candidates.filter((p) => p.project === project && matchSelector(sel, p.labels));
  }
}

function push<K, V>(m: Map<K, V[]>, k: K, v: V): void {
  const l = m.get(k);
  if (l) l.push(v);
  else m.set(k, [v]);
}

// ------------------------------------------------------------------------------------- sets

/** Named sets by content, so equal peers and port lists share one set. */
class SetPool {
  private readonly byContent = new Map<string, string>();
  readonly decls: string[] = [];
  elements = 0;

  constructor(private readonly prefix: string) {}

  name(type: string, elements: string[], interval: boolean): string {
    const key = `${type}|${elements.join(',')}`;
    let name = this.byContent.get(key);
    if (!name) {
      name = `${this.prefix}${this.byContent.size}`;
      this.byContent.set(key, name);
      this.elements += elements.length;
      const flags = interval ? '\n    flags interval' : '';
      this.decls.push(`  set ${name} {\n    type ${type}${flags}\n    elements = { ${elements.join(', ')} }\n  }\n`);
    }
    return name;
  }
}

const ADDR_TYPE: Record<Family, string> = { 4: 'ipv4_addr', 6: 'ipv6_addr' };
const IP: Record<Family, string> = { 4: 'ip', 6: 'ip6' };

// ------------------------------------------------------------------------------------- compile

interface Side {
  dir: PolicyType;
  /** the field naming the other end: `saddr` on ingress, `daddr` on egress */
  peerField: 'saddr' | 'daddr';
}
const INGRESS: Side = { dir: 'Ingress', peerField: 'saddr' };
const EGRESS: Side = { dir: 'Egress', peerField: 'daddr' };

export function compilePolicies(world: PolicyWorld): CompiledPolicies {
  // sorted: chain and set numbers must not depend on the order the pods came in
  const pods = world.pods
    .filter((p) => p.ips.length > 0)
    .map((p) => ({ ...p, ips: [...p.ips].sort() }))
    .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const index = new PodIndex(pods);
  const sets = new SetPool('s');
  const policies = [...world.policies].sort(byRef);

  // a rule's peers are the same for every pod its policy selects: resolved once per (policy, rule)
  interface Peers {
    /** 'any': the rule names every peer */
    addrs: AddrRanges | 'any';
    /** the `ip saddr @sN` / `ip6 saddr @sN` matches, rendered once */
    matches?: Array<[Family, string]>;
    /** the pods (with the addresses the peers admit) that egress named ports resolve on; lazily */
    pods?: Array<{ pod: Pod; ips: string[] }>;
  }
  const peerCache = new Map<string, Peers>();
  const projectNames = [...new Set([...index.byProject.keys(), ...world.projects.keys()])];
  const projectsMatching = (sel: LabelSelector): string[] => projectNames.filter((n) => matchSelector(sel, projectLabels(world, n)));
  const selectedBy = (p: Policy, peer: PolicyPeer): Pod[] =>
    (peer.namespaceSelector ? projectsMatching(peer.namespaceSelector) : [p.project]).flatMap((proj) =>
      peer.podSelector ? index.select(peer.podSelector, proj) : (index.byProject.get(proj) ?? []),
    );

  // every pod's addresses parsed once; every distinct peer (by content and project) resolved once
  const podRanges = new Map<Pod, AddrRanges>(pods.map((pod) => [pod, pod.ips.reduce((r, ip) => r.addIp(ip), new AddrRanges())]));
  const peerRanges = new Map<string, AddrRanges>();
  function rangesOf(p: Policy, peer: PolicyPeer): AddrRanges {
    const key = JSON.stringify([peer.namespaceSelector ? '' : p.project, peer]);
    let r = peerRanges.get(key);
    if (r) return r;
    const acc = new AddrRanges();
    if (peer.ipBlock) acc.addBlock(peer.ipBlock.cidr, peer.ipBlock.except);
    else for (const pod of selectedBy(p, peer)) for (const f of [4, 6] as Family[]) acc.addRanges(f, podRanges.get(pod)!.ranges(f));
    r = new AddrRanges();
    for (const f of [4, 6] as Family[]) r.addRanges(f, acc.ranges(f));
    peerRanges.set(key, r);
    return r;
  }

  function resolvePeers(p: Policy, ruleKey: string, peers: PolicyPeer[]): Peers {
    const key = `${p.id}/${ruleKey}`;
    let r = peerCache.get(key);
    if (r) return r;
    if (!peers.length) r = { addrs: 'any' };
    else {
      const addrs = new AddrRanges();
      for (const peer of peers) for (const f of [4, 6] as Family[]) addrs.addRanges(f, rangesOf(p, peer).ranges(f));
      r = { addrs };
    }
    peerCache.set(key, r);
    return r;
  }

  /** Destinations of egress named ports: every pod, or the pods the peers name (with the addresses they admit). */
  function peerPods(p: Policy, r: Peers, peers: PolicyPeer[]): Array<{ pod: Pod; ips: string[] }> {
    if (r.pods) return r.pods;
    if (!peers.length) return (r.pods = pods.map((pod) => ({ pod, ips: pod.ips })));
    const matched = new Map<Pod, Set<string>>();
    const add = (pod: Pod, ips: string[]) => {
      const set = matched.get(pod) ?? new Set<string>();
      for (const ip of ips) set.add(ip);
      matched.set(pod, set);
    };
    for (const peer of peers) {
      if (peer.ipBlock) {
        for (const pod of pods) {
          const inside = pod.ips.filter((ip) => ipBlockContains(peer, ip));
          if (inside.length) add(pod, inside);
        }
      } else for (const pod of selectedBy(p, peer)) add(pod, pod.ips);
    }
    return (r.pods = [...matched].map(([pod, ips]) => ({ pod, ips: [...ips] })));
  }

  /** Numeric port entries (`tcp . 80-81`), merged per protocol: interval elements must not overlap. */
  function portEntries(side: Side, ports: PolicyPort[], pod: Pod): string[] {
    const byProto = new Map<string, Array<[bigint, bigint]>>();
    for (const port of ports) {
      if (typeof port.port === 'string' && side.dir === 'Egress') continue;
      const r = portRange(port, pod);
      if (r === undefined) continue;
      const [lo, hi] = r === 'all' ? [0, 65535] : r;
      const list = byProto.get(portProtocol(port)) ?? [];
      list.push([BigInt(lo), BigInt(hi)]);
      byProto.set(portProtocol(port), list);
    }
    return [...byProto.keys()].sort().flatMap((proto) => merge(byProto.get(proto)!).map(([lo, hi]) => `${proto} . ${lo === hi ? lo : `${lo}-${hi}`}`));
  }

  // a rule's lines depend on the pod only through ingress named ports: cached by their resolution
  const lineCache = new Map<string, string[]>();

  /** The rule lines of one rule for one pod (the selected pod: the destination on ingress). */
  function ruleLines(side: Side, p: Policy, i: number, pod: Pod): string[] {
    const rule = side.dir === 'Ingress' ? p.spec.ingress[i]! : p.spec.egress[i]!;
    const entries = portEntries(side, rule.ports, pod);
    const cacheKey = `${p.id}/${side.dir}${i}/${entries.join(',')}`;
    const cached = lineCache.get(cacheKey);
    if (cached) return cached;
    const peers = 'from' in rule ? rule.from : rule.to;
    const peer = resolvePeers(p, `${side.dir}${i}`, peers);
    const lines: string[] = [];
    const portSet = entries.length ? sets.name('inet_proto . inet_service', entries, true) : undefined;
    const portMatch = portSet ? ` meta l4proto . th dport @${portSet}` : '';
    if (!rule.ports.length || portSet) {
      if (peer.addrs === 'any') lines.push(`${portMatch.trim()} return`.trim());
      else {
        const addrs = peer.addrs;
        peer.matches ??= ([4, 6] as Family[]).flatMap((f): Array<[Family, string]> => {
          const els = addrs.elements(f);
          return els.length ? [[f, sets.name(ADDR_TYPE[f], els, true)]] : [];
        });
        for (const [f, set] of peer.matches) lines.push(`${IP[f]} ${side.peerField} @${set}${portMatch} return`);
      }
    }
    // egress to named ports: the port is the destination pod's, so the set pairs address and port
    const named = side.dir === 'Egress' ? rule.ports.filter((x) => typeof x.port === 'string') : [];
    if (named.length) {
      const els: Record<Family, string[]> = { 4: [], 6: [] };
      for (const { pod: dest, ips } of peerPods(p, peer, peers)) {
        for (const port of named) {
          const n = resolveNamedPort(dest.namedPorts, port.port as string, portProtocol(port));
          if (n === undefined) continue;
          for (const ip of ips) els[ip.includes(':') ? 6 : 4].push(`${ip} . ${portProtocol(port)} . ${n}`);
        }
      }
      for (const f of [4, 6] as Family[]) {
        if (!els[f].length) continue;
        const set = sets.name(`${ADDR_TYPE[f]} . inet_proto . inet_service`, sortUnique(els[f]), false);
        lines.push(`${IP[f]} daddr . meta l4proto . th dport @${set} return`);
      }
    }
    lineCache.set(cacheKey, lines);
    return lines;
  }

  const chains: string[] = [];
  const programs = new Map<string, string>();
  const maps: Record<PolicyType, Record<Family, string[]>> = { Ingress: { 4: [], 6: [] }, Egress: { 4: [], 6: [] } };
  const isolated = { Ingress: 0, Egress: 0 };

  // which policies isolate each pod, in policy order: each policy's selector looked up once
  const isolating = new Map<Pod, Record<PolicyType, Policy[]>>();
  for (const p of policies)
    for (const pod of index.select(p.spec.podSelector, p.project)) {
      let entry = isolating.get(pod);
      if (!entry) isolating.set(pod, (entry = { Ingress: [], Egress: [] }));
      for (const dir of p.spec.policyTypes) entry[dir].push(p);
    }

  for (const pod of pods) {
    for (const side of [EGRESS, INGRESS]) {
      const selecting = isolating.get(pod)?.[side.dir] ?? [];
      if (!selecting.length) continue;
      isolated[side.dir]++;
      const body: string[] = [];
      for (const p of selecting) {
        const n = side.dir === 'Ingress' ? p.spec.ingress.length : p.spec.egress.length;
        for (let i = 0; i < n; i++) body.push(...ruleLines(side, p, i, pod));
      }
      for (const p of selecting) body.push(`counter name "${dropCounter(p.id)}"`);
      body.push('drop');
      const text = body.map((l) => `    ${l}\n`).join('');
      const prefix = side.dir === 'Ingress' ? 'in' : 'eg';
      let chain = programs.get(prefix + text);
      if (!chain) {
        chain = `${prefix}-${programs.size}`;
        programs.set(prefix + text, chain);
        chains.push(`  chain ${chain} {\n${text}  }\n`);
      }
      for (const ip of pod.ips) maps[side.dir][ip.includes(':') ? 6 : 4].push(`${ip} : jump ${chain}`);
    }
  }

  const counters = new Map<string, string>();
  for (const p of policies) counters.set(dropCounter(p.id), p.id);

  const selfEls: Record<Family, string[]> = { 4: [], 6: [] };
  for (const pod of pods)
    for (const a of pod.ips) for (const b of pod.ips) if (familyOf(a) === familyOf(b)) selfEls[familyOf(a)!].push(`${a} . ${b}`);

  const out: string[] = [`  comment "weft: network policy (managed by weft, do not edit)"\n`];
  out.push(...sets.decls);
  for (const f of [4, 6] as Family[]) {
    out.push(mapDecl(`self${f}`, `${ADDR_TYPE[f]} . ${ADDR_TYPE[f]}`, selfEls[f].sort()));
    out.push(mapDecl(`egress${f}`, `${ADDR_TYPE[f]} : verdict`, maps.Egress[f].sort()));
    out.push(mapDecl(`ingress${f}`, `${ADDR_TYPE[f]} : verdict`, maps.Ingress[f].sort()));
  }
  out.push(`  chain forward {
    type filter hook forward priority ${POLICY_PRIORITY}; policy accept;
    ct state established,related accept
    icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert, nd-router-solicit, mld-listener-query, mld-listener-report, mld2-listener-report } accept
    ip saddr . ip daddr @self4 accept
    ip6 saddr . ip6 daddr @self6 accept
    ip saddr vmap @egress4
    ip6 saddr vmap @egress6
    ip daddr vmap @ingress4
    ip6 daddr vmap @ingress6
  }
`);
  out.push(...chains);
  const elements = sets.elements + selfEls[4].length + selfEls[6].length + Object.values(maps).reduce((n, m) => n + m[4].length + m[6].length, 0);
  return {
    body: out.join('\n'),
    counters,
    stats: {
      pods: pods.length,
      isolatedIngress: isolated.Ingress,
      isolatedEgress: isolated.Egress,
      chains: chains.length,
      sets: sets.decls.length,
      elements,
    },
  };
}

/** The table body for nftReplaceTable: the compiled body and every policy's drop counter, its counts kept. */
export function renderPolicyTable(c: CompiledPolicies, values: Map<string, CounterValue> = new Map()): string {
  const decls = [...c.counters.keys()].map((name) => {
    const v = values.get(name);
    return `  counter ${name} {\n    packets ${v?.packets ?? 0} bytes ${v?.bytes ?? 0}\n  }\n`;
  });
  return [...decls, c.body].join('\n');
}

function mapDecl(name: string, type: string, elements: string[]): string {
  const els = elements.length ? `\n    elements = { ${elements.join(', ')} }` : '';
  return `  ${type.includes('verdict') ? 'map' : 'set'} ${name} {\n    type ${type}${els}\n  }\n`;
}

const sortUnique = (xs: string[]) => [...new Set(xs)].sort();
