/**
 * Container operations. Each is all-or-nothing: a container is written to the store as
 * 'creating' before anything is made, so an agent killed half-way finds it at start and removes
 * every trace (reconcile.ts); a failure here undoes what was made before answering.
 */
import { rm } from 'node:fs/promises';
import type { Container, Endpoint, Network, PortBinding } from '../model/types.js';
import type { ContainerCreate, ContainerView, HealthcheckRequest, NetworkConnect } from '../api/schemas.js';
import { healthSpec, HealthSpecError, type HealthSpec } from '../health/spec.js';
import { initialHealth } from '../health/state.js';
import { allocate, release, releaseOwner } from '../ipam/allocator.js';
import { containsIp, familyOf } from '../ipam/cidr.js';
import { netnsAdd, netnsDelete } from '../kernel/net.js';
import { containerNetns, endpointMac, hostVethName, linkLocalFromMac } from '../drivers/names.js';
import { driverFor } from '../drivers/index.js';
import { moveDefaultRoute } from '../drivers/bridge/index.js';
import { killNetnsProcesses, processAlive } from '../kernel/process.js';
import { startProcess, stopProcess, finalExitCode } from '../runtime/process.js';
import { writeEtcFiles, removeEtcFiles, renderHosts, renderResolvConf, resolvConfOptions } from '../runtime/etc.js';
import { embeddedNameserver } from './dns.js';
import { badRequest, conflict } from './errors.js';
import { K } from './keys.js';
import { newId, ipamToApi } from './networks.js';
import { claimPorts, normalisePorts, releasePorts } from './ports.js';
import { randomName } from './names.js';
import type { Daemon } from './daemon.js';
import { portNameErrors } from '../policy/parse.js';

const NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

function validateCreate(req: ContainerCreate): void {
  if (req.name !== undefined && !NAME_RE.test(req.name))
    throw badRequest(`invalid container name "${req.name}": use letters, digits, '_', '.' and '-', starting with a letter or digit`);
  for (const e of req.env ?? []) if (!e.includes('=') || e.startsWith('=')) throw badRequest(`invalid environment variable "${e}": use NAME=VALUE`);
  for (const h of req.extraHosts ?? []) {
    const i = h.indexOf(':');
    if (i <= 0 || !familyOf(h.slice(i + 1))) throw badRequest(`invalid --add-host "${h}": use NAME:IP`);
  }
  for (const s of req.dns ?? []) if (!familyOf(s)) throw badRequest(`invalid --dns "${s}": give an IP address`);
  checkAddresses(req);
  if (req.hostname !== undefined && !/^[a-zA-Z0-9]([a-zA-Z0-9.-]{0,62})$/.test(req.hostname))
    throw badRequest(`invalid hostname "${req.hostname}"`);
}

/** The API's healthcheck as a HealthSpec (undefined: none or disabled); errors name the field. */
export function checkedHealthSpec(req: HealthcheckRequest | undefined): HealthSpec | undefined {
  if (!req) return undefined;
  try {
    return healthSpec(req);
  } catch (e) {
    if (e instanceof HealthSpecError) throw badRequest(`healthcheck: ${e.message}`);
    throw e;
  }
}

type Attachment = { ipv4?: string; ipv6?: string; aliases?: string[] };

/** --ip / --ip6 must be addresses of their family. */
function checkAddresses(want: Attachment): void {
  if (want.ipv4 && familyOf(want.ipv4) !== 4) throw badRequest(`invalid --ip "${want.ipv4}": give an IPv4 address`);
  if (want.ipv6 && familyOf(want.ipv6) !== 6) throw badRequest(`invalid --ip6 "${want.ipv6}": give an IPv6 address`);
}

/** Static addresses and aliases exist on user-defined networks only, as in Docker. */
function checkNetworkAllows(net: Network, want: Attachment): void {
  if ((want.ipv4 || want.ipv6) && net.builtin) throw badRequest('user specified IP address is supported on user defined networks only');
  if (want.aliases?.length && net.builtin) throw badRequest('network-scoped aliases are supported on user defined networks only');
}

