/**
 * Converging the kernel to the store. At start the agent repairs drift (missing bridges, veths,
 * namespaces), finishes or undoes half-made containers, and removes orphans it owns (namespaces,
 * links, addresses, port claims, files) — leaving everything else alone. `system check` runs the
 * same comparison without repairing and lists what it found.
 */
import { readdir, rm } from 'node:fs/promises';
import type { Leak } from '../api/schemas.js';
import type { Container, Network } from '../model/types.js';
import { deleteLinkIfPresent, linkList, netnsAdd, netnsDelete, netnsExists, netnsList, netnsPids } from '../kernel/net.js';
import { killNetnsProcesses } from '../kernel/process.js';
import { nftListSetElements } from '../kernel/nft.js';
import { listAllocations, release, releaseNetwork, IPAM_PREFIX } from '../ipam/allocator.js';
import { BRIDGE_PREFIX, VETH_PREFIX, DEFAULT_BRIDGE, netnsPrefix } from '../drivers/names.js';
import { driverFor } from '../drivers/index.js';
import { removeEtcFiles } from '../runtime/etc.js';
import { K } from './keys.js';
import { sharedNetnsOwner, teardown } from './containers.js';
import { ensurePredefined } from './networks.js';
import { claimBinding, rehold } from './ports.js';
import { SERVICE_IPAM_ID } from './services.js';
import type { Daemon } from './daemon.js';

const ETC_NETNS = '/etc/netns';

