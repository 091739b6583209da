/**
 * The load-balancer controller: keeps `table inet weft-svc` in step with services, their
 * backends and the backends' health. Every relevant event schedules a sync (coalesced); a sync
 * works out each service's ports and healthy backends, and applies, in one nft transaction, the
 * deltas of the services that changed (a full rewrite at start, or if a delta fails or would
 * overflow backends4). A changed port's slot table moves to free slots (compile.ts placePort), so
 * most deltas only add; the slots left behind are deleted by the next transaction that deletes
 * anyway, or by a collection once no transaction has been applied for COLLECT_MS.
 *
 * Also here: conntrack cleanup for backends that stopped (clients fail fast instead of waiting
 * on a dead address), and least-connections, steered from conntrack events (README.md).
 */
import type { Container, Network, Service } from '../model/types.js';
import { WEIGHT_LABEL } from '../model/types.js';
import type { ServiceBackendView } from '../api/schemas.js';
import type { HealthStatus } from '../health/state.js';
import { LbTableState, MAX_IDENTITY, placePort, planDelta, planFull, type CompiledPort, type LbChange, type LbPort } from '../services/compile.js';
import { nftApply } from '../kernel/nft.js';
import { conntrackDeleteBackend, ConnCounter, followConntrack } from '../kernel/conntrack.js';
import { Coalescer } from './coalesce.js';
import { primaryEndpoint } from './firewall.js';
import { PORTS_PER_SERVICE, serviceRange } from './services.js';
import type { Daemon } from './daemon.js';

export interface Backend {
  c: Container;
  ip?: string;
  networkId?: string;
  weight: number;
  /** serving: running, with an address, and passing every check it has */
  active: boolean;
  health?: HealthStatus;
  probe?: HealthStatus;
}

/** One service as applied: its ports as compiled, and its backends by container/protocol/port. */
interface Applied {
  /** the compiler's input, as JSON: equal text, nothing to do */
  ports: string;
  compiled: CompiledPort[];
  backends: Map<string, { ip: string; port: number; protocol: 'tcp' | 'udp' }>;
}

export function selects(s: Service, c: Container): boolean {
  return Object.entries(s.selector).every(([k, v]) => c.config.labels[k] === v);
}

/** The containers a service selects, each with its address and whether it serves now. */
export function serviceBackends(
  s: Service,
  containers: Container[],
  networks: Network[],
  probe: (s: Service, c: Container) => HealthStatus | undefined = () => undefined,
): Backend[] {
  const out: Backend[] = [];
  for (const c of containers) {
    if (c.state.phase === 'creating' || c.state.phase === 'removing' || !selects(s, c)) continue;
    const ep = s.network ? c.endpoints[s.network] : primaryEndpoint(c, networks);
    const label = Number(c.config.labels[WEIGHT_LABEL]);
    const weight = s.weights[c.name] ?? (Number.isInteger(label) && label >= 1 ? label : 1);
    const health = c.state.health?.status;
    const p = s.healthcheck && c.state.phase === 'running' ? (probe(s, c) ?? 'starting') : undefined;
    const active =
      c.state.phase === 'running' && !!ep?.ipv4 && (!c.config.healthcheck || health === 'healthy') && (!s.healthcheck || p === 'healthy');
    out.push({ c, ip: ep?.ipv4, networkId: ep?.networkId, weight, active, health, probe: p });
  }
  return out.sort((a, b) => (a.c.name < b.c.name ? -1 : a.c.name > b.c.name ? 1 : 0));
}

/** stale slots are collected once the table has been quiet this long (a transaction that deletes anyway takes them sooner) */
const COLLECT_MS = 5000;
/**
 * A gone backend's flows are deleted again this long after the first time: the health controller
 * reacts to the same container events on its own and may send one more probe (or a client one
 * more SYN) just after the first deletion.
 */
const SWEEP_AGAIN_MS = 250;

export class LbController {
  /** what the kernel holds, per service id */
  private applied = new Map<string, Applied>();
  /** backends4's size and count, and the stale slots in it */
  private table = new LbTableState(0, 0);
  private collect = false;
  private collectTimer?: NodeJS.Timeout;
  /** when a transaction was last applied (collections wait for quiet) */
  private lastApply = 0;
  private stopped = false;
  /** source affinity: a stable identity per backend, per service */
  private identities = new Map<string, Map<string, number>>();
  private probes = new Map<string, HealthStatus>();
  private readonly conns = new ConnCounter();
  private conntrack?: { stop: () => void };
  private needFull = true;
  private unsubscribe?: () => void;
  private readonly syncs = new Coalescer(
    () => this.sync(),
    (e) => {
      this.needFull = true;
      this.d.log.warn({ err: String(e) }, 'load-balancer sync failed; the next change rewrites the table');
    },
  );

