/** Order statistics for noisy benchmark samples: medians, quartiles and a bootstrap ratio interval. */

export interface Summary {
  n: number;
  min: number;
  q1: number;
  median: number;
  q3: number;
  max: number;
  iqr: number;
  mean: number;
}

/** Quantile with linear interpolation between order statistics (R type 7, numpy's default). */
export function quantile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const h = (sorted.length - 1) * p;
  const lo = Math.floor(h);
  const hi = Math.ceil(h);
  return sorted[lo] + (h - lo) * (sorted[hi] - sorted[lo]);
}

export function median(xs: readonly number[]): number {
  return quantile([...xs].sort((a, b) => a - b), 0.5);
}

export function summarize(xs: readonly number[]): Summary {
  const s = [...xs].sort((a, b) => a - b);
  const q1 = quantile(s, 0.25);
  const q3 = quantile(s, 0.75);
  return {
    n: s.length,
    min: s.length ? s[0] : NaN,
    q1,
    median: quantile(s, 0.5),
    q3,
    max: s.length ? s[s.length - 1] : NaN,
    iqr: q3 - q1,
    mean: s.length ? s.reduce((a, b) => a + b, 0) / s.length : NaN,
  };
}

/** Small deterministic PRNG (mulberry32) so reports are reproducible from the same samples. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Percentile-bootstrap interval for median(a) / median(b): resample each side with replacement.
 * With few samples the interval is wide, which is the honest answer on a noisy machine.
 */
export function ratioInterval(a: readonly number[], b: readonly number[], level = 0.9, resamples = 2000, seed = 1): [number, number] {
  if (a.length === 0 || b.length === 0) return [NaN, NaN];
  const rnd = prng(seed);
  const pick = (xs: readonly number[]): number[] => xs.map(() => xs[Math.floor(rnd() * xs.length)]);
  const ratios: number[] = [];
  for (let i = 0; i < resamples; i++) {
    const mb = median(pick(b));
    if (mb !== 0) ratios.push(median(pick(a)) / mb);
  }
  ratios.sort((x, y) => x - y);
  const tail = (1 - level) / 2;
  return [quantile(ratios, tail), quantile(ratios, 1 - tail)];
}

/** Formats a number with about three significant digits (1234, 123, 12.3, 1.23, 0.123). */
export function fmt(x: number): string {
  if (!Number.isFinite(x)) return '–';
  const a = Math.abs(x);
  if (a >= 100) return x.toFixed(0);
  if (a >= 10) return x.toFixed(1);
  if (a >= 1) return x.toFixed(2);
  return x.toFixed(3);
}
