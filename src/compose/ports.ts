/**
 * Compose `ports`, short and long syntax, into the agent's PortRequests.
 *
 *   "80"  80                container port 80 on a free host port, every address
 *   "8080:80"               host port 8080
 *   "127.0.0.1:8080:80"     only on 127.0.0.1 ("127.0.0.1::80": a free host port there)
 *   "[::1]:8080:80"         IPv6 host addresses in brackets (or unbracketed, as Docker accepts)
 *   "8000-8001:80-81"       ranges of the same length, paired in order
 *   "80-81"                 each on a free host port
 *   "8000-8002:80"          a host range for one container port: Compose picks a free port of
 *                           the range per container; weft gives replica n the n-th port
 *   "9090:9090/udp"         protocol tcp (default) or udp
 *
 * Long syntax: { target, published (number or "8000-8002"), host_ip, protocol, mode, name,
 * app_protocol }; mode (host/ingress), name and app_protocol do not change what weft does.
 * Pure: errors are thrown as Errors whose message is the reason (the caller adds where).
 */
import { isIPv4, isIPv6 } from 'node:net';
import type { PortRequest } from '../api/schemas.js';

export type Protocol = 'tcp' | 'udp';

export interface PortRange {
  start: number;
  end: number;
}

/** One entry of `ports` as written, before replicas are considered. */
export interface PortMapping {
  hostIp?: string;
  /** absent (or start 0): a free host port */
  host?: PortRange;
  container: PortRange;
  protocol: Protocol;
}

/** A host port range shared out among a service's replicas: replica n gets hostPortStart + n - 1. */
export interface ReplicaPort {
  hostIp?: string;
  hostPortStart: number;
  hostPortEnd: number;
  containerPort: number;
  protocol: Protocol;
}

/** "8000", "8000-8010"; min 0 for host ports (0 = a free port). */
export function parsePortRange(text: string, what: 'host port' | 'container port'): PortRange {
  const m = /^(\d{1,5})(?:-(\d{1,5}))?$/.exec(text.trim());
  const min = what === 'host port' ? 0 : 1;
  if (!m) throw new Error(`${what} "${text}" is not a number ${min}-65535 or a range like 8000-8010`);
  const start = Number(m[1]);
  const end = m[2] === undefined ? start : Number(m[2]);
  for (const n of [start, end]) if (n < min || n > 65535) throw new Error(`${what} ${n} is out of range (${min}-65535)`);
  if (end < start) throw new Error(`${what} range ${text} ends before it starts`);
  return { start, end };
}

export function parseProtocol(text: string): Protocol {
  const p = text.trim().toLowerCase();
  if (p === 'tcp' || p === 'udp') return p;
  if (p === 'sctp') throw new Error('protocol sctp is not supported by weft; use tcp or udp');
  throw new Error(`protocol "${text}" is not tcp or udp`);
}

/** An IP address for host_ip; brackets around IPv6 are removed. */
export function parseHostIp(text: string): string {
  const ip = text.startsWith('[') && text.endsWith(']') ? text.slice(1, -1) : text;
  if (!isIPv4(ip) && !isIPv6(ip)) throw new Error(`host address "${text}" is not an IP address`);
  return ip;
}

/** Splits [ip:][host:]container the way Docker does (the last two colons separate ports). */
function splitShort(body: string): { ip?: string; host?: string; container: string } {
  if (body.startsWith('[')) {
    const close = body.indexOf(']');
    if (close < 0) throw new Error('missing "]" after the IPv6 host address');
    const rest = body.slice(close + 1);
    const m = /^:([^:]*):([^:]*)$/.exec(rest);
    if (!m) throw new Error(`after [${body.slice(1, close)}] give :hostPort:containerPort, e.g. [::1]:8080:80 or [::1]::80`);
    return { ip: body.slice(0, close + 1), host: m[1], container: m[2] };
  }
  const parts = body.split(':');
  const n = parts.length;
  if (n === 1) return { container: parts[0] };
  if (n === 2) return { host: parts[0], container: parts[1] };
  return { ip: parts.slice(0, n - 2).join(':'), host: parts[n - 2], container: parts[n - 1] };
}

