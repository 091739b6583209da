/**
 * From the merged, interpolated tree to the Project: the top-level keys, the networks, the
 * services, and the checks that need all of them (references to networks and services,
 * dependency cycles, replicas against fixed names, addresses and ports), then the start order,
 * the default network and the config hashes. Pure; every problem is recorded on the Checker.
 */
import { type At, type Checker, closest } from './check.js';
import { type EndpointMode, WEIGHT_LABEL } from '../model/types.js';
import {
  BALANCER_LABEL,
  type Project,
  type ProjectBalancer,
  type ProjectNetwork,
  type ProjectService,
  type ServiceCreate,
  type ServiceNetwork,
  defaultNetworkName,
  networkConfigHash,
  networkLabels,
  balancerName,
  serviceConfigHash,
  LABELS,
} from './model.js';
import { type NetworkDef, inSubnets, networkCreate, readNetwork } from './network.js';
import type { HealthcheckRequest, PortRequest, ServicePortRequest } from '../api/schemas.js';
import type { HealthSpec } from '../health/spec.js';
import { type ReplicaPort, expandPorts } from './ports.js';
import { type DependencyRef, type NetworkRef, type ServiceContext, type ServiceDef, readService } from './service.js';
import { CONTAINER_NAME_RE, RESOURCE_KEY_RE } from './values.js';

const TOP_KEYS = ['version', 'name', 'services', 'networks'];
const TOP_UNSUPPORTED: Readonly<Record<string, string>> = {
  volumes: "weft runs host processes, which see the host's filesystem: there are no volumes",
  configs: "weft runs host processes, which see the host's filesystem: read the file from its path",
  secrets: "weft runs host processes, which see the host's filesystem: read the file from its path",
  include: 'not in weft yet: give the files with -f (they are merged)',
  models: 'not in weft yet',
};

const PREDEFINED = ['bridge', 'host', 'none'];
/** The agent's rule for service names (src/agent/services.ts): a DNS label. */
const SERVICE_NAME_RE = /^[a-zA-Z0-9]([a-zA-Z0-9_-]{0,61}[a-zA-Z0-9])?$/;
/** The agent's default source-affinity timeout, given explicitly so that a second up compares equal. */
const DEFAULT_AFFINITY_TIMEOUT = 10_800;
/** The agent balances at most 16 ports per service. */
const MAX_SERVICE_PORTS = 16;

export interface BuildInput {
  /** the merged tree */
  root: At;
  /** resolved already (-p, COMPOSE_PROJECT_NAME, name:, directory) */
  name: string;
  projectDir: string;
  files: string[];
  /** active profiles; '*' enables every service */
  profiles: readonly string[];
  service: ServiceContext;
}

/** The top-level keys: checks them and returns the ones to read. */
export function readTop(ck: Checker, root: At): Map<string, At> {
  const keys = ck.keys(root, { supported: TOP_KEYS, unsupported: TOP_UNSUPPORTED, extensions: true }, 'a mapping of top-level keys (services, networks...)');
  const version = keys?.get('version');
  if (version) ck.warn(version, 'the "version" key is obsolete and ignored');
  return keys ?? new Map();
}

function enabled(def: ServiceDef, profiles: readonly string[]): boolean {
  return def.profiles.length === 0 || profiles.includes('*') || def.profiles.some((p) => profiles.includes(p));
}

/** Kahn's algorithm, ties by name; returns undefined entries for services in cycles. */
function startOrder(services: Map<string, ServiceDef>): { order: string[]; cyclic: string[] } {
  const indegree = new Map<string, number>();
  for (const [name, s] of services) indegree.set(name, new Set(s.dependsOn.map((d) => d.service)).size);
  const order: string[] = [];
  const ready = [...indegree].filter(([, n]) => n === 0).map(([k]) => k).sort();
  while (ready.length) {
    const name = ready.shift() as string;
    order.push(name);
    for (const [other, s] of services) {
      if (!s.dependsOn.some((d) => d.service === name)) continue;
      const n = (indegree.get(other) as number) - 1;
      indegree.set(other, n);
      if (n === 0) {
        ready.push(other);
        ready.sort();
      }
    }
  }
  return { order, cyclic: [...services.keys()].filter((s) => !order.includes(s)).sort() };
}

