/**
 * Top-level `networks`: each entry checked and turned into what a NetworkCreate needs (or an
 * external reference). weft networks use the bridge driver; `host` and `none` are network modes
 * (services' network_mode), not networks a file declares.
 */
import type { NetworkCreate, SubnetRequest } from '../api/schemas.js';
import { containsIp, familyOf } from '../ipam/cidr.js';
import { IpamError } from '../ipam/errors.js';
import { resolveIpam } from '../ipam/validate.js';
import type { At, Checker } from './check.js';
import { readLabels } from './service.js';

/** The bridge driver options the agent accepts (src/agent/networks.ts). */
export const BRIDGE_OPTIONS = ['mtu', 'icc', 'com.docker.network.driver.mtu', 'com.docker.network.bridge.enable_icc'];

export interface NetworkDef {
  key: string;
  at: At;
  external: boolean;
  /** `name:` (or the deprecated external.name) */
  name?: string;
  driverOpts: Record<string, string>;
  subnets: SubnetRequest[];
  internal?: boolean;
  enableIPv6?: boolean;
  labels: Record<string, string>;
  extensions: Record<string, unknown>;
}

const NETWORK_KEYS = ['name', 'driver', 'driver_opts', 'ipam', 'internal', 'external', 'labels', 'enable_ipv6', 'enable_ipv4', 'attachable'];
/** keys an external network may not have: it is created elsewhere */
const NOT_WITH_EXTERNAL = ['driver', 'driver_opts', 'ipam', 'internal', 'labels', 'enable_ipv6', 'enable_ipv4'];

function readDriver(ck: Checker, at: At): void {
  const driver = ck.string(at);
  if (driver === undefined || driver === 'bridge' || driver === 'default') return;
  if (driver === 'host' || driver === 'none') {
    ck.error(at, `"${driver}" is a network mode, not a network driver: give the service network_mode: ${driver}`);
  } else {
    ck.error(at, `driver "${driver}" is not supported by weft yet; weft networks use the bridge driver (the default)`);
  }
}

function readDriverOpts(ck: Checker, at: At): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of ck.map(at) ?? []) {
    const value = ck.text(v);
    if (value === undefined) continue;
    if (!BRIDGE_OPTIONS.includes(k)) {
      ck.error(v, `unknown option "${k}" for the bridge driver; weft knows ${BRIDGE_OPTIONS.join(', ')}`);
      continue;
    }
    out[k] = value;
  }
  return out;
}

function readExternal(ck: Checker, at: At, def: NetworkDef): void {
  if (typeof at.value === 'boolean' || typeof at.value === 'string') {
    def.external = ck.boolean(at) ?? false;
    return;
  }
  const keys = ck.keys(at, { supported: ['name'] }, 'true, false or a mapping with name');
  if (!keys) return;
  def.external = true;
  const name = keys.get('name');
  if (name) {
    def.name = ck.string(name);
    ck.warn(name, `external.name is deprecated; use "external: true" and "name: ${def.name}"`);
  }
}

