/**
 * Test helpers (not a test file: the unit-test glob is `src/**\/*.test.ts`): build policy worlds from
 * real NetworkPolicy YAML and short pod descriptions, and draw seeded random worlds that use every
 * feature of networking.k8s.io/v1 NetworkPolicy, for the differential tests.
 */
import { createHash } from 'node:crypto';
import { normalizePolicy, parsePolicies } from './parse.js';
import { NAMESPACE_NAME_LABEL, type NamedPort, type Pod, type Policy, type PolicyWorld, type PortProtocol } from './types.js';

/** The id the store would give: 64 hex characters, derived from project/name so tests are stable. */
export const policyId = (project: string, name: string): string => createHash('sha256').update(`${project}/${name}`).digest('hex');

/**
 * A pod: `ref` is `project/name` (the name doubles as id); ports are `name=port/proto`, e.g.
 * `http=8080/tcp`.
 */
export function pod(ref: string, labels: Record<string, string>, ips: string[], ports: string[] = []): Pod {
  const [project, name] = ref.includes('/') ? ref.split('/') : ['default', ref];
  const namedPorts: NamedPort[] = ports.map((p) => {
    const m = /^([^=]+)=(\d+)\/(tcp|udp|sctp)$/.exec(p);
    if (!m) throw new Error(`bad named port ${p}`);
    return { name: m[1], port: Number(m[2]), protocol: m[3] as PortProtocol };
  });
  return { id: `${project}/${name}`, name: `${project}/${name}`, project, labels, ips, namedPorts };
}

function stored(doc: { name: string; namespace?: string; labels: Record<string, string>; annotations: Record<string, string>; spec: Policy['spec'] }, project: string): Policy {
  const ns = doc.namespace ?? project;
  return {
    id: policyId(ns, doc.name),
    name: doc.name,
    project: ns,
    created: '2024-01-01T00:00:00.000Z',
    generation: 1,
    labels: doc.labels,
    annotations: doc.annotations,
    spec: doc.spec,
  };
}

/** Policies from NetworkPolicy YAML (one or many documents); `project` when a document names no namespace. */
export function policiesFrom(yaml: string, project = 'default'): Policy[] {
  return parsePolicies(yaml).map((d) => stored(d, project));
}

/** One policy from a plain NetworkPolicy object (as a YAML file would give it). */
export function policyFrom(obj: unknown, project = 'default'): Policy {
  return stored(normalizePolicy(obj), project);
}

/**
 * A world as the agent builds it: every project named by a pod or a policy (and `default`) exists
 * and carries its name label; `projects` adds labels.
 */
export function worldOf(pods: Pod[], policies: Policy[], projects: Record<string, Record<string, string>> = {}): PolicyWorld {
  const map = new Map<string, Record<string, string>>();
  for (const name of new Set(['default', ...pods.map((p) => p.project), ...policies.map((p) => p.project)])) {
    map.set(name, { [NAMESPACE_NAME_LABEL]: name });
  }
  for (const [name, labels] of Object.entries(projects)) map.set(name, { ...labels, [NAMESPACE_NAME_LABEL]: name });
  return { projects: map, pods, policies };
}

// ------------------------------------------------------------------------------------ randomness

/** mulberry32: a small seeded PRNG, so every random world can be drawn again from its seed. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export class Dice {
  readonly next: () => number;
  constructor(seed: number) {
    this.next = rng(seed);
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }
  pick<T>(xs: readonly T[]): T {
    return xs[Math.floor(this.next() * xs.length)];
  }
  /** a random subset, in random order */
  some<T>(xs: readonly T[], max = xs.length): T[] {
    return this.shuffle(xs).slice(0, this.int(0, Math.min(max, xs.length)));
  }
  shuffle<T>(xs: readonly T[]): T[] {
    const out = [...xs];
    for (let i = out.length - 1; i > 0; i--) {
      const j = Math.floor(this.next() * (i + 1));
      [out[i], out[j]] = [out[j], out[i]];
    }
    return out;
  }
}

/** Addresses that belong to no pod: outside addresses, and one inside a pod subnet. */
export const EXTERNALS = ['192.0.2.10', '192.0.2.200', '198.51.100.7', '10.0.0.99', '2001:db8::10', 'fd00:1::99'];

