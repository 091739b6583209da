/**
 * The agent's HTTP API contract (JSON over a unix socket, under /v1). Request schemas are
 * validated by the agent (unknown fields are errors); the CLI and the other front ends build
 * requests of these types. Responses are the model types of src/model/types.ts plus what the
 * comments below say.
 *
 * Routes:
 *   GET    /v1/version                      -> VersionInfo
 *   GET    /v1/info                         -> SystemInfo
 *   GET    /v1/networks?name=&driver=&label=&id=   (each repeatable; Docker filter semantics)
 *                                           -> NetworkView[]
 *   POST   /v1/networks            NetworkCreate -> 201 NetworkView
 *   GET    /v1/networks/:ref                -> NetworkView          (ref: name, id or unique id prefix)
 *   DELETE /v1/networks/:ref                -> 204
 *   POST   /v1/networks/:ref/connect    NetworkConnect    -> 200 ContainerView
 *   POST   /v1/networks/:ref/disconnect NetworkDisconnect -> 200 ContainerView
 *   POST   /v1/networks/prune               -> { deleted: string[] }
 *   GET    /v1/containers?all=1&name=&label=&id=&status= -> ContainerView[]
 *   POST   /v1/containers          ContainerCreate -> 201 ContainerView
 *   GET    /v1/containers/:ref              -> ContainerView
 *   POST   /v1/containers/:ref/start        -> ContainerView
 *   POST   /v1/containers/:ref/stop?t=10    -> ContainerView
 *   POST   /v1/containers/:ref/restart?t=10 -> ContainerView
 *   POST   /v1/containers/:ref/wait         -> { exitCode: number }   (long poll until it exits)
 *   DELETE /v1/containers/:ref?force=1      -> 204
 *   GET    /v1/containers/:ref/logs?follow=1&stdout=1&stderr=1&tail=N -> framed stream
 *   POST   /v1/containers/:ref/exec ExecCreate -> framed stream ending with an exit frame
 *   GET    /v1/events?since=REV              -> NDJSON stream of WeftEvent
 *   POST   /v1/system/prune   { all?: boolean } -> { containers: string[], networks: string[] }
 *   GET    /v1/system/check                 -> { leaks: Leak[] }
 *   GET    /v1/services?name=&label=         -> ServiceView[]
 *   POST   /v1/services            ServiceCreate -> 201 ServiceView
 *   GET    /v1/services/:ref                -> ServiceView
 *   POST   /v1/services/:ref/update ServiceUpdate -> ServiceView   (scale = update { replicas })
 *   DELETE /v1/services/:ref                -> 204   (removes its replicas too)
 *   GET    /v1/policies?project=             -> PolicyView[]
 *   POST   /v1/policies            PolicyApply -> { result: created|configured|unchanged, policy: PolicyView }
 *   GET    /v1/policies/:project/:name       -> PolicyView
 *   DELETE /v1/policies/:project/:name       -> PolicyView (the deleted policy)
 *   POST   /v1/policies/check      PolicyCheck -> PolicyCheckResult
 *   POST   /v1/policies/matrix     PolicyMatrixRequest -> PolicyMatrix
 *   GET    /v1/projects                     -> ProjectView[]
 *   GET    /v1/projects/:name               -> ProjectView
 *   POST   /v1/projects/:name/labels LabelChange -> ProjectView
 *   POST   /v1/containers/:ref/labels LabelChange -> ContainerView
 *   GET    /openapi.json                    -> the OpenAPI document
 *
 * Errors: status 400 (bad input), 404 (no such object), 409 (conflict: name in use, address
 * taken, port in use, network in use), 500; body { message: string } — one line, naming the
 * field or object and the fix.
 *
 * Framed streams (Docker's multiplexing): each frame is an 8-byte header — byte 0 the stream
 * (1 stdout, 2 stderr, 3 exit), bytes 4..7 the payload length (uint32 big endian) — then the
 * payload. An exit frame's payload is the exit code in decimal.
 */
import { Type, type Static } from 'typebox';
import type { Container, Endpoint, Network, Service } from '../model/types.js';
import type { HealthStatus } from '../health/state.js';
import type { Policy } from '../policy/types.js';
import type { Verdict } from '../policy/evaluate.js';

const Labels = Type.Record(Type.String(), Type.String());

export const SubnetRequest = Type.Object(
  {
    subnet: Type.Optional(Type.String({ description: 'CIDR; picked from the default pools if absent' })),
    ipRange: Type.Optional(Type.String()),
    gateway: Type.Optional(Type.String()),
  },
  { additionalProperties: false },
);
export type SubnetRequest = Static<typeof SubnetRequest>;

