import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fmt, median, quantile, ratioInterval, summarize } from './stats.js';
import { niceTicks, renderSvg } from './plot.js';

test('quantiles interpolate linearly between order statistics', () => {
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([4, 1, 3, 2]), 2.5);
  assert.equal(quantile([1, 2, 3, 4, 5], 0.25), 2);
  const s = summarize([10, 20, 30, 40, 50]);
  assert.deepEqual([s.min, s.q1, s.median, s.q3, s.max, s.iqr], [10, 20, 30, 40, 50, 20]);
});

test('the ratio interval brackets the ratio of medians and is reproducible', () => {
  const a = [50, 52, 48, 51, 49, 55, 45];
  const b = [100, 104, 96, 102, 98, 110, 90];
  const [lo, hi] = ratioInterval(a, b);
  assert.ok(lo <= 0.5 && 0.5 <= hi, `${lo}..${hi}`);
  assert.deepEqual(ratioInterval(a, b), [lo, hi]);
});

test('formatting keeps about three significant digits', () => {
  assert.deepEqual([1234.5, 123.4, 12.34, 1.234, 0.1234].map(fmt), ['1235', '123', '12.3', '1.23', '0.123']);
  assert.equal(fmt(NaN), '–');
});

test('ticks start at zero and cover the maximum', () => {
  const t = niceTicks(87);
  assert.equal(t[0], 0);
  assert.ok(t[t.length - 1] >= 87);
  const svg = renderSvg({ title: 'x <&>', configs: ['a'], panels: [{ title: 'm', unit: 'ms', series: [{ config: 'a', samples: [1, 2, 3] }] }] });
  assert.match(svg, /^<svg /);
  assert.match(svg, /x &lt;&amp;&gt;/);
});
