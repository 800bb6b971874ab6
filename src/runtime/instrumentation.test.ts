import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { defineEvent, defineExchange } from '../contracts/event.js';
import { HEADERS } from '../envelope/envelope.js';
import { ConfigError, NonRetryableError, UnroutableError } from '../errors.js';
import type { Logger } from '../logger.js';
import { MemoryBroker } from '../transports/memory/broker.js';
import type { Delivery } from '../transports/transport.js';
import type {
  DeliveryProbe,
  Instrumentation,
  Publication,
  ServiceInstrumentation,
} from './instrumentation.js';
import { traceIdOf } from './instrumentation.js';
import { createService } from './service.js';

const shop = defineExchange('shop');
const placed = defineEvent(shop, 'placed', z.object({ id: z.number() }));
const noted = defineEvent(shop, 'noted', z.object({ id: z.number() }));
const anything = defineEvent(shop, 'anything', z.unknown());

const TRACE = '0af7651916cd43dd8448eb211c80319c';
const traceparent = (span: string) => `00-${TRACE}-${span}-01`;

/** An instrumentation that writes down every hook call, in order. */
function recorder() {
  const calls: string[] = [];
  const publications: Publication[] = [];
  const ends: { error: unknown; routed: boolean }[] = [];
  const probes: DeliveryProbe[] = [];
  let spans = 0;
  const instrumentation: Instrumentation = {
    forService(service): ServiceInstrumentation {
      calls.push(`forService ${service.name} ${service.transport.kind}`);
      return {
        started: (queues) => calls.push(`started ${service.name} ${queues.join(',')}`),
        stopped: () => calls.push(`stopped ${service.name}`),
        publish(publication) {
          publications.push(publication);
          const span = `${String(++spans).padStart(16, '0')}`;
          calls.push(`publish ${publication.envelope.type}`);
          return {
            traceparent: traceparent(span),
            tracestate: 'tidings=test',
            run: (send) => {
              calls.push('publish.run');
              return send();
            },
            end: (error, routed) => {
              ends.push({ error, routed });
              calls.push(`publish.end ${error ? (error as Error).name : 'ok'}`);
            },
          };
        },
        deliver(delivery, handler) {
          calls.push(`deliver ${handler.queue}`);
          const settle =
            (verb: string, fn: () => Promise<void>): (() => Promise<void>) =>
            () => {
              calls.push(`settle ${verb}`);
              return fn();
            };
          const wrapped: Delivery = {
            message: delivery.message,
            queue: delivery.queue,
            ack: settle('ack', () => delivery.ack()),
            requeue: settle('requeue', () => delivery.requeue()),
            retry: (ms, headers) => settle('retry', () => delivery.retry(ms, headers))(),
            deadLetter: (headers) =>
              settle(`dead-letter ${String(headers[HEADERS.deadReason])}`, () =>
                delivery.deadLetter(headers),
              )(),
          };
          const probe: DeliveryProbe = {
            delivery: wrapped,
            run: (process) => {
              calls.push('deliver.run');
              return process();
            },
            handle: async (envelope, attempt, handler) => {
              calls.push(`handle ${envelope.type} attempt ${attempt}`);
              try {
                return await handler();
              } catch (error) {
                calls.push(`handle threw ${(error as Error).name}`);
                throw error;
              }
            },
            end: (error) => calls.push(`deliver.end ${error ? 'error' : 'ok'}`),
          };
          probes.push(probe);
          return probe;
        },
      };
    },
  };
  return { instrumentation, calls, publications, ends, probes };
}

function memoryLogger() {
  const lines: { level: string; message: string; fields: Record<string, unknown> }[] = [];
  const at =
    (level: string) =>
    (message: string, fields: Record<string, unknown> = {}) =>
      void lines.push({ level, message, fields });
  const logger: Logger = {
    debug: at('debug'),
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
  };
  return { logger, lines };
}