/** One cycle through `start`, for the message: ["a", "b", "a"]. */
function findCycle(services: Map<string, ServiceDef>, start: string): string[] {
  const path: string[] = [];
  const visit = (name: string): string[] | undefined => {
    const i = path.indexOf(name);
    if (i >= 0) return [...path.slice(i), name];
    path.push(name);
    for (const d of services.get(name)?.dependsOn ?? []) {
      const found = visit(d.service);
      if (found) return found;
    }
    path.pop();
    return undefined;
  };
  return visit(start) ?? [start];
}

function checkDependencies(ck: Checker, def: ServiceDef, all: Map<string, ServiceDef>, on: Set<string>): DependencyRef[] {
  const out: DependencyRef[] = [];
  for (const dep of def.dependsOn) {
    const target = all.get(dep.service);
    if (dep.service === def.name) {
      ck.error(dep.at, `service "${def.name}" cannot depend on itself`);
    } else if (!target) {
      const hint = closest(dep.service, all.keys());
      const msg = `service "${dep.service}" is not defined${hint ? `; did you mean "${hint}"?` : ''}`;
      if (dep.required) ck.error(dep.at, msg);
      else ck.warn(dep.at, `${msg}; ignored (required: false)`);
    } else if (!on.has(dep.service)) {
      const msg = `service "${dep.service}" is disabled: none of its profiles (${target.profiles.join(', ')}) is active`;
      if (dep.required) ck.error(dep.at, `${msg}; activate one with --profile`);
      else ck.warn(dep.at, `${msg}; ignored (required: false)`);
    } else {
      if (dep.condition === 'service_healthy' && !target.healthcheck) {
        ck.error(dep.at, `waits for "${dep.service}" to be healthy, but "${dep.service}" has no healthcheck (or it is disabled); add one or use condition: service_started`);
      }
      out.push(dep);
    }
  }
  return out;
}

function checkNetworkMode(ck: Checker, def: ServiceDef, all: Map<string, ServiceDef>, on: Set<string>): void {
  const mode = def.networkMode;
  const at = def.networkModeAt as At;
  if (mode === undefined) return;
  if (def.networks?.length) {
    ck.error(at, 'network_mode and networks cannot both be set: network_mode replaces the networks');
  }
  if (def.ports.length && mode !== 'bridge') {
    const why = typeof mode === 'object' ? `publish them on service "${mode.service}"` : mode === 'host' ? 'the process binds host ports directly' : 'the container has no network';
    ck.error(def.ports[0].at, `ports cannot be published with network_mode: ${typeof mode === 'object' ? `service:${mode.service}` : mode} (${why})`);
  }
  if (typeof mode !== 'object') return;
  const target = all.get(mode.service);
  if (mode.service === def.name) {
    ck.error(at, `service "${def.name}" cannot share its own network namespace`);
  } else if (!target) {
    const hint = closest(mode.service, all.keys());
    ck.error(at, `service "${mode.service}" is not defined${hint ? `; did you mean "${hint}"?` : ''}`);
  } else if (!on.has(mode.service)) {
    ck.error(at, `service "${mode.service}" is disabled: none of its profiles (${target.profiles.join(', ')}) is active`);
  } else if (!def.dependsOn.some((d) => d.service === mode.service)) {
    // like Compose: sharing a namespace implies starting after its owner
    def.dependsOn.push({ service: mode.service, at, condition: 'service_started', required: true, restart: false });
  }
}

