/**
 * Convergence, pure: given the project and what the agent has now, the ordered API calls that
 * make the two agree. `up` twice in a row plans nothing the second time.
 *
 * What belongs to a project is read from labels only (com.docker.compose.project, .service,
 * .container-number, .config-hash, .network), never from names, so weft touches nothing else.
 * Each action is one API call (create-container always has start: false; connect and start
 * follow), so an executor is a loop and progress is one line per action (describeAction).
 *
 * planUp, in order:
 *   1. orphans (containers of services no longer in the file) stopped and removed;
 *   2. networks created; a project network whose config hash changed is recreated when only this
 *      project's containers are attached (they are removed first and recreated in step 3); if
 *      containers of anyone else are attached it is a PlanError (Compose errors too);
 *   3. per service in start order: replicas beyond the count and duplicates removed (highest
 *      number first), then for n = 1..replicas: create if missing; recreate (remove + create)
 *      if the config hash changed, the container is half-made, or the service it shares a
 *      namespace with was recreated; start if created or exited; restart if a dependency with
 *      `restart: true` was recreated; then its weft service (endpoint_mode, x-weft) created or
 *      updated — after the containers, so that ports containers published are free for it.
 * Weft services no longer wanted, or whose endpoint mode or network changed (the API cannot update
 * those), are removed first of all, so their published ports are free for what follows.
 * planDown: the project's weft services removed, its containers stopped in reverse start order,
 * then removed, then its networks (never external ones, nor one that still has other containers
 * attached).
 */
import type { ContainerCreate, NetworkConnect, NetworkCreate, ServicePortRequest, ServiceUpdate } from '../api/schemas.js';
import type { ContainerPhase, EndpointMode } from '../model/types.js';
import { PlanError } from './errors.js';
import {
  type BalancerCreate,
  type DependencyCondition,
  type Project,
  type ProjectBalancer,
  type ProjectService,
  LABELS,
  canonicalJson,
  connectRequests,
  containerName,
  containerRequest,
  sharedNetnsContainer,
} from './model.js';

/** What the planner needs of a container (ContainerView fits). */
export interface CurrentContainer {
  id: string;
  name: string;
  config: { labels: Record<string, string> };
  state: { phase: ContainerPhase };
}

/** What the planner needs of a network (NetworkView fits); containers keyed by container id. */
export interface CurrentNetwork {
  id: string;
  name: string;
  labels: Record<string, string>;
  containers?: Record<string, { name: string }>;
}

/** What the planner needs of a weft service (ServiceView fits). */
export interface CurrentService {
  id: string;
  name: string;
  endpointMode: EndpointMode;
  ports: readonly ServicePortRequest[];
  selector: Record<string, string>;
  networkName?: string;
  algorithm: string;
  affinityTimeout: number;
  labels: Record<string, string>;
}

export interface CurrentState {
  networks: readonly CurrentNetwork[];
  containers: readonly CurrentContainer[];
  /** every weft service on the agent (names are unique per agent); absent: none */
  services?: readonly CurrentService[];
}

export type CreateReason = 'missing' | 'config changed' | 'incomplete' | 'network recreated' | 'namespace owner recreated';
export type RemoveReason = 'orphan' | 'scale down' | 'duplicate' | 'recreate' | 'network recreated' | 'down';

export type Action =
  | { kind: 'create-network'; key: string; network: string; request: NetworkCreate; reason: 'missing' | 'config changed' }
  | { kind: 'remove-network'; network: string; id: string; reason: 'config changed' | 'down' }
  | {
      kind: 'create-container';
      service: string;
      number: number;
      container: string;
      request: ContainerCreate;
      /** network_mode service:X: join this container's namespace (the agent's API has no field for it yet) */
      shareNetworkWith?: string;
      reason: CreateReason;
    }
  | { kind: 'connect'; service: string; container: string; network: string; request: NetworkConnect }
  | {
      kind: 'start-container';
      service: string;
      container: string;
      /** known when the container existed before this plan */
      id?: string;
      /** dependencies to wait for first (conditions other than service_started) */
      waitFor: { service: string; condition: DependencyCondition }[];
    }
  | { kind: 'restart-container'; service: string; container: string; id: string; timeoutSeconds: number }
  | { kind: 'stop-container'; service?: string; container: string; id: string; timeoutSeconds: number }
  | { kind: 'remove-container'; service?: string; container: string; id: string; reason: RemoveReason }
  | { kind: 'create-service'; service: string; name: string; request: BalancerCreate; reason: 'missing' | 'config changed' }
  /** changes: the fields that differ, for the progress line */
  | { kind: 'update-service'; service: string; name: string; id: string; request: ServiceUpdate; changes: string[] }
  | { kind: 'remove-service'; service?: string; name: string; id: string; reason: 'orphan' | 'not balanced' | 'config changed' | 'duplicate' | 'down' };

