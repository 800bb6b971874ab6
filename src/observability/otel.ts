import { createRequire } from 'node:module';
import {
  type Attributes,
  type Context,
  context,
  createContextKey,
  createNoopMeter,
  defaultTextMapSetter,
  diag,
  type Exception,
  type Link,
  type MeterProvider,
  metrics,
  type ObservableResult,
  ProxyTracerProvider,
  propagation,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  SpanStatusCode,
  type TextMapGetter,
  type TextMapPropagator,
  type Tracer,
  type TracerProvider,
  trace,
} from '@opentelemetry/api';
import { parseRoutingKey } from '../contracts/event.js';
import type { Envelope } from '../envelope/envelope.js';
import { attemptsOf, HEADERS, type HeaderValue } from '../envelope/envelope.js';
import { uuidv7Time } from '../envelope/id.js';
import { ConfigError } from '../errors.js';
import { redactSecrets } from '../redact.js';
import type {
  DeliveryProbe,
  HandlerInfo,
  Instrumentation,
  InstrumentedService,
  Publication,
  PublishProbe,
  ServiceInstrumentation,
} from '../runtime/instrumentation.js';
import { type Delivery, deadLetterQueueName } from '../transports/transport.js';
import { Instruments } from './metrics.js';
import {
  ATTRIBUTES as A,
  destinationName,
  OPERATION_TYPES,
  type SettleOperation,
} from './semconv.js';

/** Options of {@link openTelemetry}. */
export interface OpenTelemetryOptions {
  /**
   * Where spans go.
   * @defaultValue the global tracer provider (`trace.setGlobalTracerProvider`, which the SDK's
   * `start()` or `register()` calls), looked up on each message, so one registered later is used
   */
  readonly tracerProvider?: TracerProvider | undefined;
  /**
   * Where metrics go.
   * @defaultValue the global meter provider, as it is when each service is created: register the
   * SDK before creating services
   */
  readonly meterProvider?: MeterProvider | undefined;
  /**
   * Writes and reads the trace context in message headers. Tidings carries the W3C
   * `traceparent` and `tracestate` headers.
   * @defaultValue the global propagator (`propagation`; the SDK registers W3C Trace Context)
   */
  readonly propagator?: TextMapPropagator | undefined;
  /**
   * A CLIENT span per settlement (`ack`, `retry`, `dead_letter`, `requeue`), child of the process
   * span. Without them, the process span still says how the message was settled.
   * @defaultValue true
   */
  readonly settleSpans?: boolean | undefined;
  /**
   * While Tidings sends a message, other instrumentations of the client below it (such as
   * `@opentelemetry/instrumentation-amqplib`) are told to stay quiet, so a publish has one
   * producer span and its `traceparent` header is Tidings' (see docs/observability.md).
   * @defaultValue true
   */
  readonly suppressTransportSpans?: boolean | undefined;
  /**
   * The queue-depth gauge asks the broker at most this often (milliseconds); collections in
   * between get the last answer. On RabbitMQ each question is a passive declare per queue.
   * @defaultValue 15000
   */
  readonly queueDepthIntervalMs?: number | undefined;
}

const VERSION = (createRequire(import.meta.url)('../../package.json') as { version: string })
  .version;

/**
 * Traces and metrics on the OpenTelemetry API, for `ServiceOptions.instrumentation`:
 *
 * ```ts
 * import { openTelemetry } from 'tidings/otel';
 * const billing = createService({ name: 'billing', transport, instrumentation: openTelemetry() });
 * ```
 *
 * - **Spans**, after the messaging semantic conventions: a PRODUCER span `send <exchange>:<routing
 *   key>` per publish, whose context travels in the `traceparent` and `tracestate` headers; a
 *   CONSUMER span `process <exchange>:<routing key>:<queue>` per delivery, child of the producer's
 *   span (and linked to it), in whose context the handler runs; a CLIENT span per settlement. A
 *   handler that throws records the exception on its process span; retries are sibling process
 *   spans with their attempt number; a dead letter records its reason.
 * - **Metrics**: messages sent and consumed, acknowledged, retried and dead-lettered, by event and
 *   version; handler durations; delivery lag; queue depth where the transport can tell.
 *
 * The library depends on `@opentelemetry/api` only (an optional peer dependency): install and
 * start an SDK in the application. While no tracer provider and no meter provider is registered,
 * every hook returns nothing and the service runs its uninstrumented path.
 *
 * Throws `ConfigError` for invalid options.
 */
