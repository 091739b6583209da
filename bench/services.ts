/**
 * Service load balancing (src/services/compile.ts, the agent's lb.ts) against the shape of
 * kube-proxy's iptables mode, in one run:
 *
 * 1. programming time of 10,000 services x 10 backends in a scratch netns: the whole table (compile in
 *    Node, nft apply, total), one backend removed from one service, one service added; weft
 *    (planFull / placePort + planDelta + nftApply, as the agent) vs a linear nft ruleset vs the real iptables-restore, both of
 *    which rewrite the whole table on every change;
 * 2. first-packet cost: TCP connect latency through a VIP at 10 and 10,000 services (the measured
 *    service last in every ruleset's order), weft vs linear nft vs iptables;
 * 3. VIP vs direct to the backend: connect latency and iperf3 throughput;
 * 4. distribution through the kernel with real connections: round robin, weighted round robin,
 *    random, Maglev disruption on removal (many client addresses), and least-connections through the
 *    real agent in a weft lab vs round robin under the same skewed connection pattern.
 *
 *   env -u NODE_EXTRA_CA_CERTS npx tsx bench/services.ts [--runs 5] [--warmup 1] [--services 10000] [--backends 10]
 *       [--connects 2000] [--seconds 3] [--sources 1000] [--lc-conns 45] [--only weft,linear,...]
 */
import { createHash } from 'node:crypto';
import { appendFileSync, existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseBenchArgs, runBench, type Bench, type Config, type MetricResult, type Target } from './harness.js';
import { InterleavedLatency, latencyArgs, pct, type RawLatencyJson } from './lib/latency.js';
import { benchName, netnsAdd, netnsDelete, runSubdir } from './lib/ns.js';
import { run, tryRun, waitFor } from './lib/proc.js';
import { fmt, ratioInterval, summarize } from './lib/stats.js';
import { runIperf } from './refs/iperf.js';
import { CLIENT_JS, REAL_BACKENDS, SERVER_JS, Shared, SvcNet, type Client } from './refs/svcnet.js';
import {
  fillerPort,
  iptablesRestoreInput,
  IPERF_PORT,
  LINEAR_TABLE,
  linearDrop,
  linearScript,
  MEASURED_VIP,
  measuredService,
  realBackend,
  realPort,
  servicesWithLast,
  weftDrop,
  weftFull,
  BACKEND_PORT,
  SERVICE_RANGES,
} from './refs/svcrules.js';
import { REPO_ROOT, WeftLab, weftAvailable } from './refs/weft.js';
import { compilePort, LB_MAGLEV_SIZE, placePort, planDelta, planFull, slotTable, type CompiledPort, type LbPort } from '../src/services/compile.js';
import { nftApply } from '../src/kernel/nft.js';

const { options, extra } = parseBenchArgs(
  { runs: 5, warmup: 1 },
  {
    services: { type: 'string', default: '10000', help: 'services in the large rulesets (programming and the "10k" latency configurations)' },
    backends: { type: 'string', default: '10', help: 'backends per service (2..10: the measured service\'s are real addresses)' },
    connects: { type: 'string', default: '2000', help: 'TCP connects per latency sample (one sample = their median / p99)' },
    seconds: { type: 'string', default: '3', help: 'iperf3 -t per throughput sample' },
    sources: { type: 'string', default: '1000', help: 'client source addresses for the Maglev disruption test' },
    'lc-conns': { type: 'string', default: '45', help: 'connections per least-connections round (one every 150 ms)' },
  },
);

function intOpt(name: string, min: number, max: number): number {
  const n = Number(extra[name]);
  if (!Number.isInteger(n) || n < min || n > max) {
    process.stderr.write(`--${name} must be an integer from ${min} to ${max}\n`);
    process.exit(2);
  }
  return n;
}
const SERVICES = intOpt('services', 20, 30_000);
const BACKENDS = intOpt('backends', 2, REAL_BACKENDS);
const CONNECTS = intOpt('connects', 100, 100_000);
const SECONDS = intOpt('seconds', 1, 60);
const SOURCES = intOpt('sources', 10, 20_000);
const LC_CONNS = intOpt('lc-conns', 6, 1000);
const SMALL = 10;
const K = SERVICES >= 1000 ? `${SERVICES / 1000}k` : String(SERVICES);

const log = (s: string): void => {
  process.stderr.write(`${s}\n`);
};

// ---------------------------------------------------------------------------------------------
// 1. programming time

/** The 10,000 filler services of the programming test, made once. */
let progPorts: LbPort[] | null = null;
const programmingPorts = (): LbPort[] => (progPorts ??= Array.from({ length: SERVICES }, (_, i) => fillerPort(i, BACKENDS)));
/** the service that loses a backend (its first: every round-robin slot moves) and the one added */
const CHANGED = Math.floor(SERVICES / 2);
const withoutFirstBackend = (p: LbPort): LbPort => ({ ...p, backends: p.backends.slice(1) });
const addedPort = (): LbPort => fillerPort(SERVICES, BACKENDS);

const ms = (t0: number): number => performance.now() - t0;

interface Prog {
  ns: string;
  facts: string[];
}

