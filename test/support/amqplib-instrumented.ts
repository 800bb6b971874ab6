/**
 * A producer and a consumer on RabbitMQ in a process where `@opentelemetry/instrumentation-amqplib`
 * is enabled before amqplib loads, as auto-instrumentation does. Prints one JSON line per span,
 * for `src/observability/rabbitmq.test.ts`. Run: `tsx test/support/amqplib-instrumented.ts
 * [--no-suppress]` with `AMQP_URL` set.
 */
import { context, propagation, SpanKind, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { AmqplibInstrumentation } from '@opentelemetry/instrumentation-amqplib';
import {
  InMemorySpanExporter,
  SimpleSpanProcessor,
  TracerProvider,
} from '@opentelemetry/sdk-trace';

context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
propagation.setGlobalPropagator(new W3CTraceContextPropagator());
const exporter = new InMemorySpanExporter();
const provider = new TracerProvider({ spanProcessors: [new SimpleSpanProcessor({ exporter })] });
trace.setGlobalTracerProvider(provider);
const amqplibInstrumentation = new AmqplibInstrumentation();
amqplibInstrumentation.setTracerProvider(provider);

// Only now load amqplib (through the transport), so the instrumentation can patch it.
const { z } = await import('zod');
const { createService, defineEvent, defineExchange, silentLogger } = await import(
  '../../src/index.js'
);
const { amqpTransport } = await import('../../src/transports/amqp/index.js');
const { openTelemetry } = await import('../../src/observability/index.js');

const suppress = !process.argv.includes('--no-suppress');
const url = process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const exchange = defineExchange(`otel-amqplib-${process.pid}-${Date.now().toString(36)}`);
const placed = defineEvent(exchange, 'placed', z.object({ id: z.number() }));
const transport = amqpTransport({ url, logger: silentLogger });
const instrumentation = openTelemetry({ suppressTransportSpans: suppress });
const consumer = createService({
  name: 'billing',
  transport,
  instrumentation,
  logger: silentLogger,
});
let handled = false;
consumer.on(placed, () => {
  handled = true;
});
const producer = createService({ name: 'shop', transport, instrumentation, logger: silentLogger });
try {
  await consumer.start();
  await producer.publish(placed, { id: 1 });
  const deadline = Date.now() + 20_000;
  while (
    !handled ||
    exporter.getFinishedSpans().filter((s) => s.kind === SpanKind.CONSUMER).length < 2
  ) {
    if (Date.now() > deadline) throw new Error('the message was not handled in time');
    await new Promise((r) => setTimeout(r, 20));
  }
  await new Promise((r) => setTimeout(r, 100));
} finally {
  await consumer.stop();
  await producer.stop();
  await transport.deleteTopology(consumer.topology(), { exchanges: true }).catch(() => {});
  await transport.close();
}
for (const s of exporter.getFinishedSpans()) {
  console.log(
    JSON.stringify({
      name: s.name,
      kind: SpanKind[s.kind],
      scope: s.instrumentationScope.name,
      traceId: s.spanContext().traceId,
      spanId: s.spanContext().spanId,
      parent: s.parentSpanContext?.spanId,
    }),
  );
}
await provider.shutdown();
