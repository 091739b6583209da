/**
 * The validation toolkit: a cursor (value + key path + location) walked over the plain tree, typed
 * readers that record an issue and return undefined on a bad value, and the key check that tells
 * an unknown key (with the closest known one) from a Compose key weft does not support.
 */
import type { ComposeIssue } from './errors.js';
import { type Key, type Loc, type Locations, isPlainMap, toPlain } from './source.js';

/** A value in the tree, its key path and where it was written. */
export interface At {
  value: unknown;
  path: string;
  loc?: Loc;
}

export function joinPath(path: string, key: Key): string {
  if (typeof key === 'number') return `${path}[${key}]`;
  const k = /^[A-Za-z0-9_-]+$/.test(key) ? key : JSON.stringify(key);
  if (path === '') return k;
  return /^[A-Za-z0-9_-]+$/.test(key) ? `${path}.${k}` : `${path}[${k}]`;
}

/** For messages: `a number (80)`, `a list`, `"text"`. */
export function describe(v: unknown): string {
  if (v === null || v === undefined) return 'nothing (null)';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  if (typeof v === 'string') return `the string ${JSON.stringify(v)}`;
  if (typeof v === 'number') return `the number ${v}`;
  return `${typeof v} ${String(v)}`;
}

/** Levenshtein distance, for "did you mean". */
export function distance(a: string, b: string): number {
  const prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0];
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const up = prev[j];
      prev[j] = Math.min(prev[j] + 1, prev[j - 1] + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = up;
    }
  }
  return prev[b.length];
}

/** The closest candidate if it is close enough to be a typo. */
export function closest(word: string, candidates: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  for (const c of candidates) {
    const d = distance(word.toLowerCase(), c.toLowerCase());
    if (d < bestD) {
      best = c;
      bestD = d;
    }
  }
  return best !== undefined && bestD <= Math.max(1, Math.floor(word.length / 3)) ? best : undefined;
}

/** The keys a mapping may have. */
export interface KeySpec {
  supported: readonly string[];
  /** Compose keys weft does not support, with the reason */
  unsupported?: Readonly<Record<string, string>>;
  /** x-* keys allowed */
  extensions?: boolean;
}

/** false, null, [] and {}: a value that asks for nothing, so an unsupported key may carry it. */
export function asksForNothing(v: unknown): boolean {
  return v === false || v === null || (Array.isArray(v) && v.length === 0) || (isPlainMap(v) && Object.keys(v).length === 0);
}

export class Checker {
  readonly issues: ComposeIssue[] = [];
  readonly warnings: ComposeIssue[] = [];
  /** paths whose value could not be interpolated: later checks of them would only repeat it */
  readonly failed = new Set<string>();

  constructor(readonly locs: Locations) {}

  child(at: At, key: Key): At {
    const container = at.value !== null && typeof at.value === 'object' ? (at.value as Record<Key, unknown>) : undefined;
    return { value: container?.[key], path: joinPath(at.path, key), loc: this.locs.get(at.value, key) ?? at.loc };
  }

  error(at: At, message: string): undefined {
    if (this.failed.has(at.path)) return undefined;
    this.issues.push({ file: at.loc?.file, line: at.loc?.line, path: at.path || undefined, message });
    return undefined;
  }

  warn(at: At, message: string): void {
    this.warnings.push({ file: at.loc?.file, line: at.loc?.line, path: at.path || undefined, message });
  }

  /** The entries of a mapping (undefined + issue if it is not one). */
  map(at: At, what = 'a mapping'): [string, At][] | undefined {
    if (!isPlainMap(at.value)) return this.error(at, `expected ${what}, got ${describe(at.value)}`);
    return Object.keys(at.value).map((k) => [k, this.child(at, k)]);
  }

  /** The items of a list (undefined + issue if it is not one). */
  list(at: At, what = 'a list'): At[] | undefined {
    if (!Array.isArray(at.value)) return this.error(at, `expected ${what}, got ${describe(at.value)}`);
    return at.value.map((_, i) => this.child(at, i));
  }

  string(at: At, what = 'a string'): string | undefined {
    if (typeof at.value !== 'string') return this.error(at, `expected ${what}, got ${describe(at.value)}`);
    return at.value;
  }

  /** A string; numbers and booleans become their text (environment values, label values...). */
  text(at: At, what = 'a string'): string | undefined {
    const v = at.value;
    if (typeof v === 'string') return v;
    if (typeof v === 'number' || typeof v === 'boolean') return String(v);
    return this.error(at, `expected ${what}, got ${describe(v)}`);
  }

  /** A whole number (a string of digits is accepted: interpolation yields strings). */
  integer(at: At, min: number, max = Number.MAX_SAFE_INTEGER, what = 'a whole number'): number | undefined {
    const v = at.value;
    const n = typeof v === 'number' ? v : typeof v === 'string' && /^-?\d+$/.test(v.trim()) ? Number(v.trim()) : NaN;
    if (!Number.isInteger(n)) return this.error(at, `expected ${what}, got ${describe(v)}`);
    if (n < min || n > max) return this.error(at, `${n} is out of range (${min}-${max})`);
    return n;
  }

  /** true/false (the strings "true" and "false" too: interpolation yields strings). */
  boolean(at: At): boolean | undefined {
    const v = at.value;
    if (typeof v === 'boolean') return v;
    if (typeof v === 'string' && /^(true|false)$/i.test(v.trim())) return v.trim().toLowerCase() === 'true';
    return this.error(at, `expected true or false, got ${describe(v)}`);
  }

  /** A string or a list of strings, as a list. */
  stringOrList(at: At, what = 'a string or a list of strings'): string[] | undefined {
    if (typeof at.value === 'string') return [at.value];
    if (!Array.isArray(at.value)) return this.error(at, `expected ${what}, got ${describe(at.value)}`);
    const out: string[] = [];
    for (const item of this.list(at) ?? []) {
      const s = this.text(item);
      if (s !== undefined) out.push(s);
    }
    return out;
  }

  /**
   * Checks a mapping's keys: unknown keys (with a suggestion) and unsupported ones are issues.
   * Returns the mapping's entries to read (unknown and unsupported ones left out), or undefined
   * if the value is not a mapping.
   */
  keys(at: At, spec: KeySpec, what = 'a mapping'): Map<string, At> | undefined {
    const entries = this.map(at, what);
    if (!entries) return undefined;
    const out = new Map<string, At>();
    for (const [key, child] of entries) {
      if (spec.supported.includes(key)) {
        out.set(key, child);
      } else if (spec.extensions && key.startsWith('x-')) {
        out.set(key, child);
      } else if (spec.unsupported && Object.prototype.hasOwnProperty.call(spec.unsupported, key)) {
        if (!asksForNothing(child.value)) this.error(child, `not supported by weft (${spec.unsupported[key]})`);
      } else {
        const hint = closest(key, [...spec.supported, ...Object.keys(spec.unsupported ?? {})]);
        const ext = spec.extensions ? '; extension keys start with x-' : '';
        this.error({ ...child, path: at.path }, `unknown key "${key}"${hint ? `; did you mean "${hint}"?` : ''}${hint ? '' : ext}`);
      }
    }
    return out;
  }

  /** The x-* entries of a checked mapping, as plain values. */
  extensions(keys: Map<string, At> | undefined): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const [k, at] of keys ?? []) if (k.startsWith('x-')) out[k] = toPlain(at.value);
    return out;
  }
}