function weftProgConfig(): Config {
  const p: Prog = { ns: benchName('pw', 'netns'), facts: [] };
  return {
    name: 'weft',
    describe: `weft's compiler as the agent (src/agent/lb.ts) uses it (src/services/compile.ts: compilePort + planFull for the whole table; placePort + planDelta with deferred deletes for a change) and src/kernel/nft.ts nftApply (one \`nft -f\` transaction, through \`ip netns exec\`) in a scratch netns; ${SERVICES.toLocaleString('en')} services x ${BACKENDS} backends, round robin`,
    setup: async () => {
      await netnsAdd(p.ns);
      const { script } = weftFull(programmingPorts());
      const src = join(REPO_ROOT, 'src', 'services', 'compile.ts');
      p.facts.push(`src/services/compile.ts as imported at start: sha256 ${createHash('sha256').update(readFileSync(src)).digest('hex').slice(0, 12)}, modified ${statSync(src).mtime.toISOString().slice(0, 19)} UTC`);
      p.facts.push(`full script ${(script.length / 2 ** 20).toFixed(1)} MiB, ${script.split('\n').length.toLocaleString('en')} lines; nft ${(await run('nft', ['--version'])).stdout.trim()}`);
    },
    measure: async () => {
      const opts = { netns: p.ns };
      const ports = programmingPorts();
      await nftApply(weftDrop, opts); // untimed: from an empty netns
      let t0 = performance.now();
      const compiled = ports.map((x) => compilePort(x));
      const { script, state } = planFull(compiled, SERVICE_RANGES);
      const compile = ms(t0);
      let t1 = performance.now();
      await nftApply(script, opts);
      const apply = ms(t1);
      const total = compile + apply;
      // the same again with the table present (agent restart, or a failed delta's fallback)
      t0 = performance.now();
      await nftApply(planFull(ports.map((x) => compilePort(x)), SERVICE_RANGES).script, opts);
      const rewrite = ms(t0);
      // one backend removed from one service, as the agent does it: the slot table moves to free
      // slots, the transaction only adds, the old slots go stale
      t0 = performance.now();
      const changed = placePort(withoutFirstBackend(ports[CHANGED]), compiled[CHANGED], state);
      const delta = planDelta(state, [{ before: [compiled[CHANGED]], after: [changed] }], { defer: true });
      t1 = performance.now();
      await nftApply(delta.script, opts);
      const changeApply = ms(t1);
      const change = ms(t0);
      // one service added
      t0 = performance.now();
      const added = planDelta(delta.state, [{ before: [], after: [placePort(addedPort(), undefined, delta.state)] }], { defer: true });
      await nftApply(added.script, opts);
      const add = ms(t0);
      // the stale slots' deletion, which the agent leaves to a later transaction (lb.ts COLLECT_MS)
      t0 = performance.now();
      const gc = planDelta(added.state, [], { defer: true, collect: true });
      await nftApply(gc.script, opts);
      const collect = ms(t0);
      t0 = performance.now();
      await nftApply('add table inet weft-svc\n', opts);
      const floor = ms(t0);
      if (delta.deletes || added.deletes || !gc.deletes) throw new Error('the change and the added service should be transactions without deletes, the collection one with');
      if (!p.facts.some((f) => f.startsWith('one change')))
        p.facts.push(
          `one change = ${delta.script.trim().split('\n').length} nft script lines (${delta.script.length} bytes), no deletes; stale collection = ${gc.script.trim().split('\n').length} line(s), ${added.state.stale} elements`,
        );
      return {
        'full: compile': compile,
        'full: apply': apply,
        'full: total': total,
        'full rewrite': rewrite,
        'one change': change,
        'one change: apply': changeApply,
        'add one service': add,
        'stale collection': collect,
        'no-op transaction': floor,
      };
    },
    teardown: async () => {
      await netnsDelete(p.ns);
    },
    info: () => p.facts,
  };
}

/**
 * The programming metrics of a reference that rewrites everything on every change (linear nft,
 * iptables-restore): whole table from empty, the same again, one backend removed, one service added,
 * and the floor of a no-op load.
 */
async function measureFullRestore(ref: {
  reset: () => Promise<unknown>;
  write: (ports: LbPort[]) => string;
  load: (text: string) => Promise<unknown>;
  noop: () => Promise<unknown>;
}): Promise<Record<string, number>> {
  const ports = programmingPorts();
  await ref.reset();
  let t0 = performance.now();
  const script = ref.write(ports);
  const compile = ms(t0);
  let t1 = performance.now();
  await ref.load(script);
  const apply = ms(t1);
  t0 = performance.now();
  await ref.load(ref.write(ports));
  const rewrite = ms(t0);
  const changedPorts = ports.slice();
  changedPorts[CHANGED] = withoutFirstBackend(ports[CHANGED]);
  t0 = performance.now();
  const changed = ref.write(changedPorts);
  t1 = performance.now();
  await ref.load(changed);
  const changeApply = ms(t1);
  const change = ms(t0);
  t0 = performance.now();
  await ref.load(ref.write([...changedPorts, addedPort()]));
  const add = ms(t0);
  t0 = performance.now();
  await ref.noop();
  const floor = ms(t0);
  return {
    'full: compile': compile,
    'full: apply': apply,
    'full: total': compile + apply,
    'full rewrite': rewrite,
    'one change': change,
    'one change: apply': changeApply,
    'add one service': add,
    'no-op transaction': floor,
  };
}

function linearProgConfig(): Config {
  const p: Prog = { ns: benchName('pl', 'netns'), facts: [] };
  return {
    name: 'linear',
    describe: `kube-proxy iptables-mode shape in nft syntax (refs/svcrules.ts linearScript: KUBE-SERVICES with one \`ip daddr VIP tcp dport 80 jump svc-N\` per service, svc-N with the \`numgen random mod N-j == 0 ... dnat\` cascade), applied with the same nftApply; every change rewrites the whole table (table {} / delete table / table {...} in one transaction)`,
    setup: async () => {
      await netnsAdd(p.ns);
      const s = linearScript(programmingPorts());
      p.facts.push(`script ${(s.length / 2 ** 20).toFixed(1)} MiB, ${s.split('\n').length.toLocaleString('en')} lines`);
    },
    measure: () => {
      const opts = { netns: p.ns };
      return measureFullRestore({
        reset: () => nftApply(linearDrop, opts),
        write: linearScript,
        load: (text) => nftApply(text, opts),
        noop: () => nftApply(`add table ip ${LINEAR_TABLE}\n`, opts),
      });
    },
    teardown: async () => {
      await netnsDelete(p.ns);
    },
    info: () => p.facts,
  };
}

async function iptablesAvailable(): Promise<string | null> {
  const r = await tryRun('iptables-restore', ['--version']);
  return r ? null : 'iptables-restore is not installed (Debian iptables)';
}