function checkNetworkRef(ck: Checker, def: ServiceDef, ref: NetworkRef, nets: Map<string, NetworkDef>): boolean {
  const net = nets.get(ref.key);
  if (!net && ref.key !== 'default') {
    const hint = closest(ref.key, [...nets.keys()]);
    ck.error(ref.at, `network "${ref.key}" is not defined under the top-level networks${hint ? `; did you mean "${hint}"?` : ''}`);
    return false;
  }
  for (const [ip, family] of [[ref.ipv4, 4], [ref.ipv6, 6]] as const) {
    if (!ip) continue;
    const where = ck.child(ref.at, family === 4 ? 'ipv4_address' : 'ipv6_address');
    if (def.replicas > 1) {
      ck.error(where, `one address cannot be given to ${def.replicas} replicas; remove it or run one replica`);
      continue;
    }
    if (!net || net.external) continue;
    const inside = inSubnets(net, ip, family);
    if (inside === undefined) {
      ck.error(where, `a fixed address needs a subnet: give networks.${ref.key}.ipam.config with an IPv${family} subnet`);
    } else if (!inside) {
      ck.error(where, `${ip} is not inside the IPv${family} subnets of network "${ref.key}"`);
    }
  }
  return true;
}

/** The ports each container publishes (none for a vip service: its balancer publishes them). */
function checkReplicas(ck: Checker, def: ServiceDef): { fixed: PortRequest[]; perReplica: ReplicaPort[] } {
  if (def.containerName && def.replicas > 1) {
    ck.error(def.containerNameAt as At, `container_name "${def.containerName}" cannot name ${def.replicas} replicas; remove it (replicas are named <project>-${def.name}-<n>)`);
  }
  const fixed: PortRequest[] = [];
  const perReplica: ReplicaPort[] = [];
  if (balancing(def) === 'vip') return { fixed, perReplica };
  for (const p of def.ports) {
    try {
      const e = expandPorts([p.mapping], Math.max(def.replicas, 1))[0];
      fixed.push(...e.fixed);
      perReplica.push(...e.perReplica);
    } catch (e) {
      ck.error(p.at, (e as Error).message);
    }
  }
  return { fixed, perReplica };
}

/**
 * vip or dnsrr when the service gets a weft service: deploy.endpoint_mode, or x-weft keys that
 * only a balancer reads (then vip). undefined: Compose's DNS round robin over the aliases.
 */
export function balancing(def: ServiceDef): EndpointMode | undefined {
  if (def.endpointMode) return def.endpointMode;
  return def.weft.keys.has('algorithm') || def.weft.keys.has('affinity_timeout') ? 'vip' : undefined;
}

/** Where a message about the service's balancer points. */
function balancerAt(def: ServiceDef): At {
  return def.endpointModeAt ?? def.weft.keys.get('algorithm') ?? def.weft.keys.get('affinity_timeout') ?? def.at;
}

/** Network order: the highest priority first (the primary network), ties by key. */
function byPriority(a: NetworkRef, b: NetworkRef): number {
  return b.priority - a.priority || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0);
}

/** The key of the service's primary network: the one its balancer reaches backends on. */
function primaryKey(def: ServiceDef): string | undefined {
  return [...(def.networks ?? [])].sort(byPriority)[0]?.key;
}

/**
 * The balancer's ports: `expose` ports, and `ports` by their container port. A vip service's host
 * ports become the service's `publish` (one host port balanced over every replica, where Compose
 * would publish it per container); a dnsrr service has no address to publish on, so its
 * containers keep publishing their own.
 */