export interface Plan {
  actions: Action[];
  /** one line each: things left alone, networks used though not created by compose... */
  warnings: string[];
}

export interface UpOptions {
  /** remove containers of services no longer in the file (default true; false: a warning) */
  removeOrphans?: boolean;
}

export interface DownOptions {
  /** accepted for Compose's -v; weft has no volumes, so it changes nothing */
  volumes?: boolean;
  /** also remove orphans and project networks no longer in the file (default true) */
  removeOrphans?: boolean;
}

const DEFAULT_STOP_SECONDS = 10;

function stopSeconds(service?: ProjectService): number {
  return service ? Math.ceil(service.stopGracePeriodMs / 1000) : DEFAULT_STOP_SECONDS;
}

function ours(project: Project, labels: Record<string, string>): boolean {
  return labels[LABELS.project] === project.name;
}

function numberOf(c: CurrentContainer): number | undefined {
  const n = c.config.labels[LABELS.number];
  return n !== undefined && /^[1-9]\d*$/.test(n) ? Number(n) : undefined;
}

function byNumberThenName(a: CurrentContainer, b: CurrentContainer): number {
  return (numberOf(a) ?? Infinity) - (numberOf(b) ?? Infinity) || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
}

class Planner {
  readonly actions: Action[] = [];
  readonly warnings: string[] = [];
  readonly conflicts: string[] = [];
  /** ids of containers and weft services this plan removes */
  readonly gone = new Set<string>();
  /** weft services left in place (by compose service), to be updated if need be */
  readonly kept = new Map<string, CurrentService>();
  /** compose services whose weft service this plan removes to create it anew */
  readonly recreatedServices = new Set<string>();

  constructor(readonly project: Project) {}

  stopRemove(c: CurrentContainer, reason: RemoveReason, service?: ProjectService): void {
    const name = c.config.labels[LABELS.service];
    if (c.state.phase === 'running') {
      this.actions.push({ kind: 'stop-container', service: name, container: c.name, id: c.id, timeoutSeconds: stopSeconds(service) });
    }
    this.actions.push({ kind: 'remove-container', service: name, container: c.name, id: c.id, reason });
    this.gone.add(c.id);
  }

  waitFor(s: ProjectService): { service: string; condition: DependencyCondition }[] {
    return s.dependsOn.filter((d) => d.condition !== 'service_started').map((d) => ({ service: d.service, condition: d.condition }));
  }

  create(s: ProjectService, n: number, reason: CreateReason): void {
    const request = containerRequest(this.project, s, n);
    const container = request.name as string;
    const share = sharedNetnsContainer(this.project, s);
    this.actions.push({ kind: 'create-container', service: s.name, number: n, container, request, ...(share ? { shareNetworkWith: share } : {}), reason });
    for (const c of connectRequests(this.project, s, n)) {
      this.actions.push({ kind: 'connect', service: s.name, container, network: c.network, request: c.request });
    }
    this.actions.push({ kind: 'start-container', service: s.name, container, waitFor: this.waitFor(s) });
  }
}