function iptablesProgConfig(): Config {
  const p: Prog = { ns: benchName('pi', 'netns'), facts: [] };
  const restore = async (text: string, extraArgs: string[] = []): Promise<void> => {
    const file = join(runSubdir('iptables'), 'restore.txt'); // overwritten: one file of a few MB, not one per apply
    writeFileSync(file, text);
    await run('ip', ['netns', 'exec', p.ns, 'iptables-restore', ...extraArgs, file]);
  };
  return {
    name: 'iptables',
    describe:
      'the same ruleset as kube-proxy\'s iptables mode writes it (refs/svcrules.ts iptablesRestoreInput: KUBE-SERVICES, KUBE-SVC-N with `-m statistic --mode random --probability`), loaded with `iptables-restore` (iptables-nft) in a scratch netns; every change restores the whole nat table, as kube-proxy\'s full sync does (the file write is inside the apply time)',
    available: iptablesAvailable,
    setup: async () => {
      await netnsAdd(p.ns);
      p.facts.push((await run('iptables-restore', ['--version'])).stdout.trim());
      // a load must really load (iptables-restore exits 0 on an empty input): check one service's chain
      const ports = programmingPorts();
      await restore(iptablesRestoreInput(ports));
      const key = ports[CHANGED].key;
      const rules = (await run('ip', ['netns', 'exec', p.ns, 'iptables', '-t', 'nat', '-S', `KUBE-SVC-${key}`])).stdout.split('\n').filter((l) => l.startsWith('-A')).length;
      if (rules !== BACKENDS) throw new Error(`iptables-restore loaded ${rules} rules in KUBE-SVC-${key}, expected ${BACKENDS}`);
    },
    measure: () =>
      measureFullRestore({
        reset: () => run('ip', ['netns', 'exec', p.ns, 'nft', 'table ip nat {}; delete table ip nat']),
        write: iptablesRestoreInput,
        load: (text) => restore(text),
        noop: () => restore('*nat\nCOMMIT\n', ['--noflush']),
      }),
    teardown: async () => {
      await netnsDelete(p.ns);
    },
    info: () => p.facts,
  };
}

// ---------------------------------------------------------------------------------------------
// 2 and 3. connect latency through a VIP, and VIP vs direct

const net = new SvcNet();

const latency = new InterleavedLatency(CONNECTS);


type RulesetKind = 'weft' | 'linear' | 'iptables' | 'none';

function latencyConfig(kind: RulesetKind, services: number, n: number, opts: { throughput?: boolean; optIn?: boolean; direct?: boolean } = {}): Config {
  const direct = kind === 'none' || !!opts.direct;
  const name = kind === 'none' ? 'direct' : direct ? 'direct-ct' : `${kind}-${services === SMALL ? SMALL : K}`;
  let client: Client | null = null;
  let acquired = false;
  const facts: string[] = [];
  const target = direct ? realBackend(0) : MEASURED_VIP;
  const port = direct ? BACKEND_PORT : 80;
  const describe =
    kind === 'none'
      ? `the same client path with no ruleset at all: connects to backend ${realBackend(0)}:${BACKEND_PORT} directly (no NAT, no conntrack in the client netns)`
      : direct
        ? `weft's table of ${services.toLocaleString('en')} services loaded in the client netns (so conntrack tracks every flow), but connecting to backend ${realBackend(0)}:${BACKEND_PORT} directly: conntrack without NAT`
        : `${services.toLocaleString('en')} services x ${BACKENDS} backends as ${kind === 'weft' ? "weft's table (fullScript)" : kind === 'linear' ? 'the linear nft ruleset' : 'the iptables-restore ruleset (iptables-nft)'} in the client netns (nat output hook); the measured service ${MEASURED_VIP}:80 -> ${BACKENDS} real backends :${BACKEND_PORT} is the last of them`;
  return {
    name,
    describe: `${describe}${opts.throughput ? `; iperf3 to ${target}:${IPERF_PORT}` : ''}`,
    optIn: opts.optIn,
    available: kind === 'iptables' ? iptablesAvailable : undefined,
    setup: async () => {
      acquired = true;
      await net.acquire();
      client = await net.addClient(String(n), n);
      const ports = servicesWithLast(services, BACKENDS, (key) => measuredService(key, BACKENDS));
      const t0 = performance.now();
      if (kind === 'weft') await nftApply(weftFull(ports).script, { netns: client.ns });
      else if (kind === 'linear') await nftApply(linearScript(ports), { netns: client.ns });
      else if (kind === 'iptables') {
        const file = join(runSubdir('iptables'), `${name}.txt`);
        writeFileSync(file, iptablesRestoreInput(ports));
        await run('ip', ['netns', 'exec', client.ns, 'iptables-restore', file]);
      }
      if (kind !== 'none') facts.push(`ruleset of ${ports.length.toLocaleString('en')} service ports loaded in ${fmt(ms(t0))} ms`);
      // one connection per backend address must work before the first round
      const probe = await net.client<{ counts: Record<string, number>; errors: number }>(client.ns, ['backends', '--host', target, '--port', String(port), '--count', String(BACKENDS)]);
      if (probe.errors) throw new Error(`${probe.errors} of ${BACKENDS} probe connections to ${target}:${port} failed`);
      facts.push(`client ${client.ns} (${client.ip}); probe: ${JSON.stringify(probe.counts)}`);
      const ns = client.ns;
      latency.join({ name, target: `${target}:${port}`, run: (n) => net.client<RawLatencyJson>(ns, latencyArgs(target, port, n)) });
    },
    measure: async (round) => {
      const c = client as Client;
      const xs = await latency.samples(name, round);
      const out: Record<string, number> = { 'connect p50': pct(xs, 0.5), 'connect p99': pct(xs, 0.99) };
      if (opts.throughput) {
        out.throughput = (await runIperf({ server: { netns: net.backendNs }, client: { netns: c.ns }, serverIp: target, port: IPERF_PORT, seconds: SECONDS })).gbps;
      }
      return out;
    },
    teardown: async () => {
      latency.leave(name);
      if (acquired) await net.release();
      acquired = false;
    },
    info: () => [...facts, latency.describe()],
  };
}

