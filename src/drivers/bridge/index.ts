/**
 * The bridge driver: a Linux bridge per network holding the gateway addresses, and a veth pair
 * per endpoint (host end on the bridge with hairpin on, container end named ethN).
 */
import type { Endpoint, Network } from '../../model/types.js';
import type { Driver } from '../types.js';
import { addrList, deleteLinkIfPresent, ipBatch, linkList, routeList, sysctlSet } from '../../kernel/net.js';
import { bridgeMac } from '../names.js';

function prefixLen(cidr: string): number {
  return Number(cidr.split('/')[1]);
}

export const bridgeDriver: Driver = {
  name: 'bridge',

  async ensureNetwork(net) {
    const br = net.bridge!;
    const link = (await linkList()).find((l) => l.ifname === br);
    const lines: string[] = [];
    if (link && link.kind !== 'bridge') throw new Error(`link ${br} exists and is not a bridge`);
    if (!link) {
      lines.push(`link add name ${br} mtu ${net.mtu} address ${bridgeMac(net.id)} type bridge`);
    }
    const have = link ? (await addrList()).filter((a) => a.ifname === br).map((a) => a.local) : [];
    for (const s of net.subnets) {
      if (have.includes(s.gateway)) continue;
      lines.push(`addr add ${s.gateway}/${prefixLen(s.subnet)} dev ${br}${s.family === 6 ? ' nodad' : ''}`);
    }
    lines.push(`link set ${br} up`);
    await ipBatch(lines);
    await sysctlSet('net.ipv4.ip_forward', 1);
    // published ports reached at 127.0.0.1 are DNATed to a container: the bridge must route them
    await sysctlSet(`net.ipv4.conf.${br}.route_localnet`, 1);
    if (net.enableIPv6) await sysctlSet('net.ipv6.conf.all.forwarding', 1);
  },

  async deleteNetwork(net) {
    await deleteLinkIfPresent(net.bridge!);
  },

  async attach(net, netns, ep, { defaultRoute }) {
    const br = net.bridge!;
    // The container end is created directly in its namespace, so it never appears in the host's.
    await ipBatch([
      `link add name ${ep.hostIfname} mtu ${net.mtu} type veth peer name ${ep.ifname} mtu ${net.mtu} address ${ep.mac} netns ${netns}`,
      `link set ${ep.hostIfname} master ${br}`,
      `link set dev ${ep.hostIfname} type bridge_slave hairpin on`,
      `link set ${ep.hostIfname} up`,
    ]);
    try {
      await ipBatch(containerSide(net, ep, defaultRoute), netns);
    } catch (e) {
      await ipBatch([`link del ${ep.hostIfname}`]).catch(() => {});
      throw e;
    }
  },

  async detach(_net, _netns, ep) {
    // deleting one end of a veth deletes both; an absent link is already detached
    await deleteLinkIfPresent(ep.hostIfname);
  },

  async endpointHealthy(net, netns, ep) {
    const host = (await linkList()).find((l) => l.ifname === ep.hostIfname);
    if (!host || host.master !== net.bridge) return false;
    try {
      const inside = await addrList(netns);
      if (ep.ipv4 && !inside.some((a) => a.ifname === ep.ifname && a.local === ep.ipv4)) return false;
      if (ep.ipv6 && !inside.some((a) => a.ifname === ep.ifname && a.local === ep.ipv6)) return false;
      return true;
    } catch {
      return false;
    }
  },
};

function containerSide(net: Network, ep: Endpoint, defaultRoute: boolean): string[] {
  const lines: string[] = [];
  for (const s of net.subnets) {
    const addr = s.family === 4 ? ep.ipv4 : ep.ipv6;
    if (addr) lines.push(`addr add ${addr}/${prefixLen(s.subnet)} dev ${ep.ifname}${s.family === 6 ? ' nodad' : ''}`);
  }
  lines.push(`link set ${ep.ifname} up`);
  if (defaultRoute && !net.internal) {
    for (const s of net.subnets) {
      const addr = s.family === 4 ? ep.ipv4 : ep.ipv6;
      if (addr) lines.push(`route replace default via ${s.gateway} dev ${ep.ifname}`);
    }
  }
  return lines;
}

/** Points the container's default route at another network after its default network left. */
export async function moveDefaultRoute(netns: string, net: Network, ep: Endpoint): Promise<void> {
  const routes = await routeList(netns);
  const lines: string[] = [];
  for (const s of net.subnets) {
    const addr = s.family === 4 ? ep.ipv4 : ep.ipv6;
    if (!addr || routes.some((r) => r.dst === 'default' && r.family === s.family)) continue;
    lines.push(`route replace default via ${s.gateway} dev ${ep.ifname}`);
  }
  await ipBatch(lines, netns);
}

/** host and none: nothing to make. */
export const nullDriver = (name: string): Driver => ({
  name,
  async ensureNetwork() {},
  async deleteNetwork() {},
  async attach() {},
  async detach() {},
  async endpointHealthy() {
    return true;
  },
});