export async function reconcile(d: Daemon, opts: { repair: boolean }): Promise<Leak[]> {
  const found: Leak[] = [];
  const note = (kind: Leak['kind'], name: string, detail: string) => {
    found.push({ kind, name, detail });
    d.log.info({ kind, name, detail, repair: opts.repair }, 'reconcile');
  };
  if (opts.repair) await ensurePredefined(d);

  // 1. half-made or half-removed containers go entirely
  let containers = await d.containers();
  for (const c of containers.filter((c) => c.state.phase === 'creating' || c.state.phase === 'removing')) {
    note('container', c.name, `container ${c.id.slice(0, 12)} was left ${c.state.phase} by an interrupted operation`);
    if (opts.repair) await teardown(d, c);
  }
  containers = containers.filter((c) => c.state.phase !== 'creating' && c.state.phase !== 'removing');
  const networks = await d.networks();
  const bridges = networks.filter((n) => n.driver === 'bridge');

  // 2. networks: bridges and gateway addresses
  const links = await linkList();
  for (const n of bridges) {
    if (!links.some((l) => l.ifname === n.bridge)) {
      if (n.builtin && !opts.repair) continue; // made on first start
      note('link', n.bridge!, `bridge of network ${n.name} is missing`);
    }
    if (opts.repair) await driverFor(n).ensureNetwork(n);
  }

  // 3. containers: namespaces and endpoints
  // a namespace may be shared (network mode container:): its processes are strays only if none
  // of the containers in it runs
  const inUse = new Set(containers.filter((c) => c.state.phase === 'running').map((c) => c.netns));
  for (const c of containers) {
    if (!c.netns || sharedNetnsOwner(c)) continue;
    const hadNetns = await netnsExists(c.netns);
    if (!hadNetns) {
      note('netns', c.netns, `namespace of container ${c.name} is missing`);
      if (opts.repair) await netnsAdd(c.netns);
      else continue;
    }
    if (!inUse.has(c.netns)) {
      // a start interrupted after the process began but before it was recorded
      const strays = opts.repair ? await killNetnsProcesses(c.netns) : await netnsPids(c.netns);
      for (const pid of strays) note('process', String(pid), `process in the namespace of container ${c.name}, which is not running`);
    }
    for (const ep of Object.values(c.endpoints)) {
      const net = networks.find((n) => n.id === ep.networkId);
      if (!net) continue;
      const drv = driverFor(net);
      if (hadNetns && (await drv.endpointHealthy(net, c.netns, ep))) continue;
      note('link', ep.hostIfname, `endpoint of container ${c.name} on network ${net.name} is missing or broken`);
      if (opts.repair) {
        await drv.detach(net, c.netns, ep);
        await deleteLinkIfPresent(ep.ifname, c.netns);
        await drv.attach(net, c.netns, ep, { defaultRoute: isDefaultNetwork(c, ep.networkId, networks) });
      }
    }
  }

  // 4. orphans this agent owns
  const wantNetns = new Set(containers.map((c) => c.netns).filter(Boolean) as string[]);
  const prefix = netnsPrefix(d.nodeId);
  for (const ns of await netnsList()) {
    if (!ns.startsWith(prefix) || wantNetns.has(ns)) continue;
    note('netns', ns, 'namespace of no container');
    if (opts.repair) {
      await killNetnsProcesses(ns);
      await netnsDelete(ns);
      await removeEtcFiles(ns);
    }
  }
  for (const dir of await readdir(ETC_NETNS).catch(() => [] as string[])) {
    if (!dir.startsWith(prefix) || wantNetns.has(dir)) continue;
    note('file', `${ETC_NETNS}/${dir}`, 'hosts/resolv.conf of no container');
    if (opts.repair) await removeEtcFiles(dir);
  }
  const wantLinks = new Set([
    ...bridges.map((n) => n.bridge!),
    ...containers.flatMap((c) => Object.values(c.endpoints).map((e) => e.hostIfname)),
  ]);
  for (const l of await linkList()) {
    const ours = l.ifname === DEFAULT_BRIDGE || l.ifname.startsWith(BRIDGE_PREFIX) || l.ifname.startsWith(VETH_PREFIX);
    if (!ours || wantLinks.has(l.ifname)) continue;
    note('link', l.ifname, l.kind === 'bridge' ? 'bridge of no network' : 'veth of no container');
    if (opts.repair) await deleteLinkIfPresent(l.ifname);
  }
  const byId = new Map(containers.map((c) => [c.id, c]));
  for (const n of bridges) {
    for (const a of await listAllocations(d.store, n.id)) {
      if (byId.get(a.owner)?.endpoints[n.id]) continue;
      note('address', a.ip, `address on network ${n.name} held by ${a.owner.slice(0, 12)}, which is not attached`);
      if (opts.repair) await release(d.store, n.id, a.ip, a.owner);
    }
  }
  const ipamNets = new Set(
    (await d.store.range(IPAM_PREFIX)).kvs.map((kv) => kv.key.slice(IPAM_PREFIX.length).split('/')[0]),
  );
  for (const id of ipamNets) {
    if (networks.some((n) => n.id === id) || id === SERVICE_IPAM_ID) continue;
    note('address', id.slice(0, 12), 'addresses of a network that no longer exists');
    if (opts.repair) await releaseNetwork(d.store, id);
  }
  const services = new Set((await d.services()).map((s) => s.id));
  for (const kv of (await d.store.range(K.ports)).kvs) {
    if (byId.has(kv.value) || services.has(kv.value)) continue;
    const p = claimBinding(kv.key);
    note('port', `${p.hostIp || '0.0.0.0'}:${p.hostPort}/${p.protocol}`, `published port claimed by ${kv.value.slice(0, 12)}, which no longer exists`);
    if (opts.repair) await d.store.delete(kv.key);
  }
  for (const dir of await readdir(`${d.opts.stateDir}/containers`).catch(() => [] as string[])) {
    if (byId.has(dir)) continue;
    note('file', `${d.opts.stateDir}/containers/${dir}`, 'state of no container');
    if (opts.repair) await rm(`${d.opts.stateDir}/containers/${dir}`, { recursive: true, force: true });
  }

  // 5. the firewall: rewritten from the model when repairing; compared when checking
  if (opts.repair) {
    await d.firewall.full();
    await rehold(d, new Set([...containers.map((c) => c.id), ...services]));
  } else {
    await checkFirewall(containers, note);
  }
  return found;
}

async function checkFirewall(containers: Container[], note: (k: Leak['kind'], n: string, d: string) => void): Promise<void> {
  const ports = await nftListSetElements('bridge', 'weft', 'ports').catch(() => undefined);
  if (!ports) {
    note('nft', 'bridge weft', 'table bridge weft is missing');
    return;
  }
  const want = new Set(containers.flatMap((c) => Object.values(c.endpoints).map((e) => e.hostIfname)));
  for (const p of ports) {
    const name = p.replace(/"/g, '');
    if (!want.has(name)) note('nft', name, 'anti-spoofing elements for a port of no container');
  }
  for (const w of want) if (!ports.some((p) => p.replace(/"/g, '') === w)) note('nft', w, 'anti-spoofing elements missing for a container port');
}

function isDefaultNetwork(c: Container, networkId: string, networks: Network[]): boolean {
  const net = networks.find((n) => n.id === networkId);
  return !!net && (net.name === c.config.networkMode || net.id === c.config.networkMode);
}