// ---------------------------------------------------------------------------------------------
// 4. distribution through the kernel (weft's table in a client netns)

const DIST = {
  rr: { vip: '10.97.0.2', n: 3, conns: 300 },
  wrr: { vip: '10.97.0.3', weights: [5, 3, 1], conns: 900 },
  random: { vip: '10.97.0.4', n: 3, conns: 3000 },
  maglev: { vip: '10.97.0.5', n: REAL_BACKENDS },
};

function distPorts(): LbPort[] {
  return [
    realPort(16, DIST.rr.vip, 80, BACKEND_PORT, 'round-robin', DIST.rr.n),
    realPort(32, DIST.wrr.vip, 80, BACKEND_PORT, 'weighted-round-robin', DIST.wrr.weights.length, DIST.wrr.weights),
    realPort(48, DIST.random.vip, 80, BACKEND_PORT, 'random', DIST.random.n),
    realPort(64, DIST.maglev.vip, 80, BACKEND_PORT, 'maglev', DIST.maglev.n),
  ];
}

/** Pure table level: share of Maglev slots that change owner when one of n backends goes, for each choice of the one. */
function maglevTableDisruption(n: number): { moved: number[]; fromSurvivors: number[] } {
  const full = realPort(64, DIST.maglev.vip, 80, BACKEND_PORT, 'maglev', n);
  const before = slotTable(full).map((i) => full.backends[i].id);
  const moved: number[] = [];
  const fromSurvivors: number[] = [];
  for (let r = 0; r < n; r++) {
    const less = { ...full, backends: full.backends.filter((_, j) => j !== r) };
    const after = slotTable(less).map((i) => less.backends[i].id);
    const gone = full.backends[r].id;
    let m = 0;
    let s = 0;
    before.forEach((id, slot) => {
      if (after[slot] !== id) {
        m++;
        if (id !== gone) s++;
      }
    });
    moved.push((100 * m) / before.length);
    fromSurvivors.push((100 * s) / before.length);
  }
  return { moved, fromSurvivors };
}

interface BackendsJson {
  counts: Record<string, number>;
  bySource?: (string | null)[];
  errors: number;
}

interface DistRound {
  round: number;
  rr: number[];
  wrr: number[];
  random: number[];
  chi2: number;
  maglevRemoved: string;
  maglevBefore: Record<string, number>;
  moved: number;
  fromSurvivors: number;
  stillOnRemoved: number;
  errors: number;
}

const distRounds: DistRound[] = [];
let maglevTable: { moved: number[]; fromSurvivors: number[] } | null = null;

function distConfig(n: number): Config {
  let client: Client | null = null;
  let acquired = false;
  let sources: string[] = [];
  let compiled: CompiledPort[] = [];
  let full = '';
  let fullState = planFull([], []).state;
  const countsOf = (r: BackendsJson, k: number): number[] => Array.from({ length: k }, (_, j) => r.counts[realBackend(j)] ?? 0);
  return {
    name: 'dist',
    describe: `weft's table (compile.ts) in a client netns with four services on the real backends: round robin over 3 (${DIST.rr.conns} connections), weighted round robin 5:3:1 (${DIST.wrr.conns}), random over 3 (${DIST.random.conns}), Maglev over ${REAL_BACKENDS} (one connection from each of ${SOURCES} source addresses, before and after one backend is removed as the agent does it, placePort + planDelta + nftApply); each connection reads which backend answered`,
    setup: async () => {
      acquired = true;
      await net.acquire();
      client = await net.addClient('dist', n);
      sources = await net.addSources(client, SOURCES);
      compiled = distPorts().map(compilePort);
      ({ script: full, state: fullState } = planFull(compiled, SERVICE_RANGES));
      await nftApply(full, { netns: client.ns });
      maglevTable = maglevTableDisruption(REAL_BACKENDS);
    },
    measure: async (round) => {
      const c = client as Client;
      const opts = { netns: c.ns };
      const flush = (): Promise<unknown> => tryRun('ip', ['netns', 'exec', c.ns, 'conntrack', '-F'], { okCodes: [0, 1] });
      await nftApply(full, opts); // a fresh table: counters from 0, all backends
      await flush();
      const conns = (vip: string, count: number): Promise<BackendsJson> =>
        net.client<BackendsJson>(c.ns, ['backends', '--host', vip, '--port', '80', '--count', String(count)]);
      const rr = await conns(DIST.rr.vip, DIST.rr.conns);
      const wrr = await conns(DIST.wrr.vip, DIST.wrr.conns);
      const rnd = await conns(DIST.random.vip, DIST.random.conns);
      // Maglev: one connection per source address, one backend removed, again
      const bySource = async (): Promise<BackendsJson> => net.client<BackendsJson>(c.ns, ['backends', '--host', DIST.maglev.vip, '--port', '80', '--sources', sources.join(',')]);
      const before = await bySource();
      const removed = ((Math.max(round, 0) % REAL_BACKENDS) + REAL_BACKENDS) % REAL_BACKENDS;
      const mag = distPorts()[3];
      const less = placePort({ ...mag, backends: mag.backends.filter((_, j) => j !== removed) }, compiled[3], fullState);
      await nftApply(planDelta(fullState, [{ before: [compiled[3]], after: [less] }], { defer: true }).script, opts);
      await flush();
      const after = await bySource();
      const removedIp = realBackend(removed);
      let moved = 0;
      let fromSurvivors = 0;
      let stillOnRemoved = 0;
      const bs = before.bySource ?? [];
      const as = after.bySource ?? [];
      bs.forEach((b, i) => {
        if (b === null || as[i] === null) return;
        if (as[i] === removedIp) stillOnRemoved++;
        if (as[i] !== b) {
          moved++;
          if (b !== removedIp) fromSurvivors++;
        }
      });
      const valid = bs.filter((b, i) => b !== null && as[i] !== null).length;
      const rrC = countsOf(rr, DIST.rr.n);
      const wrrC = countsOf(wrr, DIST.wrr.weights.length);
      const rndC = countsOf(rnd, DIST.random.n);
      const wsum = DIST.wrr.weights.reduce((a, b) => a + b, 0);
      const eRnd = DIST.random.conns / DIST.random.n;
      const chi2 = rndC.reduce((a, o) => a + (o - eRnd) ** 2 / eRnd, 0);
      const errors = rr.errors + wrr.errors + rnd.errors + before.errors + after.errors;
      if (round >= 0)
        distRounds.push({ round, rr: rrC, wrr: wrrC, random: rndC, chi2, maglevRemoved: removedIp, maglevBefore: before.counts, moved: (100 * moved) / valid, fromSurvivors: (100 * fromSurvivors) / valid, stillOnRemoved, errors });
      if (errors > 0.01 * (DIST.rr.conns + DIST.wrr.conns + DIST.random.conns + 2 * SOURCES)) throw new Error(`${errors} connections failed`);
      return {
        'rr: max deviation': Math.max(...rrC.map((x) => Math.abs(x - DIST.rr.conns / DIST.rr.n))),
        'wrr: max deviation': Math.max(...wrrC.map((x, j) => Math.abs(x - (DIST.wrr.conns * DIST.wrr.weights[j]) / wsum))),
        'random: chi-square': chi2,
        'maglev: moved': (100 * moved) / valid,
        'maglev: moved off survivors': (100 * fromSurvivors) / valid,
      };
    },
    teardown: async () => {
      if (acquired) await net.release();
      acquired = false;
    },
    info: () => [
      `client ${client?.ns ?? '?'} with ${SOURCES} extra source addresses 10.89.x.y/32; backends ${realBackend(0)}..${realBackend(REAL_BACKENDS - 1)}:${BACKEND_PORT}; Maglev table size ${LB_MAGLEV_SIZE}`,
      ...distRounds.map(
        (d) =>
          `round ${d.round + 1}: rr ${d.rr.join('/')}, wrr ${d.wrr.join('/')}, random ${d.random.join('/')} (chi-square ${fmt(d.chi2)}, p = ${fmt(Math.exp(-d.chi2 / 2))}), Maglev without ${d.maglevRemoved}: ${fmt(d.moved)} % moved, ${fmt(d.fromSurvivors)} % off survivors, ${d.stillOnRemoved} still on the removed backend${d.errors ? `, ${d.errors} failed connections` : ''}`,
      ),
    ],
  };
}

