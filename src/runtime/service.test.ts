import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { defineEvent, defineExchange } from '../contracts/event.js';
import { ConfigError, InvalidNameError, StateError, ValidationError } from '../errors.js';
import { silentLogger } from '../logger.js';
import { waitFor } from '../testing/conformance.js';
import { MemoryBroker } from '../transports/memory/broker.js';
import { DEFAULT_RETRY_POLICY, resolveRetryPolicy, retryDelay } from './retry.js';
import { createService } from './service.js';

const submit = defineEvent(defineExchange('order'), 'submit', z.object({ id: z.number().int() }));

describe('createService', () => {
  it('reports every configuration problem at once', () => {
    const broker = new MemoryBroker();
    let error: unknown;
    try {
      createService({
        name: 'Billing',
        transport: broker.transport(),
        prefetch: 0,
        unroutable: 'maybe' as never,
        retry: { maxAttempts: 0, jitter: 2 },
      });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const problems = (error as ConfigError).problems;
    expect(problems).toHaveLength(5);
    expect(problems.join('\n')).toMatch(/service name "Billing": must be lowercase/);
    expect(problems.join('\n')).toMatch(/unroutable/);
    expect(problems.join('\n')).toMatch(/prefetch must be an integer >= 1/);
    expect(problems.join('\n')).toMatch(/maxAttempts/);
    expect(problems.join('\n')).toMatch(/jitter/);
  });

  it('names each handler queue <service>.<exchange>.<event> bound to every version', () => {
    const s = createService({ name: 'billing', transport: new MemoryBroker().transport() });
    s.on(submit, () => {});
    expect(s.topology()).toEqual({
      exchanges: ['order'],
      queues: [
        {
          name: 'billing.order.submit',
          bindings: [{ exchange: 'order', pattern: 'order.*.submit' }],
        },
      ],
    });
    expect(() => s.on(submit, () => {})).toThrow(/already used by another handler/);
    s.on(submit, () => {}, { queue: 'billing.order.submit-audit', pattern: 'order.v1.submit' });
    expect(s.topology().queues[1]).toEqual({
      name: 'billing.order.submit-audit',
      bindings: [{ exchange: 'order', pattern: 'order.v1.submit' }],
    });
  });

  it('refuses handlers after start and publishing after stop', async () => {
    const broker = new MemoryBroker();
    const s = createService({
      name: 'billing',
      transport: broker.transport(),
      logger: silentLogger,
    });
    s.on(submit, () => {});
    await s.start();
    expect(() => s.on(submit, () => {}, { queue: 'other' })).toThrow(StateError);
    await s.stop();
    await expect(s.publish(submit, { id: 1 })).rejects.toBeInstanceOf(StateError);
  });

  it('validates before publishing and sends nothing when invalid', async () => {
    const broker = new MemoryBroker();
    const consumer = createService({ name: 'billing', transport: broker.transport() });
    consumer.on(submit, () => {});
    await consumer.start();
    await consumer.stop();
    const producer = createService({ name: 'order', transport: broker.transport() });
    const error = await producer.publish(submit, { id: 1.5 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ValidationError);
    expect((error as ValidationError).issues[0]?.path).toEqual(['id']);
    expect(broker.depth('billing.order.submit')).toBe(0);
    await producer.publish(submit, { id: 1 });
    expect(broker.depth('billing.order.submit')).toBe(1);
  });

  it('declares the exchange it publishes to, so publishing first cannot fail on a missing exchange', async () => {
    const broker = new MemoryBroker();
    const producer = createService({
      name: 'order',
      transport: broker.transport(),
      unroutable: 'ignore',
    });
    await expect(producer.publish(submit, { id: 1 })).resolves.toMatchObject({ source: 'order' });
  });

  it('rejects an invalid service name with the name and the reason', () => {
    expect(() =>
      createService({ name: 'bill ing', transport: new MemoryBroker().transport() }),
    ).toThrow(/service name "bill ing": must not contain whitespace/);
    expect(new InvalidNameError('service', 'x', 'y').code).toBe('invalid-name');
  });
});

describe('lifecycle', () => {
  it('runs messages that wait for a handler while start() is still consuming other queues, without redelivering them', async () => {
    const broker = new MemoryBroker();
    const chargeback = defineEvent(
      defineExchange('order'),
      'chargeback',
      z.object({ id: z.number() }),
    );
    const producer = createService({ name: 'order', transport: broker.transport() });
    const transport = broker.transport();
    // The second queue's consume takes a while, so the first queue delivers during 'starting'.
    const consume = transport.consume.bind(transport);
    let release: () => void = () => {};
    let calls = 0;
    transport.consume = async (queue, options, onDelivery) => {
      calls++;
      if (calls === 2) await new Promise<void>((resolve) => (release = resolve));
      return consume(queue, options, onDelivery);
    };
    const seen: { id: number; redelivered: boolean }[] = [];
    const s = createService({ name: 'billing', transport, logger: silentLogger, concurrency: 1 });
    s.on(submit, async (o, ctx) => {
      seen.push({ id: o.id, redelivered: ctx.redelivered });
    });
    s.on(chargeback, () => {});
    await broker.transport().declare(s.topology());
    for (const id of [1, 2, 3]) await producer.publish(submit, { id });
    const started = s.start();
    await waitFor(() => seen.length === 3, 'three orders handled during start()');
    expect(s.state).toBe('starting');
    release();
    await started;
    expect(s.state).toBe('running');
    expect(seen).toEqual([
      { id: 1, redelivered: false },
      { id: 2, redelivered: false },
      { id: 3, redelivered: false },
    ]);
    await s.stop();
    expect(s.state).toBe('stopped');
  });
});

describe('versions on consume', () => {
  const shop = defineExchange('shop');
  const V1 = z.object({ id: z.number() });
  const V2 = z.object({ id: z.number(), currency: z.string() });

  async function run(event: typeof placedDown, handlerVersion: 1 | 2, publishVersion: 1 | 2) {
    const broker = new MemoryBroker();
    const seen: unknown[] = [];
    const s = createService({
      name: 'billing',
      transport: broker.transport(),
      logger: silentLogger,
    });
    s.on(event, (p, ctx) => void seen.push({ p, wire: ctx.wireVersion }), {
      version: handlerVersion,
    });
    await s.start();
    const producer = createService({ name: 'shop', transport: broker.transport() });
    if (publishVersion === 1) await producer.publish(event, { id: 1 }, { version: 1 });
    else await producer.publish(event, { id: 1, currency: 'USD' });
    await new Promise((r) => setTimeout(r, 30));
    await s.stop();
    return { seen, dead: broker.depth('billing.shop.placed.dlq') };
  }

  const placedUp = defineEvent(shop, 'placed', V1).version(V2, (v1) => ({
    ...v1,
    currency: 'EUR',
  }));
  const placedDown = defineEvent(shop, 'placed', V1).version(
    V2,
    (v1) => ({ ...v1, currency: 'EUR' }),
    {
      downcast: ({ id }) => ({ id }),
    },
  );

  it("upcasts an older version to the handler's", async () => {
    expect(await run(placedUp, 2, 1)).toEqual({
      seen: [{ p: { id: 1, currency: 'EUR' }, wire: 1 }],
      dead: 0,
    });
  });

  it('dead-letters a newer version when no downcast is declared', async () => {
    expect(await run(placedUp, 1, 2)).toEqual({ seen: [], dead: 1 });
  });

  it('downcasts a newer version when the contract declares how', async () => {
    expect(await run(placedDown, 1, 2)).toEqual({ seen: [{ p: { id: 1 }, wire: 2 }], dead: 0 });
  });
});

describe('onAny', () => {
  it('delivers several events to one handler, tagged by event and upcast to the newest version', async () => {
    const order = defineExchange('shop');
    const placed = defineEvent(order, 'placed', z.object({ id: z.number() })).version(
      z.object({ id: z.number(), currency: z.string() }),
      (v1) => ({ ...v1, currency: 'EUR' }),
    );
    const cancelled = defineEvent(order, 'cancelled', z.object({ id: z.number() }));
    const other = defineEvent(order, 'other', z.object({}));
    const broker = new MemoryBroker();
    const seen: unknown[] = [];
    const audit = createService({
      name: 'audit',
      transport: broker.transport(),
      logger: silentLogger,
    });
    audit.onAny([placed, cancelled], (m) => void seen.push(m), {
      queue: 'audit.shop',
      patterns: [{ exchange: 'shop', pattern: 'shop.#' }],
    });
    expect(audit.topology().queues).toEqual([
      { name: 'audit.shop', bindings: [{ exchange: 'shop', pattern: 'shop.#' }] },
    ]);
    await audit.start();
    const shop = createService({ name: 'shop', transport: broker.transport() });
    await shop.publish(placed, { id: 1 }, { version: 1 });
    await shop.publish(cancelled, { id: 1 });
    await shop.publish(other, {});
    await new Promise((r) => setTimeout(r, 50));
    expect(seen).toEqual([
      { exchange: 'shop', event: 'placed', payload: { id: 1, currency: 'EUR' } },
      { exchange: 'shop', event: 'cancelled', payload: { id: 1 } },
    ]);
    expect(broker.depth('audit.shop.dlq')).toBe(1);
    await audit.stop();
  });

  it('requires a queue name and a non-empty event list', () => {
    const s = createService({ name: 'audit', transport: new MemoryBroker().transport() });
    expect(() => s.onAny([], () => {}, { queue: 'q' })).toThrow(/non-empty list/);
    expect(() => s.onAny([submit], () => {}, { queue: '' })).toThrow(
      /queue must be a non-empty string/,
    );
  });
});

describe('retry policy', () => {
  it('grows exponentially, is capped, and spreads by the jitter', () => {
    const p = resolveRetryPolicy({ baseDelayMs: 100, factor: 2, maxDelayMs: 1000, jitter: 0 });
    expect([1, 2, 3, 4, 5, 6].map((n) => retryDelay(p, n))).toEqual([
      100, 200, 400, 800, 1000, 1000,
    ]);
    const j = resolveRetryPolicy({ baseDelayMs: 1000, jitter: 0.25 });
    expect(retryDelay(j, 1, () => 0)).toBe(750);
    expect(retryDelay(j, 1, () => 1)).toBe(1250);
  });

  it('documents its defaults', () => {
    expect(DEFAULT_RETRY_POLICY).toMatchObject({
      maxAttempts: 5,
      baseDelayMs: 500,
      factor: 3,
      maxDelayMs: 60_000,
      jitter: 0.25,
    });
  });
});
