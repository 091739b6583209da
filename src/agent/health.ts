/**
 * Runs health checks (src/health/) for the agent: each running container's own check (compose
 * `healthcheck`, run --health-*), and each service probe against each of its backends. A
 * container's status changes are written to its state (so `ps`, inspect, DNS and the balancer see
 * them, and an event says `health_status: healthy`); a service probe's verdicts go to the
 * load-balancer controller directly.
 */
import { HealthMonitor } from '../health/monitor.js';
import { runProbe } from '../health/probe.js';
import type { HealthSpec } from '../health/spec.js';
import type { HealthState } from '../health/state.js';
import type { Container } from '../model/types.js';
import { spawnExec } from '../kernel/process.js';
import { Coalescer } from './coalesce.js';
import { primaryEndpoint } from './firewall.js';
import { serviceBackends } from './lb.js';
import type { Daemon } from './daemon.js';

interface Target {
  container: Container;
  ip?: string;
  /** a service probe: the service id */
  service?: string;
}

export class HealthController {
  private targets = new Map<string, Target>();
  private readonly monitor: HealthMonitor;
  private unsubscribe?: () => void;
  private readonly syncs = new Coalescer(
    () => this.sync(),
    (e) => this.d.log.warn({ err: String(e) }, 'health-check sync failed'),
  );

  constructor(private readonly d: Daemon) {
    this.monitor = new HealthMonitor({
      probe: (id, spec) => this.probe(id, spec),
      onChange: (id, state, _prev, statusChanged) => {
        if (statusChanged) void this.changed(id, state);
      },
    });
  }

  async start(): Promise<void> {
    this.unsubscribe = this.d.events.subscribe((ev) => {
      if (ev.type === 'service' || (ev.type === 'container' && ev.action !== 'health_status') || ev.type === 'network') this.syncs.invalidate();
    });
    this.syncs.invalidate();
    await this.syncs.settled();
  }

  stop(): void {
    this.unsubscribe?.();
    this.monitor.stopAll();
  }

  /** The latest state of a container's own check (fresher than the store's: every probe counts). */
  state(containerId: string): HealthState | undefined {
    return this.monitor.state(`c:${containerId}`);
  }

  private async sync(): Promise<void> {
    const [containers, networks, services] = await Promise.all([this.d.containers(), this.d.networks(), this.d.services()]);
    const want = new Map<string, { t: Target; spec: HealthSpec; startedAtMs: number }>();
    for (const c of containers) {
      if (c.state.phase !== 'running' || !c.config.healthcheck) continue;
      const ip = primaryEndpoint(c, networks)?.ipv4;
      want.set(`c:${c.id}`, { t: { container: c, ip }, spec: c.config.healthcheck, startedAtMs: Date.parse(c.state.startedAt ?? '') || Date.now() });
    }
    for (const s of services) {
      if (!s.healthcheck) continue;
      for (const b of serviceBackends(s, containers, networks)) {
        if (b.c.state.phase !== 'running') continue;
        want.set(`s:${s.id}/${b.c.id}`, {
          t: { container: b.c, ip: b.ip, service: s.id },
          spec: s.healthcheck,
          startedAtMs: Date.parse(b.c.state.startedAt ?? '') || Date.now(),
        });
      }
    }
    for (const id of this.monitor.ids()) {
      if (want.has(id)) continue;
      this.monitor.remove(id);
      this.targets.delete(id);
      if (id.startsWith('s:')) {
        const [sid, cid] = id.slice(2).split('/');
        this.d.lb?.setProbe(sid, cid, undefined);
      }
    }
    for (const [id, w] of want) {
      this.targets.set(id, w.t);
      this.monitor.set(id, w.spec, w.startedAtMs);
    }
  }

  private probe(id: string, spec: HealthSpec) {
    const t = this.targets.get(id);
    const c = t?.container;
    return runProbe(spec, {
      ip: t?.ip,
      exec: (argv, timeoutMs) => execIn(c, argv, timeoutMs),
    });
  }

  private async changed(id: string, state: HealthState): Promise<void> {
    const t = this.targets.get(id);
    if (!t) return;
    if (t.service) {
      this.d.lb?.setProbe(t.service, t.container.id, state.status);
      this.d.dns?.invalidate();
      return;
    }
    const cid = t.container.id;
    await this.d.locks.run(cid, async () => {
      const c = await this.d.getContainer(cid);
      if (!c || c.state.phase !== 'running' || c.state.startedAt !== t.container.state.startedAt) return;
      c.state.health = { ...state, log: state.log.slice(-5) };
      await this.d.putContainer(c);
    });
    this.d.events.emit('container', 'health_status', cid, t.container.name, { status: state.status });
  }
}

/** Runs argv in the container's namespaces, killed after timeoutMs. */
function execIn(c: Container | undefined, argv: string[], timeoutMs: number): Promise<{ exitCode: number; output: string }> {
  if (!c?.state.pid) return Promise.resolve({ exitCode: 1, output: 'container is not running' });
  return new Promise((resolve) => {
    let out = '';
    let child;
    try {
      child = spawnExec({ netns: c.netns, utsPid: c.netns ? c.state.pid : undefined, cmd: argv, env: c.config.env, workdir: c.config.workdir });
    } catch (e) {
      resolve({ exitCode: 1, output: String((e as Error).message) });
      return;
    }
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    const add = (b: Buffer) => {
      if (out.length < 8192) out += b.toString();
    };
    child.stdout!.on('data', add);
    child.stderr!.on('data', add);
    child.on('error', (e) => {
      clearTimeout(timer);
      resolve({ exitCode: 1, output: e.message });
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ exitCode: code ?? 1, output: out });
    });
  });
}
