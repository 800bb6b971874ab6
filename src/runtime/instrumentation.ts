import type { WireFormat } from '../contracts/event.js';
import {
  type Envelope,
  HEADERS,
  type HeaderValue,
  type IncomingMessage,
} from '../envelope/envelope.js';
import type { Delivery, Transport } from '../transports/transport.js';

/**
 * The instrumentation seam: hooks a service calls around each publish and each delivery, so that
 * tracing and metrics can be built outside the runtime. The runtime imports no telemetry library;
 * `openTelemetry()` from `tidings/otel` implements this seam on the OpenTelemetry API, and a test
 * or another backend may implement it too.
 *
 * Without `ServiceOptions.instrumentation`, each hook point costs the runtime one check of an
 * `undefined` field. A hook that returns `undefined` (nothing is recording) leaves the message on
 * the uninstrumented path.
 *
 * What a service calls, in order:
 *
 * - `forService` once, when the service is created;
 * - `started` once `start()` consumes every queue, `stopped` once `stop()` is done;
 * - per publish: `publish`, then the probe's `run` around the transport's publish, then its `end`;
 * - per delivery: `deliver` when a handler slot takes the message, the probe's `run` around its
 *   whole processing (decoding to settlement), `handle` around the handler, then `end`. The runtime
 *   settles the message through the probe's `delivery`, so the probe sees every ack, retry,
 *   dead letter and requeue.
 *
 * Hooks must not throw: an exception from a hook fails the publish or the delivery it was called
 * for (a delivery is then parked and delivered again, as for any failure to settle).
 */
export interface Instrumentation {
  /** Binds the instrumentation to one service; called once by `createService`. */
  forService(service: InstrumentedService): ServiceInstrumentation;
}

/** The service an instrumentation is bound to. */
export interface InstrumentedService {
  /** The service's name (`billing`). */
  readonly name: string;
  /** Its broker connection, for what the transport can tell (queue depth). */
  readonly transport: Transport;
}

/** The hooks of one service (see {@link Instrumentation} for when each is called). */
export interface ServiceInstrumentation {
  /** `start()` succeeded: the service now consumes these queues. */
  started?(queues: readonly string[]): void;
  /** `stop()` finished: nothing more is consumed. */
  stopped?(): void;
  /**
   * A message is about to be encoded and sent. Returns a probe to follow it, or `undefined` to
   * leave it uninstrumented.
   */
  publish(publication: Publication): PublishProbe | undefined;
  /**
   * A handler slot took `delivery` for `handler`. Returns a probe to follow its processing, or
   * `undefined` to leave it uninstrumented.
   */
  deliver(delivery: Delivery, handler: HandlerInfo): DeliveryProbe | undefined;
}

/** The handler a delivery is for. */
export interface HandlerInfo {
  /** Its queue: `billing.order.submit`. */
  readonly queue: string;
  /** Its name (the function's name, else the queue's). */
  readonly name: string;
}

/** A message about to be published. */
export interface Publication {
  /**
   * The envelope as it goes out without instrumentation (a handler's publish forwards the trace
   * context of the message it handles). The probe's trace context replaces its `traceparent` and
   * `tracestate`.
   */
  readonly envelope: Envelope;
  readonly format: WireFormat;
  /** Trace context the caller passed explicitly (`PublishOptions.traceparent`), to continue. */
  readonly traceparent: string | undefined;
  readonly tracestate: string | undefined;
  /** The delivery whose handler publishes (`ctx.publish`), else `undefined`. */
  readonly cause: DeliveryProbe | undefined;
}

/** Follows one publish. */
export interface PublishProbe {
  /** The trace context the message carries (`traceparent` and `tracestate` headers). */
  readonly traceparent: string | undefined;
  readonly tracestate: string | undefined;
  /** Runs `send` (declaring the exchange when needed, then the transport's publish) in the probe's context. */
  run<T>(send: () => T): T;
  /**
   * The publish ended: the broker took the message (`error` undefined), or it failed with `error`
   * (an encoding error, a refusal, a timeout, `UnroutableError`). `routed` is false when no queue
   * received the message.
   */
  end(error: unknown, routed: boolean): void;
}

/** Follows the processing of one delivery. */
export interface DeliveryProbe {
  /**
   * The delivery the runtime settles instead of the transport's: a wrapper that sees how the
   * message is settled, or the transport's own.
   */
  readonly delivery: Delivery;
  /** Runs the processing of the message, from decoding to settlement, in the probe's context. */
  run<T>(process: () => Promise<T>): Promise<T>;
  /**
   * Runs the handler on the decoded `envelope`, at `attempt` (1 on the first delivery). Resolves
   * or rejects as the handler does.
   */
  handle(envelope: Envelope, attempt: number, handler: () => unknown): Promise<unknown>;
  /** Processing ended: `error` when the message could not be settled, else `undefined`. */
  end(error: unknown): void;
}

/**
 * Fields for a log line about a message, so that every line the runtime writes for a message
 * names it: `messageId`, `correlationId`, and `trace_id` (from its `traceparent`, the name the
 * OpenTelemetry specification gives trace ids in logs of other formats) when it has one.
 */
export function messageLogFields(message: IncomingMessage): Record<string, unknown> {
  const p = message.properties;
  const h = p.headers;
  const id = text(h[HEADERS.id]) ?? p.messageId;
  // Wire format 2 leaves correlation_id out when it is the message's own id.
  return fields(id, p.correlationId ?? id, text(h[HEADERS.traceparent]));
}

/** {@link messageLogFields} for a message being published. */
export function envelopeLogFields(envelope: Envelope): Record<string, unknown> {
  return fields(envelope.id, envelope.correlationId, envelope.traceparent);
}

function fields(
  messageId: string | undefined,
  correlationId: string | undefined,
  traceparent: string | undefined,
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (messageId !== undefined) out.messageId = messageId;
  if (correlationId !== undefined) out.correlationId = correlationId;
  const traceId = traceIdOf(traceparent);
  if (traceId !== undefined) out.trace_id = traceId;
  return out;
}

const TRACEPARENT = /^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}/;

/** The trace id of a W3C `traceparent`, or `undefined` when it is missing or malformed. */
export function traceIdOf(traceparent: string | undefined): string | undefined {
  const id = traceparent === undefined ? undefined : TRACEPARENT.exec(traceparent)?.[1];
  return id === undefined || /^0+$/.test(id) ? undefined : id;
}

function text(value: HeaderValue): string | undefined {
  if (typeof value === 'string') return value;
  if (Buffer.isBuffer(value)) return value.toString('utf8');
  return undefined;
}
