/**
 * -p / --publish specs, Docker's syntax:
 *
 *   [hostIP:][hostPort:]containerPort[/tcp|udp]
 *
 *   80                      container port 80, a free host port on every address
 *   8080:80                 host port 8080
 *   127.0.0.1:8080:80       only on 127.0.0.1
 *   127.0.0.1::80           on 127.0.0.1, a free host port
 *   [::1]:8080:80  [::1]::80   IPv6 host addresses go in brackets
 *   8000-8002:80-82         ranges of the same length, paired in order
 *   80-82                   each with a free host port
 *   8000-8002:80            the first free port of the host range, as in Docker (hostPortEnd)
 *   53:53/udp               protocol (default tcp)
 *
 * Pure: no I/O; errors are CliErrors naming the spec.
 */
import { isIPv4, isIPv6 } from 'node:net';
import type { PortRequest } from '../api/schemas.js';
import { CliError } from './errors.js';

interface Range {
  start: number;
  end: number;
}

function bad(spec: string, why: string): CliError {
  return new CliError(`invalid port spec '${spec}': ${why}`);
}

function parseRange(spec: string, text: string, what: 'host port' | 'container port'): Range {
  const m = /^(\d{1,5})(?:-(\d{1,5}))?$/.exec(text);
  const min = what === 'host port' ? 0 : 1;
  if (!m) {
    const hint =
      what === 'host port' && (isIPv4(text) || isIPv6(text))
        ? ` (to choose the address and let weft pick the port: ${isIPv6(text) ? `[${text}]` : text}::PORT)`
        : '';
    throw bad(spec, `${what} '${text}' is not a number ${min}-65535 or a range like 8000-8010${hint}`);
  }
  const start = Number(m[1]);
  const end = m[2] === undefined ? start : Number(m[2]);
  for (const n of [start, end]) {
    if (n < min || n > 65535) throw bad(spec, `${what} ${n} is out of range (${min}-65535)`);
  }
  if (end < start) throw bad(spec, `${what} range ${text} ends before it starts`);
  return { start, end };
}

/** Splits "[v6]:rest" or "a:b:c" into host IP and the port parts. */
function splitAddress(spec: string, body: string): { hostIp?: string; parts: string[] } {
  if (body.startsWith('[')) {
    const close = body.indexOf(']');
    if (close < 0) throw bad(spec, "missing ']' after the IPv6 host address");
    const ip = body.slice(1, close);
    if (!isIPv6(ip)) throw bad(spec, `'${ip}' is not an IPv6 address`);
    const rest = body.slice(close + 1);
    if (!rest.startsWith(':')) throw bad(spec, `expected ':' after [${ip}]`);
    const parts = rest.slice(1).split(':');
    if (parts.length !== 2) {
      throw bad(spec, `after the host address give hostPort:containerPort, e.g. [${ip}]:8080:80 or [${ip}]::80`);
    }
    return { hostIp: ip, parts };
  }
  const parts = body.split(':');
  if (parts.length > 3) {
    throw bad(spec, 'too many colons: put an IPv6 host address in brackets, e.g. [::1]:8080:80');
  }
  if (parts.length === 3) {
    const ip = parts[0];
    if (ip !== '' && !isIPv4(ip)) {
      throw bad(spec, `'${ip}' is not an IPv4 address (IPv6 addresses go in brackets: [::1]:8080:80)`);
    }
    return { hostIp: ip === '' ? undefined : ip, parts: parts.slice(1) };
  }
  return { parts };
}

/** One -p spec -> one PortRequest per published port. */
export function parsePortSpec(spec: string): PortRequest[] {
  const text = spec.trim();
  if (!text) throw bad(spec, 'empty; expected [hostIP:][hostPort:]containerPort[/tcp|udp]');

  let body = text;
  let protocol: 'tcp' | 'udp' = 'tcp';
  const slash = text.lastIndexOf('/');
  if (slash >= 0) {
    const proto = text.slice(slash + 1).toLowerCase();
    if (proto !== 'tcp' && proto !== 'udp') {
      throw bad(spec, `protocol '${text.slice(slash + 1)}' is not tcp or udp`);
    }
    protocol = proto;
    body = text.slice(0, slash);
  }

  const { hostIp, parts } = splitAddress(spec, body);
  const containerText = parts[parts.length - 1];
  if (containerText === '') throw bad(spec, 'the container port is missing');
  const container = parseRange(spec, containerText, 'container port');
  const hostText = parts.length === 2 ? parts[0] : '';
  const host = hostText === '' ? undefined : parseRange(spec, hostText, 'host port');

  const base = (containerPort: number, hostPort?: number): PortRequest => {
    const req: PortRequest = { containerPort, protocol };
    if (hostIp !== undefined) req.hostIp = hostIp;
    if (hostPort !== undefined && hostPort !== 0) req.hostPort = hostPort;
    return req;
  };

  const containerCount = container.end - container.start + 1;
  const out: PortRequest[] = [];
  if (!host) {
    for (let p = container.start; p <= container.end; p++) out.push(base(p));
    return out;
  }
  const hostCount = host.end - host.start + 1;
  if (containerCount === 1) {
    if (hostCount > 1 && host.start === 0) throw bad(spec, 'host port 0 cannot start a range');
    // as in Docker: one port, the first free one of the host range
    const req = base(container.start, host.start);
    if (hostCount > 1) req.hostPortEnd = host.end;
    out.push(req);
    return out;
  }
  if (hostCount !== containerCount) {
    throw bad(
      spec,
      `host ports ${hostText} and container ports ${containerText} must be ranges of the same length`,
    );
  }
  if (host.start === 0) throw bad(spec, 'host port 0 cannot start a range');
  for (let i = 0; i < containerCount; i++) out.push(base(container.start + i, host.start + i));
  return out;
}

/** Every -p spec, in order. */
export function parsePortSpecs(specs: readonly string[] | undefined): PortRequest[] {
  return (specs ?? []).flatMap(parsePortSpec);
}

/** `weft port C 80/tcp`: a private port and an optional protocol. */
export function parsePrivatePort(spec: string): { port: number; protocol?: 'tcp' | 'udp' } {
  const m = /^(\d{1,5})(?:\/(tcp|udp))?$/i.exec(spec.trim());
  const port = m ? Number(m[1]) : NaN;
  if (!m || port < 1 || port > 65535) {
    throw new CliError(`invalid port '${spec}': expected PORT or PORT/tcp or PORT/udp, e.g. 80/tcp`);
  }
  return m[2] ? { port, protocol: m[2].toLowerCase() as 'tcp' | 'udp' } : { port };
}
