import { context, propagation, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import * as semconv from '@opentelemetry/semantic-conventions/incubating';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { describeTracedOrder, tracingSdk, until } from '../../test/support/tracing.js';
import { defineEvent, defineExchange } from '../contracts/event.js';
import { ConfigError, UnroutableError } from '../errors.js';
import { type Logger, silentLogger } from '../logger.js';
import { createService } from '../runtime/service.js';
import { MemoryBroker } from '../transports/memory/broker.js';
import { tracedLogger } from './logger.js';
import { openTelemetry } from './otel.js';
import { ATTRIBUTES, METRICS } from './semconv.js';

describeTracedOrder('the embedded broker', async () => new MemoryBroker().transport());

const shop = defineExchange('shop');
const placed = defineEvent(shop, 'placed', z.object({ id: z.number() }));
const noted = defineEvent(shop, 'noted', z.object({ id: z.number() }));

const TRACE = '0af7651916cd43dd8448eb211c80319c';
const PARENT = `00-${TRACE}-b7ad6b7169203331-01`;

/** A producer and a consumer of `placed` on one embedded broker, traced by one SDK. */
async function pair(
  handler: Parameters<ReturnType<typeof createService>['on']>[1] = () => {},
  extra: Partial<Parameters<typeof createService>[0]> = {},
) {
  const sdk = tracingSdk();
  const broker = new MemoryBroker();
  const instrumentation = openTelemetry({
    tracerProvider: sdk.tracerProvider,
    meterProvider: sdk.meterProvider,
    propagator: sdk.propagator,
    queueDepthIntervalMs: 0,
  });
  const consumer = createService({
    name: 'billing',
    transport: broker.transport(),
    logger: silentLogger,
    instrumentation,
    ...extra,
  });
  consumer.on(placed, handler as never);
  await consumer.start();
  const producer = createService({
    name: 'shop',
    transport: broker.transport(),
    logger: silentLogger,
    instrumentation,
    ...extra,
  });
  const spans = () => sdk.exporter.getFinishedSpans();
  const stop = async () => {
    await consumer.stop();
    await producer.stop();
  };
  return { sdk, broker, consumer, producer, spans, stop };
}

describe('span attributes', () => {
  it('uses the names of @opentelemetry/semantic-conventions for everything not tidings.*', () => {
    expect(ATTRIBUTES.system).toBe(semconv.ATTR_MESSAGING_SYSTEM);
    expect(ATTRIBUTES.systemName).toBe(semconv.ATTR_MESSAGING_SYSTEM_NAME);
    expect(ATTRIBUTES.operationName).toBe(semconv.ATTR_MESSAGING_OPERATION_NAME);
    expect(ATTRIBUTES.operationType).toBe(semconv.ATTR_MESSAGING_OPERATION_TYPE);
    expect(ATTRIBUTES.destinationName).toBe(semconv.ATTR_MESSAGING_DESTINATION_NAME);
    expect(ATTRIBUTES.routingKey).toBe(semconv.ATTR_MESSAGING_RABBITMQ_DESTINATION_ROUTING_KEY);
    expect(ATTRIBUTES.rabbitmqRoutingKey).toBe(semconv.ATTR_RABBITMQ_DESTINATION_ROUTING_KEY);
    expect(ATTRIBUTES.messageId).toBe(semconv.ATTR_MESSAGING_MESSAGE_ID);
    expect(ATTRIBUTES.conversationId).toBe(semconv.ATTR_MESSAGING_MESSAGE_CONVERSATION_ID);
    expect(ATTRIBUTES.consumerGroup).toBe(semconv.ATTR_MESSAGING_CONSUMER_GROUP_NAME);
    expect(ATTRIBUTES.bodySize).toBe(semconv.ATTR_MESSAGING_MESSAGE_BODY_SIZE);
    expect(ATTRIBUTES.errorType).toBe(semconv.ATTR_ERROR_TYPE);
    const known = new Set<string>(Object.values(semconv).filter((v) => typeof v === 'string'));
    for (const name of Object.values(ATTRIBUTES)) {
      expect(name.startsWith('tidings.') || known.has(name), name).toBe(true);
    }
  });

  it('names the metrics the conventions define as they do', () => {
    expect(METRICS.sent).toBe(semconv.METRIC_MESSAGING_CLIENT_SENT_MESSAGES);
    expect(METRICS.consumed).toBe(semconv.METRIC_MESSAGING_CLIENT_CONSUMED_MESSAGES);
    expect(METRICS.operationDuration).toBe(semconv.METRIC_MESSAGING_CLIENT_OPERATION_DURATION);
    expect(METRICS.processDuration).toBe(semconv.METRIC_MESSAGING_PROCESS_DURATION);
    for (const name of Object.values(METRICS)) {
      expect(name.startsWith('tidings.') || name.startsWith('messaging.'), name).toBe(true);
    }
  });

  it('writes only convention names and the current operation types on every span', async () => {
    const p = await pair(
      async (order, ctx) => {
        await ctx.publish(noted, { id: (order as { id: number }).id });
      },
      { unroutable: 'ignore' },
    );
    await p.producer.publish(placed, { id: 1 });
    await until('spans', () => p.spans().some((s) => s.name.startsWith('ack')));
    await p.stop();
    const known = new Set<string>(Object.values(semconv).filter((v) => typeof v === 'string'));
    const types = new Set<unknown>();
    for (const span of p.spans()) {
      for (const key of Object.keys(span.attributes)) {
        expect(key.startsWith('tidings.') || known.has(key), key).toBe(true);
      }
      types.add(span.attributes[semconv.ATTR_MESSAGING_OPERATION_TYPE]);
    }
    expect([...types].sort()).toEqual([
      semconv.MESSAGING_OPERATION_TYPE_VALUE_PROCESS,
      semconv.MESSAGING_OPERATION_TYPE_VALUE_SEND,
      semconv.MESSAGING_OPERATION_TYPE_VALUE_SETTLE,
    ]);
    expect(types.has(semconv.MESSAGING_OPERATION_TYPE_VALUE_PUBLISH)).toBe(false);
  });

  it('describes the send and the processing of a message', async () => {
    const p = await pair();
    const sent = await p.producer.publish(placed, { id: 1 });
    await until('the ack', () => p.spans().some((s) => s.name.startsWith('ack')));
    await p.stop();
    const send = p.spans().find((s) => s.kind === SpanKind.PRODUCER);
    const process = p.spans().find((s) => s.kind === SpanKind.CONSUMER);
    const ack = p.spans().find((s) => s.kind === SpanKind.CLIENT);
    expect(send?.name).toBe('send shop:shop.v1.placed');
    expect(send?.attributes).toEqual({
      'messaging.system': 'memory',
      'messaging.system.name': 'memory',
      'messaging.operation.type': 'send',
      'messaging.operation.name': 'send',
      'messaging.destination.name': 'shop:shop.v1.placed',
      'messaging.message.id': sent.id,
      'messaging.message.conversation_id': sent.correlationId,
      'tidings.service': 'shop',
      'tidings.event': 'shop.placed',
      'tidings.event.version': 1,
    });
    expect(process?.name).toBe('process shop:shop.v1.placed:billing.shop.placed');
    expect(process?.attributes).toMatchObject({
      'messaging.operation.type': 'process',
      'messaging.operation.name': 'process',
      'messaging.destination.name': 'shop:shop.v1.placed:billing.shop.placed',
      'messaging.consumer.group.name': 'billing.shop.placed',
      'messaging.message.id': sent.id,
      'messaging.message.conversation_id': sent.correlationId,
      'messaging.message.body.size': 8,
      'tidings.service': 'billing',
      // The default handler of pair() is named after its parameter.
      'tidings.handler': 'handler',
      'tidings.delivery.attempt': 1,
    });
    expect(process?.parentSpanContext?.spanId).toBe(send?.spanContext().spanId);
    expect(ack?.name).toBe('ack shop:shop.v1.placed:billing.shop.placed');
    expect(ack?.attributes).toMatchObject({
      'messaging.operation.type': 'settle',
      'messaging.operation.name': 'ack',
    });
    expect(ack?.parentSpanContext?.spanId).toBe(process?.spanContext().spanId);
  });
});

describe('trace context', () => {
  it("carries the producer span's context in the traceparent header, and tracestate through", async () => {
    const p = await pair();
    await p.consumer.stop();
    await p.producer.publish(placed, { id: 1 }, { traceparent: PARENT, tracestate: 'congo=t61' });
    const delivery = await p.broker.transport().get('billing.shop.placed');
    const send = p.spans().find((s) => s.kind === SpanKind.PRODUCER);
    const c = send?.spanContext();
    expect(delivery?.message.properties.headers).toMatchObject({
      traceparent: `00-${TRACE}-${c?.spanId}-01`,
      tracestate: 'congo=t61',
    });
    expect(send?.parentSpanContext?.spanId).toBe('b7ad6b7169203331');
    await p.producer.stop();
  });

  it('runs the handler in its process span, so its own spans and log lines belong to it', async () => {
    const lines: Record<string, unknown>[] = [];
    const record: Logger = {
      ...silentLogger,
      info: (_m, fields) => void lines.push(fields ?? {}),
    };
    const logger = tracedLogger(record);
    let inner: string | undefined;
    const p = await pair(async () => {
      const tracer = trace.getTracer('app');
      await tracer.startActiveSpan('charge card', async (span) => {
        inner = span.spanContext().spanId;
        span.end();
      });
      logger.info('charged', { orderId: 1 });
    });
    await p.producer.publish(placed, { id: 1 });
    await until('the ack', () => p.spans().some((s) => s.name.startsWith('ack')));
    await p.stop();
    // The app's tracer is the global one, a no-op here: its span is the process span's context.
    const process = p.spans().find((s) => s.kind === SpanKind.CONSUMER)!;
    expect(inner).toBe(process.spanContext().spanId);
    expect(lines).toEqual([
      {
        orderId: 1,
        trace_id: process.spanContext().traceId,
        span_id: process.spanContext().spanId,
        trace_flags: '01',
      },
    ]);
  });

  it("parents a handler's publish on its process span even without a context manager", async () => {
    const p = await pair(
      async (order, ctx) => {
        await ctx.publish(noted, { id: (order as { id: number }).id });
      },
      { unroutable: 'ignore' },
    );
    context.disable();
    try {
      await p.producer.publish(placed, { id: 1 });
      await until('the second send', () =>
        p.spans().some((s) => s.name === 'send shop:shop.v1.noted'),
      );
    } finally {
      tracingSdk();
    }
    await p.stop();
    const process = p.spans().find((s) => s.kind === SpanKind.CONSUMER);
    const second = p.spans().find((s) => s.name === 'send shop:shop.v1.noted');
    expect(second?.parentSpanContext?.spanId).toBe(process?.spanContext().spanId);
    expect(second?.attributes['tidings.message.causation_id']).toBeDefined();
    expect(second?.attributes['tidings.routed']).toBe(false);
  });

  it('starts a new trace for a message whose traceparent is malformed', async () => {
    const p = await pair();
    await p.broker.transport().publish({
      exchange: 'shop',
      routingKey: 'shop.v1.placed',
      body: Buffer.from('{"id":1}'),
      properties: { messageId: 'm-1', headers: { traceparent: '00-not-a-trace-01' } },
    });
    await until('the ack', () => p.spans().some((s) => s.name.startsWith('ack')));
    await p.stop();
    const process = p.spans().find((s) => s.kind === SpanKind.CONSUMER);
    expect(process?.parentSpanContext).toBeUndefined();
    expect(process?.links).toEqual([]);
    expect(process?.status.code).toBe(SpanStatusCode.UNSET);
  });

  it('carries the trace in Celery messages, in the headers where Celery looks for it', async () => {
    const p = await pair(() => {}, { format: 'celery' });
    await p.producer.publish(placed, { id: 1 });
    await until('the ack', () => p.spans().some((s) => s.name.startsWith('ack')));
    await p.stop();
    const send = p.spans().find((s) => s.kind === SpanKind.PRODUCER);
    const process = p.spans().find((s) => s.kind === SpanKind.CONSUMER);
    expect(process?.parentSpanContext?.spanId).toBe(send?.spanContext().spanId);
    expect(process?.attributes['messaging.message.conversation_id']).toBe(
      send?.attributes['messaging.message.conversation_id'],
    );
  });
});

describe('failures on spans', () => {
  it('marks an unroutable send as failed with UnroutableError', async () => {
    const p = await pair();
    await expect(p.producer.publish(noted, { id: 1 })).rejects.toBeInstanceOf(UnroutableError);
    await p.stop();
    const send = p.spans().find((s) => s.kind === SpanKind.PRODUCER);
    expect(send?.status.code).toBe(SpanStatusCode.ERROR);
    expect(send?.attributes).toMatchObject({
      'error.type': 'UnroutableError',
      'tidings.routed': false,
    });
  });

  it('records input that cannot be read as the reason the processing failed', async () => {
    const p = await pair();
    await p.broker.transport().publish({
      exchange: 'shop',
      routingKey: 'shop.v1.placed',
      body: Buffer.from('not json'),
      properties: { messageId: 'm-1', headers: {} },
    });
    await until('the dead letter', () => p.spans().some((s) => s.name.startsWith('dead_letter')));
    await p.stop();
    const process = p.spans().find((s) => s.kind === SpanKind.CONSUMER);
    expect(process?.status.code).toBe(SpanStatusCode.ERROR);
    expect(process?.attributes).toMatchObject({
      'error.type': 'invalid-json',
      'tidings.dead_letter.reason': 'invalid-json',
    });
    expect(
      await p.sdk.reader.sum(METRICS.deadLettered, {
        'tidings.dead_letter.reason': 'invalid-json',
      }),
    ).toBe(1);
  });

  it('keeps secrets out of the exceptions it records', async () => {
    const p = await pair(
      () => {
        throw new Error('cannot reach amqp://billing:s3cret@db.internal:5672');
      },
      { retry: { maxAttempts: 1 } },
    );
    await p.producer.publish(placed, { id: 1 });
    await until('the dead letter', () => p.spans().some((s) => s.name.startsWith('dead_letter')));
    await p.stop();
    const process = p.spans().find((s) => s.kind === SpanKind.CONSUMER);
    const text = JSON.stringify([process?.events, process?.status]);
    expect(text).not.toContain('s3cret');
    expect(text).toContain('cannot reach');
  });
});

describe('metrics', () => {
  it('reports the depth of each queue and its dead-letter queue', async () => {
    let release: () => void = () => {};
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    const p = await pair(() => held, { prefetch: 1 });
    for (let i = 0; i < 4; i++) await p.producer.publish(placed, { id: i });
    const depth = async (queue: string) =>
      (await p.sdk.reader.points(METRICS.queueDepth)).find(
        (d) => d.attributes['messaging.destination.name'] === queue,
      )?.value;
    // One message is being handled; three wait.
    await until('a depth of 3', async () => (await depth('billing.shop.placed')) === 3);
    expect(await depth('billing.shop.placed.dlq')).toBe(0);
    const points = await p.sdk.reader.points(METRICS.queueDepth);
    expect(points.find((d) => d.value === 3)?.attributes).toMatchObject({
      'tidings.service': 'billing',
      'tidings.queue.kind': 'work',
    });
    release();
    await p.consumer.stop();
    // A stopped service is no longer observed: its last depth is not asked again.
    for (let i = 0; i < 2; i++) await p.producer.publish(placed, { id: i });
    expect(p.broker.depth('billing.shop.placed')).toBe(5);
    expect(await depth('billing.shop.placed')).toBe(3);
    await p.stop();
  });

  it('records the delay between publishing and processing', async () => {
    const p = await pair();
    await p.producer.publish(placed, { id: 1 });
    await until('the ack', () => p.spans().some((s) => s.name.startsWith('ack')));
    await p.stop();
    const lag = await p.sdk.reader.points(METRICS.lag);
    expect(lag).toHaveLength(1);
    expect((lag[0]?.value as { count: number } | undefined)?.count).toBe(1);
  });
});

describe('without an SDK', () => {
  it('returns no probe, so services take their uninstrumented path and still forward the trace', async () => {
    const broker = new MemoryBroker();
    const bound = openTelemetry().forService({ name: 'shop', transport: broker.transport() });
    const envelope = {
      id: 'x',
      type: 'shop.v1.placed',
      exchange: 'shop',
      event: 'placed',
      version: 1,
      source: 'shop',
      time: new Date().toISOString(),
      correlationId: 'x',
    };
    expect(
      bound.publish({
        envelope,
        format: 'tidings',
        traceparent: undefined,
        tracestate: undefined,
        cause: undefined,
      }),
    ).toBeUndefined();
    expect(propagation.fields()).toEqual([]);

    const consumer = createService({
      name: 'billing',
      transport: broker.transport(),
      instrumentation: openTelemetry(),
    });
    const seen: (string | undefined)[] = [];
    consumer.on(placed, (order, ctx) => ctx.publish(noted, order));
    consumer.on(noted, (_, ctx) => void seen.push(ctx.envelope.traceparent));
    await consumer.start();
    const producer = createService({
      name: 'shop',
      transport: broker.transport(),
      instrumentation: openTelemetry(),
    });
    await producer.publish(placed, { id: 1 }, { traceparent: PARENT });
    await until('the second message', () => seen.length === 1);
    await consumer.stop();
    expect(seen).toEqual([PARENT]);
  });

  it('refuses a negative queue-depth interval', () => {
    expect(() => openTelemetry({ queueDepthIntervalMs: -1 })).toThrow(ConfigError);
  });
});
