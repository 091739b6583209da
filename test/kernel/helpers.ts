/**
 * Kernel test helpers: each test file makes its own lab (host + outside namespaces with an agent)
 * through the real CLI in dist/ (scripts/test.sh builds it), and removes it afterwards, also when
 * a test fails.
 */
import { spawn, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const WEFT = path.join(ROOT, 'bin/weft');
export const ECHO = path.join(ROOT, 'examples/workloads/http-echo.mjs');
export const UDP = path.join(ROOT, 'examples/workloads/udp-echo.mjs');

export interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

export function sh(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; input?: string; timeoutMs?: number } = {}): Promise<Result> {
  return new Promise((resolve, reject) => {
    const env = { ...process.env, ...opts.env };
    delete env.NODE_EXTRA_CA_CERTS;
    const child = spawn(cmd, args, { env, timeout: opts.timeoutMs ?? 60_000 });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr }));
    child.stdin.on('error', () => {}); // the child may exit without reading its input
    child.stdin.end(opts.input ?? '');
  });
}

export interface TestLab {
  name: string;
  socket: string;
  dir: string;
  hostAddress: string;
  outsideAddress: string;
  hostNetns: string;
  outsideNetns: string;
  /** runs `weft ARGS` against this lab's agent */
  weft(...args: string[]): Promise<Result>;
  /** like weft() but fails the test on a non-zero exit, returning stdout */
  ok(...args: string[]): Promise<string>;
  /** runs a command in the outside namespace */
  outside(cmd: string[]): Promise<Result>;
  /** runs a command in the lab host's namespace */
  host(cmd: string[]): Promise<Result>;
  /** runs a command in a container's namespace (by name) */
  inContainer(container: string, cmd: string[]): Promise<Result>;
  inspect(container: string): Promise<ContainerJson>;
  down(): Promise<void>;
}

export interface ContainerJson {
  id: string;
  name: string;
  netns: string;
  state: { phase: string; pid?: number; exitCode?: number; restartCount: number };
  networks: Record<string, { ipv4?: string; ipv6?: string; mac: string; hostIfname: string; ifname: string }>;
  ports: { hostIp: string; hostPort: number; containerPort: number; protocol: string }[];
}

export function uniqueName(prefix: string): string {
  return `${prefix}-${randomBytes(3).toString('hex')}`;
}

const live = new Set<string>();
process.on('exit', () => {
  // last resort if a test process is ended before its after() hook ran
  for (const name of live) {
    try {
      execFileSync(WEFT, ['lab', 'down', name], { stdio: 'ignore' });
    } catch {
      /* nothing more to do */
    }
  }
});

export async function makeLab(prefix = 't'): Promise<TestLab> {
  if (!existsSync(path.join(ROOT, 'dist/cli/main.js'))) throw new Error('dist/ is missing: run npm run build (scripts/test.sh does)');
  const name = uniqueName(prefix);
  live.add(name);
  const up = await sh(WEFT, ['lab', 'up', name]);
  if (up.code !== 0) {
    await sh(WEFT, ['lab', 'down', name]);
    throw new Error(`weft lab up ${name} failed: ${up.stderr}${up.stdout}`);
  }
  const info = JSON.parse((await sh(WEFT, ['lab', 'inspect', name, '--format', 'json'])).stdout);
  const env = { WEFT_HOST: `unix://${info.socket}` };
  const lab: TestLab = {
    name,
    socket: info.socket,
    dir: info.dir,
    hostAddress: info.hostAddress,
    outsideAddress: info.outsideAddress,
    hostNetns: info.hostNetns,
    outsideNetns: info.outsideNetns,
    weft: (...args) => sh(WEFT, args, { env }),
    async ok(...args) {
      const r = await sh(WEFT, args, { env });
      if (r.code !== 0) throw new Error(`weft ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
      return r.stdout;
    },
    outside: (cmd) => sh('ip', ['netns', 'exec', info.outsideNetns, ...cmd]),
    host: (cmd) => sh('ip', ['netns', 'exec', info.hostNetns, ...cmd]),
    async inContainer(container, cmd) {
      const c = await lab.inspect(container);
      return sh('ip', ['netns', 'exec', c.netns, ...cmd]);
    },
    async inspect(container) {
      const out = await lab.ok('inspect', '--type', 'container', container);
      return JSON.parse(out)[0] as ContainerJson;
    },
    async down() {
      await sh(WEFT, ['lab', 'down', name]);
      live.delete(name);
    },
  };
  return lab;
}

/** Polls fn until it returns a truthy value (or throws after timeoutMs). */
export async function eventually<T>(fn: () => Promise<T | undefined | false>, timeoutMs = 10_000, what = 'condition'): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < end) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
}

/** HTTP GET with busybox wget from a namespace; returns the body or undefined on failure. */
export async function httpGet(netns: string, url: string): Promise<string | undefined> {
  const r = await sh('ip', ['netns', 'exec', netns, 'busybox', 'wget', '-q', '-O', '-', url], { timeoutMs: 8000 });
  return r.code === 0 ? r.stdout : undefined;
}

export async function canPing(netns: string, addr: string): Promise<boolean> {
  const r = await sh('ip', ['netns', 'exec', netns, 'ping', '-c', '1', '-W', '1', addr]);
  return r.code === 0;
}