/** What the random worlds probe: every port a random policy can name, and some that none names. */
export const PROBES: ReadonlyArray<{ protocol: string; port?: number }> = [
  { protocol: 'tcp', port: 80 },
  { protocol: 'tcp', port: 443 },
  { protocol: 'tcp', port: 999 },
  { protocol: 'tcp', port: 1000 },
  { protocol: 'tcp', port: 1010 },
  { protocol: 'tcp', port: 1011 },
  { protocol: 'tcp', port: 8080 },
  { protocol: 'tcp', port: 8081 },
  { protocol: 'tcp', port: 9090 },
  { protocol: 'tcp', port: 9091 },
  { protocol: 'udp', port: 53 },
  { protocol: 'udp', port: 5353 },
  { protocol: 'udp', port: 8080 },
  { protocol: 'sctp', port: 3868 },
  { protocol: 'sctp', port: 2905 },
  { protocol: 'sctp', port: 80 },
  { protocol: 'icmp' },
];

const PROJECTS = ['default', 'x', 'y'];

const POD_SELECTORS: readonly object[] = [
  {},
  { matchLabels: { app: 'web' } },
  { matchLabels: { app: 'db' } },
  { matchLabels: { app: 'web', tier: 'front' } },
  { matchExpressions: [{ key: 'app', operator: 'In', values: ['web', 'api'] }] },
  { matchExpressions: [{ key: 'tier', operator: 'NotIn', values: ['front'] }] },
  { matchExpressions: [{ key: 'tier', operator: 'Exists' }] },
  { matchExpressions: [{ key: 'app', operator: 'DoesNotExist' }] },
  { matchLabels: { app: 'api' }, matchExpressions: [{ key: 'tier', operator: 'Exists' }] },
];

const NAMESPACE_SELECTORS: readonly object[] = [
  {},
  { matchLabels: { team: 'a' } },
  { matchLabels: { [NAMESPACE_NAME_LABEL]: 'x' } },
  { matchExpressions: [{ key: 'env', operator: 'NotIn', values: ['prod'] }] },
  { matchExpressions: [{ key: NAMESPACE_NAME_LABEL, operator: 'In', values: ['default', 'y'] }] },
  { matchExpressions: [{ key: 'team', operator: 'DoesNotExist' }] },
];

const IP_BLOCKS: readonly object[] = [
  { cidr: '10.0.0.0/16', except: ['10.0.0.2/32'] },
  { cidr: '10.1.0.0/16' },
  { cidr: '192.0.2.0/24', except: ['192.0.2.128/25'] },
  { cidr: '0.0.0.0/0', except: ['10.0.0.0/8'] },
  { cidr: '10.2.0.0/24', except: ['10.2.0.0/30', '10.2.0.4/31'] },
  { cidr: 'fd00::/16', except: ['fd00:1::/64'] },
  { cidr: '::/0' },
  { cidr: '10.0.0.0/8' },
];

/**
 * Port entries, grouped so that one rule never lists two that overlap (nft refuses overlapping
 * elements of an interval set: see the compile tests). `all` excludes the protocol's other entries.
 * Named ports resolve to 8080/8081 (http), 9090/9091 (metrics), 5353 (dns), 3868 (diam): apart from
 * every number here.
 */
const PORTS: Record<'TCP' | 'UDP' | 'SCTP', { all: object; some: readonly object[] }> = {
  TCP: {
    all: { protocol: 'TCP' },
    some: [{ port: 80 }, { protocol: 'TCP', port: 443 }, { port: 1000, endPort: 1010 }, { port: 'http' }, { port: 'metrics' }],
  },
  UDP: {
    all: { protocol: 'UDP' },
    some: [{ protocol: 'UDP', port: 53 }, { protocol: 'UDP', port: 'dns' }, { protocol: 'UDP', port: 'http' }],
  },
  SCTP: { all: { protocol: 'SCTP' }, some: [{ protocol: 'SCTP', port: 'diam' }, { protocol: 'SCTP', port: 2905 }] },
};

