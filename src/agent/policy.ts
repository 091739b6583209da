/**
 * Network policy in the agent: projects (Kubernetes namespaces), policies as `kubectl apply`
 * stores them, container labels, and the controller that keeps `table inet weft-policy` equal to
 * the compiled model. Every change is compiled whole and applied as one nft transaction.
 */
import { randomBytes } from 'node:crypto';
import type { Container } from '../model/types.js';
import { DEFAULT_PROJECT, NAMESPACE_NAME_LABEL, type Pod, type Policy, type PolicyWorld, type Project } from '../policy/types.js';
import { compilePolicies, renderPolicyTable, POLICY_TABLE, dropCounter } from '../policy/compile.js';
import { isolates } from '../policy/select.js';
import { dns1123LabelErrors, normalizePolicy, labelKeyErrors, labelValueErrors, PolicyParseError } from '../policy/parse.js';
import { nftHasTable, nftListCounters, nftReplaceTable, nftDeleteTable } from '../kernel/nft.js';
import { getJSON, rangeJSON } from '../store/types.js';
import { Coalescer } from './coalesce.js';
import { badRequest, notFound } from './errors.js';
import type { Daemon } from './daemon.js';

export const PK = {
  projects: '/weft/projects/',
  project: (name: string) => `/weft/projects/${name}`,
  policies: '/weft/policies/',
  projectPolicies: (project: string) => `/weft/policies/${project}/`,
  policy: (project: string, name: string) => `/weft/policies/${project}/${name}`,
};

/** The compose label that named a container's project before `project` was a field. */
const COMPOSE_PROJECT_LABEL = 'com.docker.compose.project';

export function checkProjectName(name: string, what = 'project'): void {
  if (dns1123LabelErrors(name).length)
    throw badRequest(`invalid ${what} name "${name}": use at most 63 lower-case letters, digits and '-', starting and ending with a letter or digit (a Kubernetes namespace name)`);
}

export function projectOf(c: Container): string {
  return c.config.project ?? c.config.labels[COMPOSE_PROJECT_LABEL] ?? DEFAULT_PROJECT;
}

/** A project's labels: its own, and always its name under kubernetes.io/metadata.name. */
export function withNameLabel(name: string, labels: Record<string, string> = {}): Record<string, string> {
  return { ...labels, [NAMESPACE_NAME_LABEL]: name };
}

/** Containers with addresses of their own (not host networking, not a joined namespace) are pods. */
export function podOf(c: Container): Pod | undefined {
  if (!c.netns || c.config.networkMode.startsWith('container:') || c.state.phase === 'creating' || c.state.phase === 'removing') return undefined;
  const ips = Object.values(c.endpoints).flatMap((e) => [e.ipv4, e.ipv6].filter((x): x is string => !!x));
  if (!ips.length) return undefined;
  const namedPorts = (c.config.expose ?? []).flatMap((e) => (e.name ? [{ name: e.name, port: e.port, protocol: e.protocol }] : []));
  return { id: c.id, name: c.name, project: projectOf(c), labels: c.config.labels, ips, namedPorts };
}

export async function storedProjects(d: Daemon): Promise<Project[]> {
  return rangeJSON<Project>(d.store, PK.projects);
}

export async function policies(d: Daemon, project?: string): Promise<Policy[]> {
  return rangeJSON<Policy>(d.store, project ? PK.projectPolicies(project) : PK.policies);
}

export async function policyWorld(d: Daemon, containers?: Container[]): Promise<PolicyWorld> {
  const [cs, projects, pols] = await Promise.all([containers ?? d.containers(), storedProjects(d), policies(d)]);
  const pods = cs.map(podOf).filter((p): p is Pod => !!p);
  const labels = new Map<string, Record<string, string>>();
  for (const name of new Set([DEFAULT_PROJECT, ...pods.map((p) => p.project), ...pols.map((p) => p.project)])) labels.set(name, withNameLabel(name));
  for (const p of projects) labels.set(p.name, withNameLabel(p.name, p.labels));
  return { projects: labels, pods, policies: pols };
}

// ------------------------------------------------------------------ policies

export type ApplyResult = 'created' | 'configured' | 'unchanged';

function parseFailure(e: unknown): never {
  if (e instanceof PolicyParseError) throw badRequest(e.issues.join('; '));
  throw e;
}

/** kubectl apply: create the policy, or replace its spec and labels; `project` when the object names no namespace. */
export async function applyPolicy(d: Daemon, object: unknown, project?: string): Promise<{ policy: Policy; result: ApplyResult }> {
  let doc;
  try {
    doc = normalizePolicy(object);
  } catch (e) {
    parseFailure(e);
  }
  const ns = doc.namespace ?? project ?? DEFAULT_PROJECT;
  if (doc.namespace && project && doc.namespace !== project)
    throw badRequest(`the namespace from the provided object "${doc.namespace}" does not match the project "${project}"; remove one of them`);
  checkProjectName(ns, 'namespace');
  return d.locks.run(`policy:${ns}/${doc.name}`, async () => {
    const old = await getJSON<Policy>(d.store, PK.policy(ns, doc.name));
    const same = old && JSON.stringify([old.spec, old.labels, old.annotations]) === JSON.stringify([doc.spec, doc.labels, doc.annotations]);
    if (old && same) return { policy: old, result: 'unchanged' as const };
    const policy: Policy = {
      id: old?.id ?? randomBytes(32).toString('hex'),
      name: doc.name,
      project: ns,
      created: old?.created ?? new Date().toISOString(),
      generation: (old?.generation ?? 0) + 1,
      labels: doc.labels,
      annotations: doc.annotations,
      spec: doc.spec,
    };
    await d.store.put(PK.policy(ns, doc.name), JSON.stringify(policy));
    d.events.emit('policy', old ? 'update' : 'create', policy.id, `${ns}/${doc.name}`);
    return { policy, result: old ? ('configured' as const) : ('created' as const) };
  });
}

