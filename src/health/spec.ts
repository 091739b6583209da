/**
 * Health-check specs: Docker's HEALTHCHECK (and Compose's `healthcheck:`) plus two probes of
 * weft's own, TCP and HTTP, that run from the agent against the container's address and so need
 * nothing inside the image.
 */
import { parseDuration } from '../compose/values.js';

/**
 * One container's health check; durations in milliseconds.
 * test: ['CMD', ...argv] | ['CMD-SHELL', command] | ['TCP', port] | ['HTTP', port, path]
 * (normalised by normalizeHealthTest; a disabled check is no spec at all).
 */
export interface HealthSpec {
  test: string[];
  intervalMs: number;
  timeoutMs: number;
  retries: number;
  startPeriodMs: number;
  /** probe interval during the start period while still starting; without it, intervalMs */
  startIntervalMs?: number;
}

/** Docker's defaults (daemon/health.go). */
export const DEFAULT_INTERVAL_MS = 30_000;
export const DEFAULT_TIMEOUT_MS = 30_000;
export const DEFAULT_RETRIES = 3;
export const DEFAULT_START_PERIOD_MS = 0;
export const DEFAULT_START_INTERVAL_MS = 5_000;

/** Bad health-check input; `field` is the Compose key at fault (test, interval, retries, ...). */
export class HealthSpecError extends Error {
  constructor(
    readonly field: string,
    reason: string,
  ) {
    super(`healthcheck.${field}: ${reason}`);
    this.name = 'HealthSpecError';
  }
}

const KINDS = ['NONE', 'CMD', 'CMD-SHELL', 'TCP', 'HTTP'];

/**
 * Compose's `test` in normal form. A string is a shell command; a list starts with one of
 * NONE, CMD, CMD-SHELL (Docker's, case-sensitive as in Docker) or weft's TCP, HTTP.
 * Returns ['NONE'], ['CMD', ...argv], ['CMD-SHELL', command], ['TCP', port] or ['HTTP', port, path].
 */
export function normalizeHealthTest(test: string | string[]): string[] {
  if (typeof test === 'string') {
    if (test.trim() === '') throw new HealthSpecError('test', 'the command is empty');
    return ['CMD-SHELL', test];
  }
  if (!Array.isArray(test) || test.length === 0) {
    throw new HealthSpecError('test', 'give a command string or a list such as ["CMD", "curl", "-f", "http://localhost/"]');
  }
  const [kind, ...args] = test.map(String);
  if (!KINDS.includes(kind)) {
    const hint = KINDS.includes(kind.toUpperCase()) ? `; write it in capitals: "${kind.toUpperCase()}"` : '';
    throw new HealthSpecError('test', `a test list starts with "CMD", "CMD-SHELL", "TCP", "HTTP" or "NONE", not ${JSON.stringify(kind)}${hint}`);
  }
  switch (kind) {
    case 'NONE':
      return ['NONE'];
    case 'CMD':
      if (!args[0]) throw new HealthSpecError('test', 'CMD needs a program to run, e.g. ["CMD", "pg_isready"]');
      return ['CMD', ...args];
    case 'CMD-SHELL': {
      // Joined as Compose does in weft (src/compose/service.ts): one command for `sh -c`.
      const command = args.join(' ');
      if (command.trim() === '') throw new HealthSpecError('test', 'CMD-SHELL needs a command, e.g. ["CMD-SHELL", "curl -f http://localhost/"]');
      return ['CMD-SHELL', command];
    }
    case 'TCP':
      if (args.length !== 1) throw new HealthSpecError('test', 'TCP takes one port: ["TCP", "5432"]');
      return ['TCP', port(args[0])];
    default: {
      if (args.length < 1 || args.length > 2) throw new HealthSpecError('test', 'HTTP takes a port and an optional path: ["HTTP", "8080", "/healthz"]');
      const path = args[1] ?? '/';
      // Node's http client refuses anything outside \u0021-\u00ff in a path; say so here instead.
      if (!/^\/[\u0021-\u00ff]*$/.test(path)) {
        throw new HealthSpecError('test', `the HTTP path ${JSON.stringify(path)} must start with "/" and hold no spaces (escape them as %20)`);
      }
      return ['HTTP', port(args[0]), path];
    }
  }
}

