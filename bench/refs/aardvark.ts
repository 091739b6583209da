/**
 * Reference: aardvark-dns (Debian aardvark-dns 1.4), the DNS server netavark starts for podman's
 * user-defined networks, run by hand the way netavark runs it:
 *
 *   ip netns exec weft-b-<id>-aah /usr/lib/podman/aardvark-dns --config DIR -p 53 run
 *
 * DIR holds one file per network (aardvark-dns's config.md): the first line lists the addresses to
 * listen on (the bridge's gateway), then one line per container
 * `<64-hex id> <ipv4,...> <ipv6,...> <name,alias,...>`. aardvark-dns answers a query only with the
 * names of the networks the *source address* is on, so the client's address is listed as a
 * container too. `run` forks: the parent exits once the child serves, and the child writes its PID
 * to DIR/aardvark.pid, by which it is ended (and whatever is left in the netns goes with it).
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runSubdir } from '../lib/ns.js';
import { killPid, pidAlive, run, startDetached, waitFor } from '../lib/proc.js';

export const AARDVARK = ['/usr/lib/podman/aardvark-dns', '/usr/libexec/podman/aardvark-dns'].find((p) => existsSync(p)) ?? '/usr/lib/podman/aardvark-dns';

export async function aardvarkAvailable(): Promise<string | null> {
  if (!existsSync(AARDVARK)) return `${AARDVARK} missing (apt-get install aardvark-dns)`;
  return null;
}

const containerId = (name: string): string => createHash('sha256').update(`weft-bench-${name}`).digest('hex');

export class AardvarkRef {
  readonly dir = runSubdir('aardvark');
  readonly configDir = join(this.dir, 'config');
  private serverPid = 0;
  version = '';

  /**
   * Starts aardvark-dns in netns `ns`, listening on gateway:port for network `network`, whose
   * containers are `records` (name -> IPv4; the client must be among them).
   */
  async start(ns: string, network: string, gateway: string, records: Record<string, string>, port = 53): Promise<void> {
    this.version = (await run(AARDVARK, ['--version'])).stdout.trim();
    mkdirSync(this.configDir, { recursive: true });
    const lines = [gateway, ...Object.entries(records).map(([name, ip]) => `${containerId(name)} ${ip}  ${name}`)];
    writeFileSync(join(this.configDir, network), `${lines.join('\n')}\n`);
    const log = join(this.dir, 'aardvark.log');
    const parent = startDetached('ip', ['netns', 'exec', ns, AARDVARK, '--config', this.configDir, '-p', String(port), 'run'], log);
    // the parent returns once the child serves (0) or failed (1)
    const code = await Promise.race([parent.exited, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 15_000))]);
    if (code === 'timeout') {
      await killPid(parent.pid, 1000);
      throw new Error('aardvark-dns run did not return within 15 s');
    }
    const pidFile = join(this.configDir, 'aardvark.pid');
    this.serverPid = await waitFor(
      'aardvark.pid',
      async () => {
        const pid = existsSync(pidFile) ? Number(readFileSync(pidFile, 'utf8').trim()) : 0;
        return Number.isInteger(pid) && pid > 1 && pidAlive(pid) ? pid : null;
      },
      5000,
      50,
    ).catch((e: unknown) => {
      throw new Error(`aardvark-dns exited ${String(code)}: ${this.logTail()} (${e instanceof Error ? e.message : String(e)})`);
    });
  }

  pid(): number {
    if (this.serverPid <= 1) throw new Error('aardvark-dns is not running');
    return this.serverPid;
  }

  logTail(): string {
    const f = join(this.dir, 'aardvark.log');
    return existsSync(f) ? readFileSync(f, 'utf8').trim().split('\n').slice(-3).join(' / ') || '(empty log)' : '(no log)';
  }

  async stop(): Promise<void> {
    if (this.serverPid > 1) await killPid(this.serverPid, 3000);
    this.serverPid = 0;
  }
}
