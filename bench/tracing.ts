import { fileURLToPath } from 'node:url';
import { context } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { ExportResultCode, W3CTraceContextPropagator } from '@opentelemetry/core';
import { MeterProvider, MetricReader } from '@opentelemetry/sdk-metrics';
import {
  AlwaysOffSampler,
  BatchSpanProcessor,
  type ReadableSpan,
  type SpanExporter,
  TracerProvider,
} from '@opentelemetry/sdk-trace';
import { createService, type Instrumentation, MemoryBroker } from '../src/index.js';
import { openTelemetry } from '../src/observability/index.js';
import { order, type SchemaLibrary, submitEvent } from './payload.js';

/**
 * What tracing costs: CPU per message (publish, deliver, handle, ack, in one process on the
 * embedded broker) without instrumentation, with `openTelemetry()` while no SDK is registered,
 * and with an SDK that records every span (and metrics). The variants run in turns, round after
 * round, in one process, so a shared, loaded machine slows them alike; CPU time, not wall-clock
 * time, is compared.
 *
 * Run: `npx tsx bench/tracing.ts [messages] [rounds]`.
 */

/** One variant of the measurement. */
export interface TracingVariant {
  readonly name: string;
  /** Process CPU (user + system) per message, µs: the median of the rounds. */
  readonly cpuUsPerMessage: number;
  /** The same, round by round. */
  readonly rounds: readonly number[];
  /** Spans recorded per message (0 when nothing records). */
  readonly spansPerMessage: number;
}

export interface TracingResult {
  readonly messages: number;
  readonly rounds: number;
  readonly library: SchemaLibrary;
  readonly variants: readonly TracingVariant[];
}

/** Counts the spans it is given and keeps none. */
class CountingExporter implements SpanExporter {
  count = 0;
  export(spans: ReadableSpan[], done: (result: { code: ExportResultCode }) => void): void {
    this.count += spans.length;
    done({ code: ExportResultCode.SUCCESS });
  }
  async shutdown(): Promise<void> {}
  async forceFlush(): Promise<void> {}
}

/** A reader that is never collected: metrics are recorded and aggregated, not exported. */
class IdleReader extends MetricReader {
  protected async onForceFlush(): Promise<void> {}
  protected async onShutdown(): Promise<void> {}
}

interface Setup {
  readonly name: string;
  readonly instrumentation: () => Instrumentation | undefined;
  readonly spans: () => number;
  readonly flush: () => Promise<void>;
}

function recordingSdk(withMetrics: boolean, settleSpans: boolean, sampled = true) {
  const exporter = new CountingExporter();
  const tracerProvider = new TracerProvider({
    ...(!sampled && { sampler: new AlwaysOffSampler() }),
    spanProcessors: [
      new BatchSpanProcessor({
        exporter,
        maxQueueSize: 1_000_000,
        maxExportBatchSize: 4096,
        scheduledDelayMillis: 200,
      }),
    ],
  });
  const meterProvider = withMetrics
    ? new MeterProvider({ readers: [new IdleReader()] })
    : undefined;
  const propagator = new W3CTraceContextPropagator();
  return {
    instrumentation: () =>
      openTelemetry({
        tracerProvider,
        ...(meterProvider && { meterProvider }),
        propagator,
        settleSpans,
      }),
    spans: () => exporter.count,
    flush: () => tracerProvider.forceFlush(),
  };
}

function setups(): Setup[] {
  const none = { spans: () => 0, flush: async () => {} };
  const full = recordingSdk(true, true);
  const traces = recordingSdk(false, true);
  const lean = recordingSdk(false, false);
  const unsampled = recordingSdk(false, true, false);
  const meterProvider = new MeterProvider({ readers: [new IdleReader()] });
  return [
    { name: 'no instrumentation', instrumentation: () => undefined, ...none },
    { name: 'openTelemetry(), no SDK registered', instrumentation: () => openTelemetry(), ...none },
    { name: 'SDK: traces sampled out (AlwaysOff)', ...unsampled },
    {
      name: 'SDK: metrics only',
      instrumentation: () => openTelemetry({ meterProvider }),
      ...none,
    },
    { name: 'SDK: every span recorded, no settle spans', ...lean },
    { name: 'SDK: every span recorded', ...traces },
    { name: 'SDK: every span recorded, and metrics', ...full },
  ];
}