export const NetworkCreate = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 64 }),
    driver: Type.Optional(Type.Union([Type.Literal('bridge')])),
    /** v4 and v6 subnets as given by --subnet (family from the CIDR) */
    subnets: Type.Optional(Type.Array(SubnetRequest)),
    ipv6: Type.Optional(Type.Boolean()),
    internal: Type.Optional(Type.Boolean()),
    options: Type.Optional(Labels),
    labels: Type.Optional(Labels),
  },
  { additionalProperties: false },
);
export type NetworkCreate = Static<typeof NetworkCreate>;

export const NetworkConnect = Type.Object(
  {
    container: Type.String({ minLength: 1 }),
    ipv4: Type.Optional(Type.String()),
    ipv6: Type.Optional(Type.String()),
    aliases: Type.Optional(Type.Array(Type.String())),
  },
  { additionalProperties: false },
);
export type NetworkConnect = Static<typeof NetworkConnect>;

export const NetworkDisconnect = Type.Object(
  { container: Type.String({ minLength: 1 }), force: Type.Optional(Type.Boolean()) },
  { additionalProperties: false },
);
export type NetworkDisconnect = Static<typeof NetworkDisconnect>;

/** Compose's healthcheck keys; durations as Go strings ("1m30s") or milliseconds. */
export const HealthcheckRequest = Type.Object(
  {
    /** ["CMD", ...], ["CMD-SHELL", "..."], ["TCP", "80"], ["HTTP", "8080", "/healthz"], ["NONE"], or a shell string */
    test: Type.Union([Type.String(), Type.Array(Type.String(), { minItems: 1 })]),
    interval: Type.Optional(Type.Union([Type.String(), Type.Number()])),
    timeout: Type.Optional(Type.Union([Type.String(), Type.Number()])),
    retries: Type.Optional(Type.Integer({ minimum: 0 })),
    start_period: Type.Optional(Type.Union([Type.String(), Type.Number()])),
    start_interval: Type.Optional(Type.Union([Type.String(), Type.Number()])),
    disable: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);
export type HealthcheckRequest = Static<typeof HealthcheckRequest>;

export const PortRequest = Type.Object(
  {
    hostIp: Type.Optional(Type.String()),
    /** 0 or absent: pick a free port */
    hostPort: Type.Optional(Type.Integer({ minimum: 0, maximum: 65535 })),
    /** with hostPort: publish on the first free port of hostPort..hostPortEnd (-p 8000-8010:80) */
    hostPortEnd: Type.Optional(Type.Integer({ minimum: 1, maximum: 65535 })),
    containerPort: Type.Integer({ minimum: 1, maximum: 65535 }),
    protocol: Type.Optional(Type.Union([Type.Literal('tcp'), Type.Literal('udp')])),
  },
  { additionalProperties: false },
);
export type PortRequest = Static<typeof PortRequest>;

export const ExposeRequest = Type.Object(
  {
    /** an IANA service name: at most 15 of a-z 0-9 '-', a letter among them */
    name: Type.Optional(Type.String({ pattern: '^[a-z0-9-]{1,15}$' })),
    port: Type.Integer({ minimum: 1, maximum: 65535 }),
    protocol: Type.Optional(Type.Union([Type.Literal('tcp'), Type.Literal('udp'), Type.Literal('sctp')])),
  },
  { additionalProperties: false },
);

export const ContainerCreate = Type.Object(
  {
    name: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
    cmd: Type.Array(Type.String(), { minItems: 1 }),
    env: Type.Optional(Type.Array(Type.String())),
    workdir: Type.Optional(Type.String()),
    hostname: Type.Optional(Type.String()),
    labels: Type.Optional(Labels),
    restart: Type.Optional(
      Type.Object(
        {
          name: Type.Union([
            Type.Literal('no'),
            Type.Literal('on-failure'),
            Type.Literal('always'),
            Type.Literal('unless-stopped'),
          ]),
          maxRetries: Type.Optional(Type.Integer({ minimum: 0 })),
        },
        { additionalProperties: false },
      ),
    ),
    ports: Type.Optional(Type.Array(PortRequest)),
    /** network name/id, or 'host' / 'none'; default 'bridge' */
    network: Type.Optional(Type.String()),
    ipv4: Type.Optional(Type.String()),
    ipv6: Type.Optional(Type.String()),
    aliases: Type.Optional(Type.Array(Type.String())),
    extraHosts: Type.Optional(Type.Array(Type.String())),
    dns: Type.Optional(Type.Array(Type.String())),
    /** remove the container once it has exited or been stopped (run --rm) */
    autoRemove: Type.Optional(Type.Boolean()),
    healthcheck: Type.Optional(HealthcheckRequest),
    /** the project (Kubernetes namespace) for network policy; default: the compose project label, else "default" */
    project: Type.Optional(Type.String({ pattern: '^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$' })),
    /** ports the container serves; a name makes it a named port for network policies */
    expose: Type.Optional(Type.Array(ExposeRequest, { maxItems: 1024 })),
    /** default true: create and start (run -d); false: create only */
    start: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);
export type ContainerCreate = Static<typeof ContainerCreate>;

const Algorithm = Type.Union([
  Type.Literal('round-robin'),
  Type.Literal('weighted-round-robin'),
  Type.Literal('random'),
  Type.Literal('source-affinity'),
  Type.Literal('maglev'),
  Type.Literal('least-connections'),
]);

export const ServicePortRequest = Type.Object(
  {
    name: Type.Optional(Type.String({ pattern: '^[a-z0-9]([a-z0-9-]{0,13}[a-z0-9])?$' })),
    protocol: Type.Optional(Type.Union([Type.Literal('tcp'), Type.Literal('udp')])),
    port: Type.Integer({ minimum: 1, maximum: 65535 }),
    /** default: port */
    targetPort: Type.Optional(Type.Integer({ minimum: 1, maximum: 65535 })),
    publish: Type.Optional(Type.Integer({ minimum: 1, maximum: 65535 })),
  },
  { additionalProperties: false },
);
export type ServicePortRequest = Static<typeof ServicePortRequest>;

const ServiceFields = {
  ports: Type.Optional(Type.Array(ServicePortRequest, { maxItems: 16 })),
  selector: Type.Optional(Labels),
  algorithm: Type.Optional(Algorithm),
  affinityTimeout: Type.Optional(Type.Integer({ minimum: 1, maximum: 86400 })),
  weights: Type.Optional(Type.Record(Type.String(), Type.Integer({ minimum: 1, maximum: 1000 }))),
  healthcheck: Type.Optional(HealthcheckRequest),
  replicas: Type.Optional(Type.Integer({ minimum: 0, maximum: 1000 })),
  /** the container each replica is made from (its name and network are the service's) */
  template: Type.Optional(Type.Omit(ContainerCreate, ['name', 'start', 'network', 'ipv4', 'ipv6', 'autoRemove'])),
};

export const ServiceCreate = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 63 }),
    /** the DNS name (default: name), e.g. a compose service's own name */
    dnsName: Type.Optional(Type.String({ minLength: 1, maxLength: 63 })),
    endpointMode: Type.Optional(Type.Union([Type.Literal('vip'), Type.Literal('dnsrr')])),
    /** a virtual IP of the service range; default: the next free one */
    vip: Type.Optional(Type.String()),
    network: Type.Optional(Type.String()),
    labels: Type.Optional(Labels),
    ...ServiceFields,
  },
  { additionalProperties: false },
);
export type ServiceCreate = Static<typeof ServiceCreate>;

