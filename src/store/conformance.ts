/**
 * The one conformance suite both store engines pass (DESIGN: "one store interface, two engines").
 * storeConformance() registers node:test tests against a store made by open(); each test works
 * under its own key prefix, and compares revisions relative to what it reads first, so the store
 * may be shared with other users (an etcd holding other prefixes, for instance) as long as no one
 * else writes while a test runs.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { StoreError, type Compare, type KeyValue, type Store, type TxnOp, type WatchEvent } from './types.js';

const TIMEOUT = { timeout: 60_000 };

/** Waits until cond() holds, polling; fails with what() when it does not within ms. */
async function waitFor(cond: () => boolean, what: () => string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) assert.fail(`timed out after ${ms} ms waiting for ${what()}`);
    await sleep(5);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Collects what a watch delivers. */
class Collector {
  events: WatchEvent[] = [];
  batches = 0;
  errors: Error[] = [];
  readonly onEvents = (batch: WatchEvent[]): void => {
    assert.ok(Array.isArray(batch) && batch.length > 0, 'a batch is a non-empty array');
    this.batches++;
    this.events.push(...batch);
  };
  readonly onError = (err: Error): void => {
    this.errors.push(err);
  };
  async waitEvents(n: number, ms?: number): Promise<void> {
    await waitFor(
      () => this.events.length >= n || this.errors.length > 0,
      () => `${n} watch events (got ${this.events.length})`,
      ms,
    );
    assert.deepEqual(this.errors, [], 'the watch reported no error');
  }
  async waitError(ms?: number): Promise<Error> {
    await waitFor(
      () => this.errors.length > 0,
      () => 'a watch error',
      ms,
    );
    return this.errors[0];
  }
  /** compact form for comparisons: "type rev key=value" */
  lines(): string[] {
    return this.events.map(line);
  }
}

function line(e: WatchEvent): string {
  return `${e.type} ${e.kv.modRevision} ${e.kv.key}=${e.kv.value}`;
}

function isStoreError(code: StoreError['code']) {
  return (err: unknown): boolean => {
    assert.ok(err instanceof StoreError, `expected a StoreError, got ${String(err)}`);
    assert.equal(err.code, code, `StoreError code (message: ${err.message})`);
    return true;
  };
}

function keys(kvs: KeyValue[]): string[] {
  return kvs.map((kv) => kv.key);
}