export function openTelemetry(options: OpenTelemetryOptions = {}): Instrumentation {
  const interval = options.queueDepthIntervalMs;
  if (interval !== undefined && !(Number.isInteger(interval) && interval >= 0)) {
    throw new ConfigError(
      [`queueDepthIntervalMs must be an integer >= 0 (got ${String(interval)})`],
      'OpenTelemetry options',
    );
  }
  return {
    forService: (service) => new OtelService(service, options),
  };
}

// `suppressTracing` of @opentelemetry/core, rebuilt from the API: the key is a registered symbol,
// so this is the same key the SDK's tracer and propagators check, without depending on core.
const SUPPRESS_TRACING = createContextKey('OpenTelemetry SDK Context Key SUPPRESS_TRACING');

const NOOP_TRACER_PROVIDER = new ProxyTracerProvider().getDelegate();
const NOOP_METER = createNoopMeter().constructor;

/** Reads a header as text, as propagators expect. */
const headerGetter: TextMapGetter<Record<string, HeaderValue>> = {
  keys: (carrier) => Object.keys(carrier),
  get: (carrier, key) => (Object.hasOwn(carrier, key) ? text(carrier[key]) : undefined),
};

let warnedNoPropagator = false;

/** The instrumentation of one service. */
class OtelService implements ServiceInstrumentation {
  readonly tracer: Tracer;
  readonly instruments: Instruments | undefined;
  readonly propagator: TextMapPropagator;
  readonly settleSpans: boolean;
  readonly suppress: boolean;
  /** `messaging.system`: `rabbitmq` on RabbitMQ, else the transport's kind. */
  readonly system: string;
  readonly rabbitmq: boolean;
  private readonly explicitTracer: boolean;
  private readonly depthInterval: number;
  private depthCallback: ((result: ObservableResult) => Promise<void>) | undefined;
  private depthCache: { at: number; depths: Promise<Map<string, number>> } | undefined;
  private readonly sends = new Map<string, SendAttributes>();
  private readonly processes = new Map<string, ProcessAttributes>();

  constructor(
    readonly service: InstrumentedService,
    options: OpenTelemetryOptions,
  ) {
    this.explicitTracer = options.tracerProvider !== undefined;
    this.tracer = (options.tracerProvider ?? trace.getTracerProvider()).getTracer(
      'tidings',
      VERSION,
    );
    const meter = (options.meterProvider ?? metrics.getMeterProvider()).getMeter(
      'tidings',
      VERSION,
    );
    this.instruments = meter.constructor === NOOP_METER ? undefined : new Instruments(meter);
    this.propagator = options.propagator ?? propagation;
    this.settleSpans = options.settleSpans ?? true;
    this.suppress = options.suppressTransportSpans ?? true;
    this.depthInterval = options.queueDepthIntervalMs ?? 15_000;
    this.rabbitmq = service.transport.kind === 'amqp';
    this.system = this.rabbitmq ? 'rabbitmq' : service.transport.kind;
    this.metricBase = { [A.system]: this.system, [A.service]: service.name };
    if (!warnedNoPropagator && !this.propagator.fields().includes(HEADERS.traceparent)) {
      warnedNoPropagator = true;
      diag.warn(
        'tidings: the propagator writes no traceparent header, so traces will not cross services; register W3CTraceContextPropagator (the OpenTelemetry SDK does by default)',
      );
    }
  }

  /** Whether spans can be recorded: a tracer provider was given, or one is registered. */
  tracing(): boolean {
    if (this.explicitTracer) return true;
    const provider = trace.getTracerProvider();
    return (
      !(provider instanceof ProxyTracerProvider) || provider.getDelegate() !== NOOP_TRACER_PROVIDER
    );
  }

  publish(publication: Publication): PublishProbe | undefined {
    const tracing = this.tracing();
    if (!tracing && this.instruments === undefined) return undefined;
    return new PublishTrace(this, publication, tracing);
  }

  deliver(delivery: Delivery, handler: HandlerInfo): DeliveryProbe | undefined {
    const tracing = this.tracing();
    if (!tracing && this.instruments === undefined) return undefined;
    return new DeliveryTrace(this, delivery, handler, tracing);
  }

