import { afterEach, describe, expect, it } from 'vitest';
import { defineEvent, defineExchange } from '../contracts/event.js';
import { bucketOf, bucketsOfPartition, KEY_BUCKETS, partitionOfKey } from '../contracts/key.js';
import { HEADERS, type OutgoingMessage } from '../envelope/envelope.js';
import { uuidv7 } from '../envelope/id.js';
import { UnsupportedBindingError } from '../errors.js';
import { silentLogger } from '../logger.js';
import { createService, type Service } from '../runtime/service.js';
import {
  type Delivery,
  deadLetterQueueName,
  partitionQueueName,
  type Topology,
  type Transport,
  type TransportFeatures,
} from '../transports/transport.js';
import { uniqueName } from './broker.js';
import { testKeyedSchema } from './schema.js';

/** How the partitions suite opens connections (the conformance suite's options). */
export interface PartitionSuiteOptions {
  readonly create: () => Transport | Promise<Transport>;
  readonly features: TransportFeatures;
  readonly timeoutMs?: number;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function waitFor(check: () => boolean, what: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline)
      throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(5);
  }
}

/**
 * Partitioned queues (`QueueSpec.partitions`), for transports whose features say `partitions`:
 * routing by bucket, the unkeyed fallback, one active consumer per partition, the shared
 * dead-letter queue, changing the count without duplicates; and on top, a partitioned handler
 * keeping each key in order through retries and a replica that stops mid-stream. Called by
 * `describeTransportConformance` when the features say `partitions`.
 */
