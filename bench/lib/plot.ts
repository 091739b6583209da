/**
 * Box-and-strip plots as SVG, one panel per metric, one box per configuration, every sample drawn
 * as a dot. The PNG is made from the SVG by `rsvg-convert` (Debian: librsvg2-bin); when that is
 * missing only the SVG is written. No npm dependency.
 */
import { existsSync, writeFileSync } from 'node:fs';
import { run } from './proc.js';
import { prng, summarize } from './stats.js';

export interface PlotSeries {
  config: string;
  samples: number[];
}

export interface PlotPanel {
  title: string;
  unit: string;
  series: PlotSeries[];
}

export interface PlotInput {
  title: string;
  subtitle?: string;
  panels: PlotPanel[];
  /** colours are assigned by position in this list, so one config keeps its colour in every panel */
  configs: string[];
}

const PALETTE = ['#1f6fb4', '#d9582b', '#2a9d5c', '#8e5cc4', '#b8860b', '#c2417f', '#4a8f9e', '#666666'];

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** Round tick step (1, 2 or 5 times a power of ten) giving about `target` ticks over [0, max]. */
export function niceTicks(max: number, target = 5): number[] {
  if (!(max > 0)) return [0, 1];
  const raw = max / target;
  const pow = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * pow).find((s) => s >= raw) ?? 10 * pow;
  const ticks: number[] = [];
  for (let v = 0; v <= max + step * 1e-9; v += step) ticks.push(Number(v.toPrecision(12)));
  if (ticks[ticks.length - 1] < max) ticks.push(Number((ticks[ticks.length - 1] + step).toPrecision(12)));
  return ticks;
}

function tickLabel(v: number): string {
  if (v === 0) return '0';
  if (Math.abs(v) >= 100) return v.toFixed(0);
  return String(Number(v.toPrecision(3)));
}

