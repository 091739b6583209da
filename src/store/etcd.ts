/**
 * The store on a real etcd (v3 API, through the etcd3 client), for several hosts sharing state.
 *
 * - An optional key prefix namespaces every key (opts.prefix, e.g. '/weft/'); callers never see it.
 *   Revisions and compaction are etcd's own and so are shared by every prefix of that etcd.
 * - Requests are checked with the same rules as the SQLite engine (common.ts), so both engines
 *   accept and refuse the same things.
 * - Each watch is its own gRPC watch stream from fromRevision + 1 with prev_kv. If the stream
 *   breaks it is re-created from the last revision delivered (with backoff, until cancel or
 *   close), so no event is lost or repeated; history etcd compacted meanwhile is reported to
 *   onError as StoreError 'compacted'.
 * - Errors are StoreErrors: 'compacted', 'invalid' (etcd refused the request), 'closed',
 *   'unavailable' (anything else, with etcd's message).
 * - Reads are retried (3 attempts) when etcd is unreachable; writes are not, because a write whose
 *   answer was lost may have been applied: a retried compare-and-swap would then report failure
 *   for its own success. A write that fails with 'unavailable' has an unknown outcome: re-read.
 *   (The etcd3 client's own retry policy, which retries everything, is replaced by a pass-through.)
 */
import {
  CompareResult,
  CompareTarget,
  Etcd3,
  type IOptions,
  type ICompare,
  type IDuplexStream,
  type IEvent,
  type IKeyValue,
  type IRangeRequest,
  type IRequestOp,
  type IResponseOp,
  type IWatchRequest,
  type IWatchResponse,
} from 'etcd3';
import {
  callSafely,
  checkKey,
  checkPrefix,
  checkRevision,
  checkTxn,
  checkValue,
  reportWatchError,
} from './common.js';
import {
  StoreError,
  type Compare,
  type KeyValue,
  type Store,
  type TxnOp,
  type TxnResponse,
  type TxnResult,
  type WatchEvent,
  type Watcher,
} from './types.js';

export interface EtcdStoreOptions {
  /** prepended to every key, e.g. '/weft/' */
  prefix?: string;
  /** deadline of each unary request, ms (default 30,000) */
  requestTimeoutMs?: number;
}

const CONNECT_TIMEOUT_MS = 5000;
/** a watch etcd has not accepted within this time is re-created (or, the first time, fails) */
const WATCH_CREATE_TIMEOUT_MS = 10_000;
const RETRY_FIRST_MS = 50;
const RETRY_MAX_MS = 5000;
const READ_ATTEMPTS = 3;

type GlobalPolicy = NonNullable<NonNullable<IOptions['faultHandling']>['global']>;

/** A fault-handling policy that runs each call once (the etcd3 default retries writes too). */
const runOnce = {
  execute: async <T>(fn: (context: { signal: AbortSignal }) => PromiseLike<T> | T): Promise<T> =>
    fn({ signal: new AbortController().signal }),
  onSuccess: () => ({ dispose: () => {} }),
  onFailure: () => ({ dispose: () => {} }),
} as unknown as GlobalPolicy;

const TARGET: Record<Compare['target'], CompareTarget> = {
  version: CompareTarget.Version,
  create: CompareTarget.Create,
  mod: CompareTarget.Mod,
  value: CompareTarget.Value,
};

const RESULT: Record<Compare['op'], CompareResult> = {
  '=': CompareResult.Equal,
  '!=': CompareResult.NotEqual,
  '<': CompareResult.Less,
  '>': CompareResult.Greater,
};

export async function openEtcdStore(endpoints: string[], opts: EtcdStoreOptions = {}): Promise<Store> {
  if (!Array.isArray(endpoints) || endpoints.length === 0 || endpoints.some((e) => typeof e !== 'string' || !e)) {
    throw new StoreError('etcd store: give at least one endpoint HOST:PORT', 'invalid');
  }
  const prefix = opts.prefix ?? '';
  checkPrefix(prefix, 'etcd key prefix');
  const timeout = opts.requestTimeoutMs ?? 30_000;
  const hosts = endpoints.map((e) => (/^https?:\/\//.test(e) ? e : `http://${e}`));
  const client = new Etcd3({
    hosts,
    dialTimeout: CONNECT_TIMEOUT_MS,
    grpcOptions: {
      // big ranges and 1 MB values with their prevKv: no client-side message size limit
      'grpc.max_receive_message_length': -1,
      'grpc.max_send_message_length': -1,
      // notice a peer that vanished without closing the connection (etcd allows pings every 5 s)
      'grpc.keepalive_time_ms': 30_000,
      'grpc.keepalive_timeout_ms': 10_000,
    },
    faultHandling: { global: runOnce },
    defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + timeout }),
  });
  const store = new EtcdStore(client, prefix, endpoints.join(','));
  try {
    await store.probe();
  } catch (err) {
    client.close();
    throw new StoreError(`cannot reach etcd at ${endpoints.join(',')}: ${(err as Error).message}`, 'unavailable');
  }
  return store;
}

