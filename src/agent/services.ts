/**
 * Service operations: create, update (and scale), remove. A service's record holds what the user
 * asked for; which containers are its backends, and which of those are healthy, is worked out by
 * the load-balancer controller (lb.ts) from the containers in the store.
 */
import type { Container, IpamSubnet, Service, ServicePort } from '../model/types.js';
import { SERVICE_LABEL } from '../model/types.js';
import type { ContainerCreate, ServiceCreate, ServicePortRequest, ServiceUpdate, ServiceView } from '../api/schemas.js';
import { allocate, release } from '../ipam/allocator.js';
import { parseCidr, formatIp, networkAddress } from '../ipam/cidr.js';
import { checkedHealthSpec, createContainer, removeContainer } from './containers.js';
import { badRequest, conflict, notFound } from './errors.js';
import { K } from './keys.js';
import { ipamToApi, newId } from './networks.js';
import { claimPorts, releasePorts } from './ports.js';
import { resolveRef, type Daemon } from './daemon.js';
import { getJSON } from '../store/types.js';

/** IPAM's name for the service range (a pseudo network: its addresses are virtual IPs). */
export const SERVICE_IPAM_ID = 'services';
export const DEFAULT_SERVICE_RANGE = '10.96.0.0/16';
const NAME_RE = /^[a-zA-Z0-9]([a-zA-Z0-9_-]{0,61}[a-zA-Z0-9])?$/;
/** ports per service: their load-balancer keys are key * 16 + index */
export const PORTS_PER_SERVICE = 16;

export function serviceRange(d: Daemon): IpamSubnet {
  const c = parseCidr(d.opts.serviceRange ?? DEFAULT_SERVICE_RANGE, { strict: false });
  const net = networkAddress(c);
  // the range's first address plays the gateway: IPAM never hands it out
  return { subnet: `${formatIp(net)}/${c.prefix}`, gateway: formatIp({ family: 4, value: net.value + 1n }), family: 4, auto: false };
}

function servicePorts(reqs: ServicePortRequest[], mode: Service['endpointMode']): ServicePort[] {
  const seen = new Set<string>();
  const names = new Set<string>();
  return reqs.map((r) => {
    const p: ServicePort = { protocol: r.protocol ?? 'tcp', port: r.port, targetPort: r.targetPort ?? r.port };
    if (r.name) p.name = r.name;
    if (r.publish) p.publish = r.publish;
    const k = `${p.port}/${p.protocol}`;
    if (seen.has(k)) throw badRequest(`port ${k} is listed twice`);
    seen.add(k);
    if (p.name && names.has(p.name)) throw badRequest(`port name ${p.name} is used twice`);
    if (p.name) names.add(p.name);
    if (p.publish && mode === 'dnsrr') throw badRequest(`port ${k}: a dnsrr service has no virtual IP to publish; use endpoint mode vip`);
    return p;
  });
}

/** The container request of replica `i`. */
function replicaRequest(s: Service, i: number, networkName?: string): ContainerCreate {
  const t = (s.template ?? {}) as Omit<ContainerCreate, 'name'>;
  const name = `${s.name}-${i}`;
  return {
    ...t,
    cmd: t.cmd,
    name,
    // as swarm's {{.Task.Name}}: a replica knows which one it is
    hostname: t.hostname ?? name,
    network: networkName,
    labels: { ...(t.labels ?? {}), [SERVICE_LABEL]: s.name },
    restart: t.restart ?? { name: 'always' },
  };
}

/** The lowest free service key (claimed by the caller's txn, which checks it is still free). */
async function freeKey(d: Daemon): Promise<number> {
  const { kvs } = await d.store.range(K.serviceKeys);
  const taken = new Set(kvs.map((kv) => Number(kv.key.slice(K.serviceKeys.length))));
  for (let k = 1; k <= 65535; k++) if (!taken.has(k)) return k;
  throw conflict('no free service key: 65,535 services exist');
}

