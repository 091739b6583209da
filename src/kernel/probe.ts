/**
 * Real connections from and to network namespaces, for `weft policy matrix --probe`: responders on
 * the probed ports of each destination, then every source tries its targets at once
 * (probe-worker.ts does the socket work inside the namespace).
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { childEnv } from './exec.js';

export interface ProbeTarget {
  ip: string;
  protocol: 'tcp' | 'udp';
  port: number;
}

/** open / refused: the packets got through; timeout: they did not; error: ... */
export type ProbeResult = 'open' | 'refused' | 'timeout' | string;

const fromSource = import.meta.url.endsWith('.ts');
const WORKER = fileURLToPath(new URL(fromSource ? './probe-worker.ts' : './probe-worker.js', import.meta.url));

function worker(netns: string, spec: unknown) {
  if (!/^[A-Za-z0-9_.-]+$/.test(netns)) throw new TypeError(`"${netns}" is not a netns name`);
  const node = [process.execPath, ...(fromSource ? ['--import', 'tsx'] : []), WORKER, JSON.stringify(spec)];
  return spawn('nsenter', [`--net=/run/netns/${netns}`, '--', ...node], { stdio: ['pipe', 'pipe', 'pipe'], env: childEnv() });
}

/** Starts responders on the ports (those nobody serves yet); close() stops them. */
export async function probeListen(netns: string, ports: Array<Omit<ProbeTarget, 'ip'>>): Promise<{ close: () => Promise<void> }> {
  const child = worker(netns, { listen: ports });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    let out = '';
    let err = '';
    child.stderr.on('data', (b) => (err += b));
    child.stdout.on('data', (b) => {
      out += b;
      if (out.includes('ready\n')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`probe responder in ${netns} exited (${code}): ${err.trim()}`)));
    child.once('error', reject);
  });
  return {
    close: async () => {
      child.stdin.end();
      const t = setTimeout(() => child.kill('SIGKILL'), 2000);
      await exited;
      clearTimeout(t);
    },
  };
}

/** Tries every target from inside netns at once; one result per target, in order. */
export function probeConnect(netns: string, targets: ProbeTarget[], timeoutMs = 1000): Promise<ProbeResult[]> {
  return new Promise((resolve, reject) => {
    const child = worker(netns, { connect: targets, timeoutMs });
    let out = '';
    let err = '';
    child.stdout.on('data', (b) => (out += b));
    child.stderr.on('data', (b) => (err += b));
    child.once('error', reject);
    child.once('exit', (code) => {
      try {
        if (code !== 0) throw new Error(`exit ${code}: ${err.trim()}`);
        resolve(JSON.parse(out) as ProbeResult[]);
      } catch (e) {
        reject(new Error(`probe from ${netns} failed: ${(e as Error).message}`));
      }
    });
  });
}