function readIpam(ck: Checker, at: At, def: NetworkDef): void {
  const keys = ck.keys(at, {
    supported: ['driver', 'config'],
    unsupported: { options: 'the default IPAM driver takes no options' },
  });
  if (!keys) return;
  const driver = keys.get('driver');
  if (driver) {
    const d = ck.string(driver);
    if (d !== undefined && d !== 'default') ck.error(driver, `IPAM driver "${d}" is not supported by weft; use default (or leave it out)`);
  }
  const config = keys.get('config');
  if (!config || config.value === null) return;
  for (const item of ck.list(config) ?? []) {
    const ik = ck.keys(item, {
      supported: ['subnet', 'ip_range', 'gateway'],
      unsupported: { aux_addresses: 'reserve addresses by giving an ip_range that leaves them out' },
    });
    if (!ik) continue;
    const req: SubnetRequest = {};
    const subnet = ik.get('subnet');
    const ipRange = ik.get('ip_range');
    const gateway = ik.get('gateway');
    if (subnet) req.subnet = ck.string(subnet);
    if (ipRange) req.ipRange = ck.string(ipRange);
    if (gateway) req.gateway = ck.string(gateway);
    if (!req.subnet && (req.ipRange || req.gateway)) {
      ck.error(item, `${req.ipRange ? 'ip_range' : 'gateway'} needs a subnet in the same entry`);
      continue;
    }
    if (!req.subnet) continue;
    try {
      resolveIpam({ name: def.key, config: [req], enableIPv6: undefined, networks: [], routes: [] });
      def.subnets.push(req);
    } catch (e) {
      if (!(e instanceof IpamError)) throw e;
      ck.error(item, e.message);
    }
  }
  if (def.subnets.length > 1) {
    try {
      resolveIpam({ name: def.key, config: def.subnets, enableIPv6: undefined, networks: [], routes: [] });
    } catch (e) {
      if (!(e instanceof IpamError)) throw e;
      ck.error(config, e.message);
    }
  }
}

/** One top-level network entry (null means all defaults). */
export function readNetwork(ck: Checker, key: string, at: At): NetworkDef {
  const def: NetworkDef = { key, at, external: false, driverOpts: {}, subnets: [], labels: {}, extensions: {} };
  if (at.value === null) return def;
  const keys = ck.keys(at, { supported: NETWORK_KEYS, extensions: true });
  if (!keys) return def;
  def.extensions = ck.extensions(keys);
  const get = (k: string): At | undefined => keys.get(k);

  const external = get('external');
  if (external) readExternal(ck, external, def);
  const name = get('name');
  if (name) {
    const n = ck.string(name);
    if (n !== undefined) def.name = n;
  }
  if (def.external) {
    for (const k of NOT_WITH_EXTERNAL) {
      const c = get(k);
      if (c) ck.error(c, `an external network is created outside this project: "${k}" cannot be set here (remove it, or drop "external")`);
    }
    return def;
  }
  const driver = get('driver');
  if (driver) readDriver(ck, driver);
  const opts = get('driver_opts');
  if (opts && opts.value !== null) def.driverOpts = readDriverOpts(ck, opts);
  const internal = get('internal');
  if (internal) def.internal = ck.boolean(internal);
  const v6 = get('enable_ipv6');
  if (v6) def.enableIPv6 = ck.boolean(v6);
  const v4 = get('enable_ipv4');
  if (v4 && ck.boolean(v4) === false) ck.error(v4, 'not supported by weft: every weft network has IPv4');
  const attachable = get('attachable');
  if (attachable) ck.boolean(attachable);
  const labels = get('labels');
  if (labels) def.labels = readLabels(ck, labels);
  const ipam = get('ipam');
  if (ipam && ipam.value !== null) readIpam(ck, ipam, def);
  if (def.enableIPv6 === false) {
    const v6subnet = def.subnets.find((s) => s.subnet?.includes(':'));
    if (v6subnet) ck.error(v6 ?? at, `IPv6 subnet ${v6subnet.subnet} given but enable_ipv6 is false`);
  }
  return def;
}

/** The NetworkCreate for a non-external network (labels added by the caller). */
export function networkCreate(def: NetworkDef, name: string): NetworkCreate {
  const req: NetworkCreate = { name, driver: 'bridge' };
  if (def.subnets.length) req.subnets = def.subnets;
  if (def.enableIPv6 !== undefined) req.ipv6 = def.enableIPv6;
  if (def.internal !== undefined) req.internal = def.internal;
  if (Object.keys(def.driverOpts).length) req.options = def.driverOpts;
  return req;
}

/** Is `ip` inside one of the network's subnets of its family? undefined: no subnet of that family given. */
export function inSubnets(def: NetworkDef, ip: string, family: 4 | 6): boolean | undefined {
  const subnets = def.subnets.map((s) => s.subnet as string).filter((s) => familyOf(s) === family);
  if (!subnets.length) return undefined;
  return subnets.some((s) => containsIp(s, ip));
}