/** The first key after every key that starts with the given bytes (etcd's prefix range end). */
function bytesPrefixEnd(key: Buffer): Buffer {
  const end = Buffer.from(key);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i] < 0xff) {
      end[i]++;
      return end.subarray(0, i + 1);
    }
  }
  return Buffer.from([0]); // no end: every key >= key
}

/** Turns an etcd3/gRPC error into a StoreError. */
function storeError(err: unknown): StoreError {
  if (err instanceof StoreError) return err;
  const e = err instanceof Error ? err : new Error(String(err));
  const msg = e.message;
  let out: StoreError;
  if (/required revision has been compacted/.test(msg)) {
    out = new StoreError(`etcd: ${msg}`, 'compacted');
  } else if (
    /future revision|duplicate key given in txn|too many operations in txn|key is not provided|request is too large/.test(
      msg,
    )
  ) {
    out = new StoreError(`etcd refused the request: ${msg}`, 'invalid');
  } else if (e.constructor.name === 'ClientClosedError') {
    out = new StoreError('etcd store is closed', 'closed');
  } else {
    out = new StoreError(`etcd: ${msg}`, 'unavailable');
  }
  Object.defineProperty(out, 'cause', { value: e, enumerable: false });
  return out;
}

class EtcdStore implements Store {
  readonly engine = 'etcd';
  private readonly ns: string;
  private readonly nsBytes: number;
  private readonly watchers = new Set<EtcdWatch>();
  private closed = false;

  constructor(
    readonly client: Etcd3,
    prefix: string,
    private readonly where: string,
  ) {
    this.ns = prefix;
    this.nsBytes = Buffer.byteLength(prefix);
  }

  async probe(): Promise<void> {
    await this.client.kv.range({ key: Buffer.from([0]), count_only: true }, { deadline: Date.now() + CONNECT_TIMEOUT_MS });
  }

  async get(key: string): Promise<KeyValue | undefined> {
    checkKey(key);
    const res = await this.read(() => this.client.kv.range({ key: this.key(key) }));
    return res.kvs.length > 0 ? this.kv(res.kvs[0]) : undefined;
  }

  async range(prefix: string): Promise<{ kvs: KeyValue[]; revision: number }> {
    checkPrefix(prefix);
    const res = await this.read(() => this.client.kv.range(this.rangeOf(prefix)));
    return { kvs: res.kvs.map((kv) => this.kv(kv)), revision: Number(res.header.revision) };
  }

  async put(key: string, value: string): Promise<number> {
    checkKey(key);
    checkValue(value);
    const res = await this.call(() => this.client.kv.put({ key: this.key(key), value: Buffer.from(value, 'utf8') }));
    return Number(res.header.revision);
  }

  async delete(key: string): Promise<{ deleted: number; revision: number }> {
    checkKey(key);
    const res = await this.call(() => this.client.kv.deleteRange({ key: this.key(key) }));
    return { deleted: Number(res.deleted), revision: Number(res.header.revision) };
  }

  async deletePrefix(prefix: string): Promise<{ deleted: number; revision: number }> {
    checkPrefix(prefix);
    const res = await this.call(() => this.client.kv.deleteRange(this.rangeOf(prefix)));
    return { deleted: Number(res.deleted), revision: Number(res.header.revision) };
  }

  async txn(compares: Compare[], success: TxnOp[], failure: TxnOp[] = []): Promise<TxnResult> {
    checkTxn(compares, success, failure);
    const res = await this.call(() =>
      this.client.kv.txn({
        compare: compares.map((c) => this.compare(c)),
        success: success.map((op) => this.requestOp(op)),
        failure: failure.map((op) => this.requestOp(op)),
      }),
    );
    const ops = res.succeeded ? success : failure;
    return {
      succeeded: res.succeeded,
      revision: Number(res.header.revision),
      responses: ops.map((op, i) => this.response(op, res.responses[i])),
    };
  }

