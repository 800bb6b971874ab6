/**
 * Partitioned subscriptions on RabbitMQ: end-to-end throughput of one handler on one plain queue
 * beside the same handler spread over 1, 2 and 4 partitions, measured side by side in one run,
 * in interleaved rounds, with the machine's load average before and after each measurement.
 * Standalone: `npx tsx bench/partitions.ts` prints the results as JSON (and a table on stderr);
 * `runPartitionBench()` returns them for the report.
 *
 * Environment: AMQP_URL (default amqp://guest:guest@127.0.0.1:5672), BENCH_MESSAGES (per
 * measurement, default 20000), BENCH_ROUNDS (default 3), BENCH_QUEUE_TYPE (quorum or classic,
 * default quorum), BENCH_ROUTING (set: also measure the routing of the partitioned topologies alone,
 * the consistent-hash one when the plugin is enabled).
 */
import { cpus, loadavg } from 'node:os';
import { pathToFileURL } from 'node:url';
import type { StandardSchemaV1 } from '@standard-schema/spec';
import * as amqplib from 'amqplib';
import { bucketOf, partitionOfBucket } from '../src/contracts/key.js';
import { createService, defineEvent, defineExchange, silentLogger } from '../src/index.js';
import { type AmqpTransport, amqpTransport } from '../src/transports/amqp/index.js';

/** One measured scenario. */
export interface PartitionRun {
  /** `plain` (one queue, the handler's concurrency at its prefetch) or `partitions-<n>`. */
  readonly scenario: string;
  readonly partitions: number | undefined;
  readonly round: number;
  readonly messages: number;
  /** From the first publish to the last message handled. */
  readonly seconds: number;
  readonly messagesPerSecond: number;
  /** The 1-minute load average just before and just after. */
  readonly loadBefore: number;
  readonly loadAfter: number;
  /** Whether every key's messages were handled in publish order. */
  readonly inOrder: boolean;
}

/** What {@link runPartitionBench} measured, and on what. */
export interface PartitionBenchResult {
  readonly url: string;
  readonly queueType: 'quorum' | 'classic';
  readonly cores: number;
  readonly cpu: string;
  readonly keys: number;
  readonly prefetch: number;
  readonly runs: readonly PartitionRun[];
  /** Median messages per second of each scenario over the rounds. */
  readonly medians: Readonly<Record<string, number>>;
  /**
   * The broker's routing alone (raw amqplib, confirmed persistent publishes, nothing consumed):
   * a topic exchange to one queue, beside the two partitioned topologies; `undefined` when
   * BENCH_ROUTING is unset.
   */
  readonly routing?: RoutingBench | undefined;
}

/** The routing measurement of {@link runRoutingBench}. */
export interface RoutingBench {
  readonly runs: readonly RoutingRun[];
  /** Median publishes per second of each topology. */
  readonly medians: Readonly<Record<string, number>>;
  /** Where 100 messages without a key header went, per partition queue, per topology. */
  readonly unkeyed: Readonly<Record<string, readonly number[]>>;
  /** Why the consistent-hash topology was not measured, when it was not. */
  readonly skipped?: string | undefined;
}

/** One routing measurement. */
export interface RoutingRun {
  /** `topic-queue`, `headers-64-buckets` or `consistent-hash`. */
  readonly topology: string;
  readonly round: number;
  readonly messages: number;
  readonly messagesPerSecond: number;
  readonly loadBefore: number;
  readonly loadAfter: number;
}

/** Options of {@link runPartitionBench}; each defaults to its environment variable. */
export interface PartitionBenchOptions {
  readonly url?: string;
  readonly messages?: number;
  readonly rounds?: number;
  readonly queueType?: 'quorum' | 'classic';
}

interface Reading {
  customer: string;
  seq: number;
}

const schema: StandardSchemaV1<Reading, Reading> = {
  '~standard': {
    version: 1,
    vendor: 'bench',
    validate: (value) => ({ value: value as Reading }),
  },
};

const KEYS = 64;
const PREFETCH = 100;
const SCENARIOS: readonly (number | undefined)[] = [undefined, 1, 2, 4];

/** Runs every scenario `rounds` times, interleaved, on fresh queues; deletes them afterwards. */
export async function runPartitionBench(
  options: PartitionBenchOptions = {},
): Promise<PartitionBenchResult> {
  const url = options.url ?? process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
  const messages = options.messages ?? Number(process.env.BENCH_MESSAGES ?? 20_000);
  const rounds = options.rounds ?? Number(process.env.BENCH_ROUNDS ?? 3);
  const queueType =
    options.queueType ?? (process.env.BENCH_QUEUE_TYPE === 'classic' ? 'classic' : 'quorum');
  const runs: PartitionRun[] = [];
  for (let round = 1; round <= rounds; round++) {
    for (const partitions of SCENARIOS) {
      const run = await measure(url, queueType, partitions, messages, round);
      runs.push(run);
      process.stderr.write(
        `round ${round} ${run.scenario.padEnd(13)} ${Math.round(run.messagesPerSecond)
          .toString()
          .padStart(
            6,
          )} msg/s  load ${run.loadBefore.toFixed(2)} -> ${run.loadAfter.toFixed(2)}${run.inOrder ? '' : '  OUT OF ORDER'}\n`,
      );
    }
  }
  const medians = mediansOf(runs.map((r) => [r.scenario, r.messagesPerSecond]));
  const routing = process.env.BENCH_ROUTING
    ? await runRoutingBench(url, queueType, messages, rounds)
    : undefined;
  return {
    routing,
    url: url.replace(/\/\/([^:/@]*):[^@]*@/, '//$1:***@'),
    queueType,
    cores: cpus().length,
    cpu: cpus()[0]?.model ?? 'unknown',
    keys: KEYS,
    prefetch: PREFETCH,
    runs,
    medians,
  };
}

