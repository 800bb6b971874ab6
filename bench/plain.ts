/**
 * `npm run bench:plain`: a second opinion on the end-to-end scenario, written the way a plain
 * outside harness would be (the kind that measured 1.03 of raw amqplib where `npm run bench`
 * measured 0.76): its own order of about 550 bytes with 3-5 lines, Tidings through its public API
 * with an ArkType schema, raw amqplib as the baseline, 3 interleaved rounds of 10,000 messages.
 *
 * Each difference between the two harnesses is a switch, so that the one that flips the verdict
 * can be found (docs/benchmarks.md, "Why two harnesses disagreed"):
 *
 * - PLAIN_PAYLOAD `plain` (default: 3-5 lines, long strings) or `bench` (the bench's 11 lines);
 * - PLAIN_WARMUP messages before the clock starts (default 0: a plain harness measures cold);
 * - PLAIN_BATCH confirms in flight (default `all`: publish 10,000 and await them all; `100` as the
 *   bench does);
 * - PLAIN_PROCESSES `1` (default: producer and consumer in one process, as one script) or `2`
 *   (each its own process, as the bench does);
 * - PLAIN_RAW_VALIDATES `1` to have raw amqplib's consumer validate with the same schema too;
 * - PLAIN_RAW_NODELAY `1` to give raw amqplib TCP no-delay (Tidings sets it; amqplib does not).
 *
 * Prints one line per round and the ratios; AMQP_URL picks the broker.
 */
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import * as amqplib from 'amqplib';
import { type } from 'arktype';
import { createService, defineEvent, defineExchange } from '../src/index.js';
import { amqpTransport } from '../src/transports/amqp/index.js';
import { order as benchOrder } from './payload.js';

const url = process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const MESSAGES = Number(process.env.PLAIN_MESSAGES ?? 10_000);
const ROUNDS = Number(process.env.PLAIN_ROUNDS ?? 3);
const payloadKind = process.env.PLAIN_PAYLOAD ?? 'plain';
const warmup = Number(process.env.PLAIN_WARMUP ?? 0);
const batch = process.env.PLAIN_BATCH === '100' ? 100 : Number.POSITIVE_INFINITY;
const processes = process.env.PLAIN_PROCESSES === '2' ? 2 : 1;
const rawValidates = process.env.PLAIN_RAW_VALIDATES === '1';
const rawNoDelay = process.env.PLAIN_RAW_NODELAY === '1';

const Line = type({
  sku: 'string',
  name: 'string',
  quantity: 'number.integer > 0',
  price: 'number >= 0',
});
const PlainOrder = type({
  orderId: 'string',
  customer: {
    name: 'string',
    email: 'string.email',
    address: { street: 'string', city: 'string', zip: 'string', country: 'string' },
  },
  lines: Line.array().atLeastLength(1),
  note: 'string',
  createdAt: 'string',
});
const BenchOrder = type({
  id: 'number.integer > 0',
  customer: { name: 'string', email: 'string.email' },
  currency: "'EUR' | 'USD' | 'GBP'",
  lines: type({ id: 'number.integer > 0', quantity: 'number.integer > 0', price: 'number >= 0' })
    .array()
    .atLeastLength(1),
});

/** The harness's own order: 3-5 lines with product names, an address and a note, ~550 bytes. */
function plainOrder(i: number) {
  const n = 3 + (i % 3);
  return {
    orderId: `ord-${String(i).padStart(8, '0')}`,
    customer: {
      name: 'Grace Hopper',
      email: 'grace.hopper@example.com',
      address: { street: '1 Harbour Road', city: 'Arlington', zip: '22201', country: 'US' },
    },
    lines: Array.from({ length: n }, (_, k) => ({
      sku: `SKU-${1000 + k}`,
      name: ['Keyboard', 'Monitor 27"', 'USB-C dock', 'Desk lamp', 'Headset'][k]!,
      quantity: 1 + (k % 2),
      price: 19.99 + k * 10,
    })),
    note: 'Leave at the reception desk, please.',
    createdAt: '2026-12-02T10:00:00.000Z',
  };
}

const makeOrder = payloadKind === 'bench' ? benchOrder : plainOrder;
const schema = payloadKind === 'bench' ? BenchOrder : PlainOrder;
const idOf = (o: unknown) => (o as { id?: number; orderId?: string }).id ?? 0;

