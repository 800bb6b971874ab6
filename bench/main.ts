/**
 * `npm run bench`: Tidings side by side with raw amqplib (and amqp-connection-manager and Rascal
 * end to end) on a local RabbitMQ, plus the embedded broker, in interleaved rounds. Writes
 * docs/benchmarks.md and docs/benchmarks.svg; one progress line per scenario on stderr.
 *
 * A full run saves its raw results in bench/results/<date>.json, then renders the docs from the
 * saved runs (`npm run bench:report` renders them again without running anything; see report.ts).
 *
 * Environment: AMQP_URL (default amqp://guest:guest@127.0.0.1:5672), BENCH_ROUNDS (default 3),
 * BENCH_ONLY (comma-separated scenario keys, for a partial run that saves nothing in the
 * repository and writes no docs).
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import * as amqplib from 'amqplib';
import { type Library, type Names, namesFor } from './clients.js';
import { measureCosts } from './costs.js';
import type { EmbeddedJob } from './embedded.js';
import { measureOutbox } from './outbox.js';
import { runPartitionBench } from './partitions.js';
import type { SchemaLibrary } from './payload.js';
import { RESULTS_DIR, writeReport } from './report.js';
import type {
  E2eRun,
  Failure,
  LatencyRun,
  Machine,
  MemoryRun,
  Results,
  ScenarioLoad,
  ThroughputRun,
} from './results.js';
import { QUIET_BUSY_CORES, QUIET_LOAD } from './results.js';
import { Worker } from './spawn.js';
import { percentile } from './stats.js';
import { measureTracing } from './tracing.js';
import type {
  ConsumeJob,
  ConsumeResult,
  EmbeddedWorkerResult,
  ProduceJob,
  ProduceResult,
} from './worker.js';

const url = process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const rounds = Math.max(1, Number(process.env.BENCH_ROUNDS ?? 3));
const only = process.env.BENCH_ONLY?.split(',').filter(Boolean);
const runId = Date.now().toString(36);
let nameSeq = 0;
const failures: Failure[] = [];
const leftovers: Names[] = [];
const began = Date.now();

const PREFETCH = 100;
const BATCH = 100;

function progress(line: string): void {
  const s = ((Date.now() - began) / 1000).toFixed(0).padStart(4);
  process.stderr.write(`[${s} s] ${line}\n`);
}

function fresh(): Names {
  return namesFor(`bench-${runId}-${++nameSeq}`);
}

/** Waits until RabbitMQ accepts a connection (it may be restarting), up to `ms`. */
async function waitForBroker(ms = 120_000): Promise<string> {
  const until = Date.now() + ms;
  for (;;) {
    try {
      const c = await amqplib.connect(url);
      const version = String(c.connection.serverProperties?.version ?? 'unknown');
      await c.close();
      return version;
    } catch (error) {
      if (Date.now() > until) throw error;
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
}

/** Deletes a run's queues and exchange; kept for later when the broker is away. */
async function cleanup(names: Names): Promise<void> {
  try {
    const c = await amqplib.connect(url);
    c.on('error', () => {});
    const ch = await c.createChannel();
    ch.on('error', () => {});
    await ch.deleteQueue(names.queue);
    await ch.deleteQueue(`${names.queue}.dlq`);
    await ch.deleteExchange(names.exchange);
    await c.close();
  } catch {
    leftovers.push(names);
  }
}

/** A durable topic exchange and a plain durable queue bound to it, as raw amqplib declares them. */
async function declarePlain(names: Names): Promise<void> {
  const c = await amqplib.connect(url);
  const ch = await c.createChannel();
  await ch.assertExchange(names.exchange, 'topic', { durable: true });
  await ch.assertQueue(names.queue, { durable: true });
  await ch.bindQueue(names.queue, names.exchange, names.pattern);
  await c.close();
}

/**
 * Runs `run` for each variant, round after round (A B A B …), so drift and the other load on the
 * machine fall on every variant alike. A failed attempt (the broker restarted, a worker died) is
 * recorded and run again, up to four attempts in all.
 */
async function interleave<V extends string, R>(
  scenario: string,
  variants: readonly V[],
  run: (variant: V) => Promise<R>,
  times = rounds,
): Promise<Record<V, R[]>> {
  const out = Object.fromEntries(variants.map((v) => [v, [] as R[]])) as Record<V, R[]>;
  for (let round = 1; round <= times; round++) {
    for (const variant of variants) {
      for (let attempt = 1; ; attempt++) {
        try {
          out[variant].push(await run(variant));
          break;
        } catch (error) {
          const reason = error instanceof Error ? error.message : String(error);
          failures.push({ scenario, variant, round, attempt, reason });
          progress(
            `  ${scenario}, ${variant}, round ${round}: attempt ${attempt} failed: ${reason}`,
          );
          if (attempt >= 4) break;
          // A broker that has just come back is still recovering its queues: let it settle.
          await waitForBroker();
          await new Promise((r) => setTimeout(r, 2000));
        }
      }
    }
  }
  return out;
}

function settings(names: Names, schemas: SchemaLibrary = 'arktype') {
  return { url, names, prefetch: PREFETCH, schemas };
}

/** Publishes only: scenario 1 (batches of 100 in flight) and 2 (one confirm at a time). */
/**
 * Messages each client sends before the clock starts, in batches of {@link BATCH} as measured, so
 * the JIT has compiled the path it measures. With 2,500-3,000 sent at once, Tidings' first 10,000
 * measured messages still cost up to 1.6 times their steady cost (its code was still being
 * optimised; raw amqplib's, smaller, less so): the ratio measured the warm-up, not the client.
 */
const WARMUP = 20_000;

async function publishRun(
  library: Library,
  mode: 'batch' | 'each',
  messages: number,
): Promise<ThroughputRun> {
  const names = fresh();
  let producer: Worker | undefined;
  try {
    await declarePlain(names);
    const job: ProduceJob = {
      kind: 'produce',
      library,
      settings: settings(names),
      // Awaiting each confirm, 2,000 messages are few: warm the JIT up on as many again.
      warmup: mode === 'each' ? messages : WARMUP,
      messages,
      mode,
      batch: BATCH,
      rate: 0,
    };
    producer = new Worker(job, `${library} producer`);
    producer.deadline(90_000, `${library} producer`);
    await producer.ready;
    producer.go();
    const r = (await producer.done) as ProduceResult;
    return {
      perSecond: messages / ((r.t1 - r.t0) / 1e9),
      producerCpuUs: r.cpuUs / messages,
    };
  } finally {
    await producer?.stop();
    await cleanup(names);
  }
}

interface PairOptions {
  readonly messages: number;
  /** Tidings only: the library of the order schema. @defaultValue 'arktype' (the example's) */
  readonly schemas?: SchemaLibrary;
  readonly warmup: number;
  readonly mode: 'batch' | 'rate';
  readonly rate?: number;
  readonly times?: boolean;
  readonly rssEveryMs?: number;
  readonly timeoutMs: number;
}

/** A consumer process, then a producer process, on fresh names: end to end and latency. */
async function pairRun(
  library: Library,
  o: PairOptions,
): Promise<{ producer: ProduceResult; consumer: ConsumeResult }> {
  const names = fresh();
  const common = {
    library,
    settings: settings(names, o.schemas),
    warmup: o.warmup,
    messages: o.messages,
  };
  const consumeJob: ConsumeJob = {
    kind: 'consume',
    ...common,
    times: o.times ?? false,
    rssEveryMs: o.rssEveryMs,
  };
  const produceJob: ProduceJob = {
    kind: 'produce',
    ...common,
    mode: o.mode,
    batch: BATCH,
    rate: o.rate ?? 0,
    rssEveryMs: o.rssEveryMs,
  };
  let consumer: Worker | undefined;
  let producer: Worker | undefined;
  try {
    consumer = new Worker(consumeJob, `${library} consumer`);
    consumer.deadline(o.timeoutMs, `${library} consumer`);
    await consumer.ready;
    producer = new Worker(produceJob, `${library} producer`);
    producer.deadline(o.timeoutMs, `${library} producer`);
    await producer.ready;
    // The measured messages must not queue behind warm-up ones the consumer is still handling.
    await Promise.race([consumer.warm, consumer.done]);
    producer.go();
    const [p, c] = await Promise.all([producer.done, consumer.done]);
    return { producer: p as ProduceResult, consumer: c as ConsumeResult };
  } finally {
    await Promise.all([producer?.stop(), consumer?.stop()]);
    await cleanup(names);
  }
}

/** End-to-end variants: `tidings-zod` is Tidings with the order schema in zod. */
type E2eVariant = Library | 'tidings-zod';

async function e2eRun(variant: E2eVariant, messages: number): Promise<E2eRun> {
  const zod = variant === 'tidings-zod';
  const { producer, consumer } = await pairRun(zod ? 'tidings' : variant, {
    messages,
    warmup: WARMUP,
    mode: 'batch',
    timeoutMs: 120_000,
    schemas: zod ? 'zod' : 'arktype',
  });
  return {
    perSecond: messages / ((consumer.tLast - producer.t0) / 1e9),
    producerCpuUs: producer.cpuUs / messages,
    consumerCpuUs: consumer.cpuUs / messages,
  };
}

async function latencyRun(library: Library, messages: number, rate: number): Promise<LatencyRun> {
  const { producer, consumer } = await pairRun(library, {
    messages,
    warmup: WARMUP / 2,
    mode: 'rate',
    rate,
    times: true,
    timeoutMs: 60_000,
  });
  const sent = producer.sendTimes ?? [];
  const tails = { producerTail: producer.tail, consumerTail: consumer.tail };
  const received = consumer.receiveTimes ?? [];
  const ms: number[] = [];
  for (let i = 0; i < messages; i++) {
    if (sent[i] && received[i]) ms.push((received[i]! - sent[i]!) / 1e6);
  }
  ms.sort((a, b) => a - b);
  return {
    p50: percentile(ms, 50),
    p99: percentile(ms, 99),
    p999: percentile(ms, 99.9),
    max: ms[ms.length - 1] ?? Number.NaN,
    samples: ms.length,
    producerCpuUs: producer.cpuUs / messages,
    consumerCpuUs: consumer.cpuUs / messages,
    ...tails,
  };
}

async function embeddedRun(job: Omit<EmbeddedJob, 'kind'>): Promise<EmbeddedWorkerResult> {
  const label = `embedded ${job.floor ? 'floor, ' : ''}${job.library}`;
  const worker = new Worker({ kind: 'embedded', ...job }, label);
  try {
    worker.deadline(180_000, label);
    await worker.ready;
    worker.go();
    return (await worker.done) as EmbeddedWorkerResult;
  } finally {
    await worker.stop();
  }
}

function fmt(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

function wanted(key: string): boolean {
  return !only || only.includes(key);
}

const loads: Record<string, ScenarioLoad> = {};

/** CPU time of the whole machine from /proc/stat: busy and total jiffies. */
function machineTicks(): { busy: number; total: number } | undefined {
  try {
    const cpu = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1);
    const n = cpu.map(Number);
    const idle = (n[3] ?? 0) + (n[4] ?? 0);
    const total = n.slice(0, 8).reduce((a, b) => a + b, 0);
    return { busy: total - idle, total };
  } catch {
    return undefined;
  }
}

/** Cores kept busy by others over `ms`, measured while no worker of the benchmark runs. */
async function busyCores(ms = 1000): Promise<number | undefined> {
  const a = machineTicks();
  await new Promise((r) => setTimeout(r, ms));
  const b = machineTicks();
  if (!a || !b || b.total === a.total) return undefined;
  return ((b.busy - a.busy) / (b.total - a.total)) * cpus().length;
}

/**
 * Runs one scenario, recording the load average before and after it, and the cores busy with
 * other work just before it (the load average cannot tell once the run's own scenarios have run).
 */
async function scenario(key: string, fn: () => Promise<void>): Promise<void> {
  if (!wanted(key)) return;
  // RabbitMQ may still be finishing the previous scenario (deleting its queues, writing to disk):
  // give it up to ten seconds to settle, so what is left is other work.
  let busyBefore = await busyCores();
  for (let i = 0; i < 9 && busyBefore !== undefined && busyBefore >= QUIET_BUSY_CORES; i++) {
    busyBefore = Math.min(busyBefore, (await busyCores()) ?? busyBefore);
  }
  const before = loadavg();
  if (busyBefore !== undefined && busyBefore >= QUIET_BUSY_CORES) {
    progress(
      `  ${key}: ${busyBefore.toFixed(2)} cores busy with other work before it (quiet means below ${QUIET_BUSY_CORES}): this run will be marked as loaded`,
    );
  }
  await fn();
  loads[key] = { before, after: loadavg(), busyBefore };
}

function gitCommit(): string | undefined {
  try {
    const head = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], {
      encoding: 'utf8',
    }).trim();
    return dirty ? `${head} (with uncommitted changes)` : head;
  } catch {
    return undefined;
  }
}

