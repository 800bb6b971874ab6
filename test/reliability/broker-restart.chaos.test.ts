import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/logger.js';
import { createService } from '../../src/runtime/service.js';
import { uniqueName } from '../../src/testing/broker.js';
import { waitFor } from '../../src/testing/conformance.js';
import {
  AMQP_URL,
  assertBrokerUp,
  type ConsumerProcess,
  canRestartBroker,
  DATABASE_URL,
  deleteTopology,
  duplicatesOf,
  ensureBrokerRunning,
  openTransport,
  publishStream,
  queueDepth,
  REDIS_URL,
  type RestartTiming,
  reachable,
  report,
  restartBroker,
  startConsumers,
  tally,
} from './harness.js';
import { type ConsumerConfig, order, submitEvent } from './protocol.js';

/*
 * Chaos test 1: RabbitMQ is stopped and started twice while 20,000 messages stream to two
 * consumer processes. Every message reaches two queues: `<run>-plain` counts raw handler calls
 * (at-least-once: some run twice), `<run>-once` has a Redis idempotency store in front of a
 * Redis counter, whose every field must end at exactly 1.
 */

/** Order ids as ranges (`9905-9978`), each with how often it ran when more than twice. */
function ranges(keys: [number, number][]): string {
  const sorted = [...keys].sort((a, b) => a[0] - b[0]);
  const out: string[] = [];
  for (let i = 0; i < sorted.length; ) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1]![0] === sorted[j]![0] + 1) j++;
    const [first] = sorted[i]!;
    const [last] = sorted[j]!;
    const extra = sorted.slice(i, j + 1).filter(([, n]) => n > 2);
    const more = extra.length > 0 ? ` (${extra.map(([id, n]) => `${id} x${n}`).join(', ')})` : '';
    out.push(`${first === last ? first : `${first}-${last}`}${more}`);
    i = j + 1;
  }
  return out.join(', ');
}

const up =
  (await reachable(AMQP_URL, 'RabbitMQ', 5672)) && (await reachable(REDIS_URL, 'Redis', 6379));
const restartable = up && (await canRestartBroker());

