/**
 * What a compose project means for weft: the networks to create (as NetworkCreate requests) and
 * the services, each a number of containers (ContainerCreate + NetworkConnect requests), in start
 * order. The labels here are how `up` and `down` recognise what belongs to a project later:
 * Compose's own (com.docker.compose.*), so tools that know Compose read them too.
 */
import { createHash } from 'node:crypto';
import type { ContainerCreate, NetworkConnect, NetworkCreate, ServiceCreate as BalancerCreate } from '../api/schemas.js';
import type { HealthSpec } from '../health/spec.js';
import { type ReplicaPort, replicaPortRequest } from './ports.js';

export type { BalancerCreate };

export const LABELS = {
  project: 'com.docker.compose.project',
  service: 'com.docker.compose.service',
  number: 'com.docker.compose.container-number',
  configHash: 'com.docker.compose.config-hash',
  network: 'com.docker.compose.network',
  oneoff: 'com.docker.compose.oneoff',
  workingDir: 'com.docker.compose.project.working_dir',
  configFiles: 'com.docker.compose.project.config_files',
} as const;

/**
 * On the containers of a balanced service and of the services that are its backends (x-weft
 * backend_of): the compose service whose weft service selects them. A label of its own rather
 * than com.docker.compose.service, so that one balancer can select a canary service too.
 */
export const BALANCER_LABEL = 'weft.compose.balancer';

/** Labels a compose file may not set itself (weft sets them). */
export const RESERVED_LABEL_PREFIXES = ['com.docker.compose.', 'weft.compose.'] as const;

export type DependencyCondition = 'service_started' | 'service_healthy' | 'service_completed_successfully';

export interface ServiceDependency {
  service: string;
  condition: DependencyCondition;
  /** false: the dependency may be missing or fail to start (a warning, not an error) */
  required: boolean;
  /** restart this service when the dependency is recreated or restarted by up */
  restart: boolean;
}

/**
 * host: the host's network namespace; none: loopback only; bridge: weft's predefined bridge
 * network; { service }: the namespace of that service's first container (not in the agent's API
 * yet: the planner names the container in create-container.shareNetworkWith).
 */
export type NetworkMode = 'host' | 'none' | 'bridge' | { service: string };

/** One network of a service. */
export interface ServiceNetwork {
  /** the key under top-level networks */
  key: string;
  /** the real network name */
  network: string;
  /** the service name first, then the aliases the file gives */
  aliases: string[];
  ipv4?: string;
  ipv6?: string;
  priority: number;
}

/**
 * The weft service a compose service gets with deploy.endpoint_mode or x-weft.algorithm: its
 * name (the DNS name inside the project's network) and the API request that creates it.
 */
export interface ProjectBalancer {
  name: string;
  /** every field the planner compares is filled in, defaults included */
  request: BalancerCreate & Required<Pick<BalancerCreate, 'endpointMode' | 'network' | 'labels' | 'selector' | 'algorithm' | 'affinityTimeout' | 'ports'>>;
}

/** The part of ContainerCreate that every container of a service shares. */
export type ServiceCreate = Omit<ContainerCreate, 'name' | 'network' | 'ipv4' | 'ipv6' | 'aliases' | 'start'>;

export interface ProjectService {
  name: string;
  replicas: number;
  containerName?: string;
  image?: string;
  dependsOn: ServiceDependency[];
  networkMode?: NetworkMode;
  /** primary first (highest priority, then by key); empty with networkMode */
  networks: ServiceNetwork[];
  create: ServiceCreate;
  /** host port ranges shared out among replicas ("8000-8002:80"): each takes a free port of the range */
  replicaPorts: ReplicaPort[];
  /** the containers' health check (also in create.healthcheck, as the API takes it) */
  healthcheck?: HealthSpec;
  stopGracePeriodMs: number;
  /** the weft service balancing over the containers (endpoint_mode, x-weft); absent: DNS round robin over aliases */
  balancer?: ProjectBalancer;
  /** x-* keys of the service, as written (x-weft is read into create labels and balancer) */
  extensions: Record<string, unknown>;
  /** sha256 of everything that defines the service's containers (not replicas or dependencies) */
  configHash: string;
}

export interface ProjectNetwork {
  /** the key under top-level networks ("default" for the default network) */
  key: string;
  /** the real name: `name:`, else <project>_<key> (an external network: `name:`, else the key) */
  name: string;
  external: boolean;
  /** absent if external; labels include the project, network key and config hash */
  create?: NetworkCreate;
  /** sha256 of the create request without its labels' hash; absent if external */
  configHash?: string;
  extensions: Record<string, unknown>;
}

export interface Project {
  name: string;
  /** the project directory (relative paths in the files are relative to it) */
  workingDir: string;
  /** absolute paths of the compose files, in merge order */
  files: string[];
  /** the networks some enabled service uses */
  networks: ProjectNetwork[];
  /** enabled services in start order (dependencies first) */
  services: ProjectService[];
  /** services left out because none of their profiles is active */
  disabledServices: string[];
  /** top-level x-* keys */
  extensions: Record<string, unknown>;
  /** one line each, with file:line where known (unset variables, obsolete keys...) */
  warnings: string[];
}