function balancerPorts(ck: Checker, def: ServiceDef, mode: EndpointMode): ServicePortRequest[] {
  const out = new Map<string, ServicePortRequest>();
  for (const e of def.expose) {
    for (let port = e.container.start; port <= e.container.end; port++) out.set(`${port}/${e.protocol}`, { port, targetPort: port, protocol: e.protocol });
  }
  for (const { mapping: m, at } of def.ports) {
    const host = m.host && m.host.start !== 0 ? m.host : undefined;
    const count = m.container.end - m.container.start + 1;
    if (mode === 'vip') {
      const c = m.container.start === m.container.end ? `${m.container.start}` : `${m.container.start}-${m.container.end}`;
      if (m.hostIp !== undefined) {
        ck.error(at, `a vip service's balancer publishes on every host address; remove the host address ${m.hostIp}`);
        continue;
      }
      if (!host) {
        ck.error(at, `a vip service's balancer publishes one host port for all replicas: give it ("8080:${c}"), or list ${c} under expose to balance it without publishing`);
        continue;
      }
      if (host.end - host.start + 1 !== count) {
        ck.error(at, `a vip service's balancer publishes one host port for all replicas: give one host port per container port, e.g. "${host.start}:${c}"`);
        continue;
      }
    }
    for (let i = 0; i < count; i++) {
      const port = m.container.start + i;
      const key = `${port}/${m.protocol}`;
      if (mode === 'vip' && out.get(key)?.publish) {
        ck.error(at, `container port ${key} is published twice; the balancer publishes each port once`);
        continue;
      }
      out.set(key, { port, targetPort: port, protocol: m.protocol, ...(mode === 'vip' && host ? { publish: host.start + i } : {}) });
    }
  }
  const ports = [...out.values()];
  if (ports.length > MAX_SERVICE_PORTS) ck.error(balancerAt(def), `a weft service balances at most ${MAX_SERVICE_PORTS} ports; this service has ${ports.length}`);
  if (mode === 'vip' && !def.ports.length && !def.expose.length) ck.error(balancerAt(def), 'a vip service balances ports: list them under expose (or under ports to publish them on the host)');
  return ports;
}

/** The balancer's own checks, on one service. */
function checkBalancer(ck: Checker, def: ServiceDef): ServicePortRequest[] | undefined {
  const mode = balancing(def);
  if (!mode) return undefined;
  const at = balancerAt(def);
  if (def.networkMode) {
    ck.error(at, 'a balanced service needs networks: its weft service reaches the containers on the first one; remove network_mode');
  }
  if (!SERVICE_NAME_RE.test(def.name)) {
    ck.error(at, `"${def.name}" cannot name a weft service: use letters, digits, '-' and '_' (a DNS label of at most 63 characters)`);
  }
  const backendOf = def.weft.keys.get('backend_of');
  if (backendOf) ck.error(backendOf, 'a service with its own balancer (endpoint_mode, x-weft.algorithm) cannot also be the backend of another');
  if (mode === 'dnsrr') {
    for (const k of ['algorithm', 'affinity_timeout']) {
      const kAt = def.weft.keys.get(k);
      if (kAt) ck.error(kAt, `needs endpoint_mode: vip; a dnsrr service is balanced by DNS answers, not in the kernel`);
    }
  }
  const timeoutAt = def.weft.keys.get('affinity_timeout');
  if (mode === 'vip' && timeoutAt && def.weft.algorithm !== 'source-affinity') ck.warn(timeoutAt, 'only the source-affinity algorithm uses affinity_timeout');
  return balancerPorts(ck, def, mode);
}

