import { DiagnosticSeverity, Parser } from '@asyncapi/parser';
import * as v from 'valibot';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { defineEvent, defineExchange } from '../contracts/event.js';
import type { ServiceDescription } from '../runtime/service.js';
import { asyncApi } from './asyncapi.js';
import { toYaml } from './yaml.js';

const order = defineExchange('order');
const Order = z.object({ id: z.number().int(), total: z.number() });
const submit = defineEvent(order, 'submit', Order).version(
  Order.extend({ currency: z.enum(['EUR', 'USD']) }),
  (o) => ({ ...o, currency: 'EUR' as const }),
);
const cancel = defineEvent(order, 'cancel', z.object({ id: z.number() }));

const orderService: ServiceDescription = {
  name: 'order',
  publishes: [submit, cancel],
  handlers: [],
};
const billing: ServiceDescription = {
  name: 'billing',
  publishes: [],
  handlers: [
    {
      name: 'post',
      queue: 'billing.order.submit',
      events: [{ event: submit, version: 2 }],
      bindings: [{ exchange: 'order', pattern: 'order.*.submit' }],
    },
  ],
};
const legacy: ServiceDescription = {
  name: 'legacy',
  publishes: [],
  handlers: [
    {
      name: 'ship',
      queue: 'legacy.order.submit',
      events: [{ event: submit, version: 1 }],
      bindings: [{ exchange: 'order', pattern: 'order.*.submit' }],
    },
  ],
};

async function errorsOf(document: string) {
  const { diagnostics } = await new Parser().parse(document);
  return diagnostics
    .filter((d) => d.severity === DiagnosticSeverity.Error)
    .map((d) => `${d.path.join('/')}: ${d.message}`);
}

/** The value at a path of a JSON document. */
function at(value: unknown, ...path: string[]): Record<string, unknown> {
  let v = value;
  for (const key of path) v = (v as Record<string, unknown>)[key];
  return v as Record<string, unknown>;
}