export function renderSvg(input: PlotInput): string {
  const boxW = 44;
  const slot = 96;
  const panelH = 400;
  const padL = 62;
  const padR = 18;
  const padT = 46;
  const padB = 64;
  const headH = input.subtitle ? 58 : 40;
  const panelWs = input.panels.map((p) => padL + padR + Math.max(2, p.series.length) * slot);
  // wide enough for every panel and for the title line (about 10 px per bold 17 px character)
  const width = Math.ceil(Math.max(420, panelWs.reduce((a, b) => a + b, 0) + 20, input.title.length * 10 + 24, (input.subtitle?.length ?? 0) * 7 + 24));
  const height = headH + panelH + 10;
  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="DejaVu Sans, Arial, sans-serif">`,
    `<rect width="100%" height="100%" fill="#ffffff"/>`,
    `<text x="12" y="24" font-size="17" font-weight="bold" fill="#222">${esc(input.title)}</text>`,
  );
  if (input.subtitle) out.push(`<text x="12" y="44" font-size="12" fill="#555">${esc(input.subtitle)}</text>`);

  let x0 = 10;
  input.panels.forEach((panel, pi) => {
    const pw = panelWs[pi];
    const top = headH + padT;
    const plotH = panelH - padT - padB;
    const bottom = top + plotH;
    const all = panel.series.flatMap((s) => s.samples).filter(Number.isFinite);
    const ticks = niceTicks(all.length ? Math.max(...all) * 1.05 : 1);
    const ymax = ticks[ticks.length - 1];
    const y = (v: number): number => bottom - (v / ymax) * plotH;
    const left = x0 + padL;
    const right = x0 + pw - padR;

    out.push(`<g>`);
    out.push(`<text x="${(left + right) / 2}" y="${headH + 22}" font-size="14" font-weight="bold" text-anchor="middle" fill="#222">${esc(panel.title)}</text>`);
    for (const t of ticks) {
      const ty = y(t).toFixed(1);
      out.push(`<line x1="${left}" x2="${right}" y1="${ty}" y2="${ty}" stroke="#e4e4e4" stroke-width="1"/>`);
      out.push(`<text x="${left - 6}" y="${ty}" font-size="11" text-anchor="end" dominant-baseline="middle" fill="#444">${tickLabel(t)}</text>`);
    }
    out.push(`<line x1="${left}" x2="${left}" y1="${top}" y2="${bottom}" stroke="#888"/>`);
    out.push(`<line x1="${left}" x2="${right}" y1="${bottom}" y2="${bottom}" stroke="#888"/>`);
    const ly = (top + bottom) / 2;
    out.push(`<text x="${x0 + 14}" y="${ly}" font-size="12" text-anchor="middle" fill="#444" transform="rotate(-90 ${x0 + 14} ${ly})">${esc(panel.unit)}</text>`);

    panel.series.forEach((s, si) => {
      const cx = left + slot / 2 + si * slot;
      const ci = Math.max(0, input.configs.indexOf(s.config));
      const colour = PALETTE[ci % PALETTE.length];
      const xs = s.samples.filter(Number.isFinite);
      out.push(`<text x="${cx}" y="${bottom + 18}" font-size="12" text-anchor="middle" fill="#222">${esc(s.config)}</text>`);
      if (xs.length === 0) {
        out.push(`<text x="${cx}" y="${bottom - 8}" font-size="11" text-anchor="middle" fill="#999">no data</text>`);
        return;
      }
      const st = summarize(xs);
      const lowFence = st.q1 - 1.5 * st.iqr;
      const highFence = st.q3 + 1.5 * st.iqr;
      const inside = xs.filter((v) => v >= lowFence && v <= highFence);
      const wLo = Math.min(...inside);
      const wHi = Math.max(...inside);
      out.push(`<line x1="${cx}" x2="${cx}" y1="${y(wLo).toFixed(1)}" y2="${y(st.q1).toFixed(1)}" stroke="${colour}" stroke-width="1.5"/>`);
      out.push(`<line x1="${cx}" x2="${cx}" y1="${y(st.q3).toFixed(1)}" y2="${y(wHi).toFixed(1)}" stroke="${colour}" stroke-width="1.5"/>`);
      for (const w of [wLo, wHi]) {
        out.push(`<line x1="${cx - boxW / 4}" x2="${cx + boxW / 4}" y1="${y(w).toFixed(1)}" y2="${y(w).toFixed(1)}" stroke="${colour}" stroke-width="1.5"/>`);
      }
      const bh = Math.max(1, y(st.q1) - y(st.q3));
      out.push(`<rect x="${cx - boxW / 2}" y="${y(st.q3).toFixed(1)}" width="${boxW}" height="${bh.toFixed(1)}" fill="${colour}" fill-opacity="0.15" stroke="${colour}" stroke-width="1.5"/>`);
      out.push(`<line x1="${cx - boxW / 2}" x2="${cx + boxW / 2}" y1="${y(st.median).toFixed(1)}" y2="${y(st.median).toFixed(1)}" stroke="${colour}" stroke-width="3"/>`);
      const rnd = prng(ci * 7919 + pi * 104729 + 17);
      const dense = xs.length > 150;
      for (const v of xs) {
        const jx = cx + (rnd() - 0.5) * boxW * (dense ? 1.1 : 0.8);
        out.push(
          `<circle cx="${jx.toFixed(1)}" cy="${y(v).toFixed(1)}" r="${dense ? 1.6 : 3}" fill="${colour}" fill-opacity="${dense ? 0.35 : 0.55}"${dense ? '' : ' stroke="#ffffff" stroke-width="0.5"'}/>`,
        );
      }
      out.push(`<text x="${cx}" y="${bottom + 34}" font-size="11" text-anchor="middle" fill="#444">median ${esc(tickLabel(st.median))}</text>`);
      out.push(`<text x="${cx}" y="${bottom + 48}" font-size="10" text-anchor="middle" fill="#777">n=${xs.length}</text>`);
    });
    out.push(`</g>`);
    x0 += pw;
  });
  out.push(`</svg>`);
  return out.join('\n');
}

/** Writes the SVG and, if rsvg-convert is installed, a PNG beside it. Returns the PNG path or null. */
export async function writePlot(input: PlotInput, svgPath: string, pngPath: string): Promise<string | null> {
  writeFileSync(svgPath, renderSvg(input));
  const tool = ['/usr/bin/rsvg-convert', '/usr/local/bin/rsvg-convert'].find((p) => existsSync(p));
  if (!tool) return null;
  await run(tool, ['--format', 'png', '--output', pngPath, svgPath], { timeoutMs: 30_000 });
  return pngPath;
}