function randomPorts(d: Dice): object[] {
  const out: object[] = [];
  for (const proto of d.some(['TCP', 'UDP', 'SCTP'] as const, 2)) {
    if (d.chance(0.2)) out.push(PORTS[proto].all);
    else out.push(...d.some(PORTS[proto].some, 3));
  }
  return out;
}

function randomPeer(d: Dice): object {
  switch (d.int(0, 3)) {
    case 0:
      return { podSelector: d.pick(POD_SELECTORS) };
    case 1:
      return { namespaceSelector: d.pick(NAMESPACE_SELECTORS) };
    case 2:
      return { namespaceSelector: d.pick(NAMESPACE_SELECTORS), podSelector: d.pick(POD_SELECTORS) };
    default:
      return { ipBlock: d.pick(IP_BLOCKS) };
  }
}

function randomRules(d: Dice, peerKey: 'from' | 'to'): object[] {
  const rules: object[] = [];
  const n = d.pick([0, 1, 1, 2, 3]);
  for (let i = 0; i < n; i++) {
    const r: Record<string, unknown> = {};
    if (d.chance(0.75)) r[peerKey] = Array.from({ length: d.int(1, 3) }, () => randomPeer(d));
    if (d.chance(0.6)) r.ports = randomPorts(d);
    rules.push(r);
  }
  return rules;
}

/** A NetworkPolicy object as a user would write it (then normalized by the real parser). */
function randomPolicyObject(d: Dice, name: string, project: string): object {
  const spec: Record<string, unknown> = { podSelector: d.pick(POD_SELECTORS) };
  const types = d.pick([undefined, undefined, ['Ingress'], ['Egress'], ['Ingress', 'Egress']]);
  if (types) spec.policyTypes = types;
  if (d.chance(0.75)) spec.ingress = randomRules(d, 'from');
  if (d.chance(0.6)) spec.egress = randomRules(d, 'to');
  return { apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { name, namespace: project }, spec };
}

export interface RandomWorld {
  seed: number;
  world: PolicyWorld;
  /** addresses that belong to no pod */
  externals: string[];
}

/**
 * Three projects (random team/env labels), 2-4 pods each (random app/tier labels, named ports that
 * differ between pods, one or two IPv4 addresses, sometimes IPv6, sometimes none), 0-3 random
 * policies per project.
 */
export function randomWorld(seed: number): RandomWorld {
  const d = new Dice(seed);
  const projects: Record<string, Record<string, string>> = {};
  for (const name of PROJECTS) {
    const labels: Record<string, string> = {};
    if (d.chance(0.6)) labels.team = d.pick(['a', 'b']);
    if (d.chance(0.6)) labels.env = d.pick(['prod', 'dev']);
    projects[name] = labels;
  }
  const pods: Pod[] = [];
  PROJECTS.forEach((project, k) => {
    const n = d.int(2, 4);
    for (let i = 0; i < n; i++) {
      const labels: Record<string, string> = {};
      if (d.chance(0.8)) labels.app = d.pick(['web', 'db', 'api']);
      if (d.chance(0.5)) labels.tier = d.pick(['front', 'back']);
      const host = i + 2;
      const ips: string[] = [];
      if (!d.chance(0.08)) {
        ips.push(`10.${k}.0.${host}`);
        if (d.chance(0.4)) ips.push(`fd00:${k}::${host.toString(16)}`);
        if (d.chance(0.15)) ips.push(`10.${k + 10}.0.${host}`);
      }
      const ports: string[] = [];
      if (d.chance(0.6)) ports.push(`http=${d.pick([8080, 8081])}/tcp`);
      if (d.chance(0.4)) ports.push(`metrics=${d.pick([9090, 9091])}/tcp`);
      if (d.chance(0.4)) ports.push('dns=5353/udp');
      if (d.chance(0.3)) ports.push('diam=3868/sctp');
      pods.push(pod(`${project}/p${i}`, labels, ips, ports));
    }
  });
  const policies: Policy[] = [];
  for (const project of PROJECTS) {
    for (const name of d.some(['allow-a', 'deny', 'p1', 'web-x', 'zz'], 3)) {
      policies.push(policyFrom(randomPolicyObject(d, name, project)));
    }
  }
  return { seed, world: worldOf(pods, policies, projects), externals: EXTERNALS };
}
