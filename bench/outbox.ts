/**
 * The transactional outbox against a direct publish, side by side in one run, on a local
 * RabbitMQ and PostgreSQL: `npx tsx bench/outbox.ts` prints the figures (and `--json` them as
 * JSON); `measureOutbox()` returns them for the benchmark report.
 *
 * - **Throughput**: `messages` messages end to end, from the first publish until the consumer
 *   has them all. Direct: `service.publish` with `window` confirms in flight. Outbox: `writers`
 *   concurrent transactions, each `BEGIN; publish(..., { tx }); COMMIT` (one message per
 *   transaction, as a service saving one entity would), and the relay in the same process.
 * - **Latency**: `latencyMessages` messages paced at `rate` per second, from the publish call to
 *   the consumer's handler. Outbox: from the `publish(..., { tx })` call, through the `COMMIT`,
 *   the relay and the broker, to the handler. Added latency is the outbox's percentile minus the
 *   direct one's.
 *
 * The variants run in interleaved rounds (direct, outbox, direct, outbox, ...) so that other load
 * on the machine falls on both alike; each figure is the median of the rounds. The producer, the
 * relay and the consumer (one Tidings service, a quorum queue) share this process.
 *
 * Environment: AMQP_URL (default amqp://guest:guest@127.0.0.1:5672), DATABASE_URL (default
 * postgres://postgres@127.0.0.1:5432/test), BENCH_ROUNDS (default 3).
 */
