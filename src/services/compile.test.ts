import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compilePort, deltaScript, fitWeights, fullScript, slotTable, LB_MAGLEV_SIZE, type LbPort } from './compile.js';

const be = (n: number, extra: Partial<LbPort['backends'][0]> = {}) => ({ id: `c${n}`, ip: `10.1.0.${n}`, port: 8080, weight: 1, ...extra });

function port(over: Partial<LbPort> = {}): LbPort {
  return {
    key: 5,
    service: 'web',
    vip: '10.96.0.10',
    protocol: 'tcp',
    port: 80,
    algorithm: 'round-robin',
    affinityTimeout: 10800,
    backends: [be(1), be(2), be(3)],
    ...over,
  };
}

test('round robin: one slot per backend, a per-service counter, marks KEY<<12 | slot', () => {
  const c = compilePort(port());
  assert.deepEqual(c.rules, ['meta mark set numgen inc mod 3 offset 20480', 'goto lb']);
  assert.deepEqual([...c.elements.backends4], [
    ['20480', '10.1.0.1 . 8080'],
    ['20481', '10.1.0.2 . 8080'],
    ['20482', '10.1.0.3 . 8080'],
  ]);
  assert.deepEqual([...c.elements.services4], [['10.96.0.10 . tcp . 80', 'goto s-5']]);
});

test('weighted round robin walks the smooth sequence, reduced by the weights\' divisor', () => {
  const p = port({ algorithm: 'weighted-round-robin', backends: [be(1, { weight: 10 }), be(2, { weight: 2 }), be(3, { weight: 2 })] });
  assert.deepEqual(slotTable(p), [0, 0, 1, 0, 2, 0, 0]);
  assert.match(compilePort(p).rules[0], /numgen inc mod 7 /);
});

test('fitWeights keeps proportions and fits a cap', () => {
  assert.deepEqual(fitWeights([4, 6], 100), [2, 3]);
  const w = fitWeights([5000, 1, 3000], 2048);
  assert.ok(w.reduce((a, b) => a + b) <= 2048);
  assert.equal(w[1], 1);
  assert.ok(Math.abs(w[0] / w[2] - 5 / 3) < 0.01);
});

test('random honours weights through repeated slots', () => {
  const p = port({ algorithm: 'random', backends: [be(1, { weight: 3 }), be(2)] });
  assert.deepEqual([...slotTable(p)].sort(), [0, 0, 0, 1]);
  assert.match(compilePort(p).rules[0], /^meta mark set numgen random mod 4 offset 20480$/);
});

test('maglev hashes the client address into a prime table', () => {
  const p = port({ algorithm: 'maglev' });
  const c = compilePort(p);
  assert.equal(c.elements.backends4.size, LB_MAGLEV_SIZE);
  assert.match(c.rules[0], new RegExp(`jhash ip saddr mod ${LB_MAGLEV_SIZE} seed 0x00000005 offset 20480`));
});

test('least connections takes only the least loaded backends per weight', () => {
  const p = port({ algorithm: 'least-connections', backends: [be(1, { conns: 4 }), be(2, { conns: 1 }), be(3, { conns: 2, weight: 2 })] });
  assert.deepEqual(slotTable(p), [1, 2]);
});

test('source affinity: positions map to stable identities, which map to backends', () => {
  const p = port({ algorithm: 'source-affinity', affinityTimeout: 30, backends: [be(1, { identity: 7 }), be(2, { identity: 0 })] });
  const c = compilePort(p);
  assert.deepEqual([...c.elements.identity4], [['20480', String(20480 + 2048 + 7)], ['20481', String(20480 + 2048)]]);
  assert.deepEqual([...c.elements.live4.keys()], [String(20480 + 2048 + 7), String(20480 + 2048)]);
  assert.equal(c.elements.backends4.get(String(20480 + 2048 + 7)), '10.1.0.1 . 8080');
  assert.ok(c.rules.some((r) => r.includes('timeout 30s')));
  assert.throws(() => compilePort({ ...p, backends: [be(1)] }), /identity/);
});

test('no backend: nothing dispatches (the filter refuses the range)', () => {
  const c = compilePort(port({ backends: [] }));
  assert.deepEqual(c.rules, []);
  assert.equal(c.elements.services4.size, 0);
  assert.equal(c.elements.backends4.size, 0);
});

test('published ports dispatch through the same chain', () => {
  const c = compilePort(port({ publish: 8080 }));
  assert.deepEqual([...c.elements.published4], [['tcp . 8080', 'goto s-5']]);
});

test('the full script rebuilds the table, chains before the elements that jump to them', () => {
  const s = fullScript([compilePort(port())], ['10.96.0.0/16']);
  assert.match(s, /^table inet weft-svc \{\}\ndelete table inet weft-svc\n/);
  assert.match(s, /set range4 \{\n {4}type ipv4_addr\n {4}flags interval\n {4}elements = \{ 10\.96\.0\.0\/16 \}/);
  assert.ok(s.indexOf('chain s-5 {') < s.indexOf('add element inet weft-svc services4'));
});

test('a delta touches only what changed: one backend out', () => {
  const before = [compilePort(port())];
  const after = [compilePort(port({ backends: [be(1), be(3)] }))];
  const d = deltaScript(before, after);
  // slot 1 now holds backend 3, slot 2 goes; the chain's modulus changes
  assert.match(d, /^delete element inet weft-svc backends4 \{ 20481, 20482 \}$/m);
  assert.match(d, /^add element inet weft-svc backends4 \{ 20481 : 10\.1\.0\.3 \. 8080 \}$/m);
  assert.match(d, /^flush chain inet weft-svc s-5\nadd rule inet weft-svc s-5 meta mark set numgen inc mod 2 offset 20480\n/m);
  assert.ok(!d.includes('services4'), 'the VIP entry stays put');
  assert.equal(deltaScript(after, after), '');
});

test('a delta adds and removes whole services', () => {
  const c = [compilePort(port())];
  const add = deltaScript([], c);
  assert.ok(add.indexOf('add chain inet weft-svc s-5') < add.indexOf('add element inet weft-svc services4'));
  const rm = deltaScript(c, []);
  assert.ok(rm.indexOf('delete element inet weft-svc services4') < rm.indexOf('delete chain inet weft-svc s-5'));
});

test('the highest keys give unsigned marks (no sign from a 32-bit shift)', () => {
  const c = compilePort(port({ key: 0xfffff }));
  assert.equal(c.rules[0], `meta mark set numgen inc mod 3 offset ${0xfffff000}`);
  assert.deepEqual([...c.elements.backends4.keys()], ['4294963200', '4294963201', '4294963202']);
});
