/**
 * Removes what a killed bench run left behind: its weft labs, dockerd and every process in its
 * namespaces (by PID), its `weft-b-<id>-*` netns, the global Docker paths that run created, and
 * /tmp/weft-b-<id>/. Runs whose owner (the PID in owner.pid) is still alive are left alone.
 *
 *   env -u NODE_EXTRA_CA_CERTS npx tsx bench/cleanup.ts [--dry-run]
 */
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { benchNetns, NAME_PREFIX, netnsDelete } from './lib/ns.js';
import { killPid, pidAlive, tryRun } from './lib/proc.js';
import { WEFT_BIN } from './refs/weft.js';

const dryRun = process.argv.includes('--dry-run');
const say = (s: string): void => {
  process.stdout.write(`${s}\n`);
};

const ID = /^weft-b-([0-9a-f]{4})(?:-|$)/;
const ids = new Set<string>();
for (const n of benchNetns()) {
  const m = ID.exec(n);
  if (m) ids.add(m[1]);
}
for (const d of readdirSync('/tmp')) {
  const m = ID.exec(d);
  if (m && d === `${NAME_PREFIX}${m[1]}`) ids.add(m[1]);
}
// weft labs of bench runs (weft-b-<id>-l, -a) live in weft's own lab folder, their netns are weft-lab-<name>
const LAB_ROOT = process.env.WEFT_LAB_DIR ?? '/tmp/weft-labs';
const labsOnDisk = existsSync(LAB_ROOT) ? readdirSync(LAB_ROOT).filter((d) => ID.test(d)) : [];
for (const d of labsOnDisk) ids.add((ID.exec(d) as RegExpExecArray)[1]);

function readText(p: string): string {
  try {
    return readFileSync(p, 'utf8').trim();
  } catch {
    return '';
  }
}

let removed = 0;
for (const id of ids) {
  const dir = `/tmp/${NAME_PREFIX}${id}`;
  const owner = Number(readText(join(dir, 'owner.pid')));
  if (Number.isInteger(owner) && owner > 1 && pidAlive(owner)) {
    say(`run ${id}: owner ${owner} is alive, left alone`);
    continue;
  }
  say(`run ${id}: cleaning${dryRun ? ' (dry run)' : ''}`);
  const globals: string[] = [];
  const labs = new Set(labsOnDisk.filter((d) => d.startsWith(`${NAME_PREFIX}${id}-`)));
  const labDir = join(dir, 'weft');
  for (const f of existsSync(labDir) ? readdirSync(labDir) : []) labs.add(readText(join(labDir, f)));
  for (const lab of labs) {
    say(`  weft lab down ${lab}`);
    if (!dryRun && lab.startsWith(`${NAME_PREFIX}${id}-`)) await tryRun(WEFT_BIN, ['lab', 'down', lab], { timeoutMs: 300_000 });
  }
  if (existsSync(dir)) {
    for (const sub of readdirSync(dir).filter((s) => s.startsWith('docker-'))) {
      const pid = Number(readText(join(dir, sub, 'dockerd.pid')));
      if (Number.isInteger(pid) && pid > 1 && pidAlive(pid)) {
        say(`  kill dockerd ${pid}`);
        if (!dryRun) await killPid(pid, 15_000);
      }
      try {
        globals.push(...(JSON.parse(readText(join(dir, sub, 'globals-created.json')) || '[]') as string[]));
      } catch {
        /* no record */
      }
    }
  }
  for (const ns of benchNetns().filter((n) => n.startsWith(`${NAME_PREFIX}${id}-`))) {
    say(`  netns ${ns}: end its processes by PID, delete`);
    if (!dryRun) await netnsDelete(ns);
  }
  for (const g of globals.filter((p) => existsSync(p))) {
    say(`  rm -rf ${g}`);
    if (!dryRun) rmSync(g, { recursive: true, force: true });
  }
  if (existsSync(dir)) {
    say(`  rm -rf ${dir}`);
    if (!dryRun) rmSync(dir, { recursive: true, force: true });
  }
  removed++;
}
say(removed ? `${removed} run(s) cleaned` : 'nothing to clean');