// ---------------------------------------------------------------------------------------------
// 4b. least-connections through the real agent (a weft lab)

interface ServiceJson {
  vip?: string;
  backends?: { name: string; ip?: string; active: boolean; conns?: number }[];
}

interface SkewJson {
  assigned: (string | null)[];
  long: boolean[];
  spreadEnd: number;
  meanSpread: number;
  maxSpread: number;
  finalActive: Record<string, number>;
  errors: number;
}

const LC_NET = 'wb-svc';
const LC_SUBNET = '10.81.0.0/24';
const LC_GAP_MS = 150;
const LC_SHORT_MS = 300;
const LC_P_LONG = 0.3;

class AgentLab extends Shared {
  lab: WeftLab | null = null;
  hostNs = '';
  services = new Map<string, { vip: string; backends: string[] }>();

  protected async down(): Promise<void> {
    await this.lab?.down();
  }

  async inspect(name: string): Promise<ServiceJson> {
    const lab = this.lab as WeftLab;
    const j = JSON.parse((await lab.weft(['service', 'inspect', name])).stdout) as ServiceJson[];
    return j[0] ?? {};
  }

  protected async up(): Promise<void> {
    this.lab = new WeftLab('s');
    const lab = this.lab;
    await lab.up();
    const info = JSON.parse((await lab.weft(['lab', 'inspect', lab.name, '--format', 'json'])).stdout) as { hostNetns?: string } | { hostNetns?: string }[];
    this.hostNs = (Array.isArray(info) ? info[0]?.hostNetns : info.hostNetns) ?? '';
    if (!this.hostNs) throw new Error('weft lab inspect: no .hostNetns');
    await lab.networkCreate(LC_NET, LC_SUBNET);
    for (const [name, algorithm] of [
      ['lc', 'least-connections'],
      ['rr', 'round-robin'],
    ]) {
      await lab.weft(['service', 'create', name, '--network', LC_NET, '--replicas', '3', '--algorithm', algorithm, '--port', `80:${BACKEND_PORT}`, '--', process.execPath, SERVER_JS, String(BACKEND_PORT)]);
    }
    for (const name of ['lc', 'rr']) {
      const s = await waitFor(
        `service ${name}: 3 active backends`,
        async () => {
          const j = await this.inspect(name);
          return j.vip && (j.backends ?? []).filter((b) => b.active && b.ip).length === 3 ? j : null;
        },
        30_000,
        200,
      );
      const backends = (s.backends ?? []).map((b) => (b.ip as string).split('/')[0]);
      this.services.set(name, { vip: s.vip as string, backends });
      // every replica must answer through the VIP before the first round (the servers take a moment to start)
      await waitFor(
        `service ${name}: all replicas answer through ${s.vip}`,
        async () => {
          const r = await this.skewless(name, 6);
          return r.errors === 0 && Object.keys(r.counts).length === 3;
        },
        30_000,
        300,
      );
    }
  }

  /** `count` short connections through a service's VIP from the lab host. */
  async skewless(name: string, count: number): Promise<BackendsJson> {
    const s = this.services.get(name);
    if (!s) throw new Error(`no service ${name}`);
    return net.client<BackendsJson>(this.hostNs, ['backends', '--host', s.vip, '--port', '80', '--count', String(count)]);
  }
}

const agent = new AgentLab();
const lcRounds = new Map<string, SkewJson[]>();