async function until(check: () => boolean): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('the instrumentation seam', () => {
  it('refuses an instrumentation without forService, in the one ConfigError', () => {
    expect(() =>
      createService({
        name: 'shop',
        transport: new MemoryBroker().transport(),
        instrumentation: {} as Instrumentation,
      }),
    ).toThrow(ConfigError);
  });

  it('calls the hooks around a publish and a delivery, and settles through the probe', async () => {
    const broker = new MemoryBroker();
    const r = recorder();
    const consumer = createService({
      name: 'billing',
      transport: broker.transport(),
      instrumentation: r.instrumentation,
    });
    consumer.on(placed, async (order, ctx) => {
      await ctx.publish(noted, { id: order.id });
    });
    consumer.on(noted, () => {});
    await consumer.start();
    const producer = createService({
      name: 'shop',
      transport: broker.transport(),
      instrumentation: r.instrumentation,
    });
    const sent = await producer.publish(placed, { id: 7 });
    await until(() => r.calls.filter((c) => c.startsWith('deliver.end')).length === 2);
    await consumer.stop();
    await producer.stop();

    expect(sent.traceparent).toBe(traceparent('0000000000000001'));
    expect(sent.tracestate).toBe('tidings=test');
    const [first, second] = r.publications;
    expect(first).toMatchObject({ format: 'tidings', traceparent: undefined, cause: undefined });
    // The handler's publish names its cause: the probe of the delivery being handled.
    expect(second?.cause).toBe(r.probes[0]);
    expect(second?.envelope.traceparent).toBe(traceparent('0000000000000001'));
    expect(r.calls).toEqual([
      'forService billing memory',
      'started billing billing.shop.placed,billing.shop.noted',
      'forService shop memory',
      'publish shop.v1.placed',
      'publish.run',
      'publish.end ok',
      'deliver billing.shop.placed',
      'deliver.run',
      'handle shop.v1.placed attempt 1',
      'publish shop.v1.noted',
      'publish.run',
      'publish.end ok',
      'settle ack',
      'deliver.end ok',
      'deliver billing.shop.noted',
      'deliver.run',
      'handle shop.v1.noted attempt 1',
      'settle ack',
      'deliver.end ok',
      'stopped billing',
    ]);
  });

  it('puts the probe trace context on the wire and ends the probe with what failed', async () => {
    const broker = new MemoryBroker();
    const r = recorder();
    const q = createService({ name: 'audit', transport: broker.transport() });
    q.on(placed, () => {});
    await q.start();
    await q.stop();
    const producer = createService({
      name: 'shop',
      transport: broker.transport(),
      instrumentation: r.instrumentation,
    });
    await producer.publish(placed, { id: 1 });
    const delivery = await broker.transport().get('audit.shop.placed');
    expect(delivery?.message.properties.headers).toMatchObject({
      traceparent: traceparent('0000000000000001'),
      tracestate: 'tidings=test',
    });
    // No queue for this event: UnroutableError, reported to the probe.
    await expect(producer.publish(noted, { id: 1 })).rejects.toBeInstanceOf(UnroutableError);
    // A payload with no JSON form fails in the codec, before anything is sent.
    await expect(producer.publish(anything, undefined)).rejects.toBeInstanceOf(TypeError);
    expect(r.ends.map((e) => [e.error && (e.error as Error).name, e.routed])).toEqual([
      [undefined, true],
      ['UnroutableError', false],
      ['TypeError', false],
    ]);
  });

  it('lets a probe see retries and dead letters, and names the message on the log line', async () => {
    const broker = new MemoryBroker();
    const r = recorder();
    const { logger, lines } = memoryLogger();
    const consumer = createService({
      name: 'billing',
      transport: broker.transport(),
      logger,
      instrumentation: r.instrumentation,
      retry: { maxAttempts: 2, baseDelayMs: 1, jitter: 0 },
    });
    let calls = 0;
    consumer.on(placed, () => {
      calls++;
      throw calls === 1 ? new Error('flaky') : new NonRetryableError('never');
    });
    await consumer.start();
    const producer = createService({ name: 'shop', transport: broker.transport() });
    const sent = await producer.publish(
      placed,
      { id: 1 },
      { traceparent: traceparent('b7ad6b7169203331') },
    );
    await until(() => broker.depth('billing.shop.placed.dlq') === 1);
    await until(() => r.calls.filter((c) => c.startsWith('deliver.end')).length === 2);
    await consumer.stop();
    expect(r.calls.filter((c) => /^(handle|settle)/.test(c))).toEqual([
      'handle shop.v1.placed attempt 1',
      'handle threw Error',
      'settle retry',
      'handle shop.v1.placed attempt 2',
      'handle threw NonRetryableError',
      'settle dead-letter handler-error',
    ]);
    const line = lines.find((l) => l.message.startsWith('dead-lettered'));
    expect(line?.fields).toMatchObject({
      messageId: sent.id,
      correlationId: sent.correlationId,
      trace_id: TRACE,
    });
  });

  it('dead-letters a message it cannot read through the probe too, without calling the handler', async () => {
    const broker = new MemoryBroker();
    const r = recorder();
    const consumer = createService({
      name: 'billing',
      transport: broker.transport(),
      instrumentation: r.instrumentation,
      logger: memoryLogger().logger,
    });
    consumer.on(placed, () => {});
    await consumer.start();
    await broker.transport().publish({
      exchange: 'shop',
      routingKey: 'shop.v1.placed',
      body: Buffer.from('not json'),
      properties: { messageId: 'm-1', headers: {} },
    });
    await until(() => r.calls.includes('deliver.end ok'));
    await consumer.stop();
    expect(r.calls.filter((c) => /^(handle|settle)/.test(c))).toEqual([
      'settle dead-letter invalid-json',
    ]);
  });
});

