/**
 * The weft side of the benches, in one place. Two ways to drive the same agent:
 *
 * - `cli` (what a user sees): the docker-like CLI, one `bin/weft` process per operation (its node
 *   start-up, ~60-80 ms, included):
 *     bin/weft lab up NAME | lab down NAME | lab env NAME (prints `export WEFT_HOST=unix:///...sock`)
 *     bin/weft lab inspect NAME --format json          -> {.dir, .socket, .agentPid, .hostNetns, .outsideNetns}
 *     WEFT_HOST=... bin/weft network create --subnet CIDR NAME
 *     WEFT_HOST=... bin/weft run -d --name N --network NET sleep 3600
 *     WEFT_HOST=... bin/weft network connect NET N
 *     WEFT_HOST=... bin/weft rm -f N
 *     WEFT_HOST=... bin/weft inspect N --format json    -> [{.netns, .networks: {<net name>: {.ipv4}}, .endpoints: {<net id>: {.ipv4}}}]
 * - `api` (the agent's work alone): the same operations as one HTTP request each, from the bench
 *   process to the agent's unix socket (a fresh connection per request, like the CLI):
 *     POST /v1/networks {name, subnets: [{subnet}]}      DELETE /v1/networks/NET
 *     POST /v1/containers {name, cmd, network, start}   DELETE /v1/containers/N?force=1
 *     POST /v1/networks/NET/connect {container}         GET /v1/containers/N, GET /v1/info
 *
 * The lab itself is always made and removed with the CLI (`lab up`, `lab down`), untimed.
 * When the CLI or the API changes, only this file should need to.
 */
