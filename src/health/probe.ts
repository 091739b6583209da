/**
 * Runs one probe of a HealthSpec. CMD and CMD-SHELL go through the caller's exec (a process in
 * the container's namespaces — the runtime's job); TCP and HTTP are made here, from the agent,
 * to the container's address.
 */
import { request } from 'node:http';
import { connect } from 'node:net';
import { DEFAULT_TIMEOUT_MS, type HealthSpec } from './spec.js';
import { type ProbeResult, truncateOutput } from './state.js';

export interface ProbeTarget {
  /** the container's address, for TCP and HTTP probes */
  ip?: string;
  /** runs argv in the container; should itself stop the process after timeoutMs */
  exec: (argv: string[], timeoutMs: number) => Promise<{ exitCode: number; output: string }>;
}

interface Outcome {
  exitCode: number;
  output: string;
}

/**
 * One probe, never rejecting: failures, errors and timeouts are results (see ProbeResult for
 * the exit codes). Whatever the probe opened is closed when it settles.
 */
export async function runProbe(spec: HealthSpec, target: ProbeTarget, now: () => Date = () => new Date()): Promise<ProbeResult> {
  const start = now().toISOString();
  const { exitCode, output } = await attempt(spec, target);
  return { start, end: now().toISOString(), exitCode, output: truncateOutput(output) };
}

function attempt(spec: HealthSpec, target: ProbeTarget): Promise<Outcome> {
  const [kind, ...args] = spec.test;
  const ms = spec.timeoutMs > 0 ? spec.timeoutMs : DEFAULT_TIMEOUT_MS; // 0 is Docker's default, as in Docker
  switch (kind) {
    case 'CMD':
      return execProbe(target, args, ms);
    case 'CMD-SHELL':
      return execProbe(target, ['/bin/sh', '-c', args[0]], ms);
    case 'TCP':
    case 'HTTP': {
      if (!target.ip) return Promise.resolve({ exitCode: -1, output: 'no address' });
      const port = Number(args[0]);
      return kind === 'TCP' ? tcpProbe(target.ip, port, ms) : httpProbe(target.ip, port, args[1] ?? '/', ms);
    }
    default:
      return Promise.resolve({ exitCode: -1, output: `unknown health test ${JSON.stringify(kind)}` });
  }
}

/**
 * Settles with the first of run's own outcome or the timeout, then calls the cleanup run
 * returned, so a socket or request never outlives its probe.
 */
function bounded(timeoutMs: number, run: (finish: (exitCode: number, output: string) => void) => () => void): Promise<Outcome> {
  return new Promise((resolve) => {
    let done = false;
    let cleanup = (): void => {};
    const finish = (exitCode: number, output: string): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      cleanup();
      resolve({ exitCode, output });
    };
    const timer = setTimeout(() => finish(-1, `health check timed out after ${timeoutMs}ms`), timeoutMs);
    try {
      cleanup = run(finish);
    } catch (e) {
      finish(-1, errorText(e));
    }
    if (done) cleanup(); // run finished synchronously, before its cleanup was known
  });
}

function execProbe(target: ProbeTarget, argv: string[], timeoutMs: number): Promise<Outcome> {
  return bounded(timeoutMs, (finish) => {
    // A late answer after the timeout is ignored; exec was given the timeout to stop the process.
    Promise.resolve()
      .then(() => target.exec(argv, timeoutMs))
      .then(
        (r) => finish(r.exitCode, r.output),
        (e: unknown) => finish(-1, errorText(e)),
      );
    return () => {};
  });
}

function tcpProbe(ip: string, port: number, timeoutMs: number): Promise<Outcome> {
  const addr = hostPort(ip, port);
  return bounded(timeoutMs, (finish) => {
    const socket = connect({ host: ip, port });
    socket.on('connect', () => finish(0, `connected to ${addr}`));
    // The error code alone ("ECONNREFUSED"): Node's message would repeat the address.
    socket.on('error', (e: NodeJS.ErrnoException) => finish(1, `connect ${addr}: ${e.code ?? e.message}`));
    return () => socket.destroy();
  });
}

function httpProbe(ip: string, port: number, path: string, timeoutMs: number): Promise<Outcome> {
  const url = `http://${hostPort(ip, port)}${path}`;
  return bounded(timeoutMs, (finish) => {
    // agent: false — a connection of its own, closed with the request, nothing pooled to leak.
    const req = request({ host: ip, port, path, method: 'GET', agent: false, headers: { 'user-agent': 'weft-health/1' } }, (res) => {
      res.on('error', () => {}); // destroying the request below may abort the unread body
      const status = res.statusCode ?? 0;
      finish(status >= 200 && status < 400 ? 0 : 1, `HTTP ${status}`);
    });
    req.on('error', (e: NodeJS.ErrnoException) => finish(1, `GET ${url}: ${e.code ?? e.message}`));
    req.end();
    return () => req.destroy();
  });
}

function hostPort(ip: string, port: number): string {
  return ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`;
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
