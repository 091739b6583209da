#!/usr/bin/env node
// The client of bench/services.ts, run inside a network namespace (`ip netns exec NS node ...`).
// Prints one JSON line on stdout.
//
//   latency  --host H --port P --count N [--warmup W] [--raw 1]
//       N TCP connects one after another; each timed with process.hrtime from connect() to the
//       'connect' event (SYN -> SYN/ACK -> ACK done), then closed with a RST (no TIME_WAIT).
//       -> {n, errors, p50, p90, p99, mean, min, max}  (microseconds); with --raw 1: {n, errors, samples}
//   backends --host H --port P (--count N | --sources a,b,c)
//       N connections (or one from each source address): read the first line the server writes
//       (the backend address that answered), close with a RST.
//       -> {counts: {backend: n}, bySource: [backend per source], errors}
//   skew --host H --port P --backends a,b,c --count N --gap MS --short MS --p-long X --seed S --settle MS
//       opens connection i at i * gap ms; with probability X it is long (held until the end), else
//       it is closed (FIN) `short` ms after the server's line. Just before every open, and `settle`
//       ms after the last, the open connections per backend are counted.
//       -> {assigned, long, spreadEnd, meanSpread, maxSpread, finalActive, errors}
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

const args = process.argv.slice(2);
const mode = args.shift();
const opt = {};
for (let i = 0; i < args.length; i += 2) {
  if (!args[i].startsWith('--')) throw new Error(`unexpected argument ${args[i]}`);
  opt[args[i].slice(2)] = args[i + 1];
}
const host = opt.host;
const port = Number(opt.port);
const TIMEOUT_MS = 3000;

function out(o) {
  process.stdout.write(`${JSON.stringify(o)}\n`);
}

/** One connection: resolves with {us, socket} when connected, or {error}. */
function connect(localAddress) {
  return new Promise((resolve) => {
    const t0 = process.hrtime.bigint();
    const s = net.connect({ host, port, localAddress, noDelay: true });
    const timer = setTimeout(() => {
      s.destroy();
      resolve({ error: 'timeout' });
    }, TIMEOUT_MS);
    s.once('connect', () => {
      clearTimeout(timer);
      resolve({ us: Number(process.hrtime.bigint() - t0) / 1000, socket: s });
    });
    s.once('error', (e) => {
      clearTimeout(timer);
      resolve({ error: e.code ?? e.message });
    });
  });
}

/** Reads the server's first line (the backend's address). */
function firstLine(s) {
  return new Promise((resolve) => {
    let buf = '';
    const timer = setTimeout(() => resolve(null), TIMEOUT_MS);
    const onData = (d) => {
      buf += d.toString();
      const nl = buf.indexOf('\n');
      if (nl >= 0) {
        clearTimeout(timer);
        s.off('data', onData);
        resolve(buf.slice(0, nl));
      }
    };
    s.on('data', onData);
    s.once('close', () => {
      clearTimeout(timer);
      resolve(null);
    });
  });
}

function quantile(sorted, p) {
  if (!sorted.length) return NaN;
  const h = (sorted.length - 1) * p;
  const lo = Math.floor(h);
  const hi = Math.ceil(h);
  return sorted[lo] + (h - lo) * (sorted[hi] - sorted[lo]);
}

async function latency() {
  const count = Number(opt.count ?? 2000);
  const warmup = Number(opt.warmup ?? 50);
  const xs = [];
  let errors = 0;
  for (let i = 0; i < warmup + count; i++) {
    const r = await connect();
    if (r.socket) {
      r.socket.on('error', () => {});
      r.socket.resetAndDestroy();
    }
    if (i < warmup) continue;
    if (r.error) errors++;
    else xs.push(r.us);
  }
  if (opt.raw === '1') {
    out({ n: xs.length, errors, samples: xs.map((x) => Math.round(x * 10) / 10) });
    return;
  }
  xs.sort((a, b) => a - b);
  out({
    n: xs.length,
    errors,
    p50: quantile(xs, 0.5),
    p90: quantile(xs, 0.9),
    p99: quantile(xs, 0.99),
    mean: xs.reduce((a, b) => a + b, 0) / (xs.length || 1),
    min: xs[0],
    max: xs[xs.length - 1],
  });
}

async function backends() {
  const sources = opt.sources ? opt.sources.split(',') : null;
  const n = sources ? sources.length : Number(opt.count);
  const counts = {};
  const bySource = [];
  let errors = 0;
  for (let i = 0; i < n; i++) {
    const r = await connect(sources ? sources[i] : undefined);
    let b = null;
    if (r.socket) {
      r.socket.on('error', () => {});
      b = await firstLine(r.socket);
      r.socket.resetAndDestroy();
    }
    if (b === null) errors++;
    else counts[b] = (counts[b] ?? 0) + 1;
    if (sources) bySource.push(b);
  }
  out({ counts, bySource: sources ? bySource : undefined, errors });
}

function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

async function skew() {
  const list = opt.backends.split(',');
  const count = Number(opt.count);
  const gap = Number(opt.gap);
  const short = Number(opt.short);
  const pLong = Number(opt['p-long']);
  const settle = Number(opt.settle);
  const rnd = prng(Number(opt.seed ?? 1));
  const isLong = Array.from({ length: count }, () => rnd() < pLong);
  const active = Object.fromEntries(list.map((b) => [b, 0]));
  const spread = () => {
    const v = Object.values(active);
    return Math.max(...v) - Math.min(...v);
  };
  const assigned = new Array(count).fill(null);
  const held = [];
  const pending = [];
  const spreads = [];
  let errors = 0;
  const t0 = Date.now();
  for (let i = 0; i < count; i++) {
    const wait = t0 + i * gap - Date.now();
    if (wait > 0) await sleep(wait);
    spreads.push(spread());
    pending.push(
      (async () => {
        const r = await connect();
        if (!r.socket) {
          errors++;
          return;
        }
        r.socket.on('error', () => {});
        const b = await firstLine(r.socket);
        if (b === null || !(b in active)) {
          errors++;
          r.socket.destroy();
          return;
        }
        assigned[i] = b;
        active[b]++;
        if (isLong[i]) {
          held.push(r.socket);
          return;
        }
        await sleep(short);
        active[b]--;
        r.socket.end();
      })(),
    );
  }
  await sleep(settle);
  await Promise.all(pending);
  const spreadEnd = spread();
  const finalActive = { ...active };
  for (const s of held) s.end();
  await sleep(200);
  for (const s of held) s.destroy();
  out({
    assigned,
    long: isLong,
    spreadEnd,
    meanSpread: spreads.reduce((a, b) => a + b, 0) / (spreads.length || 1),
    maxSpread: Math.max(...spreads, spreadEnd),
    finalActive,
    errors,
  });
}

const modes = { latency, backends, skew };
if (!modes[mode]) {
  process.stderr.write('usage: svc-client.mjs latency|backends|skew --host H --port P ...\n');
  process.exit(2);
}
await modes[mode]();
process.exit(0);
