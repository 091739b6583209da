/**
 * The benchmark harness.
 *
 * A bench is a list of named configurations (weft, docker, cni, ...). Each one can set up, measure
 * one round, and tear down. The harness sets all of them up, then runs rounds INTERLEAVED
 * (A B C, A B C, ...) so slow drifts of this noisy machine hit every configuration alike, and
 * reports medians, quartiles and ratios of medians. There are no pass/fail thresholds: targets are
 * read off the ratio and its bootstrap interval.
 *
 * Output: bench/results/<bench>-<timestamp>/{report.md, plot.svg, plot.png, samples.json}, plus a
 * short table on stdout. Progress goes to stderr.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { cpus, totalmem, release, hostname } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import { benchNetns, RUN_DIR, RUN_ID, RUN_PREFIX, removeRunDir } from './lib/ns.js';
import { tryRun } from './lib/proc.js';
import { fmt, ratioInterval, summarize, type Summary } from './lib/stats.js';
import { writePlot } from './lib/plot.js';

export type Sample = number | number[];
/** What one round of one configuration returns: one sample (or a batch) for the first metric, or samples keyed by metric name. */
export type Measurement = Sample | Record<string, Sample>;

export interface Metric {
  name: string;
  unit: string;
  better: 'lower' | 'higher';
  /** shown under the metric's table */
  note?: string;
}

export interface Config {
  name: string;
  /** one line for the report: what this configuration does */
  describe: string;
  /** null when it can run here, else the reason it cannot (it is then skipped) */
  available?: () => Promise<string | null>;
  setup?: () => Promise<void>;
  measure: (round: number) => Promise<Measurement>;
  /** must remove everything the configuration made, also after a failed or partial setup; may be called twice */
  teardown?: () => Promise<void>;
  /** facts for the report, read after setup (versions, addresses) */
  info?: () => string[];
  /** heavy: runs only when named in --only */
  optIn?: boolean;
  /** after teardown: what this configuration left that the run prefix does not cover (e.g. a weft lab's own netns) */
  leftovers?: () => string[] | Promise<string[]>;
}

export interface Target {
  metric: string;
  config: string;
  versus: string;
  op: '<=' | '>=';
  ratio: number;
}

export interface Bench {
  name: string;
  title: string;
  /** Markdown paragraph: what is compared and how */
  description: string;
  metrics: Metric[];
  configs: Config[];
  /** ratios are median(config) / median(baseline) */
  baseline?: string;
  targets?: Target[];
  notes?: string[];
}

export interface RunOptions {
  runs: number;
  warmup: number;
  /** configuration names to run; null = all available */
  only: string[] | null;
  /** a config is dropped after this many failed rounds in a row */
  maxFailures: number;
  /** root folder for results; default bench/results */
  outRoot?: string;
  /** the command line, for the report */
  command?: string;
}

interface ConfigState {
  config: Config;
  status: 'pending' | 'active' | 'dropped' | 'skipped';
  reason?: string;
  setupMs?: number;
  teardownMs?: number;
  setupStarted: boolean;
  tornDown: boolean;
  consecutiveFailures: number;
  failures: { round: number; message: string }[];
  info: string[];
  samples: Map<string, number[]>;
}

export interface MetricResult {
  metric: Metric;
  rows: { config: string; summary: Summary; samples: number[]; ratio?: number; interval?: [number, number] }[];
}

export interface BenchResult {
  dir: string;
  metrics: MetricResult[];
  leftovers: string[];
}

const BENCH_DIR = dirname(fileURLToPath(import.meta.url));

const log = (msg: string): void => {
  process.stderr.write(`${msg}\n`);
};

function stamp(d = new Date()): string {
  const p = (n: number): string => String(n).padStart(2, '0');
  return `${d.getFullYear()}${p(d.getMonth() + 1)}${p(d.getDate())}-${p(d.getHours())}${p(d.getMinutes())}${p(d.getSeconds())}`;
}

function errText(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).replace(/\s+/g, ' ').slice(0, 400);
}