/** The short syntax: a string, or a number (the container port). */
export function parseShortPort(spec: string | number): PortMapping {
  const text = String(spec).trim();
  if (text === '') throw new Error('empty; expected [HOST_IP:][HOST_PORT:]CONTAINER_PORT[/PROTOCOL]');
  let body = text;
  let protocol: Protocol = 'tcp';
  const slash = text.lastIndexOf('/');
  if (slash >= 0) {
    protocol = parseProtocol(text.slice(slash + 1));
    body = text.slice(0, slash);
  }
  const { ip, host, container } = splitShort(body);
  if (container === '') throw new Error('the container port is missing');
  const out: PortMapping = { container: parsePortRange(container, 'container port'), protocol };
  if (ip !== undefined && ip !== '') out.hostIp = parseHostIp(ip);
  if (host !== undefined && host !== '') out.host = parsePortRange(host, 'host port');
  return out;
}

export interface LongPort {
  target: number;
  published?: string | number;
  hostIp?: string;
  protocol?: string;
}

/** The long syntax, once its keys are read. */
export function parseLongPort(p: LongPort): PortMapping {
  const out: PortMapping = { container: { start: p.target, end: p.target }, protocol: p.protocol ? parseProtocol(p.protocol) : 'tcp' };
  if (p.hostIp !== undefined && p.hostIp !== '') out.hostIp = parseHostIp(p.hostIp);
  if (p.published !== undefined && String(p.published).trim() !== '') out.host = parsePortRange(String(p.published), 'host port');
  return out;
}

/**
 * The PortRequests every container of the service gets, and the host ranges shared out among
 * replicas. Throws when the mapping cannot work (range lengths differ, a fixed host port for
 * several replicas, a range shorter than the replica count).
 */
export function expandPorts(mappings: readonly PortMapping[], replicas: number): { fixed: PortRequest[]; perReplica: ReplicaPort[] }[] {
  return mappings.map((m) => expandOne(m, replicas));
}

function request(m: PortMapping, containerPort: number, hostPort?: number): PortRequest {
  const r: PortRequest = { containerPort, protocol: m.protocol };
  if (m.hostIp !== undefined) r.hostIp = m.hostIp;
  if (hostPort !== undefined && hostPort !== 0) r.hostPort = hostPort;
  return r;
}

function expandOne(m: PortMapping, replicas: number): { fixed: PortRequest[]; perReplica: ReplicaPort[] } {
  const containerCount = m.container.end - m.container.start + 1;
  const fixed: PortRequest[] = [];
  if (!m.host || (m.host.start === 0 && m.host.end === 0)) {
    for (let p = m.container.start; p <= m.container.end; p++) fixed.push(request(m, p));
    return { fixed, perReplica: [] };
  }
  const hostCount = m.host.end - m.host.start + 1;
  if (m.host.start === 0) throw new Error('host port 0 cannot start a range');
  if (containerCount === 1 && hostCount > 1) {
    if (hostCount < replicas) {
      throw new Error(`host range ${m.host.start}-${m.host.end} has ${hostCount} ports for ${replicas} replicas; give at least one port per replica`);
    }
    const r: ReplicaPort = { hostPortStart: m.host.start, hostPortEnd: m.host.end, containerPort: m.container.start, protocol: m.protocol };
    if (m.hostIp !== undefined) r.hostIp = m.hostIp;
    return { fixed, perReplica: [r] };
  }
  if (hostCount !== containerCount) {
    throw new Error(
      `host ports ${m.host.start}-${m.host.end} and container ports ${m.container.start}-${m.container.end} must be ranges of the same length`,
    );
  }
  if (replicas > 1) {
    const hp = hostCount === 1 ? `host port ${m.host.start}` : `host ports ${m.host.start}-${m.host.end}`;
    throw new Error(`${hp} cannot be published by each of ${replicas} replicas; give a host range with one port per replica (e.g. "8000-8002:80") or leave the host port out`);
  }
  for (let i = 0; i < containerCount; i++) fixed.push(request(m, m.container.start + i, m.host.start + i));
  return { fixed, perReplica: [] };
}

/** The PortRequest replica n (1-based) gets from a shared host range. */
export function replicaPortRequest(p: ReplicaPort, _n: number): PortRequest {
  // as in Compose, each replica takes a free port of the range (the agent picks the first free one)
  const r: PortRequest = { containerPort: p.containerPort, hostPort: p.hostPortStart, hostPortEnd: p.hostPortEnd, protocol: p.protocol };
  if (p.hostIp !== undefined) r.hostIp = p.hostIp;
  return r;
}
