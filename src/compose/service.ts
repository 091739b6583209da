/**
 * One entry of `services`: every key checked and read into a ServiceDef. References to other
 * services and networks are checked later by project.ts, which sees all of them. Keys Compose has
 * but weft cannot honour are errors that say why (weft runs host processes in their own network
 * namespace: no images, mounts, users or resource limits).
 */
import { isIPv4, isIPv6 } from 'node:net';
import { resolve } from 'node:path';
import { LB_ALGORITHMS, type EndpointMode } from '../model/types.js';
import { type HealthSpec, type HealthcheckInput, HealthSpecError, healthSpec, normalizeHealthTest } from '../health/spec.js';
import { type At, type Checker, describe } from './check.js';
import { type Lookup, parseDotenv } from './interpolate.js';
import { type BalancerCreate, type DependencyCondition, type NetworkMode, RESERVED_LABEL_PREFIXES } from './model.js';
import { portNameErrors } from '../policy/parse.js';
import { type PortMapping, type PortRange, type Protocol, parseHostIp, parseLongPort, parsePortRange, parseProtocol, parseShortPort } from './ports.js';
import { isPlainMap } from './source.js';
import {
  CONTAINER_NAME_RE,
  HOSTNAME_RE,
  type RestartPolicy,
  hostIp,
  parseDuration,
  parseHostEntry,
  parseRestart,
  shellSplit,
} from './values.js';

const FILESYSTEM = "weft runs host processes, which see the host's filesystem: there are no images, volumes or mounts";
const IMAGE = 'weft runs host processes, not images';
const ONLY_NETWORK = "weft gives a container its own network namespace only: processes run with the agent's user, privileges, devices and namespaces";
const LIMITS = 'weft sets no resource limits yet';
const NOT_YET = 'not in weft yet';

/** Compose service keys weft does not support, and why. */
export const UNSUPPORTED_SERVICE_KEYS: Readonly<Record<string, string>> = {
  build: `${IMAGE}: there is nothing to build`,
  pull_policy: IMAGE,
  platform: IMAGE,
  runtime: IMAGE,
  isolation: IMAGE,
  volumes: FILESYSTEM,
  volumes_from: FILESYSTEM,
  tmpfs: FILESYSTEM,
  read_only: FILESYSTEM,
  storage_opt: FILESYSTEM,
  shm_size: FILESYSTEM,
  configs: `${FILESYSTEM}; read the file from its path`,
  secrets: `${FILESYSTEM}; read the file from its path`,
  privileged: ONLY_NETWORK,
  cap_add: ONLY_NETWORK,
  cap_drop: ONLY_NETWORK,
  security_opt: ONLY_NETWORK,
  user: ONLY_NETWORK,
  group_add: ONLY_NETWORK,
  userns_mode: ONLY_NETWORK,
  ipc: ONLY_NETWORK,
  pid: ONLY_NETWORK,
  uts: ONLY_NETWORK,
  cgroup: ONLY_NETWORK,
  cgroup_parent: ONLY_NETWORK,
  devices: ONLY_NETWORK,
  device_cgroup_rules: ONLY_NETWORK,
  gpus: ONLY_NETWORK,
  credential_spec: ONLY_NETWORK,
  init: ONLY_NETWORK,
  cpus: LIMITS,
  cpu_count: LIMITS,
  cpu_percent: LIMITS,
  cpu_shares: LIMITS,
  cpu_period: LIMITS,
  cpu_quota: LIMITS,
  cpu_rt_runtime: LIMITS,
  cpu_rt_period: LIMITS,
  cpuset: LIMITS,
  mem_limit: LIMITS,
  mem_reservation: LIMITS,
  mem_swappiness: LIMITS,
  memswap_limit: LIMITS,
  pids_limit: LIMITS,
  blkio_config: LIMITS,
  ulimits: LIMITS,
  oom_kill_disable: LIMITS,
  oom_score_adj: LIMITS,
  tty: 'weft containers have no terminal; use weft exec and weft logs',
  stdin_open: 'weft containers have no terminal; use weft exec and weft logs',
  attach: 'weft runs services detached; read their output with weft logs',
  logging: 'weft keeps each container\'s output itself (weft logs)',
  stop_signal: 'weft stops a process with SIGTERM, then SIGKILL after stop_grace_period',
  links: 'legacy links: services reach each other by service name on a shared network',
  external_links: 'legacy links: put the containers on a shared network instead',
  mac_address: 'weft derives each endpoint\'s MAC address from its IP address',
  domainname: NOT_YET,
  dns_search: NOT_YET,
  dns_opt: NOT_YET,
  sysctls: NOT_YET,
  extends: `${NOT_YET}: repeat the keys, or share them with a YAML anchor (x-common: &common ... then <<: *common)`,
  label_file: `${NOT_YET}: give the labels in labels`,
  annotations: NOT_YET,
  develop: NOT_YET,
  post_start: NOT_YET,
  pre_stop: NOT_YET,
  models: NOT_YET,
  provider: NOT_YET,
  use_api_socket: NOT_YET,
};

