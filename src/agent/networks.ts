/** Network operations: create, remove, prune, and the predefined networks. */
import { randomBytes } from 'node:crypto';
import type { Network } from '../model/types.js';
import { PREDEFINED_NETWORKS } from '../model/types.js';
import type { NetworkCreate, NetworkView } from '../api/schemas.js';
import { resolveIpam } from '../ipam/validate.js';
import { BRIDGE_IPV4_POOLS, ulaPools } from '../ipam/pools.js';
import { IpamError } from '../ipam/errors.js';
import { routeList } from '../kernel/net.js';
import { bridgeName, DEFAULT_BRIDGE, BRIDGE_PREFIX } from '../drivers/names.js';
import { driverFor } from '../drivers/index.js';
import { ApiError, badRequest, conflict } from './errors.js';
import { K } from './keys.js';
import type { Daemon } from './daemon.js';

const NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

export function newId(): string {
  return randomBytes(32).toString('hex');
}

/** Maps IPAM's refusals to API answers. */
export function ipamToApi(e: unknown): unknown {
  if (!(e instanceof IpamError)) return e;
  return new ApiError(e.code === 'invalid' ? 400 : 409, e.message);
}

/** Host routes that a new subnet must not overlap (not default routes, not weft's own bridges). */
async function hostRoutes(): Promise<{ dst: string; dev?: string }[]> {
  return (await routeList()).filter(
    (r) =>
      r.dst !== 'default' &&
      !r.dst.startsWith('fe80:') &&
      !r.dst.startsWith('ff00:') &&
      !(r.dev && (r.dev === DEFAULT_BRIDGE || r.dev.startsWith(BRIDGE_PREFIX))),
  );
}

interface DriverOpts {
  mtu: number;
  icc: boolean;
}

function parseOptions(opts: Record<string, string>): DriverOpts {
  const out: DriverOpts = { mtu: 1500, icc: true };
  for (const [k, v] of Object.entries(opts)) {
    if (k === 'mtu' || k === 'com.docker.network.driver.mtu') {
      const n = Number(v);
      if (!Number.isInteger(n) || n < 68 || n > 65535) throw badRequest(`invalid --opt ${k}=${v}: the MTU must be an integer from 68 to 65535`);
      out.mtu = n;
    } else if (k === 'icc' || k === 'com.docker.network.bridge.enable_icc') {
      if (v !== 'true' && v !== 'false') throw badRequest(`invalid --opt ${k}=${v}: use true or false`);
      out.icc = v === 'true';
    } else {
      throw badRequest(
        `unknown --opt ${k} for the bridge driver; known options: mtu, icc (also com.docker.network.driver.mtu, com.docker.network.bridge.enable_icc)`,
      );
    }
  }
  return out;
}

export async function createNetwork(d: Daemon, req: NetworkCreate): Promise<NetworkView> {
  const name = req.name;
  if (!NAME_RE.test(name)) throw badRequest(`invalid network name "${name}": use letters, digits, '_', '.' and '-', starting with a letter or digit`);
  if ((PREDEFINED_NETWORKS as readonly string[]).includes(name))
    throw conflict(`${name} is a predefined network and cannot be created; choose another name`);
  const driver = req.driver ?? 'bridge';
  const opts = parseOptions(req.options ?? {});
  // One network create at a time: subnet choice and the overlap checks must see each other.
  return d.locks.run('networks', async () => {
    const existing = await d.networks();
    if (existing.some((n) => n.name === name)) throw conflict(`network with name ${name} already exists`);
    let subnets;
    try {
      subnets = resolveIpam({
        name,
        config: req.subnets ?? [],
        enableIPv6: req.ipv6,
        networks: existing,
        routes: await hostRoutes(),
        ipv6Pools: ulaPools(d.opts.ula48),
      });
    } catch (e) {
      throw ipamToApi(e);
    }
    const id = newId();
    const net: Network = {
      id,
      name,
      driver,
      created: new Date().toISOString(),
      internal: req.internal ?? false,
      enableIPv6: req.ipv6 ?? subnets.some((s) => s.family === 6),
      icc: opts.icc,
      mtu: opts.mtu,
      options: req.options ?? {},
      labels: req.labels ?? {},
      subnets,
      bridge: bridgeName(id),
      builtin: false,
    };
    if (!(await claimNetwork(d, net))) throw conflict(`network with name ${name} already exists`);
    try {
      await driverFor(net).ensureNetwork(net);
      await d.firewall.full();
    } catch (e) {
      await removeNetworkState(d, net).catch(() => {});
      throw e;
    }
    d.events.emit('network', 'create', id, name, { driver });
    return d.networkView(net, []);
  });
}

async function removeNetworkState(d: Daemon, net: Network): Promise<void> {
  await driverFor(net).deleteNetwork(net);
  await d.store.txn([], [
    { type: 'delete', key: K.network(net.id) },
    { type: 'delete', key: K.networkName(net.name) },
  ]);
  await d.firewall.full();
}

export async function removeNetwork(d: Daemon, ref: string): Promise<void> {
  const net = await d.resolveNetwork(ref);
  if (net.builtin) throw conflict(`${net.name} is a predefined network and cannot be removed`);
  await d.locks.run('networks', async () => {
    const view = await d.networkView(net);
    const names = Object.values(view.containers).map((c) => c.name);
    if (names.length)
      throw conflict(`network ${net.name} has active endpoints (${names.join(', ')}); disconnect or remove them first`);
    await removeNetworkState(d, net);
  });
  d.events.emit('network', 'destroy', net.id, net.name);
}

export async function pruneNetworks(d: Daemon): Promise<string[]> {
  const deleted: string[] = [];
  const containers = await d.containers();
  for (const net of await d.networks()) {
    if (net.builtin) continue;
    if (containers.some((c) => c.endpoints[net.id])) continue;
    try {
      await removeNetwork(d, net.id);
      deleted.push(net.name);
    } catch (e) {
      d.log.warn({ err: String(e), network: net.name }, 'prune: could not remove network');
    }
  }
  return deleted;
}

/** The predefined networks exist from the first start on: bridge (weft0), host and none. */
export async function ensurePredefined(d: Daemon): Promise<void> {
  const nets = await d.networks();
  for (const name of PREDEFINED_NETWORKS) {
    if (nets.some((n) => n.name === name)) continue;
    const id = newId();
    const net: Network = {
      id,
      name,
      driver: name,
      created: new Date().toISOString(),
      internal: false,
      enableIPv6: false,
      icc: true,
      mtu: 1500,
      options: {},
      labels: {},
      subnets: [],
      builtin: true,
    };
    if (name === 'bridge') {
      net.bridge = DEFAULT_BRIDGE;
      net.subnets = resolveIpam({
        name,
        enableIPv6: false,
        networks: nets,
        routes: await hostRoutes(),
        ipv4Pools: BRIDGE_IPV4_POOLS,
      });
    }
    await claimNetwork(d, net);
  }
}

/** Writes a network and claims its name in one transaction; false if the name is taken. */
async function claimNetwork(d: Daemon, net: Network): Promise<boolean> {
  const res = await d.store.txn(
    [{ key: K.networkName(net.name), target: 'create', op: '=', value: 0 }],
    [
      { type: 'put', key: K.networkName(net.name), value: net.id },
      { type: 'put', key: K.network(net.id), value: JSON.stringify(net) },
    ],
  );
  return res.succeeded;
}