/** JSON with object keys sorted and undefined dropped: the same value gives the same text. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(sortKeys(value));
}

function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v !== null && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(v).sort()) {
      const x = (v as Record<string, unknown>)[k];
      if (x !== undefined) out[k] = sortKeys(x);
    }
    return out;
  }
  return v;
}

export function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/**
 * The hash of a service: replicas and dependencies are left out (scaling recreates nothing), and
 * so is the balancer (changing the algorithm updates the weft service, not the containers).
 */
export function serviceConfigHash(s: Omit<ProjectService, 'configHash' | 'replicas' | 'dependsOn' | 'extensions' | 'balancer'>): string {
  return sha256(
    canonicalJson({
      name: s.name,
      containerName: s.containerName,
      image: s.image,
      networkMode: s.networkMode,
      networks: s.networks,
      create: s.create,
      replicaPorts: s.replicaPorts,
      healthcheck: s.healthcheck,
      stopGracePeriodMs: s.stopGracePeriodMs,
    }),
  );
}

/** The hash of a network create request (its config-hash label left out). */
export function networkConfigHash(req: NetworkCreate): string {
  const labels = { ...req.labels };
  delete labels[LABELS.configHash];
  return sha256(canonicalJson({ ...req, labels }));
}

/**
 * The weft service's name, unique per agent: <project>-<service>. Its DNS name is the compose
 * service's own (dnsName), so `api` inside the project reaches the virtual IP: the agent's DNS
 * answers it on the project network in place of the containers' aliases.
 */
export function balancerName(project: string, service: string): string {
  return `${project}-${service}`;
}

/** Compose v2 names: <project>-<service>-<n>, unless container_name. */
export function containerName(project: string, service: Pick<ProjectService, 'name' | 'containerName'>, n: number): string {
  return service.containerName ?? `${project}-${service.name}-${n}`;
}

/** The real name of a project network without `name:`. */
export function defaultNetworkName(project: string, key: string): string {
  return `${project}_${key}`;
}

export function networkLabels(project: string, key: string, hash?: string): Record<string, string> {
  const out: Record<string, string> = { [LABELS.project]: project, [LABELS.network]: key };
  if (hash) out[LABELS.configHash] = hash;
  return out;
}

export function containerLabels(
  project: Pick<Project, 'name' | 'workingDir' | 'files'>,
  service: Pick<ProjectService, 'name' | 'configHash'>,
  n: number,
): Record<string, string> {
  return {
    [LABELS.project]: project.name,
    [LABELS.service]: service.name,
    [LABELS.number]: String(n),
    [LABELS.configHash]: service.configHash,
    [LABELS.oneoff]: 'False',
    [LABELS.workingDir]: project.workingDir,
    [LABELS.configFiles]: project.files.join(','),
  };
}

/** The container whose network namespace a `network_mode: service:X` container joins. */
export function sharedNetnsContainer(project: Project, service: ProjectService): string | undefined {
  const mode = service.networkMode;
  if (typeof mode !== 'object') return undefined;
  const target = project.services.find((s) => s.name === mode.service);
  return target ? containerName(project.name, target, 1) : undefined;
}

/**
 * The request creating container n (1-based) of a service, on its primary network, not started
 * (start: false): connect the other networks (connectRequests), then start it.
 */
export function containerRequest(project: Pick<Project, 'name' | 'workingDir' | 'files'>, service: ProjectService, n: number): ContainerCreate {
  const { ports, labels, ...rest } = service.create;
  const allPorts = [...(ports ?? []), ...service.replicaPorts.map((p) => replicaPortRequest(p, n))];
  const req: ContainerCreate = {
    name: containerName(project.name, service, n),
    ...rest,
    labels: { ...labels, ...containerLabels(project, service, n) },
    start: false,
  };
  if (allPorts.length) req.ports = allPorts;
  const primary = service.networks[0];
  if (primary) {
    req.network = primary.network;
    if (primary.ipv4) req.ipv4 = primary.ipv4;
    if (primary.ipv6) req.ipv6 = primary.ipv6;
    if (primary.aliases.length) req.aliases = primary.aliases;
  } else if (service.networkMode === 'host' || service.networkMode === 'none' || service.networkMode === 'bridge') {
    req.network = service.networkMode;
  }
  return req;
}

/** The connects that attach container n to the service's other networks, in priority order. */
export function connectRequests(project: Pick<Project, 'name'>, service: ProjectService, n: number): { network: string; request: NetworkConnect }[] {
  const container = containerName(project.name, service, n);
  return service.networks.slice(1).map((net) => {
    const request: NetworkConnect = { container };
    if (net.ipv4) request.ipv4 = net.ipv4;
    if (net.ipv6) request.ipv6 = net.ipv6;
    if (net.aliases.length) request.aliases = net.aliases;
    return { network: net.network, request };
  });
}