export const SERVICE_KEYS = [
  'command',
  'entrypoint',
  'environment',
  'env_file',
  'working_dir',
  'hostname',
  'extra_hosts',
  'dns',
  'labels',
  'container_name',
  'image',
  'healthcheck',
  'stop_grace_period',
  'restart',
  'ports',
  'expose',
  'networks',
  'network_mode',
  'depends_on',
  'deploy',
  'scale',
  'profiles',
];

const DEPLOY_UNSUPPORTED: Readonly<Record<string, string>> = {
  mode: 'weft runs replicated services on one host',
  resources: LIMITS,
  restart_policy: 'use the service\'s restart key',
  placement: 'weft runs a project on one host',
  update_config: NOT_YET,
  rollback_config: NOT_YET,
  labels: 'use the service\'s labels key',
};

export interface NetworkRef {
  key: string;
  at: At;
  aliases: string[];
  ipv4?: string;
  ipv6?: string;
  priority: number;
}

export interface DependencyRef {
  service: string;
  at: At;
  condition: DependencyCondition;
  required: boolean;
  restart: boolean;
}

export type Algorithm = NonNullable<BalancerCreate['algorithm']>;
const ALGORITHMS: readonly Algorithm[] = LB_ALGORITHMS;
const WEFT_KEYS = ['algorithm', 'affinity_timeout', 'weight', 'backend_of'];

/** A service's x-weft, checked; `keys` locates each key for later messages. */
export interface WeftDef {
  keys: Map<string, At>;
  algorithm?: Algorithm;
  /** seconds */
  affinityTimeout?: number;
  weight?: number;
  backendOf?: string;
}

export interface ExposedPort {
  container: PortRange;
  protocol: Protocol;
  at: At;
}

export interface ServiceDef {
  name: string;
  at: At;
  profiles: string[];
  cmd: string[];
  env: string[];
  workdir: string;
  hostname?: string;
  extraHosts: string[];
  dns: string[];
  labels: Record<string, string>;
  restart?: RestartPolicy;
  containerName?: string;
  containerNameAt?: At;
  image?: string;
  ports: { mapping: PortMapping; at: At; name?: string }[];
  expose: ExposedPort[];
  /** undefined: the service names no networks (it gets the default one) */
  networks?: NetworkRef[];
  networksAt?: At;
  networkMode?: NetworkMode;
  networkModeAt?: At;
  dependsOn: DependencyRef[];
  healthcheck?: HealthSpec;
  healthcheckAt?: At;
  stopGracePeriodMs: number;
  replicas: number;
  replicasAt?: At;
  endpointMode?: EndpointMode;
  endpointModeAt?: At;
  weft: WeftDef;
  extensions: Record<string, unknown>;
}

/** What reading a service needs from the project. */
export interface ServiceContext {
  projectDir: string;
  /** the project's variables (process environment over .env) */
  lookup: Lookup;
  readFile: (path: string) => string | undefined;
  /** how to show a path in messages */
  display: (path: string) => string;
}