function mediansOf(pairs: readonly (readonly [string, number])[]): Record<string, number> {
  const medians: Record<string, number> = {};
  for (const name of new Set(pairs.map(([n]) => n))) {
    const rates = pairs
      .filter(([n]) => n === name)
      .map(([, r]) => r)
      .sort((a, b) => a - b);
    medians[name] = rates[Math.floor(rates.length / 2)]!;
  }
  return medians;
}

type RoutingTopology = 'topic-queue' | 'headers-64-buckets' | 'consistent-hash';

/**
 * What each partitioned topology costs the broker to route, apart from everything else: raw
 * amqplib publishes (persistent, confirmed, 1,000 in flight) with a key and its bucket, through
 * a topic exchange bound exchange-to-exchange to (B) the headers exchange Tidings declares (64
 * bucket bindings, an alternate exchange) or (A) an `x-consistent-hash` exchange hashing the
 * `tidings-key` header (the plugin must be enabled), both over 4 queues; and a topic exchange
 * straight to one queue as the baseline. Also records where messages without the header go.
 */
export async function runRoutingBench(
  url: string,
  queueType: 'quorum' | 'classic',
  messages: number,
  rounds: number,
): Promise<RoutingBench> {
  const connection = await amqplib.connect(url);
  let skipped: string | undefined;
  const topologies: RoutingTopology[] = ['topic-queue', 'headers-64-buckets', 'consistent-hash'];
  {
    const probe = await connection.createChannel();
    probe.on('error', () => {});
    const name = `bench-probe-${process.pid}`;
    try {
      await probe.assertExchange(name, 'x-consistent-hash', { durable: false, autoDelete: true });
      await probe.deleteExchange(name);
      await probe.close();
    } catch (error) {
      skipped = `the x-consistent-hash exchange type is not available (${(error as Error).message.split('\n')[0]})`;
      topologies.pop();
    }
  }
  const runs: RoutingRun[] = [];
  const unkeyed: Record<string, number[]> = {};
  try {
    for (let round = 1; round <= rounds; round++) {
      for (const topology of topologies) {
        const run = await routeOnce(connection, queueType, topology, messages, round, unkeyed);
        runs.push(run);
        process.stderr.write(
          `round ${round} routing ${topology.padEnd(19)} ${Math.round(run.messagesPerSecond)
            .toString()
            .padStart(
              6,
            )} msg/s  load ${run.loadBefore.toFixed(2)} -> ${run.loadAfter.toFixed(2)}\n`,
        );
      }
    }
  } finally {
    await connection.close();
  }
  return {
    runs,
    medians: mediansOf(runs.map((r) => [r.topology, r.messagesPerSecond])),
    unkeyed,
    skipped,
  };
}

