/**
 * The embedded store engine: etcd v3 semantics on one SQLite file (better-sqlite3).
 *
 * Tables:
 * - kv:   the current keys (key, value, create_rev, mod_rev, version);
 * - log:  one row per event (revision, seq within the revision, put/delete, the key's new state and
 *         its previous state); watches replay history from it;
 * - meta: one row with the store revision and the compacted revision.
 *
 * Every write (put, delete, deletePrefix, txn) is one SQLite transaction (BEGIN IMMEDIATE) and at
 * most one revision: the revision moves only when something changed. The store starts at revision
 * 1, as a fresh etcd does.
 *
 * History: compact(R) drops the events of revisions < R; a watch that needs them (fromRevision <
 * R - 1) fails with StoreError 'compacted', as in etcd. The log is also kept bounded on its own:
 * once it spans retainRevisions + retainRevisions/10 revisions, the oldest are compacted so that
 * the last retainRevisions (default 10,000) stay. A watcher must therefore not fall more than that
 * many revisions behind; if it does it gets 'compacted' and should re-read with range().
 *
 * Watch: a watcher replays history from the log in chunks (yielding to the event loop between
 * them), while events committed meanwhile are held back; then it receives live events, pushed to it
 * by the writer right after commit. Each batch holds whole revisions, in revision order, each event
 * once. onEvents is never called from inside a store method: batches are delivered from a
 * microtask (or a later tick during replay).
 *
 * The methods are async to match the etcd engine, but the SQLite work runs synchronously when they
 * are called. Live watch events only reach watchers of the same process: one process (the agent)
 * owns the store file.
 */
