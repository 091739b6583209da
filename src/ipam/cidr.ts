/**
 * Pure address math for IPv4 and IPv6. Addresses are bigints (IPv4 fits too, and one code path
 * serves both families). ipaddr.js only parses and prints; everything else is arithmetic here.
 *
 * Parsing is strict, like Go's net package that Docker uses: IPv4 must be four decimal octets
 * without leading zeros (ipaddr.js alone would read "010.0.0.1" as octal 8.0.0.1), no zone index
 * on IPv6, and a subnet must be a network address (no host bits set).
 */
import ipaddr from 'ipaddr.js';
import type { Family } from '../model/types.js';
import { IpamError } from './errors.js';

export type { Family };

/** One address. */
export interface Ip {
  family: Family;
  value: bigint;
}

/** A prefix: `network` has all host bits zero. */
export interface Cidr {
  family: Family;
  network: bigint;
  prefix: number;
}

export type IpLike = Ip | string;
export type CidrLike = Cidr | string;

/** Address width in bits. */
export function bitsOf(family: Family): 32 | 128 {
  return family === 4 ? 32 : 128;
}

function familyName(family: Family): string {
  return family === 4 ? 'IPv4' : 'IPv6';
}

// ---------------------------------------------------------------------------------------------
// parsing and printing

/** Why `text` is not an address, or the address. */
function tryParseIp(text: string): Ip | string {
  if (text === '') return 'empty address';
  if (text.includes('%')) return 'zone indexes (%...) are not allowed';
  if (text.includes(':')) {
    if (!ipaddr.IPv6.isValid(text)) return `${text} is not a valid IPv6 address`;
    const parts = ipaddr.IPv6.parse(text).parts;
    let value = 0n;
    for (const part of parts) value = (value << 16n) | BigInt(part);
    return { family: 6, value };
  }
  if (!ipaddr.IPv4.isValidFourPartDecimal(text)) {
    return /^[0-9.]+$/.test(text)
      ? `${text} is not a valid IPv4 address (four decimal numbers 0-255, no leading zeros)`
      : `${text} is not a valid IPv4 or IPv6 address`;
  }
  let value = 0n;
  for (const octet of ipaddr.IPv4.parse(text).octets) value = (value << 8n) | BigInt(octet);
  return { family: 4, value };
}

/**
 * Parses one address (no prefix). `what` names the field in the error, e.g. "gateway":
 * `invalid gateway "10.0.0.300": 10.0.0.300 is not a valid IPv4 address ...`.
 */
export function parseIp(text: string, what = 'address'): Ip {
  const ip = tryParseIp(text);
  if (typeof ip === 'string') throw new IpamError(`invalid ${what} "${text}": ${ip}`, 'invalid');
  return ip;
}

export interface ParseCidrOptions {
  /** names the field in errors: "subnet" (default), "ip-range"... */
  what?: string;
  /**
   * true (default): host bits must be zero, else an error suggests the network address.
   * false: host bits are cleared silently (for values read from the kernel or the store).
   */
  strict?: boolean;
  /** accept a bare address as a host prefix (/32 or /128), as `ip route` prints host routes */
  allowBareAddress?: boolean;
}

/** Parses a CIDR such as 172.18.0.0/16 or fd00:1::/64. */
export function parseCidr(text: string, opts: ParseCidrOptions = {}): Cidr {
  const what = opts.what ?? 'subnet';
  const fail = (why: string): never => {
    throw new IpamError(`invalid ${what} "${text}": ${why}`, 'invalid');
  };
  const slash = text.indexOf('/');
  let addrText = text;
  let prefixText: string | undefined;
  if (slash >= 0) {
    addrText = text.slice(0, slash);
    prefixText = text.slice(slash + 1);
  } else if (!opts.allowBareAddress) {
    fail('missing prefix length; use CIDR notation such as 172.18.0.0/16 or fd00:1::/64');
  }
  const ip = tryParseIp(addrText);
  if (typeof ip === 'string') return fail(`${ip}; use CIDR notation such as 172.18.0.0/16`);
  const bits: number = bitsOf(ip.family);
  let prefix = bits;
  if (prefixText !== undefined) {
    if (!/^(0|[1-9][0-9]{0,2})$/.test(prefixText) || Number(prefixText) > bits) {
      fail(`prefix length must be a number from 0 to ${bits} for ${familyName(ip.family)}`);
    }
    prefix = Number(prefixText);
  }
  const network = ip.value & prefixMask(ip.family, prefix);
  if (network !== ip.value && opts.strict !== false) {
    const suggestion = formatCidr({ family: ip.family, network, prefix });
    throw new IpamError(
      `${what} ${text} is not a network address; did you mean ${suggestion}?`,
      'invalid',
    );
  }
  return { family: ip.family, network, prefix };
}

/** Canonical text: dotted quad, or RFC 5952 for IPv6 (lower case, longest zero run as ::). */
export function formatIp(ip: Ip): string {
  if (ip.family === 4) {
    const v = ip.value;
    return [24n, 16n, 8n, 0n].map((shift) => String((v >> shift) & 0xffn)).join('.');
  }
  const parts: number[] = [];
  for (let shift = 112n; shift >= 0n; shift -= 16n) parts.push(Number((ip.value >> shift) & 0xffffn));
  return new ipaddr.IPv6(parts).toRFC5952String();
}

export function formatCidr(c: Cidr): string {
  return `${formatIp({ family: c.family, value: c.network })}/${c.prefix}`;
}

/** Canonical form of an address ("FD00:0::1" -> "fd00::1"). Throws on invalid input. */
export function canonicalIp(text: string): string {
  return formatIp(parseIp(text));
}