function planNetworks(p: Planner, current: CurrentState, mine: CurrentContainer[]): void {
  const project = p.project;
  const mineIds = new Set(mine.map((c) => c.id));
  for (const net of project.networks) {
    const cur = current.networks.find((n) => n.name === net.name);
    if (net.external) {
      if (!cur) p.conflicts.push(`network "${net.name}" is declared as external but does not exist; create it first (weft network create ${net.name})`);
      continue;
    }
    const create = net.create as NetworkCreate;
    if (!cur) {
      p.actions.push({ kind: 'create-network', key: net.key, network: net.name, request: create, reason: 'missing' });
      continue;
    }
    const owner = cur.labels[LABELS.project];
    if (owner === undefined) {
      p.warnings.push(`network "${net.name}" exists but was not created by compose; using it as it is (say external: true to make that explicit)`);
      continue;
    }
    if (owner !== project.name) {
      p.conflicts.push(`network "${net.name}" belongs to project "${owner}"; give this network another name`);
      continue;
    }
    const key = cur.labels[LABELS.network];
    if (key !== undefined && key !== net.key) {
      p.conflicts.push(`network "${net.name}" is project network "${key}", not "${net.key}"; give one of them another name`);
      continue;
    }
    const hash = cur.labels[LABELS.configHash];
    if (hash === undefined || hash === net.configHash) continue;
    const attached = Object.entries(cur.containers ?? {});
    const foreign = attached.filter(([id]) => !mineIds.has(id)).map(([, c]) => c.name);
    if (foreign.length) {
      p.conflicts.push(
        `network "${net.name}" needs to be recreated (its configuration changed), but containers outside project "${project.name}" are attached: ${foreign.sort().join(', ')}; disconnect them, or undo the change`,
      );
      continue;
    }
    for (const [id] of attached) {
      const c = mine.find((x) => x.id === id) as CurrentContainer;
      if (!p.gone.has(c.id)) p.stopRemove(c, 'network recreated', project.services.find((s) => s.name === c.config.labels[LABELS.service]));
    }
    p.actions.push({ kind: 'remove-network', network: net.name, id: cur.id, reason: 'config changed' });
    p.actions.push({ kind: 'create-network', key: net.key, network: net.name, request: create, reason: 'config changed' });
  }
}