/** `labels` as a list of k=v (or k) or as a mapping; com.docker.compose.* is weft's. */
export function readLabels(ck: Checker, at: At): Record<string, string> {
  const out: Record<string, string> = {};
  const put = (k: string, v: string, where: At): void => {
    const reserved = RESERVED_LABEL_PREFIXES.find((p) => k.startsWith(p));
    if (reserved) {
      ck.error(where, `label "${k}" is reserved: weft sets the ${reserved}* labels itself`);
      return;
    }
    out[k] = v;
  };
  if (at.value === null) return out;
  if (Array.isArray(at.value)) {
    for (const item of ck.list(at) ?? []) {
      const s = ck.string(item, 'a label "key=value"');
      if (s === undefined) continue;
      const eq = s.indexOf('=');
      if (eq === 0 || s === '') ck.error(item, `"${s}" is not a label: expected key=value`);
      else put(eq < 0 ? s : s.slice(0, eq), eq < 0 ? '' : s.slice(eq + 1), item);
    }
    return out;
  }
  for (const [k, v] of ck.map(at, 'a list of "key=value" or a mapping') ?? []) {
    const value = v.value === null ? '' : ck.text(v);
    if (value !== undefined) put(k, value, v);
  }
  return out;
}

/** `command` / `entrypoint`: a string split like a shell would, or a list. null: not given. */
function readCommand(ck: Checker, at: At): string[] | undefined {
  if (at.value === null) return undefined;
  if (typeof at.value === 'string') {
    try {
      return shellSplit(at.value);
    } catch (e) {
      return ck.error(at, `cannot split ${JSON.stringify(at.value)} into words: ${(e as Error).message}`);
    }
  }
  if (!Array.isArray(at.value)) return ck.error(at, `expected a string or a list of strings, got ${describe(at.value)}`);
  const out: string[] = [];
  for (const item of ck.list(at) ?? []) {
    const s = ck.text(item);
    if (s !== undefined) out.push(s);
  }
  return out;
}

/** Adds KEY=VALUE / KEY entries of `environment` to the (ordered) map. */
function readEnvironment(ck: Checker, at: At, ctx: ServiceContext, env: Map<string, string>): void {
  if (at.value === null) return;
  const bare = (name: string): void => {
    // unset: an env_file's value (if any) stays
    const v = ctx.lookup(name);
    if (v !== undefined) env.set(name, v);
  };
  if (Array.isArray(at.value)) {
    for (const item of ck.list(at) ?? []) {
      const s = ck.string(item, 'an entry "KEY=VALUE" or "KEY"');
      if (s === undefined) continue;
      const eq = s.indexOf('=');
      if (eq === 0 || s === '') ck.error(item, `"${s}" is not KEY=VALUE or KEY`);
      else if (eq < 0) bare(s);
      else env.set(s.slice(0, eq), s.slice(eq + 1));
    }
    return;
  }
  for (const [k, v] of ck.map(at, 'a list of "KEY=VALUE" or a mapping') ?? []) {
    if (v.value === null) bare(k);
    else {
      const value = ck.text(v);
      if (value !== undefined) env.set(k, value);
    }
  }
}

/** `env_file`: a path, a list of paths, or long entries { path, required }. */
function readEnvFiles(ck: Checker, at: At, ctx: ServiceContext, env: Map<string, string>): void {
  if (at.value === null) return;
  const items = typeof at.value === 'string' ? [at] : (ck.list(at, 'a path or a list of paths') ?? []);
  for (const item of items) {
    let path: string | undefined;
    let required = true;
    if (isPlainMap(item.value)) {
      const keys = ck.keys(item, { supported: ['path', 'required'], unsupported: { format: 'weft reads env files in the .env format only' } });
      const p = keys?.get('path');
      if (!p) {
        if (keys) ck.error(item, 'an env_file entry needs a path');
        continue;
      }
      path = ck.string(p);
      const r = keys?.get('required');
      if (r) required = ck.boolean(r) ?? true;
    } else {
      path = ck.string(item, 'a path or { path, required }');
    }
    if (path === undefined) continue;
    const abs = resolve(ctx.projectDir, path);
    const text = ctx.readFile(abs);
    if (text === undefined) {
      if (required) ck.error(item, `env file ${ctx.display(abs)} not found (paths are relative to the project directory ${ctx.projectDir})`);
      continue;
    }
    const { entries, problems } = parseDotenv(text, ctx.lookup);
    for (const p of problems) ck.issues.push({ file: ctx.display(abs), line: p.line, message: p.message });
    for (const e of entries) {
      if (e.value === undefined) env.delete(e.name);
      else env.set(e.name, e.value);
    }
  }
}

