import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { storeConformance } from './conformance.js';
import { openStore, parseStoreSpec } from './index.js';
import { openSqliteStore } from './sqlite.js';
import { StoreError, type WatchEvent } from './types.js';

const dir = mkdtempSync(join(tmpdir(), 'weft-test-store-'));
const cleanup = () => rmSync(dir, { recursive: true, force: true });
process.on('exit', cleanup);
after(cleanup);

let files = 0;
const freshFile = () => join(dir, `store-${++files}.db`);

storeConformance('sqlite (file)', async () => openSqliteStore(freshFile()));
storeConformance('sqlite (:memory:)', async () => openSqliteStore(':memory:'));

function waitFor(cond: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  return new Promise((resolve, reject) => {
    const tick = () => {
      if (cond()) resolve();
      else if (Date.now() > deadline) reject(new Error(`timed out after ${ms} ms`));
      else setTimeout(tick, 5);
    };
    tick();
  });
}

describe('sqlite store on disk', () => {
  it('keeps keys, revisions, history and the compacted revision across close and reopen', async () => {
    const file = freshFile();
    const s1 = openSqliteStore(file);
    assert.equal(s1.engine, 'sqlite');
    const r0 = await s1.revision();
    assert.equal(r0, 1, 'a new store starts at revision 1, as etcd does');
    const r1 = await s1.put('a/1', 'one');
    const r2 = await s1.put('a/2', 'two');
    await s1.txn([], [{ type: 'put', key: 'a/1', value: 'uno' }, { type: 'delete', key: 'a/2' }]);
    await s1.compact(r1);
    const rev = await s1.revision();
    const before = await s1.range('a/');
    await s1.close();

    const s2 = openSqliteStore(file);
    assert.equal(await s2.revision(), rev);
    assert.deepEqual(await s2.range('a/'), before);
    assert.deepEqual(await s2.get('a/1'), { key: 'a/1', value: 'uno', createRevision: r1, modRevision: rev, version: 2 });
    const events: WatchEvent[] = [];
    await s2.watch('a/', r1, (b) => events.push(...b));
    await waitFor(() => events.length === 3);
    assert.deepEqual(
      events.map((e) => `${e.type} ${e.kv.key} ${e.kv.modRevision} ${e.prevKv?.value ?? '-'}`),
      [`put a/2 ${r2} -`, `put a/1 ${rev} one`, `delete a/2 ${rev} two`],
    );
    const errors: Error[] = [];
    await s2.watch('a/', 0, () => {}, (e) => errors.push(e));
    await waitFor(() => errors.length === 1);
    assert.ok(errors[0] instanceof StoreError && errors[0].code === 'compacted', 'the compacted revision survives too');
    assert.equal(await s2.put('b', 'x'), rev + 1, 'revisions go on from where they were');
    await s2.close();
  });

  it('journals in WAL mode', async () => {
    const file = freshFile();
    const s = openSqliteStore(file);
    await s.put('k', 'v');
    const db = new Database(file, { readonly: true });
    try {
      assert.equal(db.pragma('journal_mode', { simple: true }), 'wal');
    } finally {
      db.close();
    }
    await s.close();
  });

  it('compacts its history automatically, keeping the last retainRevisions', async () => {
    const file = freshFile();
    const s = openSqliteStore(file, { retainRevisions: 100 });
    for (let i = 0; i < 350; i++) await s.put(`k/${i % 5}`, String(i));
    const rev = await s.revision();
    const db = new Database(file, { readonly: true });
    try {
      const { n, lo } = db.prepare('SELECT count(DISTINCT rev) AS n, min(rev) AS lo FROM log').get() as { n: number; lo: number };
      assert.ok(n >= 100 && n <= 110, `the log holds between 100 and 110 revisions (got ${n})`);
      assert.ok(rev - lo + 1 >= 100, 'the last 100 revisions are all there');
    } finally {
      db.close();
    }
    const errors: Error[] = [];
    await s.watch('k/', 0, () => {}, (e) => errors.push(e));
    await waitFor(() => errors.length === 1);
    assert.equal((errors[0] as StoreError).code, 'compacted');
    const events: WatchEvent[] = [];
    await s.watch('k/', rev - 99, (b) => events.push(...b));
    await waitFor(() => events.length === 99);
    assert.deepEqual(
      events.map((e) => e.kv.modRevision),
      Array.from({ length: 99 }, (_, i) => rev - 98 + i),
    );
    await s.close();
  });

  it('refuses a bad retainRevisions', () => {
    assert.throws(() => openSqliteStore(':memory:', { retainRevisions: -1 }), /retainRevisions/);
  });
});

describe('openStore', () => {
  it("opens 'sqlite' as ${stateDir}/store.db, creating the directory", async () => {
    const stateDir = join(dir, 'state', 'nested');
    const s = await openStore('sqlite', stateDir);
    assert.equal(s.engine, 'sqlite');
    await s.put('x', 'y');
    await s.close();
    assert.ok(existsSync(join(stateDir, 'store.db')));
    const again = await openStore('sqlite', stateDir);
    assert.equal((await again.get('x'))?.value, 'y');
    await again.close();
  });

  it('refuses anything else with a clear message', async () => {
    for (const bad of ['', 'sqlite3', 'mysql://x', 'etcd://', 'etcd://host', 'etcd://h:0', 'etcd://h:2379?foo=1', 'etcd://a:1,,b:2']) {
      await assert.rejects(openStore(bad, dir), (err: unknown) => {
        assert.ok(err instanceof StoreError && err.code === 'invalid', `${bad}: a StoreError 'invalid'`);
        assert.match(err.message, /--store must be 'sqlite' or etcd:\/\/HOST:PORT/, bad);
        return true;
      });
    }
  });

  it('parses etcd endpoints and prefix', () => {
    assert.deepEqual(parseStoreSpec('etcd://127.0.0.1:2379'), { engine: 'etcd', endpoints: ['127.0.0.1:2379'] });
    assert.deepEqual(parseStoreSpec('etcd://a:1,b.example:2,[::1]:3?prefix=/weft/'), {
      engine: 'etcd',
      endpoints: ['a:1', 'b.example:2', '[::1]:3'],
      prefix: '/weft/',
    });
  });
});
