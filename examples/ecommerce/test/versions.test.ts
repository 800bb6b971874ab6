import { orderSubmit } from '@ecommerce/contracts';
import { createService, type MemoryTransport, memoryTransport, silentLogger } from 'tidings';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../scenario.js';
import { type Ecommerce, startEcommerce } from '../system.js';

/**
 * The migration from order.v1.submit to order.v2.submit: Order publishes v2, Billing is on v2,
 * Logistic stays on v1, and a producer not yet upgraded (the seed's Python order service, say)
 * still publishes v1.
 */
describe('order.submit v1 and v2 side by side', () => {
  let transport: MemoryTransport;
  let system: Ecommerce;
  const wire: Record<string, number[]> = { billing: [], logistic: [] };

  beforeAll(async () => {
    transport = memoryTransport();
    system = await startEcommerce(transport, silentLogger);
    for (const s of [system.billing, system.logistic]) {
      s.service.observe('handled', ({ service, envelope }) => {
        if (envelope.event === 'submit') wire[service]!.push(envelope.version);
      });
    }
  });
  afterAll(async () => {
    await system.stop();
    await transport.close();
  });

  it('bills a v1 order from an old producer as EUR, and ships a v2 order on the v1 logistic', async () => {
    const oldProducer = createService({ name: 'legacy-order', transport });
    await oldProducer.publish(
      orderSubmit,
      { id: 101, lines: [{ id: 1, quantity: 2, price: 3 }] },
      { version: 1 },
    );
    const order = createService({ name: 'order-v2', transport });
    await order.publish(orderSubmit, {
      id: 102,
      currency: 'USD',
      lines: [{ id: 1, quantity: 1, price: 4.5 }],
    });
    await waitFor(
      'both orders billed and shipped',
      5000,
      async () => wire.billing!.length === 2 && wire.logistic!.length === 2,
    );
    expect(wire.billing!.sort()).toEqual([1, 2]);
    expect(wire.logistic!.sort()).toEqual([1, 2]);
    const memos = system.billing.books.ledger.journal().map((e) => e.memo);
    expect(memos).toEqual(['Sale, order #101 (EUR)', 'Sale, order #102 (USD)']);
    expect(
      system.logistic.warehouse
        .list()
        .map((s) => s.orderId)
        .sort(),
    ).toEqual([101, 102]);
    expect(transport.broker.depth('billing.order.submit.dlq')).toBe(0);
    expect(transport.broker.depth('logistic.order.submit.dlq')).toBe(0);
  });
});