function readDuration(ck: Checker, at: At): number | undefined {
  if (at.value === 0) return 0;
  const s = ck.string(at, 'a duration such as 10s or 1m30s');
  if (s === undefined) return undefined;
  try {
    return parseDuration(s);
  } catch (e) {
    return ck.error(at, (e as Error).message);
  }
}

/** The message without its "healthcheck.KEY: " prefix: the checker names the key, with its line. */
function healthReason(e: HealthSpecError): string {
  return e.message.slice(`healthcheck.${e.field}: `.length);
}

/**
 * `healthcheck`: undefined when absent or disabled. Each key is read here, so a bad value is
 * reported at its own line; the test and the defaults are health/spec.ts's, as the agent applies
 * them (Docker's forms plus weft's ["TCP", port] and ["HTTP", port, path]).
 */
function readHealthcheck(ck: Checker, at: At): HealthSpec | undefined {
  const keys = ck.keys(at, {
    supported: ['test', 'interval', 'timeout', 'retries', 'start_period', 'start_interval', 'disable'],
  });
  if (!keys) return undefined;
  const disable = keys.get('disable');
  if (disable && ck.boolean(disable)) return undefined;
  const testAt = keys.get('test');
  if (!testAt) return ck.error(at, 'a healthcheck needs a test (weft has no image to take one from), e.g. test: ["CMD", "curl", "-f", "http://localhost/"] or ["HTTP", "8080", "/healthz"]');
  let test = typeof testAt.value === 'string' ? testAt.value : readCommand(ck, testAt);
  try {
    if (test !== undefined) test = normalizeHealthTest(test);
  } catch (e) {
    if (!(e instanceof HealthSpecError)) throw e;
    test = ck.error(testAt, healthReason(e));
  }
  let ok = test !== undefined;
  const input: HealthcheckInput = { test: test ?? [] };
  for (const k of ['interval', 'timeout', 'start_period', 'start_interval'] as const) {
    const c = keys.get(k);
    if (!c || c.value === null) continue;
    input[k] = readDuration(ck, c);
    ok &&= input[k] !== undefined;
  }
  const retriesAt = keys.get('retries');
  if (retriesAt) {
    input.retries = ck.integer(retriesAt, 0);
    ok &&= input.retries !== undefined;
  }
  if (!ok) return undefined;
  try {
    return healthSpec(input);
  } catch (e) {
    if (!(e instanceof HealthSpecError)) throw e;
    return ck.error(keys.get(e.field) ?? at, healthReason(e));
  }
}

