/**
 * The scratch network of bench/services.ts: one backend netns and any number of client netns on
 * its bridge. Every service ruleset lives in a client's netns (nat output hook: the client's own
 * connections are balanced), so each configuration has its ruleset to itself and the path after
 * the first packet is the same for all.
 *
 *   [weft-b-<id>-sb: bridge weft-b-<id>-br 10.88.0.1/24 + backends 10.88.0.101-110/24,
 *                    one svc-server.mjs on :8080 (writes the address it was reached at)]
 *        |  veth weft-b-<id>-pN <==> eth0
 *   [weft-b-<id>-cX: eth0 10.88.0.(10+N)/24, default via 10.88.0.1, the configuration's ruleset]
 *
 * Every link is made inside a bench netns (`ip -n SB link add ... peer name eth0 netns C`): the
 * root namespace never sees one. The server is ended by its PID; deleting the netns ends whatever
 * else runs there.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { benchName, netnsAdd, netnsDelete, runSubdir } from '../lib/ns.js';
import { killPid, run, startDetached, waitFor, type Detached } from '../lib/proc.js';
import { BACKEND_PORT, realBackend } from './svcrules.js';

const HERE = dirname(fileURLToPath(import.meta.url));
export const SERVER_JS = join(HERE, 'svc-server.mjs');
export const CLIENT_JS = join(HERE, 'svc-client.mjs');
export const GATEWAY = '10.88.0.1';
export const REAL_BACKENDS = 10;

export interface Client {
  ns: string;
  ip: string;
}

/** A fixture made by its first user (acquire) and removed when the last one releases it. */
export abstract class Shared {
  private users = 0;
  private upPromise: Promise<void> | null = null;

  protected abstract up(): Promise<void>;
  protected abstract down(): Promise<void>;

  async acquire(): Promise<void> {
    this.users++;
    this.upPromise ??= this.up();
    await this.upPromise;
  }

  async release(): Promise<void> {
    if (this.users > 0) this.users--;
    if (this.users === 0) await this.teardown();
  }

  /** Removes it now, whoever still holds it (also on failure). */
  async teardown(): Promise<void> {
    await this.down();
    this.upPromise = null;
  }
}

export class SvcNet extends Shared {
  readonly backendNs = benchName('sb', 'netns');
  private readonly bridge = benchName('br', 'link');
  private server: Detached | null = null;
  private clients: string[] = [];

  protected async up(): Promise<void> {
    const ns = this.backendNs;
    await netnsAdd(ns);
    const cmds = [
      `link add ${this.bridge} type bridge`,
      `addr add ${GATEWAY}/24 dev ${this.bridge}`,
      ...Array.from({ length: REAL_BACKENDS }, (_, j) => `addr add ${realBackend(j)}/24 dev ${this.bridge}`),
      `link set ${this.bridge} up`,
    ];
    await run('ip', ['-n', ns, '-batch', '-'], { input: `${cmds.join('\n')}\n` });
    const log = join(runSubdir('svc'), 'server.log');
    this.server = startDetached('ip', ['netns', 'exec', ns, process.execPath, SERVER_JS, String(BACKEND_PORT)], log);
    const server = this.server;
    await waitFor(
      'svc-server in the backend netns',
      async () => {
        if (!server.isRunning()) throw new Error(`svc-server exited: ${readFileSync(log, 'utf8').trim().slice(-300)}`);
        return readFileSync(log, 'utf8').includes('listening');
      },
      10_000,
      20,
    );
  }

  /** A client netns on the bridge at 10.88.0.(10 + n), 1 <= n <= 89. */
  async addClient(tag: string, n: number): Promise<Client> {
    const ns = benchName(`c${tag}`, 'netns');
    const port = benchName(`p${n}`, 'link');
    const ip = `10.88.0.${10 + n}`;
    this.clients.push(ns);
    await netnsAdd(ns);
    await run('ip', ['-n', this.backendNs, 'link', 'add', port, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
    await run('ip', ['-n', this.backendNs, 'link', 'set', port, 'master', this.bridge, 'up']);
    await run('ip', ['-n', ns, '-batch', '-'], { input: `addr add ${ip}/24 dev eth0\nlink set eth0 up\nroute add default via ${GATEWAY}\n` });
    return { ns, ip };
  }

  /** `count` extra /32 source addresses 10.89.x.y on a client (routed back through it); returns them. */
  async addSources(c: Client, count: number): Promise<string[]> {
    const addrs: string[] = [];
    for (let i = 0; addrs.length < count; i++) {
      const lo = i % 254;
      const hi = Math.floor(i / 254);
      if (hi > 255) throw new Error('at most 65,024 source addresses');
      addrs.push(`10.89.${hi}.${lo + 1}`);
    }
    await run('ip', ['-n', c.ns, '-batch', '-'], { input: addrs.map((a) => `addr add ${a}/32 dev eth0`).join('\n') + '\n' });
    await run('ip', ['-n', this.backendNs, 'route', 'add', '10.89.0.0/16', 'via', c.ip]);
    return addrs;
  }

  /** Runs svc-client.mjs in a netns and parses its JSON line. */
  async client<T>(ns: string, args: string[], timeoutMs = 120_000): Promise<T> {
    const r = await run('ip', ['netns', 'exec', ns, process.execPath, CLIENT_JS, ...args], { timeoutMs });
    const line = r.stdout.trim().split('\n').pop() ?? '';
    try {
      return JSON.parse(line) as T;
    } catch {
      throw new Error(`svc-client ${args[0]} in ${ns}: no JSON: ${(r.stdout + r.stderr).trim().slice(0, 300)}`);
    }
  }

  protected async down(): Promise<void> {
    if (this.server) await killPid(this.server.pid, 2000);
    this.server = null;
    for (const ns of this.clients.splice(0)) await netnsDelete(ns);
    await netnsDelete(this.backendNs);
  }
}
