/**
 * The weft side of the benches, in one place, written against the CLI contract (docker-like):
 *
 *   bin/weft lab up NAME | lab down NAME | lab env NAME (prints `export WEFT_HOST=unix:///...sock`)
 *   bin/weft lab inspect NAME --format json            -> {.dir} (or [{.dir}]); <dir>/agent.pid
 *   WEFT_HOST=... bin/weft network create --subnet CIDR NAME
 *   WEFT_HOST=... bin/weft run -d --name N --network NET sleep 3600
 *   WEFT_HOST=... bin/weft network connect NET N
 *   WEFT_HOST=... bin/weft rm -f N
 *   WEFT_HOST=... bin/weft inspect N --format json      -> [{.netns, .endpoints: {<netid>: {.ipv4}}}]
 *
 * When the CLI changes, only this file should need to.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { benchName, runSubdir } from '../lib/ns.js';
import { rssBytes, run, tryRun, type RunResult } from '../lib/proc.js';

export const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const WEFT_BIN = join(REPO_ROOT, 'bin', 'weft');

/** null when the weft CLI can run here, else why not. */
export async function weftAvailable(): Promise<string | null> {
  if (!existsSync(WEFT_BIN)) return `${WEFT_BIN} missing`;
  if (!existsSync(join(REPO_ROOT, 'dist', 'cli', 'main.js'))) return 'weft is not built (dist/cli/main.js missing: npm run build)';
  const r = await tryRun(WEFT_BIN, ['lab', '--help'], { timeoutMs: 15_000 });
  if (!r) return '`bin/weft lab --help` failed: the lab command is not there yet';
  return null;
}

export interface WeftContainer {
  netns: string;
  ipv4: string[];
}

function parseJson<T>(text: string, what: string): T {
  try {
    return JSON.parse(text) as T;
  } catch {
    throw new Error(`${what}: output is not JSON: ${text.trim().slice(0, 200)}`);
  }
}

export class WeftLab {
  readonly name: string;
  private host = '';
  private labDir = '';
  private upStarted = false;

  constructor(suffix = 'l') {
    this.name = benchName(suffix, 'link'); // short: weft may build link names from it
  }

  /** Runs the weft CLI against this lab's agent. */
  weft(args: string[], timeoutMs = 60_000): Promise<RunResult> {
    return run(WEFT_BIN, args, { timeoutMs, env: { WEFT_HOST: this.host || undefined } });
  }

  async up(): Promise<void> {
    // remember the lab for bench/cleanup.ts before it exists, in case we are killed half-way
    writeFileSync(join(runSubdir('weft'), `lab-${this.name}`), `${this.name}\n`);
    this.upStarted = true;
    await run(WEFT_BIN, ['lab', 'up', this.name], { timeoutMs: 120_000 });
    const env = (await run(WEFT_BIN, ['lab', 'env', this.name])).stdout;
    const m = /WEFT_HOST=["']?([^"'\s]+)/.exec(env);
    if (!m) throw new Error(`weft lab env ${this.name}: no WEFT_HOST in "${env.trim().slice(0, 200)}"`);
    this.host = m[1];
    const info = parseJson<{ dir?: string } | { dir?: string }[]>((await run(WEFT_BIN, ['lab', 'inspect', this.name, '--format', 'json'])).stdout, 'weft lab inspect');
    const dir = Array.isArray(info) ? info[0]?.dir : info.dir;
    if (!dir) throw new Error(`weft lab inspect ${this.name}: no .dir`);
    this.labDir = dir;
  }

  info(): string[] {
    return [`lab ${this.name}, WEFT_HOST=${this.host}, dir ${this.labDir}`];
  }

  // ---- timed operations: each returns the wall time of the weft CLI call in ms ----

  async networkCreate(name: string, subnet: string): Promise<number> {
    return (await this.weft(['network', 'create', '--subnet', subnet, name])).ms;
  }

  async networkRm(name: string): Promise<number> {
    return (await this.weft(['network', 'rm', name])).ms;
  }

  async runDetached(name: string, network: string): Promise<number> {
    return (await this.weft(['run', '-d', '--name', name, '--network', network, 'sleep', '3600'])).ms;
  }

  async networkConnect(network: string, name: string): Promise<number> {
    return (await this.weft(['network', 'connect', network, name])).ms;
  }

  async rmForce(name: string): Promise<number> {
    return (await this.weft(['rm', '-f', name])).ms;
  }

  // ---- queries ----

  async inspect(name: string): Promise<WeftContainer> {
    const j = parseJson<{ netns?: string; endpoints?: Record<string, { ipv4?: string }> }[]>(
      (await this.weft(['inspect', name, '--format', 'json'])).stdout,
      `weft inspect ${name}`,
    );
    const c = Array.isArray(j) ? j[0] : undefined;
    if (!c?.netns) throw new Error(`weft inspect ${name}: no .netns`);
    const ipv4 = Object.values(c.endpoints ?? {})
      .map((e) => e.ipv4?.split('/')[0])
      .filter((x): x is string => !!x);
    return { netns: c.netns, ipv4 };
  }

  agentPid(): number {
    const pid = Number(readFileSync(join(this.labDir, 'agent.pid'), 'utf8').trim());
    if (!Number.isInteger(pid) || pid <= 1) throw new Error(`no agent PID in ${this.labDir}/agent.pid`);
    return pid;
  }

  /** The agent's resident memory in bytes. */
  agentRss(): number {
    const r = rssBytes(this.agentPid());
    if (r === null) throw new Error('the weft agent is not running');
    return r;
  }

  /** `weft lab down` removes the lab host, its agent, containers and namespaces. Safe to call twice. */
  async down(): Promise<void> {
    if (!this.upStarted) return;
    this.upStarted = false;
    await run(WEFT_BIN, ['lab', 'down', this.name], { timeoutMs: 300_000 });
  }
}