async function main(): Promise<void> {
  const rabbitmq = await waitForBroker(30_000);
  const machine: Machine = {
    cpu: cpus()[0]?.model.trim() ?? 'unknown',
    cores: cpus().length,
    memoryGb: totalmem() / 2 ** 30,
    node: process.version,
    rabbitmq,
    date: new Date().toISOString(),
    loadBefore: loadavg(),
    loadAfter: [],
    commit: gitCommit(),
  };
  progress(
    `RabbitMQ ${rabbitmq} at ${url.replace(/\/\/[^@]*@/, '//')}; ${machine.cores} × ${machine.cpu}, Node ${machine.node}, ${rounds} rounds`,
  );
  if ((machine.loadBefore[0] ?? 0) >= QUIET_LOAD) {
    progress(
      `  the 1-minute load average is ${machine.loadBefore[0]!.toFixed(2)} (quiet means below ${QUIET_LOAD}): this run will be marked as loaded`,
    );
  }
  const results: Results = {
    format: 2,
    machine,
    loads,
    scenarios: only ?? [
      'costs',
      'publish',
      'each',
      'e2e',
      'latency',
      'embedded',
      'memory',
      'outbox',
      'tracing',
      'partitions',
    ],
    rounds,
    seconds: 0,
    failures,
    costs: undefined,
    publishBatch: undefined,
    publishEach: undefined,
    e2e: undefined,
    latency: undefined,
    embedded: undefined,
    memory: undefined,
  };

  await scenario('costs', async () => {
    results.costs = measureCosts();
    const c = results.costs;
    progress(
      `[0/9] costs per order: JSON.stringify ${c.stringify.toFixed(2)} µs, JSON.parse ${c.parse.toFixed(2)} µs, ArkType ${c.arktype.toFixed(2)} µs, zod ${c.zod.toFixed(2)} µs, valibot ${c.valibot.toFixed(2)} µs`,
    );
  });

  await scenario('publish', async () => {
    const n = 10_000;
    results.publishBatch = await interleave(
      'publish, 100 in flight',
      ['tidings', 'raw', 'raw-envelope', 'raw-envelope-v1'],
      (v) => publishRun(v, 'batch', n),
    );
    const r = results.publishBatch;
    progress(
      `[1/9] publish, confirms of 100 in flight: tidings ${fmt(med(r.tidings))}/s, raw ${fmt(med(r.raw))}/s, raw with Tidings' envelope ${fmt(med(r['raw-envelope']))}/s (wire format 1: ${fmt(med(r['raw-envelope-v1']))}/s)`,
    );
  });

  await scenario('each', async () => {
    const n = 2_000;
    results.publishEach = await interleave('publish, each confirm', ['tidings', 'raw'], (v) =>
      publishRun(v, 'each', n),
    );
    const r = results.publishEach;
    progress(
      `[2/9] publish, awaiting each confirm: tidings ${fmt(med(r.tidings))}/s, raw ${fmt(med(r.raw))}/s`,
    );
  });

  await scenario('e2e', async () => {
    const n = 10_000;
    results.e2e = await interleave(
      'end to end',
      ['tidings', 'raw', 'tidings-zod', 'acm', 'rascal'],
      (v) => e2eRun(v, n),
    );
    const r = results.e2e;
    progress(
      `[3/9] end to end: tidings ${fmt(med(r.tidings))}/s (with zod ${fmt(med(r['tidings-zod']))}/s), raw ${fmt(med(r.raw))}/s, amqp-connection-manager ${fmt(med(r.acm))}/s, rascal ${fmt(med(r.rascal))}/s`,
    );
  });

  await scenario('latency', async () => {
    const rate = 2000;
    results.latency = await interleave(
      'latency at 2,000/s',
      ['tidings', 'raw-nodelay', 'raw'],
      (v) => latencyRun(v, 4000, rate),
    );
    const r = results.latency;
    const p = (v: LatencyRun[]) =>
      `${medOf(v, 'p50').toFixed(2)} / ${medOf(v, 'p99').toFixed(2)} / ${medOf(v, 'p999').toFixed(2)} ms`;
    progress(
      `[4/9] latency at ${rate}/s, p50 / p99 / p99.9: tidings ${p(r.tidings)}, raw no-delay ${p(r['raw-nodelay'])}, raw ${p(r.raw)}`,
    );
  });

  await scenario('embedded', async () => {
    results.embedded = await interleave(
      'embedded broker',
      ['arktype', 'floor-arktype', 'none', 'floor-json', 'zod'] as const,
      (v) =>
        embeddedRun({
          messages: 80_000,
          library: v === 'floor-arktype' ? 'arktype' : v === 'floor-json' ? 'none' : v,
          floor: v.startsWith('floor'),
          window: 1000,
          prefetch: PREFETCH,
        }),
    );
    const r = results.embedded;
    progress(
      `[5/9] embedded broker, validated both sides: ArkType ${fmt(medOf(r.arktype, 'perSecond'))}/s (its floor ${fmt(medOf(r['floor-arktype'], 'perSecond'))}/s), zod ${fmt(medOf(r.zod, 'perSecond'))}/s; no validation: ${fmt(medOf(r.none, 'perSecond'))}/s (its floor ${fmt(medOf(r['floor-json'], 'perSecond'))}/s)`,
    );
  });

  await scenario('memory', async () => {
    const amqpMessages = 200_000;
    const embeddedMessages = 1_000_000;
    const amqp = await interleave(
      'memory, RabbitMQ',
      ['tidings'],
      async () => {
        const { producer, consumer } = await pairRun('tidings', {
          messages: amqpMessages,
          warmup: 3000,
          mode: 'batch',
          rssEveryMs: 500,
          timeoutMs: 240_000,
        });
        return {
          messages: amqpMessages,
          perSecond: amqpMessages / ((consumer.tLast - producer.t0) / 1e9),
          rss: consumer.rss ?? [],
          producerRss: producer.rss ?? [],
        } satisfies MemoryRun;
      },
      1,
    );
    const embedded = await embeddedRun({
      messages: embeddedMessages,
      library: 'arktype',
      window: 1000,
      prefetch: PREFETCH,
      rssEveryMs: 500,
    });
    results.memory = {
      amqp: amqp.tidings[0],
      embedded: {
        messages: embeddedMessages,
        perSecond: embedded.perSecond,
        rss: embedded.rss,
        producerRss: [],
      },
    };
    const growth = (m: MemoryRun | undefined) =>
      m ? `${(m.rss[m.rss.length - 1]!.rssMb - m.rss[0]!.rssMb).toFixed(1)} MB` : 'failed';
    progress(
      `[6/9] memory: RSS growth over ${fmt(amqpMessages)} on RabbitMQ (consumer) ${growth(results.memory.amqp)}, ${fmt(embeddedMessages)} embedded ${growth(results.memory.embedded)}`,
    );
  });

  await scenario('outbox', async () => {
    results.outbox = await measureOutbox({
      amqpUrl: url,
      rounds,
      messages: 3000,
      latencyMessages: 1000,
      progress: (line) => progress(`  outbox: ${line}`),
    });
    const t = results.outbox.throughput;
    const a = results.outbox.added.overDualWrite;
    progress(
      `[7/9] outbox: ${fmt(t.outbox.median)}/s through the outbox, ${fmt(t.dualWrite.median)}/s commit-then-publish, ${fmt(t.direct.median)}/s direct; added latency p50 ${a.p50.toFixed(1)} ms, p99 ${a.p99.toFixed(1)} ms`,
    );
  });

  await scenario('tracing', async () => {
    results.tracing = await measureTracing({ messages: 10_000, rounds });
    const v = results.tracing.variants;
    progress(
      `[8/9] tracing, CPU per message on the embedded broker: ${v.map((x) => `${x.name} ${x.cpuUsPerMessage.toFixed(1)} µs`).join('; ')}`,
    );
  });

  await scenario('partitions', async () => {
    results.partitions = await runPartitionBench({ url, messages: 10_000, rounds });
    const m = results.partitions.medians;
    progress(
      `[9/9] partitions: ${Object.entries(m)
        .map(([k, v]) => `${k} ${fmt(v)}/s`)
        .join(', ')}`,
    );
  });

  for (const names of leftovers.splice(0)) await cleanup(names);
  machine.loadAfter = loadavg();
  results.seconds = (Date.now() - began) / 1000;
  if (only) {
    const json = join(tmpdir(), 'tidings-bench-results.json');
    writeFileSync(json, JSON.stringify(results, null, 2));
    progress(`partial run (BENCH_ONLY): results in ${json}, docs not written`);
    return;
  }
  mkdirSync(RESULTS_DIR, { recursive: true });
  const saved = join(RESULTS_DIR, `${machine.date.replace(/[:.]/g, '-')}.json`);
  writeFileSync(saved, `${JSON.stringify(results, null, 1)}\n`);
  const report = writeReport();
  progress(
    `saved ${saved}; wrote docs/benchmarks.md and docs/benchmarks.svg from ${report.runs} saved run(s)${report.loaded ? `, ${report.loaded} of them loaded (marked as such)` : ''}`,
  );
}

function med(runs: readonly { perSecond: number }[]): number {
  return medOf(runs, 'perSecond');
}

function medOf<K extends string>(runs: readonly Record<K, number>[], key: K): number {
  const v = runs.map((r) => r[key]).sort((a, b) => a - b);
  if (v.length === 0) return Number.NaN;
  const m = v.length >> 1;
  return v.length % 2 ? v[m]! : (v[m - 1]! + v[m]!) / 2;
}

main().catch((error: unknown) => {
  process.stderr.write(`bench failed: ${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});