function oursByName<T extends { name: string; labels: Record<string, string> }>(project: Project, list: readonly T[] = []): T[] {
  return list.filter((x) => ours(project, x.labels)).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** Ports as the agent keeps them (defaults filled in), for comparing. */
function portsText(ports: readonly ServicePortRequest[]): string {
  return canonicalJson(ports.map((p) => ({ name: p.name, protocol: p.protocol ?? 'tcp', port: p.port, targetPort: p.targetPort ?? p.port, publish: p.publish })));
}

/** The fields the API can update (ServiceUpdate) that differ between the file and the agent. */
function serviceChanges(want: ProjectBalancer, cur: CurrentService): string[] {
  const r = want.request;
  const out: string[] = [];
  if (portsText(r.ports) !== portsText(cur.ports)) out.push('ports');
  if (canonicalJson(r.selector) !== canonicalJson(cur.selector)) out.push('selector');
  if (r.algorithm !== cur.algorithm) out.push('algorithm');
  if (r.affinityTimeout !== cur.affinityTimeout) out.push('affinity_timeout');
  return out;
}

/**
 * The weft services to remove before anything else: of services gone from the file (orphans),
 * no longer balanced, or whose name, endpoint mode or network changed (the API updates none of
 * those; a recreated network is a new network). The others are kept in p.kept.
 */
function planServiceRemovals(p: Planner, current: CurrentState, recreatedNetworks: Set<string>, removeOrphans: boolean): Action[] {
  const project = p.project;
  const actions: Action[] = [];
  const orphans: string[] = [];
  for (const cur of oursByName(project, current.services)) {
    const name = cur.labels[LABELS.service];
    if (project.disabledServices.includes(name)) continue;
    const want = project.services.find((s) => s.name === name)?.balancer;
    let reason: Extract<Action, { kind: 'remove-service' }>['reason'] | undefined;
    if (!project.services.some((s) => s.name === name)) {
      if (!removeOrphans) {
        orphans.push(cur.name);
        continue;
      }
      reason = 'orphan';
    } else if (!want) reason = 'not balanced';
    else if (p.kept.has(name)) reason = 'duplicate';
    else if (cur.name !== want.name || cur.endpointMode !== want.request.endpointMode || cur.networkName !== want.request.network || recreatedNetworks.has(want.request.network)) {
      reason = 'config changed';
      p.recreatedServices.add(name);
    }
    if (!reason) {
      p.kept.set(name, cur);
      continue;
    }
    actions.push({ kind: 'remove-service', service: name, name: cur.name, id: cur.id, reason });
    p.gone.add(cur.id);
  }
  if (orphans.length) p.warnings.push(`found orphan services (${orphans.join(', ')}) of services no longer in the file; remove them with --remove-orphans`);
  return actions;
}

/** Creates the service's weft service, or updates it to match the file. */
function planBalancer(p: Planner, s: ProjectService, current: CurrentState): void {
  const want = s.balancer;
  if (!want) return;
  const cur = p.kept.get(s.name);
  if (cur) {
    const changes = serviceChanges(want, cur);
    const { ports, selector, algorithm, affinityTimeout } = want.request;
    if (changes.length) p.actions.push({ kind: 'update-service', service: s.name, name: cur.name, id: cur.id, request: { ports, selector, algorithm, affinityTimeout }, changes });
    return;
  }
  const holder = current.services?.find((x) => x.name === want.name && !p.gone.has(x.id));
  if (holder) {
    const owner = holder.labels[LABELS.project];
    const whose = owner ? `project "${owner}"` : `something outside project "${p.project.name}"`;
    p.conflicts.push(
      `service name "${want.name}" is already in use by weft service ${holder.id.slice(0, 12)} (${whose}); weft service names are unique per host: remove that service, or rename the compose service`,
    );
    return;
  }
  p.actions.push({ kind: 'create-service', service: s.name, name: want.name, request: want.request, reason: p.recreatedServices.has(s.name) ? 'config changed' : 'missing' });
}

function planService(p: Planner, s: ProjectService, current: CurrentState, mine: CurrentContainer[], changed: Set<string>): void {
  const project = p.project;
  const existing = mine.filter((c) => c.config.labels[LABELS.service] === s.name && !p.gone.has(c.id)).sort(byNumberThenName);
  const byNumber = new Map<number, CurrentContainer>();
  const extra: CurrentContainer[] = [];
  for (const c of existing) {
    const n = numberOf(c);
    if (n === undefined || byNumber.has(n)) extra.push(c);
    else byNumber.set(n, c);
  }
  for (const n of [...byNumber.keys()].sort((a, b) => b - a)) {
    if (n > s.replicas) p.stopRemove(byNumber.get(n) as CurrentContainer, 'scale down', s);
  }
  for (const c of extra) p.stopRemove(c, 'duplicate', s);

  const mode = s.networkMode;
  const ownerRecreated = typeof mode === 'object' && changed.has(mode.service);
  const restartFor = s.dependsOn.some((d) => d.restart && changed.has(d.service));
  let recreated = false;
  for (let n = 1; n <= s.replicas; n++) {
    const name = containerName(project.name, s, n);
    const c = byNumber.get(n);
    const holder = current.containers.find((x) => x.name === name && !p.gone.has(x.id));
    if (holder && holder !== c) {
      const whose = ours(project, holder.config.labels) ? `service "${holder.config.labels[LABELS.service]}" of this project` : `something outside project "${project.name}"`;
      p.conflicts.push(`container name "${name}" is already in use by container ${holder.id.slice(0, 12)} (${whose}); remove or rename it`);
      continue;
    }
    if (!c) {
      p.create(s, n, 'missing');
      recreated = true;
      continue;
    }
    let reason: CreateReason | undefined;
    if (c.config.labels[LABELS.configHash] !== s.configHash) reason = 'config changed';
    else if (c.state.phase === 'creating' || c.state.phase === 'removing') reason = 'incomplete';
    else if (ownerRecreated) reason = 'namespace owner recreated';
    if (reason) {
      p.stopRemove(c, 'recreate', s);
      p.create(s, n, reason);
      recreated = true;
    } else if (c.state.phase === 'running') {
      if (restartFor) p.actions.push({ kind: 'restart-container', service: s.name, container: c.name, id: c.id, timeoutSeconds: stopSeconds(s) });
    } else {
      p.actions.push({ kind: 'start-container', service: s.name, container: c.name, id: c.id, waitFor: p.waitFor(s) });
    }
  }
  if (recreated) changed.add(s.name);
}

/** The actions that make the agent's state match the project. Throws PlanError on a conflict. */
export function planUp(project: Project, current: CurrentState, opts: UpOptions = {}): Plan {
  const p = new Planner(project);
  const mine = current.containers.filter((c) => ours(project, c.config.labels));
  const known = new Set([...project.services.map((s) => s.name), ...project.disabledServices]);

  const orphans = mine.filter((c) => !known.has(c.config.labels[LABELS.service])).sort((a, b) => (a.name < b.name ? -1 : 1));
  if (orphans.length && opts.removeOrphans === false) {
    p.warnings.push(`found orphan containers (${orphans.map((c) => c.name).join(', ')}) of services no longer in the file; remove them with --remove-orphans`);
  } else {
    for (const c of orphans) p.stopRemove(c, 'orphan');
  }

  planNetworks(p, current, mine);
  const recreatedNetworks = new Set(p.actions.flatMap((a) => (a.kind === 'remove-network' ? [a.network] : [])));
  p.actions.unshift(...planServiceRemovals(p, current, recreatedNetworks, opts.removeOrphans !== false));
  const changed = new Set<string>();
  for (const s of project.services) {
    planService(p, s, current, mine, changed);
    planBalancer(p, s, current);
  }
  if (p.conflicts.length) throw new PlanError(p.conflicts.join('\n'));
  return { actions: p.actions, warnings: p.warnings };
}

/** Removes the project's weft services, stops and removes its containers (dependents first), then its networks. */
export function planDown(project: Project, current: CurrentState, opts: DownOptions = {}): Plan {
  const p = new Planner(project);
  const removeOrphans = opts.removeOrphans ?? true;
  const mine = current.containers.filter((c) => ours(project, c.config.labels));
  const rank = new Map(project.services.map((s, i) => [s.name, i]));
  const inFile = new Set([...project.services.map((s) => s.name), ...project.disabledServices]);
  for (const s of oursByName(project, current.services)) {
    const service = s.labels[LABELS.service];
    if (removeOrphans || inFile.has(service)) p.actions.push({ kind: 'remove-service', service, name: s.name, id: s.id, reason: 'down' });
  }
  const removed = mine
    .filter((c) => removeOrphans || inFile.has(c.config.labels[LABELS.service]))
    .sort((a, b) => {
      // orphans first, then services in reverse start order, higher numbers first
      const ra = rank.get(a.config.labels[LABELS.service]) ?? Infinity;
      const rb = rank.get(b.config.labels[LABELS.service]) ?? Infinity;
      return rb - ra || byNumberThenName(b, a);
    });
  const left = mine.filter((c) => !removed.includes(c));
  if (left.length) p.warnings.push(`found orphan containers (${left.map((c) => c.name).join(', ')}); remove them with --remove-orphans`);

  const serviceOf = (c: CurrentContainer): ProjectService | undefined => project.services.find((s) => s.name === c.config.labels[LABELS.service]);
  for (const c of removed) {
    if (c.state.phase === 'running') {
      p.actions.push({ kind: 'stop-container', service: c.config.labels[LABELS.service], container: c.name, id: c.id, timeoutSeconds: stopSeconds(serviceOf(c)) });
    }
  }
  for (const c of removed) {
    p.actions.push({ kind: 'remove-container', service: c.config.labels[LABELS.service], container: c.name, id: c.id, reason: 'down' });
    p.gone.add(c.id);
  }

  const inProject = new Set(project.networks.filter((n) => !n.external).map((n) => n.name));
  for (const net of [...current.networks].sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const mineNet = ours(project, net.labels);
    if (!mineNet) {
      if (inProject.has(net.name)) p.warnings.push(`network "${net.name}" was not created by compose; left in place`);
      continue;
    }
    if (!removeOrphans && !inProject.has(net.name)) continue;
    const still = Object.entries(net.containers ?? {}).filter(([id]) => !p.gone.has(id)).map(([, c]) => c.name);
    if (still.length) {
      p.warnings.push(`network "${net.name}" is still in use by ${still.sort().join(', ')}; left in place`);
      continue;
    }
    p.actions.push({ kind: 'remove-network', network: net.name, id: net.id, reason: 'down' });
  }
  return { actions: p.actions, warnings: p.warnings };
}

/** One progress line per action, Docker's way: `Container demo-web-1  Recreate`. */
export function describeAction(a: Action): string {
  switch (a.kind) {
    case 'create-network':
      return `Network ${a.network}  ${a.reason === 'missing' ? 'Create' : 'Recreate'}`;
    case 'remove-network':
      return `Network ${a.network}  Remove`;
    case 'create-container':
      return `Container ${a.container}  ${a.reason === 'missing' ? 'Create' : 'Recreate'}`;
    case 'connect':
      return `Container ${a.container}  Connect ${a.network}`;
    case 'start-container':
      return `Container ${a.container}  Start`;
    case 'restart-container':
      return `Container ${a.container}  Restart`;
    case 'stop-container':
      return `Container ${a.container}  Stop`;
    case 'remove-container':
      return `Container ${a.container}  Remove${a.reason === 'orphan' ? ' (orphan)' : ''}`;
    case 'create-service':
      return `Service ${a.name}  ${a.reason === 'missing' ? 'Create' : 'Recreate'}`;
    case 'update-service':
      return `Service ${a.name}  Update ${a.changes.join(', ')}`;
    case 'remove-service':
      return `Service ${a.name}  Remove${a.reason === 'orphan' ? ' (orphan)' : ''}`;
  }
}