async function routeOnce(
  connection: amqplib.ChannelModel,
  queueType: 'quorum' | 'classic',
  topology: RoutingTopology,
  messages: number,
  round: number,
  unkeyed: Record<string, number[]>,
): Promise<RoutingRun> {
  const tag = `bench-route-${process.pid}-${Date.now().toString(36)}`;
  const admin = await connection.createChannel();
  const queueArgs = { 'x-queue-type': queueType };
  const queues =
    topology === 'topic-queue' ? [`${tag}.q`] : [0, 1, 2, 3].map((i) => `${tag}.p${i}`);
  for (const q of queues) await admin.assertQueue(q, { durable: true, arguments: queueArgs });
  await admin.assertExchange(tag, 'topic', { durable: true });
  if (topology === 'topic-queue') {
    await admin.bindQueue(queues[0]!, tag, 'r.*.e');
  } else if (topology === 'headers-64-buckets') {
    const split = `${tag}.partition.4`;
    const fallback = `${tag}.unkeyed`;
    await admin.assertExchange(fallback, 'fanout', { durable: true });
    await admin.bindQueue(queues[0]!, fallback, '');
    await admin.assertExchange(split, 'headers', {
      durable: true,
      arguments: { 'alternate-exchange': fallback },
    });

    for (let b = 0; b < 64; b++) {
      await admin.bindQueue(queues[partitionOfBucket(b, 4)]!, split, '', {
        'x-match': 'all',
        'tidings-bucket': String(b),
      });
    }
    await admin.bindExchange(split, tag, 'r.*.e');
  } else {
    const ring = `${tag}.hash`;
    await admin.assertExchange(ring, 'x-consistent-hash', {
      durable: true,
      arguments: { 'hash-header': 'tidings-key' },
    });
    for (const q of queues) await admin.bindQueue(q, ring, '1');
    await admin.bindExchange(ring, tag, 'r.*.e');
  }
  const channel = await connection.createConfirmChannel();
  const loadBefore = loadavg()[0]!;
  const started = performance.now();
  const body = Buffer.from('{"customer":"c1","seq":1}');
  const inFlight = new Set<Promise<void>>();
  for (let i = 0; i < messages; i++) {
    const key = `c${i % KEYS}`;
    const p = new Promise<void>((resolve, reject) => {
      channel.publish(
        tag,
        'r.v1.e',
        body,
        {
          persistent: true,
          headers: { 'tidings-key': key, 'tidings-bucket': String(bucketOf(key)) },
        },
        (error) => (error ? reject(error) : resolve()),
      );
    });
    inFlight.add(p);
    void p.finally(() => inFlight.delete(p));
    if (inFlight.size >= 1000) await Promise.race(inFlight);
  }
  await Promise.all(inFlight);
  const seconds = (performance.now() - started) / 1000;
  const loadAfter = loadavg()[0]!;
  if (round === 1 && topology !== 'topic-queue') {
    const before = await Promise.all(queues.map((q) => admin.checkQueue(q)));
    const sent: Promise<void>[] = [];
    for (let i = 0; i < 100; i++) {
      sent.push(
        new Promise<void>((resolve, reject) => {
          channel.publish(tag, 'r.v1.e', body, { persistent: true, headers: {} }, (error) =>
            error ? reject(error) : resolve(),
          );
        }),
      );
    }
    await Promise.all(sent);
    const after = await Promise.all(queues.map((q) => admin.checkQueue(q)));
    unkeyed[topology] = after.map((a, i) => a.messageCount - before[i]!.messageCount);
  }
  await channel.close();
  for (const q of queues) await admin.deleteQueue(q);
  for (const ex of [tag, `${tag}.partition.4`, `${tag}.unkeyed`, `${tag}.hash`]) {
    await admin.deleteExchange(ex);
  }
  await admin.close();
  return {
    topology,
    round,
    messages,
    messagesPerSecond: messages / seconds,
    loadBefore,
    loadAfter,
  };
}

async function measure(
  url: string,
  queueType: 'quorum' | 'classic',
  partitions: number | undefined,
  messages: number,
  round: number,
): Promise<PartitionRun> {
  const tag = `bench-part-${process.pid}-${Date.now().toString(36)}`;
  const exchange = defineExchange(tag);
  const event = defineEvent(exchange, 'reading', schema, { key: (r) => r.customer });
  const open = (name: string): AmqpTransport =>
    amqpTransport({ url, queueType, connectionName: `${tag} ${name}`, logger: silentLogger });
  const consumerTransport = open('consumer');
  const producerTransport = open('producer');
  const consumer = createService({
    name: 'bench',
    transport: consumerTransport,
    prefetch: PREFETCH,
    logger: silentLogger,
  });
  const last = new Map<string, number>();
  let handled = 0;
  let inOrder = true;
  let done: () => void = () => {};
  const finished = new Promise<void>((resolve) => {
    done = resolve;
  });
  consumer.on(
    event,
    (r) => {
      if ((last.get(r.customer) ?? -1) >= r.seq) inOrder = false;
      last.set(r.customer, r.seq);
      if (++handled === messages) done();
    },
    partitions === undefined ? {} : { partitions },
  );
  await consumer.start();
  const producer = createService({
    name: 'bench-producer',
    transport: producerTransport,
    logger: silentLogger,
  });
  const loadBefore = loadavg()[0]!;
  const started = performance.now();
  const inFlight = new Set<Promise<unknown>>();
  for (let i = 0; i < messages; i++) {
    const p = producer.publish(event, { customer: `c${i % KEYS}`, seq: Math.floor(i / KEYS) });
    inFlight.add(p);
    void p.finally(() => inFlight.delete(p));
    if (inFlight.size >= 1000) await Promise.race(inFlight);
  }
  await Promise.all(inFlight);
  await finished;
  const seconds = (performance.now() - started) / 1000;
  const loadAfter = loadavg()[0]!;
  // A plain queue with concurrent handlers keeps no order; only partitions promise it.
  const ordered = partitions === undefined ? true : inOrder;
  await consumer.stop();
  await consumerTransport.deleteTopology(consumer.topology(), { exchanges: true });
  await Promise.all([consumerTransport.close(), producerTransport.close()]);
  return {
    scenario: partitions === undefined ? 'plain' : `partitions-${partitions}`,
    partitions,
    round,
    messages,
    seconds,
    messagesPerSecond: messages / seconds,
    loadBefore,
    loadAfter,
    inOrder: ordered,
  };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const result = await runPartitionBench();
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
}