function readPorts(ck: Checker, at: At): ServiceDef['ports'] {
  const out: ServiceDef['ports'] = [];
  if (at.value === null) return out;
  for (const item of ck.list(at) ?? []) {
    const v = item.value;
    if (typeof v === 'string' || typeof v === 'number') {
      try {
        out.push({ mapping: parseShortPort(v), at: item });
      } catch (e) {
        ck.error(item, `${JSON.stringify(String(v))} is not a valid port mapping: ${(e as Error).message}`);
      }
      continue;
    }
    const keys = ck.keys(item, { supported: ['target', 'published', 'host_ip', 'protocol', 'mode', 'name', 'app_protocol'], extensions: true }, 'a port mapping (a string like "8080:80" or a mapping with target)');
    if (!keys) continue;
    const targetAt = keys.get('target');
    if (!targetAt) {
      ck.error(item, 'a port mapping needs target (the container port)');
      continue;
    }
    const target = ck.integer(targetAt, 1, 65535, 'a port number');
    const publishedAt = keys.get('published');
    const hostIpAt = keys.get('host_ip');
    const protocolAt = keys.get('protocol');
    const published = publishedAt && publishedAt.value !== null ? ck.text(publishedAt, 'a port or a range like "8000-8002"') : undefined;
    const host = hostIpAt ? ck.string(hostIpAt) : undefined;
    const protocol = protocolAt ? ck.string(protocolAt) : undefined;
    const modeAt = keys.get('mode');
    if (modeAt) {
      const mode = ck.string(modeAt);
      if (mode !== undefined && mode !== 'host' && mode !== 'ingress') ck.error(modeAt, `mode "${mode}" is not host or ingress`);
    }
    const nameAt = keys.get('name');
    const name = nameAt ? ck.string(nameAt) : undefined;
    if (name !== undefined && portNameErrors(name).length)
      ck.error(nameAt as At, `port name "${name}" is not an IANA service name: at most 15 lower-case letters, digits and single inner '-', with a letter (network policies refer to it)`);
    const appAt = keys.get('app_protocol');
    if (appAt) ck.string(appAt);
    if (target === undefined) continue;
    try {
      if (published !== undefined) parsePortRange(published, 'host port');
    } catch (e) {
      ck.error(publishedAt as At, (e as Error).message);
      continue;
    }
    try {
      if (host !== undefined) parseHostIp(host);
    } catch (e) {
      ck.error(hostIpAt as At, (e as Error).message);
      continue;
    }
    try {
      if (protocol !== undefined) parseProtocol(protocol);
    } catch (e) {
      ck.error(protocolAt as At, (e as Error).message);
      continue;
    }
    out.push({ mapping: parseLongPort({ target, published, hostIp: host, protocol }), at: item, name });
  }
  return out;
}

function readExpose(ck: Checker, at: At): ExposedPort[] {
  const out: ExposedPort[] = [];
  if (at.value === null) return out;
  for (const item of ck.list(at) ?? []) {
    const s = ck.text(item, 'a port like "3000" or "3000-3005/udp"');
    if (s === undefined) continue;
    const [port, proto] = s.split('/');
    try {
      out.push({ container: parsePortRange(port, 'container port'), protocol: proto === undefined ? 'tcp' : parseProtocol(proto), at: item });
    } catch (e) {
      ck.error(item, `${JSON.stringify(s)} is not a port to expose: ${(e as Error).message}`);
    }
  }
  return out;
}

/** `x-weft` on a service: how its weft service balances, and what it adds to one. */
function readWeft(ck: Checker, at: At | undefined): WeftDef {
  const def: WeftDef = { keys: new Map() };
  if (!at || at.value === null) return def;
  const keys = ck.keys(at, { supported: WEFT_KEYS }, 'a mapping (algorithm, affinity_timeout, weight, backend_of)');
  if (!keys) return def;
  def.keys = keys;
  const algorithm = keys.get('algorithm');
  if (algorithm) {
    const a = ck.string(algorithm);
    const known = ALGORITHMS.find((x) => x === a);
    if (known) def.algorithm = known;
    else if (a !== undefined) ck.error(algorithm, `"${a}" is not an algorithm; use ${ALGORITHMS.join(', ')}`);
  }
  const timeout = keys.get('affinity_timeout');
  if (timeout) {
    const what = 'seconds (1-86400) or a duration such as 10m';
    if (typeof timeout.value === 'number' || /^\s*\d+\s*$/.test(String(timeout.value))) def.affinityTimeout = ck.integer(timeout, 1, 86400, what);
    else {
      const ms = readDuration(ck, timeout);
      if (ms !== undefined && (ms % 1000 !== 0 || ms < 1000 || ms > 86_400_000)) ck.error(timeout, `expected ${what} in whole seconds, got ${JSON.stringify(timeout.value)}`);
      else if (ms !== undefined) def.affinityTimeout = ms / 1000;
    }
  }
  const weight = keys.get('weight');
  if (weight) def.weight = ck.integer(weight, 1, 1000, 'a weight (1-1000)');
  const backendOf = keys.get('backend_of');
  if (backendOf) def.backendOf = ck.string(backendOf, 'a service name');
  return def;
}