import Database from 'better-sqlite3';
import {
  callSafely,
  checkKey,
  checkPrefix,
  checkRevision,
  checkTxn,
  checkValue,
  compareHolds,
  prefixEnd,
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

export const DEFAULT_RETAIN_REVISIONS = 10_000;

export interface SqliteStoreOptions {
  /** revisions of history kept for watches; older ones are compacted automatically (0: never) */
  retainRevisions?: number;
}

const SCHEMA_VERSION = 1;
/** rows read from the log per replay step (a step never splits a revision) */
const REPLAY_CHUNK = 512;
const PUT = 0;
const DELETE = 1;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS kv (
  key        TEXT PRIMARY KEY,
  value      TEXT NOT NULL,
  create_rev INTEGER NOT NULL,
  mod_rev    INTEGER NOT NULL,
  version    INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS log (
  rev             INTEGER NOT NULL,
  seq             INTEGER NOT NULL,
  type            INTEGER NOT NULL,
  key             TEXT NOT NULL,
  value           TEXT,
  create_rev      INTEGER NOT NULL,
  version         INTEGER NOT NULL,
  prev_value      TEXT,
  prev_create_rev INTEGER,
  prev_mod_rev    INTEGER,
  prev_version    INTEGER,
  PRIMARY KEY (rev, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (
  id        INTEGER PRIMARY KEY CHECK (id = 1),
  revision  INTEGER NOT NULL,
  compacted INTEGER NOT NULL
);
INSERT OR IGNORE INTO meta (id, revision, compacted) VALUES (1, 1, 0);
`;

const KV_COLUMNS = 'key, value, create_rev AS createRevision, mod_rev AS modRevision, version';
const LOG_COLUMNS =
  'rev, type, key, value, create_rev, version, prev_value, prev_create_rev, prev_mod_rev, prev_version';

interface Meta {
  revision: number;
  compacted: number;
}

interface LogRow {
  rev: number;
  type: number;
  key: string;
  value: string | null;
  create_rev: number;
  version: number;
  prev_value: string | null;
  prev_create_rev: number | null;
  prev_mod_rev: number | null;
  prev_version: number | null;
}

type LogParams = [after: number, upTo: number, lo: string, limit: number];
type LogParamsBounded = [after: number, upTo: number, lo: string, hi: string, limit: number];
type LogInsert = [
  rev: number,
  seq: number,
  type: number,
  key: string,
  value: string | null,
  createRev: number,
  version: number,
  prevValue: string | null,
  prevCreateRev: number | null,
  prevModRev: number | null,
  prevVersion: number | null,
];

/** The state of one write transaction: the revision it will commit and the events it made. */
interface WriteCtx {
  rev: number;
  seq: number;
  events: WatchEvent[];
}

interface WriteOutcome<R> {
  result: R;
  revision: number;
  events: WatchEvent[];
}

export function openSqliteStore(path: string, opts: SqliteStoreOptions = {}): Store {
  const retain = opts.retainRevisions ?? DEFAULT_RETAIN_REVISIONS;
  if (!Number.isSafeInteger(retain) || retain < 0) {
    throw new StoreError(`retainRevisions must be an integer >= 0, got ${String(retain)}`, 'invalid');
  }
  return new SqliteStore(path, retain);
}

function prepareAll(db: Database.Database) {
  return {
    meta: db.prepare<[], Meta>('SELECT revision, compacted FROM meta WHERE id = 1'),
    setRevision: db.prepare<[number]>('UPDATE meta SET revision = ? WHERE id = 1'),
    setCompacted: db.prepare<[number]>('UPDATE meta SET compacted = ? WHERE id = 1'),
    get: db.prepare<[string], KeyValue>(`SELECT ${KV_COLUMNS} FROM kv WHERE key = ?`),
    rangeFrom: db.prepare<[string], KeyValue>(`SELECT ${KV_COLUMNS} FROM kv WHERE key >= ? ORDER BY key`),
    rangeBetween: db.prepare<[string, string], KeyValue>(
      `SELECT ${KV_COLUMNS} FROM kv WHERE key >= ? AND key < ? ORDER BY key`,
    ),
    upsert: db.prepare<[string, string, number, number, number]>(
      'INSERT OR REPLACE INTO kv (key, value, create_rev, mod_rev, version) VALUES (?, ?, ?, ?, ?)',
    ),
    delete: db.prepare<[string]>('DELETE FROM kv WHERE key = ?'),
    logInsert: db.prepare<LogInsert>(
      `INSERT INTO log (rev, seq, type, key, value, create_rev, version,
                        prev_value, prev_create_rev, prev_mod_rev, prev_version)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ),
    logFrom: db.prepare<LogParams, LogRow>(
      `SELECT ${LOG_COLUMNS} FROM log WHERE rev > ? AND rev <= ? AND key >= ? ORDER BY rev, seq LIMIT ?`,
    ),
    logBetween: db.prepare<LogParamsBounded, LogRow>(
      `SELECT ${LOG_COLUMNS} FROM log WHERE rev > ? AND rev <= ? AND key >= ? AND key < ? ORDER BY rev, seq LIMIT ?`,
    ),
    logTrim: db.prepare<[number]>('DELETE FROM log WHERE rev < ?'),
  };
}

type Statements = ReturnType<typeof prepareAll>;

class SqliteStore implements Store {
  readonly engine = 'sqlite';
  private readonly db: Database.Database;
  private readonly s: Statements;
  private readonly watchers = new Set<SqliteWatch>();
  private readonly autoCompactAt: number;
  private closed = false;
  private readonly writeTxn: <R>(body: (ctx: WriteCtx) => R) => WriteOutcome<R>;
  private readonly rangeTxn: (prefix: string) => { kvs: KeyValue[]; revision: number };
  private readonly compactTxn: (revision: number) => void;

  constructor(
    readonly path: string,
    private readonly retain: number,
  ) {
    this.autoCompactAt = retain + Math.max(1, Math.floor(retain / 10));
    let db: Database.Database;
    try {
      db = new Database(path, { timeout: 5000 });
    } catch (err) {
      throw new StoreError(`cannot open the store ${path}: ${(err as Error).message}`, 'unavailable');
    }
    try {
      db.pragma('journal_mode = WAL'); // an in-memory database keeps its 'memory' journal
      db.pragma('synchronous = NORMAL');
      db.pragma('busy_timeout = 5000');
      const version = db.pragma('user_version', { simple: true }) as number;
      if (version > SCHEMA_VERSION) {
        throw new StoreError(
          `${path}: the store was written by a newer weft (schema ${version}, this one knows ${SCHEMA_VERSION})`,
          'invalid',
        );
      }
      if (version < SCHEMA_VERSION) {
        db.transaction(() => {
          db.exec(SCHEMA);
          db.pragma(`user_version = ${SCHEMA_VERSION}`);
        }).immediate();
      }
      this.s = prepareAll(db);
    } catch (err) {
      db.close();
      if (err instanceof StoreError) throw err;
      throw new StoreError(`cannot open the store ${path}: ${(err as Error).message}`, 'unavailable');
    }
    this.db = db;
    const s = this.s;

    const write = db.transaction((body: (ctx: WriteCtx) => unknown): WriteOutcome<unknown> => {
      const meta = s.meta.get() as Meta;
      const ctx: WriteCtx = { rev: meta.revision + 1, seq: 0, events: [] };
      const result = body(ctx);
      if (ctx.events.length === 0) return { result, revision: meta.revision, events: ctx.events };
      s.setRevision.run(ctx.rev);
      if (this.retain > 0 && ctx.rev - meta.compacted >= this.autoCompactAt) {
        const keepFrom = ctx.rev - this.retain + 1;
        s.logTrim.run(keepFrom);
        s.setCompacted.run(keepFrom);
      }
      return { result, revision: ctx.rev, events: ctx.events };
    });
    this.writeTxn = write.immediate as <R>(body: (ctx: WriteCtx) => R) => WriteOutcome<R>;

    this.rangeTxn = db.transaction((prefix: string) => ({
      kvs: this.rangeRows(prefix),
      revision: (s.meta.get() as Meta).revision,
    }));

    this.compactTxn = db.transaction((revision: number) => {
      const meta = s.meta.get() as Meta;
      if (revision > meta.revision) {
        throw new StoreError(`cannot compact to revision ${revision}: the store is at ${meta.revision}`, 'invalid');
      }
      if (revision <= meta.compacted) return;
      s.logTrim.run(revision);
      s.setCompacted.run(revision);
    }).immediate;
  }

  async get(key: string): Promise<KeyValue | undefined> {
    this.checkOpen();
    checkKey(key);
    return this.s.get.get(key);
  }

  async range(prefix: string): Promise<{ kvs: KeyValue[]; revision: number }> {
    this.checkOpen();
    checkPrefix(prefix);
    return this.rangeTxn(prefix);
  }

  async put(key: string, value: string): Promise<number> {
    this.checkOpen();
    checkKey(key);
    checkValue(value);
    return this.write((ctx) => this.putIn(ctx, key, value)).revision;
  }

  async delete(key: string): Promise<{ deleted: number; revision: number }> {
    this.checkOpen();
    checkKey(key);
    const out = this.write((ctx) => this.deleteIn(ctx, key));
    return { deleted: out.result, revision: out.revision };
  }

  async deletePrefix(prefix: string): Promise<{ deleted: number; revision: number }> {
    this.checkOpen();
    checkPrefix(prefix);
    const out = this.write((ctx) => this.deletePrefixIn(ctx, prefix));
    return { deleted: out.result, revision: out.revision };
  }

  async txn(compares: Compare[], success: TxnOp[], failure: TxnOp[] = []): Promise<TxnResult> {
    this.checkOpen();
    checkTxn(compares, success, failure);
    const out = this.write((ctx) => {
      const succeeded = compares.every((c) => compareHolds(this.s.get.get(c.key), c));
      const responses = (succeeded ? success : failure).map((op) => this.runOp(ctx, op));
      return { succeeded, responses };
    });
    return { succeeded: out.result.succeeded, revision: out.revision, responses: out.result.responses };
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
    const meta = this.meta();
    const w = new SqliteWatch(this, prefix, fromRevision, meta.revision, onEvents, onError);
    if (fromRevision + 1 < meta.compacted) {
      w.fail(compactedError(fromRevision, meta.compacted));
      return w;
    }
    this.watchers.add(w);
    w.start();
    return w;
  }

  async revision(): Promise<number> {
    this.checkOpen();
    return this.meta().revision;
  }

  async compact(revision: number): Promise<void> {
    this.checkOpen();
    checkRevision(revision, 'compact revision');
    this.compactTxn(revision);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const w of [...this.watchers]) w.stop();
    this.watchers.clear();
    this.db.close();
  }

  // --- used by SqliteWatch ---

  meta(): Meta {
    return this.s.meta.get() as Meta;
  }

  isClosed(): boolean {
    return this.closed;
  }

  forget(w: SqliteWatch): void {
    this.watchers.delete(w);
  }

  /** Log rows with after < rev <= upTo for keys under prefix, in order, at most limit (-1: all). */
  readLog(after: number, upTo: number, prefix: string, limit: number): LogRow[] {
    const end = prefixEnd(prefix);
    return end === undefined
      ? this.s.logFrom.all(after, upTo, prefix, limit)
      : this.s.logBetween.all(after, upTo, prefix, end, limit);
  }

  // --- internals ---

  private checkOpen(): void {
    if (this.closed) throw new StoreError(`store ${this.path} is closed`, 'closed');
  }

  private write<R>(body: (ctx: WriteCtx) => R): WriteOutcome<R> {
    const out = this.writeTxn(body);
    if (out.events.length > 0) {
      for (const w of this.watchers) w.offer(out.revision, out.events);
    }
    return out;
  }

  private rangeRows(prefix: string): KeyValue[] {
    const end = prefixEnd(prefix);
    return end === undefined ? this.s.rangeFrom.all(prefix) : this.s.rangeBetween.all(prefix, end);
  }

  private runOp(ctx: WriteCtx, op: TxnOp): TxnResponse {
    switch (op.type) {
      case 'put':
        this.putIn(ctx, op.key, op.value);
        return { count: 1 };
      case 'delete':
        return { count: this.deleteIn(ctx, op.key) };
      case 'deletePrefix':
        return { count: this.deletePrefixIn(ctx, op.prefix) };
      case 'get': {
        const kv = this.s.get.get(op.key);
        return { kvs: kv ? [kv] : [] };
      }
      case 'range':
        return { kvs: this.rangeRows(op.prefix) };
    }
  }

  private putIn(ctx: WriteCtx, key: string, value: string): void {
    const prev = this.s.get.get(key);
    const kv: KeyValue = Object.freeze({
      key,
      value,
      createRevision: prev ? prev.createRevision : ctx.rev,
      modRevision: ctx.rev,
      version: prev ? prev.version + 1 : 1,
    });
    this.s.upsert.run(key, value, kv.createRevision, ctx.rev, kv.version);
    this.s.logInsert.run(
      ctx.rev,
      ctx.seq++,
      PUT,
      key,
      value,
      kv.createRevision,
      kv.version,
      prev ? prev.value : null,
      prev ? prev.createRevision : null,
      prev ? prev.modRevision : null,
      prev ? prev.version : null,
    );
    ctx.events.push(prev ? { type: 'put', kv, prevKv: Object.freeze(prev) } : { type: 'put', kv });
  }

  private deleteIn(ctx: WriteCtx, key: string): number {
    const prev = this.s.get.get(key);
    if (!prev) return 0;
    this.removeIn(ctx, prev);
    return 1;
  }

  private deletePrefixIn(ctx: WriteCtx, prefix: string): number {
    const prevs = this.rangeRows(prefix);
    for (const prev of prevs) this.removeIn(ctx, prev);
    return prevs.length;
  }

  private removeIn(ctx: WriteCtx, prev: KeyValue): void {
    this.s.delete.run(prev.key);
    this.s.logInsert.run(
      ctx.rev,
      ctx.seq++,
      DELETE,
      prev.key,
      null,
      0,
      0,
      prev.value,
      prev.createRevision,
      prev.modRevision,
      prev.version,
    );
    ctx.events.push({
      type: 'delete',
      kv: Object.freeze({ key: prev.key, value: '', createRevision: 0, modRevision: ctx.rev, version: 0 }),
      prevKv: Object.freeze(prev),
    });
  }
}

