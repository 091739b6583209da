/**
 * The agent's side of the embedded DNS (src/dns/): keeps the server's name table in step with the
 * store, listens on the gateways of user-defined networks, and knows the upstream resolvers.
 *
 * Every container or network event rebuilds the table from the store (coalesced: one rebuild runs
 * at a time and one more follows if events came meanwhile). API calls that change containers or
 * networks wait for the rebuild their events started (`settled()`), so a name is answerable by
 * the time `weft run -d` returns, and gone by the time `weft stop` returns.
 */
import { parseResolvConf, readHostResolvConf } from '../runtime/etc.js';
import { DnsServer } from '../dns/server.js';
import { NameTable, type DnsExtraName, type DnsSnapshot, type DnsSrv } from '../dns/records.js';
import { hasEmbeddedDns, type Container, type Network, type Service } from '../model/types.js';
import type { HealthStatus } from '../health/state.js';
import { serviceBackends, type Backend } from './lb.js';
import type { Daemon } from './daemon.js';
import { Coalescer } from './coalesce.js';
import { primaryEndpoint } from './firewall.js';

export interface Upstream {
  host: string;
  port: number;
}

export const DNS_PORT = 53;

/** The nameservers of a resolv.conf text, as upstreams on port 53. */
export function resolvConfUpstreams(text: string): Upstream[] {
  return parseResolvConf(text).nameservers.map((ns) => ({ host: ns.replace(/%.*$/, ''), port: DNS_PORT }));
}

/**
 * A service's names, on its network and its backends' networks: NAME gives the
 * VIP (vip mode, hiding containers' aliases of the same name) or the serving backends (dnsrr);
 * tasks.NAME always gives the serving backends; each named port has an SRV record
 * _PORT._PROTO.NAME pointing at NAME (vip) or at each backend (dnsrr).
 */
export function serviceNames(s: Service, backends: Backend[], networks: Network[]): { extra: DnsExtraName[]; srv: DnsSrv[] } {
  const userDefined = new Set(networks.filter(hasEmbeddedDns).map((n) => n.id));
  // the service's network and every network its backends are on: where its clients are
  const networkIds = [...new Set([...(s.network ? [s.network] : []), ...backends.flatMap((b) => Object.keys(b.c.endpoints))])];
  const scope = networkIds.filter((id) => userDefined.has(id));
  const serving = backends.filter((b) => b.active);
  const ips = serving.map((b) => b.ip!);
  const name = s.dnsName ?? s.name;
  const extra: DnsExtraName[] = [
    { name, networkIds: scope, ipv4: s.vip ? [s.vip] : ips, replace: true },
    { name: `tasks.${name}`, networkIds: scope, ipv4: ips, replace: true },
  ];
  const srv: DnsSrv[] = [];
  for (const p of s.ports) {
    if (!p.name) continue;
    const srvName = `_${p.name}._${p.protocol}.${name}`;
    if (s.vip) srv.push({ name: srvName, networkIds: scope, target: name, port: p.port });
    else for (const b of serving) srv.push({ name: srvName, networkIds: scope, target: b.c.name, port: p.targetPort });
  }
  return { extra, srv };
}

/** The model as the name table needs it. */
export function dnsSnapshot(networks: Network[], containers: Container[], services: Service[] = [], probe?: (s: Service, c: Container) => HealthStatus | undefined): DnsSnapshot {
  const names = services.map((s) => serviceNames(s, serviceBackends(s, containers, networks, probe), networks));
  return {
    extra: names.flatMap((n) => n.extra),
    srv: names.flatMap((n) => n.srv),
    networks: networks.map((n) => ({ id: n.id, name: n.name, internal: n.internal, userDefined: hasEmbeddedDns(n) })),
    containers: containers.map((c) => ({
      id: c.id,
      name: c.name,
      running: c.state.phase === 'running',
      endpoints: Object.values(c.endpoints).map((e) => ({ networkId: e.networkId, ipv4: e.ipv4, ipv6: e.ipv6, aliases: e.aliases })),
    })),
  };
}

/** The address a container's resolv.conf names: the gateway of its primary user-defined network. */
export function embeddedNameserver(c: Container, networks: Network[]): string | undefined {
  const byId = new Map(networks.map((n) => [n.id, n]));
  const endpoints = Object.fromEntries(Object.entries(c.endpoints).filter(([id]) => byId.has(id) && hasEmbeddedDns(byId.get(id)!)));
  const ep = primaryEndpoint({ ...c, endpoints }, networks);
  return ep && byId.get(ep.networkId)!.subnets.find((s) => s.family === 4)?.gateway;
}

export class DnsController {
  private table = new NameTable({ networks: [], containers: [] });
  private server: DnsServer;
  private upstreams: Upstream[] = [];
  /** containers run with --dns (compose `dns:`): their names are forwarded there instead */
  private own = new Map<string, Upstream[]>();
  private readonly rebuilds = new Coalescer(
    () => this.rebuild(),
    (e) => this.d.log.warn({ err: String(e) }, 'DNS table rebuild failed'),
  );
  private unsubscribe?: () => void;

  constructor(private readonly d: Daemon) {
    this.server = new DnsServer({
      table: () => this.table,
      upstreams: (asker) => this.own.get(asker.containerId) ?? this.upstreams,
      log: d.log,
    });
  }

  async start(): Promise<void> {
    this.upstreams = this.d.opts.dnsUpstreams?.length
      ? this.d.opts.dnsUpstreams
      : resolvConfUpstreams(await readHostResolvConf());
    this.unsubscribe = this.d.events.subscribe((ev) => {
      if (ev.type === 'container' || ev.type === 'network' || ev.type === 'service') this.invalidate();
    });
    this.invalidate();
    await this.settled();
  }

  async stop(): Promise<void> {
    this.unsubscribe?.();
    await this.settled();
    await this.server.closeAll();
  }

  /** Resolves once the table reflects every event so far. */
  settled(): Promise<void> {
    return this.rebuilds.settled();
  }

  /** Schedules a rebuild (coalesced with one already running). */
  invalidate(): void {
    this.rebuilds.invalidate();
  }

  private async rebuild(): Promise<void> {
    const [networks, containers, services] = await Promise.all([this.d.networks(), this.d.containers(), this.d.services()]);
    const table = new NameTable(dnsSnapshot(networks, containers, services, this.d.lb?.probeOf));
    for (const w of table.warnings) this.d.log.warn({ warning: w }, 'DNS table');
    this.table = table;
    this.own = new Map(
      containers.filter((c) => c.config.dns.length).map((c) => [c.id, c.config.dns.map((host) => ({ host, port: DNS_PORT }))]),
    );
    await this.syncListeners(networks);
  }

  /** One listener per gateway address of each user-defined network. */
  private async syncListeners(networks: Network[]): Promise<void> {
    const want = new Set(networks.filter(hasEmbeddedDns).flatMap((n) => n.subnets.map((s) => s.gateway)));
    const have = new Set(this.server.addresses());
    for (const addr of have) if (!want.has(addr)) await this.server.close(addr);
    for (const addr of want) {
      if (have.has(addr)) continue;
      try {
        await this.server.listen(addr, DNS_PORT);
      } catch (e) {
        // the bridge may be down (reconcile repairs it) or port 53 taken on that address
        this.d.log.warn({ err: String(e), addr }, 'the embedded DNS cannot listen here; it will retry on the next change');
      }
    }
  }
}
