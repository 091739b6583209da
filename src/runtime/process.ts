/**
 * A container's main process: started in its own directory, which holds its logs and the file
 * its exit code is written to, so that an agent restarted after a crash still knows both.
 *
 *   DIR/stdout.log  DIR/stderr.log  the command's output, appended across restarts
 *   DIR/exit-code   the exit status, written by the shim when the command ends (see
 *                   src/kernel/process.ts); empty or missing while it runs or if the shim was
 *                   SIGKILLed (read as 137), 125 if it never started
 */
import { mkdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import {
  COMMAND_FORWARDED_SIGNALS,
  GROUP_FORWARDED_SIGNALS,
  groupAlive,
  processAlive,
  readProcStat,
  signalGroup,
  signalProcess,
  spawnContainerProcess,
  type ProcessIdentity,
} from '../kernel/process.js';

export type { ProcessIdentity } from '../kernel/process.js';
export { processAlive } from '../kernel/process.js';

export const STDOUT_LOG = 'stdout.log';
export const STDERR_LOG = 'stderr.log';
export const EXIT_CODE_FILE = 'exit-code';
/** What a process killed by SIGKILL exits with (128 + 9), as Docker reports it. */
export const KILLED_EXIT_CODE = 137;

export interface ProcessSpec {
  /** a named netns; absent: the agent's own (network mode host) */
  netns?: string;
  /** needs netns */
  hostname?: string;
  cmd: string[];
  /** NAME=VALUE, exactly what the process gets (plus PATH if absent) */
  env: string[];
  /** absolute; default / */
  workdir?: string;
}

export interface ProcessPaths {
  stdout: string;
  stderr: string;
  exitCode: string;
}

export function processPaths(dir: string): ProcessPaths {
  return { stdout: join(dir, STDOUT_LOG), stderr: join(dir, STDERR_LOG), exitCode: join(dir, EXIT_CODE_FILE) };
}

/** Starts the process detached; it outlives the agent. Creates dir; logs are appended to. */
export async function startProcess(dir: string, spec: ProcessSpec): Promise<ProcessIdentity> {
  await mkdir(dir, { recursive: true, mode: 0o750 });
  const paths = processPaths(dir);
  await rm(paths.exitCode, { force: true });
  return spawnContainerProcess({ ...spec, stdoutPath: paths.stdout, stderrPath: paths.stderr, exitPath: paths.exitCode });
}

/**
 * The exit status the shim recorded, or undefined if none (still running, or the shim was
 * SIGKILLed). Meaningful once the process is no longer alive.
 */
export async function readExitCode(dir: string): Promise<number | undefined> {
  let text: string;
  try {
    text = await readFile(processPaths(dir).exitCode, 'utf8');
  } catch {
    return undefined;
  }
  const t = text.trim();
  return /^\d{1,3}$/.test(t) ? Number(t) : undefined;
}

/** For a process that is gone: its recorded status, or 137 when nothing was recorded (SIGKILL). */
export async function finalExitCode(dir: string): Promise<number> {
  return (await readExitCode(dir)) ?? KILLED_EXIT_CODE;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Sleeps ms, or less if signal aborts. */
function sleepUnlessAborted(ms: number, signal?: AbortSignal): Promise<void> {
  if (!signal) return sleep(ms);
  return new Promise<void>((resolve) => {
    if (signal.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done);
  });
}

/**
 * Resolves true once the process has exited (then its exit code is on disk), false if signal
 * aborted first. Polls /proc, starting at 10 ms and backing off to 200 ms.
 */
export async function waitForExit(pid: number, pidStart: number, signal?: AbortSignal): Promise<boolean> {
  let interval = 10;
  while (processAlive(pid, pidStart)) {
    if (signal?.aborted) return false;
    await sleepUnlessAborted(interval, signal);
    interval = Math.min(interval * 2, 200);
  }
  return true;
}

/** Whether pid now names some other process than the one started at pidStart. */
function pidReused(pid: number, pidStart: number): boolean {
  const st = readProcStat(pid);
  return st !== undefined && st.startTime !== pidStart;
}

async function waitGroupGone(pgid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  let interval = 10;
  while (groupAlive(pgid)) {
    const left = deadline - Date.now();
    if (left <= 0) return false;
    await sleep(Math.min(interval, left));
    interval = Math.min(interval * 2, 100);
  }
  return true;
}

export type StopResult = 'not-running' | 'stopped' | 'killed';

/**
 * Stops a container process: SIGTERM to its group (through the shim, which passes it on once to
 * every member), up to timeoutMs for them to exit, then SIGKILL to the group. Resolves when no
 * process of the group is left. A pid now used by another process is left alone.
 */
export async function stopProcess(pid: number, pidStart: number, timeoutMs: number): Promise<StopResult> {
  if (pidReused(pid, pidStart) || !groupAlive(pid)) return 'not-running';
  // The leader is the shim: it forwards TERM to the whole group exactly once. If it is gone
  // (group members outlived it), signal the group directly.
  if (processAlive(pid, pidStart)) signalProcess(pid, 'SIGTERM');
  else signalGroup(pid, 'SIGTERM');
  if (await waitGroupGone(pid, timeoutMs)) return 'stopped';
  signalGroup(pid, 'SIGKILL');
  if (!(await waitGroupGone(pid, 10_000))) {
    throw new Error(`process group ${pid} still has live processes 10 s after SIGKILL (stuck in the kernel?)`);
  }
  return 'killed';
}

/**
 * Sends a signal to a running container (`weft kill`). SIGKILL, SIGSTOP and SIGCONT go to the
 * whole group; TERM, INT and QUIT to the shim, which passes them on once to the group; HUP, USR1,
 * USR2 and WINCH to the shim, which passes them on to the command. Returns false if the process
 * is not running.
 */
export function killProcess(pid: number, pidStart: number, signal: NodeJS.Signals): boolean {
  if (!processAlive(pid, pidStart)) return false;
  if (signal === 'SIGKILL' || signal === 'SIGSTOP' || signal === 'SIGCONT') {
    signalGroup(pid, signal);
  } else if (GROUP_FORWARDED_SIGNALS.includes(signal) || COMMAND_FORWARDED_SIGNALS.includes(signal)) {
    signalProcess(pid, signal);
  } else {
    const ok = ['SIGKILL', 'SIGSTOP', 'SIGCONT', ...GROUP_FORWARDED_SIGNALS, ...COMMAND_FORWARDED_SIGNALS];
    throw new Error(`signal ${signal}: cannot be sent to a container; use one of ${ok.join(', ')}`);
  }
  return true;
}
