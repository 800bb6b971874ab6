/**
 * The transactional outbox against direct publishing, side by side in one run, on a local
 * RabbitMQ and PostgreSQL: `npx tsx bench/outbox.ts` prints the figures (`--json`: as JSON);
 * `measureOutbox()` returns them for the benchmark report. Three variants:
 *
 * - **direct**: `service.publish(...)`, no database: the broker's and Tidings' own cost;
 * - **dual write**: what a service without an outbox does, `BEGIN; INSERT item; COMMIT` and then
 *   `service.publish(...)` (a crash between the two loses the event);
 * - **outbox**: `BEGIN; INSERT item; publish(..., { tx }); COMMIT`, and the relay, in this process,
 *   publishes it.
 *
 * Throughput: `messages` messages end to end, from the first write until the consumer has them
 * all; direct keeps `window` confirms in flight, the two others run `writers` transactions at
 * once (one message each). Latency: `latencyMessages` messages paced at `rate` a second, from the
 * start of the work (the INSERT; the publish call for direct) to the consumer's handler; for the
 * two transactional variants also the part until the COMMIT returned. "Added by the outbox" is
 * the outbox's percentile minus the dual write's (and minus direct's).
 *
 * The variants run in interleaved rounds so that other load on the machine falls on all alike;
 * each figure is the median of the rounds. The producer, the relay and the consumer (one Tidings
 * service on a quorum queue) share this process.
 *
 * Environment: AMQP_URL (default amqp://guest:guest@127.0.0.1:5672), DATABASE_URL (default
 * postgres://postgres@127.0.0.1:5432/test), BENCH_ROUNDS (default 3), BENCH_RELAY_CONCURRENCY.
 */