/** x-weft.backend_of and weight, once every service's networks are known. */
function checkBackends(ck: Checker, def: ServiceDef, all: Map<string, ServiceDef>, on: Set<string>): void {
  const w = def.weft;
  let lb = balancing(def) ? def : undefined;
  const ofAt = w.keys.get('backend_of');
  if (ofAt && w.backendOf !== undefined && !balancing(def)) {
    const target = all.get(w.backendOf);
    if (w.backendOf === def.name) ck.error(ofAt, 'a service cannot be a backend of itself; give it deploy.endpoint_mode to balance it');
    else if (!target) {
      const hint = closest(w.backendOf, all.keys());
      ck.error(ofAt, `service "${w.backendOf}" is not defined${hint ? `; did you mean "${hint}"?` : ''}`);
    } else if (!on.has(w.backendOf)) ck.error(ofAt, `service "${w.backendOf}" is disabled: none of its profiles (${target.profiles.join(', ')}) is active`);
    else if (!balancing(target)) ck.error(ofAt, `service "${w.backendOf}" has no balancer: give it deploy.endpoint_mode (vip or dnsrr) or x-weft.algorithm`);
    else if (def.networkMode) ck.error(ofAt, `the backends of "${w.backendOf}" are reached on a network: remove network_mode`);
    else {
      const key = primaryKey(target);
      if (key && !def.networks?.some((r) => r.key === key)) ck.error(ofAt, `the backends of "${w.backendOf}" are reached on its network "${key}": add it to this service's networks`);
      else lb = target;
    }
  }
  const weightAt = w.keys.get('weight');
  if (!weightAt || w.weight === undefined) return;
  if (def.labels[WEIGHT_LABEL] !== undefined) ck.error(weightAt, `the label ${WEIGHT_LABEL} is set too; give the weight once`);
  else if (!lb) ck.warn(weightAt, `no balancer of this project selects "${def.name}" (deploy.endpoint_mode, x-weft.backend_of); the ${WEIGHT_LABEL} label only counts in weft services you create`);
  else if (balancing(lb) === 'dnsrr') ck.warn(weightAt, `"${lb.name}" is dnsrr: DNS answers ignore weights`);
  else if ((lb.weft.algorithm ?? 'round-robin') === 'round-robin') {
    ck.warn(weightAt, `the balancer of "${lb.name}" uses round-robin, which ignores weights; give it x-weft.algorithm: weighted-round-robin (or maglev, random, least-connections, source-affinity)`);
  }
}

function realNetworkName(project: string, def: NetworkDef): string {
  return def.name ?? (def.external ? def.key : defaultNetworkName(project, def.key));
}

function buildNetwork(ck: Checker, project: string, def: NetworkDef, where: At): ProjectNetwork {
  const name = realNetworkName(project, def);
  if (def.external) return { key: def.key, name, external: true, extensions: def.extensions };
  if (!CONTAINER_NAME_RE.test(name) || name.length > 64) {
    ck.error(where, `network name "${name}" is not valid: up to 64 letters, digits, '_', '.' and '-', starting with a letter or digit`);
  } else if (PREDEFINED.includes(name)) {
    ck.error(where, `"${name}" is a predefined network; give the network another name (or use network_mode: ${name})`);
  }
  const create = networkCreate(def, name);
  create.labels = { ...def.labels, ...networkLabels(project, def.key) };
  const configHash = networkConfigHash(create);
  create.labels[LABELS.configHash] = configHash;
  return { key: def.key, name, external: false, create, configHash, extensions: def.extensions };
}

function serviceNetworks(def: ServiceDef, names: Map<string, string>): ServiceNetwork[] {
  const refs = [...(def.networks ?? [])].sort(byPriority);
  return refs.map((r) => {
    const n: ServiceNetwork = { key: r.key, network: names.get(r.key) as string, aliases: [...new Set([def.name, ...r.aliases])], priority: r.priority };
    if (r.ipv4) n.ipv4 = r.ipv4;
    if (r.ipv6) n.ipv6 = r.ipv6;
    return n;
  });
}

/** The API's healthcheck, durations in milliseconds as resolved (so the hash sees the defaults too). */
function healthcheckRequest(h: HealthSpec): HealthcheckRequest {
  const req: HealthcheckRequest = { test: h.test, interval: h.intervalMs, timeout: h.timeoutMs, retries: h.retries, start_period: h.startPeriodMs };
  if (h.startIntervalMs !== undefined) req.start_interval = h.startIntervalMs;
  return req;
}

function balancer(project: string, def: ServiceDef, network: string | undefined, ports: ServicePortRequest[]): ProjectBalancer {
  const name = balancerName(project, def.name);
  return {
    name,
    request: {
      name,
      dnsName: def.name,
      endpointMode: balancing(def) ?? 'vip',
      network: network ?? '',
      labels: { [LABELS.project]: project, [LABELS.service]: def.name },
      selector: { [LABELS.project]: project, [BALANCER_LABEL]: def.name },
      algorithm: def.weft.algorithm ?? 'round-robin',
      affinityTimeout: def.weft.affinityTimeout ?? DEFAULT_AFFINITY_TIMEOUT,
      ports,
    },
  };
}