  async watch(
    prefix: string,
    fromRevision: number,
    onEvents: (events: WatchEvent[]) => void,
    onError?: (err: Error) => void,
  ): Promise<Watcher> {
    this.checkOpen();
    checkPrefix(prefix);
    checkRevision(fromRevision, 'fromRevision');
    if (typeof onEvents !== 'function') throw new StoreError('watch needs an onEvents function', 'invalid');
    const w = new EtcdWatch(this, this.rangeOf(prefix), fromRevision, onEvents, onError);
    this.watchers.add(w);
    try {
      await w.open();
    } catch (err) {
      w.stop();
      throw storeError(err);
    }
    return w;
  }

  async revision(): Promise<number> {
    const res = await this.read(() => this.client.kv.range({ key: Buffer.from([0]), count_only: true }));
    return Number(res.header.revision);
  }

  async compact(revision: number): Promise<void> {
    checkRevision(revision, 'compact revision');
    try {
      await this.call(() => this.client.kv.compact({ revision, physical: true }));
    } catch (err) {
      // compacting to (or before) a revision already compacted is a no-op, as in the SQLite engine
      if (err instanceof StoreError && err.code === 'compacted') return;
      throw err;
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const w of [...this.watchers]) w.stop();
    this.watchers.clear();
    this.client.close();
  }

  // --- used by EtcdWatch ---

  isClosed(): boolean {
    return this.closed;
  }

  forget(w: EtcdWatch): void {
    this.watchers.delete(w);
  }

  event(e: IEvent): WatchEvent {
    const type = String(e.type).toLowerCase() === 'delete' ? 'delete' : 'put';
    const event: WatchEvent = { type, kv: this.kv(e.kv) };
    if (e.prev_kv) event.prevKv = this.kv(e.prev_kv);
    return event;
  }

  // --- internals ---

  private checkOpen(): void {
    if (this.closed) throw new StoreError(`etcd store ${this.where} is closed`, 'closed');
  }

  private async call<T>(fn: () => Promise<T>): Promise<T> {
    this.checkOpen();
    try {
      return await fn();
    } catch (err) {
      throw storeError(err);
    }
  }

  /** A call that is safe to repeat: retried while etcd is unavailable. */
  private async read<T>(fn: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.call(fn);
      } catch (err) {
        if (attempt >= READ_ATTEMPTS || !(err instanceof StoreError) || err.code !== 'unavailable' || this.closed) {
          throw err;
        }
        await new Promise((resolve) => setTimeout(resolve, 50 * attempt));
      }
    }
  }

  private key(key: string): Buffer {
    return Buffer.from(this.ns + key, 'utf8');
  }

  private rangeOf(prefix: string): IRangeRequest {
    const full = this.ns + prefix;
    if (full === '') return { key: Buffer.from([0]), range_end: Buffer.from([0]) };
    const key = Buffer.from(full, 'utf8');
    return { key, range_end: bytesPrefixEnd(key) };
  }

  private kv(kv: IKeyValue): KeyValue {
    return {
      key: kv.key.subarray(this.nsBytes).toString('utf8'),
      value: kv.value ? kv.value.toString('utf8') : '',
      createRevision: Number(kv.create_revision),
      modRevision: Number(kv.mod_revision),
      version: Number(kv.version),
    };
  }

  private compare(c: Compare): ICompare {
    const out: ICompare = { key: this.key(c.key), target: TARGET[c.target], result: RESULT[c.op] };
    if (c.target === 'value') out.value = Buffer.from(c.value as string, 'utf8');
    else if (c.target === 'version') out.version = c.value as number;
    else if (c.target === 'create') out.create_revision = c.value as number;
    else out.mod_revision = c.value as number;
    return out;
  }

  private requestOp(op: TxnOp): IRequestOp {
    switch (op.type) {
      case 'put':
        return { request_put: { key: this.key(op.key), value: Buffer.from(op.value, 'utf8') } };
      case 'delete':
        return { request_delete_range: { key: this.key(op.key) } };
      case 'deletePrefix':
        return { request_delete_range: this.rangeOf(op.prefix) };
      case 'get':
        return { request_range: { key: this.key(op.key) } };
      case 'range':
        return { request_range: this.rangeOf(op.prefix) };
    }
  }

  private response(op: TxnOp, res: IResponseOp): TxnResponse {
    switch (op.type) {
      case 'put':
        return { count: 1 };
      case 'delete':
      case 'deletePrefix':
        return { count: Number(res.response_delete_range.deleted) };
      case 'get':
      case 'range':
        return { kvs: res.response_range.kvs.map((kv) => this.kv(kv)) };
    }
  }
}

