import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { defineEvent, defineExchange } from '../contracts/event.js';
import { partitionOfKey } from '../contracts/key.js';
import { silentLogger } from '../logger.js';
import { createService } from '../runtime/service.js';
import { waitFor } from '../testing/conformance.js';
import { MemoryBroker } from '../transports/memory/broker.js';
import { listDeadLetters, replayDeadLetters } from './dead-letters.js';

const shop = defineExchange('shop');
const placed = defineEvent(shop, 'placed', z.object({ customer: z.string(), n: z.number() }), {
  key: (o) => o.customer,
});

describe('dead letters of a partitioned handler', () => {
  it('are listed from <queue>.dlq and replayed to the partition each failed in', async () => {
    const broker = new MemoryBroker();
    let broken = true;
    const handled: string[] = [];
    const ledger = createService({
      name: 'ledger',
      transport: broker.transport(),
      logger: silentLogger,
      retry: { maxAttempts: 1 },
    });
    ledger.on(
      placed,
      (o) => {
        if (broken) throw new Error('ledger locked');
        handled.push(`${o.customer}:${o.n}`);
      },
      { partitions: 4 },
    );
    await ledger.start();
    const shopService = createService({ name: 'shop', transport: broker.transport() });
    const customers = ['a', 'b', 'c', 'd', 'e', 'f'];
    for (const customer of customers) await shopService.publish(placed, { customer, n: 1 });
    const dlq = 'ledger.shop.placed.dlq';
    await waitFor(() => broker.depth(dlq) === customers.length, 'the dead letters');

    const admin = broker.transport();
    const listed = await listDeadLetters(admin, dlq);
    expect(
      Object.fromEntries(
        listed
          .map((d) => [String(d.headers['tidings-key']), d.queue])
          .sort(([a], [b]) => (a! < b! ? -1 : 1)),
      ),
    ).toEqual(
      Object.fromEntries(customers.map((c) => [c, `ledger.shop.placed.p${partitionOfKey(c, 4)}`])),
    );
    broken = false;
    const result = await replayDeadLetters(admin, dlq);
    expect(result.failed).toEqual([]);
    await waitFor(() => handled.length === customers.length, 'the replays');
    expect([...handled].sort()).toEqual(customers.map((c) => `${c}:1`));
    expect(broker.depth(dlq)).toBe(0);
    await ledger.stop();
  });
});