function compactedError(fromRevision: number, compacted: number): StoreError {
  return new StoreError(
    `watch from revision ${fromRevision}: history before revision ${compacted} was compacted; re-read with range()`,
    'compacted',
  );
}

function eventFromRow(r: LogRow): WatchEvent {
  const kv: KeyValue =
    r.type === PUT
      ? { key: r.key, value: r.value ?? '', createRevision: r.create_rev, modRevision: r.rev, version: r.version }
      : { key: r.key, value: '', createRevision: 0, modRevision: r.rev, version: 0 };
  const event: WatchEvent = { type: r.type === PUT ? 'put' : 'delete', kv: Object.freeze(kv) };
  if (r.prev_mod_rev !== null) {
    event.prevKv = Object.freeze({
      key: r.key,
      value: r.prev_value ?? '',
      createRevision: r.prev_create_rev ?? 0,
      modRevision: r.prev_mod_rev,
      version: r.prev_version ?? 0,
    });
  }
  return event;
}

class SqliteWatch implements Watcher {
  /** every event of a revision <= cursor has been queued (or did not concern this watch) */
  private cursor: number;
  private replaying = false;
  /** live batches committed while the history replay runs */
  private held: WatchEvent[][] = [];
  private out: WatchEvent[][] = [];
  private outHead = 0;
  private draining = false;
  private done = false;

