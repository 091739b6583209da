/**
 * Compose files as plain values that remember where they came from. A YAML document becomes plain
 * objects, arrays and scalars (what the rest of compose/ validates), and a side table maps each
 * (container, key) pair to the file and line of that key or item, so that an error about
 * services.web.ports[0] can say `compose.yml:12:` even after interpolation and merging, which
 * keep the containers (and copy their locations).
 *
 * YAML 1.2 core schema (as Compose's yaml.v3): yes/no/on/off are strings. Anchors and aliases
 * expand to copies; `<<` merge keys are supported (explicit keys win); Compose's `!reset` and
 * `!override` tags become Reset and Override markers that merge.ts resolves.
 */
import { LineCounter, isAlias, isMap, isScalar, isSeq, parseDocument, type Document, type Node } from 'yaml';
import type { ComposeIssue } from './errors.js';

export interface Loc {
  file: string;
  line: number;
}

/** `!reset`: drop the value (and what earlier files said about it). */
export class Reset {}

/** `!override`: replace the value of earlier files instead of merging with it. */
export class Override {
  constructor(readonly value: unknown) {}
}

export type Key = string | number;

/** Where each key of a map and each item of a sequence was written, keyed by the container. */
export class Locations {
  private readonly table = new WeakMap<object, Map<Key, Loc>>();

  set(container: object, key: Key, loc: Loc | undefined): void {
    if (!loc) return;
    let m = this.table.get(container);
    if (!m) this.table.set(container, (m = new Map()));
    m.set(key, loc);
  }

  get(container: unknown, key: Key): Loc | undefined {
    if (container === null || typeof container !== 'object') return undefined;
    return this.table.get(container)?.get(key);
  }
}

/** A plain map (no prototype, so any key is data). */
export type PlainMap = Record<string, unknown>;

export function newMap(): PlainMap {
  return Object.create(null) as PlainMap;
}

export function isPlainMap(v: unknown): v is PlainMap {
  return v !== null && typeof v === 'object' && !Array.isArray(v) && !(v instanceof Reset) && !(v instanceof Override);
}

/** A deep copy with ordinary objects (for values handed out in the model, e.g. x-* keys). */
export function toPlain(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(toPlain);
  if (v instanceof Override) return toPlain(v.value);
  if (v instanceof Reset) return null;
  if (isPlainMap(v)) {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(v)) Object.defineProperty(out, k, { value: toPlain(v[k]), enumerable: true, writable: true, configurable: true });
    return out;
  }
  return v;
}

/** Aliases may expand to at most this many nodes in one file (billion laughs). */
const MAX_NODES = 200_000;

interface Ctx {
  doc: Document;
  file: string;
  lines: LineCounter;
  issues: ComposeIssue[];
  locs: Locations;
  nodes: number;
  /** aliases being expanded, to catch an alias inside its own anchor */
  expanding: Set<Node>;
}

function lineOf(ctx: Ctx, node: unknown): number | undefined {
  const range = (node as { range?: [number, number, number] | null } | null)?.range;
  return range ? ctx.lines.linePos(range[0]).line : undefined;
}

function locOf(ctx: Ctx, node: unknown): Loc | undefined {
  const line = lineOf(ctx, node);
  return line === undefined ? undefined : { file: ctx.file, line };
}

function scalarKey(ctx: Ctx, key: unknown): string | undefined {
  const k = isAlias(key) ? key.resolve(ctx.doc) : key;
  if (isScalar(k) && k.value !== null && typeof k.value !== 'object') return String(k.value);
  if (k === null || k === undefined) return undefined;
  if (typeof k !== 'object') return String(k);
  return undefined;
}

function isMergeKey(key: unknown): boolean {
  return isScalar(key) && key.value === '<<' && (key.type === undefined || key.type === 'PLAIN');
}