export const ServiceUpdate = Type.Object({ ...ServiceFields }, { additionalProperties: false });
export type ServiceUpdate = Static<typeof ServiceUpdate>;

export interface ServiceBackendView {
  id: string;
  name: string;
  ip?: string;
  weight: number;
  /** in the balancer (and in DNS for dnsrr) now */
  active: boolean;
  /** the container's own check, if any */
  health?: HealthStatus;
  /** the service's probe, if any */
  probe?: HealthStatus;
  /** open connections through the service (least-connections) */
  conns?: number;
}

/** A service as the API shows it: the model plus its backends now. */
export interface ServiceView extends Service {
  networkName?: string;
  backends: ServiceBackendView[];
}

export const ExecCreate = Type.Object(
  {
    cmd: Type.Array(Type.String(), { minItems: 1 }),
    env: Type.Optional(Type.Array(Type.String())),
    workdir: Type.Optional(Type.String()),
  },
  { additionalProperties: false },
);
export type ExecCreate = Static<typeof ExecCreate>;

export const SystemPrune = Type.Object({ all: Type.Optional(Type.Boolean()) }, { additionalProperties: false });

export interface VersionInfo {
  version: string;
  apiVersion: string;
  node: string;
  os: string;
  kernel: string;
}

export interface SystemInfo {
  containers: number;
  running: number;
  stopped: number;
  networks: number;
  store: string;
  stateDir: string;
  socket: string;
  nodeId: string;
  kernel: string;
  /** weft's nftables tables are loaded in the agent's host namespace */
  nftables: boolean;
}

