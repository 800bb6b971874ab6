/**
 * Partitioned subscriptions on RabbitMQ: end-to-end throughput of one handler on one plain queue
 * beside the same handler spread over 1, 2 and 4 partitions, measured side by side in one run,
 * in interleaved rounds, with the machine's load average before and after each measurement.
 * Standalone: `npx tsx bench/partitions.ts` prints the results as JSON (and a table on stderr);
 * `runPartitionBench()` returns them for the report.
 *
 * Environment: AMQP_URL (default amqp://guest:guest@127.0.0.1:5672), BENCH_MESSAGES (per
 * measurement, default 20000), BENCH_ROUNDS (default 3), BENCH_QUEUE_TYPE (quorum or classic,
 * default quorum).
 */
import { cpus, loadavg } from 'node:os';
import { pathToFileURL } from 'node:url';
import type { StandardSchemaV1 } from '@standard-schema/spec';
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
  const medians: Record<string, number> = {};
  for (const scenario of new Set(runs.map((r) => r.scenario))) {
    const rates = runs
      .filter((r) => r.scenario === scenario)
      .map((r) => r.messagesPerSecond)
      .sort((a, b) => a - b);
    medians[scenario] = rates[Math.floor(rates.length / 2)]!;
  }
  return {
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
