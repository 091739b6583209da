/**
 * iperf3 between two network namespaces: the server (`-s -1`, one client then exit) in one, the
 * client (`-c IP -t N -J`) in the other, both the host's iperf3 entered with nsenter. Bounded in
 * time; the server is ended by its PID whatever happens.
 */
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { runSubdir } from '../lib/ns.js';
import { CommandError, killPid, run, startDetached, waitFor } from '../lib/proc.js';

/** A network namespace: by name under /run/netns, by a process inside it, or by a path. */
export type NetnsRef = { netns: string } | { pid: number } | { path: string };

/** The nsenter prefix that runs a command in the namespace. nsenter -n execs (no fork), so a spawned PID is the command's. */
export function nsenterArgs(ns: NetnsRef): string[] {
  if ('netns' in ns) return ['nsenter', `--net=/run/netns/${ns.netns}`];
  if ('pid' in ns) return ['nsenter', '-t', String(ns.pid), '-n'];
  return ['nsenter', `--net=${ns.path}`];
}

export function describeNs(ns: NetnsRef): string {
  if ('netns' in ns) return `netns ${ns.netns}`;
  if ('pid' in ns) return `netns of pid ${ns.pid}`;
  return ns.path;
}

export interface IperfResult {
  /** receiver-side throughput, Gbit/s */
  gbps: number;
  /** sender-side throughput, Gbit/s */
  sentGbps: number;
  retransmits: number;
}

export interface IperfOptions {
  server: NetnsRef;
  client: NetnsRef;
  /** address of the server as the client reaches it */
  serverIp: string;
  seconds?: number;
  port?: number;
  /** extra client arguments, e.g. ['-P', '2'] */
  clientArgs?: string[];
}

let counter = 0;

interface IperfJson {
  error?: string;
  end?: {
    sum_received?: { bits_per_second?: number };
    sum_sent?: { bits_per_second?: number; retransmits?: number };
  };
}

export async function runIperf(o: IperfOptions): Promise<IperfResult> {
  const seconds = o.seconds ?? 3;
  const port = String(o.port ?? 5201);
  const dir = runSubdir('iperf');
  const logFile = join(dir, `server-${++counter}.log`);
  const [sCmd, ...sPre] = nsenterArgs(o.server);
  const server = startDetached(sCmd, [...sPre, 'iperf3', '-s', '-1', '-p', port, '--forceflush'], logFile);
  try {
    await waitFor(
      `iperf3 server in ${describeNs(o.server)}`,
      async () => {
        if (!server.isRunning()) throw new Error(`server exited: ${readFileSync(logFile, 'utf8').trim().slice(-300)}`);
        return readFileSync(logFile, 'utf8').includes('Server listening');
      },
      5000,
      20,
    );
    const [cCmd, ...cPre] = nsenterArgs(o.client);
    let stdout: string;
    try {
      stdout = (
        await run(cCmd, [...cPre, 'iperf3', '-c', o.serverIp, '-p', port, '-t', String(seconds), '-J', ...(o.clientArgs ?? [])], {
          timeoutMs: seconds * 1000 + 15_000,
        })
      ).stdout;
    } catch (e) {
      // iperf3 -J reports its errors as JSON on stdout
      if (e instanceof CommandError && e.stdout.trim().startsWith('{')) {
        const j = JSON.parse(e.stdout) as IperfJson;
        throw new Error(`iperf3 client: ${j.error ?? e.message}`);
      }
      throw e;
    }
    const j = JSON.parse(stdout) as IperfJson;
    if (j.error) throw new Error(`iperf3 client: ${j.error}`);
    const rx = j.end?.sum_received?.bits_per_second;
    const tx = j.end?.sum_sent?.bits_per_second;
    if (typeof rx !== 'number' || typeof tx !== 'number') throw new Error('iperf3 JSON has no end.sum_received/sum_sent');
    return { gbps: rx / 1e9, sentGbps: tx / 1e9, retransmits: j.end?.sum_sent?.retransmits ?? 0 };
  } finally {
    await killPid(server.pid, 2000);
    rmSync(logFile, { force: true });
  }
}

export async function iperfVersion(): Promise<string> {
  const r = await run('iperf3', ['--version'], { okCodes: [0, 1] });
  return (r.stdout || r.stderr).split('\n')[0].trim();
}