/**
 * --network container:REF (compose network_mode: service:X): the container joins REF's network
 * namespace, with no endpoints of its own; REF's addresses, names and ports serve both.
 */
async function netnsOwner(d: Daemon, ref: string, req: ContainerCreate): Promise<Container> {
  const conflicting = req.ports?.length ? 'published ports' : req.ipv4 || req.ipv6 ? 'static addresses' : req.aliases?.length ? 'network aliases' : '';
  if (conflicting) throw badRequest(`conflicting options: ${conflicting} and network mode container:${ref}; give them to ${ref}`);
  let owner = await d.resolveContainer(ref);
  const root = sharedNetnsOwner(owner);
  if (root) owner = (await d.getContainer(root)) ?? owner;
  if (!owner.netns) throw badRequest(`container ${owner.name} uses the host's network; use --network host instead of container:${ref}`);
  return owner;
}

/** The id of the container whose namespace c joined (network mode container:ID), if any. */
export function sharedNetnsOwner(c: Container): string | undefined {
  return c.config.networkMode.startsWith('container:') ? c.config.networkMode.slice('container:'.length) : undefined;
}

/** Exposed ports: names are IANA service names (as Kubernetes' named ports), each used once per protocol. */
function checkExpose(req: ContainerCreate): void {
  const seen = new Set<string>();
  for (const e of req.expose ?? []) {
    if (!e.name) continue;
    if (portNameErrors(e.name).length)
      throw badRequest(`invalid port name "${e.name}": at most 15 lower-case letters, digits and single '-' inside, with at least one letter (an IANA service name)`);
    const k = `${e.name}/${e.protocol ?? 'tcp'}`;
    if (seen.has(k)) throw badRequest(`port name ${e.name} is given twice for ${e.protocol ?? 'tcp'}`);
    seen.add(k);
  }
}

export async function createContainer(d: Daemon, req: ContainerCreate): Promise<ContainerView> {
  validateCreate(req);
  checkExpose(req);
  const networks = await d.networks();
  const netRef = req.network ?? 'bridge';
  const owner = netRef.startsWith('container:') ? await netnsOwner(d, netRef.slice('container:'.length), req) : undefined;
  // a shared namespace behaves like the none driver here: nothing to attach
  const net = owner ? (await d.resolveNetwork('none')) : await d.resolveNetwork(netRef);
  checkNetworkAllows(net, req);
  if (net.driver !== 'bridge' && req.ports?.length) throw badRequest(`published ports are not possible with network mode ${net.name}`);
  const ports = normalisePorts(req.ports ?? []);
  if (req.autoRemove && req.restart && req.restart.name !== 'no') {
    throw badRequest(`conflicting options: restart policy ${req.restart.name} and auto-remove (--rm)`);
  }

  const id = newId();
  const name = req.name ?? (await uniqueRandomName(d));
  const c: Container = {
    id,
    name,
    created: new Date().toISOString(),
    config: {
      cmd: req.cmd,
      env: req.env ?? [],
      workdir: req.workdir,
      hostname: req.hostname ?? id.slice(0, 12),
      labels: req.labels ?? {},
      restart: { name: req.restart?.name ?? 'no', maxRetries: req.restart?.maxRetries ?? 0 },
      ports,
      networkMode: owner ? `container:${owner.id}` : net.driver === 'bridge' ? net.name : net.driver,
      extraHosts: req.extraHosts ?? [],
      dns: req.dns ?? [],
      autoRemove: req.autoRemove || undefined,
      healthcheck: checkedHealthSpec(req.healthcheck),
      project: req.project,
      expose: req.expose?.map((e) => ({ ...e, protocol: e.protocol ?? 'tcp' })),
    },
    state: { phase: 'creating', restartCount: 0, stoppedByUser: false },
    netns: owner ? owner.netns : net.driver === 'host' ? undefined : containerNetns(d.nodeId, id),
    endpoints: {},
    ports: [],
  };
  const claimed = await d.store.txn(
    [{ key: K.containerName(name), target: 'create', op: '=', value: 0 }],
    [
      { type: 'put', key: K.containerName(name), value: id },
      { type: 'put', key: K.container(id), value: JSON.stringify(c) },
    ],
  );
  if (!claimed.succeeded) {
    const holder = await d.store.get(K.containerName(name));
    throw conflict(`container name "${name}" is already in use by container ${holder?.value.slice(0, 12)}; remove it or choose another name`);
  }
  d.events.emit('container', 'create', id, name);

  try {
    if (c.netns && !owner) await netnsAdd(c.netns);
    if (net.driver === 'bridge') {
      const ep = await allocateEndpoint(d, c, net, { ipv4: req.ipv4, ipv6: req.ipv6, aliases: req.aliases });
      c.endpoints[net.id] = ep;
      await d.putContainer(c);
      // anti-spoofing first: a port is policed from the moment it joins the bridge
      await d.firewall.container(c, networks, 'add');
      await driverFor(net).attach(net, c.netns!, ep, { defaultRoute: true });
    }
    c.ports = await claimPorts(d, id, ports);
    await d.putContainer(c);
    // the endpoint's elements are in already; published ports need their own (re-adding is a no-op)
    if (c.ports.length) await d.firewall.container(c, networks, 'add');
    if (!owner) await writeEtc(d, c, networks);
    c.state.phase = 'created';
    await d.putContainer(c);
  } catch (e) {
    await teardown(d, c).catch((err) => d.log.error({ err: String(err), id }, 'cleanup after a failed create failed'));
    throw ipamToApi(e);
  }
  // like Docker: if starting fails the container stays (Created) and the error is the answer
  if (req.start ?? true) await startContainer(d, c.id);
  return d.containerView((await d.getContainer(id))!, networks);
}