function readNetworkRef(ck: Checker, key: string, at: At): NetworkRef {
  const ref: NetworkRef = { key, at, aliases: [], priority: 0 };
  if (at.value === null) return ref;
  const keys = ck.keys(at, {
    supported: ['aliases', 'ipv4_address', 'ipv6_address', 'priority'],
    unsupported: {
      link_local_ips: NOT_YET,
      mac_address: UNSUPPORTED_SERVICE_KEYS.mac_address,
      driver_opts: 'endpoints take no driver options in weft',
      gw_priority: 'the default route goes through the primary network: the one with the highest priority',
      interface_name: 'weft names interfaces eth0, eth1... in network order (see priority)',
    },
    extensions: true,
  });
  if (!keys) return ref;
  const aliases = keys.get('aliases');
  if (aliases && aliases.value !== null) {
    for (const item of ck.list(aliases) ?? []) {
      const a = ck.string(item, 'an alias (a host name)');
      if (a === undefined) continue;
      if (!HOSTNAME_RE.test(a)) ck.error(item, `alias "${a}" is not a valid host name`);
      else ref.aliases.push(a);
    }
  }
  const v4 = keys.get('ipv4_address');
  if (v4) {
    const ip = ck.string(v4);
    if (ip !== undefined && !isIPv4(ip)) ck.error(v4, `"${ip}" is not an IPv4 address`);
    else ref.ipv4 = ip;
  }
  const v6 = keys.get('ipv6_address');
  if (v6) {
    const ip = ck.string(v6);
    if (ip !== undefined && !isIPv6(ip)) ck.error(v6, `"${ip}" is not an IPv6 address`);
    else ref.ipv6 = ip;
  }
  const prio = keys.get('priority');
  if (prio) ref.priority = ck.integer(prio, Number.MIN_SAFE_INTEGER) ?? 0;
  return ref;
}

function readServiceNetworks(ck: Checker, at: At): NetworkRef[] {
  if (at.value === null) return [];
  if (Array.isArray(at.value)) {
    const out: NetworkRef[] = [];
    for (const item of ck.list(at) ?? []) {
      const key = ck.string(item, 'a network name');
      if (key === undefined) continue;
      if (out.some((r) => r.key === key)) ck.error(item, `network "${key}" is listed twice`);
      else out.push({ key, at: item, aliases: [], priority: 0 });
    }
    return out;
  }
  return (ck.map(at, 'a list of network names or a mapping') ?? []).map(([key, v]) => readNetworkRef(ck, key, v));
}

function readNetworkMode(ck: Checker, at: At): NetworkMode | undefined {
  const mode = ck.string(at);
  if (mode === undefined) return undefined;
  if (mode === 'host' || mode === 'none' || mode === 'bridge') return mode;
  if (mode.startsWith('service:') && mode.length > 'service:'.length) return { service: mode.slice('service:'.length) };
  if (mode.startsWith('container:')) {
    return ck.error(at, 'container:NAME is not supported by weft; use service:NAME for a service of this project');
  }
  return ck.error(at, `"${mode}" is not a network mode; use host, none, bridge or service:NAME (or networks to join networks)`);
}

const CONDITIONS: readonly DependencyCondition[] = ['service_started', 'service_healthy', 'service_completed_successfully'];

function readDependsOn(ck: Checker, at: At): DependencyRef[] {
  if (at.value === null) return [];
  const dflt = (service: string, where: At): DependencyRef => ({ service, at: where, condition: 'service_started', required: true, restart: false });
  if (Array.isArray(at.value)) {
    const out: DependencyRef[] = [];
    for (const item of ck.list(at) ?? []) {
      const s = ck.string(item, 'a service name');
      if (s !== undefined) out.push(dflt(s, item));
    }
    return out;
  }
  const out: DependencyRef[] = [];
  for (const [service, v] of ck.map(at, 'a list of service names or a mapping') ?? []) {
    const dep = dflt(service, v);
    out.push(dep);
    if (v.value === null) continue;
    const keys = ck.keys(v, { supported: ['condition', 'restart', 'required'], extensions: true });
    if (!keys) continue;
    const cond = keys.get('condition');
    if (cond) {
      const c = ck.string(cond);
      const known = CONDITIONS.find((x) => x === c);
      if (c !== undefined && !known) ck.error(cond, `"${c}" is not a condition; use ${CONDITIONS.join(', ')}`);
      if (known) dep.condition = known;
    }
    const restart = keys.get('restart');
    if (restart) dep.restart = ck.boolean(restart) ?? false;
    const required = keys.get('required');
    if (required) dep.required = ck.boolean(required) ?? true;
  }
  return out;
}

