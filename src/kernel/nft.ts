/**
 * nftables: transactions and reads. Every write is one `nft -f FILE` = one atomic transaction
 * (nft cannot read a pipe from Node here, so the script goes through a private temp file,
 * weft-nft-PID-RANDOM.nft, removed afterwards; files of dead processes are swept). Reads
 * use `nft -j`. Optionally inside a named network namespace (`ip netns exec NS nft ...`).
 *
 * weft only ever names its own tables here; nothing in this module flushes a ruleset.
 */
import { randomBytes } from 'node:crypto';
import { readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KernelError, run, type RunResult } from './exec.js';

export type NftFamily = 'ip' | 'ip6' | 'inet' | 'arp' | 'bridge' | 'netdev';

export interface NftOptions {
  /** a named network namespace (/run/netns/NAME); default: the caller's own */
  netns?: string;
}

const NFT = '/usr/sbin/nft';
const NAME = /^[A-Za-z][A-Za-z0-9_./-]*$/;
const FAMILIES: ReadonlySet<string> = new Set(['ip', 'ip6', 'inet', 'arp', 'bridge', 'netdev']);

function checkNames(family: string, ...names: string[]): void {
  if (!FAMILIES.has(family)) throw new TypeError(`nft: unknown family "${family}"`);
  for (const n of names) if (!NAME.test(n)) throw new TypeError(`nft: "${n}" is not a valid nft object name`);
}

function nft(args: string[], opts: NftOptions = {}, okCodes?: number[]): Promise<RunResult> {
  if (opts.netns !== undefined) {
    if (!/^[A-Za-z0-9_.-]+$/.test(opts.netns)) throw new TypeError(`nft: "${opts.netns}" is not a netns name`);
    return run('ip', ['netns', 'exec', opts.netns, NFT, ...args], { okCodes });
  }
  return run(NFT, args, { okCodes });
}

/** nft's own error text (its "Error: ..." lines with the offending line), for KernelError messages. */
function nftMessage(stderr: string): string {
  const lines = stderr.trim().split('\n').filter((l) => l.trim());
  return lines.slice(0, 12).join('\n') || 'nft failed';
}

const TX_FILE = /^weft-nft-(\d+)-[0-9a-f]+\.nft$/;
let swept = false;

/**
 * Removes transaction files left by weft processes that died between writing and removing them
 * (killed mid-apply). Files of live processes are left alone. Once per process, best effort.
 */
async function sweepStaleFiles(dir: string): Promise<void> {
  if (swept) return;
  swept = true;
  try {
    for (const name of await readdir(dir)) {
      const m = TX_FILE.exec(name);
      if (!m || Number(m[1]) === process.pid) continue;
      try {
        process.kill(Number(m[1]), 0);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ESRCH') await rm(join(dir, name), { force: true });
      }
    }
  } catch {
    /* best effort */
  }
}

/** Applies a script as one atomic transaction: all of it or none of it. */
export async function nftApply(script: string, opts: NftOptions = {}): Promise<void> {
  const dir = tmpdir();
  await sweepStaleFiles(dir);
  const file = join(dir, `weft-nft-${process.pid}-${randomBytes(8).toString('hex')}.nft`);
  try {
    // wx: a fresh file of our own, never one planted in the shared temp dir
    await writeFile(file, script.endsWith('\n') ? script : `${script}\n`, { mode: 0o600, flag: 'wx' });
    try {
      await nft(['-f', file], opts);
    } catch (e) {
      if (e instanceof KernelError) {
        throw new KernelError(`nft -f: ${nftMessage(e.stderr)}`, e.command, e.exitCode, e.stderr);
      }
      throw e;
    }
  } finally {
    await rm(file, { force: true });
  }
}

/**
 * The script that replaces a table atomically: create it (a no-op if it exists), delete it, create
 * it with the new body. Works whether or not the table existed; established conntrack entries and
 * their NAT bindings survive (they live in conntrack, not in the table).
 */
export function replaceTableScript(family: NftFamily, name: string, body: string): string {
  checkNames(family, name);
  const b = body.endsWith('\n') ? body : `${body}\n`;
  return `table ${family} ${name} {}\ndelete table ${family} ${name}\ntable ${family} ${name} {\n${b}}\n`;
}

/** Replaces one table (or creates it) in one transaction. */
export async function nftReplaceTable(family: NftFamily, name: string, body: string, opts: NftOptions = {}): Promise<void> {
  await nftApply(replaceTableScript(family, name, body), opts);
}

/** Deletes one table; no error if it is absent. */
export async function nftDeleteTable(family: NftFamily, name: string, opts: NftOptions = {}): Promise<void> {
  checkNames(family, name);
  await nftApply(`table ${family} ${name} {}\ndelete table ${family} ${name}\n`, opts);
}

/** The `nftables` array of `nft -j list ...` output. */
export type NftJson = Record<string, unknown>[];