export async function createService(d: Daemon, req: ServiceCreate): Promise<ServiceView> {
  for (const [field, v] of [['name', req.name], ['dnsName', req.dnsName]] as const)
    if (v !== undefined && !NAME_RE.test(v)) throw badRequest(`invalid service ${field} "${v}": use letters, digits, '-' and '_' (a DNS label, at most 63 characters)`);
  const endpointMode = req.endpointMode ?? 'vip';
  const ports = servicePorts(req.ports ?? [], endpointMode);
  if (req.replicas !== undefined && !req.template) throw badRequest('replicas need a command to run: give a template (weft service create NAME --replicas N -- CMD...)');
  if (req.template && req.selector) throw badRequest('give either a selector (existing containers) or a template with replicas, not both');
  if (req.vip && endpointMode === 'dnsrr') throw badRequest('a dnsrr service has no virtual IP');
  const net = req.network ? await d.resolveNetwork(req.network) : undefined;
  if (net && net.driver !== 'bridge') throw badRequest(`network ${net.name} is not a bridge network; services balance to containers on bridge networks`);
  const healthcheck = checkedHealthSpec(req.healthcheck);
  const dnsName = req.dnsName ?? req.name;
  const clash = (await d.services()).find((s) => (s.dnsName ?? s.name) === dnsName && (s.network ?? '') === (net?.id ?? ''));
  if (clash) throw conflict(`service ${clash.name} already answers to "${dnsName}" on ${net ? `network ${net.name}` : 'its networks'}; give another name`);
  if (healthcheck?.test[0] === 'CMD' || healthcheck?.test[0] === 'CMD-SHELL')
    throw badRequest('a service probe is TCP or HTTP (["TCP", "80"], ["HTTP", "80", "/"]); commands belong in the containers\' own healthcheck');

  const id = newId();
  const svc: Service = {
    id,
    name: req.name,
    dnsName: req.dnsName,
    created: new Date().toISOString(),
    key: 0,
    endpointMode,
    ports,
    selector: req.selector ?? { [SERVICE_LABEL]: req.name },
    network: net?.id,
    algorithm: req.algorithm ?? 'round-robin',
    affinityTimeout: req.affinityTimeout ?? 10800,
    weights: req.weights ?? {},
    healthcheck,
    replicas: req.template ? (req.replicas ?? 1) : undefined,
    template: req.template,
    labels: req.labels ?? {},
  };

  let vipHeld = false;
  try {
    if (endpointMode === 'vip') {
      svc.vip = await allocate(d.store, SERVICE_IPAM_ID, serviceRange(d), id, { requested: req.vip, networkName: 'service range', ownerLabel: `service ${req.name}` }).catch((e) => {
        throw ipamToApi(e);
      });
      vipHeld = true;
    }
    await claimPorts(d, id, publishBindings(svc));
    for (let attempt = 0; ; attempt++) {
      const key = (svc.key = await freeKey(d));
      const res = await d.store.txn(
        [
          { key: K.serviceName(svc.name), target: 'create', op: '=', value: 0 },
          { key: K.serviceKey(key), target: 'create', op: '=', value: 0 },
        ],
        [
          { type: 'put', key: K.serviceName(svc.name), value: id },
          { type: 'put', key: K.serviceKey(key), value: id },
          { type: 'put', key: K.service(id), value: JSON.stringify(svc) },
        ],
      );
      if (res.succeeded) break;
      if (await d.store.get(K.serviceName(svc.name))) throw conflict(`service name "${svc.name}" is already in use; remove it or choose another name`);
      if (attempt > 10) throw conflict('could not claim a service key: too many concurrent creates; try again');
    }
  } catch (e) {
    await releasePorts(d, id);
    if (vipHeld && svc.vip) await release(d.store, SERVICE_IPAM_ID, svc.vip, id);
    throw e;
  }
  d.events.emit('service', 'create', id, svc.name);
  await scaleReplicas(d, svc);
  return serviceView(d, svc);
}

function publishBindings(s: Service) {
  return s.ports.filter((p) => p.publish).map((p) => ({ hostIp: '', hostPort: p.publish!, containerPort: p.targetPort, protocol: p.protocol }));
}