  constructor(private readonly d: Daemon) {}

  async start(): Promise<void> {
    this.unsubscribe = this.d.events.subscribe((ev) => {
      if (ev.type === 'service' || ev.type === 'container' || (ev.type === 'network' && ev.action !== 'create')) this.invalidate();
    });
    this.invalidate();
    await this.settled();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.unsubscribe?.();
    await this.settled();
    clearTimeout(this.collectTimer);
    this.collectTimer = undefined;
    this.conntrack?.stop();
  }

  invalidate(): void {
    this.syncs.invalidate();
  }

  settled(): Promise<void> {
    return this.syncs.settled();
  }

  /** A service probe's verdict for one backend (from the health controller). */
  setProbe(serviceId: string, containerId: string, status: HealthStatus | undefined): void {
    const k = `${serviceId}/${containerId}`;
    if (this.probes.get(k) === status) return;
    if (status) this.probes.set(k, status);
    else this.probes.delete(k);
    this.invalidate();
  }

  probeOf = (s: Service, c: Container): HealthStatus | undefined => this.probes.get(`${s.id}/${c.id}`);

  backendViews(s: Service, containers: Container[], networks: Network[]): ServiceBackendView[] {
    const target = s.ports[0]?.targetPort;
    return serviceBackends(s, containers, networks, this.probeOf).map((b) => ({
      id: b.c.id,
      name: b.c.name,
      ip: b.ip,
      weight: b.weight,
      active: b.active,
      health: b.health,
      probe: b.probe,
      conns: s.algorithm === 'least-connections' && b.ip && target ? this.conns.count(b.ip, target) : undefined,
    }));
  }

  /** The ports of one service as the compiler takes them. */
  private lbPorts(s: Service, backends: Backend[]): LbPort[] {
    const active = backends.filter((b) => b.active);
    const ids = s.algorithm === 'source-affinity' ? this.identitiesOf(s.id, active.map((b) => b.c.id)) : undefined;
    return s.ports.map((p, i) => ({
      key: s.key * PORTS_PER_SERVICE + i,
      service: s.id,
      vip: s.vip,
      protocol: p.protocol,
      port: p.port,
      publish: p.publish,
      algorithm: s.algorithm,
      affinityTimeout: s.affinityTimeout,
      backends: active.map((b) => ({
        id: b.c.id,
        ip: b.ip!,
        port: p.targetPort,
        weight: b.weight,
        conns: s.algorithm === 'least-connections' ? this.conns.count(b.ip!, p.targetPort) : undefined,
        identity: ids?.get(b.c.id),
      })),
    }));
  }

  /** Keeps each backend's identity while it stays; a newcomer takes the lowest free one. */
  private identitiesOf(serviceId: string, ids: string[]): Map<string, number> {
    const old = this.identities.get(serviceId) ?? new Map<string, number>();
    const next = new Map<string, number>();
    for (const id of ids) if (old.has(id)) next.set(id, old.get(id)!);
    const used = new Set(next.values());
    let free = 0;
    for (const id of ids) {
      if (next.has(id)) continue;
      while (used.has(free)) free++;
      if (free > MAX_IDENTITY) throw new Error(`source affinity: more than ${MAX_IDENTITY + 1} backends`);
      next.set(id, free);
      used.add(free);
    }
    this.identities.set(serviceId, next);
    return next;
  }