function isAbsent(e: unknown): boolean {
  return e instanceof KernelError && /No such file or directory/.test(e.stderr);
}

/** `nft -j list table F N`, parsed; undefined if the table does not exist. */
export async function nftListTable(family: NftFamily, name: string, opts: NftOptions = {}): Promise<NftJson | undefined> {
  checkNames(family, name);
  let res: RunResult;
  try {
    res = await nft(['-j', 'list', 'table', family, name], opts);
  } catch (e) {
    if (isAbsent(e)) return undefined;
    throw e;
  }
  const parsed = JSON.parse(res.stdout) as { nftables?: NftJson };
  return parsed.nftables ?? [];
}

/** Whether a table exists: `nft -j list tables`, which does not load any table's sets or chains. */
export async function nftHasTable(family: NftFamily, name: string, opts: NftOptions = {}): Promise<boolean> {
  checkNames(family, name);
  const res = await nft(['-j', 'list', 'tables', family], opts);
  const list = (JSON.parse(res.stdout) as { nftables?: NftJson }).nftables ?? [];
  return list.some((o) => (o.table as { name?: string } | undefined)?.name === name);
}

/** The named counters of one table (`nft -j list counters table F N`); empty if the table is absent. */
export async function nftListCounters(
  family: NftFamily,
  table: string,
  opts: NftOptions = {},
): Promise<Map<string, { packets: number; bytes: number }>> {
  checkNames(family, table);
  const out = new Map<string, { packets: number; bytes: number }>();
  let res: RunResult;
  try {
    res = await nft(['-j', 'list', 'counters', 'table', family, table], opts);
  } catch (e) {
    if (isAbsent(e)) return out;
    throw e;
  }
  for (const o of (JSON.parse(res.stdout) as { nftables?: NftJson }).nftables ?? []) {
    const c = o.counter as { name: string; packets: number; bytes: number } | undefined;
    if (c) out.set(c.name, { packets: c.packets, bytes: c.bytes });
  }
  return out;
}

interface JsonSet {
  name: string;
  type: string | string[];
  map?: string | string[];
  elem?: unknown[];
}

/**
 * The elements of a set or map in nft's own syntax, sorted: ifname components quoted, concatenations
 * joined with " . ", prefixes as addr/len, map entries as "key : value", integer components in hex.
 * This is the form the firewall compiler writes, so the two can be compared for drift.
 * Returns undefined if the table or the set does not exist.
 */
export async function nftListSetElements(
  family: NftFamily,
  table: string,
  set: string,
  opts: NftOptions = {},
): Promise<string[] | undefined> {
  checkNames(family, table, set);
  const listed = await nftListTable(family, table, opts);
  if (!listed) return undefined;
  for (const obj of listed) {
    const s = (obj.set ?? obj.map) as JsonSet | undefined;
    if (!s || s.name !== set) continue;
    const keyTypes = typeList(s.type);
    const dataTypes = s.map === undefined ? undefined : typeList(s.map);
    return (s.elem ?? []).map((e) => elementText(e, keyTypes, dataTypes)).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  }
  return undefined;
}

function typeList(t: string | string[]): string[] {
  return Array.isArray(t) ? t : t.split(' . ');
}

/** One element of `nft -j` output in nft syntax. */
export function elementText(e: unknown, keyTypes: string[], dataTypes?: string[]): string {
  if (dataTypes && Array.isArray(e) && e.length === 2) {
    return `${valueText(e[0], keyTypes)} : ${valueText(e[1], dataTypes)}`;
  }
  return valueText(e, keyTypes);
}

function valueText(v: unknown, types: string[]): string {
  if (v && typeof v === 'object' && !Array.isArray(v)) {
    const o = v as Record<string, unknown>;
    // {"elem": {"val": ..., "timeout": ..., "comment": ...}}
    if ('elem' in o) return valueText((o.elem as Record<string, unknown>).val, types);
    if ('concat' in o) {
      const parts = o.concat as unknown[];
      return parts.map((p, i) => valueText(p, [types[i] ?? ''])).join(' . ');
    }
    if ('prefix' in o) {
      const p = o.prefix as { addr: string; len: number };
      return `${p.addr}/${p.len}`;
    }
    if ('range' in o) {
      const [a, b] = o.range as unknown[];
      return `${valueText(a, types)}-${valueText(b, types)}`;
    }
    // verdicts: {"accept": null}, {"jump": {"target": "x"}}
    const [k] = Object.keys(o);
    const val = o[k] as { target?: string } | null;
    return val && typeof val === 'object' && val.target ? `${k} ${val.target}` : k;
  }
  const type = types[0] ?? '';
  if (type === 'ifname' || type === 'string') return `"${String(v)}"`;
  if (type === 'integer' && typeof v === 'number') return `0x${v.toString(16)}`;
  return String(v);
}
