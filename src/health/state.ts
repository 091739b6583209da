/**
 * The health state machine, pure, with Docker's semantics (moby daemon/health.go,
 * handleProbeResult and monitor's getInterval).
 */
import { DEFAULT_INTERVAL_MS, DEFAULT_RETRIES, type HealthSpec } from './spec.js';

export type HealthStatus = 'starting' | 'healthy' | 'unhealthy';

/**
 * One probe's outcome, as Docker's inspect shows it. exitCode 0 passes and anything else fails:
 * CMD probes keep the command's own code, weft's TCP/HTTP probes use 1 when the service refused
 * or answered badly, and -1 means the probe timed out or could not run (Docker's convention).
 */
export interface ProbeResult {
  /** ISO 8601 */
  start: string;
  end: string;
  exitCode: number;
  /** at most MAX_OUTPUT_BYTES of UTF-8 */
  output: string;
}

export interface HealthState {
  status: HealthStatus;
  failingStreak: number;
  /** the last MAX_LOG results, oldest first */
  log: ProbeResult[];
}

/** Docker keeps 5 results and 4 KiB of output per result. */
export const MAX_LOG = 5;
export const MAX_OUTPUT_BYTES = 4096;

export function initialHealth(): HealthState {
  return { status: 'starting', failingStreak: 0, log: [] };
}

/** The first MAX_OUTPUT_BYTES bytes of `text` as UTF-8, never cutting a character in two. */
export function truncateOutput(text: string): string {
  const buf = Buffer.from(text, 'utf8');
  if (buf.length <= MAX_OUTPUT_BYTES) return text;
  let n = MAX_OUTPUT_BYTES;
  while (n > 0 && (buf[n] & 0xc0) === 0x80) n--; // back off continuation bytes
  return buf.subarray(0, n).toString('utf8');
}

/**
 * The state after one probe result.
 * - A pass makes the container healthy and resets the streak.
 * - A failure while still `starting` whose probe began inside the start period does not count
 *   (Docker measures from the probe's start, result.start; nowMs is used only if that is not a
 *   valid date). Once the container has been healthy the start period no longer shields it.
 * - Any other failure adds to failingStreak; at `retries` failures in a row it is unhealthy.
 *   Until then the status stays what it was (starting or healthy).
 * - retries 0 (or less) means Docker's default, 3, as in Docker; use 1 to fail on the first.
 */
export function nextHealth(state: HealthState, result: ProbeResult, ctx: { spec: HealthSpec; startedAtMs: number; nowMs: number }): HealthState {
  const entry = { ...result, output: truncateOutput(result.output) };
  const log = [...state.log, entry].slice(-MAX_LOG);
  if (result.exitCode === 0) return { status: 'healthy', failingStreak: 0, log };

  const probeStart = Date.parse(result.start);
  const at = Number.isNaN(probeStart) ? ctx.nowMs : probeStart;
  if (state.status === 'starting' && at - ctx.startedAtMs < ctx.spec.startPeriodMs) return { ...state, log };

  const retries = ctx.spec.retries > 0 ? ctx.spec.retries : DEFAULT_RETRIES;
  const failingStreak = state.failingStreak + 1;
  return { status: failingStreak >= retries ? 'unhealthy' : state.status, failingStreak, log };
}

/**
 * How long to wait before the next probe (Docker's getInterval): the start interval while inside
 * the start period and still starting, when the spec has one; otherwise the interval. A zero
 * interval is Docker's default, 30s, as in Docker at run time (specs from Compose keep zeros),
 * and a zero start interval counts as none: either would otherwise probe in a tight loop.
 */
export function nextDelayMs(state: HealthState, spec: HealthSpec, startedAtMs: number, nowMs: number): number {
  const inStartPeriod = nowMs - startedAtMs < spec.startPeriodMs;
  const startInterval = spec.startIntervalMs ?? 0;
  if (inStartPeriod && state.status === 'starting' && startInterval > 0) return startInterval;
  return spec.intervalMs > 0 ? spec.intervalMs : DEFAULT_INTERVAL_MS;
}