  private async sync(): Promise<void> {
    const vipServices = (await this.d.services()).filter((s) => s.endpointMode === 'vip');
    // the common case on a container event: no services, nothing applied; skip reading the rest
    if (!vipServices.length && !this.applied.size && !this.needFull) return this.followConnections(false);
    const [containers, networks] = await Promise.all([this.d.containers(), this.d.networks()]);
    this.followConnections(vipServices.some((s) => s.algorithm === 'least-connections'));
    const next = new Map<string, Applied>();
    for (const s of vipServices) {
      const ports = this.lbPorts(s, serviceBackends(s, containers, networks, this.probeOf));
      const text = JSON.stringify(ports);
      const prev = this.applied.get(s.id);
      let compiled: CompiledPort[];
      if (prev && prev.ports === text) compiled = prev.compiled;
      else {
        const was = new Map((prev?.compiled ?? []).map((c) => [c.key, c]));
        compiled = ports.map((p) => placePort(p, this.needFull ? undefined : was.get(p.key), this.table));
      }
      const backends = new Map(ports.flatMap((p) => p.backends.map((b) => [`${b.id}/${p.protocol}/${b.port}`, { ip: b.ip, port: b.port, protocol: p.protocol }] as const)));
      next.set(s.id, { ports: text, compiled, backends });
    }
    const full = async () => {
      const plan = planFull([...next.values()].flatMap((v) => v.compiled), [serviceRange(this.d).subnet]);
      await nftApply(plan.script);
      this.table = plan.state;
      this.lastApply = Date.now();
    };
    const collect = this.collect;
    this.collect = false;
    if (this.needFull) {
      await full();
      this.needFull = false;
    } else {
      const changes: LbChange[] = [];
      for (const id of new Set([...this.applied.keys(), ...next.keys()])) {
        const a = this.applied.get(id);
        const b = next.get(id);
        if (a && b && a.ports === b.ports) continue;
        changes.push({ before: a?.compiled ?? [], after: b?.compiled ?? [] });
      }
      const plan = changes.length || (collect && this.table.stale) ? planDelta(this.table, changes, { defer: true, collect }) : undefined;
      if (plan?.overflow) await full();
      else if (plan?.script) {
        try {
          await nftApply(plan.script);
          this.table = plan.state;
          this.lastApply = Date.now();
        } catch (e) {
          this.d.log.warn({ err: String(e) }, 'load-balancer delta failed; rewriting the table');
          await full();
        }
      }
    }
    if (this.table.stale && !this.collectTimer) this.collectLater(COLLECT_MS);
    await this.clearGone(next, containers);
    this.applied = next;
    for (const id of this.identities.keys()) if (!next.has(id)) this.identities.delete(id);
  }

  /** Schedules the collection of stale slots for when the table has been quiet for COLLECT_MS. */
  private collectLater(ms: number): void {
    this.collectTimer = setTimeout(() => {
      this.collectTimer = undefined;
      const quiet = Date.now() - this.lastApply;
      if (quiet < COLLECT_MS) return this.collectLater(COLLECT_MS - quiet);
      this.collect = true;
      this.invalidate();
    }, ms);
    this.collectTimer.unref();
  }

  /**
   * Flows to a backend that left because its container stopped or went are deleted from
   * conntrack: the client's next packet is refused (or balanced anew) at once. A backend that
   * only turned unhealthy keeps its open connections, as Kubernetes does.
   */
  private async clearGone(next: Map<string, Applied>, containers: Container[]): Promise<void> {
    const running = new Set(containers.filter((c) => c.state.phase === 'running').map((c) => c.id));
    const done = new Map<string, { ip: string; port: number; protocol: 'tcp' | 'udp' }>();
    for (const [id, a] of this.applied) {
      const now = next.get(id)?.backends;
      for (const [k, b] of a.backends) {
        const containerId = k.split('/')[0];
        if (now?.has(k) || running.has(containerId) || done.has(k)) continue;
        done.set(k, b);
        await this.clearFlows(b);
      }
    }
    if (done.size) setTimeout(() => void this.sweepAgain([...done.values()]), SWEEP_AGAIN_MS).unref();
  }

  private async clearFlows(b: { ip: string; port: number; protocol: 'tcp' | 'udp' }): Promise<void> {
    const n = await conntrackDeleteBackend(b.protocol, b.ip, b.port).catch((e) => {
      this.d.log.warn({ err: String(e) }, 'conntrack cleanup failed');
      return 0;
    });
    if (n) this.d.log.info({ backend: `${b.ip}:${b.port}`, flows: n }, 'cleared the flows of a backend that went away');
  }

  /** The second deletion, unless the address came back meanwhile (a running container or a backend has it). */
  private async sweepAgain(gone: { ip: string; port: number; protocol: 'tcp' | 'udp' }[]): Promise<void> {
    if (this.stopped) return;
    try {
      const containers = await this.d.containers();
      const inUse = new Set(containers.filter((c) => c.state.phase === 'running').flatMap((c) => Object.values(c.endpoints).map((e) => e.ipv4)));
      for (const a of this.applied.values()) for (const b of a.backends.values()) inUse.add(b.ip);
      for (const b of gone) if (!inUse.has(b.ip)) await this.clearFlows(b);
    } catch (e) {
      this.d.log.warn({ err: String(e) }, 'conntrack cleanup failed');
    }
  }

  /** least-connections needs connection events; follow them only while such a service exists. */
  private followConnections(want: boolean): void {
    if (want && !this.conntrack) {
      this.conntrack = followConntrack(
        (ev) => {
          if (this.conns.feed(ev)) this.invalidate();
        },
        (why) => {
          this.d.log.warn({ why }, 'conntrack events stopped; least-connections falls back to its last counts');
          this.conntrack = undefined;
        },
      );
    } else if (!want && this.conntrack) {
      this.conntrack.stop();
      this.conntrack = undefined;
    }
  }
}
