import { afterEach, describe, expect, it } from 'vitest';
import { defineEvent, defineExchange } from '../contracts/event.js';
import {
  type Envelope,
  envelopeFromMessage,
  envelopeToProperties,
  HEADERS,
  type OutgoingMessage,
} from '../envelope/envelope.js';
import { uuidv7 } from '../envelope/id.js';
import { NonRetryableError, PublishRejectedError, StateError, UnroutableError } from '../errors.js';
import { silentLogger } from '../logger.js';
import { createService, type Service } from '../runtime/service.js';
import {
  type Delivery,
  deadLetterQueueName,
  type Topology,
  type Transport,
  type TransportFeatures,
} from '../transports/transport.js';
import { uniqueName } from './broker.js';
import { describePartitionConformance, describePartitionRefusal } from './partitions.js';
import { needsInnerHash, ROUTING_KEYS, ROUTING_TABLE } from './routing-table.js';
import { testFollowUpSchema, testOrderSchema } from './schema.js';

/** How the conformance suite gets connections to the broker under test. */
export interface ConformanceOptions {
  /**
   * Opens a new connection to the broker under test. Called more than once per test when a test
   * needs two connections: every connection must reach the same broker.
   */
  readonly create: () => Transport | Promise<Transport>;
  /** What the transport does not promise. */
  readonly features: TransportFeatures;
  /** Upper bound for waiting on deliveries, in milliseconds. @defaultValue 10000 */
  readonly timeoutMs?: number;
}

/**
 * Polls `check` until it returns true or `timeoutMs` passes, then fails with `what`.
 * For tests: waits on observable state instead of sleeping a fixed time.
 */
export async function waitFor(
  check: () => boolean,
  what: string,
  timeoutMs = 10_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline)
      throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * The behaviour every transport must have, written once. Run it from a test file:
 *
 * ```ts
 * import { describeTransportConformance } from 'tidings/testing';
 * describeTransportConformance('memory', { create: () => broker.transport(), features });
 * ```
 *
 * It covers AMQP topic routing (including the edge cases in {@link ROUTING_TABLE}), unroutable
 * and rejected publishes, FIFO order, prefetch, competing consumers, requeue with the redelivered
 * flag, redelivery of unsettled messages when a connection closes, delayed retries that go back to
 * one queue only and do not block it, dead-lettering with the body unchanged, and the runtime's
 * ack policy on top (bad input dead-lettered with its reason, retries, non-retryable errors,
 * graceful stop). Every test uses unique names and deletes what it created.
 */
