import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { defineEvent, defineExchange } from '../contracts/event.js';
import { NonRetryableError } from '../errors.js';
import { silentLogger } from '../logger.js';
import { replayDeadLetters } from '../ops/dead-letters.js';
import { waitFor } from '../testing/conformance.js';
import { MemoryBroker } from '../transports/memory/broker.js';
import type { Transport } from '../transports/transport.js';
import type { IdempotencyStore } from './idempotency.js';
import { createService } from './service.js';

const submit = defineEvent(defineExchange('order'), 'submit', z.object({ id: z.number() }));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('lifecycle edge cases', () => {
  it('stop() during start() leaves no consumer behind', async () => {
    const broker = new MemoryBroker();
    const got: number[] = [];
    const s = createService({
      name: 'billing',
      transport: broker.transport(),
      logger: silentLogger,
    });
    s.on(submit, (o) => void got.push(o.id));
    const started = s.start();
    const stopped = s.stop();
    await started;
    await stopped;
    expect(broker.queue('billing.order.submit')?.consumers).toHaveLength(0);
    const producer = createService({ name: 'order', transport: broker.transport() });
    await producer.publish(submit, { id: 1 });
    await sleep(30);
    expect(got).toEqual([]);
  });

  it('every stop() call waits for the same shutdown', async () => {
    const broker = new MemoryBroker();
    const s = createService({
      name: 'billing',
      transport: broker.transport(),
      logger: silentLogger,
    });
    const events: string[] = [];
    s.on(submit, async () => {
      events.push('start');
      await sleep(100);
      events.push('end');
    });
    await s.start();
    await createService({ name: 'order', transport: broker.transport() }).publish(submit, {
      id: 1,
    });
    await waitFor(() => events.length === 1, 'the handler');
    const first = s.stop();
    const second = s.stop();
    expect(second).toBe(first);
    await second;
    expect(events).toEqual(['start', 'end']);
  });

  it('handles a message whose timestamp is not in seconds instead of leaving it unsettled', async () => {
    const broker = new MemoryBroker();
    const got: number[] = [];
    const s = createService({
      name: 'billing',
      transport: broker.transport(),
      logger: silentLogger,
      prefetch: 1,
    });
    s.on(submit, (o) => void got.push(o.id));
    await s.start();
    const t = broker.transport();
    for (const [id, timestamp] of [
      [1, Date.now() * 1000],
      [2, Number.MAX_VALUE],
    ] as const) {
      await t.publish({
        exchange: 'order',
        routingKey: 'order.v1.submit',
        body: Buffer.from(JSON.stringify({ id })),
        properties: { messageId: `m-${id}`, timestamp, headers: {} },
      });
    }
    await waitFor(() => got.length === 2, 'both messages');
    await s.stop();
  });

  it('does not spend an attempt while the idempotency store is down', async () => {
    const broker = new MemoryBroker();
    let down = 3;
    const store: IdempotencyStore = {
      claim: async () => {
        if (down-- > 0) throw new Error('store unreachable');
        return 'claimed';
      },
      complete: async () => {},
      release: async () => {},
    };
    const attempts: number[] = [];
    const s = createService({
      name: 'billing',
      transport: broker.transport(),
      logger: silentLogger,
      retry: { maxAttempts: 2 },
      idempotency: { store, busyRetryMs: 5 },
    });
    s.on(submit, (_o, ctx) => void attempts.push(ctx.attempt));
    await s.start();
    await createService({ name: 'order', transport: broker.transport() }).publish(submit, {
      id: 1,
    });
    await waitFor(() => attempts.length === 1, 'the handler once the store is back');
    expect(attempts).toEqual([1]);
    expect(broker.depth('billing.order.submit.dlq')).toBe(0);
    await s.stop();
  });
});

describe('replay edge cases', () => {
  it('replays each dead letter once even when it fails again at once', async () => {
    const broker = new MemoryBroker();
    const s = createService({
      name: 'billing',
      transport: broker.transport(),
      logger: silentLogger,
    });
    let calls = 0;
    s.on(submit, () => {
      calls++;
      throw new NonRetryableError('still broken');
    });
    await s.start();
    const producer = createService({ name: 'order', transport: broker.transport() });
    for (let i = 1; i <= 3; i++) await producer.publish(submit, { id: i });
    const dlq = 'billing.order.submit.dlq';
    await waitFor(() => broker.depth(dlq) === 3, 'three dead letters');
    // Slow reads, as over a network, give the replayed messages time to fail and come back.
    const inner = broker.transport();
    const slow: Transport = Object.assign(Object.create(inner), {
      get: async (queue: string) => {
        await sleep(5);
        return inner.get(queue);
      },
    });
    const result = await replayDeadLetters(slow, dlq);
    expect(result.replayed).toHaveLength(3);
    await waitFor(() => broker.depth(dlq) === 3, 'the three back in the dead-letter queue');
    expect(calls).toBe(6);
    await s.stop();
  });

  it('replays a plain AMQP message that names its event only by its routing key', async () => {
    const broker = new MemoryBroker();
    let broken = true;
    const got: number[] = [];
    const s = createService({
      name: 'billing',
      transport: broker.transport(),
      logger: silentLogger,
    });
    s.on(submit, (o) => {
      if (broken) throw new NonRetryableError('not yet');
      got.push(o.id);
    });
    await s.start();
    const t = broker.transport();
    await t.publish({
      exchange: 'order',
      routingKey: 'order.v1.submit',
      body: Buffer.from('{"id": 7}'),
      properties: { messageId: 'plain-1', headers: {} },
    });
    const dlq = 'billing.order.submit.dlq';
    await waitFor(() => broker.depth(dlq) === 1, 'the dead letter');
    broken = false;
    await replayDeadLetters(t, dlq);
    await waitFor(() => got.length === 1, 'the replayed message');
    expect(got).toEqual([7]);
    expect(broker.depth(dlq)).toBe(0);
    await s.stop();
  });
});
