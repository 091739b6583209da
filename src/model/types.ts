/** Resource types: what the store holds and the API returns. */
import type { HealthSpec } from '../health/spec.js';
import type { HealthState } from '../health/state.js';

export type Family = 4 | 6;

export interface IpamSubnet {
  /** canonical CIDR, e.g. 172.18.0.0/16 or fd12:3456:789a:1::/64 */
  subnet: string;
  /** allocate dynamic addresses only from this CIDR (inside subnet) */
  ipRange?: string;
  /** the gateway address (no prefix); on the bridge for the bridge driver */
  gateway: string;
  family: Family;
  /** picked from a default pool rather than given by the user */
  auto: boolean;
}

export type NetworkDriver = 'bridge' | 'host' | 'none';

export interface Network {
  /** 64 hex characters */
  id: string;
  name: string;
  driver: NetworkDriver;
  /** ISO 8601 */
  created: string;
  internal: boolean;
  enableIPv6: boolean;
  /** inter-container communication on this network */
  icc: boolean;
  mtu: number;
  /** driver options as given (com.docker.network.* names are accepted too) */
  options: Record<string, string>;
  labels: Record<string, string>;
  subnets: IpamSubnet[];
  /** the Linux bridge (bridge driver) */
  bridge?: string;
  /** predefined networks: bridge, host, none */
  builtin: boolean;
}

export interface Endpoint {
  networkId: string;
  /** inside the container: eth0, eth1... */
  ifname: string;
  /** the veth end on the host side (on the bridge) */
  hostIfname: string;
  mac: string;
  ipv4?: string;
  ipv6?: string;
  /** the fe80:: address the container derives from its MAC (allowed by anti-spoofing) */
  linkLocal6?: string;
  aliases: string[];
  /** addresses the user asked for (kept across restarts) */
  requestedIPv4?: string;
  requestedIPv6?: string;
}

export type Protocol = 'tcp' | 'udp';

/** A published port as requested (-p). hostPort 0 = pick one. */
export interface PortSpec {
  hostIp: string;
  hostPort: number;
  /** pick the first free port of hostPort..hostPortEnd (-p 8000-8010:80); absent once bound */
  hostPortEnd?: number;
  containerPort: number;
  protocol: Protocol;
}

/** A published port as bound: hostPort is known. */
export type PortBinding = PortSpec;

export type RestartPolicyName = 'no' | 'on-failure' | 'always' | 'unless-stopped';

export interface ContainerConfig {
  cmd: string[];
  env: string[];
  workdir?: string;
  hostname: string;
  labels: Record<string, string>;
  restart: { name: RestartPolicyName; maxRetries: number };
  ports: PortSpec[];
  /** network name or id for the first attachment; 'host' and 'none' are network modes */
  networkMode: string;
  /** extra /etc/hosts lines: "name:ip" */
  extraHosts: string[];
  dns: string[];
  /** run --rm: the agent removes the container once it has exited (or been stopped) */
  autoRemove?: boolean;
  /** a health check (run --health-*, compose healthcheck); absent: none */
  healthcheck?: HealthSpec;
  /** the project (Kubernetes namespace) network policies see it in; absent: its compose project, else "default" */
  project?: string;
  /** ports it serves (run --expose [NAME=]PORT/PROTO, compose expose and named ports): named ones are policies' named ports */
  expose?: ExposedPort[];
}

export interface ExposedPort {
  name?: string;
  port: number;
  protocol: 'tcp' | 'udp' | 'sctp';
}

/**
 * creating: being built (an agent that restarts finds it half-made and removes it)
 * created: exists, never started; running; exited; removing: being torn down.
 */
export type ContainerPhase = 'creating' | 'created' | 'running' | 'exited' | 'removing';

export interface ContainerState {
  phase: ContainerPhase;
  pid?: number;
  /** /proc/PID/stat field 22, to tell our process from a recycled PID */
  pidStart?: number;
  exitCode?: number;
  startedAt?: string;
  finishedAt?: string;
  restartCount: number;
  /** set by stop: a restart policy must not revive it */
  stoppedByUser: boolean;
  error?: string;
  /** the health check's verdict while running (absent without a check) */
  health?: HealthState;
}

export interface Container {
  /** 64 hex characters */
  id: string;
  name: string;
  created: string;
  config: ContainerConfig;
  state: ContainerState;
  /** the container's network namespace (under /run/netns); the host's for network mode host */
  netns?: string;
  /** keyed by network id */
  endpoints: Record<string, Endpoint>;
  ports: PortBinding[];
}

export const PREDEFINED_NETWORKS = ['bridge', 'host', 'none'] as const;

/** User-defined bridge networks have weft's embedded DNS on their gateways; the predefined bridge has not (as in Docker). */
export function hasEmbeddedDns(n: Network): boolean {
  return n.driver === 'bridge' && !n.builtin;
}


export type EndpointMode = 'vip' | 'dnsrr';

/** How a service picks a backend for a new connection (src/services/README.md). */
export const LB_ALGORITHMS = ['round-robin', 'weighted-round-robin', 'random', 'source-affinity', 'maglev', 'least-connections'] as const;
export type LbAlgorithm = (typeof LB_ALGORITHMS)[number];

export interface ServicePort {
  /** names the port in SRV records: _NAME._PROTO.SERVICE */
  name?: string;
  protocol: Protocol;
  /** the port on the virtual IP */
  port: number;
  /** the port on each backend */
  targetPort: number;
  /** also published on every host address at this port, balanced the same way */
  publish?: number;
}

/**
 * A service: a name, a virtual IP and the containers behind it. Backends are the running
 * containers whose labels include every selector label; a service with `replicas` creates and
 * removes its own containers from `template` (labelled weft.service=NAME, selected by it).
 */
export interface Service {
  id: string;
  name: string;
  created: string;
  /** 1..65535, unique per host: its ports' load-balancer keys are key * 16 + port index */
  key: number;
  /** the name it answers to in DNS (default: name); compose uses SERVICE for service PROJECT-SERVICE */
  dnsName?: string;
  /** vip: the name resolves to `vip`, connections are balanced in the kernel; dnsrr: to the backends */
  endpointMode: EndpointMode;
  vip?: string;
  ports: ServicePort[];
  selector: Record<string, string>;
  /** the network backends are reached on and the name resolves on; absent: each backend's first */
  network?: string;
  algorithm: LbAlgorithm;
  /** source-affinity: seconds a client keeps its backend after its last new connection */
  affinityTimeout: number;
  /** container name -> weight (default: the container's weft.weight label, else 1) */
  weights: Record<string, number>;
  /** a probe every backend must pass (on top of the containers' own health checks) */
  healthcheck?: HealthSpec;
  replicas?: number;
  /** the container request each replica is created from (replicas only) */
  template?: Record<string, unknown>;
  labels: Record<string, string>;
}

/** The label that marks a service's own replicas, and that its selector matches. */
export const SERVICE_LABEL = 'weft.service';
/** A container's weight in every service that selects it, unless the service names it. */
export const WEIGHT_LABEL = 'weft.weight';