function readExtraHosts(ck: Checker, at: At): string[] {
  const out: string[] = [];
  if (at.value === null) return out;
  if (Array.isArray(at.value)) {
    for (const item of ck.list(at) ?? []) {
      const s = ck.string(item, 'an entry "name:ip"');
      if (s === undefined) continue;
      try {
        const [name, ip] = parseHostEntry(s);
        out.push(`${name}:${ip}`);
      } catch (e) {
        ck.error(item, (e as Error).message);
      }
    }
    return out;
  }
  for (const [name, v] of ck.map(at, 'a list of "name:ip" or a mapping') ?? []) {
    const ips = Array.isArray(v.value) ? (ck.list(v) ?? []) : [v];
    for (const ipAt of ips) {
      const ip = ck.string(ipAt, 'an IP address');
      if (ip === undefined) continue;
      try {
        out.push(`${name}:${hostIp(ip, `${name}: ${ip}`)}`);
      } catch (e) {
        ck.error(ipAt, (e as Error).message);
      }
    }
  }
  return out;
}

function readReplicas(ck: Checker, keys: Map<string, At>, def: ServiceDef): void {
  const scaleAt = keys.get('scale');
  const scale = scaleAt ? ck.integer(scaleAt, 0) : undefined;
  let replicas: number | undefined;
  let replicasAt: At | undefined;
  const deployAt = keys.get('deploy');
  if (deployAt && deployAt.value !== null) {
    const dk = ck.keys(deployAt, { supported: ['replicas', 'endpoint_mode'], unsupported: DEPLOY_UNSUPPORTED, extensions: true });
    replicasAt = dk?.get('replicas');
    if (replicasAt) replicas = ck.integer(replicasAt, 0);
    const mode = dk?.get('endpoint_mode');
    if (mode && mode.value !== null) {
      const m = ck.string(mode, 'vip or dnsrr');
      if (m === 'vip' || m === 'dnsrr') def.endpointMode = m;
      else if (m !== undefined) ck.error(mode, `"${m}" is not an endpoint mode; use vip (a virtual IP balanced in the kernel) or dnsrr (DNS answers with the healthy containers)`);
      def.endpointModeAt = mode;
    }
  }
  if (scale !== undefined && replicas !== undefined && scale !== replicas) {
    ck.error(scaleAt as At, `scale (${scale}) and deploy.replicas (${replicas}) differ; give one of them`);
  }
  def.replicas = replicas ?? scale ?? 1;
  def.replicasAt = replicasAt ?? scaleAt;
}