async function uniqueRandomName(d: Daemon): Promise<string> {
  for (let i = 0; i < 10; i++) {
    const n = randomName(i > 3);
    if (!(await d.store.get(K.containerName(n)))) return n;
  }
  return randomName(true) + '_' + Math.floor(Math.random() * 1e6);
}

async function allocateEndpoint(
  d: Daemon,
  c: Container,
  net: Network,
  want: Attachment,
): Promise<Endpoint> {
  const used = new Set(Object.values(c.endpoints).map((e) => e.ifname));
  let idx = 0;
  while (used.has(`eth${idx}`)) idx++;
  const ep: Endpoint = {
    networkId: net.id,
    ifname: `eth${idx}`,
    hostIfname: hostVethName(c.id, net.id),
    mac: '',
    aliases: want.aliases ?? [],
    requestedIPv4: want.ipv4,
    requestedIPv6: want.ipv6,
  };
  const ownerLabel = `container ${c.name}`;
  const v4 = net.subnets.find((s) => s.family === 4);
  const v6 = net.subnets.find((s) => s.family === 6);
  if (want.ipv4 && !v4) throw badRequest(`network ${net.name} has no IPv4 subnet for --ip ${want.ipv4}`);
  if (want.ipv6 && !v6) throw badRequest(`network ${net.name} has no IPv6 subnet for --ip6 ${want.ipv6}; create it with --ipv6`);
  // a static address may lie in any of the network's subnets of its family
  const subnetFor = (family: 4 | 6, addr?: string) => {
    const all = net.subnets.filter((s) => s.family === family);
    return (addr && all.find((s) => containsIp(s.subnet, addr))) || all[0];
  };
  if (v4) ep.ipv4 = await allocate(d.store, net.id, subnetFor(4, want.ipv4), c.id, { requested: want.ipv4, networkName: net.name, ownerLabel });
  if (v6) ep.ipv6 = await allocate(d.store, net.id, subnetFor(6, want.ipv6), c.id, { requested: want.ipv6, networkName: net.name, ownerLabel });
  ep.mac = endpointMac(c.id, net.id, ep.ipv4);
  ep.linkLocal6 = linkLocalFromMac(ep.mac);
  return ep;
}