/** A network as the API shows it: the model plus who is attached. */
export interface NetworkView extends Network {
  containers: Record<string, { name: string; ipv4?: string; ipv6?: string; mac: string; aliases: string[] }>;
}

/** A container as the API shows it: the model plus the names of its networks. */
export interface ContainerView extends Container {
  /** a human status like Docker's: "Up 3 minutes", "Exited (0) 2 seconds ago", "Created" */
  status: string;
  networks: Record<string, Endpoint & { networkName: string }>;
}

export interface WeftEvent {
  revision: number;
  time: string;
  type: 'network' | 'container' | 'service' | 'policy' | 'project';
  action: string;
  id: string;
  name: string;
  attributes?: Record<string, string>;
}

export interface Leak {
  kind: 'container' | 'netns' | 'link' | 'address' | 'port' | 'nft' | 'process' | 'file';
  name: string;
  detail: string;
}

export { Frame, encodeFrame, FrameDecoder } from './frames.js';

// ------------------------------------------------------------------ network policy

export const PolicyApply = Type.Object(
  {
    /** a networking.k8s.io/v1 NetworkPolicy object, as in its YAML */
    object: Type.Unknown(),
    /** the project when the object names no metadata.namespace (kubectl apply -n) */
    project: Type.Optional(Type.String()),
  },
  { additionalProperties: false },
);
export type PolicyApply = Static<typeof PolicyApply>;

export const LabelChange = Type.Object(
  {
    set: Type.Optional(Labels),
    remove: Type.Optional(Type.Array(Type.String())),
  },
  { additionalProperties: false },
);
export type LabelChange = Static<typeof LabelChange>;

const ProbeProtocol = Type.Union([Type.Literal('tcp'), Type.Literal('udp'), Type.Literal('sctp'), Type.Literal('icmp')]);

export const PolicyCheck = Type.Object(
  {
    /** a container (name, id, prefix) or an address */
    from: Type.String({ minLength: 1 }),
    to: Type.String({ minLength: 1 }),
    protocol: Type.Optional(ProbeProtocol),
    port: Type.Optional(Type.Integer({ minimum: 1, maximum: 65535 })),
  },
  { additionalProperties: false },
);
export type PolicyCheck = Static<typeof PolicyCheck>;

export const PolicyMatrixRequest = Type.Object(
  {
    /** "80/tcp", "53/udp"; default: every port the containers expose */
    ports: Type.Optional(Type.Array(Type.String({ pattern: '^[0-9]{1,5}(/(tcp|udp))?$' }))),
    /** only containers of these projects */
    projects: Type.Optional(Type.Array(Type.String())),
    /** verify every cell with a real connection */
    probe: Type.Optional(Type.Boolean()),
    /** probe timeout per connection (default 1000) */
    timeoutMs: Type.Optional(Type.Integer({ minimum: 50, maximum: 30000 })),
  },
  { additionalProperties: false },
);
export type PolicyMatrixRequest = Static<typeof PolicyMatrixRequest>;

export interface PolicyView extends Policy {
  /** the containers the policy selects (project/name) */
  selected: string[];
  /** packets dropped at containers this policy isolates (counted for each isolating policy) */
  drops: { packets: number; bytes: number };
}

export interface ProjectView {
  name: string;
  labels: Record<string, string>;
  created?: string;
  containers: number;
  policies: number;
}

export interface PartyView {
  /** the container, absent for an address outside weft */
  container?: string;
  project?: string;
  ip: string;
}

export interface PolicyCheckResult {
  allowed: boolean;
  from: PartyView;
  to: PartyView;
  protocol: string;
  port?: number;
  /** one line per deciding side */
  reasons: string[];
  verdict: Verdict;
  /** set when no weft network joins the two: policy aside, packets have no way there */
  noPath?: string;
}

export type MatrixCell = 'allow' | 'deny' | 'no-path';

export interface PolicyMatrix {
  containers: PartyView[];
  ports: string[];
  /** cells[from][to][port]: '' on the diagonal */
  cells: Array<Array<Array<MatrixCell | ''>>>;
  /** with probe: what the kernel did, per cell ('' where not probed) */
  probed?: Array<Array<Array<'allow' | 'deny' | ''>>>;
  /** with probe: every cell where the kernel disagrees with the model */
  disagreements?: Array<{ from: string; to: string; port: string; model: MatrixCell; kernel: string }>;
}
