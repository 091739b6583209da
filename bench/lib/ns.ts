/**
 * Names and scratch space for one bench run, and network namespaces.
 *
 * Every netns, link and temp dir a bench makes is named `weft-b-<run id>-...`, and all temp files
 * of a run live under /tmp/weft-b-<run id>/, which holds `owner.pid` (the bench's PID). That lets
 * bench/cleanup.ts remove the leftovers of a run that was killed, and only of runs whose owner
 * is gone.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { descendants, killPid, run, tryRun } from './proc.js';

export const NAME_PREFIX = 'weft-b-';
export const RUN_ID = randomBytes(2).toString('hex');
export const RUN_PREFIX = `${NAME_PREFIX}${RUN_ID}`;
export const RUN_DIR = `/tmp/${RUN_PREFIX}`;

/** `weft-b-<id>-<suffix>`; links are limited to 15 characters by the kernel. */
export function benchName(suffix: string, kind: 'netns' | 'link' | 'other' = 'other'): string {
  const n = `${RUN_PREFIX}-${suffix}`;
  if (kind === 'link' && n.length > 15) throw new Error(`link name ${n} is longer than 15 characters`);
  return n;
}

/** Creates the run directory with its owner.pid (once). */
export function ensureRunDir(): void {
  if (!existsSync(RUN_DIR)) {
    mkdirSync(RUN_DIR, { recursive: true, mode: 0o755 });
    writeFileSync(join(RUN_DIR, 'owner.pid'), `${process.pid}\n`);
  }
}

/** Returns a fresh subdirectory of the run directory. */
export function runSubdir(sub: string): string {
  ensureRunDir();
  const d = join(RUN_DIR, sub);
  mkdirSync(d, { recursive: true });
  return d;
}

/** Removes the run directory (last step of a run). */
export function removeRunDir(): void {
  rmSync(RUN_DIR, { recursive: true, force: true });
}

export async function netnsAdd(name: string): Promise<void> {
  if (!name.startsWith(NAME_PREFIX)) throw new Error(`refusing to create netns ${name}: no ${NAME_PREFIX} prefix`);
  ensureRunDir(); // so that bench/cleanup.ts can tell whose netns this is
  await run('ip', ['netns', 'add', name]);
  await run('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
}

export function netnsExists(name: string): boolean {
  return existsSync(`/run/netns/${name}`);
}

/** The PIDs of processes whose network namespace is the named one. */
export async function netnsPids(name: string): Promise<number[]> {
  const r = await tryRun('ip', ['netns', 'pids', name]);
  if (!r) return [];
  return r.stdout.split(/\s+/).filter(Boolean).map(Number).filter((p) => Number.isInteger(p) && p > 1);
}

/** Ends every process inside the netns by PID, then deletes it. Safe to call twice. */
export async function netnsDelete(name: string, graceMs = 3000): Promise<void> {
  if (!name.startsWith(NAME_PREFIX)) throw new Error(`refusing to delete netns ${name}: no ${NAME_PREFIX} prefix`);
  if (!netnsExists(name)) return;
  // processes started from inside (e.g. container processes under a shim) may sit in other
  // namespaces: end them too, after their parents
  const orphans = new Set<number>();
  for (let round = 0; round < 3; round++) {
    const pids = await netnsPids(name);
    if (pids.length === 0) break;
    for (const p of pids) for (const d of descendants(p)) orphans.add(d);
    await Promise.all(pids.map((p) => killPid(p, graceMs)));
  }
  await Promise.all([...orphans].map((p) => killPid(p, graceMs)));
  await tryRun('ip', ['netns', 'del', name]);
}

/** Names of all netns that carry the bench prefix (for checks and leftover cleanup). */
export function benchNetns(): string[] {
  if (!existsSync('/run/netns')) return [];
  return readdirSync('/run/netns').filter((n) => n.startsWith(NAME_PREFIX));
}
