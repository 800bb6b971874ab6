/** docs/benchmarks.svg: the ratios to raw amqplib at a glance. */
import { pick, ratio } from './analysis.js';
import { fixed } from './format.js';
import type { Results } from './results.js';
import { summarize } from './stats.js';

interface Bar {
  readonly label: string;
  readonly value: number;
  readonly min: number;
  readonly max: number;
  readonly tidings: boolean;
  /** A target marker, in the bar's units. */
  readonly target?: number | undefined;
  readonly text: string;
}

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/**
 * Horizontal bars with min–max whiskers, a reference line (`reference`, e.g. raw amqplib = 1)
 * and per-bar target ticks. Returns the SVG elements and the height used.
 */
function panel(
  title: string,
  bars: readonly Bar[],
  top: number,
  scaleMax: number,
  reference: number | undefined,
  referenceLabel: string,
): { svg: string; height: number } {
  const left = 300;
  const width = 400;
  const rowH = 26;
  const sx = (v: number) => left + (Math.max(0, Math.min(v, scaleMax)) / scaleMax) * width;
  const parts: string[] = [`<text x="16" y="${top + 16}" class="title">${esc(title)}</text>`];
  const y0 = top + 28;
  bars.forEach((b, i) => {
    const y = y0 + i * rowH;
    parts.push(
      `<text x="${left - 8}" y="${y + 15}" class="label" text-anchor="end">${esc(b.label)}</text>`,
    );
    if (Number.isFinite(b.value)) {
      parts.push(
        `<rect x="${left}" y="${y + 4}" width="${(sx(b.value) - left).toFixed(1)}" height="16" class="${b.tidings ? 'tidings' : 'other'}"/>`,
      );
      if (Number.isFinite(b.min) && Number.isFinite(b.max) && b.max > b.min) {
        const ym = y + 12;
        parts.push(
          `<path d="M${sx(b.min).toFixed(1)} ${ym}H${sx(b.max).toFixed(1)}M${sx(b.min).toFixed(1)} ${ym - 4}v8M${sx(b.max).toFixed(1)} ${ym - 4}v8" class="whisker"/>`,
        );
      }
      parts.push(
        `<text x="${(Math.max(sx(b.value), Number.isFinite(b.max) ? sx(b.max) : 0) + 6).toFixed(1)}" y="${y + 16}" class="value">${esc(b.text)}</text>`,
      );
    } else {
      parts.push(`<text x="${left + 6}" y="${y + 16}" class="value">failed</text>`);
    }
    if (b.target !== undefined && Number.isFinite(b.target)) {
      parts.push(`<path d="M${sx(b.target).toFixed(1)} ${y + 1}v22" class="target"/>`);
    }
  });
  const bottom = y0 + bars.length * rowH;
  if (reference !== undefined) {
    parts.push(
      `<path d="M${sx(reference).toFixed(1)} ${y0 - 4}V${bottom}" class="reference"/>`,
      `<text x="${sx(reference).toFixed(1)}" y="${bottom + 14}" class="note" text-anchor="middle">${esc(referenceLabel)}</text>`,
    );
  }
  return { svg: parts.join('\n'), height: bottom + 22 - top };
}

