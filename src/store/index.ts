/**
 * Opens the store named by the agent's --store flag:
 *   sqlite                               ${stateDir}/store.db (the default, one host)
 *   etcd://HOST:PORT[,HOST:PORT...]      a shared etcd; ?prefix=/x/ namespaces every key
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { openSqliteStore } from './sqlite.js';
import { StoreError, type Store } from './types.js';

export * from './types.js';
export { openSqliteStore } from './sqlite.js';

const USAGE = "--store must be 'sqlite' or etcd://HOST:PORT[,HOST:PORT...][?prefix=/PREFIX/]";

export interface StoreSpec {
  engine: 'sqlite' | 'etcd';
  endpoints: string[];
  prefix?: string;
}

/** Parses a --store value; throws a StoreError ('invalid') that says what is accepted. */
export function parseStoreSpec(spec: string): StoreSpec {
  const s = typeof spec === 'string' ? spec.trim() : '';
  if (s === 'sqlite') return { engine: 'sqlite', endpoints: [] };
  if (!s.startsWith('etcd://')) throw new StoreError(`${USAGE}, got ${JSON.stringify(spec)}`, 'invalid');
  const rest = s.slice('etcd://'.length);
  const q = rest.indexOf('?');
  const hostPart = q < 0 ? rest : rest.slice(0, q);
  const endpoints = hostPart.split(',').map((h) => h.trim());
  for (const ep of endpoints) {
    const m = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(ep);
    if (!m || Number(m[2]) < 1 || Number(m[2]) > 65535) {
      throw new StoreError(`${USAGE}: ${JSON.stringify(ep)} is not HOST:PORT`, 'invalid');
    }
  }
  let prefix: string | undefined;
  if (q >= 0) {
    const params = new URLSearchParams(rest.slice(q + 1));
    for (const name of params.keys()) {
      if (name !== 'prefix') throw new StoreError(`${USAGE}: unknown option ${JSON.stringify(name)}`, 'invalid');
    }
    prefix = params.get('prefix') ?? undefined;
  }
  return prefix === undefined ? { engine: 'etcd', endpoints } : { engine: 'etcd', endpoints, prefix };
}

export async function openStore(spec: string, stateDir: string): Promise<Store> {
  const parsed = parseStoreSpec(spec);
  if (parsed.engine === 'sqlite') {
    mkdirSync(stateDir, { recursive: true });
    return openSqliteStore(join(stateDir, 'store.db'));
  }
  // loaded only when asked for: the etcd client (gRPC) costs start-up time a SQLite agent need not pay
  const { openEtcdStore } = await import('./etcd.js');
  return openEtcdStore(parsed.endpoints, parsed.prefix === undefined ? {} : { prefix: parsed.prefix });
}