/** Common command-line options of every bench, plus the bench's own (`extra`). */
export function parseBenchArgs(
  defaults: { runs: number; warmup: number },
  extra: Record<string, { type: 'string' | 'boolean'; default?: string | boolean; help: string }> = {},
): { options: RunOptions; extra: Record<string, string | boolean | undefined> } {
  const spec = {
    runs: { type: 'string' as const },
    warmup: { type: 'string' as const },
    only: { type: 'string' as const },
    'max-failures': { type: 'string' as const },
    out: { type: 'string' as const },
    help: { type: 'boolean' as const, short: 'h' },
    ...Object.fromEntries(Object.entries(extra).map(([k, v]) => [k, { type: v.type }])),
  };
  const { values } = parseArgs({ args: process.argv.slice(2), options: spec, strict: true, allowPositionals: false });
  const v = values as Record<string, string | boolean | undefined>;
  if (v.help) {
    const lines = [
      `usage: env -u NODE_EXTRA_CA_CERTS npx tsx ${relative(process.cwd(), process.argv[1] ?? 'bench/<name>.ts')} [options]`,
      `  --runs N           measured rounds per configuration (default ${defaults.runs})`,
      `  --warmup N         unrecorded rounds first (default ${defaults.warmup})`,
      `  --only a,b         run only these configurations`,
      `  --max-failures N   drop a configuration after N failed rounds in a row (default 3)`,
      `  --out DIR          results root (default bench/results)`,
      ...Object.entries(extra).map(([k, e]) => `  --${k.padEnd(16)} ${e.help}${e.default !== undefined ? ` (default ${e.default})` : ''}`),
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
    process.exit(0);
  }
  const int = (name: string, x: string | boolean | undefined, dflt: number, min: number): number => {
    if (x === undefined) return dflt;
    const n = Number(x);
    if (!Number.isInteger(n) || n < min) {
      process.stderr.write(`--${name} must be an integer >= ${min}, got ${String(x)}\n`);
      process.exit(2);
    }
    return n;
  };
  const extraValues: Record<string, string | boolean | undefined> = {};
  for (const [k, e] of Object.entries(extra)) extraValues[k] = v[k] ?? e.default;
  return {
    options: {
      runs: int('runs', v.runs, defaults.runs, 1),
      warmup: int('warmup', v.warmup, defaults.warmup, 0),
      only: typeof v.only === 'string' ? v.only.split(',').map((s) => s.trim()).filter(Boolean) : null,
      maxFailures: int('max-failures', v['max-failures'], 3, 1),
      outRoot: typeof v.out === 'string' ? v.out : undefined,
      command: ['npx tsx', relative(process.cwd(), process.argv[1] ?? ''), ...process.argv.slice(2)].join(' '),
    },
    extra: extraValues,
  };
}

function addSamples(st: ConfigState, bench: Bench, m: Measurement): string[] {
  const entries: [string, Sample][] =
    typeof m === 'number' || Array.isArray(m) ? [[bench.metrics[0].name, m]] : Object.entries(m);
  const shown: string[] = [];
  for (const [name, sample] of entries) {
    if (!bench.metrics.some((x) => x.name === name)) throw new Error(`measurement has unknown metric "${name}"`);
    const xs = Array.isArray(sample) ? sample : [sample];
    if (xs.some((x) => typeof x !== 'number' || !Number.isFinite(x))) throw new Error(`metric "${name}" got a non-finite sample`);
    const list = st.samples.get(name) ?? [];
    list.push(...xs);
    st.samples.set(name, list);
    shown.push(xs.length <= 4 ? `${name} ${xs.map(fmt).join('/')}` : `${name} median ${fmt(summarize(xs).median)} (n=${xs.length})`);
  }
  return shown;
}

async function teardownOne(st: ConfigState): Promise<void> {
  if (!st.setupStarted || st.tornDown || !st.config.teardown) return;
  st.tornDown = true;
  const t0 = performance.now();
  try {
    await st.config.teardown();
  } catch (e) {
    st.failures.push({ round: -1, message: `teardown: ${errText(e)}` });
    log(`  ${st.config.name}: teardown failed: ${errText(e)}`);
  }
  st.teardownMs = performance.now() - t0;
}

/** Leftovers of this run in the root namespace and in /tmp (should be none). */
async function findLeftovers(states: ConfigState[]): Promise<string[]> {
  const left: string[] = [];
  for (const st of states) {
    if (!st.setupStarted || !st.config.leftovers) continue;
    try {
      left.push(...(await st.config.leftovers()));
    } catch (e) {
      left.push(`${st.config.name}: leftover check failed: ${errText(e)}`);
    }
  }
  for (const n of benchNetns()) if (n.startsWith(RUN_PREFIX)) left.push(`netns ${n}`);
  const links = await tryRun('ip', ['-br', 'link']);
  for (const line of links?.stdout.split('\n') ?? []) {
    const name = line.split(/\s+/)[0]?.split('@')[0];
    if (name && name.startsWith(RUN_PREFIX)) left.push(`link ${name} in the root netns`);
  }
  if (existsSync(RUN_DIR)) left.push(`dir ${RUN_DIR}`);
  return left;
}

export async function runBench(bench: Bench, opts: RunOptions): Promise<BenchResult> {
  const known = bench.configs.map((c) => c.name);
  if (opts.only) {
    const unknown = opts.only.filter((n) => !known.includes(n));
    if (unknown.length) throw new Error(`unknown configuration(s) ${unknown.join(', ')}; this bench has ${known.join(', ')}`);
  }
  const chosen = bench.configs.filter((c) => (opts.only ? opts.only.includes(c.name) : !c.optIn));
  const states: ConfigState[] = chosen.map((config) => ({
    config,
    status: 'pending',
    setupStarted: false,
    tornDown: false,
    consecutiveFailures: 0,
    failures: [],
    info: [],
    samples: new Map(),
  }));
  const skippedOut = bench.configs.filter((c) => !chosen.includes(c)).map((c) => (c.optIn ? `${c.name} (opt-in: --only ${c.name},...)` : c.name));

  // Teardown on a signal too: nothing may be left behind.
  let aborting = false;
  const onSignal = (sig: NodeJS.Signals): void => {
    if (aborting) return;
    aborting = true;
    log(`\n${sig}: tearing down`);
    void (async () => {
      for (const st of [...states].reverse()) await teardownOne(st);
      removeRunDir();
      process.exit(130);
    })();
  };
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
  for (const s of signals) process.on(s, onSignal);

  const startedAt = new Date();
  log(`${bench.name}: run ${RUN_ID}, ${opts.runs} runs + ${opts.warmup} warmup, configurations: ${states.map((s) => s.config.name).join(', ')}`);
  try {
    for (const st of states) {
      const why = st.config.available ? await st.config.available().catch((e: unknown) => errText(e)) : null;
      if (why) {
        st.status = 'skipped';
        st.reason = why;
        log(`  ${st.config.name}: skipped: ${why}`);
        continue;
      }
      log(`  ${st.config.name}: setting up`);
      st.setupStarted = true;
      const t0 = performance.now();
      try {
        await st.config.setup?.();
        st.setupMs = performance.now() - t0;
        st.status = 'active';
        st.info = st.config.info?.() ?? [];
        log(`  ${st.config.name}: ready in ${fmt(st.setupMs / 1000)} s`);
      } catch (e) {
        st.status = 'dropped';
        st.reason = `setup failed: ${errText(e)}`;
        log(`  ${st.config.name}: ${st.reason}`);
        await teardownOne(st);
      }
      if (aborting) return new Promise<never>(() => {});
    }

    const total = opts.warmup + opts.runs;
    for (let i = 0; i < total; i++) {
      const round = i - opts.warmup;
      const label = round < 0 ? `warmup ${i + 1}/${opts.warmup}` : `round ${round + 1}/${opts.runs}`;
      const parts: string[] = [];
      for (const st of states) {
        if (st.status !== 'active') continue;
        try {
          const m = await st.config.measure(round);
          if (round >= 0) parts.push(`${st.config.name}: ${addSamples(st, bench, m).join(', ')}`);
          else parts.push(`${st.config.name}: ok`);
          st.consecutiveFailures = 0;
        } catch (e) {
          st.failures.push({ round, message: errText(e) });
          st.consecutiveFailures++;
          parts.push(`${st.config.name}: FAILED (${errText(e).slice(0, 120)})`);
          if (st.consecutiveFailures >= opts.maxFailures) {
            st.status = 'dropped';
            st.reason = `dropped after ${st.consecutiveFailures} failed rounds in a row`;
          }
        }
        if (aborting) return new Promise<never>(() => {});
      }
      log(`  ${label}  ${parts.join(' | ')}`);
      if (!states.some((s) => s.status === 'active')) break;
    }
    // facts may have grown during the rounds (e.g. memory figures)
    for (const st of states) {
      if (st.status === 'active' || (st.status === 'dropped' && st.setupMs !== undefined)) {
        try {
          st.info = st.config.info?.() ?? st.info;
        } catch {
          /* keep the facts read after setup */
        }
      }
    }
  } finally {
    if (!aborting) {
      for (const st of [...states].reverse()) await teardownOne(st);
      removeRunDir();
      for (const s of signals) process.off(s, onSignal);
    }
  }

  const leftovers = await findLeftovers(states);
  const metrics = computeResults(bench, states);
  const dir = join(opts.outRoot ?? join(BENCH_DIR, 'results'), `${bench.name}-${stamp(startedAt)}`);
  mkdirSync(dir, { recursive: true });
  const configsWithData = states.filter((s) => s.samples.size > 0).map((s) => s.config.name);
  const pngPath = await writePlot(
    {
      title: bench.title,
      subtitle: `${opts.runs} interleaved run${opts.runs === 1 ? '' : 's'} per configuration · ${startedAt.toISOString().slice(0, 16).replace('T', ' ')} · ${hostname()}`,
      configs: bench.configs.map((c) => c.name),
      panels: metrics
        .filter((m) => m.rows.length > 0)
        .map((m) => ({
          title: m.metric.name,
          unit: `${m.metric.unit} (${m.metric.better} is better)`,
          series: m.rows.map((r) => ({ config: r.config, samples: states.find((s) => s.config.name === r.config)?.samples.get(m.metric.name) ?? [] })),
        })),
    },
    join(dir, 'plot.svg'),
    join(dir, 'plot.png'),
  ).catch((e: unknown) => {
    log(`plot: PNG not written: ${errText(e)}`);
    return null;
  });
  writeFileSync(
    join(dir, 'samples.json'),
    JSON.stringify(
      {
        bench: bench.name,
        runId: RUN_ID,
        startedAt: startedAt.toISOString(),
        options: opts,
        configs: states.map((s) => ({
          name: s.config.name,
          status: s.status,
          reason: s.reason,
          setupMs: s.setupMs,
          teardownMs: s.teardownMs,
          failures: s.failures,
          info: s.info,
          samples: Object.fromEntries(s.samples),
        })),
        leftovers,
      },
      null,
      2,
    ),
  );
  writeFileSync(join(dir, 'report.md'), renderReport(bench, opts, states, metrics, skippedOut, leftovers, startedAt, pngPath !== null));
  printSummary(bench, metrics, states, dir, leftovers);
  if (configsWithData.length === 0) process.exitCode = 1;
  return { dir, metrics, leftovers };
}

function computeResults(bench: Bench, states: ConfigState[]): MetricResult[] {
  return bench.metrics.map((metric) => {
    const base = bench.baseline ? states.find((s) => s.config.name === bench.baseline)?.samples.get(metric.name) : undefined;
    const rows = states
      .filter((s) => (s.samples.get(metric.name)?.length ?? 0) > 0)
      .map((s) => {
        const xs = s.samples.get(metric.name) ?? [];
        const summary = summarize(xs);
        if (!base || base.length === 0) return { config: s.config.name, summary, samples: xs };
        const ratio = summary.median / summarize(base).median;
        const interval = s.config.name === bench.baseline ? undefined : ratioInterval(xs, base);
        return { config: s.config.name, summary, samples: xs, ratio, interval };
      });
    return { metric, rows };
  });
}

function targetVerdict(bench: Bench, metrics: MetricResult[], t: Target): { measured: string; interval: string; verdict: string } {
  const m = metrics.find((x) => x.metric.name === t.metric);
  const row = m?.rows.find((r) => r.config === t.config);
  const vs = m?.rows.find((r) => r.config === t.versus);
  if (!m || !row || !vs) return { measured: '–', interval: '–', verdict: 'not measured' };
  const statesA = row.summary.median;
  const ratio = statesA / vs.summary.median;
  // the same bootstrap interval whether or not the reference is the report's baseline
  const interval: [number, number] | undefined = t.versus === bench.baseline && row.interval ? row.interval : ratioInterval(row.samples, vs.samples);
  const ok = (r: number): boolean => (t.op === '<=' ? r <= t.ratio : r >= t.ratio);
  let verdict = ok(ratio) ? 'meets' : 'misses';
  if (interval && ok(interval[0]) !== ok(interval[1])) verdict += ' (interval spans the target)';
  return { measured: fmt(ratio), interval: interval ? `${fmt(interval[0])}–${fmt(interval[1])}` : '–', verdict };
}

function renderReport(
  bench: Bench,
  opts: RunOptions,
  states: ConfigState[],
  metrics: MetricResult[],
  skippedOut: string[],
  leftovers: string[],
  startedAt: Date,
  havePng: boolean,
): string {
  const L: string[] = [];
  L.push(`# ${bench.title}`, '', bench.description, '');
  L.push(
    `- Date: ${startedAt.toISOString()} · host ${hostname()} · kernel ${release()} · ${cpus().length} CPUs · ${(totalmem() / 2 ** 30).toFixed(0)} GiB · Node ${process.version}`,
    `- Command: \`${opts.command ?? bench.name}\``,
    `- ${opts.runs} measured rounds (+${opts.warmup} warmup), configurations interleaved in the order ${states.map((s) => s.config.name).join(' → ')} in every round; run id \`${RUN_ID}\``,
    `- Statistics: median and quartiles (linear interpolation); ratio = median(config) / median(${bench.baseline ?? 'baseline'}), with a 90 % percentile-bootstrap interval. No thresholds: the machine is noisy (±30 %), read medians and intervals.`,
    '',
  );
  L.push('## Results', '');
  for (const m of metrics) {
    L.push(`### ${m.metric.name} — ${m.metric.unit}, ${m.metric.better} is better`, '');
    if (m.rows.length === 0) {
      L.push('No data.', '');
      continue;
    }
    const rc = bench.baseline ? ` ratio to ${bench.baseline} | 90 % interval |` : '';
    L.push(`| configuration | n | median | q1 – q3 | IQR | min | max |${rc}`);
    L.push(`| --- | ---: | ---: | ---: | ---: | ---: | ---: |${bench.baseline ? ' ---: | ---: |' : ''}`);
    for (const r of m.rows) {
      const s = r.summary;
      const ratio = bench.baseline ? ` ${r.ratio !== undefined ? fmt(r.ratio) : '–'} | ${r.interval ? `${fmt(r.interval[0])}–${fmt(r.interval[1])}` : '–'} |` : '';
      L.push(`| ${r.config} | ${s.n} | **${fmt(s.median)}** | ${fmt(s.q1)} – ${fmt(s.q3)} | ${fmt(s.iqr)} | ${fmt(s.min)} | ${fmt(s.max)} |${ratio}`);
    }
    if (m.metric.note) L.push('', m.metric.note);
    L.push('');
  }
  if (bench.targets?.length) {
    L.push('## Targets', '', '| target | measured ratio | 90 % interval | reading |', '| --- | ---: | ---: | --- |');
    for (const t of bench.targets) {
      const v = targetVerdict(bench, metrics, t);
      L.push(`| ${t.metric}: ${t.config} / ${t.versus} ${t.op} ${t.ratio} | ${v.measured} | ${v.interval} | ${v.verdict} |`);
    }
    L.push('');
  }
  L.push('## Plot', '');
  L.push(havePng ? '![box and strip plot](plot.png)' : 'PNG not made (install `librsvg2-bin` for rsvg-convert); see [plot.svg](plot.svg).');
  L.push('', 'Box: quartiles; thick line: median; whiskers: furthest sample within 1.5 × IQR; dots: every sample.', '');
  L.push('## Configurations', '');
  for (const st of states) {
    const times = [st.setupMs !== undefined ? `setup ${fmt(st.setupMs / 1000)} s` : '', st.teardownMs !== undefined ? `teardown ${fmt(st.teardownMs / 1000)} s` : '']
      .filter(Boolean)
      .join(', ');
    L.push(`- **${st.config.name}** (${st.status}${st.reason ? `: ${st.reason}` : ''}${times ? `; ${times}` : ''}): ${st.config.describe}`);
    for (const i of st.info) L.push(`  - ${i}`);
  }
  if (skippedOut.length) L.push(`- not selected: ${skippedOut.join(', ')}`);
  L.push('');
  const failures = states.flatMap((s) => s.failures.map((f) => ({ config: s.config.name, ...f })));
  if (failures.length) {
    L.push('## Failures', '');
    for (const f of failures) L.push(`- ${f.config}, ${f.round < 0 ? (f.message.startsWith('teardown') ? '' : 'warmup') : `round ${f.round + 1}`}: ${f.message}`);
    L.push('');
  }
  L.push('## Cleanup', '', leftovers.length ? `Leftovers found after teardown: ${leftovers.join('; ')}` : `Nothing of this run (prefix \`${RUN_PREFIX}\`) was left: no netns, no root-netns link, no temp dir${states.some((s) => s.setupStarted && s.config.leftovers) ? ', and nothing of the configurations\' own (weft lab netns, container netns, lab folder, agent)' : ''}.`, '');
  if (bench.notes?.length) {
    L.push('## Notes', '');
    for (const n of bench.notes) L.push(`- ${n}`);
    L.push('');
  }
  L.push('Raw samples: [samples.json](samples.json).', '');
  return L.join('\n');
}

function printSummary(bench: Bench, metrics: MetricResult[], states: ConfigState[], dir: string, leftovers: string[]): void {
  const out: string[] = [''];
  out.push(`${bench.title}`);
  for (const m of metrics) {
    if (m.rows.length === 0) continue;
    out.push(`  ${m.metric.name} (${m.metric.unit}, ${m.metric.better} is better)`);
    for (const r of m.rows) {
      const ratio = r.ratio !== undefined && r.config !== bench.baseline ? `  x${fmt(r.ratio)} vs ${bench.baseline}` : '';
      out.push(
        `    ${r.config.padEnd(10)} median ${fmt(r.summary.median).padStart(7)}   IQR ${fmt(r.summary.q1).padStart(7)} – ${fmt(r.summary.q3).padEnd(7)} n=${String(r.summary.n).padEnd(4)}${ratio}`,
      );
    }
  }
  for (const t of bench.targets ?? []) {
    const v = targetVerdict(bench, metrics, t);
    out.push(`  target ${t.metric}: ${t.config}/${t.versus} ${t.op} ${t.ratio}: ${v.measured} (${v.interval}) ${v.verdict}`);
  }
  for (const st of states) if (st.status !== 'active') out.push(`  ${st.config.name}: ${st.status}${st.reason ? ` (${st.reason})` : ''}`);
  const nFail = states.reduce((a, s) => a + s.failures.length, 0);
  if (nFail) out.push(`  ${nFail} failed round(s) or teardown(s): see report`);
  out.push(leftovers.length ? `  LEFTOVERS: ${leftovers.join('; ')}` : `  cleanup: nothing left`);
  out.push(`  report: ${relative(process.cwd(), join(dir, 'report.md'))}`, '');
  process.stdout.write(out.join('\n'));
}

/** Entry-point helper: run, and turn an exception into one line on stderr and exit code 1. */
export async function main(bench: Bench, opts: RunOptions): Promise<void> {
  try {
    await runBench(bench, opts);
  } catch (e) {
    log(`${bench.name}: ${errText(e)}`);
    process.exitCode = 1;
  }
}