/** Reads one service. Missing command is reported here; references are checked by the caller. */
export function readService(ck: Checker, name: string, at: At, ctx: ServiceContext): ServiceDef {
  const def: ServiceDef = {
    name,
    at,
    profiles: [],
    cmd: [],
    env: [],
    workdir: ctx.projectDir,
    extraHosts: [],
    dns: [],
    labels: {},
    ports: [],
    expose: [],
    dependsOn: [],
    stopGracePeriodMs: 10_000,
    replicas: 1,
    weft: { keys: new Map() },
    extensions: {},
  };
  const keys = ck.keys(at, { supported: SERVICE_KEYS, unsupported: UNSUPPORTED_SERVICE_KEYS, extensions: true }, 'a mapping of service keys');
  if (!keys) return def;
  def.extensions = ck.extensions(keys);
  def.weft = readWeft(ck, keys.get('x-weft'));
  const get = (k: string): At | undefined => keys.get(k);
  const str = (k: string): string | undefined => {
    const c = get(k);
    return c && c.value !== null ? ck.string(c) : undefined;
  };

  const profiles = get('profiles');
  if (profiles && profiles.value !== null) def.profiles = ck.stringOrList(profiles, 'a list of profile names') ?? [];

  const entrypointAt = get('entrypoint');
  const commandAt = get('command');
  const entrypoint = entrypointAt ? readCommand(ck, entrypointAt) : undefined;
  const command = commandAt ? readCommand(ck, commandAt) : undefined;
  def.cmd = [...(entrypoint ?? []), ...(command ?? [])];
  const cmdOk = ![commandAt, entrypointAt].some((c) => c && ck.issues.some((i) => i.path === c.path));
  if (def.cmd.length === 0 && cmdOk) {
    const image = typeof get('image')?.value === 'string' ? `; "image: ${get('image')?.value}" alone cannot be run` : '';
    ck.error(at, `weft runs host processes: give a command (or an entrypoint), e.g. command: ["node", "server.js"]${image}`);
  }

  const env = new Map<string, string>();
  const envFile = get('env_file');
  if (envFile) readEnvFiles(ck, envFile, ctx, env);
  const environment = get('environment');
  if (environment) readEnvironment(ck, environment, ctx, env);
  def.env = [...env].map(([k, v]) => `${k}=${v}`);

  const wd = str('working_dir');
  if (wd !== undefined) def.workdir = resolve(ctx.projectDir, wd);

  const hostname = str('hostname');
  if (hostname !== undefined) {
    if (HOSTNAME_RE.test(hostname)) def.hostname = hostname;
    else ck.error(get('hostname') as At, `"${hostname}" is not a valid host name (letters, digits, '.' and '-', up to 63 characters)`);
  }

  const extraHosts = get('extra_hosts');
  if (extraHosts) def.extraHosts = readExtraHosts(ck, extraHosts);

  const dns = get('dns');
  if (dns && dns.value !== null) {
    const list = ck.stringOrList(dns, 'an IP address or a list of them') ?? [];
    list.forEach((ip, i) => {
      if (isIPv4(ip) || isIPv6(ip)) def.dns.push(ip);
      else ck.error(Array.isArray(dns.value) ? ck.child(dns, i) : dns, `"${ip}" is not an IP address`);
    });
  }

  const labels = get('labels');
  if (labels) def.labels = readLabels(ck, labels);

  const cn = str('container_name');
  if (cn !== undefined) {
    def.containerNameAt = get('container_name');
    if (CONTAINER_NAME_RE.test(cn)) def.containerName = cn;
    else ck.error(get('container_name') as At, `"${cn}" is not a valid container name (letters, digits, '_', '.' and '-', starting with a letter or digit)`);
  }
  def.image = str('image');

  const restartAt = get('restart');
  if (restartAt && restartAt.value !== null) {
    const r = ck.string(restartAt, 'no, always, on-failure[:N] or unless-stopped');
    if (r !== undefined) {
      try {
        def.restart = parseRestart(r);
      } catch (e) {
        ck.error(restartAt, (e as Error).message);
      }
    }
  }

  const hc = get('healthcheck');
  if (hc && hc.value !== null) {
    def.healthcheck = readHealthcheck(ck, hc);
    def.healthcheckAt = hc;
  }
  const grace = get('stop_grace_period');
  if (grace && grace.value !== null) def.stopGracePeriodMs = readDuration(ck, grace) ?? def.stopGracePeriodMs;

  const ports = get('ports');
  if (ports) def.ports = readPorts(ck, ports);
  const expose = get('expose');
  if (expose) def.expose = readExpose(ck, expose);

  const nets = get('networks');
  if (nets) {
    def.networks = readServiceNetworks(ck, nets);
    def.networksAt = nets;
  }
  const mode = get('network_mode');
  if (mode && mode.value !== null) {
    def.networkMode = readNetworkMode(ck, mode);
    def.networkModeAt = mode;
  }
  const deps = get('depends_on');
  if (deps) def.dependsOn = readDependsOn(ck, deps);
  readReplicas(ck, keys, def);
  return def;
}
