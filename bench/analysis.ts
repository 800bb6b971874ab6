/**
 * What the benchmark's results say, before any rendering: ratios to the baseline measured in the
 * same run (of the medians, with the spread of the per-round ratios), RSS growth, and the verdict
 * on each target. docs/benchmarks.md and the chart are drawn from these.
 *
 * @module
 */

import { fixed, int } from './format.js';
import type { Results } from './results.js';
import type { RssSample } from './rss.js';
import { type Ratio, summarize } from './stats.js';

export type { Ratio } from './stats.js';

export const LABELS: Record<string, string> = {
  tidings: 'Tidings',
  'tidings-zod': 'Tidings, order schema in zod',
  raw: 'raw amqplib',
  'raw-nodelay': 'raw amqplib, no-delay',
  'raw-envelope': "raw amqplib, Tidings' envelope (control)",
  acm: 'amqp-connection-manager',
  rascal: 'Rascal (defaults)',
  arktype: "Tidings, ArkType (the example's schemas)",
  zod: 'Tidings, zod',
  none: 'Tidings, no validation (reference)',
};

export function ratio(values: readonly number[], baseline: readonly number[]): Ratio {
  const perRound: number[] = [];
  for (let i = 0; i < Math.min(values.length, baseline.length); i++) {
    perRound.push(values[i]! / baseline[i]!);
  }
  const spread = summarize(perRound);
  return {
    median: summarize(values).median / summarize(baseline).median,
    min: spread.min,
    max: spread.max,
  };
}

export function pick<T>(runs: readonly T[] | undefined, f: (t: T) => number): number[] {
  return (runs ?? []).map(f);
}

export interface Verdict {
  readonly target: string;
  readonly measured: string;
  readonly met: boolean | undefined;
}

/**
 * RSS growth from the first sample to the last, the peak over the first, and the growth after the
 * first tenth of the messages (once heaps and JIT code have reached their working size).
 */
export function growth(samples: readonly RssSample[]): {
  last: number;
  peak: number;
  settled: number;
} {
  if (samples.length === 0) return { last: Number.NaN, peak: Number.NaN, settled: Number.NaN };
  const first = samples[0]!.rssMb;
  const end = samples[samples.length - 1]!;
  const tenth = samples.find((s) => s.messages >= end.messages / 10) ?? samples[0]!;
  return {
    last: end.rssMb - first,
    peak: Math.max(...samples.map((s) => s.rssMb)) - first,
    settled: end.rssMb - tenth.rssMb,
  };
}