describe('a hook that throws', () => {
  it('fails only the delivery it was called for, which is delivered again', async () => {
    const broker = new MemoryBroker();
    const { logger, lines } = memoryLogger();
    let throws = true;
    const instrumentation: Instrumentation = {
      forService: () => ({
        publish: () => undefined,
        deliver: () => {
          if (throws) {
            throws = false;
            throw new Error('a broken hook');
          }
          return undefined;
        },
      }),
    };
    const consumer = createService({
      name: 'billing',
      transport: broker.transport(),
      logger,
      instrumentation,
    });
    let handled = 0;
    consumer.on(placed, () => {
      handled++;
    });
    await consumer.start();
    const producer = createService({ name: 'shop', transport: broker.transport() });
    await producer.publish(placed, { id: 1 });
    await until(() => handled === 1);
    await consumer.stop();
    expect(lines.map((l) => l.message)).toEqual([
      'failed to settle a message of billing.shop.placed; it will be delivered again',
    ]);
  });
});

describe('without instrumentation', () => {
  it("forwards the handled message's traceparent and tracestate on ctx.publish", async () => {
    const broker = new MemoryBroker();
    const consumer = createService({ name: 'billing', transport: broker.transport() });
    const seen: (string | undefined)[][] = [];
    consumer.on(placed, (order, ctx) => ctx.publish(noted, { id: order.id }));
    consumer.on(noted, (_, ctx) => {
      seen.push([ctx.envelope.traceparent, ctx.envelope.tracestate]);
    });
    await consumer.start();
    const producer = createService({ name: 'shop', transport: broker.transport() });
    await producer.publish(
      placed,
      { id: 1 },
      { traceparent: traceparent('b7ad6b7169203331'), tracestate: 'congo=t61rcWkgMzE' },
    );
    await until(() => seen.length === 1);
    await consumer.stop();
    expect(seen).toEqual([[traceparent('b7ad6b7169203331'), 'congo=t61rcWkgMzE']]);
  });

  it('reads trace ids only from well-formed traceparents', () => {
    expect(traceIdOf(traceparent('b7ad6b7169203331'))).toBe(TRACE);
    expect(traceIdOf(`00-${'0'.repeat(32)}-b7ad6b7169203331-01`)).toBeUndefined();
    expect(traceIdOf('garbage')).toBeUndefined();
    expect(traceIdOf(undefined)).toBeUndefined();
  });
});