/** The generated docs/benchmarks.svg: ratios to raw amqplib at a glance. */
export function renderSvg(r: Results): string {
  const sections: string[] = [];
  let top = 8;
  const throughput: Bar[] = [];
  const ratioBar = (
    label: string,
    values: number[],
    base: number[],
    tidings: boolean,
    target?: number,
  ): Bar => {
    const q = ratio(values, base);
    return {
      label,
      value: q.median,
      min: q.min,
      max: q.max,
      tidings,
      target,
      text: `${fixed(q.median)}×`,
    };
  };
  const ps = (runs: readonly { perSecond: number }[] | undefined) => pick(runs, (e) => e.perSecond);
  if (r.publishBatch) {
    throughput.push(
      ratioBar(
        'Publish, 100 confirms in flight: Tidings',
        ps(r.publishBatch.tidings),
        ps(r.publishBatch.raw),
        true,
        0.95,
      ),
    );
    throughput.push(
      ratioBar(
        'Publish, control: envelope, format 3',
        ps(r.publishBatch['raw-envelope']),
        ps(r.publishBatch.raw),
        false,
      ),
    );
    if ((r.publishBatch['raw-envelope-v1']?.length ?? 0) > 0) {
      throughput.push(
        ratioBar(
          'Publish, control: envelope, format 1',
          ps(r.publishBatch['raw-envelope-v1']),
          ps(r.publishBatch.raw),
          false,
        ),
      );
    }
  }
  if (r.publishEach) {
    throughput.push(
      ratioBar(
        'Publish, each confirm awaited: Tidings',
        ps(r.publishEach.tidings),
        ps(r.publishEach.raw),
        true,
      ),
    );
  }
  if (r.e2e) {
    throughput.push(
      ratioBar(
        'End to end: Tidings (ArkType both sides)',
        ps(r.e2e.tidings),
        ps(r.e2e.raw),
        true,
        0.95,
      ),
    );
    throughput.push(
      ratioBar(
        'End to end: Tidings (zod both sides)',
        ps(r.e2e['tidings-zod']),
        ps(r.e2e.raw),
        true,
      ),
    );
    throughput.push(
      ratioBar('End to end: amqp-connection-manager', ps(r.e2e.acm), ps(r.e2e.raw), false),
    );
    throughput.push(
      ratioBar('End to end: Rascal (defaults)', ps(r.e2e.rascal), ps(r.e2e.raw), false),
    );
  }
  if (throughput.length > 0) {
    const p = panel(
      'Throughput, relative to raw amqplib in the same run (higher is better)',
      throughput,
      top,
      1.25,
      1,
      'raw amqplib = 1',
    );
    sections.push(p.svg);
    top += p.height + 10;
  }
  const cost: Bar[] = [];
  if (r.e2e) {
    const e = r.e2e;
    cost.push(
      ratioBar(
        'CPU per message, producer: Tidings',
        pick(e.tidings, (v) => v.producerCpuUs),
        pick(e.raw, (v) => v.producerCpuUs),
        true,
        1.3,
      ),
    );
    cost.push(
      ratioBar(
        'CPU per message, consumer: Tidings',
        pick(e.tidings, (v) => v.consumerCpuUs),
        pick(e.raw, (v) => v.consumerCpuUs),
        true,
        1.3,
      ),
    );
    const v = e['tidings-zod'];
    cost.push(
      ratioBar(
        'CPU per message, producer: Tidings, zod',
        pick(v, (x) => x.producerCpuUs),
        pick(e.raw, (x) => x.producerCpuUs),
        true,
        1.3,
      ),
    );
    cost.push(
      ratioBar(
        'CPU per message, consumer: Tidings, zod',
        pick(v, (x) => x.consumerCpuUs),
        pick(e.raw, (x) => x.consumerCpuUs),
        true,
        1.3,
      ),
    );
  }
  if (r.latency) {
    const l = r.latency;
    const base = l['raw-nodelay'];
    const p99Target =
      (summarize(pick(base, (v) => v.p99)).median + 0.5) /
      summarize(pick(base, (v) => v.p99)).median;
    cost.push(
      ratioBar(
        'Latency p50: Tidings',
        pick(l.tidings, (v) => v.p50),
        pick(base, (v) => v.p50),
        true,
      ),
    );
    cost.push(
      ratioBar(
        'Latency p99: Tidings',
        pick(l.tidings, (v) => v.p99),
        pick(base, (v) => v.p99),
        true,
        p99Target,
      ),
    );
    cost.push(
      ratioBar(
        'Latency p50: raw amqplib, Nagle on',
        pick(l.raw, (v) => v.p50),
        pick(base, (v) => v.p50),
        false,
      ),
    );
  }
  if (cost.length > 0) {
    const max =
      Math.max(
        2,
        ...cost.map((b) => (Number.isFinite(b.max) ? b.max : b.value)).filter(Number.isFinite),
      ) * 1.1;
    const p = panel(
      'CPU and latency, relative to raw amqplib (latency: with no-delay) (lower is better)',
      cost,
      top,
      Math.min(max, 4),
      1,
      'raw amqplib = 1',
    );
    sections.push(p.svg);
    top += p.height + 10;
  }
  if (r.embedded && (r.embedded['floor-arktype']?.length ?? 0) > 0) {
    const e = r.embedded;
    const p = panel(
      'Embedded broker: events/s as a ratio to its floor measured in the same run',
      [
        ratioBar('Embedded, ArkType both sides', ps(e.arktype), ps(e['floor-arktype']), true, 0.8),
        ratioBar('Embedded, no validation', ps(e.none), ps(e['floor-json']), true, 0.8),
        ratioBar(
          'Embedded, zod both sides (vs ArkType floor)',
          ps(e.zod),
          ps(e['floor-arktype']),
          false,
        ),
      ],
      top,
      1.2,
      1,
      'floor = 1',
    );
    sections.push(p.svg);
    top += p.height + 10;
  }
  const legend = `<text x="16" y="${top + 12}" class="note">Bars: median; whiskers: lowest and highest single-round ratio; red ticks: targets. ${esc(r.machine.date.slice(0, 10))}, ${r.machine.cores} × ${esc(r.machine.cpu)}, RabbitMQ ${esc(r.machine.rabbitmq)}.</text>`;
  const height = top + 24;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="860" height="${height}" viewBox="0 0 860 ${height}" font-family="system-ui, -apple-system, Segoe UI, sans-serif">`,
    '<title>Tidings benchmarks: throughput, CPU and latency as ratios to raw amqplib, and the embedded broker</title>',
    '<style>',
    '.title{font-size:14px;font-weight:600;fill:#222}.label{font-size:12px;fill:#333}.value{font-size:12px;fill:#222}.note{font-size:11px;fill:#666}',
    '.tidings{fill:#2f6fb3}.other{fill:#a8a8a8}.whisker{stroke:#222;stroke-width:1.2;fill:none}.reference{stroke:#222;stroke-width:1.2;stroke-dasharray:4 3}.target{stroke:#c62828;stroke-width:2.5}',
    '</style>',
    '<rect width="100%" height="100%" fill="#fff"/>',
    ...sections,
    legend,
    '</svg>',
    '',
  ].join('\n');
}
