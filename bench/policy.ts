/**
 * Network policy (src/policy/compile.ts, applied as the agent's controller does) in one run:
 *
 * 1. programming: 1,000 Kubernetes NetworkPolicies over 10,000 pods in 20 projects, compiled
 *    (compilePolicies + renderPolicyTable) and applied (nftReplaceTable) in a scratch netns: the
 *    whole table from nothing, the same over an existing table, one pod's label changed, one policy
 *    added (the controller recompiles and replaces the whole table on every change); against a
 *    linear iptables-style ruleset of the same policies (one rule per policy rule);
 * 2. per-connection cost: TCP connect latency between two netns across a Linux bridge in a lab
 *    "host" netns (br_netfilter, so bridged IPv4 meets the inet forward hook), with weft's table
 *    for 0, 100 and 1,000 other policies over the same 10,000 pods, where the client's egress and the
 *    server's ingress programs always run (default deny + an allow rule); the linear ruleset with
 *    the same policies; and the path without any table and with conntrack only.
 *
 *   env -u NODE_EXTRA_CA_CERTS npx tsx bench/policy.ts [--runs 5] [--warmup 1] [--policies 1000] [--mid 100]
 *       [--pods 10000] [--connects 2000] [--only weft,linear,none,ct,weft-0,...]
 */