export function describeTransportConformance(name: string, options: ConformanceOptions): void {
  const timeoutMs = options.timeoutMs ?? 10_000;
  if (options.features.partitions) describePartitionConformance(name, options);
  else describePartitionRefusal(name, options);

  describe(`transport conformance: ${name}`, () => {
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
      // Close every other connection first: a transport that declared a queue may re-declare
      // it when it sees it deleted under its consumer.
      const [admin, ...others] = opened.splice(0);
      for (const t of others) await t.close();
      if (admin) {
        for (const topology of topologies.splice(0)) {
          await admin.deleteTopology(topology, { exchanges: true }).catch(() => {});
        }
        await admin.close();
      }
    });

    function message(
      exchange: string,
      routingKey: string,
      body = '{}',
      headers = {},
    ): OutgoingMessage {
      return {
        exchange,
        routingKey,
        body: Buffer.from(body),
        properties: { messageId: uuidv7(), contentType: 'application/json', headers },
      };
    }

    /** Consumes a queue into an array, acking everything. */
    async function collect(t: Transport, queue: string, prefetch = 50) {
      const got: Delivery[] = [];
      const consumer = await t.consume(queue, { prefetch }, (d) => {
        got.push(d);
        d.ack().catch(() => {});
      });
      return { got, consumer };
    }

    describe('routing', () => {
      it('routes exactly like RabbitMQ for every pattern and key in the recorded table', async () => {
        const t = await open();
        const exchange = uniqueName('ex');
        // A transport without `innerHash` must refuse those patterns, and route the rest exactly.
        const refused = options.features.innerHash
          ? []
          : Object.keys(ROUTING_TABLE).filter(needsInnerHash);
        const patterns = Object.keys(ROUTING_TABLE).filter((p) => !refused.includes(p));
        const queues = patterns.map((_, i) => `${exchange}.q${i}`);
        await declare(t, {
          exchanges: [exchange],
          queues: queues.map((q, i) => ({
            name: q,
            bindings: [{ exchange, pattern: patterns[i]! }],
          })),
        });
        for (const [i, pattern] of refused.entries()) {
          const queue = `${exchange}.refused${i}`;
          await expect(
            declare(t, {
              exchanges: [exchange],
              queues: [{ name: queue, bindings: [{ exchange, pattern }] }],
            }),
          ).rejects.toMatchObject({ code: 'unsupported-binding', pattern });
          await expect(t.get(queue)).rejects.toThrow(/does not exist/);
        }
        const received = new Map<string, string[]>(queues.map((q) => [q, []]));
        for (const q of queues) {
          await t.consume(q, { prefetch: 100 }, (d) => {
            received.get(q)!.push(d.message.routingKey);
            d.ack().catch(() => {});
          });
        }
        for (const key of ROUTING_KEYS) await t.publish(message(exchange, key));
        const expected = patterns.reduce((n, p) => n + ROUTING_TABLE[p]!.length, 0);
        const total = () => [...received.values()].reduce((n, list) => n + list.length, 0);
        await waitFor(() => total() >= expected, `${expected} routed deliveries`, timeoutMs);
        await sleep(50);
        patterns.forEach((p, i) => {
          expect({ pattern: p, keys: [...received.get(queues[i]!)!].sort() }).toEqual({
            pattern: p,
            keys: [...ROUTING_TABLE[p]!].sort(),
          });
        });
      });

      it('delivers a message once per queue even when several bindings of the queue match', async () => {
        const t = await open();
        const exchange = uniqueName('ex');
        const queue = `${exchange}.q`;
        await declare(t, {
          exchanges: [exchange],
          queues: [
            {
              name: queue,
              bindings: [
                { exchange, pattern: 'order.*.submit' },
                { exchange, pattern: 'order.#' },
              ],
            },
          ],
        });
        const { got } = await collect(t, queue);
        await t.publish(message(exchange, 'order.v1.submit'));
        await waitFor(() => got.length >= 1, 'one delivery', timeoutMs);
        await sleep(100);
        expect(got).toHaveLength(1);
      });

      it('reports a message that no queue receives as unrouted', async () => {
        const t = await open();
        const exchange = uniqueName('ex');
        await declare(t, {
          exchanges: [exchange],
          queues: [{ name: `${exchange}.q`, bindings: [{ exchange, pattern: 'a.b' }] }],
        });
        expect(await t.publish(message(exchange, 'a.c'))).toEqual({ routed: false });
        expect(await t.publish(message(exchange, 'a.b'))).toEqual({ routed: true });
      });

      it('rejects a publish to an exchange that does not exist, and keeps working', async () => {
        const t = await open();
        const exchange = uniqueName('ex');
        await declare(t, {
          exchanges: [exchange],
          queues: [{ name: `${exchange}.q`, bindings: [{ exchange, pattern: '#' }] }],
        });
        await expect(t.publish(message(uniqueName('missing'), 'a'))).rejects.toBeInstanceOf(
          PublishRejectedError,
        );
        expect(await t.publish(message(exchange, 'a'))).toEqual({ routed: true });
      });

      it('publishNow, when the transport offers it, routes like publish and throws where publish rejects', async () => {
        const t = await open();
        if (!t.publishNow) return;
        const exchange = uniqueName('ex');
        await declare(t, {
          exchanges: [exchange],
          queues: [{ name: `${exchange}.q`, bindings: [{ exchange, pattern: 'a.b' }] }],
        });
        expect(t.publishNow(message(exchange, 'a.b'))).toEqual({ routed: true });
        expect(t.publishNow(message(exchange, 'a.c'))).toEqual({ routed: false });
        expect(() => t.publishNow!(message(uniqueName('missing'), 'a'))).toThrow(
          PublishRejectedError,
        );
        const { got } = await collect(t, `${exchange}.q`, 10);
        await waitFor(() => got.length === 1, 'the message published with publishNow', timeoutMs);
      });
    });

    describe('delivery', () => {
      async function queueWith(t: Transport) {
        const exchange = uniqueName('ex');
        const queue = `${exchange}.q`;
        await declare(t, {
          exchanges: [exchange],
          queues: [{ name: queue, bindings: [{ exchange, pattern: '#' }] }],
        });
        return { exchange, queue };
      }

      it('delivers in publish order to a single consumer', async () => {
        const t = await open();
        const { exchange, queue } = await queueWith(t);
        await Promise.all(
          Array.from({ length: 200 }, (_, i) => t.publish(message(exchange, 'k', String(i)))),
        );
        const { got } = await collect(t, queue, 1);
        await waitFor(() => got.length === 200, '200 deliveries', timeoutMs);
        expect(got.map((d) => Number(d.message.body.toString()))).toEqual(
          Array.from({ length: 200 }, (_, i) => i),
        );
      });

      it('ackNow, when deliveries offer it, settles like ack: the slot frees, a second settle throws', async () => {
        const t = await open();
        const { exchange, queue } = await queueWith(t);
        for (let i = 0; i < 3; i++) await t.publish(message(exchange, 'k', String(i)));
        const held: Delivery[] = [];
        await t.consume(queue, { prefetch: 1 }, (d) => held.push(d));
        await waitFor(() => held.length === 1, 'a delivery', timeoutMs);
        const first = held[0]!;
        if (!first.ackNow) {
          await first.ack();
          return;
        }
        first.ackNow();
        expect(() => first.ackNow!()).toThrow(StateError);
        await expect(first.ack()).rejects.toBeInstanceOf(StateError);
        await waitFor(() => held.length === 2, 'the next delivery after ackNow', timeoutMs);
        held[1]!.ackNow!();
        await waitFor(() => held.length === 3, 'the third delivery', timeoutMs);
        await held[2]!.ack();
      });

      it('keeps at most `prefetch` deliveries unsettled per consumer', async () => {
        const t = await open();
        const { exchange, queue } = await queueWith(t);
        for (let i = 0; i < 10; i++) await t.publish(message(exchange, 'k', String(i)));
        const held: Delivery[] = [];
        await t.consume(queue, { prefetch: 3 }, (d) => held.push(d));
        await waitFor(() => held.length === 3, '3 deliveries', timeoutMs);
        await sleep(150);
        expect(held).toHaveLength(3);
        await held[0]!.ack();
        await waitFor(() => held.length === 4, 'a 4th delivery after one ack', timeoutMs);
        await sleep(100);
        expect(held).toHaveLength(4);
        for (const d of held.slice(1)) await d.ack();
      });

      it('shares a queue between competing consumers, each message to exactly one', async () => {
        const t1 = await open();
        const t2 = await open();
        const { exchange, queue } = await queueWith(t1);
        const a = await collect(t1, queue, 5);
        const b = await collect(t2, queue, 5);
        await Promise.all(
          Array.from({ length: 100 }, (_, i) => t1.publish(message(exchange, 'k', String(i)))),
        );
        await waitFor(() => a.got.length + b.got.length === 100, '100 deliveries', timeoutMs);
        await sleep(100);
        const bodies = [...a.got, ...b.got].map((d) => d.message.body.toString());
        expect(new Set(bodies).size).toBe(100);
        expect(a.got.length).toBeGreaterThan(0);
        expect(b.got.length).toBeGreaterThan(0);
      });

      it('redelivers a requeued message with the redelivered flag', async () => {
        const t = await open();
        const { exchange, queue } = await queueWith(t);
        await t.publish(message(exchange, 'k', 'x'));
        const seen: Delivery[] = [];
        await t.consume(queue, { prefetch: 1 }, (d) => {
          seen.push(d);
          if (seen.length === 1) d.requeue().catch(() => {});
          else d.ack().catch(() => {});
        });
        await waitFor(() => seen.length === 2, 'a redelivery', timeoutMs);
        expect(seen[0]!.message.redelivered).toBe(false);
        expect(seen[1]!.message.redelivered).toBe(true);
        expect(seen[1]!.message.body.toString()).toBe('x');
      });

      it('redelivers unsettled messages to another consumer when a connection closes', async () => {
        const t1 = await open();
        const t2 = await open();
        const { exchange, queue } = await queueWith(t1);
        for (let i = 0; i < 5; i++) await t1.publish(message(exchange, 'k', String(i)));
        const held: Delivery[] = [];
        await t2.consume(queue, { prefetch: 5 }, (d) => held.push(d));
        await waitFor(() => held.length === 5, '5 unsettled deliveries', timeoutMs);
        await t2.close();
        const { got } = await collect(t1, queue);
        await waitFor(() => got.length === 5, '5 redeliveries', timeoutMs);
        expect(got.map((d) => d.message.body.toString()).sort()).toEqual(['0', '1', '2', '3', '4']);
        expect(got.every((d) => d.message.redelivered)).toBe(true);
      });

      it('lets a delivery be settled quietly after its connection closed; the message comes back', async () => {
        const t1 = await open();
        const t2 = await open();
        const { exchange, queue } = await queueWith(t1);
        await t1.publish(message(exchange, 'k', 'x'));
        const held: Delivery[] = [];
        await t2.consume(queue, { prefetch: 1 }, (d) => held.push(d));
        await waitFor(() => held.length === 1, 'a delivery', timeoutMs);
        await t2.close();
        await expect(held[0]!.ack()).resolves.toBeUndefined();
        const { got } = await collect(t1, queue);
        await waitFor(() => got.length === 1, 'the redelivery', timeoutMs);
        expect(got[0]!.message.redelivered).toBe(true);
      });

      it('parks a retried message, then delivers it to the same queue only, without blocking', async () => {
        const t = await open();
        const exchange = uniqueName('ex');
        const queue = `${exchange}.q`;
        const other = `${exchange}.other`;
        await declare(t, {
          exchanges: [exchange],
          queues: [
            { name: queue, bindings: [{ exchange, pattern: '#' }] },
            { name: other, bindings: [{ exchange, pattern: '#' }] },
          ],
        });
        const otherGot = await collect(t, other);
        const seen: { body: string; attempts: unknown; at: number }[] = [];
        await t.consume(queue, { prefetch: 10 }, (d) => {
          seen.push({
            body: d.message.body.toString(),
            attempts: d.message.properties.headers[HEADERS.attempts],
            at: Date.now(),
          });
          if (d.message.body.toString() === 'slow' && seen.length === 1) {
            d.retry(400, { [HEADERS.attempts]: 1 }).catch(() => {});
          } else {
            d.ack().catch(() => {});
          }
        });
        const start = Date.now();
        await t.publish(message(exchange, 'k', 'slow'));
        await waitFor(() => seen.length === 1, 'first delivery', timeoutMs);
        await t.publish(message(exchange, 'k', 'fast'));
        await waitFor(() => seen.length === 3, 'the retry', timeoutMs);
        expect(seen.map((s) => s.body)).toEqual(['slow', 'fast', 'slow']);
        expect(seen[1]!.at - start).toBeLessThan(350);
        expect(seen[2]!.at - start).toBeGreaterThanOrEqual(380);
        expect(seen[2]!.attempts).toBe(1);
        await sleep(100);
        expect(otherGot.got.map((d) => d.message.body.toString())).toEqual(['slow', 'fast']);
      });

      it('takes messages one at a time with get(), and puts a requeued one back in its place', async () => {
        const t = await open();
        const { exchange, queue } = await queueWith(t);
        for (const b of ['a', 'b', 'c']) await t.publish(message(exchange, 'k', b));
        const first = await t.get(queue);
        const second = await t.get(queue);
        expect([first, second].map((d) => d?.message.body.toString())).toEqual(['a', 'b']);
        // How many were still ready behind each: the queue's depth, for tooling that lists a few.
        expect([first?.remaining, second?.remaining]).toEqual([2, 1]);
        await second!.requeue();
        await first!.requeue();
        const again: string[] = [];
        for (let d = await t.get(queue); d; d = await t.get(queue)) {
          again.push(`${d.message.body}${d.message.redelivered ? '*' : ''}`);
          await d.ack();
        }
        // Requeued messages come back before newer ones. Among themselves RabbitMQ keeps their
        // original order in classic queues and the order of requeueing in quorum queues.
        expect([...again.slice(0, 2)].sort()).toEqual(['a*', 'b*']);
        expect(again[2]).toBe('c');
        expect(await t.get(queue)).toBeUndefined();
        await expect(t.get(uniqueName('missing'))).rejects.toThrow(/does not exist/);
      });

      it('moves a dead-lettered message to <queue>.dlq with its body unchanged and headers added', async () => {
        const t = await open();
        const { exchange, queue } = await queueWith(t);
        const body = '{"weird":  "spacing", "ü": 1}';
        const original = message(exchange, 'a.b', body, { 'x-custom': 'kept' });
        await t.publish(original);
        await t.consume(queue, { prefetch: 1 }, (d) => {
          d.deadLetter({ [HEADERS.deadReason]: 'handler-error' }).catch(() => {});
        });
        const dlq = await collect(t, deadLetterQueueName(queue));
        await waitFor(() => dlq.got.length === 1, 'a dead letter', timeoutMs);
        const dead = dlq.got[0]!.message;
        expect(dead.body.equals(Buffer.from(body))).toBe(true);
        expect(dead.properties.headers['x-custom']).toBe('kept');
        expect(dead.properties.headers[HEADERS.deadReason]).toBe('handler-error');
        expect(dead.properties.messageId).toBe(original.properties.messageId);
        expect(dead.routingKey === 'a.b' || dead.routingKey === deadLetterQueueName(queue)).toBe(
          true,
        );
      });
    });

    describe('tooling capabilities (optional: skipped when the transport has none)', () => {
      async function queueWith(t: Transport, pattern = '#') {
        const exchange = uniqueName('ex');
        const queue = `${exchange}.q`;
        await declare(t, {
          exchanges: [exchange],
          queues: [{ name: queue, bindings: [{ exchange, pattern }] }],
        });
        return { exchange, queue };
      }

      it('queueStats counts ready messages and consumers, and says when a queue is missing', async (ctx) => {
        const t = await open();
        if (!t.queueStats) return ctx.skip(`${name} has no queueStats (an optional capability)`);
        const stats = t.queueStats.bind(t);
        const { exchange, queue } = await queueWith(t);
        // RabbitMQ updates its counts a moment after confirming a publish or a consumer change.
        const settled = async (expected: { messages: number; consumers: number }) => {
          const deadline = Date.now() + timeoutMs;
          let got = await stats(queue);
          while (JSON.stringify(got) !== JSON.stringify(expected) && Date.now() < deadline) {
            await sleep(20);
            got = await stats(queue);
          }
          return got;
        };
        expect(await stats(queue)).toEqual({ messages: 0, consumers: 0 });
        for (const b of ['a', 'b', 'c']) await t.publish(message(exchange, 'k', b));
        expect(await settled({ messages: 3, consumers: 0 })).toEqual({ messages: 3, consumers: 0 });
        const held: Delivery[] = [];
        const consumer = await t.consume(queue, { prefetch: 1 }, (d) => held.push(d));
        // One delivered and unsettled (prefetch 1): it is no longer ready.
        expect(await settled({ messages: 2, consumers: 1 })).toEqual({ messages: 2, consumers: 1 });
        // Quorum queues count a cancelled consumer until its deliveries are settled.
        await consumer.cancel();
        for (const d of held) await d.requeue();
        expect(await stats(uniqueName('missing'))).toBeUndefined();
        // A missing queue does not break the next question.
        expect(await settled({ messages: 3, consumers: 0 })).toEqual({ messages: 3, consumers: 0 });
      });

      it('tap copies matching messages without taking them from the queues, then goes away', async (ctx) => {
        const t = await open();
        if (!t.tap) return ctx.skip(`${name} has no tap (an optional capability)`);
        const { exchange, queue } = await queueWith(t, 'a.*');
        const seen: string[] = [];
        const tap = await t.tap(exchange, 'a.#', (m) => seen.push(`${m.routingKey}=${m.body}`));
        await t.publish(message(exchange, 'a.b', '1'));
        await t.publish(message(exchange, 'z.b', '2'));
        await t.publish(message(exchange, 'a.b.c', '3'));
        await waitFor(() => seen.length === 2, 'two copies', timeoutMs);
        expect(seen).toEqual(['a.b=1', 'a.b.c=3']);
        // The work queue still has its message; the tap took a copy only.
        const d = await t.get(queue);
        expect(d?.message.body.toString()).toBe('1');
        await d?.ack();
        await tap.close();
        await tap.close();
        // With the tap gone, a key only it received is unroutable again.
        expect(await t.publish(message(exchange, 'a.b.c', '4'))).toEqual({ routed: false });
        expect(seen).toHaveLength(2);
        await expect(t.tap(uniqueName('missing'), '#', () => {})).rejects.toThrow(/does not exist/);
      });

      it('tap ends with onEnd when its transport closes', async (ctx) => {
        const admin = await open();
        if (!admin.tap) return ctx.skip(`${name} has no tap (an optional capability)`);
        const { exchange } = await queueWith(admin, 'a.*');
        const other = await options.create();
        const ended: Error[] = [];
        await other.tap!(exchange, '#', () => {}, { onEnd: (e) => ended.push(e) });
        expect(await admin.publish(message(exchange, 'zz'))).toEqual({ routed: true });
        await other.close();
        // Its queue goes with its connection: a key only the tap received is unroutable again.
        const deadline = Date.now() + timeoutMs;
        let outcome = await admin.publish(message(exchange, 'zz'));
        while (outcome.routed && Date.now() < deadline) {
          await sleep(20);
          outcome = await admin.publish(message(exchange, 'zz'));
        }
        expect(outcome).toEqual({ routed: false });
        expect(ended.length).toBeLessThanOrEqual(1);
      });
    });

    describe('runtime on this transport', () => {
      function contracts() {
        const exchange = defineExchange(uniqueName('order'));
        const submit = defineEvent(exchange, 'submit', testOrderSchema);
        return { exchange, submit };
      }

      async function running(
        t: Transport,
        setup: (s: Service) => void,
        retry = { baseDelayMs: 20, maxAttempts: 3 },
        maxMessageBytes?: number,
      ): Promise<Service> {
        const s = createService({
          name: uniqueName('svc'),
          transport: t,
          retry,
          logger: silentLogger,
          maxMessageBytes,
        });
        setup(s);
        services.push(s);
        topologies.push(s.topology());
        await s.start();
        return s;
      }

      it('delivers a validated, typed payload and acks it', async () => {
        const t = await open();
        const { submit } = contracts();
        const got: unknown[] = [];
        await running(t, (s) => s.on(submit, (order) => void got.push(order)));
        const producer = createService({ name: 'producer', transport: t, logger: silentLogger });
        const env = await producer.publish(submit, {
          id: 1,
          lines: [{ id: 1, quantity: 2, price: 3 }],
        });
        await waitFor(() => got.length === 1, 'the handler', timeoutMs);
        expect(got[0]).toEqual({ id: 1, lines: [{ id: 1, quantity: 2, price: 3 }] });
        expect(env.type).toBe(submit.routingKey(1));
      });

      it('rejects an unroutable publish with UnroutableError under the default policy', async () => {
        const t = await open();
        const { submit } = contracts();
        const producer = createService({ name: 'producer', transport: t, logger: silentLogger });
        topologies.push({ exchanges: [submit.exchange.name], queues: [] });
        await expect(producer.publish(submit, { id: 1, lines: [] })).rejects.toBeInstanceOf(
          UnroutableError,
        );
        const lenient = createService({
          name: 'producer',
          transport: t,
          unroutable: 'ignore',
          logger: silentLogger,
        });
        await expect(lenient.publish(submit, { id: 1, lines: [] })).resolves.toMatchObject({
          type: submit.routingKey(),
        });
      });

      it('dead-letters bad input at once with its reason and keeps consuming', async () => {
        const t = await open();
        const { exchange, submit } = contracts();
        const got: number[] = [];
        // Oversize means over the runtime's limit: 1 MiB by default, lowered to stay well under
        // what the broker accepts when that is smaller (NATS: 1 MiB with the headers).
        const brokerMax = options.features.maxMessageBytes;
        const limit = Number.isFinite(brokerMax) ? Math.floor(brokerMax / 4) : undefined;
        const s = await running(
          t,
          (svc) => svc.on(submit, (o) => void got.push(o.id)),
          undefined,
          limit,
        );
        const queue = s.topology().queues[0]!.name;
        const envelope = (type: string) =>
          envelopeToProperties({
            id: uuidv7(),
            type,
            exchange: exchange.name,
            event: 'submit',
            version: 1,
            source: 'test',
            time: new Date().toISOString(),
            correlationId: 'c',
          });
        const raw = (routingKey: string, body: string, properties = envelope(routingKey)) =>
          t.publish({ exchange: exchange.name, routingKey, body: Buffer.from(body), properties });
        const key1 = submit.routingKey(1);
        const key9 = `${exchange.name}.v9.submit`;
        await raw(key1, 'not json');
        await raw(key1, '{"id": "one"}');
        await raw(key9, '{"id": 9, "lines": []}');
        await raw(key1, '{"id": 2, "lines": []}', { headers: {} });
        await raw(
          key1,
          JSON.stringify({ id: 3, lines: [], pad: 'x'.repeat(2 * (limit ?? 1024 * 1024)) }),
        );
        await raw(key1, '{"id": 4, "lines": []}');
        const dlq = await collect(t, deadLetterQueueName(queue));
        await waitFor(() => dlq.got.length === 5 && got.length === 1, '5 dead letters', timeoutMs);
        // Handlers run concurrently, so dead letters may be stored in any order.
        const reasons = dlq.got.map((d) =>
          String(d.message.properties.headers[HEADERS.deadReason]),
        );
        expect(reasons.sort()).toEqual([
          'invalid-json',
          'missing-envelope',
          'oversize',
          'schema-violation',
          'unsupported-version',
        ]);
        expect(got).toEqual([4]);
        const violation = dlq.got.find(
          (d) => d.message.properties.headers[HEADERS.deadReason] === 'schema-violation',
        )!;
        const issues = JSON.parse(String(violation.message.properties.headers[HEADERS.issues]));
        expect(issues.map((i: { path: string[] }) => i.path.join('.'))).toEqual(['id', 'lines']);
      });

      it('retries a failing handler with the attempt number, then dead-letters with the history', async () => {
        const t = await open();
        const { submit } = contracts();
        const attempts: number[] = [];
        const s = await running(t, (svc) =>
          svc.on(submit, (_o, ctx) => {
            attempts.push(ctx.attempt);
            throw new Error('database down');
          }),
        );
        const producer = createService({ name: 'producer', transport: t, logger: silentLogger });
        const env = await producer.publish(submit, { id: 1, lines: [] });
        const dlq = await collect(t, deadLetterQueueName(s.topology().queues[0]!.name));
        await waitFor(() => dlq.got.length === 1, 'the dead letter', timeoutMs);
        expect(attempts).toEqual([1, 2, 3]);
        const h = dlq.got[0]!.message.properties.headers;
        expect(h[HEADERS.deadReason]).toBe('handler-error');
        expect(h[HEADERS.errorMessage]).toBe('database down');
        expect(h[HEADERS.attempts]).toBe(3);
        expect(h[HEADERS.service]).toBe(s.name);
        expect(h[HEADERS.originalRoutingKey]).toBe(submit.routingKey());
        // The envelope is kept as published: the id as message_id, the time in the id (format 3),
        // so the dead letter reads back with the time it was published at.
        expect(dlq.got[0]!.message.properties.messageId).toBe(env.id);
        expect(h[HEADERS.wire]).toBe('3');
        expect(envelopeFromMessage(dlq.got[0]!.message)?.time).toBe(env.time);
        expect(Date.parse(String(h[HEADERS.firstFailure]))).toBeLessThanOrEqual(
          Date.parse(String(h[HEADERS.lastFailure])),
        );
      });

      it('recovers when a transient failure stops before the last attempt', async () => {
        const t = await open();
        const { submit } = contracts();
        let calls = 0;
        const done: number[] = [];
        await running(t, (svc) =>
          svc.on(submit, (o, ctx) => {
            calls++;
            if (ctx.attempt < 2) throw new Error('flaky');
            done.push(o.id);
          }),
        );
        const producer = createService({ name: 'producer', transport: t, logger: silentLogger });
        await producer.publish(submit, { id: 7, lines: [] });
        await waitFor(() => done.length === 1, 'success on the 2nd attempt', timeoutMs);
        expect(calls).toBe(2);
      });

      it('dead-letters a NonRetryableError at once', async () => {
        const t = await open();
        const { submit } = contracts();
        let calls = 0;
        const s = await running(t, (svc) =>
          svc.on(submit, () => {
            calls++;
            throw new NonRetryableError('order refers to an unknown customer');
          }),
        );
        const producer = createService({ name: 'producer', transport: t, logger: silentLogger });
        await producer.publish(submit, { id: 1, lines: [] });
        const dlq = await collect(t, deadLetterQueueName(s.topology().queues[0]!.name));
        await waitFor(() => dlq.got.length === 1, 'the dead letter', timeoutMs);
        expect(calls).toBe(1);
        expect(dlq.got[0]!.message.properties.headers[HEADERS.errorName]).toBe('NonRetryableError');
      });

      it('stop() waits for a running handler to finish before resolving', async () => {
        const t = await open();
        const { submit } = contracts();
        const events: string[] = [];
        const s = await running(t, (svc) =>
          svc.on(submit, async () => {
            events.push('start');
            await sleep(200);
            events.push('end');
          }),
        );
        const producer = createService({ name: 'producer', transport: t, logger: silentLogger });
        await producer.publish(submit, { id: 1, lines: [] });
        await waitFor(() => events.length === 1, 'the handler to start', timeoutMs);
        await s.stop();
        events.push('stopped');
        expect(events).toEqual(['start', 'end', 'stopped']);
      });

      it('propagates correlation and causation through a handler that publishes', async () => {
        const t = await open();
        const { submit } = contracts();
        const next = defineEvent(submit.exchange, 'next', testFollowUpSchema);
        const seen: Envelope[] = [];
        await running(t, (svc) => {
          svc.on(submit, async (o, ctx) => {
            await ctx.publish(next, { of: o.id });
          });
          svc.on(next, (_p, ctx) => void seen.push(ctx.envelope));
        });
        const producer = createService({ name: 'producer', transport: t, logger: silentLogger });
        const first = await producer.publish(submit, { id: 5, lines: [] });
        await waitFor(() => seen.length === 1, 'the caused event', timeoutMs);
        expect(seen[0]!.correlationId).toBe(first.correlationId);
        expect(seen[0]!.causationId).toBe(first.id);
      });
    });
  });
}