describe.skipIf(!restartable)('reliability: broker restarts', () => {
  afterAll(async () => {
    await ensureBrokerRunning();
    await assertBrokerUp();
  });

  it('processes each of 20,000 messages through two restarts; with a store, effects happen once', async () => {
    const total = 20_000;
    const run = uniqueName('rel-restart');
    const exchange = run;
    const submit = submitEvent(exchange);
    const plain = `${run}-plain`;
    const once = `${run}-once`;
    const prefix = `tidings-test:${run}:`;
    const effects = `${prefix}effects`;
    const config = (label: string): ConsumerConfig => ({
      label,
      amqpUrl: AMQP_URL,
      redisUrl: REDIS_URL,
      databaseUrl: DATABASE_URL,
      exchange,
      prefetch: 50,
      handlers: [
        {
          service: plain,
          faults: { kind: 'none' },
          effect: { kind: 'none' },
          store: { kind: 'none' },
        },
        {
          service: once,
          faults: { kind: 'none' },
          effect: { kind: 'redis-counter', key: effects },
          store: { kind: 'redis', keyPrefix: prefix },
        },
      ],
    });
    const queues = [plain, once].map((s) => `${s}.${exchange}.submit`);
    const topology = {
      exchanges: [exchange],
      queues: queues.map((name) => ({ name, bindings: [] })),
    };
    const redis = new Redis(REDIS_URL);
    const publisher = openTransport('restart publisher');
    const disconnects: string[] = [];
    publisher.on('disconnected', (e) => void disconnects.push(e.connection));
    let consumers: ConsumerProcess[] = [];
    const restarts: RestartTiming[] = [];
    try {
      consumers = await startConsumers([config('consumer-a'), config('consumer-b')]);
      const producer = createService({
        name: `${run}-shop`,
        transport: publisher,
        logger: silentLogger,
      });

      // Two restarts, each triggered by the stream's progress, so both fall inside it.
      const marks = [Math.round(total * 0.25), Math.round(total * 0.6)];
      let confirmed = 0;
      const chaos = (async () => {
        for (const mark of marks) {
          await waitFor(() => confirmed >= mark, `${mark} confirmed publishes`, 60_000);
          restarts.push(await restartBroker(1500));
        }
      })();
      const started = Date.now();
      const failures = await publishStream(total, (i) => producer.publish(submit, order(i)), {
        progress: (n) => {
          confirmed = n;
        },
      });
      const publishedMs = Date.now() - started;
      await chaos;
      expect(failures).toEqual([]);
      expect(confirmed).toBe(total);

      const plainCalls = () => consumers.flatMap((c) => c.calls.filter((h) => h.service === plain));
      const distinctPlain = () => new Set(plainCalls().map((h) => h.orderId)).size;
      const counted = async () => Number(await redis.hlen(effects));
      let effectIds = 0;
      const deadline = Date.now() + 60_000;
      while ((distinctPlain() < total || effectIds < total) && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 200));
        effectIds = await counted();
      }
      const processedMs = Date.now() - started;
      // Let redeliveries still on their way arrive, so duplicates are counted in full.
      for (const q of queues) {
        const start = Date.now();
        while ((await queueDepth(q)) > 0 && Date.now() - start < 20_000) {
          await new Promise((resolve) => setTimeout(resolve, 200));
        }
      }
      await new Promise((resolve) => setTimeout(resolve, 1000));
      const summaries = [];
      for (const c of consumers) summaries.push(await c.stop());

      const plainCounts = tally(plainCalls().map((h) => h.orderId));
      const plainDup = duplicatesOf(plainCounts);
      const onceCalls = consumers.flatMap((c) => c.calls.filter((h) => h.service === once));
      const onceCounts = tally(onceCalls.map((h) => h.orderId));
      const skipped = consumers.flatMap((c) => c.duplicates.filter((d) => d.service === once));
      const effectCounts = Object.values(await redis.hgetall(effects)).map(Number);
      const effectsTotal = effectCounts.reduce((a, b) => a + b, 0);
      const redelivered = plainCalls().filter((h) => h.redelivered).length;
      // A second call not flagged redelivered is a second copy on the queue: a publish the
      // producer sent again because its confirm was lost with the connection.
      const fresh = tally(
        plainCalls()
          .filter((h) => !h.redelivered)
          .map((h) => h.orderId),
      );
      const republished = duplicatesOf(fresh).extra;

      report('chaos 1: two broker restarts during 20,000 messages, two consumer processes', {
        messages: total,
        'broker restarts': restarts.map((r) => `stop_app ${r.stopMs} ms, then down ${r.downMs} ms`),
        'published and confirmed in': `${publishedMs} ms (${disconnects.length} publisher disconnects)`,
        'all processed after': `${processedMs} ms`,
        'without store: handler calls': plainCalls().length,
        'without store: distinct messages': plainCounts.size,
        'without store: duplicates': `${plainDup.extra} (${plainDup.keys.length} messages)`,
        'without store: duplicated order ids': ranges(plainDup.keys),
        'without store: duplicates by cause': `${plainDup.extra - republished} redelivered by the broker, ${republished} published twice (confirm lost, resent)`,
        'without store: calls flagged redelivered': redelivered,
        'per consumer (plain)': consumers.map(
          (c) => `${c.config.label} ${c.calls.filter((h) => h.service === plain).length}`,
        ),
        'with Redis store: handler calls': onceCalls.length,
        'with Redis store: duplicates skipped': skipped.length,
        'with Redis store: effects': `${effectsTotal} on ${effectCounts.length} ids, max ${Math.max(...effectCounts)} per id`,
      });

      expect(plainCounts.size).toBe(total);
      expect(Math.min(...plainCounts.keys())).toBe(0);
      expect(Math.max(...plainCounts.keys())).toBe(total - 1);
      expect(effectCounts).toHaveLength(total);
      expect(effectCounts.every((n) => n === 1)).toBe(true);
      expect(effectsTotal).toBe(total);
      expect(onceCounts.size).toBe(total);
      // The store let each message through once: a second call would have been a second effect.
      expect(duplicatesOf(onceCounts).extra).toBe(0);
      expect(restarts).toHaveLength(2);
      for (const s of summaries) expect(s.pollution).toEqual([]);
      expect(consumers.every((c) => c.calls.some((h) => h.service === plain))).toBe(true);
    } finally {
      await Promise.all(consumers.map((c) => c.kill()));
      await ensureBrokerRunning();
      await publisher.close();
      await deleteTopology(topology);
      const keys = await redis.keys(`${prefix}*`);
      for (let i = 0; i < keys.length; i += 1000) await redis.del(...keys.slice(i, i + 1000));
      await redis.quit();
    }
  }, 120_000);
});
