/**
 * Keeps weft's nftables tables in step with the model. Two kinds of work go through one queue:
 * a full replace (compiled from the whole model in the store, applied atomically per table) and
 * deltas (set elements of one container's endpoints and ports). The queue runs one job at a time;
 * deltas waiting together are applied as one nft transaction, and a failed delta batch falls back
 * to a full replace (the store is the truth).
 */
import { hasEmbeddedDns, type Container, type Network } from '../model/types.js';
import type { FirewallModel, FwEndpoint, FwPort } from '../firewall/model.js';
import { compileFirewall, endpointElements, portElements } from '../firewall/compile.js';
import { nftApply, nftReplaceTable } from '../kernel/nft.js';
import type { Daemon } from './daemon.js';

type Job = { kind: 'full' } | { kind: 'delta'; script: string };

export class FirewallQueue {
  private queue: { job: Job; done: (e?: unknown) => void }[] = [];
  private running = false;

  constructor(private readonly d: Daemon) {}

  /** Rewrites both tables from the model in the store. */
  full(): Promise<void> {
    return this.enqueue({ kind: 'full' });
  }

  /** Adds or deletes one container's elements. */
  container(c: Container, networks: Network[], op: 'add' | 'delete'): Promise<void> {
    const m = containerModel(c, networks);
    const script = [...m.endpoints.map((e) => endpointElements(e, op)), ...m.ports.map((p) => portElements(p, op))]
      .filter(Boolean)
      .join('\n');
    return script ? this.enqueue({ kind: 'delta', script }) : Promise.resolve();
  }

  private enqueue(job: Job): Promise<void> {
    return new Promise((resolve, reject) => {
      this.queue.push({ job, done: (e) => (e ? reject(e) : resolve()) });
      if (!this.running) void this.drain();
    });
  }

  private async drain(): Promise<void> {
    this.running = true;
    try {
      while (this.queue.length) {
        const batch = this.queue.splice(0);
        const wantsFull = batch.some((b) => b.job.kind === 'full');
        let err: unknown;
        try {
          if (wantsFull) await this.applyFull();
          else {
            const script = batch.map((b) => (b.job as { script: string }).script).join('\n');
            try {
              await nftApply(script);
            } catch (e) {
              this.d.log.warn({ err: String(e) }, 'firewall delta failed; rewriting the tables from the model');
              await this.applyFull();
            }
          }
        } catch (e) {
          err = e;
        }
        for (const b of batch) b.done(err);
      }
    } finally {
      this.running = false;
    }
  }

  private async applyFull(): Promise<void> {
    const model = await buildModel(this.d);
    const compiled = compileFirewall(model);
    await nftReplaceTable('bridge', 'weft', compiled.bridge);
    await nftReplaceTable('inet', 'weft', compiled.inet);
  }
}

export async function buildModel(d: Daemon): Promise<FirewallModel> {
  const [networks, containers] = await Promise.all([d.networks(), d.containers()]);
  const model: FirewallModel = {
    networks: networks
      .filter((n) => n.driver === 'bridge' && n.bridge)
      .map((n) => ({
        bridge: n.bridge!,
        subnets4: n.subnets.filter((s) => s.family === 4).map((s) => s.subnet),
        subnets6: n.subnets.filter((s) => s.family === 6).map((s) => s.subnet),
        internal: n.internal,
        icc: n.icc,
        dns: hasEmbeddedDns(n) ? n.subnets.map((s) => s.gateway) : [],
      })),
    endpoints: [],
    ports: [],
  };
  for (const c of containers) {
    const m = containerModel(c, networks);
    model.endpoints.push(...m.endpoints);
    model.ports.push(...m.ports);
  }
  return model;
}

/** The firewall's view of one container: its endpoints and its published ports. */
export function containerModel(c: Container, networks: Network[]): { endpoints: FwEndpoint[]; ports: FwPort[] } {
  const endpoints: FwEndpoint[] = Object.values(c.endpoints).map((ep) => ({
    hostIfname: ep.hostIfname,
    mac: ep.mac,
    ipv4: ep.ipv4,
    ipv6: ep.ipv6,
    linkLocal6: ep.linkLocal6,
  }));
  const ports: FwPort[] = [];
  const target = primaryEndpoint(c, networks);
  if (target) {
    for (const p of c.ports) {
      const v6Host = p.hostIp.includes(':');
      const any = p.hostIp === '0.0.0.0' || p.hostIp === '::' || p.hostIp === '';
      if ((!v6Host || any) && target.ipv4 && p.hostIp !== '::')
        ports.push({ family: 4, protocol: p.protocol, hostIp: any ? undefined : p.hostIp, hostPort: p.hostPort, targetIp: target.ipv4, targetPort: p.containerPort });
      if ((v6Host || any) && target.ipv6 && p.hostIp !== '0.0.0.0')
        ports.push({ family: 6, protocol: p.protocol, hostIp: any ? undefined : p.hostIp, hostPort: p.hostPort, targetIp: target.ipv6, targetPort: p.containerPort });
    }
  }
  return { endpoints, ports };
}

/** Published ports go to the container's address on its first network (the one `run` named). */
export function primaryEndpoint(c: Container, networks: Network[]) {
  const eps = Object.values(c.endpoints);
  if (!eps.length) return undefined;
  const named = networks.find((n) => n.name === c.config.networkMode || n.id === c.config.networkMode);
  return (named && c.endpoints[named.id]) ?? eps.sort((a, b) => a.ifname.localeCompare(b.ifname))[0];
}