export async function getPolicy(d: Daemon, project: string, name: string): Promise<Policy> {
  const p = await getJSON<Policy>(d.store, PK.policy(project, name));
  if (!p) throw notFound(`no such policy: ${name} in project ${project}`);
  return p;
}

export async function deletePolicy(d: Daemon, project: string, name: string): Promise<Policy> {
  const p = await getPolicy(d, project, name);
  await d.store.delete(PK.policy(project, name));
  d.events.emit('policy', 'delete', p.id, `${project}/${name}`);
  return p;
}

// ------------------------------------------------------------------ labels

export interface LabelChange {
  set?: Record<string, string>;
  remove?: string[];
}

function checkLabels(change: LabelChange): void {
  for (const [k, v] of Object.entries(change.set ?? {})) {
    const why = [...labelKeyErrors(k), ...labelValueErrors(v)];
    if (why.length) throw badRequest(`invalid label ${k}=${v}: ${why.join('; ')}`);
  }
  for (const k of change.remove ?? []) {
    const why = labelKeyErrors(k);
    if (why.length) throw badRequest(`invalid label key ${k}: ${why.join('; ')}`);
  }
}

function applyChange(labels: Record<string, string>, change: LabelChange): Record<string, string> {
  const out = { ...labels };
  for (const k of change.remove ?? []) delete out[k];
  Object.assign(out, change.set ?? {});
  return out;
}

export async function labelProject(d: Daemon, name: string, change: LabelChange): Promise<Project> {
  checkProjectName(name);
  checkLabels(change);
  const touched = [...Object.keys(change.set ?? {}), ...(change.remove ?? [])];
  if (touched.includes(NAMESPACE_NAME_LABEL) && change.set?.[NAMESPACE_NAME_LABEL] !== name)
    throw badRequest(`label ${NAMESPACE_NAME_LABEL} is always the project's own name (${name}); it cannot be changed or removed`);
  return d.locks.run(`project:${name}`, async () => {
    const old = await getJSON<Project>(d.store, PK.project(name));
    const labels = applyChange(old?.labels ?? {}, change);
    delete labels[NAMESPACE_NAME_LABEL];
    const p: Project = { name, labels, created: old?.created ?? new Date().toISOString() };
    await d.store.put(PK.project(name), JSON.stringify(p));
    d.events.emit('project', 'update', name, name);
    return { ...p, labels: withNameLabel(name, labels) };
  });
}

export async function labelContainer(d: Daemon, ref: string, change: LabelChange): Promise<Container> {
  checkLabels(change);
  const c0 = await d.resolveContainer(ref);
  return d.locks.run(c0.id, async () => {
    const c = (await d.getContainer(c0.id))!;
    c.config.labels = applyChange(c.config.labels, change);
    await d.putContainer(c);
    d.events.emit('container', 'update', c.id, c.name);
    return c;
  });
}

// ------------------------------------------------------------------ the controller

export class PolicyController {
  private applied?: string;
  private unsubscribe?: () => void;
  private readonly syncs = new Coalescer(
    () => this.sync(),
    (e) => {
      this.applied = undefined;
      this.d.log.warn({ err: String(e) }, 'network policy sync failed; the next change retries');
    },
  );

  constructor(private readonly d: Daemon) {}

  async start(): Promise<void> {
    this.unsubscribe = this.d.events.subscribe((ev) => {
      if (ev.type === 'policy' || ev.type === 'project' || ev.type === 'container' || (ev.type === 'network' && ev.action !== 'create')) this.invalidate();
    });
    this.invalidate();
    await this.settled();
  }

  async stop(): Promise<void> {
    this.unsubscribe?.();
    await this.settled();
  }

  invalidate(): void {
    this.syncs.invalidate();
  }

  settled(): Promise<void> {
    return this.syncs.settled();
  }

  /**
   * Before a container's process starts: if a policy isolates it, its rules must be in the kernel
   * first, so it is never reachable (or able to reach out) unpoliced.
   */
  async beforeStart(c: Container): Promise<void> {
    const pod = podOf(c);
    if (!pod) return;
    const pols = await policies(this.d, pod.project);
    this.invalidate();
    if (pols.some((p) => isolates(p, pod, 'Ingress') || isolates(p, pod, 'Egress'))) await this.settled();
  }

  /** Packets and bytes each policy dropped, by policy id. */
  drops(): Promise<Map<string, { packets: number; bytes: number }>> {
    return nftListCounters('inet', POLICY_TABLE);
  }

  static dropsOf(all: Map<string, { packets: number; bytes: number }>, p: Policy) {
    return all.get(dropCounter(p.id)) ?? { packets: 0, bytes: 0 };
  }

  private async sync(): Promise<void> {
    // the common case on a container event: no policy, nothing applied; skip reading the rest
    if (!(await policies(this.d)).length) {
      if (this.applied !== '') await nftDeleteTable('inet', POLICY_TABLE);
      this.applied = '';
      return;
    }
    const compiled = compilePolicies(await policyWorld(this.d));
    const key = `${compiled.body}\n${[...compiled.counters.keys()].join(',')}`;
    // unchanged and still there (not deleted behind the agent's back): nothing to do
    if (key === this.applied && (await nftHasTable('inet', POLICY_TABLE))) return;
    const values = await nftListCounters('inet', POLICY_TABLE);
    await nftReplaceTable('inet', POLICY_TABLE, renderPolicyTable(compiled, values));
    this.applied = key;
    this.d.log.debug({ ...compiled.stats }, 'network policy applied');
  }

}
