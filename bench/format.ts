import type { Ratio, Summary } from './stats.js';

/** Number formats shared by the report and the chart. */

export const int = (n: number) =>
  Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : 'n/a';
export const fixed = (n: number, d = 2) => (Number.isFinite(n) ? n.toFixed(d) : 'n/a');
export const x = (r: Ratio) =>
  Number.isFinite(r.median)
    ? `${r.median.toFixed(2)} (${r.min.toFixed(2)}–${r.max.toFixed(2)})`
    : 'n/a';
export const range = (s: Summary, f: (n: number) => string) =>
  `${f(s.median)} (${f(s.min)}–${f(s.max)})`;
