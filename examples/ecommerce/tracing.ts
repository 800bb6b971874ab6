import { context, propagation, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import {
  InMemorySpanExporter,
  type ReadableSpan,
  SimpleSpanProcessor,
  TracerProvider,
} from '@opentelemetry/sdk-trace';
import type { Instrumentation } from 'tidings';
import { ATTRIBUTES, openTelemetry } from 'tidings/otel';

/**
 * Tracing for the demo (`npm run demo -- --trace`): the OpenTelemetry SDK with an in-memory
 * exporter, registered as an application registers it, so that the demo can print the span tree of
 * one order at the end. A real deployment exports to a collector instead (docs/observability.md).
 */
export interface DemoTracing {
  /** For each service's `instrumentation` option. */
  readonly instrumentation: Instrumentation;
  /** Every span ended so far. */
  spans(): ReadableSpan[];
  shutdown(): Promise<void>;
}

/** Registers the SDK globally (context manager, W3C propagator, tracer provider). */
export function startTracing(): DemoTracing {
  const exporter = new InMemorySpanExporter();
  const provider = new TracerProvider({ spanProcessors: [new SimpleSpanProcessor({ exporter })] });
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  trace.setGlobalTracerProvider(provider);
  return {
    instrumentation: openTelemetry(),
    spans: () => exporter.getFinishedSpans(),
    shutdown: () => provider.shutdown(),
  };
}

/**
 * The trace of the first order submitted (the trace of the earliest send of `order.submit`) as a
 * tree: one line per send and per process span, with its service, its duration, and
 * how the message was settled (the settle spans, folded into the line of their process span).
 * Returns `undefined` when no order was traced.
 */
export function renderOrderTrace(spans: readonly ReadableSpan[]): string | undefined {
  const first = spans
    .filter(
      (s) => s.kind === SpanKind.PRODUCER && s.attributes[ATTRIBUTES.event] === 'order.submit',
    )
    .sort((a, b) => millis(a.startTime) - millis(b.startTime))[0];
  if (!first) return undefined;
  const traceId = first.spanContext().traceId;
  const ofTrace = spans.filter((s) => s.spanContext().traceId === traceId);
  const children = new Map<string, ReadableSpan[]>();
  for (const s of ofTrace) {
    const parent = s.parentSpanContext?.spanId;
    if (parent) children.set(parent, [...(children.get(parent) ?? []), s]);
  }
  const rows: [string, string][] = [];
  const walk = (span: ReadableSpan, prefix: string, last: boolean, root: boolean) => {
    const kids = (children.get(span.spanContext().spanId) ?? []).sort(
      (a, b) => millis(a.startTime) - millis(b.startTime),
    );
    const settled = kids
      .filter((k) => k.kind === SpanKind.CLIENT)
      .map((k) => String(k.attributes[ATTRIBUTES.operationName]));
    const service = String(span.attributes[ATTRIBUTES.service] ?? '?');
    const failed =
      span.status.code === SpanStatusCode.ERROR
        ? ` FAILED (${span.attributes[ATTRIBUTES.errorType]})`
        : '';
    const outcome = settled.length > 0 ? ` -> ${settled.join(', ')}` : '';
    const branch = root ? '' : last ? '└─ ' : '├─ ';
    const duration = `${(millis(span.endTime) - millis(span.startTime)).toFixed(1)} ms`;
    rows.push([
      `${prefix}${branch}${service}`,
      `${SpanKind[span.kind].toLowerCase().padEnd(8)} ${span.name}  ${duration}${outcome}${failed}`,
    ]);
    const shown = kids.filter((k) => k.kind !== SpanKind.CLIENT);
    const inner = root ? '' : `${prefix}${last ? '   ' : '│  '}`;
    for (const [i, k] of shown.entries()) walk(k, inner, i === shown.length - 1, false);
  };
  walk(first, '', true, true);
  const width = Math.max(...rows.map(([who]) => who.length));
  return [`trace ${traceId}`, ...rows.map(([who, what]) => `${who.padEnd(width)}  ${what}`)].join(
    '\n',
  );
}

function millis([seconds, nanos]: readonly [number, number]): number {
  return seconds * 1000 + nanos / 1e6;
}