function agentConfig(service: 'lc' | 'rr'): Config {
  let acquired = false;
  const name = service === 'lc' ? 'agent-lc' : 'agent-rr';
  return {
    name,
    describe: `the real agent in a weft lab: \`weft service create ${service} --network ${LC_NET} --replicas 3 --algorithm ${service === 'lc' ? 'least-connections' : 'round-robin'} --port 80:${BACKEND_PORT} -- node svc-server.mjs\`; from the lab host, ${LC_CONNS} connections one every ${LC_GAP_MS} ms, each with probability ${LC_P_LONG} long (held to the end) else closed ${LC_SHORT_MS} ms after it is answered; the same seeded pattern for agent-lc and agent-rr in a round`,
    available: weftAvailable,
    setup: async () => {
      acquired = true;
      await agent.acquire();
    },
    measure: async (round) => {
      const s = agent.services.get(service);
      if (!s) throw new Error(`service ${service} is not set up`);
      // start from no open connection (the agent's count, from conntrack events)
      await waitFor(
        `service ${service}: no open connection left`,
        async () => ((await agent.inspect(service)).backends ?? []).every((b) => !b.conns),
        10_000,
        200,
      ).catch(() => undefined);
      const r = await net.client<SkewJson>(
        agent.hostNs,
        ['skew', '--host', s.vip, '--port', '80', '--backends', s.backends.join(','), '--count', String(LC_CONNS), '--gap', String(LC_GAP_MS), '--short', String(LC_SHORT_MS), '--p-long', String(LC_P_LONG), '--seed', String(1000 + Math.max(round, 0)), '--settle', '1000'],
        LC_CONNS * LC_GAP_MS + 60_000,
      );
      if (r.errors > 2) throw new Error(`${r.errors} of ${LC_CONNS} connections failed`);
      if (round >= 0) lcRounds.set(name, [...(lcRounds.get(name) ?? []), r]);
      return { 'held conns: spread at end': r.spreadEnd, 'open conns: mean spread': r.meanSpread };
    },
    teardown: async () => {
      if (acquired) await agent.release();
      acquired = false;
    },
    info: () => {
      const s = agent.services.get(service);
      const rounds = lcRounds.get(name) ?? [];
      return [
        ...(service === 'lc' ? (agent.lab?.info() ?? []) : []),
        `VIP ${s?.vip ?? '?'}, backends ${s?.backends.join(', ') ?? '?'}; client in ${agent.hostNs}`,
        ...rounds.map((r, i) => `round ${i + 1}: long connections per backend at the end ${JSON.stringify(r.finalActive)}, spread ${r.spreadEnd}, mean spread ${fmt(r.meanSpread)}, max ${r.maxSpread}${r.errors ? `, ${r.errors} failed` : ''}`),
      ];
    },
    leftovers: () => agent.lab?.leftovers() ?? [],
  };
}

// ---------------------------------------------------------------------------------------------

const targets: Target[] = [
  { metric: 'connect p50', config: `weft-${K}`, versus: `weft-${SMALL}`, op: '<=', ratio: 1.1 },
  { metric: 'connect p99', config: `weft-${K}`, versus: `weft-${SMALL}`, op: '<=', ratio: 1.1 },
];