/** The ports a service's containers serve (ports targets and expose), named where a long-syntax port names it. */
function exposedPorts(def: ServiceDef): NonNullable<ServiceCreate['expose']> {
  const out = new Map<string, NonNullable<ServiceCreate['expose']>[number]>();
  const add = (port: number, protocol: 'tcp' | 'udp', name?: string) => {
    const k = `${port}/${protocol}`;
    if (!out.has(k) || name) out.set(k, name ? { name, port, protocol } : { port, protocol });
  };
  for (const p of def.ports)
    for (let n = p.mapping.container.start; n <= p.mapping.container.end && out.size < 1024; n++) add(n, p.mapping.protocol, p.mapping.container.start === p.mapping.container.end ? p.name : undefined);
  for (const e of def.expose) for (let n = e.container.start; n <= e.container.end && out.size < 1024; n++) add(n, e.protocol);
  return [...out.values()];
}

function buildService(
  project: string,
  def: ServiceDef,
  deps: DependencyRef[],
  names: Map<string, string>,
  ports: { fixed: PortRequest[]; perReplica: ReplicaPort[] },
  lbPorts: ServicePortRequest[] | undefined,
): ProjectService {
  const create: ServiceCreate = { cmd: def.cmd };
  if (def.env.length) create.env = def.env;
  create.workdir = def.workdir;
  if (def.hostname) create.hostname = def.hostname;
  create.labels = { ...def.labels };
  if (def.weft.weight !== undefined) create.labels[WEIGHT_LABEL] = String(def.weft.weight);
  const selectedBy = lbPorts ? def.name : def.weft.backendOf;
  if (selectedBy !== undefined) create.labels[BALANCER_LABEL] = selectedBy;
  if (def.restart) create.restart = def.restart;
  if (ports.fixed.length) create.ports = ports.fixed;
  if (def.extraHosts.length) create.extraHosts = def.extraHosts;
  if (def.dns.length) create.dns = def.dns;
  if (def.healthcheck) create.healthcheck = healthcheckRequest(def.healthcheck);
  const expose = exposedPorts(def);
  if (expose.length) create.expose = expose;
  const networks = def.networkMode ? [] : serviceNetworks(def, names);
  const base: Omit<ProjectService, 'configHash'> = {
    name: def.name,
    replicas: def.replicas,
    dependsOn: deps.map((d) => ({ service: d.service, condition: d.condition, required: d.required, restart: d.restart })),
    networks,
    create,
    replicaPorts: ports.perReplica,
    stopGracePeriodMs: def.stopGracePeriodMs,
    extensions: def.extensions,
  };
  if (def.containerName) base.containerName = def.containerName;
  if (def.image) base.image = def.image;
  if (def.networkMode) base.networkMode = def.networkMode;
  if (def.healthcheck) base.healthcheck = def.healthcheck;
  const configHash = serviceConfigHash(base);
  if (lbPorts) base.balancer = balancer(project, def, networks[0]?.network, lbPorts);
  return { ...base, configHash };
}

