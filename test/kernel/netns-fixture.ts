/**
 * Lab network namespaces for kernel tests. A fixture gives every namespace a unique prefix
 * (weft-t-<tag>-<random>-), records each one it makes and every process it starts, and removes
 * them all in cleanup(): processes first (by PID: the ones it started, then whatever else still runs
 * in its namespaces, found with `ip netns pids`), then the namespaces. Call cleanup() from `after`;
 * it also runs on process exit and on SIGINT/SIGTERM, so a crashed or interrupted run leaves nothing.
 *
 * Nothing here touches the root network namespace: links are created inside lab namespaces
 * (`ip -n NS link add ... peer name ... netns OTHER`), sysctls are set with `ip netns exec NS`.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { run, childEnv, type RunResult } from '../../src/kernel/exec.js';

export interface SpawnedProcess {
  pid: number;
  child: ChildProcess;
  /** everything written to stdout so far */
  output(): string;
  /** resolves when stdout contains `text` (rejects after timeoutMs or if the process exits first) */
  waitFor(text: string, timeoutMs?: number): Promise<void>;
}

const live = new Set<NetnsFixture>();
let exitHooked = false;

function hookExit(): void {
  if (exitHooked) return;
  exitHooked = true;
  process.once('exit', () => {
    for (const f of live) f.cleanupSync();
  });
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      for (const f of live) f.cleanupSync();
      process.exit(130);
    });
  }
}

export class NetnsFixture {
  /** every namespace name starts with this */
  readonly prefix: string;
  private readonly made: string[] = [];
  private readonly procs: SpawnedProcess[] = [];

  constructor(tag: string) {
    if (!/^[a-z0-9]{1,8}$/.test(tag)) throw new Error('tag: 1-8 characters of a-z 0-9');
    this.prefix = `weft-t-${tag}-${randomBytes(3).toString('hex')}-`;
    live.add(this);
    hookExit();
  }

  /** Creates namespace PREFIX+name with lo up; returns its full name. */
  async netns(name: string): Promise<string> {
    const ns = `${this.prefix}${name}`;
    await run('ip', ['netns', 'add', ns]);
    this.made.push(ns);
    await this.ip(ns, 'link', 'set', 'lo', 'up');
    return ns;
  }

  /** All namespaces this fixture has made (and not yet removed). */
  namespaces(): string[] {
    return [...this.made];
  }

  /** `ip -n NS ARGS...` */
  ip(ns: string, ...args: string[]): Promise<RunResult> {
    this.own(ns);
    return run('ip', ['-n', ns, ...args]);
  }

  /** Runs a command inside a namespace; okCodes as for run(). */
  exec(ns: string, cmd: string, args: string[], opts: { okCodes?: number[]; timeoutMs?: number; input?: string } = {}): Promise<RunResult> {
    this.own(ns);
    return run('ip', ['netns', 'exec', ns, cmd, ...args], { ...opts, env: childEnv() });
  }

  /** `sysctl -w key=value` inside a namespace. */
  async sysctl(ns: string, key: string, value: string | number): Promise<void> {
    await this.exec(ns, 'sysctl', ['-q', '-w', `${key}=${value}`]);
  }

  /** A veth pair: `a` in nsA, `b` in nsB, created inside nsA (never in the root namespace), both up. */
  async veth(nsA: string, a: string, nsB: string, b: string, opts: { macB?: string } = {}): Promise<void> {
    this.own(nsB);
    await this.ip(nsA, 'link', 'add', a, 'type', 'veth', 'peer', 'name', b, 'netns', nsB);
    if (opts.macB) await this.ip(nsB, 'link', 'set', b, 'address', opts.macB);
    await this.ip(nsA, 'link', 'set', a, 'up');
    await this.ip(nsB, 'link', 'set', b, 'up');
  }

  /** Starts a long-running process inside a namespace, recorded for cleanup. */
  spawn(ns: string, cmd: string, args: string[]): SpawnedProcess {
    this.own(ns);
    const child = spawn('ip', ['netns', 'exec', ns, cmd, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: childEnv() });
    if (child.pid === undefined) throw new Error(`could not start ${cmd}`);
    let out = '';
    let err = '';
    let exited = false;
    const waiters: (() => void)[] = [];
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      for (const w of waiters.splice(0)) w();
    });
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    child.on('exit', () => {
      exited = true;
      for (const w of waiters.splice(0)) w();
    });
    const p: SpawnedProcess = {
      pid: child.pid,
      child,
      output: () => out,
      waitFor: (text, timeoutMs = 5000) =>
        new Promise((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error(`${cmd} in ${ns}: no "${text}" after ${timeoutMs} ms; stdout: ${out} stderr: ${err}`)), timeoutMs);
          const check = () => {
            if (out.includes(text)) {
              clearTimeout(timer);
              resolve();
            } else if (exited) {
              clearTimeout(timer);
              reject(new Error(`${cmd} in ${ns} exited before "${text}"; stdout: ${out} stderr: ${err}`));
            } else waiters.push(check);
          };
          check();
        }),
    };
    this.procs.push(p);
    return p;
  }

  /** Ends one process this fixture started (SIGTERM, by PID). */
  kill(p: SpawnedProcess): void {
    if (p.child.exitCode === null && p.child.signalCode === null) {
      try {
        process.kill(p.pid, 'SIGTERM');
      } catch {
        /* already gone */
      }
    }
  }

  /** Removes everything: processes (by PID), then namespaces. Safe to call twice. */
  async cleanup(): Promise<void> {
    for (const p of this.procs.splice(0)) this.kill(p);
    const errors: string[] = [];
    for (const ns of this.made.splice(0).reverse()) {
      try {
        await this.killInside(ns);
        await run('ip', ['netns', 'del', ns]);
      } catch (e) {
        errors.push(`${ns}: ${(e as Error).message}`);
      }
    }
    live.delete(this);
    if (errors.length) throw new Error(`cleanup: ${errors.join('; ')}`);
  }

  /** The same, synchronously (for process exit). */
  cleanupSync(): void {
    for (const p of this.procs.splice(0)) this.kill(p);
    for (const ns of this.made.splice(0).reverse()) {
      try {
        const pids = execFileSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' }).split(/\s+/).filter(Boolean);
        for (const pid of pids) {
          try {
            process.kill(Number(pid), 'SIGKILL');
          } catch {
            /* gone */
          }
        }
        execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
      } catch {
        /* best effort on exit */
      }
    }
    live.delete(this);
  }

  private async killInside(ns: string): Promise<void> {
    for (let attempt = 0; attempt < 20; attempt++) {
      const { stdout } = await run('ip', ['netns', 'pids', ns]);
      const pids = stdout.split(/\s+/).filter(Boolean).map(Number);
      if (!pids.length) return;
      for (const pid of pids) {
        try {
          process.kill(pid, attempt < 5 ? 'SIGTERM' : 'SIGKILL');
        } catch {
          /* gone */
        }
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  private own(ns: string): void {
    if (!ns.startsWith(this.prefix) || !this.made.includes(ns)) {
      throw new Error(`netns fixture: ${ns} was not made by this fixture (prefix ${this.prefix})`);
    }
  }
}