const bench: Bench = {
  name: 'services',
  title: `Service load balancing: weft's nftables maps vs kube-proxy-style linear rules (${SERVICES.toLocaleString('en')} services)`,
  description: [
    `**Programming** (weft, linear, iptables; each in its own scratch netns): ${SERVICES.toLocaleString('en')} services x ${BACKENDS} backends.`,
    'Per round, from an empty netns: the whole table (`full: compile` = building the script in Node, `full: apply` = the transaction, `full: total`),',
    'the same again with the table present (`full rewrite`), one backend removed from one service (`one change`; weft: placePort + planDelta +',
    'nftApply as the agent does it, a transaction without deletes; the others rewrite everything, as kube-proxy\'s iptables mode does), one service added (`add one service`),',
    'weft\'s deletion of the slots those two left stale (`stale collection`, which the agent does later, off the change\'s path), and a no-op transaction',
    '(the cost of `ip netns exec` + starting nft/iptables-restore, which every apply pays here; the agent runs nft inside its netns without `ip netns exec`).',
    `**First packet** (weft-10, weft-${K}, linear-10, linear-${K}, iptables-10, iptables-${K}, direct, direct-ct): one client netns per configuration on a shared bridge,`,
    'the ruleset in the client netns (nat output hook), the measured service last in the ruleset\'s order (for the linear rulesets the worst case: the',
    `SYN walks every rule of KUBE-SERVICES). A sample is the median (p50) or p99 of ${CONNECTS} sequential TCP connects from a Node client (process.hrtime`,
    `from connect() to the connect event, then a RST); only the first packet of a connection meets the NAT rules. Within a round the connects of all these`,
    `configurations are made in ${latency.chunks} chunks each, interleaved and rotated (A B C …, B C … A, …), so that noise falls on all of them alike.`,
    `**VIP vs direct**: weft-10 through the VIP vs direct to a backend address from a netns without rules (direct) and from one with weft's table loaded (direct-ct: conntrack, no NAT): connect latency, and iperf3 (${SECONDS} s, 1 stream) throughput.`,
    '**Distribution** (dist; agent-lc, agent-rr): see the configurations and the sections after the plot.',
  ].join(' '),
  metrics: [
    { name: 'full: total', unit: 'ms', better: 'lower', note: `Target (issue): weft ≤ 1 s for ${SERVICES.toLocaleString('en')} x ${BACKENDS}.` },
    { name: 'full: compile', unit: 'ms', better: 'lower', note: 'weft: compilePort for every port + fullScript; linear/iptables: writing the text.' },
    { name: 'full: apply', unit: 'ms', better: 'lower', note: 'One `nft -f` (weft, linear) or `iptables-restore` (iptables) from an empty netns, including `ip netns exec`.' },
    { name: 'full rewrite', unit: 'ms', better: 'lower', note: 'Compile + apply with the same table already loaded.' },
    { name: 'one change', unit: 'ms', better: 'lower', note: 'One backend removed from one service, compile included. Target (issue): weft ≤ 50 ms.' },
    { name: 'one change: apply', unit: 'ms', better: 'lower' },
    { name: 'add one service', unit: 'ms', better: 'lower' },
    {
      name: 'stale collection',
      unit: 'ms',
      better: 'lower',
      note: "weft only: deleting the slots that the change and the added service left stale (the agent does it in a later transaction, off the change's path: with the next one that deletes anyway, or once the table has been quiet for 5 s).",
    },
    { name: 'no-op transaction', unit: 'ms', better: 'lower', note: 'The floor of any apply here: `ip netns exec` + nft (`add table` of the existing table) or iptables-restore --noflush of an empty *nat.' },
    { name: 'connect p50', unit: 'µs', better: 'lower', note: `Median of ${CONNECTS} TCP connects per sample.` },
    { name: 'connect p99', unit: 'µs', better: 'lower' },
    { name: 'throughput', unit: 'Gbit/s', better: 'higher', note: 'iperf3, one stream, receiver side.' },
    { name: 'rr: max deviation', unit: 'connections', better: 'lower', note: `Round robin over 3 backends, ${DIST.rr.conns} connections: largest |count − ${DIST.rr.conns / 3}|.` },
    { name: 'wrr: max deviation', unit: 'connections', better: 'lower', note: `Weighted round robin 5:3:1, ${DIST.wrr.conns} connections: largest |count − ideal| (ideal 500/300/100).` },
    { name: 'random: chi-square', unit: 'χ² (2 df)', better: 'lower', note: `Random over 3 backends, ${DIST.random.conns} connections. 95 % of fair draws give χ² < 5.99 (p = exp(−χ²/2)).` },
    { name: 'maglev: moved', unit: '% of clients', better: 'lower', note: `Clients (source addresses) whose backend changed when one of ${REAL_BACKENDS} backends was removed; ideal ${fmt(100 / REAL_BACKENDS)} %.` },
    { name: 'maglev: moved off survivors', unit: '% of clients', better: 'lower', note: 'Clients whose backend stayed but who moved anyway; ideal 0.' },
    { name: 'held conns: spread at end', unit: 'connections', better: 'lower', note: 'Long-held connections per backend once the short ones are closed: max − min over the 3 backends.' },
    { name: 'open conns: mean spread', unit: 'connections', better: 'lower', note: 'Open connections per backend, max − min, averaged over the instants just before each new connection.' },
  ],
  configs: [
    weftProgConfig(),
    linearProgConfig(),
    iptablesProgConfig(),
    latencyConfig('weft', SMALL, 1, { throughput: true }),
    latencyConfig('weft', SERVICES, 2),
    latencyConfig('linear', SMALL, 3),
    latencyConfig('linear', SERVICES, 4),
    latencyConfig('iptables', SMALL, 5),
    latencyConfig('iptables', SERVICES, 6),
    latencyConfig('none', 0, 7, { throughput: true }),
    latencyConfig('weft', SMALL, 8, { throughput: true, direct: true }),
    distConfig(9),
    agentConfig('lc'),
    agentConfig('rr'),
  ],
  targets,
  notes: [
    'The programming configurations run nft/iptables-restore through `ip netns exec` (the `no-op transaction` row is that floor); the first-packet configurations balance the client\'s own connections (nat output hook) so that each ruleset has a netns to itself; a container\'s connection through weft goes through the same map lookups in prerouting.',
    'The linear reference leaves out kube-proxy\'s KUBE-SEP chains (the masquerade mark) and its KUBE-NODEPORTS rule; iptables is kube-proxy\'s ruleset minus the same. kube-proxy ≥ 1.28 can also restore only the chains that changed (its "minimize" partial sync); the reference here is the classic full restore.',
    `Ruleset addresses: VIPs 10.96.x.y (fillers) and ${MEASURED_VIP} (measured), filler backends 10.100-103.x.y (never contacted), real backends ${realBackend(0)}-${realBackend(REAL_BACKENDS - 1)} in one backend netns served by refs/svc-server.mjs; clients run refs/svc-client.mjs. Nothing is made in the root netns.`,
  ],
};

// ---------------------------------------------------------------------------------------------
// extra report sections: same-run ratios, the issue's absolute targets, distribution details

function samplesOf(metrics: MetricResult[], metric: string, config: string): number[] | undefined {
  return metrics.find((m) => m.metric.name === metric)?.rows.find((r) => r.config === config)?.samples;
}