interface Side {
  publish(i: number): Promise<unknown>;
  close(): Promise<void>;
}

async function tidingsSide(
  exchangeName: string,
  role: 'producer' | 'consumer' | 'both',
  onMessage: () => void,
) {
  const exchange = defineExchange(exchangeName);
  const placed = defineEvent(exchange, 'placed', schema);
  const silent = { debug() {}, info() {}, warn() {}, error() {} };
  const transport = amqpTransport({ url, queueType: 'classic', logger: silent });
  const service = createService({ name: 'plain', transport, prefetch: 100, publishes: [placed] });
  if (role !== 'producer') service.on(placed, () => void onMessage());
  await service.start();
  return {
    publish: (i: number) => service.publish(placed, makeOrder(i) as never),
    close: async () => {
      await service.stop();
      await transport.close();
    },
  } satisfies Side;
}

async function rawSide(
  exchange: string,
  role: 'producer' | 'consumer' | 'both',
  onMessage: () => void,
) {
  const connection = await amqplib.connect(url, rawNoDelay ? { noDelay: true } : {});
  const channel = await connection.createConfirmChannel();
  const queue = `plain.${exchange}.placed`;
  await channel.assertExchange(exchange, 'topic', { durable: true });
  await channel.assertQueue(queue, { durable: true });
  await channel.bindQueue(queue, exchange, '#');
  if (role !== 'producer') {
    const consumer = await connection.createChannel();
    await consumer.prefetch(100);
    await consumer.consume(queue, (m) => {
      if (!m) return;
      const o = JSON.parse(m.content.toString('utf8'));
      if (rawValidates && schema(o) instanceof type.errors) throw new Error('invalid order');
      idOf(o);
      onMessage();
      consumer.ack(m);
    });
  }
  return {
    publish: (i: number) =>
      new Promise<void>((resolve, reject) =>
        channel.publish(
          exchange,
          'placed',
          Buffer.from(JSON.stringify(makeOrder(i))),
          { persistent: true, contentType: 'application/json' },
          (e: unknown) => (e ? reject(e) : resolve()),
        ),
      ),
    close: async () => {
      await connection.close();
    },
  } satisfies Side;
}

async function publishAll(side: Side, from: number, count: number): Promise<void> {
  let next = from;
  const end = from + count;
  while (next < end) {
    const pending: Promise<unknown>[] = [];
    for (let i = 0; i < batch && next < end; i++) pending.push(side.publish(next++));
    await Promise.all(pending);
  }
}

type Client = 'tidings' | 'raw';
const open = (client: Client) => (client === 'tidings' ? tidingsSide : rawSide);

/** One round in one process: consumer and producer side by side. */
async function roundInProcess(client: Client, exchange: string) {
  let got = 0;
  let wake: () => void = () => {};
  const total = warmup + MESSAGES;
  const side = await open(client)(exchange, 'both', () => {
    if (++got === warmup || got === total) wake();
  });
  if (warmup > 0) {
    const warm = new Promise<void>((r) => {
      wake = r;
    });
    await publishAll(side, 1, warmup);
    await warm;
  }
  const done = new Promise<void>((r) => {
    wake = r;
  });
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await publishAll(side, warmup + 1, MESSAGES);
  await done;
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  await side.close();
  return { perSecond: MESSAGES / seconds, cpuUs: (cpu.user + cpu.system) / MESSAGES };
}

/** A child process of a two-process round: `consumer` or `producer`. */
async function child(client: Client, role: 'producer' | 'consumer', exchange: string) {
  let got = 0;
  let cpu0 = process.cpuUsage();
  const total = warmup + MESSAGES;
  const side = await open(client)(exchange, role, () => {
    got++;
    if (got === warmup) cpu0 = process.cpuUsage();
    if (got === total) {
      const c = process.cpuUsage(cpu0);
      process.send?.({
        type: 'done',
        t: performance.timeOrigin + performance.now(),
        cpuUs: (c.user + c.system) / MESSAGES,
      });
    }
  });
  if (warmup === 0) cpu0 = process.cpuUsage();
  process.send?.({ type: 'ready' });
  process.on('message', async (m: { type: string }) => {
    if (m.type === 'warm') {
      await publishAll(side, 1, warmup);
      process.send?.({ type: 'warmed' });
    }
    if (m.type === 'go') {
      const c0 = process.cpuUsage();
      const t = performance.timeOrigin + performance.now();
      await publishAll(side, warmup + 1, MESSAGES);
      const c = process.cpuUsage(c0);
      process.send?.({ type: 'done', t, cpuUs: (c.user + c.system) / MESSAGES });
    }
    if (m.type === 'exit') {
      await side.close();
      process.exit(0);
    }
  });
}