  started(queues: readonly string[]): void {
    const transport = this.service.transport;
    if (!this.instruments || !transport.queueStats) return;
    const watched = queues.flatMap((queue) => [
      { name: queue, kind: 'work' },
      { name: deadLetterQueueName(queue), kind: 'dead-letter' },
    ]);
    const base = this.metricBase;
    this.depthCallback = async (result) => {
      const depths = await this.depths(watched.map((q) => q.name));
      for (const q of watched) {
        const depth = depths.get(q.name);
        if (depth === undefined) continue;
        result.observe(depth, { ...base, [A.destinationName]: q.name, [A.queueKind]: q.kind });
      }
    };
    this.instruments.queueDepth.addCallback(this.depthCallback);
  }

  stopped(): void {
    if (this.depthCallback) this.instruments?.queueDepth.removeCallback(this.depthCallback);
    this.depthCallback = undefined;
  }

  /**
   * The attributes every metric point of this service has. Metric points carry as few
   * attributes as say what they count: the SDK hashes them on every measurement.
   */
  readonly metricBase: Attributes;

  /**
   * The attributes every send of an event version shares, built once: spans get them at creation
   * (samplers may read them), metric points reuse them.
   */
  sendAttributes(exchange: string, type: string, event: string, version: number): SendAttributes {
    let cached = this.sends.get(type);
    if (cached) return cached;
    const destination = destinationName(exchange, type);
    const metric: Attributes = {
      ...this.metricBase,
      [A.operationName]: 'send',
      [A.destinationName]: destination,
      [A.event]: `${exchange}.${event}`,
      [A.version]: version,
    };
    const span: Attributes = {
      ...metric,
      [A.systemName]: this.system,
      [A.operationType]: OPERATION_TYPES.send,
    };
    if (this.rabbitmq) {
      span[A.routingKey] = type;
      span[A.rabbitmqRoutingKey] = type;
    }
    cached = { name: `send ${destination}`, span, metric, failedMetric: new Map() };
    remember(this.sends, type, cached);
    return cached;
  }

  /** The attributes every delivery of a routing key to a handler shares, built once. */
  processAttributes(
    exchange: string,
    routingKey: string,
    type: string,
    handler: HandlerInfo,
  ): ProcessAttributes {
    const key = `${handler.queue}\u0000${handler.name}\u0000${exchange}\u0000${routingKey}\u0000${type}`;
    let cached = this.processes.get(key);
    if (cached) return cached;
    const destination = destinationName(exchange, routingKey, handler.queue);
    const metric: Attributes = { ...this.metricBase, [A.destinationName]: destination };
    const parsed = parseRoutingKey(type);
    if (parsed) {
      metric[A.event] = `${parsed.exchange}.${parsed.event}`;
      metric[A.version] = parsed.version;
    }
    const span: Attributes = {
      ...metric,
      [A.systemName]: this.system,
      [A.consumerGroup]: handler.queue,
      [A.operationType]: OPERATION_TYPES.process,
      [A.operationName]: 'process',
      [A.handler]: handler.name,
    };
    if (this.rabbitmq) {
      span[A.routingKey] = routingKey;
      span[A.rabbitmqRoutingKey] = routingKey;
    }
    const settle = (operation: SettleOperation): Attributes => ({
      ...metric,
      [A.systemName]: this.system,
      [A.operationType]: OPERATION_TYPES.settle,
      [A.operationName]: operation,
    });
    cached = {
      destination,
      name: `process ${destination}`,
      span,
      metric,
      consumed: { ...metric, [A.operationName]: 'process' },
      settle: {
        ack: settle('ack'),
        retry: settle('retry'),
        dead_letter: settle('dead_letter'),
        requeue: settle('requeue'),
      },
      failedMetric: new Map(),
    };
    remember(this.processes, key, cached);
    return cached;
  }

  /** The depth of each queue, asked at most once per interval; a queue that fails is left out. */
  private depths(queues: readonly string[]): Promise<Map<string, number>> {
    const now = Date.now();
    if (this.depthCache && now - this.depthCache.at < this.depthInterval) {
      return this.depthCache.depths;
    }
    const transport = this.service.transport;
    const depths = Promise.all(
      queues.map((queue) =>
        Promise.resolve()
          .then(() => transport.queueStats?.(queue))
          .then((stats) => stats?.messages)
          .catch((error: unknown) => {
            diag.debug(`tidings: could not read the depth of ${queue}`, error);
            return undefined;
          }),
      ),
    ).then((values) => {
      const map = new Map<string, number>();
      values.forEach((value, i) => {
        if (value !== undefined) map.set(queues[i]!, value);
      });
      return map;
    });
    this.depthCache = { at: now, depths };
    return depths;
  }
}