function extraSections(metrics: MetricResult[]): string[] {
  const L: string[] = [];
  const pairs: [string, string, string][] = [
    ['full: total', 'weft', 'linear'],
    ['full: total', 'weft', 'iptables'],
    ['full rewrite', 'weft', 'linear'],
    ['one change', 'weft', 'linear'],
    ['one change', 'weft', 'iptables'],
    ['add one service', 'weft', 'linear'],
    ['add one service', 'weft', 'iptables'],
    ['connect p50', `weft-${K}`, `weft-${SMALL}`],
    ['connect p50', `linear-${K}`, `linear-${SMALL}`],
    ['connect p50', `iptables-${K}`, `iptables-${SMALL}`],
    ['connect p50', `weft-${K}`, `linear-${K}`],
    ['connect p50', `weft-${K}`, `iptables-${K}`],
    ['connect p99', `weft-${K}`, `weft-${SMALL}`],
    ['connect p99', `linear-${K}`, `linear-${SMALL}`],
    ['connect p99', `iptables-${K}`, `iptables-${SMALL}`],
    ['connect p50', `weft-${SMALL}`, 'direct'],
    ['connect p99', `weft-${SMALL}`, 'direct'],
    ['throughput', `weft-${SMALL}`, 'direct'],
    ['connect p50', `weft-${SMALL}`, 'direct-ct'],
    ['throughput', `weft-${SMALL}`, 'direct-ct'],
    ['throughput', 'direct-ct', 'direct'],
    ['held conns: spread at end', 'agent-lc', 'agent-rr'],
    ['open conns: mean spread', 'agent-lc', 'agent-rr'],
  ];
  L.push('## Ratios of medians (same run)', '', '| metric | ratio | value | 90 % interval |', '| --- | --- | ---: | ---: |');
  for (const [metric, a, b] of pairs) {
    const xa = samplesOf(metrics, metric, a);
    const xb = samplesOf(metrics, metric, b);
    if (!xa?.length || !xb?.length) continue;
    const mb = summarize(xb).median;
    const ratio = mb === 0 ? NaN : summarize(xa).median / mb;
    const iv = ratioInterval(xa, xb);
    L.push(`| ${metric} | ${a} / ${b} | **${fmt(ratio)}** | ${fmt(iv[0])}–${fmt(iv[1])} |`);
  }
  L.push('', 'A ratio whose reference median is 0 shows –.', '');
  const abs: [string, string, number, string][] = [
    ['full: total', 'weft', 1000, `weft full table (${SERVICES.toLocaleString('en')} x ${BACKENDS}) ≤ 1 s`],
    ['one change', 'weft', 50, 'weft one change ≤ 50 ms'],
  ];
  L.push('## Absolute targets (from the issue)', '', '| target | median | q1 – q3 | reading |', '| --- | ---: | ---: | --- |');
  for (const [metric, config, limit, what] of abs) {
    const xs = samplesOf(metrics, metric, config);
    if (!xs?.length) {
      L.push(`| ${what} | – | – | not measured |`);
      continue;
    }
    const s = summarize(xs);
    const reading = s.q3 <= limit ? 'meets' : s.q1 > limit ? 'misses' : s.median <= limit ? 'meets (quartiles span the limit)' : 'misses (quartiles span the limit)';
    L.push(`| ${what} | **${fmt(s.median)} ms** | ${fmt(s.q1)} – ${fmt(s.q3)} | ${reading} |`);
  }
  const floor = samplesOf(metrics, 'no-op transaction', 'weft');
  if (floor?.length) L.push('', `Every apply here includes the no-op floor (median ${fmt(summarize(floor).median)} ms: \`ip netns exec\` + nft start-up), which the agent does not pay for \`ip netns exec\`.`);
  L.push('');
  if (maglevTable) {
    const m = summarize(maglevTable.moved);
    const s = summarize(maglevTable.fromSurvivors);
    L.push(
      '## Maglev, table level (src/services/tables.ts through compile.ts slotTable)',
      '',
      `Slots of the ${LB_MAGLEV_SIZE}-slot table that change owner when one of ${REAL_BACKENDS} equal backends is removed, over the ${REAL_BACKENDS} choices of the removed one: **${fmt(m.median)} %** median (min ${fmt(m.min)}, max ${fmt(m.max)}; ideal ${fmt(100 / REAL_BACKENDS)} %), of which off surviving backends ${fmt(s.median)} % median (max ${fmt(s.max)}). The measured row \`maglev: moved\` is the same figure seen through the kernel by ${SOURCES} client addresses (jhash of the source address).`,
      '',
    );
  }
  if (distRounds.length) {
    L.push('## Distribution counts per round (dist)', '', '| round | rr (3 × 100) | wrr 5:3:1 (500/300/100) | random (3 × 1000) | χ² | p | Maglev: removed | moved | off survivors | still on removed |', '| ---: | --- | --- | --- | ---: | ---: | --- | ---: | ---: | ---: |');
    for (const d of distRounds)
      L.push(`| ${d.round + 1} | ${d.rr.join(' / ')} | ${d.wrr.join(' / ')} | ${d.random.join(' / ')} | ${fmt(d.chi2)} | ${fmt(Math.exp(-d.chi2 / 2))} | ${d.maglevRemoved} | ${fmt(d.moved)} % | ${fmt(d.fromSurvivors)} % | ${d.stillOnRemoved} |`);
    L.push('');
  }
  if (lcRounds.size) {
    L.push(
      '## Least-connections through the agent',
      '',
      `The agent follows \`conntrack -E\` in the lab host and rewrites the service's chain so that \`numgen inc\` walks only the backends with the fewest open connections (lb.ts, compile.ts slotTable). The same seeded pattern of ${LC_CONNS} connections (one every ${LC_GAP_MS} ms, ${LC_P_LONG * 100} % long-held, the rest closed after ${LC_SHORT_MS} ms) runs against a least-connections and a round-robin service of 3 replicas each, in the same lab, interleaved.`,
      '',
      '| round | agent-lc: long per backend at the end | spread | agent-rr: long per backend at the end | spread |',
      '| ---: | --- | ---: | --- | ---: |',
    );
    const lc = lcRounds.get('agent-lc') ?? [];
    const rr = lcRounds.get('agent-rr') ?? [];
    for (let i = 0; i < Math.max(lc.length, rr.length); i++) {
      const cell = (r?: SkewJson): string => (r ? `${Object.values(r.finalActive).join(' / ')} | ${r.spreadEnd}` : '– | –');
      L.push(`| ${i + 1} | ${cell(lc[i])} | ${cell(rr[i])} |`);
    }
    L.push('');
  }
  return L;
}

log(`services: client ${relative(process.cwd(), CLIENT_JS)}, server ${relative(process.cwd(), SERVER_JS)}`);
try {
  const result = await runBench(bench, options);
  const sections = extraSections(result.metrics);
  const report = join(result.dir, 'report.md');
  if (existsSync(report)) appendFileSync(report, `\n${sections.join('\n')}\n`);
  writeFileSync(join(result.dir, 'distribution.json'), JSON.stringify({ dist: distRounds, maglevTable, leastConnections: Object.fromEntries(lcRounds) }, null, 2));
  process.stdout.write(`\n${sections.filter((l) => !l.startsWith('| ---') && l !== '').join('\n')}\n`);
} catch (e) {
  log(`services: ${e instanceof Error ? e.message : String(e)}`);
  process.exitCode = 1;
}