function spawnChild(client: Client, role: string, exchange: string) {
  const c = fork(fileURLToPath(import.meta.url), ['child', client, role, exchange], {
    execArgv: process.execArgv,
    stdio: 'inherit',
  });
  const next = (type: string) =>
    new Promise<{ t: number; cpuUs: number }>((resolve) => {
      const on = (m: { type: string; t: number; cpuUs: number }) => {
        if (m.type === type) {
          c.off('message', on);
          resolve(m);
        }
      };
      c.on('message', on);
    });
  return { c, next };
}

/** One round with the consumer and the producer in processes of their own. */
async function roundInTwo(client: Client, exchange: string) {
  const consumer = spawnChild(client, 'consumer', exchange);
  await consumer.next('ready');
  const producer = spawnChild(client, 'producer', exchange);
  await producer.next('ready');
  if (warmup > 0) {
    producer.c.send({ type: 'warm' });
    await producer.next('warmed');
  }
  const consumed = consumer.next('done');
  const produced = producer.next('done');
  producer.c.send({ type: 'go' });
  const [p, c] = await Promise.all([produced, consumed]);
  for (const w of [producer, consumer]) w.c.send({ type: 'exit' });
  return {
    perSecond: MESSAGES / ((c.t - p.t) / 1000),
    cpuUs: p.cpuUs + c.cpuUs,
  };
}

async function cleanup(exchange: string) {
  const c = await amqplib.connect(url);
  const ch = await c.createChannel();
  await ch.deleteQueue(`plain.${exchange}.placed`);
  await ch.deleteQueue(`plain.${exchange}.placed.dlq`).catch(() => {});
  await ch.deleteExchange(exchange);
  await c.close();
}

async function main() {
  if (process.argv[2] === 'child') {
    await child(
      process.argv[3] as Client,
      process.argv[4] as 'producer' | 'consumer',
      process.argv[5]!,
    );
    return;
  }
  const sample = JSON.stringify(makeOrder(1));
  process.stderr.write(
    `plain harness: payload ${payloadKind} (${Buffer.byteLength(sample)} bytes), warm-up ${warmup}, ${batch === Number.POSITIVE_INFINITY ? 'all' : batch} confirms in flight, ${processes} process(es), raw validates: ${rawValidates}, raw no-delay: ${rawNoDelay}\n`,
  );
  const results: Record<Client, { perSecond: number; cpuUs: number }[]> = { tidings: [], raw: [] };
  const run = `plain${Date.now().toString(36)}`;
  let n = 0;
  for (let round = 1; round <= ROUNDS; round++) {
    for (const client of ['tidings', 'raw'] as const) {
      const exchange = `${run}-${++n}`;
      // The queue exists before the clock starts (Tidings declares its own in start()).
      const r =
        processes === 2
          ? await roundInTwo(client, exchange)
          : await roundInProcess(client, exchange);
      await cleanup(exchange).catch(() => {});
      results[client].push(r);
      process.stderr.write(
        `round ${round} ${client}: ${Math.round(r.perSecond)}/s, ${r.cpuUs.toFixed(1)} µs CPU/msg\n`,
      );
    }
  }
  const median = (v: number[]) => [...v].sort((a, b) => a - b)[v.length >> 1]!;
  const ratio = (k: 'perSecond' | 'cpuUs') =>
    median(results.tidings.map((r) => r[k])) / median(results.raw.map((r) => r[k]));
  process.stdout.write(
    `${JSON.stringify({ payload: payloadKind, warmup, batch: Number.isFinite(batch) ? batch : 'all', processes, rawValidates, rawNoDelay, throughputRatio: ratio('perSecond'), cpuRatio: ratio('cpuUs'), results })}\n`,
  );
}

main().catch((e: unknown) => {
  process.stderr.write(`plain harness failed: ${e instanceof Error ? e.stack : String(e)}\n`);
  process.exit(1);
});
