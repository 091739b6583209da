/**
 * Reference: the CNI reference plugins (Debian containernetworking-plugins 1.1.1), `bridge` with
 * `host-local` IPAM, spec 1.0.0, called the way a runtime calls them:
 *
 *   ip netns exec weft-b-<id>-cnih env CNI_COMMAND=ADD CNI_CONTAINERID=.. CNI_NETNS=/run/netns/..
 *      CNI_IFNAME=eth0 CNI_PATH=/usr/lib/cni /usr/lib/cni/bridge  < config
 *
 * The plugin runs inside a lab host netns, so the bridge and the host-side veths live there; every
 * "container" is a fresh netns. host-local keeps its leases under our temp dir.
 */
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { benchName, netnsAdd, netnsDelete, runSubdir } from '../lib/ns.js';
import { CommandError, run } from '../lib/proc.js';

export const CNI_PATH = '/usr/lib/cni';
const CNI_GLOBAL_PATHS = ['/var/lib/cni'];

export async function cniAvailable(): Promise<string | null> {
  for (const p of ['bridge', 'host-local']) if (!existsSync(join(CNI_PATH, p))) return `${CNI_PATH}/${p} missing (apt-get install containernetworking-plugins)`;
  return null;
}

export interface CniNetwork {
  name: string;
  bridge: string;
  subnet: string;
  gateway: string;
  config: string;
}

export interface CniResult {
  cniVersion: string;
  interfaces?: { name: string; mac?: string; sandbox?: string }[];
  ips?: { interface?: number; address: string; gateway?: string }[];
}

export class CniRef {
  readonly hostNs: string;
  readonly dir: string;
  readonly networks: CniNetwork[] = [];
  private containers = new Map<string, { netns: string; attached: { net: number; ifname: string }[] }>();
  private createdGlobals: string[] = [];
  private version = '';

  constructor(suffix = 'cnih') {
    this.hostNs = benchName(suffix, 'netns');
    this.dir = runSubdir('cni');
  }

  /** Creates the host netns and one bridge network config per subnet (e.g. '10.84.0.0/24'). */
  async setup(subnets: string[]): Promise<void> {
    this.createdGlobals = CNI_GLOBAL_PATHS.filter((p) => !existsSync(p));
    await netnsAdd(this.hostNs);
    subnets.forEach((subnet, i) => {
      const base = subnet.split('/')[0].split('.').slice(0, 3).join('.');
      const net: CniNetwork = {
        name: benchName(`n${i}`),
        bridge: benchName(`br${i}`, 'link'),
        subnet,
        gateway: `${base}.1`,
        config: '',
      };
      net.config = JSON.stringify({
        cniVersion: '1.0.0',
        name: net.name,
        type: 'bridge',
        bridge: net.bridge,
        isGateway: true,
        ipMasq: false,
        hairpinMode: true,
        ipam: {
          type: 'host-local',
          dataDir: join(this.dir, 'ipam'),
          ranges: [[{ subnet, gateway: net.gateway }]],
          routes: [{ dst: '0.0.0.0/0' }],
        },
      });
      writeFileSync(join(this.dir, `${net.name}.json`), net.config);
      this.networks.push(net);
    });
    const v = await run(join(CNI_PATH, 'bridge'), [], { env: { CNI_COMMAND: 'VERSION' }, input: '{"cniVersion":"1.0.0"}' });
    this.version = v.stdout.trim();
  }

  info(): string[] {
    return [`host netns ${this.hostNs}; networks ${this.networks.map((n) => `${n.name} (${n.bridge}, ${n.subnet})`).join(', ')}`, `bridge VERSION: ${this.version}`];
  }

  /** Makes an empty container netns (untimed) and returns its name. */
  async newContainer(id: string): Promise<string> {
    const netns = benchName(id, 'netns');
    await netnsAdd(netns);
    this.containers.set(id, { netns, attached: [] });
    return netns;
  }

  private async exec(cmd: 'ADD' | 'DEL', net: CniNetwork, id: string, netns: string, ifname: string): Promise<{ ms: number; stdout: string }> {
    try {
      const r = await run('ip', ['netns', 'exec', this.hostNs, join(CNI_PATH, 'bridge')], {
        input: net.config,
        timeoutMs: 30_000,
        env: { CNI_COMMAND: cmd, CNI_CONTAINERID: id, CNI_NETNS: `/run/netns/${netns}`, CNI_IFNAME: ifname, CNI_PATH },
      });
      return { ms: r.ms, stdout: r.stdout };
    } catch (e) {
      // a plugin error is JSON on stdout: {"code":..,"msg":..}
      if (e instanceof CommandError && e.stdout.trim().startsWith('{')) {
        const j = JSON.parse(e.stdout) as { code?: number; msg?: string; details?: string };
        throw new Error(`CNI ${cmd} ${ifname} on ${net.name}: code ${j.code}: ${j.msg}${j.details ? ` (${j.details})` : ''}`);
      }
      throw e;
    }
  }

  /** CNI ADD of container `id` to network `netIndex` as `ifname`; returns the plugin's wall time and result. */
  async add(id: string, netIndex: number, ifname: string): Promise<{ ms: number; result: CniResult }> {
    const c = this.containers.get(id);
    if (!c) throw new Error(`unknown container ${id}`);
    const net = this.networks[netIndex];
    c.attached.push({ net: netIndex, ifname });
    const r = await this.exec('ADD', net, id, c.netns, ifname);
    const result = JSON.parse(r.stdout) as CniResult;
    if (!result.ips?.length) throw new Error(`CNI ADD returned no IP: ${r.stdout.slice(0, 200)}`);
    return { ms: r.ms, result };
  }

  /** CNI DEL of every attachment of the container, then its netns is deleted. Returns the DELs' total time. */
  async remove(id: string): Promise<number> {
    const c = this.containers.get(id);
    if (!c) return 0;
    let ms = 0;
    let err: unknown;
    for (const a of [...c.attached].reverse()) {
      try {
        ms += (await this.exec('DEL', this.networks[a.net], id, c.netns, a.ifname)).ms;
      } catch (e) {
        err ??= e;
      }
    }
    await netnsDelete(c.netns);
    this.containers.delete(id);
    if (err) throw err;
    return ms;
  }

  containerCount(): number {
    return this.containers.size;
  }

  /**
   * Removes every container netns, the host netns (bridge and veths with it) and the temp dir.
   * No DEL is needed for that: everything the plugin made lives in those namespaces and the temp
   * dir. Safe to call twice.
   */
  async stop(): Promise<void> {
    for (const [id, c] of [...this.containers]) {
      await netnsDelete(c.netns);
      this.containers.delete(id);
    }
    await netnsDelete(this.hostNs);
    for (const p of this.createdGlobals) rmSync(p, { recursive: true, force: true });
    rmSync(this.dir, { recursive: true, force: true });
  }
}