function byteOrder(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

export function storeConformance(name: string, open: () => Promise<Store>): void {
  describe(`store conformance: ${name}`, () => {
    let store: Store;
    let n = 0;
    /** a fresh key prefix for each test */
    const fresh = (): string => `c${++n}/`;
    const watchers: { cancel(): Promise<void> }[] = [];
    const watch = async (prefix: string, from: number, c: Collector) => {
      const w = await store.watch(prefix, from, c.onEvents, c.onError);
      watchers.push(w);
      return w;
    };

    before(async () => {
      store = await open();
    });
    after(async () => {
      for (const w of watchers) await w.cancel();
      await store?.close();
    });

    describe('revisions', () => {
      it('each write adds one; reads and no-op deletes add none', TIMEOUT, async () => {
        const p = fresh();
        const r0 = await store.revision();
        assert.ok(Number.isSafeInteger(r0) && r0 >= 1, `revision is an integer >= 1 (got ${r0})`);
        assert.equal(await store.put(`${p}a`, '1'), r0 + 1);
        assert.equal(await store.revision(), r0 + 1);
        assert.equal(await store.put(`${p}a`, '1'), r0 + 2, 'putting the same value again is a write too');
        await store.get(`${p}a`);
        await store.range(p);
        assert.equal(await store.revision(), r0 + 2, 'reads do not move the revision');
        assert.deepEqual(await store.delete(`${p}missing`), { deleted: 0, revision: r0 + 2 });
        assert.deepEqual(await store.deletePrefix(`${p}nothing/`), { deleted: 0, revision: r0 + 2 });
        assert.deepEqual(await store.delete(`${p}a`), { deleted: 1, revision: r0 + 3 });
        assert.equal(await store.revision(), r0 + 3);
      });

      it('a txn is one revision whatever it writes, none if it writes nothing', TIMEOUT, async () => {
        const p = fresh();
        const r0 = await store.revision();
        const t1 = await store.txn(
          [],
          [
            { type: 'put', key: `${p}x`, value: '1' },
            { type: 'put', key: `${p}y`, value: '2' },
            { type: 'put', key: `${p}z`, value: '3' },
          ],
        );
        assert.equal(t1.succeeded, true);
        assert.equal(t1.revision, r0 + 1);
        const { kvs, revision } = await store.range(p);
        assert.equal(revision, r0 + 1);
        assert.deepEqual(
          kvs.map((kv) => kv.modRevision),
          [r0 + 1, r0 + 1, r0 + 1],
        );
        const t2 = await store.txn([], [{ type: 'get', key: `${p}x` }, { type: 'range', prefix: p }]);
        assert.equal(t2.revision, r0 + 1, 'a read-only txn does not move the revision');
        const t3 = await store.txn([], [{ type: 'delete', key: `${p}missing` }, { type: 'deletePrefix', prefix: `${p}none/` }]);
        assert.equal(t3.revision, r0 + 1, 'a txn whose deletes found nothing does not move it');
        assert.deepEqual(t3.responses, [{ count: 0 }, { count: 0 }]);
        const t4 = await store.txn([{ key: `${p}x`, target: 'version', op: '=', value: 99 }], [{ type: 'put', key: `${p}x`, value: 'no' }]);
        assert.equal(t4.succeeded, false);
        assert.equal(t4.revision, r0 + 1, 'a failed txn without failure ops does not move it');
        const t5 = await store.txn(
          [],
          [
            { type: 'put', key: `${p}w`, value: '4' },
            { type: 'delete', key: `${p}x` },
            { type: 'deletePrefix', prefix: `${p}y` },
          ],
        );
        assert.equal(t5.revision, r0 + 2, 'puts and deletes in one txn: one revision');
        assert.deepEqual(t5.responses, [{ count: 1 }, { count: 1 }, { count: 1 }]);
        assert.equal(await store.revision(), r0 + 2);
      });
    });

    it('createRevision, modRevision and version follow etcd', TIMEOUT, async () => {
      const k = `${fresh()}key`;
      assert.equal(await store.get(k), undefined, 'a missing key reads as undefined');
      const r1 = await store.put(k, 'v1');
      assert.deepEqual(await store.get(k), { key: k, value: 'v1', createRevision: r1, modRevision: r1, version: 1 });
      const r2 = await store.put(k, 'v2');
      assert.deepEqual(await store.get(k), { key: k, value: 'v2', createRevision: r1, modRevision: r2, version: 2 });
      const r3 = await store.put(k, 'v3');
      assert.deepEqual(await store.get(k), { key: k, value: 'v3', createRevision: r1, modRevision: r3, version: 3 });
      await store.delete(k);
      assert.equal(await store.get(k), undefined);
      const r5 = await store.put(k, 'again');
      assert.deepEqual(
        await store.get(k),
        { key: k, value: 'again', createRevision: r5, modRevision: r5, version: 1 },
        're-created after a delete: a new life',
      );
      await store.put(k, '');
      assert.equal((await store.get(k))?.value, '', 'an empty value is a value');
    });

    describe('range', () => {
      it('lists keys under a prefix in byte order, and only those', TIMEOUT, async () => {
        const p = fresh();
        const all = ['a', 'a/', 'a/1', 'a/10', 'a/2', 'a0', 'ab', 'b', 'a/x/deep'];
        for (const k of [...all].reverse()) await store.put(p + k, k);
        const under = await store.range(`${p}a/`);
        assert.deepEqual(keys(under.kvs), ['a/', 'a/1', 'a/10', 'a/2', 'a/x/deep'].map((k) => p + k));
        assert.equal(under.revision, await store.revision());
        assert.deepEqual(
          under.kvs.map((kv) => kv.value),
          ['a/', 'a/1', 'a/10', 'a/2', 'a/x/deep'],
        );
        const whole = await store.range(p);
        assert.deepEqual(keys(whole.kvs), [...all].sort(byteOrder).map((k) => p + k));
        assert.deepEqual(keys((await store.range(`${p}a`)).kvs), all.filter((k) => k.startsWith('a')).sort(byteOrder).map((k) => p + k));
        assert.deepEqual((await store.range(`${p}zzz`)).kvs, []);
        assert.deepEqual(keys((await store.range(`${p}a/1`)).kvs), [`${p}a/1`, `${p}a/10`]);
        assert.deepEqual(keys((await store.range(`${p}b`)).kvs), [`${p}b`]);
      });

      it('orders unicode keys by UTF-8 bytes, like etcd', TIMEOUT, async () => {
        const p = fresh();
        // UTF-8 byte order differs from JavaScript's UTF-16 order for U+E000 vs U+1F600
        const ks = ['z', 'é', '\uE000', '😀', 'ü/1', 'ü/2', 'üx'];
        for (const k of ks) await store.put(p + k, k);
        assert.deepEqual(keys((await store.range(p)).kvs), [...ks].sort(byteOrder).map((k) => p + k));
        assert.deepEqual(keys((await store.range(`${p}ü/`)).kvs), [`${p}ü/1`, `${p}ü/2`]);
        assert.deepEqual(keys((await store.range(`${p}😀`)).kvs), [`${p}😀`]);
        assert.deepEqual(keys((await store.range(`${p}\uE000`)).kvs), [`${p}\uE000`]);
      });
    });

    it('deletePrefix removes exactly the keys under the prefix, in one revision', TIMEOUT, async () => {
      const p = fresh();
      for (const k of ['d/1', 'd/2', 'd/3/x', 'd', 'dx', 'e']) await store.put(p + k, 'v');
      const r0 = await store.revision();
      assert.deepEqual(await store.deletePrefix(`${p}d/`), { deleted: 3, revision: r0 + 1 });
      assert.deepEqual(keys((await store.range(p)).kvs), ['d', 'dx', 'e'].map((k) => p + k));
      assert.deepEqual(await store.deletePrefix(`${p}d/`), { deleted: 0, revision: r0 + 1 });
      assert.deepEqual(await store.deletePrefix(p), { deleted: 3, revision: r0 + 2 });
      assert.deepEqual((await store.range(p)).kvs, []);
    });

    describe('txn', () => {
      it('evaluates every compare target and op, on present and missing keys', TIMEOUT, async () => {
        const p = fresh();
        const k = `${p}k`;
        const c = await store.put(k, 'm');
        const m = await store.put(k, 'm');
        await store.put(`${p}pua`, '\uE000');
        const missing = `${p}missing`;
        type Case = [key: string, target: Compare['target'], op: Compare['op'], value: number | string, holds: boolean];
        const cases: Case[] = [
          [k, 'version', '=', 2, true],
          [k, 'version', '!=', 2, false],
          [k, 'version', '<', 3, true],
          [k, 'version', '<', 2, false],
          [k, 'version', '>', 1, true],
          [k, 'version', '>', 2, false],
          [k, 'create', '=', c, true],
          [k, 'create', '!=', c, false],
          [k, 'create', '<', c, false],
          [k, 'create', '<', c + 1, true],
          [k, 'create', '>', c - 1, true],
          [k, 'create', '>', c, false],
          [k, 'mod', '=', m, true],
          [k, 'mod', '=', c, false],
          [k, 'mod', '!=', c, true],
          [k, 'mod', '<', m + 1, true],
          [k, 'mod', '>', m, false],
          [k, 'mod', '>', c, true],
          [k, 'value', '=', 'm', true],
          [k, 'value', '=', 'M', false],
          [k, 'value', '!=', 'm', false],
          [k, 'value', '!=', 'x', true],
          [k, 'value', '<', 'n', true],
          [k, 'value', '<', 'm', false],
          [k, 'value', '<', 'ma', true],
          [k, 'value', '>', 'l', true],
          [k, 'value', '>', 'm', false],
          [k, 'value', '>', '', true],
          // values compare as UTF-8 bytes: U+E000 (EE 80 80) < U+1F600 (F0 9F 98 80)
          [`${p}pua`, 'value', '<', '😀', true],
          [`${p}pua`, 'value', '>', '😀', false],
          // a missing key: version = create = mod = 0
          [missing, 'version', '=', 0, true],
          [missing, 'version', '>', 0, false],
          [missing, 'version', '<', 1, true],
          [missing, 'create', '=', 0, true],
          [missing, 'create', '!=', 0, false],
          [missing, 'mod', '=', 0, true],
          [missing, 'mod', '<', 1, true],
          // ... and any value compare on it fails, even != (etcd)
          [missing, 'value', '=', '', false],
          [missing, 'value', '!=', 'x', false],
          [missing, 'value', '<', 'z', false],
          [missing, 'value', '>', '', false],
        ];
        const r0 = await store.revision();
        for (const [key, target, op, value, holds] of cases) {
          const res = await store.txn([{ key, target, op, value }], [{ type: 'get', key }], [{ type: 'range', prefix: key }]);
          assert.equal(res.succeeded, holds, `${key.slice(p.length)} ${target} ${op} ${JSON.stringify(value)}`);
          assert.equal(res.revision, r0);
          assert.equal(res.responses.length, 1);
        }
        // all compares must hold
        const both = (v: number) =>
          store.txn(
            [
              { key: k, target: 'version', op: '=', value: 2 },
              { key: k, target: 'mod', op: '=', value: v },
            ],
            [],
          );
        assert.equal((await both(m)).succeeded, true);
        assert.equal((await both(m + 1)).succeeded, false);
        assert.equal((await store.txn([], [])).succeeded, true, 'no compares: success');
      });

      it('runs the success or the failure branch and answers each op', TIMEOUT, async () => {
        const p = fresh();
        const k = `${p}k`;
        const absent: Compare = { key: k, target: 'create', op: '=', value: 0 };
        const first = await store.txn(
          [absent],
          [
            { type: 'put', key: k, value: 'v1' },
            { type: 'get', key: k },
            { type: 'put', key: `${p}other`, value: 'o' },
            { type: 'range', prefix: p },
            { type: 'get', key: `${p}missing` },
          ],
          [{ type: 'get', key: k }],
        );
        assert.equal(first.succeeded, true);
        const kv1: KeyValue = { key: k, value: 'v1', createRevision: first.revision, modRevision: first.revision, version: 1 };
        const other: KeyValue = { key: `${p}other`, value: 'o', createRevision: first.revision, modRevision: first.revision, version: 1 };
        assert.deepEqual(first.responses, [{ count: 1 }, { kvs: [kv1] }, { count: 1 }, { kvs: [kv1, other] }, { kvs: [] }]);

        const second = await store.txn([absent], [{ type: 'put', key: k, value: 'v2' }], [{ type: 'get', key: k }]);
        assert.equal(second.succeeded, false);
        assert.equal(second.revision, first.revision);
        assert.deepEqual(second.responses, [{ kvs: [kv1] }]);
        assert.equal((await store.get(k))?.value, 'v1');

        const third = await store.txn(
          [{ key: k, target: 'value', op: '=', value: 'nope' }],
          [{ type: 'put', key: k, value: 'never' }],
          [
            { type: 'put', key: `${p}f`, value: 'from failure' },
            { type: 'delete', key: `${p}missing` },
            { type: 'deletePrefix', prefix: `${p}oth` },
            { type: 'range', prefix: p },
          ],
        );
        assert.equal(third.succeeded, false);
        assert.equal(third.revision, first.revision + 1, 'the failure branch wrote: one revision');
        const f: KeyValue = { key: `${p}f`, value: 'from failure', createRevision: third.revision, modRevision: third.revision, version: 1 };
        assert.deepEqual(third.responses, [{ count: 1 }, { count: 0 }, { count: 1 }, { kvs: [f, kv1] }]);
        assert.equal((await store.get(k))?.value, 'v1');
      });

      it('takes up to 128 ops; refuses more, and keys written twice, as etcd does', TIMEOUT, async () => {
        const p = fresh();
        const many: TxnOp[] = Array.from({ length: 128 }, (_, i) => ({ type: 'put', key: `${p}${i}`, value: String(i) }));
        const r0 = await store.revision();
        const res = await store.txn([], many);
        assert.equal(res.revision, r0 + 1);
        assert.equal((await store.range(p)).kvs.length, 128);
        const r1 = await store.revision();
        const put = (key: string): TxnOp => ({ type: 'put', key: p + key, value: 'x' });
        const bad: [string, Promise<unknown>][] = [
          ['129 ops', store.txn([], [...many, put('extra')])],
          ['a key put twice', store.txn([], [put('a'), put('a')])],
          ['put and delete of a key', store.txn([], [put('a'), { type: 'delete', key: `${p}a` }])],
          ['put under a deleted prefix', store.txn([], [{ type: 'deletePrefix', prefix: `${p}a` }, put('ab')])],
          ['twice in the failure branch', store.txn([], [], [put('b'), put('b')])],
          ['a numeric compare with a string', store.txn([{ key: `${p}a`, target: 'version', op: '=', value: '1' }], [])],
          ['a value compare with a number', store.txn([{ key: `${p}a`, target: 'value', op: '=', value: 1 }], [])],
          ['an empty key', store.put('', 'x')],
        ];
        for (const [what, promise] of bad) {
          await assert.rejects(promise, isStoreError('invalid'), what);
        }
        assert.equal(await store.revision(), r1, 'refused requests wrote nothing');
        const ok = await store.txn([], [put('a'), put('b'), { type: 'delete', key: `${p}c` }, { type: 'deletePrefix', prefix: `${p}1` }]);
        assert.equal(ok.succeeded, true, 'deletes beside puts of other keys are fine');
      });

      it('50 concurrent create-if-absent txns: exactly one wins', TIMEOUT, async () => {
        const k = `${fresh()}lock`;
        const results = await Promise.all(
          Array.from({ length: 50 }, (_, i) =>
            store.txn([{ key: k, target: 'create', op: '=', value: 0 }], [{ type: 'put', key: k, value: `owner-${i}` }], [{ type: 'get', key: k }]),
          ),
        );
        const winners = results.map((r, i) => (r.succeeded ? i : -1)).filter((i) => i >= 0);
        assert.equal(winners.length, 1, `exactly one winner (got ${winners.length})`);
        const kv = await store.get(k);
        assert.equal(kv?.value, `owner-${winners[0]}`);
        assert.equal(kv?.version, 1);
        for (const r of results) {
          if (!r.succeeded) assert.deepEqual(r.responses, [{ kvs: [kv] }], 'losers see the winner');
        }
      });

      it('50 concurrent compare-and-swap increments all land', TIMEOUT, async () => {
        const k = `${fresh()}counter`;
        let conflicts = 0;
        const increment = async (): Promise<void> => {
          for (;;) {
            const kv = await store.get(k);
            const next = String((kv ? Number(kv.value) : 0) + 1);
            const guard: Compare = kv
              ? { key: k, target: 'mod', op: '=', value: kv.modRevision }
              : { key: k, target: 'create', op: '=', value: 0 };
            const res = await store.txn([guard], [{ type: 'put', key: k, value: next }]);
            if (res.succeeded) return;
            conflicts++;
          }
        };
        await Promise.all(Array.from({ length: 50 }, increment));
        const kv = await store.get(k);
        assert.equal(kv?.value, '50');
        assert.equal(kv?.version, 50);
        assert.ok(conflicts > 0, 'the increments did race');
      });
    });

    describe('watch', () => {
      it('replays history after fromRevision, then goes on live', TIMEOUT, async () => {
        const p = fresh();
        await store.put(`${p}before`, 'not seen');
        const base = await store.revision();
        const r1 = await store.put(`${p}a`, '1');
        const r2 = await store.put(`${p}b`, '2');
        const r3 = await store.put(`${p}a`, '3');
        await store.put(`${p.slice(0, -1)}x/outside`, 'not under the prefix');
        const r4 = (await store.delete(`${p}b`)).revision;
        const c = new Collector();
        await watch(p, base, c);
        await c.waitEvents(4);
        assert.deepEqual(c.lines(), [`put ${r1} ${p}a=1`, `put ${r2} ${p}b=2`, `put ${r3} ${p}a=3`, `delete ${r4} ${p}b=`]);
        assert.deepEqual(c.events[0], {
          type: 'put',
          kv: { key: `${p}a`, value: '1', createRevision: r1, modRevision: r1, version: 1 },
        });
        assert.deepEqual(c.events[2].prevKv, { key: `${p}a`, value: '1', createRevision: r1, modRevision: r1, version: 1 });
        assert.deepEqual(c.events[2].kv, { key: `${p}a`, value: '3', createRevision: r1, modRevision: r3, version: 2 });
        assert.deepEqual(c.events[3].kv, { key: `${p}b`, value: '', createRevision: 0, modRevision: r4, version: 0 });
        assert.deepEqual(c.events[3].prevKv, { key: `${p}b`, value: '2', createRevision: r2, modRevision: r2, version: 1 });
        const r5 = await store.put(`${p}c`, 'live');
        await c.waitEvents(5);
        assert.equal(line(c.events[4]), `put ${r5} ${p}c=live`);

        const later = new Collector();
        await watch(p, r2, later);
        await later.waitEvents(3);
        assert.deepEqual(later.lines(), c.lines().slice(2), 'from r2: only what came after r2');
        await sleep(50);
        assert.equal(c.events.length, 5, 'nothing twice');
        assert.equal(later.events.length, 3, 'nothing twice');
      });

      it('from the current revision: only future changes', TIMEOUT, async () => {
        const p = fresh();
        await store.put(`${p}old`, 'x');
        const now = await store.revision();
        const c = new Collector();
        await watch(p, now, c);
        await sleep(100);
        assert.deepEqual(c.events, [], 'no history');
        const r = await store.put(`${p}new`, 'y');
        await c.waitEvents(1);
        assert.deepEqual(c.lines(), [`put ${r} ${p}new=y`]);
      });

      it('respects prefix boundaries', TIMEOUT, async () => {
        const p = fresh();
        const now = await store.revision();
        const c = new Collector();
        await watch(`${p}w/`, now, c);
        await store.put(`${p}wx`, 'no');
        await store.put(`${p}w`, 'no');
        const r = await store.put(`${p}w/1`, 'yes');
        await store.put(`${p}v/1`, 'no');
        await c.waitEvents(1);
        await sleep(50);
        assert.deepEqual(c.lines(), [`put ${r} ${p}w/1=yes`]);
      });

      it('delivers delete events with prevKv, one per key of a deletePrefix', TIMEOUT, async () => {
        const p = fresh();
        const r1 = await store.put(`${p}k`, 'v1');
        const r2 = await store.put(`${p}k`, 'v2');
        const r3 = await store.put(`${p}d/1`, 'one');
        const r4 = await store.put(`${p}d/2`, 'two');
        const c = new Collector();
        await watch(p, r4, c);
        const del = await store.delete(`${p}k`);
        const delp = await store.deletePrefix(`${p}d/`);
        await c.waitEvents(3);
        assert.deepEqual(c.events[0], {
          type: 'delete',
          kv: { key: `${p}k`, value: '', createRevision: 0, modRevision: del.revision, version: 0 },
          prevKv: { key: `${p}k`, value: 'v2', createRevision: r1, modRevision: r2, version: 2 },
        });
        assert.deepEqual(c.events.slice(1), [
          {
            type: 'delete',
            kv: { key: `${p}d/1`, value: '', createRevision: 0, modRevision: delp.revision, version: 0 },
            prevKv: { key: `${p}d/1`, value: 'one', createRevision: r3, modRevision: r3, version: 1 },
          },
          {
            type: 'delete',
            kv: { key: `${p}d/2`, value: '', createRevision: 0, modRevision: delp.revision, version: 0 },
            prevKv: { key: `${p}d/2`, value: 'two', createRevision: r4, modRevision: r4, version: 1 },
          },
        ]);
      });

      it('keeps order with no gaps or duplicates while writes race with the replay', TIMEOUT, async () => {
        const p = fresh();
        const base = await store.revision();
        const expected: string[] = [];
        // history: 300 revisions of 4 events each (more than one replay chunk)
        for (let i = 0; i < 300; i++) {
          const ops: TxnOp[] = [0, 1, 2, 3].map((j) => ({ type: 'put', key: `${p}h/${j}`, value: `${i}.${j}` }));
          const res = await store.txn([], ops);
          for (let j = 0; j < 4; j++) expected.push(`put ${res.revision} ${p}h/${j}=${i}.${j}`);
        }
        const c = new Collector();
        // start the watch and write at the same time, without waiting for it
        const writes = (async () => {
          const mine: string[] = [];
          for (let i = 0; i < 200; i++) {
            await new Promise((resolve) => setImmediate(resolve)); // let the replay run in between
            const key = `${p}live/${i % 7}`;
            if (i % 10 === 9) {
              const res = await store.delete(key);
              if (res.deleted) mine.push(`delete ${res.revision} ${key}=`);
            } else {
              mine.push(`put ${await store.put(key, String(i))} ${key}=${i}`);
            }
          }
          return mine;
        })();
        await watch(p, base, c);
        expected.push(...(await writes));
        await c.waitEvents(expected.length);
        await sleep(50);
        assert.equal(c.events.length, expected.length, 'no duplicates');
        assert.deepEqual(c.lines(), expected);
      });

      it('cancel stops delivery', TIMEOUT, async () => {
        const p = fresh();
        const c = new Collector();
        const w = await store.watch(p, await store.revision(), c.onEvents, c.onError);
        await store.put(`${p}1`, 'a');
        await c.waitEvents(1);
        await w.cancel();
        await store.put(`${p}2`, 'b');
        await store.put(`${p}3`, 'c');
        await sleep(100);
        assert.equal(c.events.length, 1);
        await w.cancel(); // twice is fine
      });

      it('reports compacted history as StoreError "compacted"', TIMEOUT, async () => {
        const p = fresh();
        const base = await store.revision();
        await store.put(`${p}1`, 'a');
        await store.put(`${p}2`, 'b');
        const r = await store.put(`${p}3`, 'c');
        const r4 = await store.put(`${p}4`, 'd');
        const r5 = await store.put(`${p}5`, 'e');
        await store.compact(r);
        const old = new Collector();
        await watch(p, base, old);
        const err = await old.waitError();
        isStoreError('compacted')(err);
        assert.deepEqual(old.events, [], 'no events from a compacted watch');

        const fine = new Collector();
        await watch(p, r, fine);
        await fine.waitEvents(2);
        assert.deepEqual(fine.lines(), [`put ${r4} ${p}4=d`, `put ${r5} ${p}5=e`]);

        await store.compact(r); // again: no-op
        await store.compact(base); // older: no-op
        await assert.rejects(store.compact(r5 + 1000), isStoreError('invalid'), 'a future revision');
        assert.deepEqual(keys((await store.range(p)).kvs).length, 5, 'compaction keeps current keys');
      });
    });

    it('stores unicode and 1 MB values intact', TIMEOUT, async () => {
      const p = fresh();
      const uk = `${p}ü/ключ/😀`;
      const uv = 'héllo wörld — 世界 😀 \u0000 \t\n"quoted" \\ end';
      const base = await store.revision();
      await store.put(uk, uv);
      assert.equal((await store.get(uk))?.value, uv);
      assert.deepEqual(keys((await store.range(`${p}ü/`)).kvs), [uk]);
      const big1 = 'x'.repeat(1 << 20);
      const big2 = '😀'.repeat(1 << 18); // 1 MiB of UTF-8
      const bigKey = `${p}big`;
      const r1 = await store.put(bigKey, big1);
      assert.equal((await store.get(bigKey))?.value, big1);
      const r2 = await store.put(bigKey, big2);
      const got = await store.get(bigKey);
      assert.equal(got?.value.length, big2.length);
      assert.ok(got?.value === big2, '1 MiB of emoji round-trips');
      const c = new Collector();
      await watch(p, base, c);
      await c.waitEvents(3);
      assert.equal(c.events[0].kv.value, uv);
      assert.equal(c.events[0].kv.key, uk);
      assert.equal(c.events[1].kv.modRevision, r1);
      assert.ok(c.events[1].kv.value === big1);
      assert.equal(c.events[2].kv.modRevision, r2);
      assert.ok(c.events[2].kv.value === big2);
      assert.ok(c.events[2].prevKv?.value === big1);
      const t = await store.txn([{ key: uk, target: 'value', op: '=', value: uv }], [{ type: 'get', key: bigKey }]);
      assert.equal(t.succeeded, true);
      assert.ok((t.responses[0] as { kvs: KeyValue[] }).kvs[0].value === big2);
    });

    it('rejects bad arguments with StoreError "invalid"', TIMEOUT, async () => {
      await assert.rejects(store.get(''), isStoreError('invalid'));
      await assert.rejects(store.put('k', undefined as unknown as string), isStoreError('invalid'));
      await assert.rejects(store.watch('p/', -1, () => {}), isStoreError('invalid'));
      await assert.rejects(store.watch('p/', 1.5, () => {}), isStoreError('invalid'));
      await assert.rejects(store.compact(-1), isStoreError('invalid'));
      await assert.rejects(store.txn([], [{ type: 'bogus' } as unknown as TxnOp]), isStoreError('invalid'));
    });

    it('close ends the store: calls after it fail with "closed"', TIMEOUT, async () => {
      const other = await open();
      const p = fresh();
      await other.put(`${p}k`, 'v');
      const c = new Collector();
      await other.watch(p, await other.revision(), c.onEvents, c.onError);
      await other.close();
      await other.close(); // twice is fine
      const closed = isStoreError('closed');
      await assert.rejects(other.get(`${p}k`), closed);
      await assert.rejects(other.put(`${p}k`, 'x'), closed);
      await assert.rejects(other.range(p), closed);
      await assert.rejects(other.delete(`${p}k`), closed);
      await assert.rejects(other.deletePrefix(p), closed);
      await assert.rejects(other.txn([], []), closed);
      await assert.rejects(other.revision(), closed);
      await assert.rejects(other.compact(1), closed);
      await assert.rejects(other.watch(p, 0, () => {}), closed);
      assert.deepEqual(c.events, []);
      assert.equal(typeof other.engine, 'string');
    });
  });
}