/** Canonical form of a CIDR. Strict: throws if host bits are set. */
export function canonicalCidr(text: string): string {
  return formatCidr(parseCidr(text));
}

/** The family of an address or CIDR, or undefined if it is neither. */
export function familyOf(text: string): Family | undefined {
  if (!text.includes('/')) {
    const ip = tryParseIp(text);
    return typeof ip === 'string' ? undefined : ip.family;
  }
  try {
    return parseCidr(text, { strict: false }).family;
  } catch {
    return undefined;
  }
}

/** Strings are parsed leniently (host bits cleared, bare address = host prefix). */
export function toCidr(c: CidrLike): Cidr {
  return typeof c === 'string' ? parseCidr(c, { strict: false, allowBareAddress: true }) : c;
}

export function toIp(ip: IpLike): Ip {
  return typeof ip === 'string' ? parseIp(ip) : ip;
}

// ---------------------------------------------------------------------------------------------
// arithmetic

/** The netmask as a number: `prefix` one bits followed by zero bits. */
export function prefixMask(family: Family, prefix: number): bigint {
  const bits = BigInt(bitsOf(family));
  const all = (1n << bits) - 1n;
  return (all >> BigInt(prefix)) ^ all;
}

/** Number of host bits (32 - prefix or 128 - prefix). */
export function hostBits(c: CidrLike): number {
  const cidr = toCidr(c);
  return bitsOf(cidr.family) - cidr.prefix;
}

/** How many addresses the prefix holds (2^hostBits). */
export function size(c: CidrLike): bigint {
  return 1n << BigInt(hostBits(c));
}

export function networkAddress(c: CidrLike): Ip {
  const cidr = toCidr(c);
  return { family: cidr.family, value: cidr.network };
}

/** The last address of the prefix (the broadcast address for IPv4). */
export function lastAddress(c: CidrLike): Ip {
  const cidr = toCidr(c);
  return { family: cidr.family, value: cidr.network + size(cidr) - 1n };
}

/**
 * The IPv4 broadcast address; undefined for IPv6 (which has none) and for IPv4 /31 and /32,
 * where RFC 3021 makes every address a host address.
 */
export function broadcastAddress(c: CidrLike): Ip | undefined {
  const cidr = toCidr(c);
  if (cidr.family !== 4 || hostBits(cidr) < 2) return undefined;
  return lastAddress(cidr);
}

/**
 * Addresses of the prefix that are never given to a host: the network address (for IPv6 the
 * subnet-router anycast address) and the IPv4 broadcast address. None for /31, /32, /127, /128.
 */
export function reservedAddresses(c: CidrLike): Ip[] {
  const cidr = toCidr(c);
  if (hostBits(cidr) < 2) return [];
  const out = [networkAddress(cidr)];
  const broadcast = broadcastAddress(cidr);
  if (broadcast) out.push(broadcast);
  return out;
}

/** The first address a host may use: the default gateway. */
export function firstUsable(c: CidrLike): Ip {
  const cidr = toCidr(c);
  return { family: cidr.family, value: cidr.network + (hostBits(cidr) < 2 ? 0n : 1n) };
}

/** Addresses a host may use (size minus reserved). */
export function usableCount(c: CidrLike): bigint {
  return size(c) - BigInt(reservedAddresses(c).length);
}

export function containsIp(c: CidrLike, ip: IpLike): boolean {
  const cidr = toCidr(c);
  const addr = toIp(ip);
  return (
    cidr.family === addr.family && (addr.value & prefixMask(cidr.family, cidr.prefix)) === cidr.network
  );
}

/** True if `inner` lies entirely inside `outer` (equal counts). */
export function containsCidr(outer: CidrLike, inner: CidrLike): boolean {
  const o = toCidr(outer);
  const i = toCidr(inner);
  return o.family === i.family && o.prefix <= i.prefix && containsIp(o, networkAddress(i));
}

/** True if the prefixes share any address (one then contains the other). */
export function overlaps(a: CidrLike, b: CidrLike): boolean {
  return containsCidr(a, b) || containsCidr(b, a);
}

/** The n-th address of the prefix, 0 being the network address. Throws RangeError outside. */
export function nthAddress(c: CidrLike, n: bigint | number): Ip {
  const cidr = toCidr(c);
  const i = BigInt(n);
  if (i < 0n || i >= size(cidr)) {
    throw new RangeError(`index ${i} is outside ${formatCidr(cidr)} (${size(cidr)} addresses)`);
  }
  return { family: cidr.family, value: cidr.network + i };
}

/** The index of `ip` in the prefix (inverse of nthAddress). Throws RangeError outside. */
export function addressIndex(c: CidrLike, ip: IpLike): bigint {
  const cidr = toCidr(c);
  const addr = toIp(ip);
  if (!containsIp(cidr, addr)) {
    throw new RangeError(`${formatIp(addr)} is outside ${formatCidr(cidr)}`);
  }
  return addr.value - cidr.network;
}

/** Orders IPv4 before IPv6, then numerically. */
export function compareIp(a: IpLike, b: IpLike): number {
  const x = toIp(a);
  const y = toIp(b);
  if (x.family !== y.family) return x.family - y.family;
  return x.value < y.value ? -1 : x.value > y.value ? 1 : 0;
}

/** Orders IPv4 before IPv6, then by network address, then shorter prefix first. */
export function compareCidr(a: CidrLike, b: CidrLike): number {
  const x = toCidr(a);
  const y = toCidr(b);
  if (x.family !== y.family) return x.family - y.family;
  if (x.network !== y.network) return x.network < y.network ? -1 : 1;
  return x.prefix - y.prefix;
}
