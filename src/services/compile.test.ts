import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  compilePort,
  compilePortAt,
  deltaScript,
  fitWeights,
  fullScript,
  placePort,
  planDelta,
  planFull,
  slotTable,
  LbTableState,
  LB_MAGLEV_SIZE,
  MIN_BACKENDS_CAPACITY,
  type CompiledPort,
  type LbPort,
} from './compile.js';

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
  assert.deepEqual(c.rules, ['meta mark set numgen inc mod 3 offset 20480 goto lb']);
  assert.deepEqual([...c.elements.backends4], [
    ['20480', '10.1.0.1'],
    ['20481', '10.1.0.2'],
    ['20482', '10.1.0.3'],
  ]);
  // the target port, once per port: lb looks it up by the mark's key bits
  assert.deepEqual([...c.elements.ports4], [['20480', '8080']]);
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
  assert.match(compilePort(p).rules[0], /^meta mark set numgen random mod 4 offset 20480 goto lb$/);
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
  assert.equal(c.elements.backends4.get(String(20480 + 2048 + 7)), '10.1.0.1');
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
  assert.match(s, /map backends4 \{\n {4}typeof meta mark : ip daddr\n {4}size 65536\n/);
  assert.ok(s.indexOf('chain s-5 {') < s.indexOf('add map inet weft-svc services4'));
  // elements are added as set declarations: nft then need not list the old table's chains
  assert.doesNotMatch(s, /add element/);
});

test('a delta touches only what changed: one backend out', () => {
  const before = [compilePort(port())];
  const after = [compilePort(port({ backends: [be(1), be(3)] }))];
  const d = deltaScript(before, after);
  // slot 1 now holds backend 3, slot 2 goes; the chain's modulus changes
  assert.match(d, /^delete element inet weft-svc backends4 \{ 20481, 20482 \}$/m);
  assert.match(d, /^add map inet weft-svc backends4 \{ typeof meta mark : ip daddr; elements = \{ 20481 : 10\.1\.0\.3 \}; \}$/m);
  assert.match(d, /^flush chain inet weft-svc s-5\nadd chain inet weft-svc s-5 \{\n {2}meta mark set numgen inc mod 2 offset 20480 goto lb\n\}\n/m);
  assert.ok(!d.includes('services4'), 'the VIP entry stays put');
  assert.equal(deltaScript(after, after), '');
});

test('a delta adds and removes whole services', () => {
  const c = [compilePort(port())];
  const add = deltaScript([], c);
  assert.ok(add.indexOf('add chain inet weft-svc s-5 {') < add.indexOf('add map inet weft-svc services4'));
  const rm = deltaScript(c, []);
  assert.ok(rm.indexOf('delete element inet weft-svc services4') < rm.indexOf('delete chain inet weft-svc s-5'));
});

test('the highest keys give unsigned marks (no sign from a 32-bit shift)', () => {
  const c = compilePort(port({ key: 0xfffff }));
  assert.equal(c.rules[0], `meta mark set numgen inc mod 3 offset ${0xfffff000} goto lb`);
  assert.deepEqual([...c.elements.backends4.keys()], ['4294963200', '4294963201', '4294963202']);
});

/**
 * What the kernel holds of weft-svc's sets and port chains, fed with the compiler's scripts and
 * failing where the kernel would: an element added over another value, a delete of something
 * absent, backends4 past its declared size. Each script is one transaction (all or nothing).
 */
class KernelModel {
  sets = new Map<string, Map<string, string>>();
  chains = new Map<string, string[]>();
  size = Infinity;

