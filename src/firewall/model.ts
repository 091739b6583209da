/**
 * The firewall's input: everything that varies between hosts, as plain data. The compiler turns it
 * into the static rules of weft's two nftables tables plus set and map elements (compile.ts).
 *
 * normalizeModel() validates a model and puts every value in the canonical form that nft itself
 * prints (lower-case MACs, compressed IPv6, network addresses of subnets), so that compiled text is
 * stable and can be compared with what the kernel lists.
 */
import ipaddr from 'ipaddr.js';

export interface FwNetwork {
  /** the Linux bridge of the network */
  bridge: string;
  /** IPv4 subnets in CIDR form */
  subnets4: string[];
  /** IPv6 subnets in CIDR form */
  subnets6: string[];
  /** no traffic leaves the bridge (no outside, no other network, no published ports) */
  internal: boolean;
  /** containers on this bridge may talk to each other */
  icc: boolean;
  /** addresses (the bridge's gateways) where weft's embedded DNS answers this network's containers */
  dns?: string[];
}

export interface FwEndpoint {
  /** the host end of the container's veth, a port of a weft bridge */
  hostIfname: string;
  /** the container's MAC address (the only source MAC allowed from hostIfname) */
  mac: string;
  ipv4?: string;
  ipv6?: string;
  /** the container's fe80:: address; without it, IPv6 link-local traffic from the port is dropped */
  linkLocal6?: string;
}

export interface FwPort {
  family: 4 | 6;
  protocol: 'tcp' | 'udp';
  /** undefined (or 0.0.0.0 / ::) = every address of the host */
  hostIp?: string;
  hostPort: number;
  targetIp: string;
  targetPort: number;
}

export interface FirewallModel {
  networks: FwNetwork[];
  endpoints: FwEndpoint[];
  ports: FwPort[];
}

export class FirewallModelError extends Error {
  constructor(
    /** the offending field, e.g. "endpoints[2].mac" */
    readonly field: string,
    message: string,
  ) {
    super(`${field}: ${message}`);
    this.name = 'FirewallModelError';
  }
}

/** Linux interface names: 1-15 bytes, no '/', ':', whitespace; we also refuse quotes and backslashes. */
const IFNAME = /^[A-Za-z0-9_.@+=-]{1,15}$/;

export function checkIfname(name: string, field: string): string {
  if (typeof name !== 'string' || !IFNAME.test(name) || name === '.' || name === '..') {
    throw new FirewallModelError(
      field,
      `"${String(name)}" is not a usable interface name (1-15 characters of A-Z a-z 0-9 _ . @ + = -)`,
    );
  }
  return name;
}

export function normalizeMac(mac: string, field: string): string {
  const m = /^([0-9a-f]{1,2})[:-]([0-9a-f]{1,2})[:-]([0-9a-f]{1,2})[:-]([0-9a-f]{1,2})[:-]([0-9a-f]{1,2})[:-]([0-9a-f]{1,2})$/i.exec(
    typeof mac === 'string' ? mac : '',
  );
  if (!m) throw new FirewallModelError(field, `"${String(mac)}" is not a MAC address (write it as 02:42:ac:11:00:02)`);
  const bytes = m.slice(1).map((b) => b.toLowerCase().padStart(2, '0'));
  if (parseInt(bytes[0], 16) & 1) throw new FirewallModelError(field, `${bytes.join(':')} is a multicast MAC; use a unicast one`);
  return bytes.join(':');
}

export function normalizeIp(addr: string, family: 4 | 6, field: string): string {
  const ok =
    typeof addr === 'string' &&
    (family === 4 ? ipaddr.IPv4.isValidFourPartDecimal(addr) : ipaddr.IPv6.isValid(addr) && !addr.includes('%'));
  if (!ok) throw new FirewallModelError(field, `"${String(addr)}" is not an IPv${family} address`);
  const parsed = ipaddr.parse(addr);
  if (parsed instanceof ipaddr.IPv6 && parsed.isIPv4MappedAddress()) {
    throw new FirewallModelError(field, `"${addr}" is an IPv4-mapped address; give the IPv4 address in an IPv4 field`);
  }
  return parsed.toString();
}

/** Canonical CIDR with the host bits cleared; "10.1.2.3/24" -> "10.1.2.0/24". */
export function normalizeCidr(cidr: string, family: 4 | 6, field: string): string {
  const m = typeof cidr === 'string' ? /^([^/]+)\/(\d{1,3})$/.exec(cidr) : null;
  const max = family === 4 ? 32 : 128;
  if (!m || Number(m[2]) > max) {
    throw new FirewallModelError(field, `"${String(cidr)}" is not an IPv${family} subnet in CIDR form (e.g. ${family === 4 ? '172.18.0.0/16' : 'fd00:1::/64'})`);
  }
  normalizeIp(m[1], family, field);
  const len = Number(m[2]);
  const net = family === 4 ? ipaddr.IPv4.networkAddressFromCIDR(cidr) : ipaddr.IPv6.networkAddressFromCIDR(cidr);
  return `${net.toString()}/${len}`;
}

function checkPort(n: number, field: string): number {
  if (!Number.isInteger(n) || n < 1 || n > 65535) {
    throw new FirewallModelError(field, `${String(n)} is not a port number (1-65535)`);
  }
  return n;
}

function cidrsOverlap(a: string, b: string): boolean {
  const [na, la] = ipaddr.parseCIDR(a);
  const [nb, lb] = ipaddr.parseCIDR(b);
  if (na.kind() !== nb.kind()) return false;
  // the shorter prefix contains the other's network address iff they overlap
  return la <= lb ? nb.match(na, la) : na.match(nb, lb);
}