type WatchStream = IDuplexStream<IWatchRequest, IWatchResponse>;

class EtcdWatch implements Watcher {
  /** the highest revision whose events (for this watch) have all been delivered */
  private last: number;
  private stream: WatchStream | undefined;
  private created = false;
  private done = false;
  private retryMs = RETRY_FIRST_MS;
  private retryTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly store: EtcdStore,
    private readonly range: IRangeRequest,
    private readonly fromRevision: number,
    private readonly onEvents: (events: WatchEvent[]) => void,
    private readonly onError: ((err: Error) => void) | undefined,
  ) {
    this.last = fromRevision;
  }

  /** Creates the watch; resolves once etcd has accepted it. */
  open(): Promise<void> {
    return this.connect(true);
  }

  async cancel(): Promise<void> {
    this.stop();
  }

  stop(): void {
    if (this.done) return;
    this.done = true;
    clearTimeout(this.retryTimer);
    this.drop();
    this.store.forget(this);
  }

  private fail(err: Error): void {
    if (this.done) return;
    this.stop();
    reportWatchError(err, this.onError);
  }

  private async connect(first: boolean): Promise<void> {
    const stream = await this.store.client.watchClient.watch();
    if (this.done) {
      closeStream(stream);
      return;
    }
    this.stream = stream;
    this.created = false;
    await new Promise<void>((resolve, reject) => {
      let settled = false;
      const settle = (err?: Error) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (err) reject(err);
        else resolve();
      };
      const timer = setTimeout(
        () => broken(new Error(`etcd did not accept the watch within ${WATCH_CREATE_TIMEOUT_MS} ms`)),
        WATCH_CREATE_TIMEOUT_MS,
      );
      const broken = (err: Error) => {
        clearTimeout(timer);
        if (stream !== this.stream || this.done) return settle();
        if (first && !this.created) {
          this.drop();
          return settle(err);
        }
        settle();
        this.reconnect();
      };
      stream.on('data', (res: IWatchResponse) => {
        if (stream !== this.stream || this.done) return settle();
        if (Number(res.compact_revision) > 0) {
          settle();
          return this.fail(
            new StoreError(
              `watch from revision ${this.fromRevision}: etcd compacted the history up to revision ${res.compact_revision}; re-read with range()`,
              'compacted',
            ),
          );
        }
        if (res.canceled) {
          settle();
          return this.fail(new StoreError(`etcd cancelled the watch: ${res.cancel_reason || 'no reason given'}`, 'unavailable'));
        }
        if (res.created) {
          this.created = true;
          this.retryMs = RETRY_FIRST_MS;
          settle();
        }
        this.deliver(res);
      });
      stream.on('error', (err: Error) => broken(err));
      stream.on('end', () => broken(new Error('etcd closed the watch stream')));
      stream.write({
        create_request: {
          ...this.range,
          start_revision: this.last + 1,
          prev_kv: true,
          progress_notify: true,
        },
      });
    });
  }

  private deliver(res: IWatchResponse): void {
    if (res.events.length === 0) {
      // a progress notification (etcd sends them only to watchers that are caught up)
      if (!res.created) this.last = Math.max(this.last, Number(res.header.revision));
      return;
    }
    const events: WatchEvent[] = [];
    for (const e of res.events) {
      if (Number(e.kv.mod_revision) > this.last) events.push(this.store.event(e));
    }
    if (events.length === 0) return;
    this.last = events[events.length - 1].kv.modRevision;
    callSafely(() => this.onEvents(events), this.onError);
  }

  private reconnect(): void {
    this.drop();
    if (this.done || this.store.isClosed()) return;
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      if (this.done) return;
      this.connect(false).catch(() => this.reconnect());
    }, this.retryMs);
    this.retryMs = Math.min(this.retryMs * 2, RETRY_MAX_MS);
  }

  private drop(): void {
    const stream = this.stream;
    this.stream = undefined;
    if (stream) closeStream(stream);
  }
}

/**
 * Ends a watch stream. Half-closing first makes the stream non-writable, so the etcd3 client does
 * not count the cancellation against the host's circuit breaker.
 */
function closeStream(stream: WatchStream): void {
  stream.on('error', () => {});
  try {
    stream.end();
    stream.cancel();
  } catch {
    // already gone
  }
}