export function describePartitionConformance(name: string, options: PartitionSuiteOptions): void {
  const timeoutMs = Math.max(options.timeoutMs ?? 10_000, 20_000);

  describe(`partitions conformance: ${name}`, () => {
    const opened: Transport[] = [];
    const topologies: Topology[] = [];
    const services: Service[] = [];

    async function open(): Promise<Transport> {
      const t = await options.create();
      opened.push(t);
      return t;
    }

    async function declare(t: Transport, topology: Topology): Promise<void> {
      topologies.push(topology);
      await t.declare(topology);
    }

    afterEach(async () => {
      for (const s of services.splice(0)) await s.stop();
      const [admin, ...others] = opened.splice(0);
      for (const t of others) await t.close();
      if (admin) {
        for (const topology of topologies.splice(0)) {
          await admin.deleteTopology(topology, { exchanges: true }).catch(() => {});
        }
        await admin.close();
      }
    });

    function message(exchange: string, routingKey: string, body: string, bucket?: number) {
      const headers = bucket === undefined ? {} : { [HEADERS.bucket]: String(bucket) };
      return {
        exchange,
        routingKey,
        body: Buffer.from(body),
        properties: { messageId: uuidv7(), headers },
      } satisfies OutgoingMessage;
    }

    async function collect(t: Transport, queue: string, prefetch = 100) {
      const got: Delivery[] = [];
      const consumer = await t.consume(queue, { prefetch }, (d) => {
        got.push(d);
        d.ack().catch(() => {});
      });
      return { got, consumer, bodies: () => got.map((d) => d.message.body.toString()) };
    }

    it('routes each bucket to its partition, messages without one to partition 0, and leaves other queues their copy', async () => {
      const t = await open();
      const exchange = uniqueName('ex');
      const queue = `${exchange}.part`;
      const plain = `${exchange}.plain`;
      await declare(t, {
        exchanges: [exchange],
        queues: [
          { name: plain, bindings: [{ exchange, pattern: '#' }] },
          { name: queue, bindings: [{ exchange, pattern: 'order.*.submit' }], partitions: 4 },
        ],
      });
      const parts = await Promise.all(
        [0, 1, 2, 3].map((i) => collect(t, partitionQueueName(queue, i))),
      );
      const other = await collect(t, plain);
      for (let b = 0; b < KEY_BUCKETS; b++) {
        expect(await t.publish(message(exchange, 'order.v1.submit', String(b), b))).toEqual({
          routed: true,
        });
      }
      for (const body of ['u1', 'u2', 'u3']) {
        await t.publish(message(exchange, 'order.v2.submit', body));
      }
      // Matches the plain queue's pattern only: no partition gets it.
      await t.publish(message(exchange, 'order.v1.cancel', 'cancel', 5));
      const total = () => parts.reduce((n, p) => n + p.got.length, 0);
      await waitFor(() => total() === 67 && other.got.length === 68, 'every message', timeoutMs);
      await sleep(100);
      parts.forEach((p, i) => {
        const expected = bucketsOfPartition(i, 4).map(String);
        if (i === 0) expected.push('u1', 'u2', 'u3');
        expect({ partition: i, bodies: p.bodies() }).toEqual({ partition: i, bodies: expected });
      });
      expect(other.got).toHaveLength(68);
    });

    it('gives a partition to one consumer at a time; the next takes over, with what was unsettled', async () => {
      const t1 = await open();
      const t2 = await open();
      const exchange = uniqueName('ex');
      const queue = `${exchange}.part`;
      await declare(t1, {
        exchanges: [exchange],
        queues: [{ name: queue, bindings: [{ exchange, pattern: '#' }], partitions: 1 }],
      });
      const p0 = partitionQueueName(queue, 0);
      const held: Delivery[] = [];
      await t1.consume(p0, { prefetch: 10 }, (d) => held.push(d));
      const standby = await collect(t2, p0);
      for (let i = 0; i < 5; i++) await t1.publish(message(exchange, 'k', String(i), 1));
      await waitFor(() => held.length === 5, 'the active consumer to hold 5', timeoutMs);
      await sleep(200);
      expect(standby.got).toHaveLength(0);
      await held[0]!.ack();
      await held[1]!.ack();
      await t1.close();
      for (let i = 5; i < 8; i++) await t2.publish(message(exchange, 'k', String(i), 1));
      await waitFor(() => standby.got.length === 6, 'the standby to take over', timeoutMs);
      expect(standby.bodies().slice(0, 3).sort()).toEqual(['2', '3', '4']);
      expect(standby.bodies().slice(3)).toEqual(['5', '6', '7']);
      expect(standby.got.slice(0, 3).every((d) => d.message.redelivered)).toBe(true);
    });

    it("dead-letters a partition's message into the partitioned queue's one dead-letter queue", async () => {
      const t = await open();
      const exchange = uniqueName('ex');
      const queue = `${exchange}.part`;
      await declare(t, {
        exchanges: [exchange],
        queues: [{ name: queue, bindings: [{ exchange, pattern: '#' }], partitions: 2 }],
      });
      const bucket = bucketsOfPartition(1, 2)[0]!;
      await t.consume(partitionQueueName(queue, 1), { prefetch: 1 }, (d) => {
        d.deadLetter({ [HEADERS.deadReason]: 'handler-error' }).catch(() => {});
      });
      await t.publish(message(exchange, 'k', 'dead', bucket));
      const dlq = await collect(t, deadLetterQueueName(queue));
      await waitFor(() => dlq.got.length === 1, 'the dead letter', timeoutMs);
      expect(dlq.bodies()).toEqual(['dead']);
      expect(dlq.got[0]!.message.properties.headers[HEADERS.deadReason]).toBe('handler-error');
    });

    it('moves to another count of partitions without delivering a message twice', async () => {
      const t = await open();
      const exchange = uniqueName('ex');
      const queue = `${exchange}.part`;
      const spec = (partitions: number) => ({
        exchanges: [exchange],
        queues: [{ name: queue, bindings: [{ exchange, pattern: '#' }], partitions }],
      });
      await declare(t, spec(2));
      await declare(t, spec(3));
      const parts = await Promise.all(
        [0, 1, 2].map((i) => collect(t, partitionQueueName(queue, i))),
      );
      for (let b = 0; b < KEY_BUCKETS; b++) await t.publish(message(exchange, 'k', String(b), b));
      const total = () => parts.reduce((n, p) => n + p.got.length, 0);
      await waitFor(() => total() === KEY_BUCKETS, 'every bucket', timeoutMs);
      await sleep(200);
      expect(total()).toBe(KEY_BUCKETS);
      parts.forEach((p, i) => {
        expect(p.bodies()).toEqual(bucketsOfPartition(i, 3).map(String));
      });
    });

    describe('a partitioned handler', () => {
      function contracts() {
        const exchange = defineExchange(uniqueName('shop'));
        const placed = defineEvent(exchange, 'placed', testKeyedSchema, {
          key: (o) => o.customer,
        });
        return { exchange, placed };
      }

      async function running(t: Transport, name: string, setup: (s: Service) => void) {
        const s = createService({
          name,
          transport: t,
          retry: { baseDelayMs: 20, maxDelayMs: 40, maxAttempts: 3 },
          logger: silentLogger,
        });
        setup(s);
        services.push(s);
        topologies.push(s.topology());
        await s.start();
        return s;
      }

      const customers = Array.from({ length: 8 }, (_, i) => `customer-${i}`);

      it("keeps each key's messages in publish order, through retries, while a plain consumer of the same event gets them all", async () => {
        const t = await open();
        const { placed } = contracts();
        const seen = new Map<string, number[]>();
        const failedOnce = new Set<string>();
        const everything: number[] = [];
        await running(t, uniqueName('ordered'), (s) =>
          s.on(
            placed,
            async (o) => {
              const id = `${o.customer}:${o.seq}`;
              // Every fifth message fails once: its retry must not let the next one overtake it.
              if (o.seq % 5 === 2 && !failedOnce.has(id)) {
                failedOnce.add(id);
                throw new Error('try again');
              }
              await sleep(o.seq % 3);
              const list = seen.get(o.customer) ?? [];
              list.push(o.seq);
              seen.set(o.customer, list);
            },
            { partitions: 4 },
          ),
        );
        await running(t, uniqueName('plain'), (s) =>
          s.on(placed, (o) => void everything.push(o.seq)),
        );
        const producer = createService({ name: 'producer', transport: t, logger: silentLogger });
        const perCustomer = 25;
        const sent: Promise<unknown>[] = [];
        for (let seq = 0; seq < perCustomer; seq++) {
          for (const customer of customers) sent.push(producer.publish(placed, { customer, seq }));
        }
        const envelopes = await Promise.all(sent);
        expect((envelopes[0] as { key?: string }).key).toBe('customer-0');
        const handled = () => [...seen.values()].reduce((n, l) => n + l.length, 0);
        const total = perCustomer * customers.length;
        await waitFor(
          () => handled() === total && everything.length === total,
          'every message',
          timeoutMs,
        );
        for (const customer of customers) {
          expect({ customer, seqs: seen.get(customer) }).toEqual({
            customer,
            seqs: Array.from({ length: perCustomer }, (_, i) => i),
          });
        }
        // The keys really were spread: more than one partition had work.
        expect(new Set(customers.map((c) => partitionOfKey(c, 4))).size).toBeGreaterThan(1);
      });

      it('dead-letters after the last attempt into <queue>.dlq, naming the partition, and goes on with the key', async () => {
        const t = await open();
        const { placed } = contracts();
        const handled: number[] = [];
        const name = uniqueName('dl');
        const s = await running(t, name, (svc) =>
          svc.on(
            placed,
            (o) => {
              if (o.seq === 0) throw new Error('poison');
              handled.push(o.seq);
            },
            { partitions: 2 },
          ),
        );
        const producer = createService({ name: 'producer', transport: t, logger: silentLogger });
        for (let seq = 0; seq < 3; seq++) await producer.publish(placed, { customer: 'c', seq });
        const queue = s.describe().handlers[0]!.queue;
        const dlq = await collect(t, deadLetterQueueName(queue));
        await waitFor(
          () => dlq.got.length === 1 && handled.length === 2,
          'the dead letter',
          timeoutMs,
        );
        expect(handled).toEqual([1, 2]);
        const h = dlq.got[0]!.message.properties.headers;
        expect(h[HEADERS.attempts]).toBe(3);
        expect(h[HEADERS.queue]).toBe(partitionQueueName(queue, partitionOfKey('c', 2)));
        expect(h[HEADERS.key]).toBe('c');
        expect(h[HEADERS.bucket]).toBe(String(bucketOf('c')));
      });

      it('keeps each key in order when the replica that was active stops mid-stream and another takes over', async () => {
        const t1 = await open();
        const t2 = await open();
        const { placed } = contracts();
        const name = uniqueName('replicas');
        const log: { customer: string; seq: number; by: string }[] = [];
        const handler = (by: string) => async (o: { customer: string; seq: number }) => {
          await sleep(2);
          log.push({ ...o, by });
        };
        const first = await running(t1, name, (s) =>
          s.on(placed, handler('first'), { partitions: 3 }),
        );
        await running(t2, name, (s) => s.on(placed, handler('second'), { partitions: 3 }));
        const producer = createService({ name: 'producer', transport: t1, logger: silentLogger });
        const perCustomer = 30;
        const publishing = (async () => {
          for (let seq = 0; seq < perCustomer; seq++) {
            await Promise.all(
              customers.map((customer) => producer.publish(placed, { customer, seq })),
            );
            if (seq === 10) await waitFor(() => log.length > 0, 'a first message', timeoutMs);
          }
        })();
        await waitFor(() => log.length >= 60, '60 messages handled', timeoutMs);
        await first.stop();
        await publishing;
        const done = () =>
          customers.every((c) => log.some((e) => e.customer === c && e.seq === perCustomer - 1));
        await waitFor(done, 'the last message of every customer', timeoutMs);
        expect(log.some((e) => e.by === 'second')).toBe(true);
        for (const customer of customers) {
          const seqs = log.filter((e) => e.customer === customer).map((e) => e.seq);
          // At least once: a message may come twice, but never an older one after a newer one.
          const distinct = seqs.filter((seq, i) => i === 0 || seq !== seqs[i - 1]);
          expect({ customer, seqs: distinct }).toEqual({
            customer,
            seqs: Array.from({ length: perCustomer }, (_, i) => i),
          });
        }
      });

      it('refuses a partitioned handler for an event without a key, or with concurrency above 1', () => {
        const t = { kind: 'none' } as unknown as Transport;
        const exchange = defineExchange(uniqueName('x'));
        const unkeyed = defineEvent(exchange, 'plain', testKeyedSchema);
        const keyed = defineEvent(exchange, 'keyed', testKeyedSchema, { key: (o) => o.customer });
        const s = createService({ name: 'svc', transport: { ...t, publish: () => {} } as never });
        expect(() => s.on(unkeyed, () => {}, { partitions: 4 })).toThrow(/has no key/);
        expect(() => s.on(keyed, () => {}, { partitions: 4, concurrency: 2 })).toThrow(
          /concurrency must be 1/,
        );
        expect(() => s.on(keyed, () => {}, { partitions: 65 })).toThrow(/from 1 to 64/);
        expect(() => s.on(keyed, () => {}, { partitions: { count: 4, consume: [4] } })).toThrow(
          /consume must list/,
        );
        // Fits as a plain queue (`<queue>.retry.dlq`), not as partitions (`<queue>.p63.retry.10`).
        const long = 'q'.repeat(255 - '.retry.dlq'.length);
        expect(() => s.on(keyed, () => {}, { queue: long })).not.toThrow();
        expect(() => s.on(keyed, () => {}, { queue: long.slice(1), partitions: 2 })).toThrow(
          /longer than AMQP's limit/,
        );
      });
    });
  });
}

/**
 * For a transport whose features say `partitions: false`: `declare` refuses a partitioned queue
 * with `UnsupportedBindingError`, and creates nothing of the topology it came in.
 */
export function describePartitionRefusal(name: string, options: PartitionSuiteOptions): void {
  describe(`partitions conformance: ${name}`, () => {
    it('refuses a partitioned queue in declare, creating nothing', async () => {
      const t = await options.create();
      const exchange = uniqueName('ex');
      const plain = `${exchange}.plain`;
      try {
        const error = await t
          .declare({
            exchanges: [exchange],
            queues: [
              { name: plain, bindings: [{ exchange, pattern: '#' }] },
              { name: `${exchange}.part`, bindings: [{ exchange, pattern: '#' }], partitions: 2 },
            ],
          })
          .then(
            () => undefined,
            (e: unknown) => e,
          );
        expect(error).toBeInstanceOf(UnsupportedBindingError);
        await expect(t.get(plain)).rejects.toThrow(/does not exist/);
      } finally {
        await t.close();
      }
    });
  });
}