/** Follows one publish: its PRODUCER span and its metrics. */
class PublishTrace implements PublishProbe {
  readonly traceparent: string | undefined;
  readonly tracestate: string | undefined;
  private readonly span: Span | undefined;
  private readonly context: Context | undefined;
  private readonly attributes: SendAttributes;
  private readonly started = performance.now();

  constructor(
    private readonly service: OtelService,
    publication: Publication,
    tracing: boolean,
  ) {
    const envelope = publication.envelope;
    this.attributes = service.sendAttributes(
      envelope.exchange,
      envelope.type,
      envelope.event,
      envelope.version,
    );
    if (!tracing) {
      this.traceparent = envelope.traceparent;
      this.tracestate = envelope.tracestate;
      return;
    }
    const parent = parentOf(service, publication);
    const span = service.tracer.startSpan(
      this.attributes.name,
      { kind: SpanKind.PRODUCER, attributes: this.attributes.span },
      parent,
    );
    if (span.isRecording()) {
      span.setAttribute(A.messageId, envelope.id);
      span.setAttribute(A.conversationId, envelope.correlationId);
      if (envelope.causationId !== undefined)
        span.setAttribute(A.causationId, envelope.causationId);
    }
    this.span = span;
    this.context = trace.setSpan(parent, span);
    const carrier: Record<string, string> = {};
    service.propagator.inject(this.context, carrier, defaultTextMapSetter);
    if (carrier.traceparent !== undefined) {
      this.traceparent = carrier.traceparent;
      this.tracestate = carrier.tracestate;
    } else {
      // No propagator that writes W3C trace context: keep what would travel without tracing.
      this.traceparent = envelope.traceparent;
      this.tracestate = envelope.tracestate;
    }
  }

  run<T>(send: () => T): T {
    if (!this.context) return send();
    const ctx = this.service.suppress
      ? this.context.setValue(SUPPRESS_TRACING, true)
      : this.context;
    return context.with(ctx, send);
  }

  end(error: unknown, routed: boolean): void {
    const span = this.span;
    if (span) {
      if (!routed) span.setAttribute(A.routed, false);
      if (error !== undefined) failed(span, error);
      span.end();
    }
    const instruments = this.service.instruments;
    if (instruments) {
      const attributes =
        error === undefined ? this.attributes.metric : failedAttributes(this.attributes, error);
      instruments.sent.add(1, attributes);
      instruments.operationDuration.record((performance.now() - this.started) / 1000, attributes);
    }
  }
}

/**
 * The parent of a producer span: the trace context the caller passed, else the active span (a
 * span of the application, or the process span of the handler that publishes), else the handled
 * delivery's process span (when no context manager carries it), else what the envelope forwards.
 */
function parentOf(service: OtelService, publication: Publication): Context {
  if (publication.traceparent !== undefined) {
    return extract(service, publication.traceparent, publication.tracestate);
  }
  const active = context.active();
  if (trace.getSpan(active)) return active;
  const cause = publication.cause;
  if (cause instanceof DeliveryTrace && cause.context) return cause.context;
  const envelope = publication.envelope;
  if (envelope.traceparent !== undefined) {
    return extract(service, envelope.traceparent, envelope.tracestate);
  }
  return active;
}

function extract(
  service: OtelService,
  traceparent: string,
  tracestate: string | undefined,
): Context {
  const carrier: Record<string, HeaderValue> = { traceparent };
  if (tracestate !== undefined) carrier.tracestate = tracestate;
  return service.propagator.extract(ROOT_CONTEXT, carrier, headerGetter);
}

/**
 * Follows one delivery: its CONSUMER span, its settle spans and its metrics. It is also the
 * delivery the runtime settles: each settlement goes through it to the transport's.
 */
class DeliveryTrace implements DeliveryProbe, Delivery {
  /** The process span's context: the handler runs in it. */
  readonly context: Context | undefined;
  private readonly span: Span | undefined;
  private readonly attributes: ProcessAttributes;
  /** The handler threw: the process span already says why. */
  private handlerFailed = false;

