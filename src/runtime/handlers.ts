import type { AnyEvent, Payload } from '../contracts/event.js';
import { assertFits } from '../contracts/names.js';
import type { Envelope } from '../envelope/envelope.js';
import { ConfigError } from '../errors.js';
import type { QueueSpec, Topology } from '../transports/transport.js';
import { IDEMPOTENCY_DEFAULTS, type IdempotencyOptions } from './idempotency.js';
import { checkPositiveInt, type HandlerOptions, type ResolvedServiceOptions } from './options.js';
import { type ResolvedPartitions, resolvePartitions } from './partitions.js';
import type { Publish } from './publishing.js';
import { type ResolvedRetryPolicy, resolveRetryPolicy } from './retry.js';

/** What a handler gets besides its payload. */
export interface HandlerContext {
  /** The message's metadata, as published. */
  readonly envelope: Envelope;
  /** The version that was on the wire (the payload was upcast from it when older). */
  readonly wireVersion: number;
  /** 1 on the first delivery, 2 on the first retry, and so on. */
  readonly attempt: number;
  /** True when the broker delivered this message before without an ack (e.g. after a crash). */
  readonly redelivered: boolean;
  /** Aborted when the service is stopping and the grace period is over: wind down and throw. */
  readonly signal: AbortSignal;
  /** The name of the service running the handler. */
  readonly service: string;
  /**
   * Publishes as the service does, with the correlation id of the message being handled and
   * the causation id pointing at it.
   */
  readonly publish: Publish;
}

/** A handler: return (or resolve) to acknowledge; throw to retry, then dead-letter. */
export type Handler<P> = (payload: P, context: HandlerContext) => unknown;

/**
 * What an `onAny` handler receives: one member per subscribed event, discriminated by `event`
 * (and `exchange`), with the payload upcast to the newest version of that event.
 */
export type EventMessage<E extends AnyEvent> = E extends AnyEvent
  ? {
      readonly exchange: E['exchange']['name'];
      readonly event: E['name'];
      readonly payload: Payload<E>;
    }
  : never;

/** What a service publishes and consumes, for documentation and tooling. */
export interface ServiceDescription {
  readonly name: string;
  readonly publishes: readonly AnyEvent[];
  readonly handlers: readonly {
    /** Every event the handler receives, with the version it is written against. */
    readonly events: readonly { readonly event: AnyEvent; readonly version: number }[];
    readonly bindings: readonly { readonly exchange: string; readonly pattern: string }[];
    readonly queue: string;
    readonly name: string;
    /** For a partitioned handler: how many partitions, and those this process consumes. */
    readonly partitions?: ResolvedPartitions | undefined;
  }[];
}

/** One event a handler receives, and the version it is written against. */
export interface Subscription {
  readonly event: AnyEvent;
  readonly version: number;
}

/** A binding of a handler's queue. */
export interface Binding {
  readonly exchange: string;
  readonly pattern: string;
}

/** A handler as registered: its queue, bindings and every setting resolved. */
export interface RegisteredHandler {
  /** Events by `<exchange>.<event>`. */
  readonly events: ReadonlyMap<string, Subscription>;
  readonly bindings: readonly Binding[];
  /** True for `onAny` handlers, which receive `{ exchange, event, payload }` instead of the payload. */
  readonly tagged: boolean;
  readonly queue: string;
  readonly name: string;
  readonly retry: ResolvedRetryPolicy;
  readonly idempotency:
    | { readonly [K in keyof IdempotencyOptions]-?: Exclude<IdempotencyOptions[K], undefined> }
    | undefined;
  readonly prefetch: number;
  /** Per queue; 1 for a partitioned handler (per partition). */
  readonly concurrency: number;
  /** Set when the handler is spread over partition queues (`<queue>.p<i>`). */
  readonly partitions: ResolvedPartitions | undefined;
  readonly fn: Handler<unknown>;
}

/** What `on` and `onAny` ask to register, before checks and defaults. */
export interface HandlerRequest {
  readonly subscriptions: readonly Subscription[];
  readonly fn: Handler<unknown>;
  readonly tagged: boolean;
  readonly queue: string;
  readonly bindings: readonly Binding[];
  readonly options: Pick<
    HandlerOptions,
    'retry' | 'prefetch' | 'concurrency' | 'idempotency' | 'partitions'
  >;
  /** Problems the caller already found (a version out of range). */
  readonly problems: string[];
}