  constructor(
    private readonly store: SqliteStore,
    private readonly prefix: string,
    private readonly fromRevision: number,
    /** history up to this revision comes from the log, later revisions arrive live */
    private readonly replayTo: number,
    private readonly onEvents: (events: WatchEvent[]) => void,
    private readonly onError: ((err: Error) => void) | undefined,
  ) {
    this.cursor = fromRevision;
  }

  start(): void {
    if (this.cursor < this.replayTo) {
      this.replaying = true;
      setImmediate(() => this.replayStep());
    }
  }

  /** Called by the writer after each commit that changed something. */
  offer(revision: number, events: WatchEvent[]): void {
    if (this.done || revision <= this.fromRevision) return;
    const mine = this.prefix === '' ? events : events.filter((e) => e.kv.key.startsWith(this.prefix));
    if (mine.length === 0) return;
    if (this.replaying) this.held.push(mine);
    else this.enqueue(mine);
  }

  async cancel(): Promise<void> {
    this.stop();
  }

  stop(): void {
    if (this.done) return;
    this.done = true;
    this.store.forget(this);
    this.held = [];
    this.out = [];
    this.outHead = 0;
  }

  fail(err: Error): void {
    this.stop();
    queueMicrotask(() => reportWatchError(err, this.onError));
  }

