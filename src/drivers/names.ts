/**
 * How weft names what it makes, so that everything it owns is recognisable (DESIGN principle 2).
 * Link names are at most 15 characters.
 */
import { createHash } from 'node:crypto';

/** the bridge of the predefined `bridge` network */
export const DEFAULT_BRIDGE = 'weft0';
/** user-defined bridges: wb-<10 hex of the network id> */
export const BRIDGE_PREFIX = 'wb-';
/** host ends of container veths: wv<10 hex of hash(container, network)> */
export const VETH_PREFIX = 'wv';

export function bridgeName(networkId: string): string {
  return BRIDGE_PREFIX + networkId.slice(0, 10);
}

export function hostVethName(containerId: string, networkId: string): string {
  return VETH_PREFIX + sha(containerId + '/' + networkId).slice(0, 10);
}

/** A container's netns: weft-<node id>-<12 hex of the container id>. The node id tells agents apart. */
export function containerNetns(nodeId: string, containerId: string): string {
  return `${netnsPrefix(nodeId)}${containerId.slice(0, 12)}`;
}

export function netnsPrefix(nodeId: string): string {
  return `weft-${nodeId}-`;
}

/** A locally administered unicast MAC: 02:42 then the IPv4 address (like Docker), else a hash. */
export function endpointMac(containerId: string, networkId: string, ipv4?: string): string {
  const bytes = ipv4
    ? ipv4.split('.').map(Number)
    : [...Buffer.from(sha(containerId + '/' + networkId).slice(0, 8), 'hex')];
  return ['02', '42', ...bytes.map((b) => b.toString(16).padStart(2, '0'))].join(':');
}

export function bridgeMac(networkId: string): string {
  const b = Buffer.from(sha('bridge/' + networkId).slice(0, 10), 'hex');
  return ['02', ...[...b].map((x) => x.toString(16).padStart(2, '0'))].join(':');
}

/** The EUI-64 link-local address the kernel derives from a MAC (addr_gen_mode eui64). */
export function linkLocalFromMac(mac: string): string {
  const b = mac.split(':').map((h) => parseInt(h, 16));
  b[0] ^= 0x02;
  const eui = [b[0], b[1], b[2], 0xff, 0xfe, b[3], b[4], b[5]];
  const groups: string[] = [];
  for (let i = 0; i < 8; i += 2) groups.push(((eui[i] << 8) | eui[i + 1]).toString(16));
  return 'fe80::' + groups.join(':');
}

function sha(s: string): string {
  return createHash('sha256').update(s).digest('hex');
}