/** /etc/hosts and /etc/resolv.conf of the container (bound by `ip netns exec`). */
/**
 * /etc/hosts, resolv.conf and hostname of the container. On a user-defined network its resolver is
 * weft's embedded DNS at that network's gateway (which forwards what it does not know to --dns
 * servers, else the agent's upstreams); elsewhere, its --dns servers or the host's, as in Docker.
 */
async function writeEtc(d: Daemon, c: Container, networks: Network[]): Promise<void> {
  if (!c.netns) return;
  const addrs = Object.values(c.endpoints).flatMap((e) => [e.ipv4, e.ipv6].filter((x): x is string => !!x));
  const hosts = renderHosts({ hostname: c.config.hostname, names: [c.name], addresses: addrs, extraHosts: c.config.extraHosts });
  const embedded = embeddedNameserver(c, networks);
  const host = await d.hostResolvConf();
  const resolvConf = embedded
    ? renderResolvConf({ dns: [embedded], options: [...resolvConfOptions(host).filter((o) => !o.startsWith('ndots:')), 'ndots:0'] }, host)
    : renderResolvConf({ dns: c.config.dns.length ? c.config.dns : undefined }, host);
  await writeEtcFiles(c.netns, { hosts, resolvConf, hostname: c.config.hostname });
}

// ------------------------------------------------------------------ start / stop

export async function startContainer(d: Daemon, ref: string): Promise<ContainerView> {
  const c0 = await d.resolveContainer(ref);
  return d.locks.run(c0.id, async () => {
    const c = (await d.getContainer(c0.id))!;
    if (c.state.phase === 'running' && c.state.pid && processAlive(c.state.pid, c.state.pidStart ?? 0))
      return d.containerView(c);
    if (c.state.phase !== 'created' && c.state.phase !== 'exited' && c.state.phase !== 'running')
      throw conflict(`container ${c.name} is ${c.state.phase}; it cannot be started`);
    await launch(d, c);
    d.events.emit('container', 'start', c.id, c.name);
    return d.containerView(c);
  });
}

/** Starts the container's process and records it (caller holds the container's lock). */
export async function launch(d: Daemon, c: Container): Promise<void> {
  try {
    // a container isolated by a policy must not run a moment without it
    await d.policy?.beforeStart(c);
    const { pid, pidStart } = await startProcess(d.containerDir(c.id), {
      netns: c.netns,
      hostname: c.netns ? c.config.hostname : undefined,
      cmd: c.config.cmd,
      env: c.config.env,
      workdir: c.config.workdir,
    });
    c.state = { ...c.state, phase: 'running', pid, pidStart, startedAt: new Date().toISOString(), exitCode: undefined, finishedAt: undefined, stoppedByUser: false, error: undefined, health: c.config.healthcheck ? initialHealth() : undefined };
  } catch (e) {
    c.state = { ...c.state, phase: c.state.phase === 'running' ? 'exited' : c.state.phase, error: String((e as Error).message ?? e) };
    await d.putContainer(c);
    throw e;
  }
  await d.putContainer(c);
}

export async function stopContainer(d: Daemon, ref: string, timeoutSec = 10): Promise<ContainerView> {
  const c0 = await d.resolveContainer(ref);
  const view = await d.locks.run(c0.id, async () => {
    const c = (await d.getContainer(c0.id))!;
    await stopLocked(d, c, timeoutSec);
    return d.containerView(c);
  });
  if (view.config.autoRemove) await autoRemove(d, view.id);
  return view;
}

/** run --rm: removes a container that has exited (a no-op if it runs again or is gone). */
export async function autoRemove(d: Daemon, id: string): Promise<void> {
  const c = await d.getContainer(id);
  if (!c?.config.autoRemove || c.state.phase !== 'exited') return;
  await removeContainer(d, id, false).catch((e) => d.log.warn({ err: String(e), id }, 'auto-remove failed'));
}