  private replayStep(): void {
    if (this.done) return;
    if (this.store.isClosed()) return this.stop();
    try {
      const { compacted } = this.store.meta();
      if (this.cursor + 1 < compacted) return this.fail(compactedError(this.fromRevision, compacted));
      let rows = this.store.readLog(this.cursor, this.replayTo, this.prefix, REPLAY_CHUNK);
      let upTo = this.replayTo;
      if (rows.length === REPLAY_CHUNK) {
        const lastRev = rows[rows.length - 1].rev;
        if (rows[0].rev === lastRev) {
          // one revision with more events than a chunk: take all of it
          rows = this.store.readLog(lastRev - 1, lastRev, this.prefix, -1);
          upTo = lastRev;
        } else {
          // the last revision may be cut short: leave it for the next step
          let n = rows.length;
          while (rows[n - 1].rev === lastRev) n--;
          rows = rows.slice(0, n);
          upTo = lastRev - 1;
        }
      }
      if (rows.length > 0) this.enqueue(rows.map(eventFromRow));
      this.cursor = upTo;
    } catch (err) {
      return this.fail(err instanceof Error ? err : new Error(String(err)));
    }
    if (this.cursor < this.replayTo) {
      setImmediate(() => this.replayStep());
      return;
    }
    this.replaying = false;
    const held = this.held;
    this.held = [];
    for (const batch of held) this.enqueue(batch);
  }

  private enqueue(batch: WatchEvent[]): void {
    this.out.push(batch);
    if (!this.draining) {
      this.draining = true;
      queueMicrotask(() => this.drain());
    }
  }

  private drain(): void {
    while (!this.done && this.outHead < this.out.length) {
      const batch = this.out[this.outHead++];
      callSafely(() => this.onEvents(batch), this.onError);
    }
    if (this.outHead >= this.out.length) {
      this.out = [];
      this.outHead = 0;
    }
    this.draining = false;
  }
}
