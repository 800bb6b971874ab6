import { context, SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import {
  AggregationTemporality,
  type DataPoint,
  MeterProvider,
  MetricReader,
} from '@opentelemetry/sdk-metrics';
import {
  InMemorySpanExporter,
  type ReadableSpan,
  SimpleSpanProcessor,
  TracerProvider,
} from '@opentelemetry/sdk-trace';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { defineEvent, defineExchange } from '../../src/contracts/event.js';
import { NonRetryableError } from '../../src/errors.js';
import { silentLogger } from '../../src/logger.js';
import { openTelemetry } from '../../src/observability/otel.js';
import { ATTRIBUTES, METRICS } from '../../src/observability/semconv.js';
import { replayDeadLetters } from '../../src/ops/dead-letters.js';
import { createService, type Service } from '../../src/runtime/service.js';
import { uniqueName } from '../../src/testing/broker.js';
import { deadLetterQueueName, type Transport } from '../../src/transports/transport.js';

/** Tracing as tests see it: an SDK with in-memory exporters, the W3C propagator, a context manager. */
export function tracingSdk() {
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  const exporter = new InMemorySpanExporter();
  const tracerProvider = new TracerProvider({
    spanProcessors: [new SimpleSpanProcessor({ exporter })],
  });
  const reader = new TestReader();
  const meterProvider = new MeterProvider({ readers: [reader] });
  return {
    exporter,
    tracerProvider,
    meterProvider,
    reader,
    propagator: new W3CTraceContextPropagator(),
    tracer: tracerProvider.getTracer('test'),
  };
}

/** A metric reader the test collects from when it wants. */
export class TestReader extends MetricReader {
  constructor() {
    super({ aggregationTemporalitySelector: () => AggregationTemporality.CUMULATIVE });
  }
  protected async onForceFlush(): Promise<void> {}
  protected async onShutdown(): Promise<void> {}

  /** The data points of one metric, by name. */
  async points(name: string): Promise<DataPoint<unknown>[]> {
    const { resourceMetrics } = await this.collect();
    return resourceMetrics.scopeMetrics
      .flatMap((s) => s.metrics)
      .filter((m) => m.descriptor.name === name)
      .flatMap((m) => m.dataPoints as DataPoint<unknown>[]);
  }

  /** The sum of a counter over the points whose attributes include `match`. */
  async sum(name: string, match: Record<string, unknown> = {}): Promise<number> {
    const points = await this.points(name);
    return points
      .filter((p) => Object.entries(match).every(([k, v]) => p.attributes[k] === v))
      .reduce((total, p) => total + (p.value as number), 0);
  }
}

/** Polls until `check` holds, for at most `timeoutMs`. */
export async function until(
  what: string,
  check: () => boolean | Promise<boolean>,
  timeoutMs = 20_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/**
 * The spans of one trace as an indented tree, one line per span: name, kind, service, attempt,
 * status. Siblings sort by name, then by start time, so the text does not depend on timing.
 * `rename` turns unique test names back into readable ones.
 */
export function spanTree(spans: readonly ReadableSpan[], rename: (s: string) => string): string {
  const ids = new Set(spans.map((s) => s.spanContext().spanId));
  const children = new Map<string | undefined, ReadableSpan[]>();
  for (const s of spans) {
    const parent = s.parentSpanContext?.spanId;
    const key = parent !== undefined && ids.has(parent) ? parent : undefined;
    children.set(key, [...(children.get(key) ?? []), s]);
  }
  const lines: string[] = [];
  const walk = (parent: string | undefined, depth: number) => {
    const kids = [...(children.get(parent) ?? [])].sort(
      (a, b) =>
        a.name.localeCompare(b.name) ||
        a.startTime[0] - b.startTime[0] ||
        a.startTime[1] - b.startTime[1],
    );
    for (const s of kids) {
      const a = s.attributes;
      const details = [SpanKind[s.kind].toLowerCase()];
      if (a[ATTRIBUTES.service] !== undefined && s.kind !== SpanKind.CLIENT) {
        details.push(String(a[ATTRIBUTES.service]));
      }
      if (a[ATTRIBUTES.attempt] !== undefined) details.push(`attempt ${a[ATTRIBUTES.attempt]}`);
      if (s.status.code === SpanStatusCode.ERROR) details.push(`error ${a[ATTRIBUTES.errorType]}`);
      lines.push(`${'  '.repeat(depth)}${rename(s.name)} (${details.join(', ')})`);
      walk(s.spanContext().spanId, depth + 1);
    }
  };
  walk(undefined, 0);
  return lines.join('\n');
}

/**
 * One order through four services, traced, on a transport: Order publishes `submit`; Billing
 * fails once and succeeds on the retry; Logistic publishes `dispatched`, which Order handles and
 * Notification dead-letters, until the dead letter is replayed after a fix. The whole story must
 * be one trace, each consumer span a child of the producer span of its message.
 */
export function describeTracedOrder(
  name: string,
  open: () => Promise<Transport>,
  cleanup: (transport: Transport, services: readonly Service[]) => Promise<void> = async () => {},
): void {
  describe(`one traced order on ${name}`, () => {
    const sdk = tracingSdk();
    const orderX = defineExchange(uniqueName('order'));
    const logisticX = defineExchange(uniqueName('logistic'));
    const submit = defineEvent(orderX, 'submit', z.object({ id: z.number() }));
    const dispatched = defineEvent(logisticX, 'dispatched', z.object({ orderId: z.number() }));
    const rename = (s: string) =>
      s.replaceAll(orderX.name, 'order').replaceAll(logisticX.name, 'logistic');
    let transport: Transport;
    let services: Service[] = [];
    let traceId = '';
    const state = { billing: 0, dispatched: false, fixed: false, notified: false, deadLettered: 0 };

    beforeAll(async () => {
      transport = await open();
      const common = {
        transport,
        logger: silentLogger,
        instrumentation: openTelemetry({
          tracerProvider: sdk.tracerProvider,
          meterProvider: sdk.meterProvider,
          propagator: sdk.propagator,
        }),
        retry: { maxAttempts: 3, baseDelayMs: 20, jitter: 0 },
      };
      const order = createService({ name: 'order', ...common, publishes: [submit] });
      order.on(dispatched, () => {
        state.dispatched = true;
      });
      const billing = createService({ name: 'billing', ...common });
      billing.on(submit, () => {
        state.billing++;
        if (state.billing === 1) throw new Error('the ledger is busy');
      });
      const logistic = createService({ name: 'logistic', ...common, publishes: [dispatched] });
      logistic.on(submit, async (o, ctx) => {
        await ctx.publish(dispatched, { orderId: o.id });
      });
      const notification = createService({ name: 'notification', ...common });
      notification.on(submit, () => {});
      notification.on(dispatched, () => {
        if (!state.fixed) throw new NonRetryableError('no template for dispatch notices');
        state.notified = true;
      });
      notification.observe('dead-lettered', () => {
        state.deadLettered++;
      });
      services = [order, billing, logistic, notification];
      for (const s of [billing, logistic, notification, order]) await s.start();

      await sdk.tracer.startActiveSpan('POST /orders', async (root) => {
        traceId = root.spanContext().traceId;
        await order.publish(submit, { id: 1 });
        root.end();
      });
      await until(
        'billed, dispatched and dead-lettered',
        () => state.billing === 2 && state.dispatched && state.deadLettered === 1,
      );
      // The fix is deployed; the dead letter goes back to Notification's queue.
      state.fixed = true;
      const dlq = deadLetterQueueName(`notification.${logisticX.name}.dispatched`);
      const replay = await replayDeadLetters(transport, dlq);
      expect(replay.failed).toEqual([]);
      await until('the replayed notice', () => state.notified);
      await until('every span ended', () => sdk.exporter.getFinishedSpans().length >= 17);
    });

    afterAll(async () => {
      for (const s of services) await s.stop();
      if (transport) {
        await cleanup(transport, services);
        await transport.close();
      }
    });

    it('is one trace whose spans nest as the messages flowed, across the retry and the dead letter', () => {
      const spans = sdk.exporter.getFinishedSpans();
      expect(new Set(spans.map((s) => s.spanContext().traceId))).toEqual(new Set([traceId]));
      expect(spanTree(spans, rename)).toBe(
        [
          'POST /orders (internal)',
          '  send order:order.v1.submit (producer, order)',
          '    process order:order.v1.submit:billing.order.submit (consumer, billing, attempt 1, error Error)',
          '      retry order:order.v1.submit:billing.order.submit (client)',
          '    process order:order.v1.submit:billing.order.submit (consumer, billing, attempt 2)',
          '      ack order:order.v1.submit:billing.order.submit (client)',
          '    process order:order.v1.submit:logistic.order.submit (consumer, logistic, attempt 1)',
          '      ack order:order.v1.submit:logistic.order.submit (client)',
          '      send logistic:logistic.v1.dispatched (producer, logistic)',
          '        process logistic:logistic.v1.dispatched:notification.logistic.dispatched (consumer, notification, attempt 1, error NonRetryableError)',
          '          dead_letter logistic:logistic.v1.dispatched:notification.logistic.dispatched (client)',
          '        process logistic:logistic.v1.dispatched:notification.logistic.dispatched (consumer, notification, attempt 1)',
          '          ack logistic:logistic.v1.dispatched:notification.logistic.dispatched (client)',
          '        process logistic:logistic.v1.dispatched:order.logistic.dispatched (consumer, order, attempt 1)',
          '          ack logistic:logistic.v1.dispatched:order.logistic.dispatched (client)',
          '    process order:order.v1.submit:notification.order.submit (consumer, notification, attempt 1)',
          '      ack order:order.v1.submit:notification.order.submit (client)',
        ].join('\n'),
      );
    });

    it('links each process span to the context of the message it processes', () => {
      const spans = sdk.exporter.getFinishedSpans();
      const consumers = spans.filter((s) => s.kind === SpanKind.CONSUMER);
      expect(consumers).toHaveLength(7);
      for (const s of consumers) {
        expect(s.links.map((l) => l.context.spanId)).toEqual([s.parentSpanContext?.spanId]);
      }
    });

    it('records the failures on the spans that failed', () => {
      const spans = sdk.exporter.getFinishedSpans();
      const failedBilling = spans.find(
        (s) =>
          s.kind === SpanKind.CONSUMER &&
          s.attributes[ATTRIBUTES.attempt] === 1 &&
          s.attributes[ATTRIBUTES.service] === 'billing',
      );
      expect(failedBilling?.status).toEqual({
        code: SpanStatusCode.ERROR,
        message: 'the ledger is busy',
      });
      expect(
        failedBilling?.events.map((e) => [e.name, e.attributes?.['exception.message']]),
      ).toEqual([['exception', 'the ledger is busy']]);
      const deadLetter = spans.find((s) => s.name.startsWith('dead_letter'));
      expect(deadLetter?.attributes[ATTRIBUTES.deadLetterReason]).toBe('handler-error');
    });

    it('counts messages by event and version, and their fates', async () => {
      const r = sdk.reader;
      const submitted = { [ATTRIBUTES.event]: `${orderX.name}.submit`, [ATTRIBUTES.version]: 1 };
      const dispatchedV1 = {
        [ATTRIBUTES.event]: `${logisticX.name}.dispatched`,
        [ATTRIBUTES.version]: 1,
      };
      expect(await r.sum(METRICS.sent, submitted)).toBe(1);
      expect(await r.sum(METRICS.sent, dispatchedV1)).toBe(1);
      // Billing twice, Logistic and Notification once each.
      expect(await r.sum(METRICS.consumed, submitted)).toBe(4);
      expect(await r.sum(METRICS.consumed, dispatchedV1)).toBe(3);
      expect(await r.sum(METRICS.retried, { ...submitted, [ATTRIBUTES.service]: 'billing' })).toBe(
        1,
      );
      expect(
        await r.sum(METRICS.deadLettered, {
          ...dispatchedV1,
          [ATTRIBUTES.deadLetterReason]: 'handler-error',
        }),
      ).toBe(1);
      expect(await r.sum(METRICS.acked)).toBe(5);
      const durations = await r.points(METRICS.processDuration);
      const count = durations.reduce((n, p) => n + (p.value as { count: number }).count, 0);
      expect(count).toBe(7);
    });
  });
}
