/**
 * Running a whole Node program inside a named network namespace. Node cannot setns itself, so
 * the program re-executes itself under `nsenter --net` — not `ip netns exec`, whose private mount
 * namespace would hide every netns the program later creates from the rest of the machine.
 */
import { spawn } from 'node:child_process';
import { statSync } from 'node:fs';
import { childEnv } from './exec.js';

/** Whether this process already lives in the named netns. */
export function inNetns(name: string): boolean {
  try {
    const mine = statSync('/proc/self/ns/net');
    const target = statSync(`/run/netns/${name}`);
    return mine.ino === target.ino && mine.dev === target.dev;
  } catch {
    return false;
  }
}

/** Re-runs this program (same argv) inside netns; resolves with the child's exit code. */
export function reexecInNetns(name: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn('nsenter', [`--net=/run/netns/${name}`, '--', process.execPath, ...process.execArgv, ...process.argv.slice(1)], {
      stdio: 'inherit',
      env: childEnv(),
    });
    const forward = (sig: NodeJS.Signals) => () => child.kill(sig);
    for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(sig, forward(sig));
    child.on('error', reject);
    child.on('exit', (code, signal) => resolve(code ?? (signal ? 128 + 15 : 1)));
  });
}