import { cpus, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import * as amqplib from 'amqplib';
import pg from 'pg';
import { z } from 'zod';
import { defineEvent, defineExchange } from '../src/contracts/event.js';
import { silentLogger } from '../src/logger.js';
import { createService, type Service } from '../src/runtime/service.js';
import { type OutboxRelay, PostgresOutbox } from '../src/stores/postgres.js';
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
  /** Concurrent transactions of the dual-write and outbox variants. @defaultValue 16 */
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

/** The variants, in the order they run in each round. */
export const OUTBOX_VARIANTS = ['direct', 'dualWrite', 'outbox'] as const;
/** One of {@link OUTBOX_VARIANTS}. */
export type OutboxVariant = (typeof OUTBOX_VARIANTS)[number];

/** Latency percentiles in milliseconds: medians over the rounds, and each round's. */
export interface OutboxLatency {
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
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
  readonly settings: {
    readonly rounds: number;
    readonly messages: number;
    readonly window: number;
    readonly writers: number;
    readonly latencyMessages: number;
    readonly rate: number;
    readonly relayConcurrency: number | undefined;
  };
  /** Messages per second end to end (received by the consumer), per variant. */
  readonly throughput: Readonly<Record<OutboxVariant, Summary>>;
  /** Mean rows per relay batch in the outbox's throughput runs. */
  readonly rowsPerBatch: Summary;
  /** From the start of the work to the consumer's handler, per variant. */
  readonly latency: Readonly<Record<OutboxVariant, OutboxLatency>>;
  /** Of that, the part until the COMMIT returned (the transactional variants). */
  readonly commit: Readonly<Record<'dualWrite' | 'outbox', OutboxLatency>>;
  /** The outbox's latency minus the dual write's, and minus direct's, at p50 and p99. */
  readonly added: {
    readonly overDualWrite: { readonly p50: number; readonly p99: number };
    readonly overDirect: { readonly p50: number; readonly p99: number };
  };
}

const Payload = z.object({ n: z.number().int(), note: z.string() });
const measured = (exchange: string) => defineEvent(defineExchange(exchange), 'measured', Payload);

interface Rig {
  readonly service: Service;
  readonly pool: pg.Pool;
  readonly outbox: PostgresOutbox;
  readonly items: string;
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
  const items = `${run}_items`;
  await pool.query(
    `CREATE TABLE ${items} (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, n integer, note text)`,
  );
  const name = run.replaceAll('_', '-');
  const event = measured(name);
  const received = new Map<string, number>();
  const consumer = createService({
    name: `${name}-consumer`,
    transport: transports[1]!,
    logger: silentLogger,
    prefetch: 500,
  });
  consumer.on(event, (_payload, ctx) => {
    received.set(ctx.envelope.id, performance.now());
  });
  await consumer.start();
  const service = createService({
    name: `${name}-producer`,
    transport: transports[0]!,
    logger: silentLogger,
    outbox,
    publishes: [event],
  });
  await service.start();
  return { service, pool, outbox, items, event, received, transports, consumer, relayConcurrency };
}

async function teardown(r: Rig): Promise<void> {
  await r.service.stop();
  await r.consumer.stop();
  await r.transports[0]!.deleteTopology(r.consumer.topology(), { exchanges: true });
  await r.pool.query(
    `DROP TABLE IF EXISTS ${r.outbox.table}, ${r.items}; DROP FUNCTION IF EXISTS "${r.outbox.name}_notify"()`,
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

let ids = 0;
const nextId = (variant: OutboxVariant) => `${variant}-${process.pid}-${++ids}`;

/** When each message's work started, and how long until its commit returned. */
interface Timings {
  readonly started: Map<string, number>;
  readonly commits: number[];
}

/** One message of a variant: a publish, or a transaction and a publish. */
async function once(r: Rig, variant: OutboxVariant, n: number, timings?: Timings): Promise<void> {
  const id = nextId(variant);
  const payload = { n, note: variant };
  if (variant === 'direct') {
    timings?.started.set(id, performance.now());
    await r.service.publish(r.event, payload, { id });
    return;
  }
  const client = await r.pool.connect();
  try {
    await client.query('BEGIN');
    const t0 = performance.now();
    timings?.started.set(id, t0);
    await client.query(`INSERT INTO ${r.items} (n, note) VALUES ($1, $2)`, [n, variant]);
    if (variant === 'outbox') await r.service.publish(r.event, payload, { tx: client, id });
    await client.query('COMMIT');
    timings?.commits.push(performance.now() - t0);
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {});
    throw error;
  } finally {
    client.release();
  }
  // The dual write: the event goes out after the commit, if the process is still alive.
  if (variant === 'dualWrite') await r.service.publish(r.event, payload, { id });
}

function relayOf(r: Rig, batches?: number[]): OutboxRelay {
  const relay = r.outbox.relay({
    transport: r.transports[0]!,
    logger: silentLogger,
    retentionMs: 0,
    ...(r.relayConcurrency !== undefined && { concurrency: r.relayConcurrency }),
  });
  if (batches) relay.observe('batch', (b) => void batches.push(b.claimed));
  return relay;
}

/** Messages per second end to end; for the outbox, also the mean rows per relay batch. */
async function throughput(
  r: Rig,
  variant: OutboxVariant,
  messages: number,
  window: number,
  writers: number,
): Promise<{ perSecond: number; rowsPerBatch: number }> {
  r.received.clear();
  const batches: number[] = [];
  const relay = variant === 'outbox' ? relayOf(r, batches) : undefined;
  await relay?.start();
  try {
    const started = performance.now();
    let next = 0;
    const lanes = variant === 'direct' ? window : writers;
    await Promise.all(
      Array.from({ length: lanes }, async () => {
        while (next < messages) await once(r, variant, next++);
      }),
    );
    await waitUntil(() => r.received.size >= messages, `${variant} deliveries`);
    const last = Math.max(...r.received.values());
    return {
      perSecond: (messages / (last - started)) * 1000,
      rowsPerBatch: batches.reduce((a, b) => a + b, 0) / Math.max(1, batches.length),
    };
  } finally {
    await relay?.stop();
  }
}

/** Latencies (sorted, ms) at a paced rate, and the commit times of the transactional variants. */
async function latency(
  r: Rig,
  variant: OutboxVariant,
  count: number,
  rate: number,
): Promise<{ latencies: number[]; commits: number[] }> {
  r.received.clear();
  const relay = variant === 'outbox' ? relayOf(r) : undefined;
  await relay?.start();
  try {
    const timings: Timings = { started: new Map(), commits: [] };
    const began = performance.now();
    const pending: Promise<void>[] = [];
    for (let n = 0; n < count; n++) {
      const wait = began + (n * 1000) / rate - performance.now();
      if (wait > 1) await new Promise((resolve) => setTimeout(resolve, wait));
      pending.push(once(r, variant, n, timings));
    }
    await Promise.all(pending);
    await waitUntil(() => r.received.size >= count, `${variant} deliveries`);
    const latencies: number[] = [];
    for (const [id, t0] of timings.started) {
      const t1 = r.received.get(id);
      if (t1 !== undefined) latencies.push(t1 - t0);
    }
    return {
      latencies: latencies.sort((a, b) => a - b),
      commits: timings.commits.sort((a, b) => a - b),
    };
  } finally {
    await relay?.stop();
  }
}

function latencyOf(rounds: readonly number[][]): OutboxLatency {
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

async function versions(r: Rig, amqpUrl: string): Promise<{ postgres: string; rabbitmq: string }> {
  const postgres = String((await r.pool.query('SHOW server_version')).rows[0]?.server_version);
  const rabbitmq = await amqplib.connect(amqpUrl).then(
    async (c) => {
      const version = String(c.connection.serverProperties?.version ?? 'unknown');
      await c.close();
      return version;
    },
    () => 'unknown',
  );
  return { postgres, rabbitmq };
}

/** Runs the outbox scenario (see the module's comment) and returns its figures. */
export async function measureOutbox(options: OutboxBenchOptions = {}): Promise<OutboxBenchResult> {
  const amqpUrl = options.amqpUrl ?? process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
  const databaseUrl =
    options.databaseUrl ?? process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
  const envConcurrency = process.env.BENCH_RELAY_CONCURRENCY;
  const settings = {
    rounds: options.rounds ?? Math.max(1, Number(process.env.BENCH_ROUNDS ?? 3)),
    messages: options.messages ?? 5000,
    window: options.window ?? 100,
    writers: options.writers ?? 16,
    latencyMessages: options.latencyMessages ?? 2000,
    rate: options.rate ?? 200,
    relayConcurrency:
      options.relayConcurrency ?? (envConcurrency ? Number(envConcurrency) : undefined),
  };
  const say = options.progress ?? ((line: string) => process.stderr.write(`${line}\n`));
  const loadBefore = loadavg();
  const r = await rig(
    amqpUrl,
    databaseUrl,
    `bench_outbox_${Date.now().toString(36)}`,
    settings.writers,
    settings.relayConcurrency,
  );
  const rates = { direct: [], dualWrite: [], outbox: [] } as Record<OutboxVariant, number[]>;
  const waits = { direct: [], dualWrite: [], outbox: [] } as Record<OutboxVariant, number[][]>;
  const commits = { dualWrite: [] as number[][], outbox: [] as number[][] };
  const rowsPerBatch: number[] = [];
  let found: { postgres: string; rabbitmq: string };
  try {
    found = await versions(r, amqpUrl);
    // Warm-up: the JIT, the connections, the queue, the tables.
    for (const variant of OUTBOX_VARIANTS) {
      await throughput(r, variant, 1000, settings.window, settings.writers);
    }
    for (let round = 1; round <= settings.rounds; round++) {
      const line: string[] = [];
      for (const variant of OUTBOX_VARIANTS) {
        const t = await throughput(
          r,
          variant,
          settings.messages,
          settings.window,
          settings.writers,
        );
        rates[variant].push(t.perSecond);
        if (variant === 'outbox') rowsPerBatch.push(t.rowsPerBatch);
        line.push(`${variant} ${t.perSecond.toFixed(0)}/s`);
      }
      for (const variant of OUTBOX_VARIANTS) {
        const l = await latency(r, variant, settings.latencyMessages, settings.rate);
        waits[variant].push(l.latencies);
        if (variant !== 'direct') commits[variant].push(l.commits);
        line.push(
          `${variant} p50 ${percentile(l.latencies, 50).toFixed(1)} p99 ${percentile(l.latencies, 99).toFixed(1)} ms`,
        );
      }
      say(`outbox bench, round ${round}/${settings.rounds}: ${line.join(', ')}`);
    }
  } finally {
    await teardown(r);
  }
  const latencies = {
    direct: latencyOf(waits.direct),
    dualWrite: latencyOf(waits.dualWrite),
    outbox: latencyOf(waits.outbox),
  };
  const minus = (a: OutboxLatency, b: OutboxLatency) => ({
    p50: a.p50 - b.p50,
    p99: a.p99 - b.p99,
  });
  return {
    machine: {
      cpu: cpus()[0]?.model ?? 'unknown',
      cores: cpus().length,
      node: process.version,
      ...found,
      date: new Date().toISOString(),
      loadBefore,
      loadAfter: loadavg(),
    },
    settings,
    throughput: {
      direct: summarize(rates.direct),
      dualWrite: summarize(rates.dualWrite),
      outbox: summarize(rates.outbox),
    },
    rowsPerBatch: summarize(rowsPerBatch),
    latency: latencies,
    commit: { dualWrite: latencyOf(commits.dualWrite), outbox: latencyOf(commits.outbox) },
    added: {
      overDualWrite: minus(latencies.outbox, latencies.dualWrite),
      overDirect: minus(latencies.outbox, latencies.direct),
    },
  };
}

/** The figures as a Markdown table and a sentence about the run. */
export function formatOutbox(result: OutboxBenchResult): string {
  const t = result.throughput;
  const l = result.latency;
  const c = result.commit;
  const n = (x: number) => x.toFixed(0);
  const ms = (x: number) => `${x.toFixed(1)} ms`;
  const signed = (x: number) => `${x >= 0 ? '+' : ''}${x.toFixed(1)} ms`;
  const rate = (s: Summary) => `${n(s.median)} (${n(s.min)}-${n(s.max)})`;
  const s = result.settings;
  const m = result.machine;
  return [
    '| variant | messages/s, median (min-max) | latency p50 | latency p99 | until COMMIT p50 / p99 |',
    '| --- | --- | --- | --- | --- |',
    `| direct publish, no database | ${rate(t.direct)} | ${ms(l.direct.p50)} | ${ms(l.direct.p99)} | |`,
    `| dual write: commit, then publish | ${rate(t.dualWrite)} | ${ms(l.dualWrite.p50)} | ${ms(l.dualWrite.p99)} | ${ms(c.dualWrite.p50)} / ${ms(c.dualWrite.p99)} |`,
    `| outbox: publish in the transaction, relay | ${rate(t.outbox)} | ${ms(l.outbox.p50)} | ${ms(l.outbox.p99)} | ${ms(c.outbox.p50)} / ${ms(c.outbox.p99)} |`,
    `| added by the outbox over the dual write | | ${signed(result.added.overDualWrite.p50)} | ${signed(result.added.overDualWrite.p99)} | |`,
    '',
    `${s.rounds} rounds of ${s.messages} messages (direct: ${s.window} in flight; the others: ${s.writers} ` +
      `transactions at once, one message each) and of ${s.latencyMessages} paced at ${s.rate}/s; ` +
      `${result.rowsPerBatch.median.toFixed(1)} rows a relay batch (relay concurrency ${s.relayConcurrency ?? 'default'}). ` +
      `${m.cores} × ${m.cpu}, Node ${m.node}, RabbitMQ ${m.rabbitmq}, PostgreSQL ${m.postgres}, ` +
      `${m.date.slice(0, 16).replace('T', ' ')} UTC, load ${m.loadBefore.map((x) => x.toFixed(1)).join(' ')} ` +
      `before and ${m.loadAfter.map((x) => x.toFixed(1)).join(' ')} after.`,
  ].join('\n');
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const result = await measureOutbox();
  if (process.argv.includes('--json')) console.log(JSON.stringify(result, null, 2));
  else console.log(formatOutbox(result));
}
