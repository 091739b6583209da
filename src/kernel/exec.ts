/**
 * The one place that runs the kernel's tools (ip, nft, nsenter, sysctl...). Everything outside
 * src/kernel/ goes through the typed functions built on this.
 */
import { spawn } from 'node:child_process';
import { openSync, closeSync } from 'node:fs';
import os from 'node:os';

export class KernelError extends Error {
  constructor(
    message: string,
    readonly command: string,
    readonly exitCode: number | null,
    readonly stderr: string,
  ) {
    super(message);
    this.name = 'KernelError';
  }
}

export interface RunOptions {
  /** written to the child's stdin, then stdin is closed */
  input?: string;
  /** exit codes that are not errors (default [0]) */
  okCodes?: number[];
  env?: NodeJS.ProcessEnv;
  timeoutMs?: number;
}

export interface RunResult {
  stdout: string;
  stderr: string;
  code: number;
}

/** Child processes get no NODE_EXTRA_CA_CERTS: it costs every node start ~180 ms here. */
export function childEnv(extra?: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const env = { ...process.env, ...extra };
  delete env.NODE_EXTRA_CA_CERTS;
  return env;
}

/** WEFT_TRACE_KERNEL=1: every command and how long it took, on stderr (the agent's log). */
const trace = process.env.WEFT_TRACE_KERNEL === '1';

export function run(cmd: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  if (!trace) return runOnce(cmd, args, opts);
  const t0 = performance.now();
  const done = (): void => {
    process.stderr.write(`weft kernel: ${(performance.now() - t0).toFixed(1)} ms ${cmd} ${args.join(' ')}\n`);
  };
  const p = runOnce(cmd, args, opts);
  p.then(done, done);
  return p;
}

function runOnce(cmd: string, args: string[], opts: RunOptions): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: opts.env ?? childEnv(),
      timeout: opts.timeoutMs ?? 60_000,
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => err.push(d));
    child.on('error', (e) =>
      reject(new KernelError(`${cmd}: ${e.message}`, [cmd, ...args].join(' '), null, '')),
    );
    child.on('close', (code, signal) => {
      const stdout = Buffer.concat(out).toString();
      const stderr = Buffer.concat(err).toString();
      const ok = opts.okCodes ?? [0];
      if (code !== null && ok.includes(code)) return resolve({ stdout, stderr, code });
      const why = stderr.trim().split('\n').slice(-3).join('; ') || (signal ? `killed by ${signal}` : `exit ${code}`);
      reject(new KernelError(`${cmd} ${args.slice(0, 4).join(' ')}: ${why}`, [cmd, ...args].join(' '), code, stderr));
    });
    child.stdin.on('error', () => {}); // the child may exit before reading all input
    child.stdin.end(opts.input ?? '');
  });
}

/** Runs and parses JSON stdout (for `ip -j`, `nft -j`). Empty output parses as []. */
export async function runJSON<T>(cmd: string, args: string[], opts?: RunOptions): Promise<T> {
  const { stdout } = await run(cmd, args, opts);
  const text = stdout.trim();
  return (text ? JSON.parse(text) : []) as T;
}

/** Runs a command with the caller's terminal (stdin/stdout/stderr); resolves with its exit code. */
export function runInherit(cmd: string, args: string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: 'inherit', env: childEnv() });
    child.on('error', reject);
    child.on('close', (code, signal) => resolve(code ?? (signal ? 128 + (os.constants.signals[signal] ?? 9) : 1)));
  });
}

/** Starts a long-lived process in its own session, output appended to logFile; returns its PID. */
export function spawnDaemon(cmd: string, args: string[], logFile: string): number {
  const fd = openSync(logFile, 'a');
  try {
    const child = spawn(cmd, args, { detached: true, stdio: ['ignore', fd, fd], env: childEnv() });
    child.unref();
    if (!child.pid) throw new KernelError(`could not start ${cmd}`, [cmd, ...args].join(' '), null, '');
    return child.pid;
  } finally {
    closeSync(fd);
  }
}
