import { SpanKind } from '@opentelemetry/api';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { tracingSdk, until } from '../../test/support/tracing.js';
import { defineEvent, defineExchange } from '../contracts/event.js';
import { pinoLogger } from '../logger.js';
import { createService } from '../runtime/service.js';
import { MemoryBroker } from '../transports/memory/broker.js';
import { activeTraceFields } from './logger.js';
import { openTelemetry } from './otel.js';

const placed = defineEvent(defineExchange('shop'), 'placed', z.object({ id: z.number() }));

/** A pino logger whose JSON lines are kept, parsed. */
function capture(options: pino.LoggerOptions = {}) {
  const lines: Record<string, unknown>[] = [];
  const log = pino(options, { write: (line: string) => void lines.push(JSON.parse(line)) });
  return { log, lines };
}

describe('logs through pino', () => {
  it("writes the runtime's lines about a message with its ids, and errors through pino's serializer", async () => {
    const { log, lines } = capture();
    const broker = new MemoryBroker();
    const billing = createService({
      name: 'billing',
      transport: broker.transport(),
      logger: pinoLogger(log),
      retry: { maxAttempts: 1 },
    });
    billing.on(placed, () => {
      throw new Error('no ledger');
    });
    await billing.start();
    const shop = createService({ name: 'shop', transport: broker.transport() });
    const traceparent = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
    const sent = await shop.publish(placed, { id: 1 }, { traceparent });
    await until('the dead letter', () => lines.length > 0);
    await billing.stop();
    expect(lines[0]).toMatchObject({
      level: 40,
      msg: 'dead-lettered a message of billing.shop.placed: handler-error',
      messageId: sent.id,
      correlationId: sent.correlationId,
      trace_id: '0af7651916cd43dd8448eb211c80319c',
      error: 'no ledger',
    });
    pinoLogger(log).error('the store failed', { error: new TypeError('boom') });
    expect(lines[1]).toMatchObject({ err: { type: 'TypeError', message: 'boom' } });
    expect(typeof (lines[1]?.err as { stack?: unknown } | undefined)?.stack).toBe('string');
  });

  it('gets the span that handled the message into every line, with activeTraceFields as mixin', async () => {
    const sdk = tracingSdk();
    const { log, lines } = capture({ mixin: activeTraceFields });
    const broker = new MemoryBroker();
    const instrumentation = openTelemetry({
      tracerProvider: sdk.tracerProvider,
      propagator: sdk.propagator,
    });
    const billing = createService({
      name: 'billing',
      transport: broker.transport(),
      logger: pinoLogger(log),
      instrumentation,
    });
    billing.on(placed, (order) => {
      log.info({ orderId: order.id }, 'posting the order');
    });
    await billing.start();
    const shop = createService({ name: 'shop', transport: broker.transport(), instrumentation });
    await shop.publish(placed, { id: 7 });
    await until('the ack', () =>
      sdk.exporter.getFinishedSpans().some((s) => s.name.startsWith('ack')),
    );
    await billing.stop();
    log.info('outside any span');
    const process = sdk.exporter.getFinishedSpans().find((s) => s.kind === SpanKind.CONSUMER)!;
    expect(lines).toEqual([
      expect.objectContaining({
        msg: 'posting the order',
        orderId: 7,
        trace_id: process.spanContext().traceId,
        span_id: process.spanContext().spanId,
        trace_flags: '01',
      }),
      expect.not.objectContaining({ trace_id: expect.anything() }),
    ]);
  });
});