async function stopLocked(d: Daemon, c: Container, timeoutSec: number): Promise<void> {
  c.state.stoppedByUser = true;
  if (c.state.phase !== 'running' || !c.state.pid) {
    await d.putContainer(c);
    return;
  }
  await d.putContainer(c);
  await stopProcess(c.state.pid, c.state.pidStart ?? 0, timeoutSec * 1000);
  markExited(c, await finalExitCode(d.containerDir(c.id)));
  await d.putContainer(c);
  d.events.emit('container', 'die', c.id, c.name, { exitCode: String(c.state.exitCode) });
  d.events.emit('container', 'stop', c.id, c.name);
  d.notifyStopped(c.id);
}

export function markExited(c: Container, code: number): void {
  c.state = { ...c.state, phase: 'exited', exitCode: code, finishedAt: new Date().toISOString(), pid: undefined, pidStart: undefined, health: undefined };
}

export async function restartContainer(d: Daemon, ref: string, timeoutSec = 10): Promise<ContainerView> {
  const c0 = await d.resolveContainer(ref);
  return d.locks.run(c0.id, async () => {
    const c = (await d.getContainer(c0.id))!;
    await stopLocked(d, c, timeoutSec);
    await launch(d, c);
    d.events.emit('container', 'restart', c.id, c.name);
    return d.containerView(c);
  });
}

// ------------------------------------------------------------------ remove

export async function removeContainer(d: Daemon, ref: string, force: boolean): Promise<void> {
  const c0 = await d.resolveContainer(ref);
  await d.locks.run(c0.id, async () => {
    const c = await d.getContainer(c0.id);
    if (!c) return;
    if (c.state.phase === 'running' && c.state.pid && processAlive(c.state.pid, c.state.pidStart ?? 0)) {
      if (!force) throw conflict(`container ${c.name} is running: stop it first or use rm -f`);
    }
    const sharers = (await d.containers()).filter((x) => sharedNetnsOwner(x) === c.id);
    if (sharers.length) {
      throw conflict(`container ${c.name} shares its network namespace with ${sharers.map((x) => x.name).join(', ')}: remove them first`);
    }
    c.state.phase = 'removing';
    await d.putContainer(c);
    await teardown(d, c);
  });
  d.notifyStopped(c0.id);
  d.events.emit('container', 'destroy', c0.id, c0.name);
}

/**
 * Removes every trace of a container, whether it was complete or half-made: its processes, its
 * veths, its netns, its addresses, published ports, firewall elements, files and records. Names
 * are derived from its id, so nothing depends on how far creation got.
 */
export async function teardown(d: Daemon, c: Container): Promise<void> {
  const networks = await d.networks();
  if (c.state.pid) await stopProcess(c.state.pid, c.state.pidStart ?? 0, 0).catch(() => {});
  // a namespace shared with others (network mode container:) is its owner's to remove
  const ownsNetns = c.netns && !sharedNetnsOwner(c);
  if (ownsNetns) await killNetnsProcesses(c.netns!);
  // A complete container's record says where it is attached; a half-made one may have got
  // further than its record, so every bridge network is swept for it (names derive from ids).
  const halfMade = c.state.phase === 'creating';
  for (const net of networks) {
    if (net.driver !== 'bridge') continue;
    const ep = c.endpoints[net.id];
    if (!ep && !halfMade) continue;
    await driverFor(net).detach(net, c.netns, ep ?? ({ hostIfname: hostVethName(c.id, net.id) } as Endpoint));
    if (halfMade) await releaseOwner(d.store, net.id, c.id);
    else for (const ip of [ep!.ipv4, ep!.ipv6]) if (ip) await release(d.store, net.id, ip, c.id);
  }
  if (Object.keys(c.endpoints).length || c.ports.length) await d.firewall.container(c, networks, 'delete');
  await releasePorts(d, c.id);
  if (ownsNetns) {
    await netnsDelete(c.netns!);
    await removeEtcFiles(c.netns!);
  }
  await rm(d.containerDir(c.id), { recursive: true, force: true });
  const nameKv = await d.store.get(K.containerName(c.name));
  await d.store.txn([], [
    { type: 'delete', key: K.container(c.id) },
    ...(nameKv?.value === c.id ? [{ type: 'delete' as const, key: K.containerName(c.name) }] : []),
  ]);
}

