/**
 * Resolving a network's requested IPAM (what `weft network create --subnet --ip-range --gateway
 * --ipv6` or a compose file asked for) into the IpamSubnet[] stored on the Network. Pure: the
 * other networks and the host's routes are passed in.
 */
import type { Family, IpamSubnet, Network } from '../model/types.js';
import {
  type Cidr,
  type Ip,
  broadcastAddress,
  containsCidr,
  containsIp,
  firstUsable,
  formatCidr,
  formatIp,
  hostBits,
  networkAddress,
  overlaps,
  parseCidr,
  parseIp,
} from './cidr.js';
import { IpamError } from './errors.js';
import { type AddressPool, parseUsed, pickSubnet } from './pools.js';

/** One entry of Docker's IPAM.Config; the family follows from the subnet. */
export interface IpamRequest {
  subnet?: string;
  ipRange?: string;
  gateway?: string;
}

/** A route of the host (e.g. from `ip -j route`); `dev` only makes errors clearer. */
export interface HostRoute {
  dst: string;
  dev?: string;
}

export interface ResolveIpamInput {
  /** the network being created, for messages */
  name: string;
  /** one entry per subnet, IPv4 and IPv6 mixed, in the order given; empty = pick from pools */
  config?: readonly IpamRequest[];
  /** default true; false = the network gets no IPv4 (Docker's --ipv4=false) */
  enableIPv4?: boolean;
  /**
   * true: IPv6 (a subnet is picked from ipv6Pools if none is given); false: none (an IPv6 subnet
   * given is an error); undefined: IPv6 if and only if an IPv6 subnet is given.
   */
  enableIPv6?: boolean;
  /** the other weft networks (leave out the one being resolved) */
  networks: readonly Pick<Network, 'name' | 'subnets'>[];
  /** host routes without default routes; a string is a destination ("10.0.0.0/8", "10.1.2.3") */
  routes: readonly (string | HostRoute)[];
  /** defaults: DEFAULT_IPV4_POOLS; IPv6 has no default (pass ulaPools(agentPrefix)) */
  ipv4Pools?: readonly AddressPool[];
  ipv6Pools?: readonly AddressPool[];
}

interface Resolved {
  subnet: Cidr;
  ipRange?: Cidr;
  gateway: Ip;
  auto: boolean;
}

function describeRoute(route: string | HostRoute): string {
  if (typeof route === 'string') return `the host route to ${route}`;
  return `the host route to ${route.dst}${route.dev ? ` (dev ${route.dev})` : ''}`;
}

function resolveOne(req: IpamRequest): Resolved {
  const subnet = parseCidr(req.subnet as string, { what: 'subnet' });
  const s = formatCidr(subnet);
  const fam = `IPv${subnet.family}`;
  if (hostBits(subnet) < 1) {
    throw new IpamError(
      `subnet ${s} is too small: it leaves no address for containers beside the gateway; use a shorter prefix`,
      'invalid',
    );
  }

  let ipRange: Cidr | undefined;
  if (req.ipRange !== undefined) {
    ipRange = parseCidr(req.ipRange, { what: 'ip-range' });
    const r = formatCidr(ipRange);
    if (ipRange.family !== subnet.family) {
      throw new IpamError(`ip-range ${r} is IPv${ipRange.family} but subnet ${s} is ${fam}`, 'invalid');
    }
    if (!containsCidr(subnet, ipRange)) {
      throw new IpamError(`ip-range ${r} is outside subnet ${s}; give a range inside it`, 'invalid');
    }
  }

  let gateway: Ip;
  if (req.gateway !== undefined) {
    gateway = parseIp(req.gateway, 'gateway');
    const g = formatIp(gateway);
    if (gateway.family !== subnet.family) {
      throw new IpamError(`gateway ${g} is IPv${gateway.family} but subnet ${s} is ${fam}`, 'invalid');
    }
    if (!containsIp(subnet, gateway)) {
      throw new IpamError(`gateway ${g} is outside subnet ${s}; give an address inside it`, 'invalid');
    }
    const usable = formatIp(firstUsable(subnet));
    if (hostBits(subnet) >= 2 && gateway.value === networkAddress(subnet).value) {
      throw new IpamError(
        `gateway ${g} is the network address of ${s}; use a host address such as ${usable}`,
        'invalid',
      );
    }
    if (gateway.value === broadcastAddress(subnet)?.value) {
      throw new IpamError(
        `gateway ${g} is the broadcast address of ${s}; use a host address such as ${usable}`,
        'invalid',
      );
    }
  } else {
    gateway = firstUsable(subnet);
  }
  return { subnet, ipRange, gateway, auto: false };
}