/**
 * Checks a handler against the service's settings and the handlers already registered, and
 * fills its defaults. Throws one `ConfigError` listing every problem.
 */
export function resolveHandler(
  request: HandlerRequest,
  service: ResolvedServiceOptions,
  registered: readonly RegisteredHandler[],
): RegisteredHandler {
  const { queue, options, problems } = request;
  if (typeof request.fn !== 'function') {
    throw new TypeError(`${service.name}: the handler for ${queue} must be a function`);
  }
  if (typeof queue !== 'string' || queue.length === 0) {
    problems.push('queue must be a non-empty string');
  } else {
    try {
      // The longest name the transport derives from the queue's must fit too.
      assertFits(
        'queue',
        options.partitions === undefined ? `${queue}.retry.dlq` : `${queue}.p63.retry.10`,
      );
    } catch (error) {
      problems.push((error as Error).message);
    }
  }
  const partitions = resolvePartitions(
    options.partitions,
    options.concurrency,
    request.subscriptions.map((s) => s.event),
    problems,
  );
  if (registered.some((h) => h.queue === queue)) {
    problems.push(
      `queue ${queue} is already used by another handler of this service; give this one its own \`queue\` name`,
    );
  }
  checkPositiveInt(problems, 'prefetch', options.prefetch);
  checkPositiveInt(problems, 'concurrency', options.concurrency);
  const idem = options.idempotency ?? service.idempotency;
  if (idem && typeof idem.store?.claim !== 'function') {
    problems.push('idempotency.store must implement claim(), complete() and release()');
  }
  let retry: ResolvedRetryPolicy | undefined;
  try {
    retry = resolveRetryPolicy(options.retry, service.retry);
  } catch (error) {
    problems.push(...((error as ConfigError).problems ?? []));
  }
  if (problems.length > 0) {
    throw new ConfigError(problems, `handler options for ${queue}`);
  }
  const prefetch = options.prefetch ?? service.prefetch;
  return {
    idempotency: idem && {
      store: idem.store,
      ttlMs: idem.ttlMs ?? IDEMPOTENCY_DEFAULTS.ttlMs,
      leaseMs: idem.leaseMs ?? IDEMPOTENCY_DEFAULTS.leaseMs,
      busyRetryMs: idem.busyRetryMs ?? IDEMPOTENCY_DEFAULTS.busyRetryMs,
    },
    events: new Map(
      request.subscriptions.map((s) => [`${s.event.exchange.name}.${s.event.name}`, s]),
    ),
    bindings: request.bindings,
    tagged: request.tagged,
    queue,
    name: request.fn.name || queue,
    retry: retry!,
    prefetch,
    concurrency: partitions
      ? 1
      : Math.min(prefetch, options.concurrency ?? service.concurrency ?? prefetch),
    partitions,
    fn: request.fn,
  };
}

/** The exchanges, queues and bindings a service with these handlers needs. */
export function topologyOf(
  publishes: readonly AnyEvent[],
  handlers: readonly RegisteredHandler[],
): Topology {
  const exchanges = new Set<string>();
  const queues: QueueSpec[] = [];
  for (const e of publishes) exchanges.add(e.exchange.name);
  for (const h of handlers) {
    for (const b of h.bindings) exchanges.add(b.exchange);
    queues.push(
      h.partitions
        ? { name: h.queue, bindings: h.bindings, partitions: h.partitions.count }
        : { name: h.queue, bindings: h.bindings },
    );
  }
  return { exchanges: [...exchanges], queues };
}

/** The public description of a service's handlers. */
export function describeHandlers(
  handlers: readonly RegisteredHandler[],
): ServiceDescription['handlers'] {
  return handlers.map((h) => ({
    events: [...h.events.values()],
    bindings: h.bindings,
    queue: h.queue,
    name: h.name,
    ...(h.partitions ? { partitions: h.partitions } : {}),
  }));
}