// ------------------------------------------------------------------ connect / disconnect

export async function connectContainer(d: Daemon, netRef: string, req: NetworkConnect): Promise<ContainerView> {
  const net = await d.resolveNetwork(netRef);
  const c0 = await d.resolveContainer(req.container);
  return d.locks.run(c0.id, async () => {
    const c = (await d.getContainer(c0.id))!;
    if (!c.netns) throw badRequest(`container ${c.name} uses the host's network; it cannot be connected to other networks`);
    if (c.config.networkMode === 'none') throw badRequest(`container ${c.name} has network mode none; it cannot be connected to networks`);
    if (sharedNetnsOwner(c)) throw badRequest(`container ${c.name} shares the network namespace of another container; connect that one instead`);
    if (net.driver !== 'bridge') throw badRequest(`a container cannot be connected to the ${net.name} network; run it with --network ${net.name}`);
    if (c.endpoints[net.id]) throw conflict(`container ${c.name} is already connected to network ${net.name}`);
    checkNetworkAllows(net, req);
    checkAddresses(req);
    const networks = await d.networks();
    let ep: Endpoint | undefined;
    try {
      ep = await allocateEndpoint(d, c, net, req);
      c.endpoints[net.id] = ep;
      await d.putContainer(c);
      const hasDefault = Object.values(c.endpoints).some((e) => e !== ep && !networks.find((n) => n.id === e.networkId)?.internal);
      await d.firewall.container({ ...c, endpoints: { [net.id]: ep }, ports: [] }, networks, 'add');
      await driverFor(net).attach(net, c.netns, ep, { defaultRoute: !hasDefault });
      await writeEtc(d, c, networks);
    } catch (e) {
      delete c.endpoints[net.id];
      if (ep) await d.firewall.container({ ...c, endpoints: { [net.id]: ep }, ports: [] }, networks, 'delete').catch(() => {});
      await driverFor(net).detach(net, c.netns, ep ?? ({ hostIfname: hostVethName(c.id, net.id) } as Endpoint)).catch(() => {});
      await releaseOwner(d.store, net.id, c.id).catch(() => {});
      await d.putContainer(c);
      throw ipamToApi(e);
    }
    d.events.emit('network', 'connect', net.id, net.name, { container: c.id });
    return d.containerView(c, networks);
  });
}

export async function disconnectContainer(d: Daemon, netRef: string, containerRef: string): Promise<ContainerView> {
  const net = await d.resolveNetwork(netRef);
  const c0 = await d.resolveContainer(containerRef);
  return d.locks.run(c0.id, async () => {
    const c = (await d.getContainer(c0.id))!;
    const ep = c.endpoints[net.id];
    if (!ep) {
      if (c.config.networkMode === net.name) throw badRequest(`container ${c.name} cannot be disconnected from the ${net.name} network it was run with`);
      throw badRequest(`container ${c.name} is not connected to network ${net.name}`);
    }
    const networks = await d.networks();
    const ports: PortBinding[] = c.config.networkMode === net.name ? c.ports : [];
    await d.firewall.container({ ...c, endpoints: { [net.id]: ep }, ports }, networks, 'delete');
    await driverFor(net).detach(net, c.netns, ep);
    await releaseOwner(d.store, net.id, c.id);
    delete c.endpoints[net.id];
    await d.putContainer(c);
    // the network may have carried the default route: give it to another one
    const next = Object.values(c.endpoints)
      .map((e) => ({ e, n: networks.find((n) => n.id === e.networkId) }))
      .find((x) => x.n && !x.n.internal);
    if (next && c.netns) await moveDefaultRoute(c.netns, next.n!, next.e).catch(() => {});
    await writeEtc(d, c, networks);
    d.events.emit('network', 'disconnect', net.id, net.name, { container: c.id });
    return d.containerView(c, networks);
  });
}