function convert(ctx: Ctx, node: unknown): unknown {
  if (++ctx.nodes > MAX_NODES) throw new Error(`the document expands to more than ${MAX_NODES} nodes (aliases nested too deep)`);
  if (node === null || node === undefined) return null;
  if (isAlias(node)) {
    const target = node.resolve(ctx.doc);
    if (!target) throw new Error(`unknown alias *${node.source}`);
    if (ctx.expanding.has(target)) throw new Error(`alias *${node.source} refers to itself`);
    ctx.expanding.add(target);
    try {
      return convert(ctx, target);
    } finally {
      ctx.expanding.delete(target);
    }
  }
  const tag = (node as { tag?: string }).tag;
  if (tag === '!reset') return new Reset();
  if (tag === '!override') return new Override(convertPlain(ctx, node));
  return convertPlain(ctx, node);
}

function convertPlain(ctx: Ctx, node: unknown): unknown {
  if (isScalar(node)) {
    const v = node.value;
    if (typeof v === 'bigint') return Number(v);
    if (v instanceof Date) return v.toISOString();
    return v ?? null;
  }
  if (isSeq(node)) {
    const out: unknown[] = [];
    for (const item of node.items) {
      ctx.locs.set(out, out.length, locOf(ctx, item) ?? locOf(ctx, node));
      out.push(convert(ctx, item));
    }
    return out;
  }
  if (isMap(node)) {
    const out = newMap();
    const merges: unknown[] = [];
    for (const pair of node.items) {
      if (isMergeKey(pair.key)) {
        merges.push(pair.value);
        continue;
      }
      const key = scalarKey(ctx, pair.key);
      const loc = locOf(ctx, pair.key) ?? locOf(ctx, node);
      if (key === undefined) {
        ctx.issues.push({ file: ctx.file, line: loc?.line, message: 'a mapping key must be a plain value (a string or a number)' });
        continue;
      }
      ctx.locs.set(out, key, loc);
      out[key] = convert(ctx, pair.value);
    }
    for (const m of merges) mergeInto(ctx, out, m);
    return out;
  }
  return node;
}

/** `<<: *base` or `<<: [*a, *b]`: keys not already present are copied (earlier sources win). */
function mergeInto(ctx: Ctx, out: Record<string, unknown>, source: unknown): void {
  const resolved = isAlias(source) ? source.resolve(ctx.doc) : source;
  if (isSeq(resolved)) {
    for (const item of resolved.items) mergeInto(ctx, out, item);
    return;
  }
  if (!isMap(resolved)) throw new Error('a "<<" merge key takes a mapping or a list of mappings (usually aliases)');
  const value = convert(ctx, resolved);
  if (!isPlainMap(value)) return;
  for (const key of Object.keys(value)) {
    if (key in out) continue;
    out[key] = value[key];
    ctx.locs.set(out, key, ctx.locs.get(value, key));
  }
}

/** The first line of a yaml error message, without the position (we print our own). */
function yamlMessage(message: string): string {
  return (message.split('\n')[0] ?? message).replace(/ at line \d+, column \d+:?$/, '');
}

export interface ParsedFile {
  /** the whole document as plain values (null for an empty file) */
  value: unknown;
  /** the line of the document's first node */
  line: number;
  issues: ComposeIssue[];
}

/** Parses one compose file's text; syntax errors come back as issues (value is then null). */
export function parseYaml(text: string, file: string, locs: Locations): ParsedFile {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  const issues: ComposeIssue[] = doc.errors.map((e) => ({
    file,
    line: lines.linePos(e.pos[0]).line || 1,
    message: `invalid YAML: ${yamlMessage(e.message)}`,
  }));
  if (issues.length) return { value: null, line: 1, issues };
  const ctx: Ctx = { doc, file, lines, issues, locs, nodes: 0, expanding: new Set() };
  try {
    const value = convert(ctx, doc.contents);
    return { value, line: lineOf(ctx, doc.contents) ?? 1, issues };
  } catch (e) {
    issues.push({ file, message: `invalid YAML: ${(e as Error).message}` });
    return { value: null, line: 1, issues };
  }
}