/** Creates missing replicas (NAME-1..NAME-N) and removes those beyond N, highest first. */
async function scaleReplicas(d: Daemon, s: Service, recreate = false): Promise<void> {
  if (s.replicas === undefined) return;
  const mine = (await d.containers()).filter((c) => c.config.labels[SERVICE_LABEL] === s.name && c.state.phase !== 'creating');
  const index = (c: Container) => Number(c.name.slice(s.name.length + 1));
  const networkName = s.network ? (await d.resolveNetwork(s.network)).name : undefined;
  for (const c of mine.filter((c) => !(index(c) >= 1 && index(c) <= s.replicas!)).sort((a, b) => index(b) - index(a)))
    await removeContainer(d, c.id, true);
  for (let i = 1; i <= s.replicas; i++) {
    const have = mine.find((c) => index(c) === i);
    if (have && !recreate) continue;
    // one at a time: the others keep serving while this one is replaced
    if (have) await removeContainer(d, have.id, true);
    await createContainer(d, replicaRequest(s, i, networkName));
  }
}

export async function updateService(d: Daemon, ref: string, req: ServiceUpdate): Promise<ServiceView> {
  const s0 = await resolveService(d, ref);
  return d.locks.run(`service:${s0.id}`, async () => {
    const s = (await getJSON<Service>(d.store, K.service(s0.id)))!;
    if (req.replicas !== undefined && !s.template && !req.template) throw badRequest(`service ${s.name} selects existing containers (${describeSelector(s.selector)}); it has no template to scale`);
    if (req.selector && (s.template || req.template)) throw badRequest(`service ${s.name} runs its own replicas; its selector is fixed`);
    const next: Service = {
      ...s,
      ports: req.ports ? servicePorts(req.ports, s.endpointMode) : s.ports,
      selector: req.selector ?? s.selector,
      algorithm: req.algorithm ?? s.algorithm,
      affinityTimeout: req.affinityTimeout ?? s.affinityTimeout,
      weights: req.weights ? { ...s.weights, ...req.weights } : s.weights,
      healthcheck: req.healthcheck ? checkedHealthSpec(req.healthcheck) : s.healthcheck,
      replicas: req.replicas ?? s.replicas ?? (req.template ? 1 : undefined),
      template: req.template ?? s.template,
    };
    const oldPublish = JSON.stringify(publishBindings(s));
    if (JSON.stringify(publishBindings(next)) !== oldPublish) {
      await releasePorts(d, s.id);
      await claimPorts(d, s.id, publishBindings(next)).catch(async (e) => {
        await claimPorts(d, s.id, publishBindings(s));
        throw e;
      });
    }
    await d.store.put(K.service(s.id), JSON.stringify(next));
    d.events.emit('service', 'update', s.id, s.name);
    await scaleReplicas(d, next, req.template !== undefined && JSON.stringify(req.template) !== JSON.stringify(s.template));
    return serviceView(d, next);
  });
}

export async function removeService(d: Daemon, ref: string): Promise<void> {
  const s = await resolveService(d, ref);
  await d.locks.run(`service:${s.id}`, async () => {
    if (s.replicas !== undefined) await scaleReplicas(d, { ...s, replicas: 0 });
    await d.store.txn([], [
      { type: 'delete', key: K.service(s.id) },
      { type: 'delete', key: K.serviceName(s.name) },
      { type: 'delete', key: K.serviceKey(s.key) },
    ]);
    await releasePorts(d, s.id);
    if (s.vip) await release(d.store, SERVICE_IPAM_ID, s.vip, s.id);
  });
  d.events.emit('service', 'destroy', s.id, s.name);
}

export function describeSelector(sel: Record<string, string>): string {
  return Object.entries(sel).map(([k, v]) => `${k}=${v}`).join(',');
}

/** name, full id or unique id prefix, as for containers and networks */
export async function resolveService(d: Daemon, ref: string): Promise<Service> {
  const found = resolveRef(await d.services(), ref, 'service');
  if (!found) throw notFound(`no such service: ${ref}`);
  return found;
}

export async function serviceView(d: Daemon, s: Service): Promise<ServiceView> {
  const networks = await d.networks();
  const backends = d.lb ? d.lb.backendViews(s, await d.containers(), networks) : [];
  return { ...s, networkName: networks.find((n) => n.id === s.network)?.name, backends };
}
