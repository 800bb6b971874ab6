import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { defineEvent, defineExchange } from '../contracts/event.js';
import { HEADERS } from '../envelope/envelope.js';
import { silentLogger } from '../logger.js';
import { createService } from '../runtime/service.js';
import { MemoryBroker } from '../transports/memory/broker.js';
import { asyncApi } from './asyncapi.js';
import { topology } from './topology.js';

const shop = defineExchange('shop');
const placed = defineEvent(shop, 'placed', z.object({ customer: z.string(), seq: z.number() }), {
  key: (o) => o.customer,
});

function services() {
  const transport = new MemoryBroker().transport();
  const ledger = createService({ name: 'ledger', transport, logger: silentLogger });
  ledger.on(placed, () => {}, { partitions: 8 });
  const mail = createService({ name: 'mail', transport, logger: silentLogger });
  mail.on(placed, () => {});
  const shopService = createService({
    name: 'shop',
    transport,
    logger: silentLogger,
    publishes: [placed],
  });
  return [ledger, mail, shopService];
}

describe('a partitioned subscription in the tooling', () => {
  it('describes its partitions', () => {
    const [ledger] = services();
    expect(ledger!.describe().handlers[0]!.partitions).toEqual({
      count: 8,
      consume: [0, 1, 2, 3, 4, 5, 6, 7],
    });
    expect(ledger!.topology().queues).toEqual([
      {
        name: 'ledger.shop.placed',
        bindings: [{ exchange: 'shop', pattern: 'shop.*.placed' }],
        partitions: 8,
      },
    ]);
  });

  it('shows the partitions in the text and Mermaid topology, beside a plain consumer', () => {
    const text = topology(services());
    expect(text).toContain('ledger  (queue ledger.shop.placed.p0…p7 (8 partitions by key)');
    expect(text).toContain('mail  (queue mail.shop.placed, binding shop.*.placed)');
    expect(topology(services(), { format: 'mermaid' })).toContain(
      '[("ledger.shop.placed.p0…p7 (8 partitions by key)")]',
    );
    expect(topology(services(), { format: 'svg' })).toContain('8 partitions by key');
  });

  it('documents the key headers and the partitions in AsyncAPI', async () => {
    const document = await asyncApi({ services: services(), title: 'shop', version: '1.0.0' });
    const doc = document as unknown as {
      components: { messages: Record<string, { headers: { required: string[] } }> };
      operations: Record<string, Record<string, unknown>>;
    };
    const headers = doc.components.messages['shop.v1.placed']!.headers;
    expect(headers.required).toEqual(expect.arrayContaining([HEADERS.key, HEADERS.bucket]));
    const op = doc.operations['ledger.shop.placed.receive.shop.v1.placed']!;
    expect(op['x-tidings-partitions']).toBe(8);
    expect(doc.operations['mail.shop.placed.receive.shop.v1.placed']!['x-tidings-partitions']).toBe(
      undefined,
    );
  });
});
