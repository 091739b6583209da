/**
 * Process helpers for the benches: run a command (optionally timed), start a detached daemon,
 * and end a process by its PID. Benches are not weft: they drive reference systems and the weft
 * CLI from the outside, so they spawn their own processes instead of going through src/kernel/.
 */
import { spawn } from 'node:child_process';
import { openSync, closeSync, readFileSync, readdirSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';

export interface RunOptions {
  /** written to stdin, then stdin is closed */
  input?: string;
  /** extra environment; NODE_EXTRA_CA_CERTS is always removed */
  env?: Record<string, string | undefined>;
  /** kill the child (SIGKILL) after this long; default 120 s */
  timeoutMs?: number;
  /** exit codes that count as success (default [0]) */
  okCodes?: number[];
}

export interface RunResult {
  stdout: string;
  stderr: string;
  code: number;
  /** wall time from spawn to exit, milliseconds */
  ms: number;
}

export class CommandError extends Error {
  constructor(
    message: string,
    readonly command: string,
    readonly code: number | null,
    readonly stdout: string,
    readonly stderr: string,
  ) {
    super(message);
    this.name = 'CommandError';
  }
}

/** The environment for every child: the machine's NODE_EXTRA_CA_CERTS costs each node start ~180 ms. */
export function childEnv(extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.NODE_EXTRA_CA_CERTS;
  for (const [k, v] of Object.entries(extra)) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  return env;
}

/** Runs a command to completion; rejects with CommandError on a bad exit code or timeout. */
export function run(cmd: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  const shown = [cmd, ...args].join(' ');
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], env: childEnv(opts.env) });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, opts.timeoutMs ?? 120_000);
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => err.push(d));
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(new CommandError(`${shown}: ${e.message}`, shown, null, '', ''));
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      const ms = performance.now() - t0;
      const stdout = Buffer.concat(out).toString();
      const stderr = Buffer.concat(err).toString();
      if (!timedOut && code !== null && (opts.okCodes ?? [0]).includes(code)) {
        resolve({ stdout, stderr, code, ms });
        return;
      }
      const why = timedOut
        ? `timed out after ${opts.timeoutMs ?? 120_000} ms`
        : stderr.trim().split('\n').slice(-3).join('; ') || stdout.trim().split('\n').slice(-2).join('; ') || `exit ${code}`;
      reject(new CommandError(`${shown.slice(0, 200)}: ${why}`, shown, code, stdout, stderr));
    });
    child.stdin.on('error', () => {}); // the child may exit before reading its input
    child.stdin.end(opts.input ?? '');
  });
}

/** Runs a command and returns only its wall time in milliseconds. */
export async function timed(cmd: string, args: string[], opts: RunOptions = {}): Promise<number> {
  return (await run(cmd, args, opts)).ms;
}

/** Runs a command; never rejects (for cleanup paths). */
export async function tryRun(cmd: string, args: string[], opts: RunOptions = {}): Promise<RunResult | null> {
  try {
    return await run(cmd, args, opts);
  } catch {
    return null;
  }
}

export interface Detached {
  pid: number;
  /** resolves with the exit code (or null when killed by a signal) */
  exited: Promise<number | null>;
  isRunning(): boolean;
}

/**
 * Starts a long-running process in its own session (setsid), stdout and stderr appended to logFile.
 * The caller must end it with killPid(d.pid).
 */
export function startDetached(cmd: string, args: string[], logFile: string, env: Record<string, string | undefined> = {}): Detached {
  const fd = openSync(logFile, 'a');
  try {
    const child = spawn(cmd, args, { detached: true, stdio: ['ignore', fd, fd], env: childEnv(env) });
    let running = true;
    const exited = new Promise<number | null>((resolve) => {
      child.on('exit', (code) => {
        running = false;
        resolve(code);
      });
      child.on('error', () => {
        running = false;
        resolve(null);
      });
    });
    if (child.pid === undefined) throw new Error(`could not start ${cmd}`);
    child.unref();
    return { pid: child.pid, exited, isRunning: () => running };
  } finally {
    closeSync(fd);
  }
}

/** True while /proc/PID exists and is not a zombie. */
export function pidAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

/** Sends SIGTERM to one PID, waits up to graceMs, then SIGKILL. Never by name. */
export async function killPid(pid: number, graceMs = 5000): Promise<void> {
  if (!Number.isInteger(pid) || pid <= 1 || pid === process.pid) return;
  if (!pidAlive(pid)) return;
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline) {
    if (!pidAlive(pid)) return;
    await sleep(50);
  }
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    return;
  }
  for (let i = 0; i < 40 && pidAlive(pid); i++) await sleep(50);
}

/** Resident set size of a process in bytes (VmRSS), or null when it is gone. */
export function rssBytes(pid: number): number | null {
  try {
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}

/** All descendants of a process (children, grandchildren, ...), from /proc/PID/task/TID/children. */
export function descendants(pid: number): number[] {
  const out: number[] = [];
  const todo = [pid];
  while (todo.length) {
    const p = todo.pop() as number;
    let tasks: string[] = [];
    try {
      tasks = readdirSync(`/proc/${p}/task`);
    } catch {
      continue;
    }
    for (const t of tasks) {
      let kids = '';
      try {
        kids = readFileSync(`/proc/${p}/task/${t}/children`, 'utf8');
      } catch {
        continue;
      }
      for (const k of kids.split(/\s+/).filter(Boolean).map(Number)) {
        if (!out.includes(k)) {
          out.push(k);
          todo.push(k);
        }
      }
    }
  }
  return out;
}

/** The command name of a process (/proc/PID/comm), or null. */
export function pidComm(pid: number): string | null {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return null;
  }
}

/** Polls fn until it returns a truthy value or timeoutMs passes. */
export async function waitFor<T>(what: string, fn: () => Promise<T | null | undefined | false>, timeoutMs: number, stepMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    await sleep(stepMs);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last instanceof Error ? `: ${last.message}` : ''}`);
}