  constructor(
    private readonly service: OtelService,
    private readonly inner: Delivery,
    handler: HandlerInfo,
    tracing: boolean,
  ) {
    const message = inner.message;
    const h = message.properties.headers;
    const type = text(h[HEADERS.type]) ?? text(h.task) ?? message.routingKey;
    const attributes = service.processAttributes(
      message.exchange,
      message.routingKey,
      type,
      handler,
    );
    this.attributes = attributes;
    const instruments = service.instruments;
    if (instruments) {
      instruments.consumed.add(1, attributes.consumed);
      const sentAt = sentTime(h, message.properties);
      if (sentAt !== undefined) {
        instruments.lag.record(Math.max(0, Date.now() - sentAt) / 1000, attributes.metric);
      }
    }
    if (!tracing) return;
    const creation = service.propagator.extract(ROOT_CONTEXT, h, headerGetter);
    const creationSpan = trace.getSpanContext(creation);
    const links: Link[] | undefined = creationSpan ? [{ context: creationSpan }] : undefined;
    // The message's creation context is the parent, so one order is one trace across services;
    // the link says the same in the form the conventions recommend. The ambient context is
    // deliberately ignored: a delivery that waited for a free handler runs from the promise of
    // the one before it, whose context is not this message's.
    const span = service.tracer.startSpan(
      attributes.name,
      { kind: SpanKind.CONSUMER, attributes: attributes.span, ...(links && { links }) },
      creation,
    );
    if (span.isRecording()) {
      span.setAttribute(A.attempt, attemptsOf(message) + 1);
      span.setAttribute(A.bodySize, message.body.length);
      const id = text(h[HEADERS.id]) ?? text(h.id) ?? message.properties.messageId;
      if (id !== undefined) span.setAttribute(A.messageId, id);
      // Wire format 2 leaves correlation_id out when the message starts its conversation.
      const conversation = text(h.root_id) ?? message.properties.correlationId ?? id;
      if (conversation !== undefined) span.setAttribute(A.conversationId, conversation);
      const causation = text(h[HEADERS.causationId]) ?? text(h.parent_id);
      if (causation !== undefined) span.setAttribute(A.causationId, causation);
    }
    this.span = span;
    this.context = trace.setSpan(creation, span);
  }

  get delivery(): Delivery {
    return this;
  }

  get message() {
    return this.inner.message;
  }

  get queue(): string {
    return this.inner.queue;
  }

  run<T>(process: () => Promise<T>): Promise<T> {
    return this.context ? context.with(this.context, process) : process();
  }

  async handle(_envelope: Envelope, _attempt: number, handler: () => unknown): Promise<unknown> {
    const started = performance.now();
    const instruments = this.service.instruments;
    try {
      const result = await handler();
      instruments?.processDuration.record(
        (performance.now() - started) / 1000,
        this.attributes.metric,
      );
      return result;
    } catch (error) {
      this.handlerFailed = true;
      if (this.span) failed(this.span, error);
      instruments?.processDuration.record(
        (performance.now() - started) / 1000,
        failedAttributes(this.attributes, error),
      );
      throw error;
    }
  }

  end(error: unknown): void {
    if (!this.span) return;
    if (error !== undefined) failed(this.span, error);
    this.span.end();
  }

  ack(): Promise<void> {
    return this.settle('ack', undefined, () => this.inner.ack());
  }

  requeue(): Promise<void> {
    return this.settle('requeue', undefined, () => this.inner.requeue());
  }

  retry(delayMs: number, headers: Record<string, HeaderValue>): Promise<void> {
    return this.settle('retry', undefined, () => this.inner.retry(delayMs, headers));
  }

  deadLetter(headers: Record<string, HeaderValue>): Promise<void> {
    const reason = text(headers[HEADERS.deadReason]);
    const span = this.span;
    if (span && reason !== undefined) {
      span.setAttribute(A.deadLetterReason, reason);
      if (!this.handlerFailed) {
        // Input that could never be handled: the processing failed, for this reason.
        span.setAttribute(A.errorType, reason);
        span.setStatus({
          code: SpanStatusCode.ERROR,
          message: text(headers[HEADERS.errorMessage]) ?? reason,
        });
      }
    }
    return this.settle('dead_letter', reason, () => this.inner.deadLetter(headers));
  }

  private settle(
    operation: SettleOperation,
    reason: string | undefined,
    settle: () => Promise<void>,
  ): Promise<void> {
    let span: Span | undefined;
    // A settle span under a process span that is not recorded would not be either.
    if (this.span?.isRecording() && this.context && this.service.settleSpans) {
      span = this.service.tracer.startSpan(
        `${operation} ${this.attributes.destination}`,
        { kind: SpanKind.CLIENT, attributes: this.attributes.settle[operation] },
        this.context,
      );
      if (reason !== undefined) span.setAttribute(A.deadLetterReason, reason);
    }
    return settle().then(
      () => {
        span?.end();
        this.settled(operation, reason);
      },
      (error: unknown) => {
        if (span) {
          failed(span, error);
          span.end();
        }
        throw error;
      },
    );
  }

