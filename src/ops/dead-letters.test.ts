import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { defineEvent, defineExchange } from '../contracts/event.js';
import { silentLogger } from '../logger.js';
import { createService } from '../runtime/service.js';
import { waitFor } from '../testing/conformance.js';
import { MemoryBroker } from '../transports/memory/broker.js';
import { listDeadLetters, purgeDeadLetters, replayDeadLetters } from './dead-letters.js';

const exchange = defineExchange('order');
const submitV1 = defineEvent(exchange, 'submit', z.object({ id: z.number() }));
const submitV2 = submitV1.version(z.object({ id: z.number(), currency: z.string() }), (v1) => ({
  ...v1,
  currency: 'EUR',
}));
const submitV3 = submitV2.version(
  z.object({ id: z.number(), currency: z.string(), channel: z.string() }),
  (v2) => ({ ...v2, channel: 'web' }),
);

describe('dead letters: list, replay, purge', () => {
  it("replays a fixed handler's dead letters once each, to that consumer only", async () => {
    const broker = new MemoryBroker();
    let broken = true;
    const billed: number[] = [];
    const shipped: number[] = [];
    const billing = createService({
      name: 'billing',
      transport: broker.transport(),
      logger: silentLogger,
      retry: { maxAttempts: 2, baseDelayMs: 5 },
    });
    billing.on(submitV1, (o) => {
      if (broken) throw new Error('ledger locked');
      billed.push(o.id);
    });
    const logistic = createService({ name: 'logistic', transport: broker.transport() });
    logistic.on(submitV1, (o) => void shipped.push(o.id));
    await billing.start();
    await logistic.start();
    const order = createService({ name: 'order', transport: broker.transport() });
    const ids: string[] = [];
    for (let i = 1; i <= 5; i++) ids.push((await order.publish(submitV1, { id: i })).id);
    const dlq = 'billing.order.submit.dlq';
    await waitFor(() => broker.depth(dlq) === 5 && shipped.length === 5, '5 dead letters');

    const admin = broker.transport();
    const listed = await listDeadLetters(admin, dlq);
    // Retries are jittered, so the five reach the dead-letter queue in any order.
    expect(listed.map((d) => d.id).sort()).toEqual([...ids].sort());
    const order1 = listed.map((d) => d.id);
    expect(listed[0]).toMatchObject({
      type: 'order.v1.submit',
      reason: 'handler-error',
      error: 'ledger locked',
      attempts: 2,
      queue: 'billing.order.submit',
      service: 'billing',
    });
    // Both failures are recorded: the first attempt's and the last one's.
    const first = Date.parse(listed[0]!.firstFailedAt ?? '');
    expect(first).toBeLessThanOrEqual(Date.parse(listed[0]!.deadLetteredAt ?? ''));
    expect(broker.depth(dlq)).toBe(5);

    broken = false;
    const progress: number[] = [];
    const one = await replayDeadLetters(admin, dlq, { ids: [ids[2]!] });
    expect(one.replayed).toEqual([ids[2]]);
    await waitFor(() => billed.length === 1, 'the replayed message');
    const rest = await replayDeadLetters(admin, dlq, { onProgress: (done) => progress.push(done) });
    expect(rest.replayed).toEqual(order1.filter((id) => id !== ids[2]));
    expect(progress).toEqual([1, 2, 3, 4]);
    await waitFor(() => billed.length === 5, 'every replayed message');
    expect(billed.sort()).toEqual([1, 2, 3, 4, 5]);
    expect(broker.depth(dlq)).toBe(0);
    await new Promise((r) => setTimeout(r, 50));
    expect(shipped).toHaveLength(5);
  });

  it('dead-letters a newer version with unsupported-version, and processes it after upgrade and replay', async () => {
    const broker = new MemoryBroker();
    const seen: { id: number; wire: number; channel?: string }[] = [];
    const v2 = createService({
      name: 'billing',
      transport: broker.transport(),
      logger: silentLogger,
    });
    v2.on(submitV2, (o, ctx) => void seen.push({ id: o.id, wire: ctx.wireVersion }));
    await v2.start();
    const producer = createService({ name: 'order', transport: broker.transport() });
    await producer.publish(submitV3, { id: 1 }, { version: 1 });
    await producer.publish(submitV3, { id: 2, currency: 'USD' }, { version: 2 });
    await producer.publish(submitV3, { id: 3, currency: 'USD', channel: 'app' });
    const dlq = 'billing.order.submit.dlq';
    await waitFor(
      () => seen.length === 2 && broker.depth(dlq) === 1,
      'v1 and v2 handled, v3 parked',
    );
    expect(seen).toEqual([
      { id: 1, wire: 1 },
      { id: 2, wire: 2 },
    ]);
    const [dead] = await listDeadLetters(broker.transport(), dlq);
    expect(dead).toMatchObject({ reason: 'unsupported-version', type: 'order.v3.submit' });

    await v2.stop();
    const v3 = createService({
      name: 'billing',
      transport: broker.transport(),
      logger: silentLogger,
    });
    v3.on(
      submitV3,
      (o, ctx) => void seen.push({ id: o.id, wire: ctx.wireVersion, channel: o.channel }),
    );
    await v3.start();
    await replayDeadLetters(broker.transport(), dlq);
    await waitFor(() => seen.length === 3, 'the replayed v3 message');
    expect(seen[2]).toEqual({ id: 3, wire: 3, channel: 'app' });
  });

  it('purges all or chosen dead letters', async () => {
    const broker = new MemoryBroker();
    const s = createService({
      name: 'billing',
      transport: broker.transport(),
      logger: silentLogger,
      retry: { maxAttempts: 1 },
    });
    s.on(submitV1, () => {
      throw new Error('no');
    });
    await s.start();
    const order = createService({ name: 'order', transport: broker.transport() });
    const first = await order.publish(submitV1, { id: 1 });
    await order.publish(submitV1, { id: 2 });
    await order.publish(submitV1, { id: 3 });
    const dlq = 'billing.order.submit.dlq';
    await waitFor(() => broker.depth(dlq) === 3, '3 dead letters');
    expect(await purgeDeadLetters(broker.transport(), dlq, { ids: [first.id] })).toBe(1);
    expect(broker.depth(dlq)).toBe(2);
    expect(await purgeDeadLetters(broker.transport(), dlq)).toBe(2);
    expect(broker.depth(dlq)).toBe(0);
  });
});