  apply(script: string): void {
    const sets = new Map([...this.sets].map(([k, v]) => [k, new Map(v)]));
    const chains = new Map([...this.chains].map(([k, v]) => [k, [...v]]));
    let size = this.size;
    const set = (name: string) => sets.get(name) ?? sets.set(name, new Map()).get(name)!;
    const lines = script.split('\n');
    for (let i = 0; i < lines.length; i++) {
      const l = lines[i];
      let m: RegExpMatchArray | null;
      if (!l || l === 'table inet weft-svc {}') continue;
      if (l === 'delete table inet weft-svc') {
        sets.clear();
        chains.clear();
      } else if (l === 'table inet weft-svc {') {
        // the full script's table block: declared sizes and the port chains
        for (i++; lines[i] !== '}'; i++) {
          if ((m = /^ {2}(?:map|set) (\S+) \{$/.exec(lines[i]))) set(m[1]);
          if ((m = /^ {4}size (\d+)$/.exec(lines[i])) && /backends4/.test(lines[i - 2])) size = Number(m[1]);
          if ((m = /^ {2}chain (s-\d+) \{$/.exec(lines[i]))) {
            const rules: string[] = [];
            for (i++; lines[i] !== '  }'; i++) rules.push(lines[i].trim());
            chains.set(m[1], rules);
          }
        }
      } else if ((m = /^delete element inet weft-svc (\S+) \{ (.*) \}$/.exec(l))) {
        for (const k of m[2].split(', ')) assert.ok(set(m[1]).delete(k), `delete of absent ${m[1]} element ${k}`);
      } else if ((m = /^add (?:map|set) inet weft-svc (\S+) \{ [^;]+; elements = \{ (.*) \}; \}$/.exec(l))) {
        for (const item of m[2].split(', ')) {
          const [k, v = ''] = item.split(' : ');
          const was = set(m[1]).get(k);
          assert.ok(was === undefined || was === v, `${m[1]} ${k}: adding ${v} over ${was}`);
          set(m[1]).set(k, v);
        }
      } else if ((m = /^flush chain inet weft-svc (\S+)$/.exec(l))) {
        assert.ok(chains.has(m[1]), `flush of absent chain ${m[1]}`);
        chains.set(m[1], []);
      } else if ((m = /^add chain inet weft-svc (\S+)( \{)?$/.exec(l))) {
        const rules = chains.get(m[1]) ?? [];
        if (m[2]) for (i++; lines[i] !== '}'; i++) rules.push(lines[i].trim());
        chains.set(m[1], rules);
      } else if ((m = /^add rule inet weft-svc (\S+) (.*)$/.exec(l))) {
        assert.ok(chains.has(m[1]), `rule in absent chain ${m[1]}`);
        chains.get(m[1])!.push(m[2]);
      } else if ((m = /^delete chain inet weft-svc (\S+)$/.exec(l))) {
        assert.ok(chains.delete(m[1]), `delete of absent chain ${m[1]}`);
      } else assert.fail(`the model does not know: ${l}`);
    }
    assert.ok((sets.get('backends4')?.size ?? 0) <= size, 'backends4 past its declared size');
    this.sets = sets;
    this.chains = chains;
    this.size = size;
  }

  /** The backend address of every slot port `key`'s rule can pick, in slot order (affinity: by position). */
  reach(key: number): string[] {
    const rules = this.chains.get(`s-${key}`) ?? [];
    const b4 = this.sets.get('backends4') ?? new Map<string, string>();
    const m = /mod (\d+) (?:seed \S+ )?offset (\d+)( goto lb)?$/.exec(rules.find((r) => / mod \d+ /.test(r)) ?? '');
    if (!m) return [];
    const [n, from] = [Number(m[1]), Number(m[2])];
    const out: string[] = [];
    for (let mark = from; mark < from + n; mark++) {
      const id = m[3] ? String(mark) : this.sets.get('identity4')?.get(String(mark));
      assert.ok(id !== undefined && b4.has(id), `port ${key}: slot ${mark} reaches no backend`);
      if (!m[3]) assert.ok(this.sets.get('live4')?.has(id), `port ${key}: identity ${id} is not live`);
      out.push(b4.get(id)!);
    }
    assert.ok(this.sets.get('ports4')?.has(String(key * 4096)), `port ${key}: no target port`);
    return out;
  }
}

/** the addresses a port's slots should reach */
const expected = (p: LbPort) => slotTable(p).map((i) => p.backends[i].ip);

/** nft reads the ruleset back only for these commands */
const readsRuleset = (script: string) => /^(add element|delete element|add rule|delete chain) /m.test(script);

test('a change moves the slot table to free slots: the transaction only adds, the old slots go stale', () => {
  const full = planFull([compilePort(port())], []);
  const k = new KernelModel();
  k.apply(full.script);
  assert.deepEqual(k.reach(5), ['10.1.0.1', '10.1.0.2', '10.1.0.3']);
  const before = compilePort(port());
  const after = placePort(port({ backends: [be(1), be(3)] }), before, full.state);
  assert.equal(after.offset, 3);
  const plan = planDelta(full.state, [{ before: [before], after: [after] }], { defer: true });
  assert.equal(plan.deletes, false);
  assert.ok(!readsRuleset(plan.script), plan.script);
  assert.match(plan.script, /meta mark set numgen inc mod 2 offset 20483 goto lb/);
  k.apply(plan.script);
  assert.deepEqual(k.reach(5), ['10.1.0.1', '10.1.0.3']);
  assert.deepEqual(plan.state.staleOf(5), [20480, 20481, 20482]);
  assert.equal(plan.state.count, 5);
  // the next change goes past the stale slots too; a collection deletes them
  const again = placePort(port(), after, plan.state);
  assert.equal(again.offset, 5);
  const plan2 = planDelta(plan.state, [{ before: [after], after: [again] }], { defer: true });
  k.apply(plan2.script);
  assert.deepEqual(k.reach(5), ['10.1.0.1', '10.1.0.2', '10.1.0.3']);
  const gc = planDelta(plan2.state, [], { defer: true, collect: true });
  assert.match(gc.script, /^delete element inet weft-svc backends4 \{ 20480, 20481, 20482, 20483, 20484 \}\n$/);
  k.apply(gc.script);
  assert.equal(gc.state.stale, 0);
  assert.equal(k.sets.get('backends4')!.size, 3);
  assert.deepEqual(k.reach(5), ['10.1.0.1', '10.1.0.2', '10.1.0.3']);
});

test('an unchanged port stays put; a transaction that deletes anyway takes the stale slots along', () => {
  const a = compilePort(port());
  const b = compilePort(port({ key: 6, vip: '10.96.0.11' }));
  const full = planFull([a, b], []);
  const k = new KernelModel();
  k.apply(full.script);
  const same = placePort(port(), a, full.state);
  assert.equal(same.offset, 0);
  assert.equal(planDelta(full.state, [{ before: [a], after: [same] }], { defer: true }).script, '');
  const a2 = placePort(port({ backends: [be(2)] }), a, full.state);
  const p1 = planDelta(full.state, [{ before: [a], after: [a2] }], { defer: true });
  k.apply(p1.script);
  assert.equal(p1.state.stale, 3);
  // service 6 goes: its VIP must leave at once (a delete), and the stale slots of port 5 go with it
  const p2 = planDelta(p1.state, [{ before: [b], after: [] }], { defer: true });
  assert.ok(p2.deletes);
  k.apply(p2.script);
  assert.equal(p2.state.stale, 0);
  assert.deepEqual(k.reach(5), ['10.1.0.2']);
  assert.equal(k.chains.has('s-6'), false);
  assert.equal(k.sets.get('services4')!.has('10.96.0.11 . tcp . 80'), false);
});

test('a port whose free slots run out deletes its stale slots in the same transaction', () => {
  const mag = (n: number) => port({ algorithm: 'maglev', backends: Array.from({ length: n }, (_, i) => be(i + 1)) });
  let c = compilePort(mag(5));
  let plan = planFull([c], []);
  const k = new KernelModel();
  k.apply(plan.script);
  let state = plan.state;
  for (const n of [4, 5, 3, 4]) {
    const next = placePort(mag(n), c, state);
    const p = planDelta(state, [{ before: [c], after: [next] }], { defer: true });
    k.apply(p.script);
    assert.deepEqual(k.reach(5), expected(mag(n)));
    [c, state] = [next, p.state];
    // two tables of 2039 fit in 4096 slots: every other change must clear the way
    assert.ok(state.stale <= LB_MAGLEV_SIZE);
  }
  plan = planDelta(state, [], { defer: true, collect: true });
  k.apply(plan.script);
  assert.equal(k.sets.get('backends4')!.size, LB_MAGLEV_SIZE);
});

test('backends4 past its declared size: the stale slots go first, then the plan says rewrite', () => {
  const state = new LbTableState(4, 3);
  const before = compilePort(port());
  const after = placePort(port({ backends: [be(1), be(2)] }), before, state);
  const p = planDelta(state, [{ before: [before], after: [after] }], { defer: true });
  // 3 + 2 > 4: the old slots are deleted now instead of going stale
  assert.equal(p.overflow, false);
  assert.equal(p.state.stale, 0);
  assert.equal(p.state.count, 2);
  const big = placePort(port({ backends: [be(1), be(2), be(3), be(4), be(5)] }), after, p.state);
  assert.equal(planDelta(p.state, [{ before: [after], after: [big] }], { defer: true }).overflow, true);
  assert.equal(MIN_BACKENDS_CAPACITY, 65536);
});

test('source affinity changes in place (its identities are stable)', () => {
  const aff = (...ids: number[]) => port({ algorithm: 'source-affinity', backends: ids.map((id) => be(id + 1, { identity: id })) });
  const before = compilePort(aff(0, 1, 2));
  const full = planFull([before], []);
  const after = placePort(aff(0, 2), before, full.state);
  assert.equal(after.offset, 0);
  const p = planDelta(full.state, [{ before: [before], after: [after] }], { defer: true });
  assert.ok(p.deletes, 'identity 1 must leave live4 at once');
  const k = new KernelModel();
  k.apply(full.script);
  k.apply(p.script);
  assert.deepEqual([...new Set(k.reach(5))].sort(), ['10.1.0.1', '10.1.0.3']);
});

test('the backends of a port share one target port', () => {
  assert.throws(() => compilePort(port({ backends: [be(1), be(2, { port: 9090 })] })), /different target ports/);
});

test('many changes of every algorithm: each transaction is one the kernel takes, and every slot reaches its backend', () => {
  let seed = 7;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  const algos = ['round-robin', 'weighted-round-robin', 'random', 'maglev', 'least-connections', 'source-affinity'] as const;
  const ports = new Map<number, LbPort>();
  const mk = (key: number): LbPort => {
    const n = 1 + Math.floor(rnd() * 6);
    return port({
      key,
      service: `s${key}`,
      vip: `10.96.1.${key}`,
      algorithm: algos[key % algos.length],
      backends: Array.from({ length: n }, (_, i) => be(key * 10 + i, { weight: 1 + Math.floor(rnd() * 4), conns: Math.floor(rnd() * 3), identity: i })),
    });
  };
  for (let key = 1; key <= 12; key++) ports.set(key, mk(key));
  const compiled = new Map([...ports].map(([key, p]) => [key, compilePort(p)]));
  const full = planFull([...compiled.values()], ['10.96.0.0/16']);
  const k = new KernelModel();
  k.apply(full.script);
  let state = full.state;
  let fast = 0;
  for (let round = 0; round < 300; round++) {
    const key = 1 + Math.floor(rnd() * 14);
    const r = rnd();
    const was = ports.get(key);
    let next: LbPort | undefined;
    if (!was) next = mk(key);
    else if (r < 0.1) next = undefined;
    else if (r < 0.4 && was.backends.length > 1) next = { ...was, backends: was.backends.filter((_, i) => i !== Math.floor(rnd() * was.backends.length)) };
    else if (r < 0.7) {
      const ids = new Set(was.backends.map((b) => b.identity));
      let id = 0;
      while (ids.has(id)) id++;
      next = { ...was, backends: [...was.backends, be(key * 10 + 5 + Math.floor(rnd() * 4) + id * 100, { identity: id, conns: 0 })] };
    } else next = { ...was, backends: was.backends.map((b) => ({ ...b, conns: Math.floor(rnd() * 3) })) };
    const before = compiled.get(key);
    const after = next ? placePort(next, before, state) : undefined;
    const plan = planDelta(state, [{ before: before ? [before] : [], after: after ? [after] : [] }], { defer: true, collect: rnd() < 0.05 });
    assert.equal(plan.overflow, false);
    k.apply(plan.script);
    if (!plan.deletes && !/@/.test(plan.script)) {
      assert.ok(!readsRuleset(plan.script), plan.script);
      if (plan.script) fast++;
    }
    state = plan.state;
    if (next) ports.set(key, next);
    else ports.delete(key);
    if (after) compiled.set(key, after);
    else compiled.delete(key);
    for (const [pk, p] of ports) {
      if (p.algorithm === 'source-affinity') assert.deepEqual(k.reach(pk), slotTable(p).map((i) => p.backends[i].ip), `port ${pk}`);
      else assert.deepEqual(k.reach(pk), expected(p), `port ${pk} (${p.algorithm}) after round ${round}`);
    }
    const live = [...compiled.values()].reduce((n, c) => n + c.elements.backends4.size, 0);
    assert.equal(k.sets.get('backends4')!.size, live + state.stale);
    assert.equal(state.count, live + state.stale);
  }
  assert.ok(fast > 100, `${fast} of 300 changes were transactions without deletes`);
});

test('compiled ports keep their offsets in a full rewrite', () => {
  const c: CompiledPort = compilePortAt(port(), 100);
  const k = new KernelModel();
  k.apply(fullScript([c], []));
  assert.deepEqual(k.reach(5), ['10.1.0.1', '10.1.0.2', '10.1.0.3']);
  assert.throws(() => compilePortAt(port(), 4094), /does not fit/);
  assert.throws(() => compilePortAt(port({ algorithm: 'source-affinity', backends: [be(1, { identity: 0 })] }), 1), /does not fit/);
  // usable as a map callback: the index is not an offset
  assert.deepEqual([port(), port({ key: 6 })].map(compilePort).map((c) => c.offset), [0, 0]);
});