import { cpus, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import * as amqplib from 'amqplib';
import pg from 'pg';
import { z } from 'zod';
import { defineEvent, defineExchange } from '../src/contracts/event.js';
import { silentLogger } from '../src/runtime/logger.js';
import { createService, type Service } from '../src/runtime/service.js';
import { PostgresOutbox } from '../src/stores/postgres.js';
import { type AmqpTransport, amqpTransport } from '../src/transports/amqp/index.js';
import { percentile, type Summary, summarize } from './stats.js';

/** What {@link measureOutbox} is asked to do; every field has a default. */
export interface OutboxBenchOptions {
  readonly amqpUrl?: string;
  readonly databaseUrl?: string;
  /** @defaultValue 3 */
  readonly rounds?: number;
  /** Messages per throughput run. @defaultValue 5000 */
  readonly messages?: number;
  /** Direct publishes in flight at once. @defaultValue 100 */
  readonly window?: number;
  /** Concurrent writing transactions of the outbox variant. @defaultValue 16 */
  readonly writers?: number;
  /** Messages per latency run. @defaultValue 2000 */
  readonly latencyMessages?: number;
  /** Pace of the latency runs, messages per second. @defaultValue 200 */
  readonly rate?: number;
  /** The relay's `concurrency`. @defaultValue the relay's default */
  readonly relayConcurrency?: number | undefined;
  /** Progress lines (stderr by default). */
  readonly progress?: (line: string) => void;
}

/** One variant's throughput: the median and each round's figure. */
export interface OutboxThroughput {
  /** Messages per second, end to end (received by the consumer). */
  readonly perSecond: Summary;
}

/** One variant's latency, in milliseconds, medians over the rounds. */
export interface OutboxLatency {
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
  /** Each round's p50 and p99. */
  readonly rounds: readonly { readonly p50: number; readonly p99: number }[];
}

/** What {@link measureOutbox} measured. */
export interface OutboxBenchResult {
  readonly machine: {
    readonly cpu: string;
    readonly cores: number;
    readonly node: string;
    readonly postgres: string;
    readonly rabbitmq: string;
    readonly date: string;
    readonly loadBefore: readonly number[];
    readonly loadAfter: readonly number[];
  };
  readonly settings: Required<
    Omit<OutboxBenchOptions, 'amqpUrl' | 'databaseUrl' | 'progress' | 'relayConcurrency'>
  > & { readonly relayConcurrency: number | undefined };
  readonly throughput: {
    readonly direct: OutboxThroughput;
    readonly outbox: OutboxThroughput & {
      /** Committed transactions per second (each wrote one message). */
      readonly writesPerSecond: Summary;
      /** Mean rows per relay batch. */
      readonly rowsPerBatch: Summary;
    };
  };
  readonly latency: {
    readonly direct: OutboxLatency;
    readonly outbox: OutboxLatency;
    /** Of the outbox's latency, the part until the writer's `COMMIT` returned. */
    readonly commit: OutboxLatency;
    /** Outbox minus direct, at p50 and p99 (medians over the rounds). */
    readonly added: { readonly p50: number; readonly p99: number };
  };
}

const Payload = z.object({ n: z.number().int(), note: z.string() });
const measured = (exchange: string) => defineEvent(defineExchange(exchange), 'measured', Payload);

interface Rig {
  readonly service: Service;
  readonly pool: pg.Pool;
  readonly outbox: PostgresOutbox;
  readonly event: ReturnType<typeof measured>;
  /** Receive time (performance.now()) by message id. */
  readonly received: Map<string, number>;
  readonly transports: AmqpTransport[];
  readonly consumer: Service;
  readonly relayConcurrency: number | undefined;
}

async function rig(
  amqpUrl: string,
  databaseUrl: string,
  run: string,
  writers: number,
  relayConcurrency: number | undefined,
): Promise<Rig> {
  const transports = [0, 1].map((i) =>
    amqpTransport({
      url: amqpUrl,
      connectionName: `bench outbox ${i ? 'consumer' : 'producer'}`,
      logger: silentLogger,
      maxBufferedPublishes: 100_000,
    }),
  );
  const pool = new pg.Pool({ connectionString: databaseUrl, max: writers + 4 });
  pool.on('error', () => {});
  const outbox = new PostgresOutbox({ pool, table: `${run}_outbox` });
  await outbox.migrate();
  const event = measured(run.replaceAll('_', '-'));
  const received = new Map<string, number>();
  const consumer = createService({
    name: `${run.replaceAll('_', '-')}-consumer`,
    transport: transports[1]!,
    logger: silentLogger,
    prefetch: 500,
  });
  consumer.on(event, (_payload, ctx) => {
    received.set(ctx.envelope.id, performance.now());
  });
  await consumer.start();
  const service = createService({
    name: `${run.replaceAll('_', '-')}-producer`,
    transport: transports[0]!,
    logger: silentLogger,
    outbox,
    publishes: [event],
  });
  await service.start();
  return { service, pool, outbox, event, received, transports, consumer, relayConcurrency };
}

async function teardown(r: Rig): Promise<void> {
  await r.service.stop();
  await r.consumer.stop();
  await r.transports[0]!.deleteTopology(r.consumer.topology(), { exchanges: true });
  await r.pool.query(
    `DROP TABLE IF EXISTS ${r.outbox.table}; DROP FUNCTION IF EXISTS "${r.outbox.name}_notify"()`,
  );
  await Promise.all(r.transports.map((t) => t.close()));
  await r.pool.end();
}

async function waitUntil(check: () => boolean, what: string, timeoutMs = 300_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** One transaction that writes one message to the outbox; resolves with its id. */
async function writeOne(
  r: Rig,
  n: number,
  sent?: Map<string, number>,
  commits?: number[],
): Promise<string> {
  const client = await r.pool.connect();
  try {
    await client.query('BEGIN');
    // The transaction's own work would come here; the publish is its last statement.
    const t0 = performance.now();
    const envelope = await r.service.publish(r.event, { n, note: 'outbox' }, { tx: client });
    sent?.set(envelope.id, t0);
    await client.query('COMMIT');
    commits?.push(performance.now() - t0);
    return envelope.id;
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {});
    throw error;
  } finally {
    client.release();
  }
}

async function throughputDirect(r: Rig, messages: number, window: number): Promise<number> {
  r.received.clear();
  const started = performance.now();
  const inFlight = new Set<Promise<unknown>>();
  const ids: string[] = [];
  for (let n = 0; n < messages; n++) {
    const p = r.service.publish(r.event, { n, note: 'direct' }).then((e) => void ids.push(e.id));
    inFlight.add(p);
    void p.finally(() => inFlight.delete(p));
    if (inFlight.size >= window) await Promise.race(inFlight);
  }
  await Promise.all(inFlight);
  await waitUntil(() => r.received.size >= messages, 'direct deliveries');
  const last = Math.max(...r.received.values());
  return (messages / (last - started)) * 1000;
}

async function throughputOutbox(
  r: Rig,
  messages: number,
  writers: number,
): Promise<{ perSecond: number; writesPerSecond: number; rowsPerBatch: number }> {
  r.received.clear();
  const relay = r.outbox.relay({
    transport: r.transports[0]!,
    logger: silentLogger,
    retentionMs: 0,
    ...(r.relayConcurrency !== undefined && { concurrency: r.relayConcurrency }),
  });
  const batches: number[] = [];
  relay.observe('batch', (b) => void batches.push(b.claimed));
  await relay.start();
  try {
    const started = performance.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: writers }, async () => {
        while (next < messages) await writeOne(r, next++);
      }),
    );
    const written = performance.now();
    await waitUntil(() => r.received.size >= messages, 'outbox deliveries');
    const last = Math.max(...r.received.values());
    return {
      perSecond: (messages / (last - started)) * 1000,
      writesPerSecond: (messages / (written - started)) * 1000,
      rowsPerBatch: batches.reduce((a, b) => a + b, 0) / Math.max(1, batches.length),
    };
  } finally {
    await relay.stop();
  }
}

