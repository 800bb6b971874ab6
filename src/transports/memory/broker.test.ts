import { describe, expect, it } from 'vitest';
import { waitFor } from '../../testing/conformance.js';
import type { Delivery } from '../transport.js';
import { MemoryBroker } from './broker.js';

const msg = (body: string) => ({
  exchange: 'ex',
  routingKey: 'k',
  body: Buffer.from(body),
  properties: { headers: {} },
});

describe('MemoryBroker specifics', () => {
  it('puts requeued messages back in their original order, ahead of newer ones', async () => {
    const broker = new MemoryBroker();
    const t1 = broker.transport();
    await t1.declare({
      exchanges: ['ex'],
      queues: [{ name: 'q', bindings: [{ exchange: 'ex', pattern: '#' }] }],
    });
    for (const b of ['a', 'b', 'c']) await t1.publish(msg(b));
    const held: Delivery[] = [];
    await t1.consume('q', { prefetch: 3 }, (d) => held.push(d));
    await waitFor(() => held.length === 3, '3 deliveries');
    await t1.publish(msg('d'));
    await t1.close();
    expect(broker.depth('q')).toBe(4);
    const t2 = broker.transport();
    const order: string[] = [];
    await t2.consume('q', { prefetch: 10 }, (d) => {
      order.push(`${d.message.body}${d.message.redelivered ? '*' : ''}`);
      d.ack();
    });
    await waitFor(() => order.length === 4, '4 deliveries');
    expect(order).toEqual(['a*', 'b*', 'c*', 'd']);
  });

  it('throws when a delivery is settled twice', async () => {
    const broker = new MemoryBroker();
    const t = broker.transport();
    await t.declare({
      exchanges: ['ex'],
      queues: [{ name: 'q', bindings: [{ exchange: 'ex', pattern: '#' }] }],
    });
    await t.publish(msg('x'));
    const held: Delivery[] = [];
    await t.consume('q', { prefetch: 1 }, (d) => held.push(d));
    await waitFor(() => held.length === 1, 'a delivery');
    await held[0]!.ack();
    await expect(held[0]!.ack()).rejects.toThrow(/settled twice/);
  });

  it('keeps a consumer callback that throws from breaking the broker', async () => {
    const broker = new MemoryBroker();
    const errors: unknown[] = [];
    broker.onError((e) => errors.push(e));
    const t = broker.transport();
    await t.declare({
      exchanges: ['ex'],
      queues: [{ name: 'q', bindings: [{ exchange: 'ex', pattern: '#' }] }],
    });
    let calls = 0;
    await t.consume('q', { prefetch: 1 }, (d) => {
      calls++;
      if (calls === 1) throw new Error('bug in a consumer');
      d.ack();
    });
    await t.publish(msg('x'));
    await waitFor(() => calls === 2, 'the redelivery');
    expect(errors).toHaveLength(1);
  });

  it('keeps at most maxLength copies waiting for a tap, dropping the oldest', async () => {
    const broker = new MemoryBroker();
    const t = broker.transport();
    await t.declare({ exchanges: ['ex'], queues: [] });
    const seen: string[] = [];
    await t.tap('ex', '#', (m) => seen.push(m.body.toString()), { maxLength: 3 });
    // Published within one turn of the event loop, before the tap's consumer runs.
    await Promise.all(['1', '2', '3', '4', '5'].map((b) => t.publish(msg(b))));
    await waitFor(() => seen.length === 3, 'three copies');
    expect(seen).toEqual(['3', '4', '5']);
    expect(broker.queueNames().filter((n) => n.startsWith('tidings.tap.'))).toHaveLength(1);
    await t.close();
    expect(broker.queueNames()).toEqual([]);
  });
});
