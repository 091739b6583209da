/**
 * Schedules health probes for many targets (containers), one loop per target as Docker's
 * monitor goroutine: wait nextDelayMs, probe, fold the result in, repeat. The first probe comes
 * after one (start) interval, not at once, and a target's probes never overlap because the next
 * wait starts only when the previous probe has finished.
 */
import type { HealthSpec } from './spec.js';
import { type HealthState, type ProbeResult, initialHealth, nextDelayMs, nextHealth } from './state.js';

export interface HealthMonitorOptions {
  /** runs one probe, e.g. runProbe(spec, target); a rejection counts as a failed probe (exit -1) */
  probe: (id: string, spec: HealthSpec) => Promise<ProbeResult>;
  /**
   * Called after every probe (each one changes at least the log and maybe the streak), with
   * statusChanged true when starting/healthy/unhealthy changed — the transition that matters
   * for events, dependants and load balancers. Persist `state` if you want it across restarts.
   * It should not throw: if it does, the error surfaces as an unhandled rejection (the checks
   * go on).
   */
  onChange: (id: string, state: HealthState, prev: HealthState, statusChanged: boolean) => void;
  /** epoch milliseconds, the clock of startedAtMs and of ProbeResult.start; Date.now by default */
  now?: () => number;
}

interface Target {
  spec: HealthSpec;
  startedAtMs: number;
  state: HealthState;
  timer?: NodeJS.Timeout;
  /** set when removed or replaced: a probe still in flight then has its result dropped */
  stopped: boolean;
}

export class HealthMonitor {
  readonly #opts: HealthMonitorOptions;
  readonly #now: () => number;
  readonly #targets = new Map<string, Target>();

  constructor(opts: HealthMonitorOptions) {
    this.#opts = opts;
    this.#now = opts.now ?? Date.now;
  }

  /**
   * Checks `id` with `spec` for a container started at startedAtMs. Calling it again with the
   * same spec and start time changes nothing; a different spec or start time (a restarted
   * container) starts over from `starting`, as Docker does when a container starts. set() does
   * not call onChange: read state(id) if you need the fresh state.
   */
  set(id: string, spec: HealthSpec, startedAtMs: number): void {
    const current = this.#targets.get(id);
    if (current && current.startedAtMs === startedAtMs && sameSpec(current.spec, spec)) return;
    if (current) stop(current);
    const target: Target = { spec: { ...spec, test: [...spec.test] }, startedAtMs, state: initialHealth(), stopped: false };
    this.#targets.set(id, target);
    this.#schedule(id, target);
  }

  /** Stops checking `id`; false if it was not checked. */
  remove(id: string): boolean {
    const target = this.#targets.get(id);
    if (!target) return false;
    stop(target);
    return this.#targets.delete(id);
  }

  state(id: string): HealthState | undefined {
    return this.#targets.get(id)?.state;
  }

  ids(): string[] {
    return [...this.#targets.keys()];
  }

  /** Stops every target: no timer is left, and results of probes in flight are dropped. */
  stopAll(): void {
    for (const target of this.#targets.values()) stop(target);
    this.#targets.clear();
  }

  #schedule(id: string, target: Target): void {
    const delay = nextDelayMs(target.state, target.spec, target.startedAtMs, this.#now());
    target.timer = setTimeout(() => void this.#probe(id, target), delay);
  }

  async #probe(id: string, target: Target): Promise<void> {
    target.timer = undefined;
    const startMs = this.#now();
    let result: ProbeResult;
    try {
      result = await this.#opts.probe(id, target.spec);
    } catch (e) {
      const output = e instanceof Error ? e.message : String(e);
      result = { start: new Date(startMs).toISOString(), end: new Date(this.#now()).toISOString(), exitCode: -1, output };
    }
    if (target.stopped) return; // removed or replaced meanwhile; Docker drops such results too
    const prev = target.state;
    target.state = nextHealth(prev, result, { spec: target.spec, startedAtMs: target.startedAtMs, nowMs: this.#now() });
    this.#schedule(id, target); // before onChange, so a throwing callback cannot stop the checks
    this.#opts.onChange(id, target.state, prev, target.state.status !== prev.status);
  }
}

function stop(target: Target): void {
  target.stopped = true;
  clearTimeout(target.timer);
  target.timer = undefined;
}

function sameSpec(a: HealthSpec, b: HealthSpec): boolean {
  return (
    a.test.length === b.test.length &&
    a.test.every((w, i) => w === b.test[i]) &&
    a.intervalMs === b.intervalMs &&
    a.timeoutMs === b.timeoutMs &&
    a.retries === b.retries &&
    a.startPeriodMs === b.startPeriodMs &&
    a.startIntervalMs === b.startIntervalMs
  );
}