export function verdicts(r: Results): Verdict[] {
  const out: Verdict[] = [];
  if (r.e2e) {
    const t = ratio(
      pick(r.e2e.tidings, (e) => e.perSecond),
      pick(r.e2e.raw, (e) => e.perSecond),
    );
    const tz = ratio(
      pick(r.e2e['tidings-zod'], (e) => e.perSecond),
      pick(r.e2e.raw, (e) => e.perSecond),
    );
    out.push({
      target: 'End to end over RabbitMQ, validated on both sides: ≥ 0.95 of raw amqplib',
      measured: `${t.median.toFixed(2)} (rounds ${t.min.toFixed(2)}–${t.max.toFixed(2)}); with zod ${tz.median.toFixed(2)}`,
      met: t.median >= 0.95,
    });
    const cpu = (k: 'producerCpuUs' | 'consumerCpuUs') =>
      ratio(
        pick(r.e2e?.tidings, (e) => e[k]),
        pick(r.e2e?.raw, (e) => e[k]),
      );
    const both = ratio(
      pick(r.e2e.tidings, (e) => e.producerCpuUs + e.consumerCpuUs),
      pick(r.e2e.raw, (e) => e.producerCpuUs + e.consumerCpuUs),
    );
    const p = cpu('producerCpuUs');
    const c = cpu('consumerCpuUs');
    const zp = ratio(
      pick(r.e2e['tidings-zod'], (e) => e.producerCpuUs),
      pick(r.e2e.raw, (e) => e.producerCpuUs),
    );
    const zc = ratio(
      pick(r.e2e['tidings-zod'], (e) => e.consumerCpuUs),
      pick(r.e2e.raw, (e) => e.consumerCpuUs),
    );
    out.push({
      target: 'Client CPU per message, end to end: ≤ 1.5× raw amqplib',
      measured: `producer ${p.median.toFixed(2)}×, consumer ${c.median.toFixed(2)}×, both ${both.median.toFixed(2)}× (with zod: producer ${zp.median.toFixed(2)}×, consumer ${zc.median.toFixed(2)}×)`,
      met: p.median <= 1.5 && c.median <= 1.5,
    });
  }
  if (r.publishBatch) {
    const t = ratio(
      pick(r.publishBatch.tidings, (e) => e.perSecond),
      pick(r.publishBatch.raw, (e) => e.perSecond),
    );
    const env = ratio(
      pick(r.publishBatch['raw-envelope'], (e) => e.perSecond),
      pick(r.publishBatch.raw, (e) => e.perSecond),
    );
    const vsEnv = ratio(
      pick(r.publishBatch.tidings, (e) => e.perSecond),
      pick(r.publishBatch['raw-envelope'], (e) => e.perSecond),
    );
    out.push({
      target: 'Publish with confirms, 100 in flight: ≥ 0.95 of raw amqplib',
      measured: `${t.median.toFixed(2)} (rounds ${t.min.toFixed(2)}–${t.max.toFixed(2)}); raw amqplib sending Tidings' envelope: ${fixed(env.median)} of raw, and Tidings ${fixed(vsEnv.median)} of that`,
      met: t.median >= 0.95,
    });
  }
  if (r.latency) {
    const t = summarize(pick(r.latency.tidings, (l) => l.p99)).median;
    const raw = summarize(pick(r.latency['raw-nodelay'], (l) => l.p99)).median;
    out.push({
      target: 'Latency at 2,000 msg/s: p99 ≤ raw amqplib with no-delay + 0.5 ms',
      measured: `${fixed(t)} ms vs ${fixed(raw)} ms (${t - raw >= 0 ? '+' : ''}${fixed(t - raw)} ms)`,
      met: t - raw <= 0.5,
    });
  }
  if (r.embedded) {
    const ark = summarize(pick(r.embedded.arktype, (e) => e.perSecond)).median;
    const zod = summarize(pick(r.embedded.zod, (e) => e.perSecond)).median;
    out.push({
      target: 'Embedded broker, validated on both sides: ≥ 200,000 events/s',
      measured: `${int(ark)}/s with the example's ArkType schemas (${fixed(ark / 200_000)} of the target); with zod ${int(zod)}/s`,
      met: ark >= 200_000,
    });
  }
  if (r.memory) {
    const parts: string[] = [];
    let worst = 0;
    const add = (label: string, s: readonly RssSample[]) => {
      if (s.length === 0) return;
      const g = growth(s);
      // Judged on the growth after the first tenth of the messages: the first sample comes right
      // after the warm-up, before V8's heaps (young generation, code) have grown to their working
      // size, which they reach within seconds and then keep. A leak grows on through the other
      // nine tenths; the growth from the first sample and the peak are reported beside it.
      worst = Math.max(worst, g.settled);
      parts.push(
        `${label} ${fixed(g.settled, 1)} MB after the first tenth (${fixed(g.last, 1)} from the first sample; peak +${fixed(g.peak, 1)})`,
      );
    };
    if (r.memory.amqp) {
      add('RabbitMQ consumer', r.memory.amqp.rss);
      add('producer', r.memory.amqp.producerRss);
    }
    add('embedded', r.memory.embedded.rss);
    out.push({
      target: 'RSS growth over the long runs: < 50 MB (judged after the first tenth, see 6.)',
      measured: parts.join('; '),
      met: parts.length > 0 ? worst < 50 : undefined,
    });
  }
  return out;
}