/**
 * Resolves the requested IPAM of a network into the subnets to store, IPv4 first, each family
 * in the order given. Checks each entry (a valid network CIDR, ip-range inside the subnet, gateway
 * inside the subnet and not its network or broadcast address), rejects overlaps within the
 * request, with other weft networks and with host routes (naming the network or the route),
 * fills in the gateway (first usable address) and picks a subnet from the pools for a family
 * that is enabled but was given none. Throws IpamError.
 */
export function resolveIpam(input: ResolveIpamInput): IpamSubnet[] {
  const enableIPv4 = input.enableIPv4 ?? true;
  const given: Resolved[] = [];

  for (const req of input.config ?? []) {
    if (req.subnet === undefined || req.subnet === '') {
      if (req.ipRange !== undefined || req.gateway !== undefined) {
        const what = req.ipRange !== undefined ? `ip-range ${req.ipRange}` : `gateway ${req.gateway}`;
        throw new IpamError(`${what} needs a subnet: every ip-range and gateway must come with its --subnet`, 'invalid');
      }
      continue;
    }
    const r = resolveOne(req);
    const s = formatCidr(r.subnet);
    if (r.subnet.family === 4 && !enableIPv4) {
      throw new IpamError(`IPv4 subnet ${s} given but IPv4 is disabled for network "${input.name}"`, 'invalid');
    }
    if (r.subnet.family === 6 && input.enableIPv6 === false) {
      throw new IpamError(`IPv6 subnet ${s} given but IPv6 is not enabled for network "${input.name}"; add --ipv6`, 'invalid');
    }
    for (const other of given) {
      if (overlaps(other.subnet, r.subnet)) {
        throw new IpamError(
          `subnets ${formatCidr(other.subnet)} and ${s} overlap; give non-overlapping subnets`,
          'overlap',
        );
      }
    }
    for (const net of input.networks) {
      const hit = net.subnets.find((x) => overlaps(x.subnet, r.subnet));
      if (hit) {
        throw new IpamError(
          `subnet ${s} overlaps subnet ${hit.subnet} of network "${net.name}"; choose another subnet`,
          'overlap',
        );
      }
    }
    for (const route of input.routes) {
      const c = parseUsed(typeof route === 'string' ? route : route.dst);
      if (c && c.prefix > 0 && overlaps(c, r.subnet)) {
        throw new IpamError(`subnet ${s} overlaps ${describeRoute(route)}; choose another subnet`, 'overlap');
      }
    }
    given.push(r);
  }

  const used = (): string[] => [
    ...input.networks.flatMap((n) => n.subnets.map((x) => x.subnet)),
    ...input.routes.map((r) => (typeof r === 'string' ? r : r.dst)),
    ...given.map((g) => formatCidr(g.subnet)),
  ];
  const autoPick = (family: Family, pools: readonly AddressPool[] | undefined): void => {
    if (given.some((g) => g.subnet.family === family)) return;
    const subnet = parseCidr(pickSubnet(family, used(), pools));
    given.push({ subnet, gateway: firstUsable(subnet), auto: true });
  };
  if (enableIPv4) autoPick(4, input.ipv4Pools);
  if (input.enableIPv6 === true) autoPick(6, input.ipv6Pools);

  const ordered = [...given.filter((g) => g.subnet.family === 4), ...given.filter((g) => g.subnet.family === 6)];
  return ordered.map((g) => {
    const out: IpamSubnet = {
      subnet: formatCidr(g.subnet),
      gateway: formatIp(g.gateway),
      family: g.subnet.family,
      auto: g.auto,
    };
    if (g.ipRange) out.ipRange = formatCidr(g.ipRange);
    return out;
  });
}