import http from 'node:http';
import { cpSync, existsSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { benchName, runSubdir } from '../lib/ns.js';
import { pidAlive, rssBytes, run, tryRun, type RunResult } from '../lib/proc.js';

export const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
/** The repository's CLI (availability check, bench/cleanup.ts). The benches run a snapshot of it: see weftBuild(). */
export const WEFT_BIN = join(REPO_ROOT, 'bin', 'weft');

interface WeftBuild {
  /** the CLI the labs of this run use */
  bin: string;
  /** which build that is, for the report */
  describe: string;
}
let build: WeftBuild | null = null;

/**
 * The weft build this run uses, taken once: a copy of bin/, dist/ and package.json in the run's
 * temp dir (node_modules linked), so that a `npm run build` elsewhere while a bench runs cannot
 * break a CLI call half-way or change the code between configurations. The labs' agents start from
 * the copy too (the lab runs `../cli/main.js` next to itself). WEFT_BENCH_LIVE=1 uses the tree as is.
 */
async function weftBuild(): Promise<WeftBuild> {
  if (build) return build;
  const head = (await tryRun('git', ['-C', REPO_ROOT, 'rev-parse', '--short', 'HEAD']))?.stdout.trim() || '?';
  // --no-optional-locks: never take the index lock (other sessions commit meanwhile)
  const dirty = (await tryRun('git', ['--no-optional-locks', '-C', REPO_ROOT, 'status', '--porcelain', '--untracked-files=no', '--', 'src']))?.stdout.trim()
    ? ' (src/ modified)'
    : '';
  const built = statSync(join(REPO_ROOT, 'dist', 'cli', 'main.js')).mtime.toISOString().slice(0, 19).replace('T', ' ');
  if (process.env.WEFT_BENCH_LIVE === '1') {
    build = { bin: WEFT_BIN, describe: `HEAD ${head}${dirty}, dist built ${built} UTC, run live from the tree` };
    return build;
  }
  const root = runSubdir('weft-build');
  for (const d of ['bin', 'dist']) cpSync(join(REPO_ROOT, d), join(root, d), { recursive: true });
  cpSync(join(REPO_ROOT, 'package.json'), join(root, 'package.json'));
  symlinkSync(join(REPO_ROOT, 'node_modules'), join(root, 'node_modules'));
  build = { bin: join(root, 'bin', 'weft'), describe: `HEAD ${head}${dirty}, dist built ${built} UTC, run from a copy taken at start (${root})` };
  return build;
}

/** null when the weft CLI can run here, else why not. */
export async function weftAvailable(): Promise<string | null> {
  if (!existsSync(WEFT_BIN)) return `${WEFT_BIN} missing`;
  if (!existsSync(join(REPO_ROOT, 'dist', 'cli', 'main.js'))) return 'weft is not built (dist/cli/main.js missing: npm run build)';
  const r = await tryRun(WEFT_BIN, ['lab', '--help'], { timeoutMs: 15_000 });
  if (!r) return '`bin/weft lab --help` failed: the lab command is not there yet';
  return null;
}

export type WeftMode = 'cli' | 'api';

export interface WeftContainer {
  netns: string;
  ipv4: string[];
}

interface ContainerJson {
  netns?: string;
  networks?: Record<string, { ipv4?: string }>;
  endpoints?: Record<string, { ipv4?: string }>;
}

interface LabJson {
  dir?: string;
  socket?: string;
  agentPid?: number;
  hostNetns?: string;
  outsideNetns?: string;
}

function parseJson<T>(text: string, what: string): T {
  try {
    return JSON.parse(text) as T;
  } catch {
    throw new Error(`${what}: output is not JSON: ${text.trim().slice(0, 200)}`);
  }
}

export interface ApiResult {
  status: number;
  body: string;
  /** wall time from the request's start to the end of the response, milliseconds */
  ms: number;
}

/** One HTTP request to a unix socket, a fresh connection each time; rejects on status >= 400. */
export function apiRequest(socketPath: string, method: string, path: string, body?: unknown, timeoutMs = 60_000): Promise<ApiResult> {
  const payload = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const req = http.request(
      {
        socketPath,
        method,
        path,
        agent: false,
        headers: payload === undefined ? {} : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) },
        timeout: timeoutMs,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const ms = performance.now() - t0;
          const text = Buffer.concat(chunks).toString();
          const status = res.statusCode ?? 0;
          if (status >= 400) {
            let msg = text.trim().slice(0, 300);
            try {
              msg = (JSON.parse(text) as { message?: string }).message ?? msg;
            } catch {
              /* not JSON */
            }
            reject(new Error(`${method} ${path}: ${status}: ${msg}`));
            return;
          }
          resolve({ status, body: text, ms });
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${method} ${path}: timed out after ${timeoutMs} ms`)));
    req.on('error', (e) => reject(new Error(`${method} ${path}: ${e.message}`)));
    req.end(payload);
  });
}

export class WeftLab {
  readonly name: string;
  readonly mode: WeftMode;
  private host = '';
  private socket = '';
  private labDir = '';
  private hostNetns = '';
  private outsideNetns = '';
  private pid = 0;
  private nodeId = '';
  private upStarted = false;
  private bin = WEFT_BIN;
  private build = '';

  constructor(suffix = 'l', mode: WeftMode = 'cli') {
    this.name = benchName(suffix, 'link'); // short: weft may build link names from it
    this.mode = mode;
  }

  /** Runs the weft CLI against this lab's agent. */
  weft(args: string[], timeoutMs = 60_000): Promise<RunResult> {
    return run(this.bin, args, { timeoutMs, env: { WEFT_HOST: this.host || undefined } });
  }

  /** One request to this lab's agent. */
  api(method: string, path: string, body?: unknown, timeoutMs = 60_000): Promise<ApiResult> {
    return apiRequest(this.socket, method, path, body, timeoutMs);
  }

  async up(): Promise<void> {
    // remember the lab for bench/cleanup.ts before it exists, in case we are killed half-way
    writeFileSync(join(runSubdir('weft'), `lab-${this.name}`), `${this.name}\n`);
    const b = await weftBuild();
    this.bin = b.bin;
    this.build = b.describe;
    this.upStarted = true;
    await run(this.bin, ['lab', 'up', this.name], { timeoutMs: 120_000 });
    const env = (await run(this.bin, ['lab', 'env', this.name])).stdout;
    const m = /WEFT_HOST=["']?([^"'\s]+)/.exec(env);
    if (!m) throw new Error(`weft lab env ${this.name}: no WEFT_HOST in "${env.trim().slice(0, 200)}"`);
    this.host = m[1];
    const info = parseJson<LabJson | LabJson[]>((await run(this.bin, ['lab', 'inspect', this.name, '--format', 'json'])).stdout, 'weft lab inspect');
    const lab = Array.isArray(info) ? info[0] : info;
    if (!lab?.dir) throw new Error(`weft lab inspect ${this.name}: no .dir`);
    this.labDir = lab.dir;
    this.hostNetns = lab.hostNetns ?? '';
    this.outsideNetns = lab.outsideNetns ?? '';
    this.socket = lab.socket ?? this.host.replace(/^unix:\/\//, '');
    this.pid = typeof lab.agentPid === 'number' ? lab.agentPid : 0;
    // the node id names the container netns (weft-<node id>-<container>): needed for the leftover check
    const sys = parseJson<{ nodeId?: string }>((await this.api('GET', '/v1/info')).body, 'GET /v1/info');
    this.nodeId = sys.nodeId ?? '';
  }

  info(): string[] {
    const how =
      this.mode === 'cli'
        ? 'timed: one `bin/weft` CLI process per operation'
        : 'timed: one HTTP request per operation from the bench process to the agent socket (no CLI)';
    return [`lab ${this.name}, WEFT_HOST=${this.host}, dir ${this.labDir}, agent pid ${this.pid || '?'}, node id ${this.nodeId}; ${how}`, `weft ${this.build}`];
  }

  // ---- timed operations: each returns the wall time in ms of the CLI call (cli) or of the request (api) ----

  async networkCreate(name: string, subnet: string): Promise<number> {
    if (this.mode === 'api') return (await this.api('POST', '/v1/networks', { name, subnets: [{ subnet }] })).ms;
    return (await this.weft(['network', 'create', '--subnet', subnet, name])).ms;
  }

  async networkRm(name: string): Promise<number> {
    if (this.mode === 'api') return (await this.api('DELETE', `/v1/networks/${encodeURIComponent(name)}`)).ms;
    return (await this.weft(['network', 'rm', name])).ms;
  }

  async runDetached(name: string, network: string): Promise<number> {
    if (this.mode === 'api') return (await this.api('POST', '/v1/containers', { name, cmd: ['sleep', '3600'], network, start: true })).ms;
    return (await this.weft(['run', '-d', '--name', name, '--network', network, 'sleep', '3600'])).ms;
  }

  async networkConnect(network: string, name: string): Promise<number> {
    if (this.mode === 'api') return (await this.api('POST', `/v1/networks/${encodeURIComponent(network)}/connect`, { container: name })).ms;
    return (await this.weft(['network', 'connect', network, name])).ms;
  }

  async rmForce(name: string): Promise<number> {
    if (this.mode === 'api') return (await this.api('DELETE', `/v1/containers/${encodeURIComponent(name)}?force=1`)).ms;
    return (await this.weft(['rm', '-f', name])).ms;
  }

  // ---- queries ----

  async inspect(name: string): Promise<WeftContainer> {
    let c: ContainerJson | undefined;
    if (this.mode === 'api') {
      c = parseJson<ContainerJson>((await this.api('GET', `/v1/containers/${encodeURIComponent(name)}`)).body, `GET /v1/containers/${name}`);
    } else {
      const j = parseJson<ContainerJson[]>((await this.weft(['inspect', name, '--format', 'json'])).stdout, `weft inspect ${name}`);
      c = Array.isArray(j) ? j[0] : undefined;
    }
    if (!c?.netns) throw new Error(`weft inspect ${name}: no .netns`);
    const ipv4 = Object.values(c.networks ?? c.endpoints ?? {})
      .map((e) => e.ipv4?.split('/')[0])
      .filter((x): x is string => !!x);
    return { netns: c.netns, ipv4 };
  }

  agentPid(): number {
    if (this.pid > 1) return this.pid;
    const pid = Number(readFileSync(join(this.labDir, 'agent.pid'), 'utf8').trim());
    if (!Number.isInteger(pid) || pid <= 1) throw new Error(`no agent PID in ${this.labDir}/agent.pid`);
    this.pid = pid;
    return pid;
  }

  /** The agent's resident memory in bytes. */
  agentRss(): number {
    const r = rssBytes(this.agentPid());
    if (r === null) throw new Error('the weft agent is not running');
    return r;
  }

  /** What this lab would leave behind if `lab down` missed something: its netns, container netns, folder, agent. */
  leftovers(): string[] {
    const left: string[] = [];
    const names = existsSync('/run/netns') ? readdirSync('/run/netns') : [];
    const mine = (n: string): boolean =>
      n === this.hostNetns || n === this.outsideNetns || n.startsWith(`weft-lab-${this.name}`) || (this.nodeId !== '' && n.startsWith(`weft-${this.nodeId}-`));
    for (const n of names) if (mine(n)) left.push(`netns ${n} (weft lab ${this.name})`);
    if (this.labDir && existsSync(this.labDir)) left.push(`dir ${this.labDir}`);
    if (this.pid > 1 && pidAlive(this.pid)) left.push(`weft agent pid ${this.pid}`);
    return left;
  }

  /** `weft lab down` removes the lab host, its agent, containers and namespaces. Safe to call twice. */
  async down(): Promise<void> {
    if (!this.upStarted) return;
    this.upStarted = false;
    await run(this.bin, ['lab', 'down', this.name], { timeoutMs: 300_000 });
  }
}
