import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { defineEvent, defineExchange } from '../contracts/event.js';
import { bucketOf } from '../contracts/key.js';
import { HEADERS } from '../envelope/envelope.js';
import { PartitionKeyError } from '../errors.js';
import { silentLogger } from '../logger.js';
import { MemoryBroker } from '../transports/memory/broker.js';
import type { Outbox, OutboxEntry } from './outbox.js';
import { createService } from './service.js';

const shop = defineExchange('shop');
const placed = defineEvent(shop, 'placed', z.object({ id: z.number(), customer: z.string() }), {
  key: (o) => o.customer,
});

function recordingOutbox(): Outbox & { entries: OutboxEntry[] } {
  const entries: OutboxEntry[] = [];
  return {
    entries,
    async write(_tx, entry) {
      entries.push(entry);
    },
  };
}

describe('the key of a published message', () => {
  it('comes from the contract, or the key option, onto the envelope and the headers', async () => {
    const broker = new MemoryBroker();
    const s = createService({
      name: 'shop',
      transport: broker.transport(),
      unroutable: 'ignore',
      logger: silentLogger,
    });
    const fromContract = await s.publish(placed, { id: 1, customer: 'c-9' });
    expect(fromContract.key).toBe('c-9');
    const explicit = await s.publish(placed, { id: 2, customer: 'c-9' }, { key: 42 });
    expect(explicit.key).toBe('42');
    await expect(s.publish(placed, { id: 3, customer: '' })).rejects.toBeInstanceOf(
      PartitionKeyError,
    );
    await expect(s.publish(placed, { id: 3, customer: 'c' }, { key: Number.NaN })).rejects.toThrow(
      /key option must be a non-empty string or a finite number/,
    );
  });

  it('orders the outbox too: the relay keeps a key in order unless orderingKey says otherwise', async () => {
    const outbox = recordingOutbox();
    const s = createService({
      name: 'shop',
      transport: new MemoryBroker().transport(),
      outbox,
      logger: silentLogger,
    });
    const tx = {};
    await s.publish(placed, { id: 1, customer: 'c-1' }, { tx });
    await s.publish(placed, { id: 2, customer: 'c-1' }, { tx, orderingKey: 'order:2' });
    expect(outbox.entries.map((e) => e.orderingKey)).toEqual(['c-1', 'order:2']);
    const headers = outbox.entries[0]!.message.properties.headers;
    expect(headers[HEADERS.key]).toBe('c-1');
    expect(headers[HEADERS.bucket]).toBe(String(bucketOf('c-1')));
  });
});