/** True for a hostIp that means "every address of the host". */
export function isWildcardHostIp(hostIp: string | undefined): boolean {
  return hostIp === undefined || hostIp === '' || hostIp === '0.0.0.0' || hostIp === '::';
}

/**
 * Validates a model and returns a canonical copy: every address, MAC and subnet in the form nft
 * prints, hostIp undefined for wildcards. Throws FirewallModelError naming the field and the fix for
 * anything nft would reject or that would make two elements collide.
 */
export function normalizeModel(model: FirewallModel): FirewallModel {
  const networks = model.networks.map((n, i) => normalizeNetwork(n, `networks[${i}]`));
  const endpoints = model.endpoints.map((e, i) => normalizeEndpoint(e, `endpoints[${i}]`));
  const ports = model.ports.map((p, i) => normalizePort(p, `ports[${i}]`));

  const bridges = new Map<string, number>();
  networks.forEach((n, i) => {
    const j = bridges.get(n.bridge);
    if (j !== undefined) throw new FirewallModelError(`networks[${i}].bridge`, `bridge ${n.bridge} is also used by networks[${j}]; each network needs its own bridge`);
    bridges.set(n.bridge, i);
  });
  const subnets: { cidr: string; field: string }[] = [];
  networks.forEach((n, i) => {
    for (const [k, s] of [...n.subnets4, ...n.subnets6].entries()) {
      const field = k < n.subnets4.length ? `networks[${i}].subnets4[${k}]` : `networks[${i}].subnets6[${k - n.subnets4.length}]`;
      const other = subnets.find((o) => cidrsOverlap(o.cidr, s));
      if (other) throw new FirewallModelError(field, `${s} overlaps ${other.cidr} (${other.field}); subnets of weft networks must be disjoint`);
      subnets.push({ cidr: s, field });
    }
  });
  const ifnames = new Map<string, number>();
  endpoints.forEach((e, i) => {
    const j = ifnames.get(e.hostIfname);
    if (j !== undefined) throw new FirewallModelError(`endpoints[${i}].hostIfname`, `${e.hostIfname} is also endpoints[${j}]; host interface names must be unique`);
    if (bridges.has(e.hostIfname)) throw new FirewallModelError(`endpoints[${i}].hostIfname`, `${e.hostIfname} is the name of a weft bridge`);
    ifnames.set(e.hostIfname, i);
  });
  const keys = new Map<string, number>();
  ports.forEach((p, i) => {
    const key = `${p.family} ${p.hostIp ?? '*'} ${p.protocol} ${p.hostPort}`;
    const j = keys.get(key);
    if (j !== undefined) {
      throw new FirewallModelError(
        `ports[${i}]`,
        `${p.hostIp ?? (p.family === 4 ? '0.0.0.0' : '[::]')}:${p.hostPort}/${p.protocol} is already published by ports[${j}]; pick another host port`,
      );
    }
    keys.set(key, i);
  });
  return { networks, endpoints, ports };
}

export function normalizeNetwork(n: FwNetwork, field = 'network'): FwNetwork {
  return {
    bridge: checkIfname(n.bridge, `${field}.bridge`),
    subnets4: uniqueSorted(n.subnets4.map((s, k) => normalizeCidr(s, 4, `${field}.subnets4[${k}]`))),
    subnets6: uniqueSorted(n.subnets6.map((s, k) => normalizeCidr(s, 6, `${field}.subnets6[${k}]`))),
    internal: Boolean(n.internal),
    icc: Boolean(n.icc),
    dns: uniqueSorted((n.dns ?? []).map((a, k) => normalizeIp(a, a.includes(':') ? 6 : 4, `${field}.dns[${k}]`))),
  };
}

export function normalizeEndpoint(e: FwEndpoint, field = 'endpoint'): FwEndpoint {
  const out: FwEndpoint = {
    hostIfname: checkIfname(e.hostIfname, `${field}.hostIfname`),
    mac: normalizeMac(e.mac, `${field}.mac`),
  };
  if (e.ipv4 !== undefined) out.ipv4 = normalizeIp(e.ipv4, 4, `${field}.ipv4`);
  if (e.ipv6 !== undefined) out.ipv6 = normalizeIp(e.ipv6, 6, `${field}.ipv6`);
  if (e.linkLocal6 !== undefined) {
    out.linkLocal6 = normalizeIp(e.linkLocal6, 6, `${field}.linkLocal6`);
    if (ipaddr.parse(out.linkLocal6).range() !== 'linkLocal') {
      throw new FirewallModelError(`${field}.linkLocal6`, `${out.linkLocal6} is not a link-local (fe80::/10) address`);
    }
  }
  return out;
}

export function normalizePort(p: FwPort, field = 'port'): FwPort {
  if (p.family !== 4 && p.family !== 6) throw new FirewallModelError(`${field}.family`, `${String(p.family)} is not 4 or 6`);
  if (p.protocol !== 'tcp' && p.protocol !== 'udp') throw new FirewallModelError(`${field}.protocol`, `"${String(p.protocol)}" is not tcp or udp`);
  const out: FwPort = {
    family: p.family,
    protocol: p.protocol,
    hostPort: checkPort(p.hostPort, `${field}.hostPort`),
    targetIp: normalizeIp(p.targetIp, p.family, `${field}.targetIp`),
    targetPort: checkPort(p.targetPort, `${field}.targetPort`),
  };
  if (!isWildcardHostIp(p.hostIp)) out.hostIp = normalizeIp(p.hostIp as string, p.family, `${field}.hostIp`);
  return out;
}

function uniqueSorted(xs: string[]): string[] {
  return [...new Set(xs)].sort(byText);
}

/** Locale-free ordering: the same on every machine. */
export function byText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
