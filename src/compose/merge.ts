/**
 * Merging several compose files (-f a.yml -f b.yml), as Compose does: later files override
 * earlier ones. Mappings merge key by key; scalars are replaced; sequences are appended (exact
 * duplicates dropped), except
 *   - command, entrypoint and healthcheck.test, which are replaced;
 *   - environment, labels, extra_hosts, networks and depends_on of a service and labels of a
 *     network, which may be lists or mappings: both sides become mappings, merged by name.
 * `!reset` removes a value, `!override` replaces it without merging. Locations are carried over,
 * so errors still point at the file and line that wrote the value.
 */
import { type Locations, type PlainMap, Override, Reset, isPlainMap, newMap } from './source.js';

const REPLACED = [/^services\.[^.]+\.(command|entrypoint)$/, /^services\.[^.]+\.healthcheck\.test$/];
const BY_NAME = [/^services\.[^.]+\.(environment|labels|extra_hosts|networks|depends_on)$/, /^networks\.[^.]+\.labels$/];

type Field = 'environment' | 'labels' | 'extra_hosts' | 'networks' | 'depends_on';

function fieldOf(path: string): Field {
  return path.slice(path.lastIndexOf('.') + 1) as Field;
}

/** A list entry of a by-name field as [name, value], or undefined if it is not well formed. */
function entryOf(field: Field, item: unknown): [string, unknown] | undefined {
  if (field === 'networks' || field === 'depends_on') return typeof item === 'string' ? [item, null] : undefined;
  if (typeof item !== 'string') return undefined;
  let sep = item.indexOf('=');
  if (field === 'extra_hosts' && sep < 0) sep = item.indexOf(':');
  if (sep < 0) return field === 'extra_hosts' ? undefined : [item, field === 'labels' ? '' : null];
  return sep === 0 ? undefined : [item.slice(0, sep), item.slice(sep + 1)];
}

/** A by-name list as a mapping (locations kept), or undefined if an item does not fit. */
function asMap(locs: Locations, field: Field, v: unknown): PlainMap | undefined {
  if (isPlainMap(v)) return v;
  if (!Array.isArray(v)) return undefined;
  const out = newMap();
  for (let i = 0; i < v.length; i++) {
    const e = entryOf(field, v[i]);
    if (!e) return undefined;
    out[e[0]] = e[1];
    locs.set(out, e[0], locs.get(v, i));
  }
  return out;
}

function sameJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

function mergeMaps(locs: Locations, base: PlainMap, over: PlainMap, path: string): PlainMap {
  const out = newMap();
  for (const k of Object.keys(base)) {
    out[k] = base[k];
    locs.set(out, k, locs.get(base, k));
  }
  for (const k of Object.keys(over)) {
    const childPath = path ? `${path}.${k}` : k;
    const v = over[k];
    if (v instanceof Reset) {
      delete out[k];
      continue;
    }
    out[k] = k in out ? mergeValue(locs, out[k], v, childPath) : v;
    locs.set(out, k, locs.get(over, k));
  }
  return out;
}

function mergeValue(locs: Locations, base: unknown, over: unknown, path: string): unknown {
  if (over instanceof Override) return over.value;
  if (base === undefined || base instanceof Reset) return over;
  if (REPLACED.some((r) => r.test(path))) return over;
  if (BY_NAME.some((r) => r.test(path)) && (Array.isArray(base) || Array.isArray(over))) {
    const field = fieldOf(path);
    const a = asMap(locs, field, base);
    const b = asMap(locs, field, over);
    if (a && b) return mergeMaps(locs, a, b, path);
    return over;
  }
  if (isPlainMap(base) && isPlainMap(over)) return mergeMaps(locs, base, over, path);
  if (Array.isArray(base) && Array.isArray(over)) {
    const out: unknown[] = [];
    const add = (list: unknown[], i: number): void => {
      if (out.some((x) => sameJson(x, list[i]))) return;
      locs.set(out, out.length, locs.get(list, i));
      out.push(list[i]);
    };
    base.forEach((_, i) => add(base, i));
    over.forEach((_, i) => add(over, i));
    return out;
  }
  return over;
}

/** Merges the files' documents in order (each a mapping). */
export function mergeDocuments(locs: Locations, docs: readonly PlainMap[]): PlainMap {
  let out = newMap();
  for (const d of docs) out = mergeMaps(locs, out, d, '');
  return stripMarkers(locs, out) as PlainMap;
}

/** Removes what is left of !reset and unwraps !override (a single file may use them too). */
export function stripMarkers(locs: Locations, v: unknown): unknown {
  if (v instanceof Override) return stripMarkers(locs, v.value);
  if (Array.isArray(v)) {
    const out: unknown[] = [];
    v.forEach((x, i) => {
      if (x instanceof Reset) return;
      locs.set(out, out.length, locs.get(v, i));
      out.push(stripMarkers(locs, x));
    });
    return out;
  }
  if (isPlainMap(v)) {
    const out = newMap();
    for (const k of Object.keys(v)) {
      if (v[k] instanceof Reset) continue;
      out[k] = stripMarkers(locs, v[k]);
      locs.set(out, k, locs.get(v, k));
    }
    return out;
  }
  return v;
}