/** Builds the project; returns it even when issues were recorded (the caller decides). */
export function buildProject(ck: Checker, input: BuildInput): Project {
  const top = readTop(ck, input.root);

  const nets = new Map<string, NetworkDef>();
  const netsAt = top.get('networks');
  if (netsAt && netsAt.value !== null) {
    for (const [key, at] of ck.map(netsAt) ?? []) {
      if (!RESOURCE_KEY_RE.test(key)) ck.error(at, `network key "${key}" may only contain letters, digits, '.', '_' and '-'`);
      nets.set(key, readNetwork(ck, key, at));
    }
  }

  const all = new Map<string, ServiceDef>();
  const servicesAt = top.get('services');
  if (servicesAt && servicesAt.value !== null) {
    for (const [name, at] of ck.map(servicesAt) ?? []) {
      if (!RESOURCE_KEY_RE.test(name)) ck.error(at, `service name "${name}" may only contain letters, digits, '.', '_' and '-'`);
      all.set(name, readService(ck, name, at, input.service));
    }
  }

  const on = new Set([...all.values()].filter((d) => enabled(d, input.profiles)).map((d) => d.name));
  const active = new Map([...all].filter(([n]) => on.has(n)));
  const deps = new Map<string, DependencyRef[]>();
  const ports = new Map<string, { fixed: PortRequest[]; perReplica: ReplicaPort[] }>();
  const lbPorts = new Map<string, ServicePortRequest[] | undefined>();
  const used = new Map<string, At>();
  const containerNames = new Map<string, string>();
  for (const def of active.values()) {
    checkNetworkMode(ck, def, all, on);
    deps.set(def.name, checkDependencies(ck, def, all, on));
    ports.set(def.name, checkReplicas(ck, def));
    lbPorts.set(def.name, checkBalancer(ck, def));
    if (def.containerName) {
      const other = containerNames.get(def.containerName);
      if (other) ck.error(def.containerNameAt as At, `container_name "${def.containerName}" is also the name of service "${other}"'s container`);
      containerNames.set(def.containerName, def.name);
    }
    if (def.networkMode) continue;
    // no networks (or an empty list): the default network, as in Compose
    if (!def.networks?.length) def.networks = [{ key: 'default', at: def.networksAt ?? def.at, aliases: [], priority: 0 }];
    const refs = def.networks;
    for (const ref of refs) if (checkNetworkRef(ck, def, ref, nets) && !used.has(ref.key)) used.set(ref.key, ref.at);
  }
  for (const def of active.values()) checkBackends(ck, def, all, on);

  // the order: dependencies first; a cycle is reported once, at its first service
  const graph = new Map([...active].map(([n, d]) => [n, { ...d, dependsOn: deps.get(n) ?? [] }]));
  const { order, cyclic } = startOrder(graph);
  const reported = new Set<string>();
  for (const name of cyclic) {
    if (reported.has(name)) continue;
    const cycle = findCycle(graph, name);
    // a service that only depends on a cycle is not in one itself
    if (cycle.length < 2 || reported.has(cycle[0])) continue;
    cycle.forEach((n) => reported.add(n));
    const def = active.get(cycle[0]) as ServiceDef;
    const at = def.dependsOn.find((d) => d.service === cycle[1])?.at ?? def.at;
    ck.error(at, `dependency cycle: ${cycle.join(' -> ')}`);
  }

  const names = new Map<string, string>();
  const networks: ProjectNetwork[] = [];
  const realNames = new Map<string, string>();
  for (const key of [...used.keys()].sort()) {
    const def = nets.get(key) ?? { key, at: used.get(key) as At, external: false, driverOpts: {}, subnets: [], labels: {}, extensions: {} };
    const where = nets.has(key) ? def.at : (used.get(key) as At);
    const net = buildNetwork(ck, input.name, def, where);
    const clash = realNames.get(net.name);
    if (clash) ck.error(where, `networks "${clash}" and "${key}" have the same name "${net.name}"`);
    realNames.set(net.name, key);
    names.set(key, net.name);
    networks.push(net);
  }

  const services = [...order, ...cyclic].map((n) =>
    buildService(input.name, active.get(n) as ServiceDef, deps.get(n) ?? [], names, ports.get(n) as { fixed: PortRequest[]; perReplica: ReplicaPort[] }, lbPorts.get(n)),
  );
  return {
    name: input.name,
    workingDir: input.projectDir,
    files: input.files,
    networks,
    services,
    disabledServices: [...all.keys()].filter((n) => !on.has(n)).sort(),
    extensions: ck.extensions(top),
    warnings: [],
  };
}
