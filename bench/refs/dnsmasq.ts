/**
 * Reference: dnsmasq (Debian dnsmasq-base 2.90) answering a fixed set of names, the classic
 * per-network container DNS (podman's old dnsname plugin ran one per network).
 *
 *   ip netns exec weft-b-<id>-dmh dnsmasq -k --conf-file=/dev/null --no-resolv --no-hosts
 *      --addn-hosts=<run dir>/dnsmasq.hosts --listen-address=GW --bind-interfaces --port=53
 *      --cache-size=1000 --pid-file= --log-facility=<run dir>/dnsmasq.log
 *
 * `ip netns exec` and then dnsmasq -k (foreground) exec without forking, so the PID we started is
 * dnsmasq's own; it is ended by that PID, and whatever else is in its netns goes with the netns.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runSubdir } from '../lib/ns.js';
import { killPid, run, startDetached, waitFor, type Detached } from '../lib/proc.js';

export const DNSMASQ = '/usr/sbin/dnsmasq';

export async function dnsmasqAvailable(): Promise<string | null> {
  if (!existsSync(DNSMASQ)) return `${DNSMASQ} missing (apt-get install dnsmasq-base)`;
  return null;
}

export class DnsmasqRef {
  private proc: Detached | null = null;
  readonly dir = runSubdir('dnsmasq');
  version = '';

  /** Starts dnsmasq in netns `ns` on listen:port with `records` (name -> IPv4) in an addn-hosts file. */
  async start(ns: string, listen: string, records: Record<string, string>, port = 53): Promise<void> {
    this.version = (await run(DNSMASQ, ['--version'])).stdout.split('\n')[0].replace(/\s+Copyright.*/, '').trim();
    const hosts = join(this.dir, 'dnsmasq.hosts');
    writeFileSync(hosts, Object.entries(records).map(([name, ip]) => `${ip} ${name}\n`).join(''));
    const log = join(this.dir, 'dnsmasq.log');
    const args = [
      'netns', 'exec', ns, DNSMASQ, '-k', '--conf-file=/dev/null', '--no-resolv', '--no-hosts', `--addn-hosts=${hosts}`,
      `--listen-address=${listen}`, '--bind-interfaces', `--port=${port}`, '--cache-size=1000', '--pid-file=', `--log-facility=${log}`,
    ];
    this.proc = startDetached('ip', args, join(this.dir, 'dnsmasq.out'));
    const p = this.proc;
    await waitFor(
      'dnsmasq to read its hosts file',
      async () => {
        if (!p.isRunning()) throw new Error(`dnsmasq exited: ${this.logTail()}`);
        return existsSync(log) && readFileSync(log, 'utf8').includes(`read ${hosts}`);
      },
      10_000,
      50,
    );
  }

  pid(): number {
    if (!this.proc) throw new Error('dnsmasq is not running');
    return this.proc.pid;
  }

  logTail(): string {
    const t = ['dnsmasq.out', 'dnsmasq.log']
      .map((f) => join(this.dir, f))
      .filter((f) => existsSync(f))
      .map((f) => readFileSync(f, 'utf8').trim())
      .join('\n');
    return t.split('\n').slice(-3).join(' / ') || '(no log)';
  }

  async stop(): Promise<void> {
    if (this.proc) await killPid(this.proc.pid, 3000);
    this.proc = null;
  }
}