  /** Counts a settlement that succeeded. */
  private settled(operation: SettleOperation, reason: string | undefined): void {
    const instruments = this.service.instruments;
    if (!instruments) return;
    const attributes = this.attributes.metric;
    if (operation === 'ack') instruments.acked.add(1, attributes);
    else if (operation === 'retry') instruments.retried.add(1, attributes);
    else if (operation === 'dead_letter') {
      instruments.deadLettered.add(1, { ...attributes, [A.deadLetterReason]: reason ?? 'unknown' });
    }
  }
}

/**
 * Records a failure on a span: the exception (message and stack with secrets such as broker
 * passwords redacted), `error.type`, and the error status.
 */
function failed(span: Span, error: unknown): void {
  const type = errorType(error);
  // A thrown non-Error may hold anything: only its kind is kept, as in dead-letter headers.
  const message =
    error instanceof Error
      ? redactSecrets(error.message)
      : typeof error === 'string'
        ? redactSecrets(error)
        : `a non-Error value was thrown (${error === null ? 'null' : typeof error})`;
  const exception: Exception = { name: type, message };
  if (error instanceof Error && error.stack) exception.stack = redactSecrets(error.stack);
  span.recordException(exception);
  span.setAttribute(A.errorType, type);
  span.setStatus({ code: SpanStatusCode.ERROR, message });
}

/** The attributes of one kind of message, built once per service (see `sendAttributes`). */
interface SendAttributes {
  readonly name: string;
  readonly span: Attributes;
  readonly metric: Attributes;
  /** `metric` with `error.type`, by error type. */
  readonly failedMetric: Map<string, Attributes>;
}

/** The attributes of one kind of delivery to one handler (see `processAttributes`). */
interface ProcessAttributes {
  readonly destination: string;
  readonly name: string;
  readonly span: Attributes;
  readonly metric: Attributes;
  /** `metric` with `messaging.operation.name` = `process`, for the consumed counter. */
  readonly consumed: Attributes;
  readonly settle: Readonly<Record<SettleOperation, Attributes>>;
  /** `metric` with `error.type`, by error type. */
  readonly failedMetric: Map<string, Attributes>;
}

/** Metric attributes with `error.type`, kept per error type (a low-cardinality set). */
function failedAttributes(
  attributes: { readonly metric: Attributes; readonly failedMetric: Map<string, Attributes> },
  error: unknown,
): Attributes {
  const type = errorType(error);
  const cache = attributes.failedMetric;
  let found = cache.get(type);
  if (!found) {
    found = { ...attributes.metric, [A.errorType]: type };
    if (cache.size < 64) cache.set(type, found);
  }
  return found;
}

/** Keeps a value in a cache of at most 1000 entries (routing keys are few; a stranger may send many). */
function remember<V>(cache: Map<string, V>, key: string, value: V): void {
  if (cache.size >= 1000) cache.clear();
  cache.set(key, value);
}

/** `error.type`: the error's class name, low in cardinality; `_OTHER` for a thrown non-Error. */
function errorType(error: unknown): string {
  return error instanceof Error && error.name ? error.name : '_OTHER';
}

/**
 * When a message was first published (ms since the epoch): `ce-time`, else (wire format 3) the
 * time of its UUIDv7 id, else the `timestamp` property (seconds).
 */
function sentTime(
  headers: Record<string, HeaderValue>,
  properties: { readonly messageId?: string | undefined; readonly timestamp?: number | undefined },
): number | undefined {
  const time = text(headers[HEADERS.time]);
  if (time !== undefined) {
    const ms = Date.parse(time);
    return Number.isFinite(ms) ? ms : undefined;
  }
  const { messageId, timestamp } = properties;
  const fromId =
    headers[HEADERS.wire] !== undefined && messageId !== undefined
      ? uuidv7Time(messageId)
      : undefined;
  if (fromId !== undefined) return fromId;
  return timestamp !== undefined && Number.isFinite(timestamp) ? timestamp * 1000 : undefined;
}

function text(value: HeaderValue | undefined): string | undefined {
  if (typeof value === 'string') return value;
  if (Buffer.isBuffer(value)) return value.toString('utf8');
  return undefined;
}
