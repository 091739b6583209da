import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { HealthSpec } from './spec.js';
import { type HealthState, MAX_OUTPUT_BYTES, type ProbeResult, initialHealth, nextDelayMs, nextHealth, truncateOutput } from './state.js';

const T0 = Date.parse('2025-01-01T00:00:00.000Z');
const spec: HealthSpec = { test: ['TCP', '80'], intervalMs: 10_000, timeoutMs: 1000, retries: 3, startPeriodMs: 30_000, startIntervalMs: 2000 };

/** A result for a probe that started `atMs` after the container started. */
function result(atMs: number, pass: boolean, output = ''): ProbeResult {
  return { start: new Date(T0 + atMs).toISOString(), end: new Date(T0 + atMs + 5).toISOString(), exitCode: pass ? 0 : 1, output };
}

/** Feeds probes [offset ms, pass] through nextHealth and returns the states after each. */
function run(s: HealthSpec, probes: [number, boolean][], from: HealthState = initialHealth()): HealthState[] {
  const out: HealthState[] = [];
  let state = from;
  for (const [at, pass] of probes) {
    state = nextHealth(state, result(at, pass), { spec: s, startedAtMs: T0, nowMs: T0 + at + 5 });
    out.push(state);
  }
  return out;
}

const view = (states: HealthState[]) => states.map((s) => `${s.status}/${s.failingStreak}`);

describe('nextHealth', () => {
  it('starts as starting with no streak', () => {
    assert.deepEqual(initialHealth(), { status: 'starting', failingStreak: 0, log: [] });
  });

  it('ignores failures inside the start period while starting, then counts them', () => {
    const states = run(spec, [
      [2000, false],
      [4000, false],
      [29_999, false],
      [30_000, false],
      [40_000, false],
      [50_000, false],
    ]);
    assert.deepEqual(view(states), ['starting/0', 'starting/0', 'starting/0', 'starting/1', 'starting/2', 'unhealthy/3']);
  });

  it('becomes healthy on the first pass, even inside the start period', () => {
    assert.deepEqual(view(run(spec, [[2000, false], [4000, true]])), ['starting/0', 'healthy/0']);
  });

  it('counts failures inside the start period once the container has been healthy', () => {
    assert.deepEqual(view(run(spec, [[2000, true], [4000, false], [6000, false], [8000, false]])), ['healthy/0', 'healthy/1', 'healthy/2', 'unhealthy/3']);
  });

  it('goes unhealthy after `retries` failures in a row and recovers on one pass', () => {
    const s = { ...spec, startPeriodMs: 0 };
    const states = run(s, [
      [0, true],
      [10_000, false],
      [20_000, true],
      [30_000, false],
      [40_000, false],
      [50_000, false],
      [60_000, false],
      [70_000, true],
    ]);
    assert.deepEqual(view(states), ['healthy/0', 'healthy/1', 'healthy/0', 'healthy/1', 'healthy/2', 'unhealthy/3', 'unhealthy/4', 'healthy/0']);
  });

  it('reads retries 1 as the first failure and retries 0 as the default 3, as Docker', () => {
    const s = { ...spec, startPeriodMs: 0 };
    assert.deepEqual(view(run({ ...s, retries: 1 }, [[0, false]])), ['unhealthy/1']);
    assert.deepEqual(view(run({ ...s, retries: 0 }, [[0, false], [1, false], [2, false]])), ['starting/1', 'starting/2', 'unhealthy/3']);
  });

  it('measures the start period from the probe start, falling back to now', () => {
    // started at 29.9s, ended after the period: still ignored, as Docker uses result.Start
    const late = { ...result(29_900, false), end: new Date(T0 + 31_000).toISOString() };
    assert.equal(nextHealth(initialHealth(), late, { spec, startedAtMs: T0, nowMs: T0 + 31_000 }).failingStreak, 0);
    const undated = { ...late, start: 'not a date' };
    assert.equal(nextHealth(initialHealth(), undated, { spec, startedAtMs: T0, nowMs: T0 + 31_000 }).failingStreak, 1);
  });

  it('keeps the last 5 results, outputs truncated to 4096 bytes', () => {
    let state = initialHealth();
    for (let i = 0; i < 7; i++) state = nextHealth(state, result(i, true, `run ${i}`), { spec, startedAtMs: T0, nowMs: T0 + i });
    assert.deepEqual(
      state.log.map((r) => r.output),
      ['run 2', 'run 3', 'run 4', 'run 5', 'run 6'],
    );
    state = nextHealth(state, result(8, false, 'x'.repeat(10_000)), { spec, startedAtMs: T0, nowMs: T0 + 8 });
    assert.equal(state.log[4].output.length, 4096);
  });

  it('does not change the state it is given', () => {
    const before = initialHealth();
    nextHealth(before, result(0, true), { spec, startedAtMs: T0, nowMs: T0 });
    assert.deepEqual(before, initialHealth());
  });
});

describe('truncateOutput', () => {
  it('cuts at 4096 bytes without splitting a character', () => {
    assert.equal(truncateOutput('short'), 'short');
    const euro = '€'.repeat(2000); // 3 bytes each: 4096 falls inside the 1366th
    const cut = truncateOutput(euro);
    assert.equal(cut, '€'.repeat(1365));
    assert.ok(Buffer.byteLength(cut) <= MAX_OUTPUT_BYTES);
  });
});

describe('nextDelayMs', () => {
  const starting = initialHealth();
  const healthy: HealthState = { status: 'healthy', failingStreak: 0, log: [] };
  it('uses the start interval inside the start period while starting', () => {
    assert.equal(nextDelayMs(starting, spec, T0, T0), 2000);
    assert.equal(nextDelayMs(starting, spec, T0, T0 + 29_999), 2000);
  });
  it('uses the interval after the start period, once healthy, or without a start interval', () => {
    assert.equal(nextDelayMs(starting, spec, T0, T0 + 30_000), 10_000);
    assert.equal(nextDelayMs(healthy, spec, T0, T0 + 1000), 10_000);
    assert.equal(nextDelayMs(starting, { ...spec, startIntervalMs: undefined }, T0, T0), 10_000);
    assert.equal(nextDelayMs(starting, { ...spec, startPeriodMs: 0 }, T0, T0), 10_000);
  });
  it("reads zero intervals as Docker's defaults, never as a tight loop", () => {
    assert.equal(nextDelayMs(starting, { ...spec, startIntervalMs: 0 }, T0, T0), 10_000);
    assert.equal(nextDelayMs(healthy, { ...spec, intervalMs: 0 }, T0, T0), 30_000);
  });
});