async function paced(
  count: number,
  rate: number,
  send: (n: number) => Promise<unknown>,
): Promise<void> {
  const started = performance.now();
  const pending: Promise<unknown>[] = [];
  for (let n = 0; n < count; n++) {
    const due = started + (n * 1000) / rate;
    const wait = due - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    pending.push(send(n));
  }
  await Promise.all(pending);
}

function latencies(sent: Map<string, number>, received: Map<string, number>): number[] {
  const out: number[] = [];
  for (const [id, t0] of sent) {
    const t1 = received.get(id);
    if (t1 !== undefined) out.push(t1 - t0);
  }
  return out.sort((a, b) => a - b);
}

async function latencyDirect(r: Rig, count: number, rate: number): Promise<number[]> {
  r.received.clear();
  const sent = new Map<string, number>();
  await paced(count, rate, async (n) => {
    const t0 = performance.now();
    const id = `direct-${n}-${Math.random().toString(36).slice(2)}`;
    sent.set(id, t0);
    await r.service.publish(r.event, { n, note: 'direct' }, { id });
  });
  await waitUntil(() => r.received.size >= count, 'direct deliveries');
  return latencies(sent, r.received);
}

async function latencyOutbox(
  r: Rig,
  count: number,
  rate: number,
): Promise<{ latencies: number[]; commits: number[] }> {
  r.received.clear();
  const relay = r.outbox.relay({
    transport: r.transports[0]!,
    logger: silentLogger,
    retentionMs: 0,
    ...(r.relayConcurrency !== undefined && { concurrency: r.relayConcurrency }),
  });
  await relay.start();
  try {
    const sent = new Map<string, number>();
    const commits: number[] = [];
    await paced(count, rate, (n) => writeOne(r, n, sent, commits));
    await waitUntil(() => r.received.size >= count, 'outbox deliveries');
    return { latencies: latencies(sent, r.received), commits: commits.sort((a, b) => a - b) };
  } finally {
    await relay.stop();
  }
}

function latencyOf(rounds: number[][]): OutboxLatency {
  const each = rounds.map((sorted) => ({
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
  }));
  return {
    p50: summarize(each.map((e) => e.p50)).median,
    p99: summarize(each.map((e) => e.p99)).median,
    max: Math.max(...rounds.map((s) => s[s.length - 1] ?? 0)),
    rounds: each,
  };
}

