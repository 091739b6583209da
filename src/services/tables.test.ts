/** Unit tests of the load-balancing tables: Maglev's balance and disruption, smooth weighted round robin. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_MAGLEV_SIZE, isPrime, maglevTable, weightedRoundRobin, type WeightedBackend } from './tables.js';

const equal = (n: number, prefix = 'b'): WeightedBackend[] => Array.from({ length: n }, (_, i) => ({ id: `${prefix}${i}`, weight: 1 }));

function shares(table: number[], n: number): number[] {
  const count = new Array<number>(n).fill(0);
  for (const b of table) count[b]++;
  return count.map((c) => c / table.length);
}

describe('maglevTable', () => {
  it('fills every slot of a prime table, each backend close to its fair share', () => {
    const t = maglevTable(equal(10));
    assert.equal(t.length, DEFAULT_MAGLEV_SIZE);
    assert.ok(t.every((b) => b >= 0 && b < 10));
    for (const s of shares(t, 10)) assert.ok(Math.abs(s - 0.1) < 0.01, `share ${s}`);
  });

  it('gives shares proportional to weights', () => {
    const t = maglevTable([{ id: 'a', weight: 1 }, { id: 'b', weight: 3 }, { id: 'c', weight: 0 }]);
    const [a, b, c] = shares(t, 3);
    assert.equal(c, 0, 'weight 0 takes no slot');
    assert.ok(Math.abs(a - 0.25) < 0.01 && Math.abs(b - 0.75) < 0.01, `${a} ${b}`);
  });

  it('moves about 1/N of the slots when one of N backends goes', () => {
    for (const n of [5, 10, 20]) {
      const all = equal(n);
      const before = maglevTable(all);
      const removed = 3;
      const rest = all.filter((_, i) => i !== removed);
      const after = maglevTable(rest).map((i) => rest[i].id);
      const ids = before.map((i) => all[i].id);
      const moved = ids.filter((id, slot) => id !== after[slot]).length / ids.length;
      const fair = 1 / n;
      assert.ok(moved >= fair * 0.9 && moved <= fair * 1.5, `n=${n}: moved ${moved.toFixed(3)}, 1/N = ${fair.toFixed(3)}`);
      // every slot that moved belonged to the removed backend, or is part of the small disturbance
      const fromOthers = ids.filter((id, slot) => id !== after[slot] && id !== all[removed].id).length / ids.length;
      assert.ok(fromOthers < fair * 0.5, `n=${n}: ${fromOthers.toFixed(3)} moved between survivors`);
    }
  });

  it('does not depend on the order backends are given in', () => {
    const a = equal(6);
    const b = [...a].reverse();
    assert.deepEqual(maglevTable(a).map((i) => a[i].id), maglevTable(b).map((i) => b[i].id));
  });

  it('refuses a size that is not prime, duplicate ids and bad weights; no backends give no table', () => {
    assert.throws(() => maglevTable(equal(2), 4096), /4096 is not prime/);
    assert.throws(() => maglevTable([{ id: 'x', weight: 1 }, { id: 'x', weight: 1 }]), /listed twice/);
    assert.throws(() => maglevTable([{ id: 'x', weight: 1.5 }]), /not a whole number/);
    assert.deepEqual(maglevTable([]), []);
    assert.deepEqual(maglevTable([{ id: 'x', weight: 0 }]), []);
    assert.ok(isPrime(4093) && isPrime(251) && !isPrime(1) && !isPrime(91));
  });
});

describe('weightedRoundRobin', () => {
  it('is plain round robin for equal weights', () => {
    assert.deepEqual(weightedRoundRobin(equal(3)), [0, 1, 2]);
  });

  it('gives each backend exactly its weight per cycle, spread out', () => {
    const seq = weightedRoundRobin([{ id: 'a', weight: 5 }, { id: 'b', weight: 1 }, { id: 'c', weight: 1 }]);
    assert.deepEqual(seq, [0, 0, 1, 0, 2, 0, 0], 'nginx smooth WRR: a a b a c a a');
    const seq2 = weightedRoundRobin([{ id: 'a', weight: 2 }, { id: 'b', weight: 0 }, { id: 'c', weight: 3 }]);
    assert.equal(seq2.length, 5);
    assert.equal(seq2.filter((i) => i === 0).length, 2);
    assert.equal(seq2.filter((i) => i === 2).length, 3);
    assert.ok(!seq2.includes(1), 'weight 0 is never picked');
  });
});
