/**
 * What the benchmark's results say, before any rendering: ratios to the baseline measured in the
 * same run (of the medians, with the spread of the per-round ratios), RSS growth, and the verdict
 * on each target. docs/benchmarks.md and the chart are drawn from these.
 *
 * @module
 */

import { fixed, int } from './format.js';
import { QUIET_BUSY_CORES, QUIET_LOAD, type Results } from './results.js';
import type { RssSample } from './rss.js';
import { type Ratio, summarize } from './stats.js';

export type { Ratio } from './stats.js';

export const LABELS: Record<string, string> = {
  tidings: 'Tidings',
  'tidings-zod': 'Tidings, order schema in zod',
  raw: 'raw amqplib',
  'raw-nodelay': 'raw amqplib, no-delay',
  'raw-envelope': "raw amqplib, Tidings' envelope, wire format 3 (control)",
  'raw-envelope-v1': "raw amqplib, Tidings' envelope, wire format 1 (control)",
  acm: 'amqp-connection-manager',
  rascal: 'Rascal (defaults)',
  arktype: "Tidings, ArkType (the example's schemas)",
  zod: 'Tidings, zod',
  none: 'Tidings, no validation',
  'floor-arktype': 'floor: JSON both ways + ArkType both sides',
  'floor-json': 'floor: JSON both ways, no validation',
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
  /** A short key of the target, the same in every run (for the spread over runs). */
  readonly key: string;
  readonly target: string;
  readonly measured: string;
  /** The figure the goal is judged on (a ratio, or ms for latency, or MB for RSS). */
  readonly value: number;
  readonly met: boolean | undefined;
}

/**
 * Where a run was not quiet: {@link QUIET_BUSY_CORES} or more cores busy with other work just
 * before a scenario (measured while the benchmark is idle; the load average after the run's own
 * scenarios says nothing about others), or, for a run saved without those measurements, a 1-minute
 * load average of {@link QUIET_LOAD} or more when it began. An empty list: a quiet run.
 */
export function loadedScenarios(r: Results): string[] {
  const loads = Object.entries(r.loads ?? {});
  // The probes measure other work directly; only a run saved without them is judged by the load
  // average at its start (which, right after another run, still counts that run).
  if (!loads.some(([, l]) => l.busyBefore !== undefined)) {
    return (r.machine.loadBefore[0] ?? 0) >= QUIET_LOAD ? ['start'] : [];
  }
  return loads.filter(([, l]) => (l.busyBefore ?? 0) >= QUIET_BUSY_CORES).map(([key]) => key);
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
      key: 'e2e',
      target: 'End to end over RabbitMQ, validated on both sides: ≥ 0.95 of raw amqplib',
      measured: `${t.median.toFixed(2)} (rounds ${t.min.toFixed(2)}–${t.max.toFixed(2)}); with zod ${tz.median.toFixed(2)}`,
      value: t.median,
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
      key: 'cpu-producer',
      target: 'Client CPU per message end to end, producer: ≤ 1.3× raw amqplib',
      measured: `${p.median.toFixed(2)}× (rounds ${fixed(p.min)}–${fixed(p.max)}); with zod ${zp.median.toFixed(2)}×`,
      value: p.median,
      met: p.median <= 1.3,
    });
    out.push({
      key: 'cpu-consumer',
      target: 'Client CPU per message end to end, consumer: ≤ 1.3× raw amqplib',
      measured: `${c.median.toFixed(2)}× (rounds ${fixed(c.min)}–${fixed(c.max)}); both sides ${both.median.toFixed(2)}×; with zod ${zc.median.toFixed(2)}×`,
      value: c.median,
      met: c.median <= 1.3,
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
    const env1 = ratio(
      pick(r.publishBatch['raw-envelope-v1'], (e) => e.perSecond),
      pick(r.publishBatch.raw, (e) => e.perSecond),
    );
    const vsEnv = ratio(
      pick(r.publishBatch.tidings, (e) => e.perSecond),
      pick(r.publishBatch['raw-envelope'], (e) => e.perSecond),
    );
    out.push({
      key: 'publish',
      target: 'Publish with confirms, 100 in flight: ≥ 0.95 of raw amqplib',
      measured: `${t.median.toFixed(2)} (rounds ${t.min.toFixed(2)}–${t.max.toFixed(2)}); raw amqplib sending Tidings' envelope: ${fixed(env.median)} of raw in wire format 3 (${fixed(env1.median)} in format 1), and Tidings ${fixed(vsEnv.median)} of that`,
      value: t.median,
      met: t.median >= 0.95,
    });
  }
  if (r.latency) {
    const t = summarize(pick(r.latency.tidings, (l) => l.p99)).median;
    const raw = summarize(pick(r.latency['raw-nodelay'], (l) => l.p99)).median;
    const p50 = summarize(pick(r.latency.tidings, (l) => l.p50)).median;
    const raw50 = summarize(pick(r.latency['raw-nodelay'], (l) => l.p50)).median;
    const p999 = summarize(pick(r.latency.tidings, (l) => l.p999)).median;
    const raw999 = summarize(pick(r.latency['raw-nodelay'], (l) => l.p999)).median;
    out.push({
      key: 'latency',
      target: 'Latency at 2,000 msg/s: p99 ≤ raw amqplib with no-delay + 0.5 ms',
      measured: `p99 ${fixed(t)} ms vs ${fixed(raw)} ms (${t - raw >= 0 ? '+' : ''}${fixed(t - raw)} ms); p50 ${fixed(p50)} vs ${fixed(raw50)}, p99.9 ${fixed(p999)} vs ${fixed(raw999)}`,
      value: t - raw,
      met: t - raw <= 0.5,
    });
  }
  if (r.embedded) {
    const e = r.embedded;
    const perSecond = (k: keyof typeof e) => pick(e[k], (v) => v.perSecond);
    const floorArk = perSecond('floor-arktype');
    if (floorArk.length > 0) {
      const ark = ratio(perSecond('arktype'), floorArk);
      const none = ratio(perSecond('none'), perSecond('floor-json'));
      const s = (k: keyof typeof e) => int(summarize(perSecond(k)).median);
      const cpu = (k: keyof typeof e, floor: keyof typeof e) =>
        fixed(
          summarize(pick(e[floor], (v) => v.cpuUsPerMessage)).median /
            summarize(pick(e[k], (v) => v.cpuUsPerMessage)).median,
        );
      out.push({
        key: 'embedded-arktype',
        target: 'Embedded broker, ArkType both sides: ≥ 0.80 of its floor in the same run',
        measured: `${fixed(ark.median)} (rounds ${fixed(ark.min)}–${fixed(ark.max)}): ${s('arktype')}/s against ${s('floor-arktype')}/s; in CPU per event ${cpu('arktype', 'floor-arktype')}; with zod ${s('zod')}/s`,
        value: ark.median,
        met: ark.median >= 0.8,
      });
      out.push({
        key: 'embedded-none',
        target: 'Embedded broker, no validation: ≥ 0.80 of the JSON-only floor in the same run',
        measured: `${fixed(none.median)} (rounds ${fixed(none.min)}–${fixed(none.max)}): ${s('none')}/s against ${s('floor-json')}/s; in CPU per event ${cpu('none', 'floor-json')}`,
        value: none.median,
        met: none.median >= 0.8,
      });
    }
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
      key: 'rss',
      target: 'RSS growth over the long runs: < 50 MB (judged after the first tenth, see 6.)',
      measured: parts.join('; '),
      value: worst,
      met: parts.length > 0 ? worst < 50 : undefined,
    });
  }
  return out;
}
