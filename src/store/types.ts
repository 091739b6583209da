/**
 * The store: an etcd-shaped key-value API with revisions, compare-and-swap transactions and
 * watches. Two engines implement it (sqlite/ embedded, etcd/ for many hosts); one conformance
 * suite (conformance.ts) runs against both.
 *
 * Semantics follow etcd v3:
 * - every successful write (put, delete that removed something, txn with writes) increments the
 *   store's revision by exactly one; one txn is one revision whatever it wrote;
 * - a key's createRevision is the revision that created it, modRevision the last one that changed
 *   it, version counts puts since creation (1 after the first put); a deleted key has none of them;
 * - a compare on a missing key sees createRevision = modRevision = version = 0 and value undefined;
 * - watch delivers every change to keys under a prefix after fromRevision, in revision order,
 *   each event once, including those that happened before watch() was called (from history).
 */
export interface KeyValue {
  key: string;
  value: string;
  createRevision: number;
  modRevision: number;
  version: number;
}

export type CompareTarget = 'version' | 'create' | 'mod' | 'value';
export type CompareOp = '=' | '!=' | '<' | '>';

export interface Compare {
  key: string;
  target: CompareTarget;
  op: CompareOp;
  /** a number for version/create/mod, a string for value */
  value: number | string;
}

export type TxnOp =
  | { type: 'put'; key: string; value: string }
  | { type: 'delete'; key: string }
  | { type: 'deletePrefix'; prefix: string }
  | { type: 'get'; key: string }
  | { type: 'range'; prefix: string };

/** One response per op, in order: a get/range lists what it found, a write says how many keys it touched. */
export type TxnResponse = { kvs: KeyValue[] } | { count: number };

export interface TxnResult {
  succeeded: boolean;
  /** the store revision after the transaction (unchanged if it wrote nothing) */
  revision: number;
  responses: TxnResponse[];
}

export interface WatchEvent {
  type: 'put' | 'delete';
  /** for a delete: key and modRevision (the deleting revision) are set, value is '' */
  kv: KeyValue;
  prevKv?: KeyValue;
}

export interface Watcher {
  cancel(): Promise<void>;
}

export interface Store {
  /** 'sqlite' or 'etcd' */
  readonly engine: string;
  get(key: string): Promise<KeyValue | undefined>;
  /** all keys starting with prefix, sorted by key */
  range(prefix: string): Promise<{ kvs: KeyValue[]; revision: number }>;
  /** returns the new store revision */
  put(key: string, value: string): Promise<number>;
  /** returns how many keys were deleted (0 or 1) and the store revision after */
  delete(key: string): Promise<{ deleted: number; revision: number }>;
  deletePrefix(prefix: string): Promise<{ deleted: number; revision: number }>;
  /** if every compare holds, run success ops, else failure ops; atomically */
  txn(compares: Compare[], success: TxnOp[], failure?: TxnOp[]): Promise<TxnResult>;
  /**
   * Calls onEvents with batches of events for keys under prefix with modRevision > fromRevision.
   * fromRevision = current revision means "only future changes". If the history needed was
   * compacted away, onError receives a StoreError with code 'compacted'.
   */
  watch(
    prefix: string,
    fromRevision: number,
    onEvents: (events: WatchEvent[]) => void,
    onError?: (err: Error) => void,
  ): Promise<Watcher>;
  /** the current store revision */
  revision(): Promise<number>;
  /** drop history older than revision (watches from before it then fail with 'compacted') */
  compact(revision: number): Promise<void>;
  close(): Promise<void>;
}

export class StoreError extends Error {
  constructor(
    message: string,
    readonly code: 'compacted' | 'unavailable' | 'invalid' | 'closed',
  ) {
    super(message);
    this.name = 'StoreError';
  }
}

/** Convenience: JSON values over the raw string store. */
export async function getJSON<T>(store: Store, key: string): Promise<T | undefined> {
  const kv = await store.get(key);
  return kv ? (JSON.parse(kv.value) as T) : undefined;
}

export async function rangeJSON<T>(store: Store, prefix: string): Promise<T[]> {
  const { kvs } = await store.range(prefix);
  return kvs.map((kv) => JSON.parse(kv.value) as T);
}