function port(text: string): string {
  const n = /^\d{1,5}$/.test(text) ? Number(text) : NaN;
  if (!(n >= 1 && n <= 65535)) throw new HealthSpecError('test', `${JSON.stringify(text)} is not a port; use 1-65535`);
  return String(n);
}

export interface HealthcheckInput {
  test: string | string[];
  interval?: string | number;
  timeout?: string | number;
  retries?: number;
  start_period?: string | number;
  start_interval?: string | number;
  disable?: boolean;
}

/**
 * A HealthSpec from Compose-shaped input, Docker's defaults filled in; undefined when the check
 * is disabled (`disable: true` or test NONE).
 *
 * As in Docker, 0 for interval, timeout or start_interval and 0 retries mean "the default"
 * (Docker reads a zero as "inherit" and then falls back to 30s / 30s / 5s / 3); retries 1 is how
 * to be unhealthy on the first failure. Durations are Go strings ("1m30s", "500ms", "1.5s") or
 * numbers of milliseconds.
 */
export function healthSpec(input: HealthcheckInput): HealthSpec | undefined {
  if (input.disable === true) return undefined;
  const test = normalizeHealthTest(input.test);
  if (test[0] === 'NONE') return undefined;
  const retries = input.retries ?? 0;
  if (!Number.isInteger(retries) || retries < 0) {
    throw new HealthSpecError('retries', `${JSON.stringify(input.retries)} is not a count; use a whole number, 0 or more (0 means the default, ${DEFAULT_RETRIES})`);
  }
  return {
    test,
    intervalMs: duration('interval', input.interval) || DEFAULT_INTERVAL_MS,
    timeoutMs: duration('timeout', input.timeout) || DEFAULT_TIMEOUT_MS,
    retries: retries || DEFAULT_RETRIES,
    startPeriodMs: duration('start_period', input.start_period),
    startIntervalMs: duration('start_interval', input.start_interval) || DEFAULT_START_INTERVAL_MS,
  };
}

/** Milliseconds, 0 when absent; rejects negatives and durations between 0 and 1ms (as Docker). */
function duration(field: string, value: string | number | undefined): number {
  if (value === undefined) return 0;
  let ms: number;
  if (typeof value === 'number') {
    if (!Number.isFinite(value) || value < 0) throw new HealthSpecError(field, `${value} is not a duration; use 0 or more milliseconds, or a string like "10s"`);
    ms = value;
  } else {
    try {
      ms = parseDuration(value);
    } catch (e) {
      throw new HealthSpecError(field, (e as Error).message);
    }
    // parseDuration rounds to whole ms: "300us" comes back as 0 but is not zero.
    if (ms === 0 && /[1-9]/.test(value)) ms = 0.5;
  }
  if (ms > 0 && ms < 1) throw new HealthSpecError(field, `${JSON.stringify(value)} is under 1ms, the shortest Docker allows`);
  return Math.round(ms);
}

/** Short text for `ps` and inspect: "tcp :80", "http :8080/healthz", "cmd pg_isready -U app". */
export function describeHealthTest(spec: Pick<HealthSpec, 'test'>): string {
  const [kind, ...args] = spec.test;
  switch (kind) {
    case 'TCP':
      return `tcp :${args[0]}`;
    case 'HTTP':
      return `http :${args[0]}${args[1] ?? '/'}`;
    case 'CMD':
      return shorten(`cmd ${args.map(quote).join(' ')}`);
    case 'CMD-SHELL':
      return shorten(`shell ${args.join(' ')}`);
    default:
      return 'none';
  }
}

function quote(word: string): string {
  return word === '' || /[\s'"\\]/.test(word) ? `'${word.replace(/'/g, `'\\''`)}'` : word;
}

/** Docker's `ps` truncates commands too; 40 characters keeps a table row readable. */
function shorten(text: string): string {
  return text.length > 40 ? `${text.slice(0, 39)}…` : text;
}
