/**
 * The agent's core: desired state in the store, lookups, views, events, and the queue that keeps
 * weft's nftables tables in step with the model. Operations live in networks.ts, containers.ts
 * and reconcile.ts as functions of the Daemon.
 */
import type { Logger } from 'pino';
import type { Store } from '../store/types.js';
import { rangeJSON, getJSON } from '../store/types.js';
import type { Container, Network, Service } from '../model/types.js';
import type { ContainerView, NetworkView } from '../api/schemas.js';
import { EventBus } from './events.js';
import { KeyedLock } from './lock.js';
import { K } from './keys.js';
import { notFound, badRequest } from './errors.js';
import { FirewallQueue } from './firewall.js';
import { describeStatus } from './status.js';
import type { DnsController, Upstream } from './dns.js';
import type { LbController } from './lb.js';
import type { HealthController } from './health.js';
import type { PolicyController } from './policy.js';
import { readHostResolvConf } from '../runtime/etc.js';

export interface NodeIdentity {
  /** 6 hex characters: tells this agent's kernel objects from other agents' on the same machine */
  nodeId: string;
  /** this agent's IPv6 ULA /48 (default IPv6 pool) */
  ula48: string;
}

export interface DaemonOptions extends NodeIdentity {
  stateDir: string;
  socket: string;
  storeSpec: string;
  /** --dns-upstream: used instead of the host's resolv.conf nameservers */
  dnsUpstreams?: Upstream[];
  /** --service-range: where services' virtual IPs come from (default 10.96.0.0/16) */
  serviceRange?: string;
}

export class Daemon {
  readonly events = new EventBus();
  readonly locks = new KeyedLock();
  readonly firewall: FirewallQueue;
  /** the embedded DNS (absent in unit tests that build a bare Daemon) */
  dns?: DnsController;
  /** services' load balancing (absent in unit tests that build a bare Daemon) */
  lb?: LbController;
  health?: HealthController;
  /** network policy (absent in unit tests that build a bare Daemon) */
  policy?: PolicyController;
  /** resolvers waiting for a container to stop running */
  readonly waiters = new Map<string, Array<() => void>>();

  constructor(
    readonly store: Store,
    readonly opts: DaemonOptions,
    readonly log: Logger,
  ) {
    this.firewall = new FirewallQueue(this);
  }

  get nodeId(): string {
    return this.opts.nodeId;
  }

  containerDir(id: string): string {
    return `${this.opts.stateDir}/containers/${id}`;
  }

  /**
   * The resolv.conf "the host" gives containers without embedded DNS: the host's own, or, with
   * --dns-upstream, those servers (the ones on port 53: resolv.conf cannot name a port).
   */
  async hostResolvConf(): Promise<string> {
    const ups = this.opts.dnsUpstreams;
    if (!ups?.length) return readHostResolvConf();
    return ups.filter((u) => u.port === 53).map((u) => `nameserver ${u.host}\n`).join('');
  }

  // ------------------------------------------------------------------ reads

  async networks(): Promise<Network[]> {
    return rangeJSON<Network>(this.store, K.networks);
  }

  async containers(): Promise<Container[]> {
    return rangeJSON<Container>(this.store, K.containers);
  }

  async services(): Promise<Service[]> {
    return rangeJSON<Service>(this.store, K.services);
  }

  async getContainer(id: string): Promise<Container | undefined> {
    return getJSON<Container>(this.store, K.container(id));
  }

  async putContainer(c: Container): Promise<void> {
    await this.store.put(K.container(c.id), JSON.stringify(c));
  }

  /** name, full id or unique id prefix, as Docker resolves them */
  async resolveNetwork(ref: string): Promise<Network> {
    const nets = await this.networks();
    const found = resolveRef(nets, ref, 'network');
    if (!found) throw notFound(`no such network: ${ref}`);
    return found;
  }

  async resolveContainer(ref: string): Promise<Container> {
    const all = (await this.containers()).filter((c) => c.state.phase !== 'creating');
    const found = resolveRef(all, ref, 'container');
    if (!found) throw notFound(`no such container: ${ref}`);
    return found;
  }

  // ------------------------------------------------------------------ views

  async networkView(net: Network, containers?: Container[]): Promise<NetworkView> {
    const all = containers ?? (await this.containers());
    const attached: NetworkView['containers'] = {};
    for (const c of all) {
      const ep = c.endpoints[net.id];
      if (ep && c.state.phase !== 'creating')
        attached[c.id] = { name: c.name, ipv4: ep.ipv4, ipv6: ep.ipv6, mac: ep.mac, aliases: ep.aliases };
      else if (net.driver !== 'bridge' && c.config.networkMode === net.name && c.state.phase !== 'creating')
        attached[c.id] = { name: c.name, mac: '', aliases: [] };
    }
    return { ...net, containers: attached };
  }

  async containerView(c: Container, networks?: Network[]): Promise<ContainerView> {
    const nets = networks ?? (await this.networks());
    const byId = new Map(nets.map((n) => [n.id, n]));
    const named: ContainerView['networks'] = {};
    for (const [id, ep] of Object.entries(c.endpoints)) {
      const n = byId.get(id);
      named[n?.name ?? id] = { ...ep, networkName: n?.name ?? id };
    }
    if (c.config.networkMode === 'host' || c.config.networkMode === 'none') {
      const n = nets.find((x) => x.name === c.config.networkMode);
      if (n) named[n.name] = { networkId: n.id, networkName: n.name, ifname: '', hostIfname: '', mac: '', aliases: [] };
    }
    const health = c.state.phase === 'running' ? this.health?.state(c.id) : undefined;
    const state = health ? { ...c.state, health } : c.state;
    return { ...c, state, status: describeStatus(state), networks: named };
  }

  // ------------------------------------------------------------------ waiting for exits

  notifyStopped(id: string): void {
    const list = this.waiters.get(id);
    if (!list) return;
    this.waiters.delete(id);
    for (const fn of list) fn();
  }

  /** A promise for the container's next stop, and a cancel that forgets the waiter. */
  waitStopped(id: string): { stopped: Promise<void>; cancel: () => void } {
    let done!: () => void;
    const stopped = new Promise<void>((resolve) => (done = resolve));
    const list = this.waiters.get(id) ?? [];
    list.push(done);
    this.waiters.set(id, list);
    const cancel = () => {
      const rest = (this.waiters.get(id) ?? []).filter((fn) => fn !== done);
      if (rest.length) this.waiters.set(id, rest);
      else this.waiters.delete(id);
    };
    return { stopped, cancel };
  }
}

/** An item by exact id, else name, else unique id prefix (Docker's rules); undefined if none. */
export function resolveRef<T extends { id: string; name: string }>(items: T[], ref: string, what: string): T | undefined {
  const exactId = items.find((i) => i.id === ref);
  if (exactId) return exactId;
  const byName = items.find((i) => i.name === ref);
  if (byName) return byName;
  if (!/^[0-9a-f]+$/.test(ref)) return undefined;
  const byPrefix = items.filter((i) => i.id.startsWith(ref));
  if (byPrefix.length > 1) throw badRequest(`${what} id prefix ${ref} is ambiguous (${byPrefix.length} matches); give more characters`);
  return byPrefix[0];
}