/** Runs the outbox scenario (see the module's comment) and returns its figures. */
export async function measureOutbox(options: OutboxBenchOptions = {}): Promise<OutboxBenchResult> {
  const amqpUrl = options.amqpUrl ?? process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
  const databaseUrl =
    options.databaseUrl ?? process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
  const settings = {
    rounds: options.rounds ?? Math.max(1, Number(process.env.BENCH_ROUNDS ?? 3)),
    messages: options.messages ?? 5000,
    window: options.window ?? 100,
    writers: options.writers ?? 16,
    latencyMessages: options.latencyMessages ?? 2000,
    rate: options.rate ?? 200,
    relayConcurrency:
      options.relayConcurrency ??
      (process.env.BENCH_RELAY_CONCURRENCY
        ? Number(process.env.BENCH_RELAY_CONCURRENCY)
        : undefined),
  };
  const say = options.progress ?? ((line: string) => process.stderr.write(`${line}\n`));
  const loadBefore = loadavg();
  const run = `bench_outbox_${Date.now().toString(36)}`;
  const r = await rig(amqpUrl, databaseUrl, run, settings.writers, settings.relayConcurrency);
  const versions = await r.pool.query(`SHOW server_version`);
  const rabbitmq = await amqplib.connect(amqpUrl).then(
    async (c) => {
      const version = String(c.connection.serverProperties?.version ?? 'unknown');
      await c.close();
      return version;
    },
    () => 'unknown',
  );
  const throughput = {
    direct: [] as number[],
    outbox: [] as number[],
    writes: [] as number[],
    rows: [] as number[],
  };
  const latency = { direct: [] as number[][], outbox: [] as number[][], commit: [] as number[][] };
  try {
    // Warm-up: the JIT, the connections, the queue.
    await throughputDirect(r, 1000, settings.window);
    await throughputOutbox(r, 1000, settings.writers);
    for (let round = 1; round <= settings.rounds; round++) {
      throughput.direct.push(await throughputDirect(r, settings.messages, settings.window));
      const o = await throughputOutbox(r, settings.messages, settings.writers);
      throughput.outbox.push(o.perSecond);
      throughput.writes.push(o.writesPerSecond);
      throughput.rows.push(o.rowsPerBatch);
      say(
        `outbox bench, round ${round}: direct ${throughput.direct.at(-1)!.toFixed(0)} msg/s, outbox ${o.perSecond.toFixed(0)} msg/s (${o.writesPerSecond.toFixed(0)} commits/s, ${o.rowsPerBatch.toFixed(1)} rows a batch)`,
      );
      latency.direct.push(await latencyDirect(r, settings.latencyMessages, settings.rate));
      const outboxRun = await latencyOutbox(r, settings.latencyMessages, settings.rate);
      latency.outbox.push(outboxRun.latencies);
      latency.commit.push(outboxRun.commits);
      const d = latency.direct.at(-1)!;
      const o2 = outboxRun.latencies;
      const c = outboxRun.commits;
      say(
        `outbox bench, round ${round}: latency at ${settings.rate}/s, direct p50 ${percentile(d, 50).toFixed(1)} p99 ${percentile(d, 99).toFixed(1)} ms, outbox p50 ${percentile(o2, 50).toFixed(1)} p99 ${percentile(o2, 99).toFixed(1)} ms (until COMMIT returned: p50 ${percentile(c, 50).toFixed(1)} p99 ${percentile(c, 99).toFixed(1)} ms)`,
      );
    }
  } finally {
    await teardown(r);
  }
  const direct = latencyOf(latency.direct);
  const outbox = latencyOf(latency.outbox);
  return {
    machine: {
      cpu: cpus()[0]?.model ?? 'unknown',
      cores: cpus().length,
      node: process.version,
      postgres: String(versions.rows[0]?.server_version ?? 'unknown'),
      rabbitmq,
      date: new Date().toISOString(),
      loadBefore,
      loadAfter: loadavg(),
    },
    settings,
    throughput: {
      direct: { perSecond: summarize(throughput.direct) },
      outbox: {
        perSecond: summarize(throughput.outbox),
        writesPerSecond: summarize(throughput.writes),
        rowsPerBatch: summarize(throughput.rows),
      },
    },
    latency: {
      direct,
      outbox,
      commit: latencyOf(latency.commit),
      added: { p50: outbox.p50 - direct.p50, p99: outbox.p99 - direct.p99 },
    },
  };
}

/** The figures as a Markdown table row set, for the report and for the terminal. */
export function formatOutbox(result: OutboxBenchResult): string {
  const t = result.throughput;
  const l = result.latency;
  const n = (x: number) => x.toFixed(0);
  const ms = (x: number) => x.toFixed(1);
  return [
    '| variant | messages/s (median of rounds, min-max) | latency p50 | latency p99 |',
    '| --- | --- | --- | --- |',
    `| direct publish | ${n(t.direct.perSecond.median)} (${n(t.direct.perSecond.min)}-${n(t.direct.perSecond.max)}) | ${ms(l.direct.p50)} ms | ${ms(l.direct.p99)} ms |`,
    `| through the outbox | ${n(t.outbox.perSecond.median)} (${n(t.outbox.perSecond.min)}-${n(t.outbox.perSecond.max)}) | ${ms(l.outbox.p50)} ms | ${ms(l.outbox.p99)} ms |`,
    `| added by the outbox | | +${ms(l.added.p50)} ms | +${ms(l.added.p99)} ms |`,
    `| of the outbox's latency, until COMMIT returned | | ${ms(l.commit.p50)} ms | ${ms(l.commit.p99)} ms |`,
    '',
    `Outbox writes: ${n(t.outbox.writesPerSecond.median)} commits/s with ${result.settings.writers} writers; ` +
      `${t.outbox.rowsPerBatch.median.toFixed(1)} rows a relay batch (relay concurrency ${result.settings.relayConcurrency ?? 'default'}). Latency at ${result.settings.rate} messages/s, ` +
      `${result.settings.latencyMessages} a round; ${result.settings.rounds} rounds of ${result.settings.messages} messages. ` +
      `${result.machine.cores} × ${result.machine.cpu}, Node ${result.machine.node}, RabbitMQ ${result.machine.rabbitmq}, PostgreSQL ${result.machine.postgres}, ` +
      `load ${result.machine.loadBefore.map((x) => x.toFixed(1)).join(' ')} before and ${result.machine.loadAfter.map((x) => x.toFixed(1)).join(' ')} after.`,
  ].join('\n');
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const result = await measureOutbox();
  if (process.argv.includes('--json')) console.log(JSON.stringify(result, null, 2));
  else console.log(formatOutbox(result));
}