describe('asyncApi', () => {
  it('writes an AsyncAPI 3.0.0 document that parses without errors, as JSON and as YAML', async () => {
    const doc = await asyncApi({
      title: 'Shop',
      version: '2.1.0',
      services: [orderService, billing, legacy],
    });
    expect(doc.asyncapi).toBe('3.0.0');
    expect(await errorsOf(JSON.stringify(doc))).toEqual([]);
    expect(await errorsOf(toYaml(doc))).toEqual([]);
    const { document } = await new Parser().parse(toYaml(doc));
    expect(document?.info().title()).toBe('Shop');
    expect(document?.info().version()).toBe('2.1.0');
  });

  it('makes one channel per routing key, bound to its topic exchange', async () => {
    const doc = await asyncApi({ title: 'Shop', version: '1', services: [orderService] });
    expect(Object.keys(at(doc, 'channels'))).toEqual([
      'order.v1.cancel',
      'order.v1.submit',
      'order.v2.submit',
    ]);
    expect(at(doc, 'channels', 'order.v2.submit')).toMatchObject({
      address: 'order.v2.submit',
      messages: { 'order.v2.submit': { $ref: '#/components/messages/order.v2.submit' } },
      bindings: {
        amqp: {
          is: 'routingKey',
          exchange: { name: 'order', type: 'topic', durable: true, autoDelete: false, vhost: '/' },
          bindingVersion: '0.3.0',
        },
      },
    });
  });

  it('describes payloads as JSON Schema and headers as the CloudEvents attributes', async () => {
    const doc = await asyncApi({ title: 'Shop', version: '1', services: [orderService] });
    const message = at(doc, 'components', 'messages', 'order.v2.submit');
    expect(message).toMatchObject({
      contentType: 'application/json',
      payload: { $ref: '#/components/schemas/order.v2.submit' },
      bindings: { amqp: { messageType: 'order.v2.submit' } },
    });
    // Wire format 3: id, type and source are AMQP properties, the time is in the id; one header
    // is always there, ce-time only when the id does not hold the time.
    expect(at(message, 'headers').required).toEqual(['tidings-wire']);
    expect(at(message, 'headers', 'properties', 'tidings-wire')).toMatchObject({ const: '3' });
    expect(at(message, 'headers', 'properties', 'ce-time')).toMatchObject({ format: 'date-time' });
    expect(at(message, 'headers', 'properties', 'ce-id')).toBeUndefined();
    expect(at(message, 'headers', 'properties', 'ce-specversion')).toBeUndefined();
    expect(String(at(message, 'headers').description)).toContain('message_id');
    expect(at(doc, 'components', 'schemas', 'order.v2.submit')).toMatchObject({
      type: 'object',
      required: ['id', 'total', 'currency'],
      properties: { currency: { enum: ['EUR', 'USD'] } },
    });
  });

  it('has a send operation per published event, at its newest version', async () => {
    const doc = await asyncApi({ title: 'Shop', version: '1', services: [orderService] });
    expect(Object.keys(at(doc, 'operations'))).toEqual([
      'order.send.order.v1.cancel',
      'order.send.order.v2.submit',
    ]);
    expect(at(doc, 'operations', 'order.send.order.v2.submit')).toMatchObject({
      action: 'send',
      channel: { $ref: '#/channels/order.v2.submit' },
      messages: [{ $ref: '#/channels/order.v2.submit/messages/order.v2.submit' }],
      bindings: { amqp: { deliveryMode: 2, mandatory: true } },
    });
  });

  it('has a receive operation per queue and routing key its handler accepts', async () => {
    const doc = await asyncApi({
      title: 'Shop',
      version: '1',
      services: [billing, legacy],
    });
    expect(Object.keys(at(doc, 'operations'))).toEqual([
      'billing.order.submit.receive.order.v1.submit',
      'billing.order.submit.receive.order.v2.submit',
      // legacy reads version 1 only, and v2 declares no downcast: v2 is dead-lettered there.
      'legacy.order.submit.receive.order.v1.submit',
    ]);
    const upcast = at(doc, 'operations', 'billing.order.submit.receive.order.v1.submit');
    expect(upcast).toMatchObject({
      action: 'receive',
      channel: { $ref: '#/channels/order.v1.submit' },
      bindings: { amqp: { ack: true } },
      'x-tidings-queue': 'billing.order.submit',
      'x-tidings-bindings': [{ exchange: 'order', pattern: 'order.*.submit' }],
      'x-tidings-handler-version': 2,
    });
    expect(upcast.summary).toContain('bound to order with order.*.submit, upcast to v2');
  });

  it('lets a handler on an older version receive a newer one that declares a downcast', async () => {
    const placed = defineEvent(order, 'placed', Order).version(
      Order.extend({ note: z.string() }),
      (o) => ({ ...o, note: '' }),
      { downcast: ({ note: _, ...o }) => o },
    );
    const old: ServiceDescription = {
      name: 'old',
      publishes: [],
      handlers: [
        {
          name: 'h',
          queue: 'old.order.placed',
          events: [{ event: placed, version: 1 }],
          bindings: [{ exchange: 'order', pattern: 'order.*.placed' }],
        },
      ],
    };
    const doc = await asyncApi({ title: 'Shop', version: '1', services: [old] });
    expect(at(doc, 'operations', 'old.order.placed.receive.order.v2.placed').summary).toContain(
      'downcast to v1',
    );
  });

  it('describes the broker without its credentials', async () => {
    const doc = await asyncApi({
      title: 'Shop',
      version: '1',
      services: [orderService],
      server: 'amqps://app:s3cret@rabbit.internal:5671/shop',
    });
    expect(JSON.stringify(doc)).not.toContain('s3cret');
    expect(JSON.stringify(doc)).not.toContain('app:');
    expect(at(doc, 'servers', 'broker')).toMatchObject({
      host: 'rabbit.internal:5671',
      protocol: 'amqps',
      pathname: '/shop',
    });
    expect(at(doc, 'channels', 'order.v1.cancel', 'bindings', 'amqp', 'exchange').vhost).toBe(
      'shop',
    );
    expect(await errorsOf(JSON.stringify(doc))).toEqual([]);
  });

  it('moves local definitions of recursive schemas into components, so their $refs resolve', async () => {
    type Category = { name: string; children: Category[] };
    const Category: z.ZodType<Category> = z.object({
      name: z.string(),
      children: z.array(z.lazy(() => Category)),
    });
    const tree = defineEvent(
      defineExchange('catalog'),
      'tree',
      z.object({ root: Category, spare: Category }),
    );
    const catalog: ServiceDescription = { name: 'catalog', publishes: [tree], handlers: [] };
    const doc = await asyncApi({ title: 'Catalog', version: '1', services: [catalog] });
    const schemas = Object.keys(at(doc, 'components', 'schemas'));
    expect(schemas.length).toBeGreaterThan(1);
    expect(JSON.stringify(doc)).not.toContain('#/definitions/');
    expect(await errorsOf(JSON.stringify(doc))).toEqual([]);
  });

  it('includes events of the contracts that no service mentions, and lists unconvertible schemas', async () => {
    const ping = defineEvent(defineExchange('audit'), 'ping', v.object({ at: v.string() }));
    const doc = await asyncApi({
      title: 'Shop',
      version: '1',
      services: [orderService],
      contracts: { ping },
    });
    expect(Object.keys(at(doc, 'channels'))).toContain('audit.v1.ping');
    expect(doc['x-tidings-warnings']).toEqual([
      expect.stringMatching(/^audit\.v1\.ping: no JSON Schema/),
    ]);
    expect(await errorsOf(JSON.stringify(doc))).toEqual([]);
  });
});
