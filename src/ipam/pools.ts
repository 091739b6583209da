/**
 * Default address pools and picking a free subnet from them, like Docker's
 * `default-address-pools`: a pool is a base prefix cut into subnets of one size, tried in order.
 */
import { randomBytes } from 'node:crypto';
import type { Family } from '../model/types.js';
import {
  type Cidr,
  bitsOf,
  formatCidr,
  lastAddress,
  parseCidr,
  size as cidrSize,
  toCidr,
} from './cidr.js';
import { IpamError } from './errors.js';

/** `base` is cut into subnets of prefix length `size` (Docker's {"base": ..., "size": ...}). */
export interface AddressPool {
  base: string;
  size: number;
}

/** The predefined `bridge` network's subnet; user networks never get it from a pool. */
export const BRIDGE_DEFAULT_SUBNET = '172.17.0.0/16';

/**
 * IPv4 pools for user networks, in Docker's order after the bridge's 172.17.0.0/16:
 * 172.18.0.0/16 ... 172.31.0.0/16 as /16 each, then 192.168.0.0/16 as /20s.
 */
export const DEFAULT_IPV4_POOLS: readonly AddressPool[] = Object.freeze([
  { base: '172.18.0.0/16', size: 16 },
  { base: '172.19.0.0/16', size: 16 },
  { base: '172.20.0.0/14', size: 16 },
  { base: '172.24.0.0/14', size: 16 },
  { base: '172.28.0.0/14', size: 16 },
  { base: '192.168.0.0/16', size: 20 },
]);

/**
 * Pools for the predefined `bridge` network: its reserved 172.17.0.0/16 first, then the user
 * pools in case a host route already covers 172.17.0.0/16 (Docker falls back the same way).
 */
export const BRIDGE_IPV4_POOLS: readonly AddressPool[] = Object.freeze([
  { base: BRIDGE_DEFAULT_SUBNET, size: 16 },
  ...DEFAULT_IPV4_POOLS,
]);

/**
 * A random ULA /48 (RFC 4193: fd00::/8 plus a 40-bit random global ID), e.g.
 * "fd3c:9a1e:07b2::/48". An agent generates it once, stores it, and passes it to ulaPools().
 */
export function generateUlaPrefix(random: (n: number) => Uint8Array = randomBytes): string {
  const bytes = random(5);
  if (bytes.length < 5) throw new Error('generateUlaPrefix: random source returned too few bytes');
  let value = 0xfdn;
  for (let i = 0; i < 5; i++) value = (value << 8n) | BigInt(bytes[i]);
  return formatCidr({ family: 6, network: value << 80n, prefix: 48 });
}

/** The agent's IPv6 pool: its ULA /48 cut into /64s. */
export function ulaPools(ulaPrefix: string): AddressPool[] {
  const c = parseCidr(ulaPrefix, { what: 'ULA prefix' });
  const isUla = c.family === 6 && c.network >> 120n === 0xfdn;
  if (!isUla || c.prefix !== 48) {
    throw new IpamError(
      `invalid ULA prefix "${ulaPrefix}": must be an IPv6 /48 inside fd00::/8, e.g. fd3c:9a1e:7b2::/48`,
      'invalid',
    );
  }
  return [{ base: formatCidr(c), size: 64 }];
}

interface ParsedPool {
  base: Cidr;
  size: number;
}

/** Checks a pool list (as an admin would configure it) and returns it parsed. */
export function parsePools(pools: readonly AddressPool[], family?: Family): ParsedPool[] {
  return pools.map((pool) => {
    const base = parseCidr(pool.base, { what: 'address pool base' });
    const bits = bitsOf(base.family);
    if (family !== undefined && base.family !== family) {
      throw new IpamError(
        `address pool ${pool.base} is IPv${base.family}, expected an IPv${family} pool`,
        'invalid',
      );
    }
    if (!Number.isInteger(pool.size) || pool.size < base.prefix || pool.size > bits) {
      throw new IpamError(
        `address pool ${pool.base}: size ${pool.size} must be a prefix length from ${base.prefix} to ${bits}`,
        'invalid',
      );
    }
    return { base, size: pool.size };
  });
}

/** How many subnets the pools hold altogether. */
export function poolSubnetCount(pools: readonly AddressPool[]): bigint {
  return countSubnets(parsePools(pools));
}

function countSubnets(pools: readonly ParsedPool[]): bigint {
  return pools.reduce((n, p) => n + (1n << BigInt(p.size - p.base.prefix)), 0n);
}

function defaultPoolsFor(family: Family): readonly AddressPool[] {
  if (family === 4) return DEFAULT_IPV4_POOLS;
  throw new IpamError(
    "no IPv6 address pool is configured (the agent's ULA prefix was not passed in); give an IPv6 --subnet",
    'invalid',
  );
}

/**
 * A CIDR or bare address of a network or host route; undefined for "default" and for what cannot
 * be parsed (a route of a kind weft does not know cannot be checked, and must not fail a request).
 */
export function parseUsed(entry: string): Cidr | undefined {
  if (entry === 'default') return undefined;
  try {
    return toCidr(entry);
  } catch {
    return undefined;
  }
}

/**
 * The first subnet of the pools, in order, that overlaps none of `used`.
 *
 * `used` holds the CIDRs of weft networks and of host routes (without default routes; "default"
 * and /0 entries are ignored anyway). Bare addresses count as host routes. Entries of the other
 * family, and entries that do not parse, are ignored. Without `pools`, IPv4 uses DEFAULT_IPV4_POOLS; IPv6 has no default (pass
 * ulaPools(prefix)).
 *
 * Cost grows with the number of used entries, not with the pool size: a candidate that collides
 * jumps past the end of what it collided with, so a ULA /48 (65536 /64s) is never enumerated.
 */
export function pickSubnet(family: Family, used: readonly string[], pools?: readonly AddressPool[]): string {
  const isDefault = pools === undefined;
  const parsed = parsePools(pools ?? defaultPoolsFor(family), family);
  const taken: Cidr[] = [];
  for (const entry of used) {
    const c = parseUsed(entry);
    if (c && c.family === family && c.prefix > 0) taken.push(c);
  }
  for (const pool of parsed) {
    const step = 1n << BigInt(bitsOf(family) - pool.size);
    const end = lastAddress(pool.base).value;
    let candidate = pool.base.network;
    while (candidate <= end) {
      const last = candidate + step - 1n;
      const clash = taken.find((t) => t.network <= last && candidate <= t.network + cidrSize(t) - 1n);
      if (!clash) return formatCidr({ family, network: candidate, prefix: pool.size });
      // the next aligned subnet after both the candidate and what it hit
      const clashEnd = clash.network + cidrSize(clash) - 1n;
      const after = (clashEnd > last ? clashEnd : last) + 1n;
      candidate = ((after + step - 1n) / step) * step;
    }
  }
  const n = countSubnets(parsed);
  const which = isDefault ? 'default address pools' : 'address pools';
  throw new IpamError(
    `all ${which} are in use (${n} IPv${family} subnet${n === 1n ? '' : 's'}); give --subnet`,
    'exhausted',
  );
}