import { createHash } from 'node:crypto';
import { appendFileSync, existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { parseBenchArgs, runBench, type Bench, type Config, type MetricResult, type Target } from './harness.js';
import { InterleavedLatency, latencyArgs, pct, type RawLatencyJson } from './lib/latency.js';
import { benchName, netnsAdd, netnsDelete, runSubdir } from './lib/ns.js';
import { killPid, run, startDetached, waitFor, type Detached } from './lib/proc.js';
import { fmt, prng, ratioInterval, summarize } from './lib/stats.js';
import { CLIENT_JS, SERVER_JS } from './refs/svcnet.js';
import { REPO_ROOT } from './refs/weft.js';
import { compilePolicies, renderPolicyTable, POLICY_TABLE, type CompiledPolicies } from '../src/policy/compile.js';
import { normalizePolicy } from '../src/policy/parse.js';
import { AddrRanges } from '../src/policy/ranges.js';
import { evaluate, explain } from '../src/policy/evaluate.js';
import { matchSelector, portProtocol, portRange, projectLabels, resolveNamedPort } from '../src/policy/select.js';
import { NAMESPACE_NAME_LABEL, type NamedPort, type Pod, type Policy, type PolicyPeer, type PolicyWorld } from '../src/policy/types.js';
import { nftApply, nftDeleteTable, nftListCounters, nftReplaceTable } from '../src/kernel/nft.js';

// ---------------------------------------------------------------------------------------------
// the synthetic cluster

/**
 * Projects (Kubernetes namespaces): kube-system (CoreDNS, an ingress controller, metrics-server),
 * monitoring (Prometheus & co.), and 9 teams x {prod, staging}; prod projects carry team= and env=,
 * staging projects of odd teams only env= (not every namespace is labelled). `bench` holds the
 * measured pair of the latency part.
 */
const TEAMS = ['payments', 'search', 'checkout', 'identity', 'ads', 'media', 'data', 'mobile', 'growth'];
const TEAM_PROJECTS = TEAMS.flatMap((t) => [`${t}-prod`, `${t}-staging`]);
const BENCH_PROJECT = 'bench';
/** pod addresses: 10.60.0.0/16 (gateway 10.60.0.1 on the lab host's bridge); every 5th pod also has fd60::/64 */
const POD_NET4 = '10.60.0.0/16';
const GATEWAY4 = '10.60.0.1';
const SERVER_PORT = 8080;

const ROLES: { role: string; tier: string }[] = [
  { role: 'web', tier: 'frontend' },
  { role: 'api', tier: 'backend' },
  { role: 'worker', tier: 'worker' },
  { role: 'db', tier: 'db' },
  { role: 'cache', tier: 'cache' },
  { role: 'auth', tier: 'backend' },
  { role: 'feed', tier: 'backend' },
  { role: 'gateway', tier: 'frontend' },
  { role: 'billing', tier: 'backend' },
  { role: 'search', tier: 'backend' },
];

interface App {
  name: string;
  project: string;
  labels: Record<string, string>;
  ports: NamedPort[];
  weight: number;
}

export interface Cluster {
  projects: Map<string, Record<string, string>>;
  pods: Pod[];
  apps: App[];
  appsByProject: Map<string, App[]>;
  client: Pod;
  server: Pod;
  probe: Pod;
}

const tcp = (name: string, port: number): NamedPort => ({ name, port, protocol: 'tcp' });
const h = (s: string): number => createHash('md5').update(s).digest().readUInt32LE(0);

/** Named ports differ between apps: `http` is 8080 on one, 3000 on another, and so on. */
function teamAppPorts(name: string, tier: string): NamedPort[] {
  const x = h(name);
  const ports = [tcp('metrics', [9090, 9100, 8081, 9102][x % 4])];
  if (tier === 'frontend' || tier === 'backend') ports.push(tcp('http', [8080, 8000, 3000, 80, 5000][(x >> 4) % 5]));
  if (tier === 'backend') ports.push(tcp('grpc', [50051, 9000, 8443][(x >> 8) % 3]));
  if (tier === 'db') ports.push(tcp('db', [5432, 3306, 27017][(x >> 8) % 3]));
  if (tier === 'cache') ports.push(tcp('redis', [6379, 11211][(x >> 8) % 2]));
  return ports;
}

const ipv4Of = (i: number): string => `10.60.${((i + 256) >> 8) & 255}.${(i + 256) & 255}`;
const ipv6Of = (i: number): string => `fd60::${(i + 256).toString(16)}`;

/** `pods` pods (3 of them in `bench`), ~500 apps, deterministic. */
export function buildCluster(totalPods: number): Cluster {
  const rnd = prng(42);
  const projects = new Map<string, Record<string, string>>();
  const label = (name: string, extra: Record<string, string>): void => void projects.set(name, { ...extra, [NAMESPACE_NAME_LABEL]: name });
  label('kube-system', {});
  label('monitoring', { team: 'platform', purpose: 'monitoring' });
  TEAMS.forEach((t, ti) => {
    label(`${t}-prod`, { team: t, env: 'prod' });
    label(`${t}-staging`, ti % 2 ? { env: 'staging' } : { team: t, env: 'staging' });
  });
  label(BENCH_PROJECT, { team: 'bench', env: 'prod' });

  const apps: App[] = [];
  const add = (name: string, project: string, labels: Record<string, string>, ports: NamedPort[], weight: number): void =>
    void apps.push({ name, project, labels: { app: name, ...labels }, ports, weight });
  // kube-system: 20 pods, monitoring: 100 (fixed)
  add('coredns', 'kube-system', { 'k8s-app': 'kube-dns', tier: 'infra' }, [{ name: 'dns', port: 53, protocol: 'udp' }, tcp('dns-tcp', 53), tcp('metrics', 9153)], -4);
  add('ingress-nginx', 'kube-system', { tier: 'frontend' }, [tcp('http', 80), tcp('https', 443), tcp('metrics', 10254)], -6);
  add('metrics-server', 'kube-system', { tier: 'infra' }, [tcp('https', 4443)], -2);
  add('kube-state-metrics', 'kube-system', { tier: 'infra' }, [tcp('http', 8080), tcp('metrics', 8081)], -2);
  add('csi-node', 'kube-system', { tier: 'infra' }, [tcp('metrics', 9808)], -6);
  add('prometheus', 'monitoring', { tier: 'monitoring' }, [tcp('web', 9090)], -2);
  add('alertmanager', 'monitoring', { tier: 'monitoring' }, [tcp('web', 9093)], -3);
  add('grafana', 'monitoring', { tier: 'frontend' }, [tcp('http', 3000)], -2);
  add('loki', 'monitoring', { tier: 'backend' }, [tcp('http', 3100), tcp('grpc', 9095)], -3);
  add('node-exporter', 'monitoring', { tier: 'monitoring' }, [tcp('metrics', 9100)], -90);
  // ~490 team apps, ~27 per team project, replicas skewed (most small, a few large)
  const TEAM_APPS = 490;
  for (let a = 0; a < TEAM_APPS; a++) {
    const project = TEAM_PROJECTS[a % TEAM_PROJECTS.length];
    const { role, tier } = ROLES[Math.floor(a / TEAM_PROJECTS.length) % ROLES.length];
    const name = `${project.split('-')[0]}-${role}-${Math.floor(a / (TEAM_PROJECTS.length * ROLES.length))}`;
    add(name, project, { tier }, teamAppPorts(name, tier), 0.3 + rnd() ** 3 * 8);
  }
  const fixed = apps.filter((a) => a.weight < 0).reduce((n, a) => n - a.weight, 0);
  const teamPods = totalPods - fixed - 3;
  if (teamPods < TEAM_APPS) throw new Error(`--pods must be at least ${fixed + 3 + TEAM_APPS}`);
  const team = apps.filter((a) => a.weight > 0);
  const wsum = team.reduce((n, a) => n + a.weight, 0);
  const counts = new Map<App, number>(apps.map((a) => [a, a.weight < 0 ? -a.weight : Math.max(1, Math.floor((a.weight / wsum) * teamPods))]));
  let left = totalPods - 3 - [...counts.values()].reduce((n, c) => n + c, 0);
  for (let i = 0; left !== 0; i = (i + 1) % team.length) {
    const c = counts.get(team[i])!;
    if (left > 0) {
      counts.set(team[i], c + 1);
      left--;
    } else if (c > 1) {
      counts.set(team[i], c - 1);
      left++;
    }
  }

  const pods: Pod[] = [];
  const newPod = (project: string, name: string, labels: Record<string, string>, ports: NamedPort[], v6: boolean): Pod => {
    const i = pods.length;
    const pod: Pod = { id: createHash('sha256').update(`pod/${i}`).digest('hex'), name, project, labels, ips: v6 ? [ipv4Of(i), ipv6Of(i)] : [ipv4Of(i)], namedPorts: ports };
    pods.push(pod);
    return pod;
  };
  for (const a of apps) {
    const n = counts.get(a)!;
    for (let r = 0; r < n; r++) {
      const x = rnd();
      const version = x < 0.05 ? 'canary' : x < 0.4 ? 'v2' : 'v1';
      newPod(a.project, `${a.name}-${r}`, { ...a.labels, version, 'pod-template-hash': (h(a.name + version) % 1e6).toString(36) }, a.ports, pods.length % 5 === 4);
    }
  }
  const client = newPod(BENCH_PROJECT, 'client', { app: 'client', tier: 'frontend', version: 'v1' }, [], false);
  const server = newPod(BENCH_PROJECT, 'server', { app: 'server', tier: 'backend', version: 'v1' }, [tcp('http', SERVER_PORT)], false);
  const probe = newPod(BENCH_PROJECT, 'probe', { app: 'probe', tier: 'frontend', version: 'v1' }, [], false);
  const appsByProject = new Map<string, App[]>();
  for (const a of apps) appsByProject.set(a.project, [...(appsByProject.get(a.project) ?? []), a]);
  return { projects, pods, apps, appsByProject, client, server, probe };
}

// ---------------------------------------------------------------------------------------------
// the policies, written as Kubernetes objects and read through weft's own parser

type K8s = Record<string, unknown>;
const sel = (matchLabels: Record<string, string> = {}, matchExpressions: { key: string; operator: string; values?: string[] }[] = []): K8s => ({
  ...(Object.keys(matchLabels).length ? { matchLabels } : {}),
  ...(matchExpressions.length ? { matchExpressions } : {}),
});
const nsName = (n: string): K8s => sel({ [NAMESPACE_NAME_LABEL]: n });
const DNS_PORTS = [
  { protocol: 'UDP', port: 53 },
  { protocol: 'TCP', port: 53 },
];
const toDns = { to: [{ namespaceSelector: nsName('kube-system'), podSelector: sel({ 'k8s-app': 'kube-dns' }) }], ports: DNS_PORTS };

function policyOf(project: string, name: string, spec: K8s): Policy {
  const doc = normalizePolicy({ apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { name, namespace: project }, spec }, `${project}/${name}`);
  return {
    id: createHash('sha256').update(`policy/${project}/${name}`).digest('hex'),
    name: doc.name,
    project,
    created: '2026-01-01T00:00:00.000Z',
    generation: 1,
    labels: doc.labels,
    annotations: doc.annotations,
    spec: doc.spec,
  };
}

/** The policies of one project, in the order a cluster grows them (the first few: the namespace-wide ones). */
function* projectPolicies(c: Cluster, project: string): Generator<[string, K8s]> {
  if (project === 'kube-system') {
    yield ['default-deny-ingress', { podSelector: {}, policyTypes: ['Ingress'] }];
    yield ['allow-dns', { podSelector: sel({ 'k8s-app': 'kube-dns' }), ingress: [{ from: [{ namespaceSelector: {} }], ports: DNS_PORTS }] }];
    yield ['allow-ingress-controller', { podSelector: sel({ app: 'ingress-nginx' }), ingress: [{ ports: [{ port: 80 }, { port: 443 }] }] }];
    yield ['allow-metrics-server', { podSelector: sel({ app: 'metrics-server' }), ingress: [{ from: [{ ipBlock: { cidr: `${GATEWAY4}/32` } }], ports: [{ port: 'https' }] }] }];
    return;
  }
  if (project === 'monitoring') {
    yield ['default-deny-ingress', { podSelector: {}, policyTypes: ['Ingress'] }];
    // Prometheus scrapes the named port `metrics` of every pod: an egress rule to a named port over all pods
    yield ['prometheus-scrape', { podSelector: sel({ app: 'prometheus' }), policyTypes: ['Egress'], egress: [{ to: [{ namespaceSelector: {} }], ports: [{ port: 'metrics' }] }, toDns] }];
    yield ['allow-grafana', { podSelector: sel({ app: 'grafana' }), ingress: [{ ports: [{ port: 'http' }] }] }];
    yield ['allow-alerts', { podSelector: sel({ app: 'alertmanager' }), ingress: [{ from: [{ podSelector: sel({ app: 'prometheus' }) }], ports: [{ port: 'web' }] }] }];
    yield ['allow-loki-push', { podSelector: sel({ app: 'loki' }), ingress: [{ from: [{ namespaceSelector: sel({}, [{ key: 'env', operator: 'Exists' }]) }], ports: [{ port: 'http' }, { port: 'grpc' }] }] }];
    return;
  }
  if (project === BENCH_PROJECT) {
    yield ['default-deny', { podSelector: {}, policyTypes: ['Ingress', 'Egress'] }];
    yield ['server-from-client', { podSelector: sel({ app: 'server' }), ingress: [{ from: [{ podSelector: sel({ app: 'client' }) }], ports: [{ port: 'http' }] }] }];
    yield [
      'client-egress',
      { podSelector: sel({}, [{ key: 'app', operator: 'In', values: ['client', 'probe'] }]), policyTypes: ['Egress'], egress: [{ to: [{ podSelector: sel({ app: 'server' }) }], ports: [{ port: SERVER_PORT }] }, toDns] },
    ];
    return;
  }
  const team = project.split('-')[0];
  yield ['default-deny-ingress', { podSelector: {}, policyTypes: ['Ingress'] }];
  yield ['default-deny-egress', { podSelector: {}, policyTypes: ['Egress'], egress: [toDns] }];
  yield ['allow-prometheus', { podSelector: {}, ingress: [{ from: [{ namespaceSelector: sel({ purpose: 'monitoring' }), podSelector: sel({ app: 'prometheus' }) }], ports: [{ port: 'metrics' }] }] }];
  yield ['allow-ingress-controller', { podSelector: sel({ tier: 'frontend' }), ingress: [{ from: [{ namespaceSelector: nsName('kube-system'), podSelector: sel({ app: 'ingress-nginx' }) }], ports: [{ port: 'http' }] }] }];
  const apps = c.appsByProject.get(project) ?? [];
  const others = TEAMS.filter((t) => t !== team);
  for (let j = 0; ; j++) {
    const a = apps[j % apps.length];
    const b = apps[(j + 1) % apps.length];
    const kind = (j + Math.floor(j / apps.length)) % 8;
    const other = others[j % others.length];
    const x = a.name;
    switch (kind) {
      case 0:
        yield [`${x}-same-app`, { podSelector: sel({ app: x }), ingress: [{ from: [{ podSelector: sel({ app: x }) }] }] }];
        break;
      case 1:
        yield [`${x}-from-frontends`, { podSelector: sel({ app: x }), ingress: [{ from: [{ podSelector: sel({ tier: 'frontend' }) }], ports: [{ port: 'http' }] }] }];
        break;
      case 2:
        yield [
          `${x}-cross-team`,
          {
            podSelector: sel({ app: x }),
            ingress: [
              {
                from: [
                  { namespaceSelector: sel({ team: other }), podSelector: sel({}, [{ key: 'tier', operator: 'In', values: ['frontend', 'backend'] }]) },
                  { namespaceSelector: sel({}, [{ key: 'env', operator: 'In', values: ['prod'] }]), podSelector: sel({ app: b.name }) },
                ],
                ports: [{ port: 'grpc' }, { port: 8443 }],
              },
            ],
          },
        ];
        break;
      case 3:
        yield [
          `${x}-from-networks`,
          {
            podSelector: sel({ app: x }),
            ingress: [
              {
                from: [
                  { ipBlock: { cidr: '10.0.0.0/8', except: [POD_NET4, '10.96.0.0/12'] } },
                  { ipBlock: { cidr: '192.168.0.0/16', except: ['192.168.100.0/24', '192.168.200.0/24'] } },
                  { ipBlock: { cidr: 'fd00::/8', except: ['fd60::/64'] } },
                ],
                ports: [{ port: 443 }, { port: 80 }],
              },
            ],
          },
        ];
        break;
      case 4:
        yield [
          `${x}-port-ranges`,
          {
            podSelector: sel({ app: x }),
            ingress: [{ from: [{ podSelector: sel({}, [{ key: 'app', operator: 'Exists' }]) }], ports: [{ port: 30000, endPort: 32767 }, { protocol: 'UDP', port: 9000, endPort: 9100 }] }],
          },
        ];
        break;
      case 5:
        yield [
          `${x}-egress-deps`,
          {
            podSelector: sel({ app: x }),
            policyTypes: ['Egress'],
            egress: [
              { to: [{ podSelector: sel({ app: b.name }) }], ports: [{ port: 'grpc' }, { port: 'http' }] },
              { to: [{ podSelector: sel({ tier: 'db' }) }], ports: [{ port: 'db' }] },
              { to: [{ podSelector: sel({ tier: 'cache' }) }], ports: [{ port: 'redis' }] },
            ],
          },
        ];
        break;
      case 6:
        yield [
          `${x}-egress-internet`,
          {
            podSelector: sel({ app: x }),
            policyTypes: ['Egress'],
            egress: [
              { to: [{ ipBlock: { cidr: '0.0.0.0/0', except: ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16'] } }], ports: [{ port: 443 }] },
              { to: [{ namespaceSelector: nsName(`${other}-prod`) }], ports: [{ port: 8080 }, { port: 9000, endPort: 9010 }] },
            ],
          },
        ];
        break;
      default:
        yield [
          `${x}-expressions`,
          {
            podSelector: sel({}, [
              { key: 'app', operator: 'In', values: [x, b.name] },
              { key: 'version', operator: 'NotIn', values: ['canary'] },
            ]),
            ingress: [
              {
                from: [
                  { podSelector: sel({}, [{ key: 'tier', operator: 'In', values: ['frontend'] }, { key: 'version', operator: 'Exists' }]) },
                  { namespaceSelector: sel({}, [{ key: 'team', operator: 'Exists' }, { key: 'env', operator: 'NotIn', values: ['staging'] }]) },
                ],
                ports: [{ port: 'http' }, { port: 8080 }],
              },
            ],
          },
        ];
    }
  }
}

/** `n` policies over the cluster's projects (not `bench`), round-robin by project: any prefix looks like a cluster. */
export function fillerPolicies(c: Cluster, n: number): Policy[] {
  const gens = ['kube-system', 'monitoring', ...TEAM_PROJECTS].map((p) => ({ p, g: projectPolicies(c, p), seen: new Set<string>() }));
  const out: Policy[] = [];
  while (out.length < n) {
    let progressed = false;
    for (const x of gens) {
      if (out.length >= n) break;
      const r = x.g.next();
      if (r.done) continue;
      progressed = true;
      let [name] = r.value;
      for (let k = 2; x.seen.has(name); k++) name = `${r.value[0]}-${k}`;
      x.seen.add(name);
      out.push(policyOf(x.p, name, r.value[1]));
    }
    if (!progressed) break;
  }
  return out;
}

/** The three policies of the measured pair: default deny both ways, server <- client on `http`, client -> server and DNS. */
export function benchPolicies(c: Cluster): Policy[] {
  return [...projectPolicies(c, BENCH_PROJECT)].map(([name, spec]) => policyOf(BENCH_PROJECT, name, spec));
}

export function worldOf(c: Cluster, policies: Policy[], pods: Pod[] = c.pods): PolicyWorld {
  return { projects: c.projects, pods, policies };
}

// ---------------------------------------------------------------------------------------------
// the linear reference: the same allow semantics as one rule per policy rule, walked in order

export const LINEAR_TABLE = 'weft-b-linpol';

/**
 * `table inet weft-b-linpol`: what an iptables-style enforcer writes (one rule per policy rule,
 * matching the policy's selected pods and the rule's peers and ports through sets), in policy order,
 * `last` policies at the end. A new connection walks the egress chain, then the ingress chain, rule by
 * rule until one returns; an isolated pod that no rule admits is dropped at the end of the chain.
 */
export function linearBody(world: PolicyWorld, last: Policy[] = []): { body: string; rules: number; sets: number; elements: number } {
  const pods = world.pods.filter((p) => p.ips.length > 0);
  const lastIds = new Set(last.map((p) => p.id));
  const order = [...world.policies].sort((a, b) => Number(lastIds.has(a.id)) - Number(lastIds.has(b.id)) || `${a.project}/${a.name}`.localeCompare(`${b.project}/${b.name}`));
  const decls: string[] = [];
  const byContent = new Map<string, string>();
  let elements = 0;
  const set = (type: string, els: string[], interval: boolean): string => {
    const sorted = [...new Set(els)].sort();
    const key = `${type}|${sorted.join(',')}`;
    let name = byContent.get(key);
    if (!name) {
      name = `l${byContent.size}`;
      byContent.set(key, name);
      elements += sorted.length;
      decls.push(`  set ${name} {\n    type ${type}${interval ? '\n    flags interval' : ''}\n    elements = { ${sorted.join(', ')} }\n  }\n`);
    }
    return name;
  };
  const fam = [
    { f: 4 as const, ip: 'ip', t: 'ipv4_addr', is: (a: string) => !a.includes(':') },
    { f: 6 as const, ip: 'ip6', t: 'ipv6_addr', is: (a: string) => a.includes(':') },
  ];
  const chains = { Ingress: [] as string[], Egress: [] as string[] };
  const isolated = { Ingress: new Set<string>(), Egress: new Set<string>() };
  const projectsMatching = (s: PolicyPeer['namespaceSelector']): string[] => [...world.projects.keys()].filter((n) => matchSelector(s!, projectLabels(world, n)));
  const byProject = new Map<string, Pod[]>();
  for (const pod of pods) {
    const l = byProject.get(pod.project);
    if (l) l.push(pod);
    else byProject.set(pod.project, [pod]);
  }
  for (const p of order) {
    const selected = (byProject.get(p.project) ?? []).filter((pod) => matchSelector(p.spec.podSelector, pod.labels));
    for (const dir of ['Ingress', 'Egress'] as const) {
      if (!p.spec.policyTypes.includes(dir)) continue;
      for (const pod of selected) for (const ip of pod.ips) isolated[dir].add(ip);
      const own = dir === 'Ingress' ? 'daddr' : 'saddr';
      const other = dir === 'Ingress' ? 'saddr' : 'daddr';
      const rules = dir === 'Ingress' ? p.spec.ingress.map((r) => ({ peers: r.from, ports: r.ports })) : p.spec.egress.map((r) => ({ peers: r.to, ports: r.ports }));
      for (const rule of rules) {
        // peers: addresses (pods by selector, ipBlocks with except) and the pods themselves (for named ports on egress)
        let addrs: AddrRanges | 'any' = 'any';
        let peerPods: Pod[] = pods;
        if (rule.peers.length) {
          const a = new AddrRanges();
          const chosen = new Set<Pod>();
          for (const peer of rule.peers) {
            if (peer.ipBlock) {
              a.addBlock(peer.ipBlock.cidr, peer.ipBlock.except);
              continue;
            }
            const projs = peer.namespaceSelector ? projectsMatching(peer.namespaceSelector) : [p.project];
            for (const proj of projs)
              for (const pod of byProject.get(proj) ?? []) {
                if (peer.podSelector && !matchSelector(peer.podSelector, pod.labels)) continue;
                chosen.add(pod);
                for (const ip of pod.ips) a.addIp(ip);
              }
          }
          addrs = a;
          peerPods = [...chosen];
        }
        const numeric: string[] = [];
        const named = rule.ports.filter((x) => typeof x.port === 'string');
        for (const port of rule.ports) {
          if (typeof port.port === 'string') continue;
          const r = portRange(port);
          const [lo, hi] = r === 'all' || r === undefined ? [0, 65535] : r;
          numeric.push(`${portProtocol(port)} . ${lo === hi ? lo : `${lo}-${hi}`}`);
        }
        for (const { f, ip, t, is } of fam) {
          const mine = selected.flatMap((pod) => pod.ips.filter(is));
          if (!mine.length) continue;
          const selSet = set(t, mine, false);
          let peerMatch = '';
          if (addrs !== 'any') {
            const els = addrs.elements(f);
            if (!els.length) continue;
            peerMatch = ` ${ip} ${other} @${set(t, els, true)}`;
          }
          if (!rule.ports.length) chains[dir].push(`${ip} ${own} @${selSet}${peerMatch} return`);
          if (numeric.length) chains[dir].push(`${ip} ${own} @${selSet}${peerMatch} meta l4proto . th dport @${set('inet_proto . inet_service', numeric, true)} return`);
          if (named.length) {
            // the named port is the destination's: the selected pod's on ingress, the peer's on egress
            const dests = dir === 'Ingress' ? selected : peerPods;
            const els: string[] = [];
            for (const d of dests)
              for (const port of named) {
                const n = resolveNamedPort(d.namedPorts, port.port as string, portProtocol(port));
                if (n !== undefined) for (const a of d.ips.filter(is)) els.push(`${a} . ${portProtocol(port)} . ${n}`);
              }
            if (!els.length) continue;
            const np = set(`${t} . inet_proto . inet_service`, els, false);
            chains[dir].push(dir === 'Ingress' ? `${ip} daddr . meta l4proto . th dport @${np}${peerMatch} return` : `${ip} saddr @${selSet} ${ip} daddr . meta l4proto . th dport @${np} return`);
          }
        }
      }
    }
  }
  const self: Record<4 | 6, string[]> = { 4: [], 6: [] };
  for (const pod of pods) for (const { f, is } of fam) for (const a of pod.ips.filter(is)) self[f].push(`${a} . ${a}`);
  const tail: Record<'Ingress' | 'Egress', string[]> = { Ingress: [], Egress: [] };
  for (const dir of ['Ingress', 'Egress'] as const)
    for (const { ip, t, is } of fam) {
      const iso = [...isolated[dir]].filter(is);
      if (iso.length) tail[dir].push(`${ip} ${dir === 'Ingress' ? 'daddr' : 'saddr'} @${set(t, iso, false)} drop`);
    }
  const selfDecl = (f: 4 | 6, t: string): string => `  set self${f} {\n    type ${t} . ${t}${self[f].length ? `\n    elements = { ${self[f].join(', ')} }` : ''}\n  }\n`;
  const chainText = (name: string, lines: string[]): string => `  chain ${name} {\n${lines.map((l) => `    ${l}\n`).join('')}  }\n`;
  const body = [
    ...decls,
    selfDecl(4, 'ipv4_addr'),
    selfDecl(6, 'ipv6_addr'),
    `  chain forward {
    type filter hook forward priority filter - 10; policy accept;
    ct state established,related accept
    icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert, nd-router-solicit, mld-listener-query, mld-listener-report, mld2-listener-report } accept
    ip saddr . ip daddr @self4 accept
    ip6 saddr . ip6 daddr @self6 accept
    jump egress
    jump ingress
  }
`,
    chainText('egress', [...chains.Egress, ...tail.Egress]),
    chainText('ingress', [...chains.Ingress, ...tail.Ingress]),
  ].join('\n');
  return { body, rules: chains.Egress.length + chains.Ingress.length, sets: decls.length + 2, elements: elements + self[4].length + self[6].length };
}

// ---------------------------------------------------------------------------------------------
// command line (only when run, not when imported)

const IS_MAIN = process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href;

const { options, extra } = IS_MAIN
  ? parseBenchArgs(
      { runs: 5, warmup: 1 },
      {
        policies: { type: 'string', default: '1000', help: 'policies in the programming world and the large latency configurations' },
        mid: { type: 'string', default: '100', help: 'policies in the middle latency configurations' },
        pods: { type: 'string', default: '10000', help: 'pods (containers) in every world' },
        connects: { type: 'string', default: '2000', help: 'TCP connects per latency sample (one sample = their p50 / p90)' },
      },
    )
  : { options: null, extra: {} as Record<string, string | boolean | undefined> };

function intOpt(name: string, dflt: number, min: number, max: number): number {
  if (!IS_MAIN) return dflt;
  const n = Number(extra[name]);
  if (!Number.isInteger(n) || n < min || n > max) {
    process.stderr.write(`--${name} must be an integer from ${min} to ${max}\n`);
    process.exit(2);
  }
  return n;
}
const POLICIES = intOpt('policies', 1000, 10, 20_000);
const MID = intOpt('mid', 100, 1, 20_000);
const PODS = intOpt('pods', 10_000, 1000, 60_000);
const CONNECTS = intOpt('connects', 2000, 100, 100_000);
const short = (n: number): string => (n >= 1000 && n % 1000 === 0 ? `${n / 1000}k` : String(n));
const LARGE = short(POLICIES);
const MIDS = short(MID);

const log = (s: string): void => {
  process.stderr.write(`${s}\n`);
};
const ms = (t0: number): number => performance.now() - t0;

/** Built once, shared by every configuration. */
let clusterCache: Cluster | null = null;
const cluster = (): Cluster => (clusterCache ??= buildCluster(PODS));
let fillerCache: Policy[] | null = null;
/** The first n filler policies (every list is a prefix of the longest). */
const fillers = (n: number): Policy[] => (fillerCache ??= fillerPolicies(cluster(), Math.max(POLICIES, MID))).slice(0, n);

/** The programming worlds: the full one, one pod's `app` label changed, one policy added. */
interface ProgWorlds {
  base: PolicyWorld;
  label: PolicyWorld;
  added: PolicyWorld;
  labelWhat: string;
  addedWhat: string;
}
let progCache: ProgWorlds | null = null;
function progWorlds(): ProgWorlds {
  if (progCache) return progCache;
  const c = cluster();
  const pols = fillers(POLICIES);
  const project = TEAM_PROJECTS[0];
  const apps = c.appsByProject.get(project) ?? [];
  const idx = c.pods.findIndex((p) => p.project === project && p.labels.app === apps[0].name);
  const pod = c.pods[idx];
  const moved: Pod = { ...pod, labels: { ...pod.labels, app: apps[1].name } };
  const pods = c.pods.slice();
  pods[idx] = moved;
  const added = policyOf(project, 'added-partner-access', {
    podSelector: sel({ app: apps[2].name }),
    ingress: [{ from: [{ namespaceSelector: sel({ team: TEAMS[1] }), podSelector: sel({ tier: 'frontend' }) }], ports: [{ port: 8080 }, { port: 'http' }] }],
  });
  progCache = {
    base: worldOf(c, pols),
    label: worldOf(c, pols, pods),
    added: worldOf(c, [...pols, added]),
    labelWhat: `pod ${project}/${pod.name} (${pod.ips.join(', ')}): app=${apps[0].name} -> app=${apps[1].name}`,
    addedWhat: `${project}/added-partner-access: app=${apps[2].name} <- team=${TEAMS[1]} frontends on 8080 and the named port http`,
  };
  return progCache;
}

const statsText = (s: CompiledPolicies['stats']): string =>
  `${s.pods.toLocaleString('en')} pods (${s.isolatedIngress.toLocaleString('en')} isolated for ingress, ${s.isolatedEgress.toLocaleString('en')} for egress), ${s.chains} chains, ${s.sets} sets, ${s.elements.toLocaleString('en')} elements`;

function srcFact(rel: string): string {
  const src = join(REPO_ROOT, rel);
  return `${rel} as imported at start: sha256 ${createHash('sha256').update(readFileSync(src)).digest('hex').slice(0, 12)}, modified ${statSync(src).mtime.toISOString().slice(0, 19)} UTC`;
}

/** What the report's "compiled table" section and policy.json show. */
const tables: Record<string, Record<string, unknown>> = {};

// ---------------------------------------------------------------------------------------------
// 1. programming time

function progConfig(kind: 'weft' | 'linear'): Config {
  const ns = benchName(kind === 'weft' ? 'pw' : 'pl', 'netns');
  const table = kind === 'weft' ? POLICY_TABLE : LINEAR_TABLE;
  const facts: string[] = [];
  const opts = { netns: ns };
  /** compile: weft = compilePolicies (+ renderPolicyTable with the counters' values); linear = linearBody */
  const compile = (w: PolicyWorld, values?: Map<string, { packets: number; bytes: number }>): { body: string; compileMs: number; renderMs: number; compiled?: CompiledPolicies; lin?: ReturnType<typeof linearBody> } => {
    const t0 = performance.now();
    if (kind === 'linear') {
      const lin = linearBody(w);
      return { body: lin.body, compileMs: ms(t0), renderMs: 0, lin };
    }
    const compiled = compilePolicies(w);
    const t1 = performance.now();
    const body = renderPolicyTable(compiled, values);
    return { body, compileMs: t1 - t0, renderMs: ms(t1), compiled };
  };
  return {
    name: kind,
    describe:
      kind === 'weft'
        ? `weft's compiler (src/policy/compile.ts compilePolicies + renderPolicyTable) and src/kernel/nft.ts nftReplaceTable (one \`nft -f\` transaction through \`ip netns exec\`) of \`table inet ${POLICY_TABLE}\` in a scratch netns; ${POLICIES.toLocaleString('en')} policies over ${PODS.toLocaleString('en')} pods. A change follows the controller (src/agent/policy.ts sync): compile the whole world, read the drop counters (nftListCounters), replace the whole table`
        : `the same policies as a linear iptables-style ruleset (this file's linearBody: one rule per policy rule and family, selected pods, peers and ports through sets, walked in order), \`table inet ${LINEAR_TABLE}\` applied with the same nftReplaceTable; its "compile" is this bench's own straightforward resolver (per policy: filter the project's pods; per rule: the peers' pods), not a product's; every change rewrites the whole table`,
    setup: async () => {
      await netnsAdd(ns);
      const w = progWorlds();
      if (kind === 'weft') facts.push(srcFact('src/policy/compile.ts'), srcFact('src/kernel/nft.ts'));
      facts.push(`label change: ${w.labelWhat}`, `policy added: ${w.addedWhat}`, `nft ${(await run('nft', ['--version'])).stdout.trim()}`);
    },
    measure: async (round) => {
      const w = progWorlds();
      const tag = `    ${kind}${round < 0 ? ' (warmup)' : ` round ${round + 1}`}:`;
      await nftDeleteTable('inet', table, opts); // untimed: from an empty netns
      // the whole table, fresh
      const full = compile(w.base);
      log(`${tag} compile ${fmt(full.compileMs / 1000)} s`);
      let t0 = performance.now();
      await nftReplaceTable('inet', table, full.body, opts);
      const apply = ms(t0);
      // the same body over the existing table (an agent restart, or a change that changes nothing the kernel sees)
      t0 = performance.now();
      await nftReplaceTable('inet', table, full.body, opts);
      const replace = ms(t0);
      t0 = performance.now();
      const counters = kind === 'weft' ? await nftListCounters('inet', table, opts) : undefined;
      const readCounters = ms(t0);
      if (kind === 'weft' && counters?.size !== (full.compiled?.counters.size ?? -1)) throw new Error(`listed ${counters?.size} counters, the table has ${full.compiled?.counters.size}`);
      // one pod's label changed, then one policy added: the controller's whole path
      const change = async (world: PolicyWorld): Promise<{ total: number; compile: number; apply: number }> => {
        const t = performance.now();
        const values = kind === 'weft' ? await nftListCounters('inet', table, opts) : undefined;
        const c = compile(world, values);
        const t1 = performance.now();
        await nftReplaceTable('inet', table, c.body, opts);
        return { total: ms(t), compile: c.compileMs + c.renderMs, apply: ms(t1) };
      };
      const label = await change(w.label);
      const added = await change(w.added);
      log(`${tag} label change ${fmt(label.total / 1000)} s, policy added ${fmt(added.total / 1000)} s`);
      t0 = performance.now();
      await nftApply(`add table inet ${table}\n`, opts);
      const floor = ms(t0);
      if (!tables[`programming ${kind}`]) {
        const lines = full.body.split('\n').length;
        const size = `${(full.body.length / 2 ** 20).toFixed(2)} MiB, ${lines.toLocaleString('en')} lines`;
        if (full.compiled) {
          tables['programming weft'] = { policies: w.base.policies.length, ...full.compiled.stats, counters: full.compiled.counters.size, bytes: full.body.length, lines };
          facts.push(`table: ${statsText(full.compiled.stats)}, ${full.compiled.counters.size} counters; ${size}`);
        } else if (full.lin) {
          tables['programming linear'] = { policies: w.base.policies.length, rules: full.lin.rules, sets: full.lin.sets, elements: full.lin.elements, bytes: full.body.length, lines };
          facts.push(`table: ${full.lin.rules.toLocaleString('en')} rules, ${full.lin.sets} sets, ${full.lin.elements.toLocaleString('en')} elements; ${size}`);
        }
      }
      return {
        'full: total': full.compileMs + full.renderMs + apply,
        'full: compile': full.compileMs + full.renderMs,
        ...(kind === 'weft' ? { 'compile: render': full.renderMs, 'read counters': readCounters } : {}),
        'full: apply': apply,
        'full: replace': replace,
        'label change': label.total,
        'label change: apply': label.apply,
        'policy added': added.total,
        'policy added: apply': added.apply,
        'no-op transaction': floor,
      };
    },
    teardown: async () => {
      await netnsDelete(ns);
    },
    info: () => facts,
  };
}

// ---------------------------------------------------------------------------------------------
// 2. connect latency across the lab host's bridge

/**
 * One lab host per configuration, its table to itself:
 *
 *   [client netns -kN: eth0 CLIENT/16 (+ PROBE/16)] --veth-- [host netns -hN: bridge -bN 10.60.0.1/16,
 *        br_netfilter on (net.bridge.bridge-nf-call-iptables=1 in this netns), the configuration's
 *        table] --veth-- [server netns -vN: eth0 SERVER/16, svc-server.mjs on :8080]
 *
 * Client and server are two pods of the world (project `bench`), so the table has their programs.
 */
class LabHost {
  readonly host: string;
  readonly client: string;
  readonly server: string;
  private readonly bridge: string;
  private readonly ports: [string, string];
  private proc: Detached | null = null;
  private made: string[] = [];

  constructor(n: number) {
    this.host = benchName(`h${n}`, 'netns');
    this.client = benchName(`k${n}`, 'netns');
    this.server = benchName(`v${n}`, 'netns');
    this.bridge = benchName(`b${n}`, 'link');
    this.ports = [benchName(`c${n}`, 'link'), benchName(`s${n}`, 'link')];
  }

  async up(c: Cluster): Promise<void> {
    for (const ns of [this.host, this.client, this.server]) {
      this.made.push(ns);
      await netnsAdd(ns);
    }
    const prefix = POD_NET4.split('/')[1];
    await run('ip', ['-n', this.host, '-batch', '-'], {
      input: [
        `link add ${this.bridge} address 02:60:00:00:00:01 type bridge`,
        `addr add ${GATEWAY4}/${prefix} dev ${this.bridge}`,
        `link set ${this.bridge} up`,
        `link add ${this.ports[0]} type veth peer name eth0 netns ${this.client}`,
        `link add ${this.ports[1]} type veth peer name eth0 netns ${this.server}`,
        `link set ${this.ports[0]} master ${this.bridge} up`,
        `link set ${this.ports[1]} master ${this.bridge} up`,
        '',
      ].join('\n'),
    });
    await run('ip', ['-n', this.client, '-batch', '-'], { input: `addr add ${c.client.ips[0]}/${prefix} dev eth0\naddr add ${c.probe.ips[0]}/${prefix} dev eth0\nlink set eth0 up\n` });
    await run('ip', ['-n', this.server, '-batch', '-'], { input: `addr add ${c.server.ips[0]}/${prefix} dev eth0\nlink set eth0 up\n` });
    // bridged IPv4/IPv6 through the inet forward hook, in this netns only
    for (const k of ['net.bridge.bridge-nf-call-iptables', 'net.bridge.bridge-nf-call-ip6tables']) await run('ip', ['netns', 'exec', this.host, 'sysctl', '-q', '-w', `${k}=1`]);
    const got = (await run('ip', ['netns', 'exec', this.host, 'cat', '/proc/sys/net/bridge/bridge-nf-call-iptables'])).stdout.trim();
    if (got !== '1') throw new Error(`net.bridge.bridge-nf-call-iptables is ${got} in ${this.host}`);
    const logFile = join(runSubdir('pol'), `${this.server}.log`);
    this.proc = startDetached('ip', ['netns', 'exec', this.server, process.execPath, SERVER_JS, String(SERVER_PORT)], logFile);
    const proc = this.proc;
    await waitFor(
      `svc-server in ${this.server}`,
      async () => {
        if (!proc.isRunning()) throw new Error(`svc-server exited: ${readFileSync(logFile, 'utf8').trim().slice(-300)}`);
        return readFileSync(logFile, 'utf8').includes('listening');
      },
      10_000,
      20,
    );
  }

  /** Runs svc-client.mjs in the client netns and parses its JSON line. */
  async clientRun<T>(args: string[], timeoutMs = 120_000): Promise<T> {
    const r = await run('ip', ['netns', 'exec', this.client, process.execPath, CLIENT_JS, ...args], { timeoutMs });
    const line = r.stdout.trim().split('\n').pop() ?? '';
    try {
      return JSON.parse(line) as T;
    } catch {
      throw new Error(`svc-client ${args[0]} in ${this.client}: no JSON: ${(r.stdout + r.stderr).trim().slice(0, 300)}`);
    }
  }

  async down(): Promise<void> {
    if (this.proc) await killPid(this.proc.pid, 2000);
    this.proc = null;
    for (const ns of this.made.splice(0).reverse()) await netnsDelete(ns);
  }
}

const latency = new InterleavedLatency(CONNECTS);


/** The chain a verdict map sends an address to, and that chain's rules (from the compiled body). */
function programOf(body: string, map: string, ip: string): { chain: string; rules: string[] } | null {
  const decl = new RegExp(`map ${map} \\{[^}]*\\}`).exec(body)?.[0] ?? '';
  const chain = new RegExp(`(?:^|[ ,{])${ip.replace(/\./g, '\\.')} : jump ([a-z]+-\\d+)`).exec(decl)?.[1];
  if (!chain) return null;
  const text = new RegExp(`chain ${chain} \\{\\n([^}]*)\\}`).exec(body)?.[1] ?? '';
  return { chain, rules: text.split('\n').map((l) => l.trim()).filter(Boolean) };
}

type LatencyKind = 'none' | 'ct' | 'weft' | 'linear';

function latencyConfig(kind: LatencyKind, others: number, n: number): Config {
  const name = kind === 'none' || kind === 'ct' ? kind : `${kind}-${short(others)}`;
  const lab = new LabHost(n);
  const facts: string[] = [];
  const describe = {
    none: 'the same path with no table in the lab host (br_netfilter on, no conntrack: nothing hooks forward)',
    ct: 'the lab host with one forward chain doing only `ct state established,related accept` (conntrack, no policy)',
    weft: `weft's \`table inet ${POLICY_TABLE}\` (compilePolicies + renderPolicyTable, nftReplaceTable) for ${others.toLocaleString('en')} other policies + the 3 of project \`bench\` over ${PODS.toLocaleString('en')} pods: the SYN meets the client's egress program and the server's ingress program through two verdict-map lookups`,
    linear: `the linear ruleset (linearBody) of the same ${others.toLocaleString('en')} + 3 policies, the 3 of \`bench\` last: the SYN walks every egress rule, then every ingress rule, before the ones that admit it`,
  }[kind];
  return {
    name,
    describe: `${describe}; TCP connects from the client pod to the server pod :${SERVER_PORT} across the host's bridge`,
    setup: async () => {
      const c = cluster();
      await lab.up(c);
      const world = worldOf(c, [...fillers(others), ...benchPolicies(c)]);
      const opts = { netns: lab.host };
      if (kind === 'weft') {
        let t0 = performance.now();
        const compiled = compilePolicies(world);
        const body = renderPolicyTable(compiled);
        const compileMs = ms(t0);
        t0 = performance.now();
        await nftReplaceTable('inet', POLICY_TABLE, body, opts);
        const applyMs = ms(t0);
        const eg = programOf(body, 'egress4', c.client.ips[0]);
        const ing = programOf(body, 'ingress4', c.server.ips[0]);
        if (!eg || !ing) throw new Error(`the table has no ${!eg ? 'egress program for the client' : 'ingress program for the server'}`);
        facts.push(
          `${world.policies.length.toLocaleString('en')} policies: compiled in ${fmt(compileMs / 1000)} s, applied in ${fmt(applyMs / 1000)} s; ${statsText(compiled.stats)}; ${(body.length / 2 ** 20).toFixed(2)} MiB`,
          `client egress program ${eg.chain}: ${eg.rules.length} rules; server ingress program ${ing.chain}: ${ing.rules.length} rules (\`${ing.rules.join(' ; ')}\`)`,
        );
        tables[name] = { policies: world.policies.length, ...compiled.stats, bytes: body.length, compileMs, applyMs, clientEgress: eg, serverIngress: ing };
      } else if (kind === 'linear') {
        let t0 = performance.now();
        const lin = linearBody(world, benchPolicies(c));
        const compileMs = ms(t0);
        t0 = performance.now();
        await nftReplaceTable('inet', LINEAR_TABLE, lin.body, opts);
        const applyMs = ms(t0);
        facts.push(`${world.policies.length.toLocaleString('en')} policies: ${lin.rules.toLocaleString('en')} rules, ${lin.sets} sets, ${lin.elements.toLocaleString('en')} elements; written in ${fmt(compileMs / 1000)} s, applied in ${fmt(applyMs / 1000)} s`);
        tables[name] = { policies: world.policies.length, rules: lin.rules, sets: lin.sets, elements: lin.elements, bytes: lin.body.length, compileMs, applyMs };
      } else if (kind === 'ct') {
        await nftReplaceTable('inet', 'weft-b-ct', 'chain forward {\n  type filter hook forward priority filter - 10; policy accept;\n  ct state established,related accept\n}\n', opts);
      }
      // the client must get through and, under a policy, the probe (same project, not admitted by the server's ingress) must not
      const ok = await lab.clientRun<{ errors: number }>(['latency', '--host', c.server.ips[0], '--port', String(SERVER_PORT), '--count', '5', '--warmup', '0']);
      if (ok.errors) throw new Error(`${ok.errors} of 5 connects from the client ${c.client.ips[0]} to the server ${c.server.ips[0]}:${SERVER_PORT} failed`);
      const probe = await lab.clientRun<{ errors: number }>(['backends', '--host', c.server.ips[0], '--port', String(SERVER_PORT), '--sources', c.probe.ips[0]]);
      const policed = kind === 'weft' || kind === 'linear';
      const model = (from: Pod): string => {
        const v = evaluate(world, { from: { ip: from.ips[0], pod: from }, to: { ip: c.server.ips[0], pod: c.server }, protocol: 'tcp', port: SERVER_PORT });
        return `${v.allowed ? 'allowed' : 'denied'} (${explain(v).join('; ')})`;
      };
      if (policed && probe.errors !== 1) throw new Error(`the probe ${c.probe.ips[0]} reached the server: the table does not police it`);
      if (!policed && probe.errors) throw new Error(`the probe ${c.probe.ips[0]} did not reach the server with no policy in the way`);
      facts.push(
        `lab: host ${lab.host} (bridge, br_netfilter), client ${lab.client} (${c.client.ips[0]}, probe ${c.probe.ips[0]}), server ${lab.server} (${c.server.ips[0]}:${SERVER_PORT})`,
        policed
          ? `checked in the kernel: client -> server connects; probe -> server is dropped. The model (evaluate) says client -> server ${model(c.client)}; probe -> server ${model(c.probe)}`
          : 'checked: client and probe both reach the server (no policy)',
      );
      const host = c.server.ips[0]!;
      latency.join({ name, target: `${host}:${SERVER_PORT}`, run: (n) => lab.clientRun<RawLatencyJson>(latencyArgs(host, SERVER_PORT, n)) });
    },
    measure: async (round) => {
      const xs = await latency.samples(name, round);
      return { 'connect p50': pct(xs, 0.5), 'connect p90': pct(xs, 0.9) };
    },
    teardown: async () => {
      latency.leave(name);
      await lab.down();
    },
    info: () => [...facts, latency.describe()],
  };
}

// ---------------------------------------------------------------------------------------------

const targets: Target[] = [
  { metric: 'connect p50', config: `weft-${MIDS}`, versus: 'weft-0', op: '<=', ratio: 1.1 },
  { metric: 'connect p50', config: `weft-${LARGE}`, versus: 'weft-0', op: '<=', ratio: 1.1 },
  { metric: 'connect p90', config: `weft-${LARGE}`, versus: 'weft-0', op: '<=', ratio: 1.1 },
];

const bench: Bench = {
  name: 'policy',
  title: `Network policy: ${POLICIES.toLocaleString('en')} NetworkPolicies over ${PODS.toLocaleString('en')} pods — programming time and per-connection cost`,
  description: [
    `**The world**: ${PODS.toLocaleString('en')} pods in 20 projects (kube-system, monitoring, 9 teams x prod/staging; prod projects labelled team= and env=, some staging ones only env=) plus project \`bench\`,`,
    'about 500 apps (labels app, tier, version; replicas skewed), IPv4 from 10.60.0.0/16 and every fifth pod also IPv6 (fd60::/64), named ports that differ between apps (`http` is 8080 on one, 3000 on another).',
    'The policies are Kubernetes objects read through weft\'s own parser (src/policy/parse.ts normalizePolicy), in the mix real clusters have: per-project default deny (ingress; egress with DNS to kube-system allowed),',
    'allow from Prometheus on the named port `metrics`, allow from the ingress controller, and per app: from the same app, from frontends on `http`, cross-team (namespaceSelector + podSelector with matchExpressions),',
    'ipBlock with except (IPv4 and IPv6), port ranges with endPort, egress to other apps\' named ports (`grpc`, `http`, `db`, `redis`), egress to the internet (0.0.0.0/0 except private ranges), matchExpressions with NotIn/Exists;',
    'Prometheus may reach the named port `metrics` of every pod. Any prefix of the list is itself a plausible cluster (the namespace-wide policies come first).',
    `**Programming** (weft, linear; a scratch netns each): per round, from an empty netns, the whole table (\`full: compile\` in Node, \`full: apply\` one transaction, \`full: total\`), the same body over the existing table (\`full: replace\`),`,
    'reading the drop counters, then the controller\'s path for one change: one pod\'s `app` label changed (`label change`) and one policy added (`policy added`) = read counters + compile the whole world + replace the whole table (src/agent/policy.ts applies whole tables), and a no-op transaction (the floor: `ip netns exec` + nft start-up).',
    `**Per-connection cost** (none, ct, weft-0, weft-${MIDS}, weft-${LARGE}, linear-0, linear-${MIDS}, linear-${LARGE}): one lab host netns per configuration with a Linux bridge (br_netfilter on in that netns) between a client netns and a server netns, both pods of project \`bench\`, whose 3 policies`,
    '(default deny both ways; server ingress from app=client on the named port `http`; client egress to the server and DNS) are in every weft/linear table, so the SYN always runs the client\'s egress and the server\'s ingress program;',
    `weft-N / linear-N add N other policies over the other pods. A sample is the p50 or p90 of ${CONNECTS} sequential TCP connects (svc-client.mjs: process.hrtime from connect() to the connect event, then a RST) made in ${latency.chunks} interleaved, rotated chunks per round across all configurations.`,
  ].join(' '),
  metrics: [
    { name: 'full: total', unit: 'ms', better: 'lower', note: `Compile + apply of the whole table from an empty netns. Target (issue): weft ≤ 2 s for ${POLICIES.toLocaleString('en')} policies over ${PODS.toLocaleString('en')} pods.` },
    { name: 'full: compile', unit: 'ms', better: 'lower', note: 'weft: compilePolicies + renderPolicyTable; linear: this bench\'s own resolver writing the linear text.' },
    { name: 'compile: render', unit: 'ms', better: 'lower', note: 'renderPolicyTable alone (counters + body).' },
    { name: 'full: apply', unit: 'ms', better: 'lower', note: 'nftReplaceTable (one `nft -f` through `ip netns exec`) with no table present.' },
    { name: 'full: replace', unit: 'ms', better: 'lower', note: 'The same body again with the table present: `table {}; delete table; table {...}` in one transaction.' },
    { name: 'read counters', unit: 'ms', better: 'lower', note: 'nftListCounters (`nft -j list counters table inet weft-policy`), which the controller does before every replace.' },
    { name: 'label change', unit: 'ms', better: 'lower', note: 'One pod\'s app label changed: read counters + compile the whole world + replace the whole table (the controller\'s sync).' },
    { name: 'label change: apply', unit: 'ms', better: 'lower' },
    { name: 'policy added', unit: 'ms', better: 'lower', note: 'One policy added: the same path.' },
    { name: 'policy added: apply', unit: 'ms', better: 'lower' },
    { name: 'no-op transaction', unit: 'ms', better: 'lower', note: 'The floor of any apply here: `ip netns exec` + nft (`add table` of the existing table).' },
    { name: 'connect p50', unit: 'µs', better: 'lower', note: `Median of ${CONNECTS} TCP connects per sample, client pod -> server pod across the lab host's bridge.` },
    { name: 'connect p90', unit: 'µs', better: 'lower' },
  ],
  configs: [
    progConfig('weft'),
    progConfig('linear'),
    latencyConfig('none', 0, 1),
    latencyConfig('ct', 0, 2),
    latencyConfig('weft', 0, 3),
    latencyConfig('weft', MID, 4),
    latencyConfig('weft', POLICIES, 5),
    latencyConfig('linear', 0, 6),
    latencyConfig('linear', MID, 7),
    latencyConfig('linear', POLICIES, 8),
  ],
  targets,
  notes: [
    'The programming configurations run nft through `ip netns exec` (the `no-op transaction` row is that floor); the agent runs nft in its own netns without it.',
    'weft\'s "0 policies" is not an empty table: the 3 policies of the measured pair are always there (with no policy at all the controller deletes the table: that is `none`). weft-N and linear-N add N other policies over the other pods; the pair\'s programs are the same in every weft table (see the configurations).',
    'The linear reference is what an iptables-style enforcer does (one rule per policy rule, in order, sets for addresses): it leaves out weft\'s drop counters and orders the measured pair\'s policies last, the worst case for the SYN.',
    `Addresses: pods 10.60.0.0/16 (lab host bridge ${GATEWAY4}), fd60::/64 in the model only; nothing is made in the root netns, and br_netfilter's sysctl is set only inside each lab host netns.`,
  ],
};

// ---------------------------------------------------------------------------------------------
// extra report sections

function samplesOf(metrics: MetricResult[], metric: string, config: string): number[] | undefined {
  return metrics.find((m) => m.metric.name === metric)?.rows.find((r) => r.config === config)?.samples;
}

function extraSections(metrics: MetricResult[]): string[] {
  const L: string[] = [];
  const pairs: [string, string, string][] = [
    ['full: total', 'weft', 'linear'],
    ['full: compile', 'weft', 'linear'],
    ['full: apply', 'weft', 'linear'],
    ['full: replace', 'weft', 'linear'],
    ['label change', 'weft', 'linear'],
    ['policy added', 'weft', 'linear'],
  ];
  for (const m of ['connect p50', 'connect p90']) {
    pairs.push(
      [m, `weft-${MIDS}`, 'weft-0'],
      [m, `weft-${LARGE}`, 'weft-0'],
      [m, `linear-${MIDS}`, 'linear-0'],
      [m, `linear-${LARGE}`, 'linear-0'],
      [m, `weft-${LARGE}`, `linear-${LARGE}`],
      [m, 'weft-0', 'ct'],
      [m, 'ct', 'none'],
      [m, 'weft-0', 'none'],
    );
  }
  L.push('## Ratios of medians (same run)', '', '| metric | ratio | value | 90 % interval |', '| --- | --- | ---: | ---: |');
  for (const [metric, a, b] of pairs) {
    const xa = samplesOf(metrics, metric, a);
    const xb = samplesOf(metrics, metric, b);
    if (!xa?.length || !xb?.length) continue;
    const mb = summarize(xb).median;
    const ratio = mb === 0 ? NaN : summarize(xa).median / mb;
    const iv = ratioInterval(xa, xb);
    L.push(`| ${metric} | ${a} / ${b} | **${fmt(ratio)}** | ${fmt(iv[0])}–${fmt(iv[1])} |`);
  }
  L.push('');
  L.push('## Absolute target (from the issue)', '', '| target | median | q1 – q3 | reading |', '| --- | ---: | ---: | --- |');
  const xs = samplesOf(metrics, 'full: total', 'weft');
  const what = `weft compile + apply, ${POLICIES.toLocaleString('en')} policies over ${PODS.toLocaleString('en')} pods ≤ 2 s`;
  if (!xs?.length) L.push(`| ${what} | – | – | not measured |`);
  else {
    const s = summarize(xs);
    const reading = s.q3 <= 2000 ? 'meets' : s.q1 > 2000 ? 'misses' : s.median <= 2000 ? 'meets (quartiles span the limit)' : 'misses (quartiles span the limit)';
    L.push(`| ${what} | **${fmt(s.median)} ms** | ${fmt(s.q1)} – ${fmt(s.q3)} | ${reading} |`);
  }
  const med = (m: string, c: string): number => summarize(samplesOf(metrics, m, c) ?? []).median;
  const [tc, ta, tt] = [med('full: compile', 'weft'), med('full: apply', 'weft'), med('full: total', 'weft')];
  if (Number.isFinite(tt)) L.push('', `Where weft's time goes (medians): compile ${fmt(tc)} ms (${fmt((100 * tc) / tt)} %), apply ${fmt(ta)} ms (${fmt((100 * ta) / tt)} %); the no-op floor of an apply here is ${fmt(med('no-op transaction', 'weft'))} ms.`);
  L.push('');
  if (Object.keys(tables).length) {
    L.push('## Compiled tables', '', '| table | policies | pods | isolated in / eg | chains or rules | sets | elements | size | compile (setup) | apply (setup) |', '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
    for (const [k, t] of Object.entries(tables)) {
      const n = (x: unknown): string => (typeof x === 'number' ? x.toLocaleString('en') : '–');
      const chainsOrRules = t.chains !== undefined ? `${n(t.chains)} chains` : `${n(t.rules)} rules`;
      const iso = t.isolatedIngress !== undefined ? `${n(t.isolatedIngress)} / ${n(t.isolatedEgress)}` : '–';
      const size = typeof t.bytes === 'number' ? `${(t.bytes / 2 ** 20).toFixed(2)} MiB` : '–';
      const msCell = (x: unknown): string => (typeof x === 'number' ? `${fmt(x)} ms` : '–');
      L.push(`| ${k} | ${n(t.policies)} | ${n(t.pods)} | ${iso} | ${chainsOrRules} | ${n(t.sets)} | ${n(t.elements)} | ${size} | ${msCell(t.compileMs)} | ${msCell(t.applyMs)} |`);
    }
    L.push('', 'Programming rows: the first measured round\'s table; latency rows: compiled and applied once at setup.', '');
  }
  return L;
}

if (IS_MAIN && options) {
  try {
    const result = await runBench(bench, options);
    const sections = extraSections(result.metrics);
    const report = join(result.dir, 'report.md');
    if (existsSync(report)) appendFileSync(report, `\n${sections.join('\n')}\n`);
    writeFileSync(join(result.dir, 'policy.json'), JSON.stringify({ policies: POLICIES, mid: MID, pods: PODS, connects: CONNECTS, tables }, null, 2));
    process.stdout.write(`\n${sections.filter((l) => !l.startsWith('| ---') && l !== '').join('\n')}\n`);
  } catch (e) {
    log(`policy: ${e instanceof Error ? e.message : String(e)}`);
    process.exitCode = 1;
  }
}