/** Publishes and handles `messages` orders with one variant; returns CPU µs per message. */
async function round(
  setup: Setup,
  messages: number,
  library: SchemaLibrary,
): Promise<{ cpu: number; spans: number }> {
  const broker = new MemoryBroker();
  const event = submitEvent(`benchtrace${Math.random().toString(36).slice(2, 8)}`, library);
  const instrumentation = setup.instrumentation();
  const options = instrumentation ? { instrumentation } : {};
  const consumer = createService({ name: 'consumer', transport: broker.transport(), ...options });
  const producer = createService({ name: 'producer', transport: broker.transport(), ...options });
  const payloads = Array.from({ length: 1024 }, (_, i) => order(i + 1));
  const window = 200;
  let handled = 0;
  let wake: (() => void) | undefined;
  let failure: unknown;
  consumer.on(event, () => {
    handled++;
    if (wake) {
      const w = wake;
      wake = undefined;
      w();
    }
  });
  await consumer.start();
  const run = async (count: number) => {
    let sent = 0;
    handled = 0;
    while (handled < count) {
      while (sent < count && sent - handled < window) {
        producer.publish(event, payloads[sent & 1023]).catch((e: unknown) => {
          failure ??= e;
        });
        sent++;
      }
      await new Promise<void>((resolve) => {
        wake = resolve;
      });
      if (failure) throw failure;
    }
  };
  await run(Math.min(2000, messages));
  await setup.flush();
  const spans0 = setup.spans();
  const cpu0 = process.cpuUsage();
  await run(messages);
  const cpu = process.cpuUsage(cpu0);
  await setup.flush();
  const spans = setup.spans() - spans0;
  await consumer.stop();
  await producer.stop();
  return { cpu: (cpu.user + cpu.system) / messages, spans: spans / messages };
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/**
 * Measures every variant `rounds` times, in turns. A context manager (AsyncLocalStorage) is
 * registered first, as an application with an SDK has one; nothing else is registered globally,
 * so `openTelemetry()` without options sees no SDK.
 */
export async function measureTracing(
  options: { messages?: number; rounds?: number; library?: SchemaLibrary } = {},
): Promise<TracingResult> {
  const messages = options.messages ?? 20_000;
  const rounds = options.rounds ?? 5;
  const library = options.library ?? 'none';
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  const all = setups();
  const cpu = all.map(() => [] as number[]);
  const spans = all.map(() => 0);
  for (let r = 0; r < rounds; r++) {
    for (const [i, setup] of all.entries()) {
      const result = await round(setup, messages, library);
      cpu[i]!.push(result.cpu);
      spans[i] = result.spans;
    }
  }
  return {
    messages,
    rounds,
    library,
    variants: all.map((setup, i) => ({
      name: setup.name,
      cpuUsPerMessage: median(cpu[i]!),
      rounds: cpu[i]!,
      spansPerMessage: spans[i]!,
    })),
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [messages, rounds] = process.argv.slice(2).map(Number);
  const result = await measureTracing({
    ...(messages && { messages }),
    ...(rounds && { rounds }),
  });
  const base = result.variants[0]!.cpuUsPerMessage;
  console.log(
    `${result.messages} messages per round, ${result.rounds} rounds, schema: ${result.library}; CPU µs per message (median; every round)\n`,
  );
  for (const v of result.variants) {
    const extra = v.cpuUsPerMessage - base;
    console.log(
      `${v.name.padEnd(44)} ${v.cpuUsPerMessage.toFixed(1).padStart(7)} µs  ${(extra >= 0 ? '+' : '') + extra.toFixed(1)} µs  spans/msg ${v.spansPerMessage.toFixed(1)}  [${v.rounds.map((x) => x.toFixed(1)).join(', ')}]`,
    );
  }
}
