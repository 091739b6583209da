import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, it } from 'node:test';
import { HealthMonitor } from './monitor.js';
import type { HealthSpec } from './spec.js';
import type { HealthState, ProbeResult } from './state.js';

const spec: HealthSpec = { test: ['CMD', 'check'], intervalMs: 20, timeoutMs: 1000, retries: 2, startPeriodMs: 0 };

function result(pass: boolean, output = ''): ProbeResult {
  const now = new Date().toISOString();
  return { start: now, end: now, exitCode: pass ? 0 : 1, output };
}

interface Change {
  id: string;
  status: string;
  streak: number;
  prev: string;
  statusChanged: boolean;
}

/** A monitor whose onChange calls are recorded; waitFor(n) resolves once n have happened. */
function monitored(probe: (id: string, spec: HealthSpec) => Promise<ProbeResult>) {
  const changes: Change[] = [];
  const waiters: { n: number; resolve: () => void }[] = [];
  const monitor = new HealthMonitor({
    probe,
    onChange: (id: string, state: HealthState, prev: HealthState, statusChanged: boolean) => {
      changes.push({ id, status: state.status, streak: state.failingStreak, prev: prev.status, statusChanged });
      for (const w of waiters.filter((w) => changes.length >= w.n)) w.resolve();
    },
  });
  const waitFor = (n: number) => new Promise<void>((resolve) => (changes.length >= n ? resolve() : waiters.push({ n, resolve })));
  return { monitor, changes, waitFor };
}

let current: HealthMonitor | undefined;
afterEach(() => current?.stopAll());

describe('HealthMonitor', () => {
  it('goes starting -> healthy -> unhealthy -> healthy, flagging status changes', async () => {
    const script = [true, false, false, true];
    const { monitor, changes, waitFor } = monitored(async () => result(script.shift() ?? true));
    current = monitor;
    monitor.set('web', spec, Date.now());
    assert.deepEqual(monitor.state('web'), { status: 'starting', failingStreak: 0, log: [] });
    assert.deepEqual(monitor.ids(), ['web']);
    await waitFor(4);
    assert.deepEqual(changes.slice(0, 4), [
      { id: 'web', status: 'healthy', streak: 0, prev: 'starting', statusChanged: true },
      { id: 'web', status: 'healthy', streak: 1, prev: 'healthy', statusChanged: false },
      { id: 'web', status: 'unhealthy', streak: 2, prev: 'healthy', statusChanged: true },
      { id: 'web', status: 'healthy', streak: 0, prev: 'unhealthy', statusChanged: true },
    ]);
    assert.equal(monitor.state('web')?.log.length, Math.min(changes.length, 5));
  });

  it('waits one interval before the first probe, as Docker', async () => {
    const probedAt: number[] = [];
    const { monitor, waitFor } = monitored(async () => {
      probedAt.push(Date.now());
      return result(true);
    });
    current = monitor;
    const setAt = Date.now();
    monitor.set('db', { ...spec, intervalMs: 50 }, setAt);
    await waitFor(1);
    // setTimeout never fires early (timer resolution is 1ms, hence the slack of 1)
    assert.ok(probedAt[0] - setAt >= 49, `first probe ${probedAt[0] - setAt}ms after set`);
  });

  it('never overlaps the probes of one target', async () => {
    let running = 0;
    let most = 0;
    const { monitor, waitFor } = monitored(async () => {
      most = Math.max(most, ++running);
      await sleep(60); // longer than the 5ms interval
      running--;
      return result(true);
    });
    current = monitor;
    monitor.set('slow', { ...spec, intervalMs: 5 }, Date.now());
    await waitFor(3);
    assert.equal(most, 1);
  });

  it('counts a rejected probe as a failure', async () => {
    const { monitor, waitFor } = monitored(() => Promise.reject(new Error('runtime gone')));
    current = monitor;
    monitor.set('x', { ...spec, retries: 1 }, Date.now());
    await waitFor(1);
    const state = monitor.state('x');
    assert.equal(state?.status, 'unhealthy');
    assert.deepEqual([state?.log[0].exitCode, state?.log[0].output], [-1, 'runtime gone']);
  });

  it('keeps a target on the same spec and restarts it on a new spec or start time', async () => {
    const { monitor, waitFor } = monitored(async () => result(true));
    current = monitor;
    const startedAt = Date.now();
    monitor.set('web', spec, startedAt);
    await waitFor(1);
    monitor.set('web', { ...spec, test: [...spec.test] }, startedAt);
    assert.equal(monitor.state('web')?.status, 'healthy', 'same spec: state kept');
    monitor.set('web', { ...spec, intervalMs: 25 }, startedAt);
    assert.equal(monitor.state('web')?.status, 'starting', 'new spec: starts over');
    await waitFor(2);
    monitor.set('web', { ...spec, intervalMs: 25 }, startedAt + 1);
    assert.equal(monitor.state('web')?.status, 'starting', 'restarted container: starts over');
  });

  it('drops the result of a probe in flight when the target is removed, and stops probing', async () => {
    let probes = 0;
    let release = () => {};
    const { monitor, changes } = monitored(async () => {
      probes++;
      await new Promise<void>((r) => (release = r));
      return result(true);
    });
    current = monitor;
    monitor.set('gone', spec, Date.now());
    while (probes === 0) await sleep(5);
    assert.equal(monitor.remove('gone'), true);
    assert.equal(monitor.remove('gone'), false);
    release();
    await sleep(3 * spec.intervalMs);
    assert.deepEqual([changes.length, probes, monitor.state('gone'), monitor.ids()], [0, 1, undefined, []]);
  });

  it('stopAll leaves nothing scheduled', async () => {
    let probes = 0;
    const { monitor, waitFor } = monitored(async () => {
      probes++;
      return result(true);
    });
    monitor.set('a', spec, Date.now());
    monitor.set('b', spec, Date.now());
    await waitFor(2);
    monitor.stopAll();
    const seen = probes;
    await sleep(3 * spec.intervalMs);
    assert.equal(probes, seen);
    assert.deepEqual(monitor.ids(), []);
  });
});
