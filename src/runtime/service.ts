import type {
  AnyEvent,
  LatestVersionOf,
  Payload,
  PayloadInput,
  VersionOf,
  WireFormat,
} from '../contracts/event.js';
import { assertFits, assertName } from '../contracts/names.js';
import { decodeCelery, encodeCelery, isCeleryMessage } from '../envelope/celery.js';
import {
  attemptsOf,
  type Envelope,
  envelopeFromMessage,
  envelopeToProperties,
  HEADERS,
  type HeaderValue,
  type OutgoingMessage,
} from '../envelope/envelope.js';
import { isoNow, uuidv7 } from '../envelope/id.js';
import { ConfigError, StateError, UnroutableError, ValidationError } from '../errors.js';
import { redactSecrets } from '../redact.js';
import type {
  Consumer,
  Delivery,
  QueueSpec,
  Topology,
  Transport,
} from '../transports/transport.js';
import { type ClaimResult, IDEMPOTENCY_DEFAULTS, type IdempotencyOptions } from './idempotency.js';
import { consoleLogger, type Logger } from './logger.js';
import type { Outbox, OutboxTransaction } from './outbox.js';
import {
  isRetryable,
  type ResolvedRetryPolicy,
  type RetryPolicy,
  resolveRetryPolicy,
  retryDelay,
} from './retry.js';
import { validate } from './validate.js';

/** What to do when a published message reaches no queue. */
export type UnroutablePolicy = 'error' | 'warn' | 'ignore';

/** Why a message was dead-lettered; the value of the `tidings-dead-reason` header. */
export type DeadLetterReason =
  | 'handler-error'
  | 'invalid-json'
  | 'invalid-celery'
  | 'schema-violation'
  | 'unsupported-version'
  | 'unknown-event'
  | 'oversize'
  | 'missing-envelope';

/** Options of {@link createService}. */
export interface ServiceOptions {
  /** The service's name: lowercase `[a-z0-9_-]+`. It prefixes its queues and is the `source` of what it publishes. */
  readonly name: string;
  /** The broker connection. The service never closes it: close it after `stop()`. */
  readonly transport: Transport;
  /**
   * What `publish` does when no queue receives the message.
   * @defaultValue 'error' (reject with `UnroutableError`)
   */
  readonly unroutable?: UnroutablePolicy | undefined;
  /** Retry policy for every handler of the service; a handler's own fields override it. */
  readonly retry?: RetryPolicy | undefined;
  /**
   * Default for each handler's prefetch (unacknowledged messages it may hold).
   * @defaultValue 20
   */
  readonly prefetch?: number | undefined;
  /**
   * Default for each handler's concurrency (handlers running at once).
   * @defaultValue the handler's prefetch
   */
  readonly concurrency?: number | undefined;
  /**
   * How long `stop()` waits for running handlers before aborting them and requeueing their messages.
   * @defaultValue 10000
   */
  readonly shutdownTimeoutMs?: number | undefined;
  /**
   * Bodies larger than this many bytes are dead-lettered with reason `oversize`, unparsed.
   * @defaultValue 1048576 (1 MiB)
   */
  readonly maxMessageBytes?: number | undefined;
  /** @defaultValue warnings and errors to stderr */
  readonly logger?: Logger | undefined;
  /**
   * Wire format of what this service publishes: `tidings` (JSON payload, CloudEvents headers) or
   * `celery` (Celery task protocol v2, for Celery workers). Consuming accepts both whatever this is.
   * @defaultValue the exchange's format (`defineExchange(name, { format })`), else `tidings`
   */
  readonly format?: WireFormat | undefined;
  /** Default idempotency settings for every handler (see {@link HandlerOptions.idempotency}). */
  readonly idempotency?: IdempotencyOptions | undefined;
  /**
   * Events this service publishes. Optional: publishing works without it. Listed events have
   * their exchanges declared by `start()`, and appear in `describe()` (AsyncAPI, topology).
   */
  readonly publishes?: readonly AnyEvent[] | undefined;
  /**
   * Where `publish(event, payload, { tx })` writes its messages instead of sending them: a
   * transactional outbox (`PostgresOutbox` from `tidings/postgres`), whose relay publishes them
   * once the transaction has committed. Publishing without `tx` is unaffected.
   * @defaultValue none: a publish with `tx` rejects with `ConfigError`
   */
  readonly outbox?: Outbox | undefined;
}

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
  }[];
}

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

/** Options of a handler for several events ({@link Service.onAny}). */
export interface MultiHandlerOptions extends Omit<HandlerOptions, 'version' | 'pattern' | 'queue'> {
  /**
   * Queue name: required, because a default derived from the list of events would change when an
   * event is added, stranding messages in the old queue.
   */
  readonly queue: string;
  /**
   * Binding patterns. Messages of events not in the list are dead-lettered (`unknown-event`).
   * @defaultValue one `<exchange>.*.<event>` per event
   */
  readonly patterns?:
    | readonly { readonly exchange: string; readonly pattern: string }[]
    | undefined;
}

/** Options of one handler. */
export interface HandlerOptions<Ver extends number = number> {
  /**
   * The event version the handler is written against. Older versions arrive upcast to it; newer
   * ones are dead-lettered with reason `unsupported-version`.
   * @defaultValue the newest version of the event
   */
  readonly version?: Ver | undefined;
  /**
   * Binding pattern on the event's exchange.
   * @defaultValue `<exchange>.*.<event>` (every version)
   */
  readonly pattern?: string | undefined;
  /**
   * Queue name. Changing it later strands the messages in the old queue.
   * @defaultValue `<service>.<exchange>.<event>`
   */
  readonly queue?: string | undefined;
  /** Overrides of the service's retry policy. */
  readonly retry?: RetryPolicy | undefined;
  /** @defaultValue the service's `prefetch` */
  readonly prefetch?: number | undefined;
  /**
   * Handlers of this queue running at once; never more than the prefetch (a larger value is
   * capped), since only that many messages are held.
   * @defaultValue the service's `concurrency`, else the handler's prefetch
   */
  readonly concurrency?: number | undefined;
  /**
   * Skip messages this handler already processed (by message id), using a store.
   * @defaultValue the service's `idempotency`, else none
   */
  readonly idempotency?: IdempotencyOptions | undefined;
}

/** Options of one publish. */
export interface PublishOptions<Ver extends number = number> {
  /** Publish this (older) version instead of the newest; the payload must match it. */
  readonly version?: Ver | undefined;
  /** Message id; generated (UUIDv7) when absent. Keep it when re-publishing the same fact. */
  readonly id?: string | undefined;
  /** Correlation id; defaults to the message's own id (it starts a new conversation). */
  readonly correlationId?: string | undefined;
  /** Id of the message that caused this one. */
  readonly causationId?: string | undefined;
  /** W3C trace context to forward. */
  readonly traceparent?: string | undefined;
  /** Wire format of this message. @defaultValue the service's, else the exchange's */
  readonly format?: WireFormat | undefined;
  /**
   * Write the message into the service's outbox in this transaction (with `tidings/postgres`, the
   * `pg` client on which you ran `BEGIN`) instead of sending it: it is published after, and only
   * if, the transaction commits. The publish resolves once the message is written.
   * @defaultValue none: the message is sent now
   */
  readonly tx?: OutboxTransaction | undefined;
  /**
   * With `tx`: messages of one key (say `order:42`) are published in the order their
   * transactions committed. Ignored without `tx`.
   * @defaultValue none: no order relative to other messages
   */
  readonly orderingKey?: string | undefined;
}

/** Publishes a typed event; resolves with the envelope once the broker has the message. */
export type Publish = <E extends AnyEvent, Ver extends VersionOf<E> = LatestVersionOf<E>>(
  event: E,
  payload: PayloadInput<E, Ver>,
  options?: PublishOptions<Ver>,
) => Promise<Envelope>;

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

/** Lifecycle and per-message events a service emits, for logging and tracing. */
export interface ServiceEvents {
  /** A handler finished and the message was acknowledged. `payload` is what the handler got. */
  handled: {
    service: string;
    queue: string;
    envelope: Envelope;
    payload: unknown;
    durationMs: number;
  };
  /** A handler threw; `willRetry` says whether another attempt is scheduled. */
  failed: {
    service: string;
    queue: string;
    envelope: Envelope;
    error: unknown;
    attempt: number;
    willRetry: boolean;
  };
  /** A message went to the dead-letter queue. */
  'dead-lettered': {
    service: string;
    queue: string;
    reason: DeadLetterReason;
    routingKey: string;
    messageId: string | undefined;
    error: string;
  };
  /** A message was accepted by the broker. `payload` is the validated value that was sent. */
  published: { service: string; envelope: Envelope; payload: unknown; routed: boolean };
  /** A message whose id the idempotency store knew as processed was acknowledged unhandled. */
  duplicate: { service: string; queue: string; envelope: Envelope };
}

type Listener<T> = (event: T) => void;

interface Subscription {
  readonly event: AnyEvent;
  readonly version: number;
}

interface RegisteredHandler {
  /** Events by `<exchange>.<event>`. */
  readonly events: Map<string, Subscription>;
  readonly bindings: readonly { readonly exchange: string; readonly pattern: string }[];
  /** True for `onAny` handlers, which receive `{ event, payload }` instead of the payload. */
  readonly tagged: boolean;
  readonly queue: string;
  readonly name: string;
  readonly retry: ResolvedRetryPolicy;
  readonly idempotency:
    | { readonly [K in keyof IdempotencyOptions]-?: Exclude<IdempotencyOptions[K], undefined> }
    | undefined;
  readonly prefetch: number;
  readonly concurrency: number;
  readonly fn: Handler<unknown>;
  running: number;
  readonly waiting: Delivery[];
  consumer: Consumer | undefined;
}

type State = 'idle' | 'starting' | 'running' | 'stopping' | 'stopped';

/**
 * A named service: it registers handlers, declares its queues, consumes, and publishes.
 *
 * ```ts
 * const billing = createService({ name: 'billing', transport });
 * billing.on(orderSubmit, async (order, ctx) => { ... });
 * await billing.start();
 * ```
 */
export class Service {
  readonly name: string;
  private readonly transport: Transport;
  private readonly unroutable: UnroutablePolicy;
  private readonly retry: ResolvedRetryPolicy;
  private readonly prefetch: number;
  private readonly concurrency: number | undefined;
  private readonly shutdownTimeoutMs: number;
  private readonly maxMessageBytes: number;
  private readonly logger: Logger;
  private readonly handlers: RegisteredHandler[] = [];
  private readonly publishes: readonly AnyEvent[];
  private readonly idempotency: IdempotencyOptions | undefined;
  private readonly format: WireFormat | undefined;
  private readonly outbox: Outbox | undefined;
  private readonly declaredExchanges = new Set<string>();
  private readonly declaring = new Map<string, Promise<void>>();
  private readonly listeners: { [K in keyof ServiceEvents]?: Listener<ServiceEvents[K]>[] } = {};
  private readonly abort = new AbortController();
  private inFlight = 0;
  private idleWaiters: (() => void)[] = [];
  private state: State = 'idle';
  private starting: Promise<void> | undefined;
  private stopping: Promise<void> | undefined;

  constructor(options: ServiceOptions) {
    const problems: string[] = [];
    try {
      assertName('service', options?.name);
    } catch (error) {
      problems.push((error as Error).message);
    }
    if (!options?.transport || typeof options.transport.publish !== 'function') {
      problems.push('transport is required (for example memoryTransport() or connect(url))');
    }
    const unroutable = options?.unroutable ?? 'error';
    if (!['error', 'warn', 'ignore'].includes(unroutable)) {
      problems.push(`unroutable must be "error", "warn" or "ignore" (got ${String(unroutable)})`);
    }
    checkPositiveInt(problems, 'prefetch', options?.prefetch);
    checkPositiveInt(problems, 'concurrency', options?.concurrency);
    checkPositiveInt(problems, 'shutdownTimeoutMs', options?.shutdownTimeoutMs, true);
    checkPositiveInt(problems, 'maxMessageBytes', options?.maxMessageBytes);
    let retry: ResolvedRetryPolicy | undefined;
    try {
      retry = resolveRetryPolicy(options?.retry);
    } catch (error) {
      problems.push(...((error as ConfigError).problems ?? [(error as Error).message]));
    }
    for (const e of options?.publishes ?? []) {
      if (e?.kind !== 'event') problems.push('publishes must list events made by defineEvent()');
    }
    if (options?.outbox !== undefined && typeof options.outbox?.write !== 'function') {
      problems.push('outbox must have a write() method (for example new PostgresOutbox({ pool }))');
    }
    if (problems.length > 0) {
      throw new ConfigError(problems, `options for service ${JSON.stringify(options?.name)}`);
    }
    this.name = options.name;
    this.transport = options.transport;
    this.unroutable = unroutable;
    this.retry = retry!;
    this.prefetch = options.prefetch ?? 20;
    this.concurrency = options.concurrency;
    this.shutdownTimeoutMs = options.shutdownTimeoutMs ?? 10_000;
    this.maxMessageBytes = options.maxMessageBytes ?? 1024 * 1024;
    this.logger = options.logger ?? consoleLogger(this.name);
    this.publishes = [...(options.publishes ?? [])];
    this.idempotency = options.idempotency;
    this.format = options.format;
    this.outbox = options.outbox;
  }

  /** The events this service publishes and the handlers it runs. */
  describe(): ServiceDescription {
    return {
      name: this.name,
      publishes: this.publishes,
      handlers: this.handlers.map((h) => ({
        events: [...h.events.values()],
        bindings: h.bindings,
        queue: h.queue,
        name: h.name,
      })),
    };
  }

  /** Listens to a lifecycle or per-message event. Returns a function that removes the listener. */
  observe<K extends keyof ServiceEvents>(
    name: K,
    listener: Listener<ServiceEvents[K]>,
  ): () => void {
    const list = (this.listeners[name] ?? []) as Listener<ServiceEvents[K]>[];
    this.listeners[name] = list as (typeof this.listeners)[K];
    list.push(listener);
    return () => {
      const i = list.indexOf(listener);
      if (i >= 0) list.splice(i, 1);
    };
  }

  private emit<K extends keyof ServiceEvents>(name: K, event: ServiceEvents[K]): void {
    const list = this.listeners[name];
    if (!list) return;
    for (const listener of list) {
      try {
        listener(event);
      } catch (error) {
        this.logger.error(`a "${name}" listener threw`, { error });
      }
    }
  }

  /**
   * Registers a handler for an event. It gets its own durable queue (`<service>.<exchange>.<event>`)
   * bound to `<exchange>.*.<event>`, so it receives every version; the payload is validated and
   * upcast to the handler's version. Call before `start()`.
   */
  on<E extends AnyEvent, Ver extends VersionOf<E>>(
    event: E,
    handler: Handler<Payload<E, Ver>>,
    options: HandlerOptions<Ver> & { readonly version: Ver },
  ): this;
  // Without an explicit version, the handler is typed against the newest one. A separate overload
  // (rather than a defaulted type parameter) lets generic wrappers such as `on(event, wrap(fn))`
  // infer their payload type from the event alone.
  on<E extends AnyEvent>(
    event: E,
    handler: Handler<Payload<E>>,
    options?: HandlerOptions<LatestVersionOf<E>>,
  ): this;
  on(event: AnyEvent, handler: Handler<never>, options: HandlerOptions = {}): this {
    if (event?.kind !== 'event') {
      throw new TypeError(`${this.name}.on: the first argument must come from defineEvent()`);
    }
    const problems: string[] = [];
    const version = options.version ?? event.latest;
    if (!Number.isInteger(version) || version < 1 || version > event.latest) {
      problems.push(`version must be between 1 and ${event.latest} (got ${String(version)})`);
    }
    const exchange = event.exchange.name;
    this.register(
      [{ event, version }],
      handler as Handler<unknown>,
      false,
      options.queue ?? `${this.name}.${exchange}.${event.name}`,
      [{ exchange, pattern: options.pattern ?? `${exchange}.*.${event.name}` }],
      options,
      problems,
    );
    return this;
  }

  /**
   * Registers one handler for several events. It receives `{ exchange, event, payload }`, a union
   * discriminated by `event`, so a `switch (message.event)` narrows the payload; each payload is
   * upcast to the newest version of its event. Its queue is named by `options.queue`.
   */
  onAny<const Es extends readonly AnyEvent[]>(
    events: Es,
    handler: Handler<EventMessage<Es[number]>>,
    options: MultiHandlerOptions,
  ): this {
    const problems: string[] = [];
    if (!Array.isArray(events) || events.length === 0 || events.some((e) => e?.kind !== 'event')) {
      throw new TypeError(
        `${this.name}.onAny: the first argument must be a non-empty list of events`,
      );
    }
    const patterns =
      options.patterns ??
      events.map((e) => ({ exchange: e.exchange.name, pattern: `${e.exchange.name}.*.${e.name}` }));
    this.register(
      events.map((event) => ({ event, version: event.latest })),
      handler as Handler<unknown>,
      true,
      options.queue,
      patterns,
      options,
      problems,
    );
    return this;
  }

  private register(
    subscriptions: Subscription[],
    handler: Handler<unknown>,
    tagged: boolean,
    queue: string,
    bindings: readonly { exchange: string; pattern: string }[],
    options: Pick<HandlerOptions, 'retry' | 'prefetch' | 'concurrency' | 'idempotency'>,
    problems: string[],
  ): void {
    if (this.state !== 'idle') {
      throw new StateError(`${this.name}: register handlers before start()`);
    }
    if (typeof handler !== 'function') {
      throw new TypeError(`${this.name}: the handler for ${queue} must be a function`);
    }
    if (typeof queue !== 'string' || queue.length === 0) {
      problems.push('queue must be a non-empty string');
    } else {
      try {
        assertFits('queue', `${queue}.retry.dlq`);
      } catch (error) {
        problems.push((error as Error).message);
      }
    }
    if (this.handlers.some((h) => h.queue === queue)) {
      problems.push(
        `queue ${queue} is already used by another handler of this service; give this one its own \`queue\` name`,
      );
    }
    checkPositiveInt(problems, 'prefetch', options.prefetch);
    checkPositiveInt(problems, 'concurrency', options.concurrency);
    const idem = options.idempotency ?? this.idempotency;
    if (idem && typeof idem.store?.claim !== 'function') {
      problems.push('idempotency.store must implement claim(), complete() and release()');
    }
    let retry: ResolvedRetryPolicy | undefined;
    try {
      retry = resolveRetryPolicy(options.retry, this.retry);
    } catch (error) {
      problems.push(...((error as ConfigError).problems ?? []));
    }
    if (problems.length > 0) {
      throw new ConfigError(problems, `handler options for ${queue}`);
    }
    const prefetch = options.prefetch ?? this.prefetch;
    this.handlers.push({
      idempotency: idem && {
        store: idem.store,
        ttlMs: idem.ttlMs ?? IDEMPOTENCY_DEFAULTS.ttlMs,
        leaseMs: idem.leaseMs ?? IDEMPOTENCY_DEFAULTS.leaseMs,
        busyRetryMs: idem.busyRetryMs ?? IDEMPOTENCY_DEFAULTS.busyRetryMs,
      },
      events: new Map(subscriptions.map((s) => [`${s.event.exchange.name}.${s.event.name}`, s])),
      bindings,
      tagged,
      queue,
      name: handler.name || queue,
      retry: retry!,
      prefetch,
      concurrency: Math.min(prefetch, options.concurrency ?? this.concurrency ?? prefetch),
      fn: handler,
      running: 0,
      waiting: [],
      consumer: undefined,
    });
  }

  /** The exchanges, queues and bindings this service needs. */
  topology(): Topology {
    const exchanges = new Set<string>();
    const queues: QueueSpec[] = [];
    for (const e of this.publishes) exchanges.add(e.exchange.name);
    for (const h of this.handlers) {
      for (const b of h.bindings) exchanges.add(b.exchange);
      queues.push({ name: h.queue, bindings: h.bindings });
    }
    return { exchanges: [...exchanges], queues };
  }

  /** Declares the topology and starts consuming. Resolves when every handler is consuming. */
  start(): Promise<void> {
    if (this.state !== 'idle') {
      return Promise.reject(new StateError(`${this.name}: start() was already called`));
    }
    this.state = 'starting';
    this.starting = this.begin();
    return this.starting;
  }

  private async begin(): Promise<void> {
    try {
      const topology = this.topology();
      await this.transport.declare(topology);
      for (const ex of topology.exchanges) this.declaredExchanges.add(ex);
      for (const h of this.handlers) {
        h.consumer = await this.transport.consume(h.queue, { prefetch: h.prefetch }, (d) =>
          this.onDelivery(h, d),
        );
      }
      // stop() may have been called meanwhile; it waits for this, then cancels the consumers.
      if (this.state === 'starting') this.state = 'running';
    } catch (error) {
      this.state = 'stopped';
      await Promise.allSettled(this.handlers.map((h) => h.consumer?.cancel()));
      throw error;
    }
  }

  /**
   * Stops taking messages, waits for running handlers (up to `shutdownTimeoutMs`), then aborts
   * the rest, whose messages go back to their queues. Does not close the transport.
   */
  stop(): Promise<void> {
    this.stopping ??= this.end();
    return this.stopping;
  }

  private async end(): Promise<void> {
    if (this.state === 'idle') {
      this.state = 'stopped';
      return;
    }
    this.state = 'stopping';
    await this.starting?.catch(() => {});
    await Promise.allSettled(this.handlers.map((h) => h.consumer?.cancel()));
    for (const h of this.handlers) {
      for (const d of h.waiting.splice(0)) {
        this.inFlight--;
        await d.requeue().catch(() => {});
      }
    }
    if (!(await this.waitIdle(this.shutdownTimeoutMs))) {
      this.logger.warn(
        `${this.inFlight} handler(s) still running after ${this.shutdownTimeoutMs} ms; aborting them`,
      );
      this.abort.abort(new StateError(`${this.name} is shutting down`));
      await this.waitIdle(1000);
    }
    this.state = 'stopped';
  }

  private waitIdle(timeoutMs: number): Promise<boolean> {
    if (this.inFlight === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMs);
      this.idleWaiters.push(() => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  }

  /**
   * Publishes an event (validated first; nothing is sent when it is invalid). Resolves with the
   * envelope once the broker has accepted the message; rejects with `ValidationError`,
   * `UnroutableError` (per the `unroutable` policy) or a transport error. With `tx`, writes the
   * message into the service's outbox in that transaction instead, and resolves once written.
   */
  publish: Publish = (event, payload, options) => this.send(event, payload, options, undefined);

  // Not `async`: a publish costs one promise (the transport's) and no extra turn of the
  // microtask queue when the schema is synchronous, the common case. Every failure, thrown or
  // not, still reaches the caller as a rejection.
  private send(
    event: AnyEvent,
    payload: unknown,
    options: PublishOptions | undefined,
    parent: Envelope | undefined,
  ): Promise<Envelope> {
    try {
      if (this.state === 'stopped')
        throw new StateError(`${this.name} is stopped; it cannot publish`);
      if (event?.kind !== 'event') {
        throw new TypeError(
          `${this.name}.publish: the first argument must come from defineEvent()`,
        );
      }
      const version = options?.version ?? event.latest;
      const spec = event.versions[version - 1];
      if (!spec) {
        throw new RangeError(
          `${event.exchange.name}.${event.name} has versions 1..${event.latest}; there is no version ${version}`,
        );
      }
      const value = validate(spec.schema, payload, spec.routingKey);
      if (value instanceof Promise) {
        return value.then((v) =>
          this.sendValid(event, spec.routingKey, version, v, options, parent),
        );
      }
      return this.sendValid(event, spec.routingKey, version, value, options, parent);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** Publishes a payload already validated at `version` (see {@link send}). */
  private sendValid(
    event: AnyEvent,
    routingKey: string,
    version: number,
    value: unknown,
    options: PublishOptions | undefined,
    parent: Envelope | undefined,
  ): Promise<Envelope> {
    const id = options?.id ?? uuidv7();
    const envelope: Envelope = {
      id,
      type: routingKey,
      exchange: event.exchange.name,
      event: event.name,
      version,
      source: this.name,
      time: isoNow(),
      correlationId: options?.correlationId ?? parent?.correlationId ?? id,
      causationId: options?.causationId ?? parent?.id,
      traceparent: options?.traceparent ?? parent?.traceparent,
    };
    const exchange = envelope.exchange;
    const format = options?.format ?? this.format ?? event.exchange.format;
    const message: OutgoingMessage =
      format === 'celery'
        ? { exchange, routingKey, ...encodeCelery(envelope, value) }
        : {
            exchange,
            routingKey,
            body: Buffer.from(JSON.stringify(value)),
            properties: envelopeToProperties(envelope),
          };
    if (options?.tx !== undefined) return this.writeToOutbox(options, envelope, message);
    const sent = this.declaredExchanges.has(exchange)
      ? this.transport.publish(message)
      : this.declareExchange(exchange).then(() => this.transport.publish(message));
    return sent.then((outcome) => {
      if (this.listeners.published) {
        this.emit('published', {
          service: this.name,
          envelope,
          payload: value,
          routed: outcome.routed,
        });
      }
      if (!outcome.routed) {
        if (this.unroutable === 'error') throw new UnroutableError(exchange, routingKey);
        if (this.unroutable === 'warn') {
          this.logger.warn(`no queue received ${routingKey}`, { id, exchange });
        }
      }
      return envelope;
    });
  }

  /** `publish(..., { tx })`: hands the message to the outbox instead of the transport. */
  private writeToOutbox(
    options: PublishOptions,
    envelope: Envelope,
    message: OutgoingMessage,
  ): Promise<Envelope> {
    if (!this.outbox) {
      throw new ConfigError(
        [
          'publish with `tx` needs an outbox: createService({ outbox: new PostgresOutbox({ pool }) })',
        ],
        `options for service ${JSON.stringify(this.name)}`,
      );
    }
    const key = options.orderingKey;
    if (key !== undefined && (typeof key !== 'string' || key.length === 0)) {
      throw new TypeError(`${this.name}.publish: orderingKey must be a non-empty string`);
    }
    return this.outbox
      .write(options.tx!, { message, envelope, orderingKey: key })
      .then(() => envelope);
  }

  // The producer declares the exchanges it publishes to, so publishing before any consumer has
  // started cannot fail on a missing exchange (a bug of the seed implementation).
  private declareExchange(exchange: string): Promise<void> {
    let pending = this.declaring.get(exchange);
    if (!pending) {
      pending = this.transport.declare({ exchanges: [exchange], queues: [] }).then(
        () => {
          this.declaredExchanges.add(exchange);
          this.declaring.delete(exchange);
        },
        (error: unknown) => {
          this.declaring.delete(exchange);
          throw error;
        },
      );
      this.declaring.set(exchange, pending);
    }
    return pending;
  }

  private onDelivery(h: RegisteredHandler, delivery: Delivery): void {
    if (this.state === 'stopping' || this.state === 'stopped') {
      // Delivered before the cancel took effect: back to the queue for another consumer.
      delivery.requeue().catch(() => {});
      return;
    }
    this.inFlight++;
    if (h.running >= h.concurrency) {
      h.waiting.push(delivery);
      return;
    }
    this.run(h, delivery);
  }

  private run(h: RegisteredHandler, delivery: Delivery): void {
    h.running++;
    this.process(h, delivery)
      .catch((error: unknown) => {
        // Something failed outside the handler (the broker refused a settle, a store threw):
        // the message must not stay unsettled, holding a prefetch slot for ever. Park it for a
        // second (attempts unchanged), else give it back; if it was settled, both refuse quietly.
        this.logger.error(`failed to settle a message of ${h.queue}; it will be delivered again`, {
          error,
        });
        return delivery
          .retry(1000, {})
          .catch(() => delivery.requeue())
          .catch(() => {});
      })
      .finally(() => {
        h.running--;
        this.inFlight--;
        const next = h.waiting.shift();
        if (next && this.state === 'running') this.run(h, next);
        else if (next) {
          this.inFlight--;
          next.requeue().catch(() => {});
        }
        if (this.inFlight === 0 && this.idleWaiters.length > 0) {
          for (const resolve of this.idleWaiters.splice(0)) resolve();
        }
      });
  }

  private async process(h: RegisteredHandler, delivery: Delivery): Promise<void> {
    const message = delivery.message;
    if (this.abort.signal.aborted) return delivery.requeue();
    if (message.body.length > this.maxMessageBytes) {
      return this.deadLetter(h, delivery, 'oversize', {
        message: `body is ${message.body.length} bytes, over the limit of ${this.maxMessageBytes}`,
      });
    }
    let envelope: Envelope | undefined;
    let payload: unknown;
    // Celery task messages carry the payload inside `[args, kwargs, embed]`: detected from the
    // headers, decoded here, so one queue can take both formats.
    const celery = isCeleryMessage(message);
    if (celery) {
      const decoded = decodeCelery(message);
      if ('reason' in decoded) {
        return this.deadLetter(h, delivery, decoded.reason, { message: decoded.error });
      }
      envelope = decoded.envelope;
      payload = decoded.payload;
    } else {
      envelope = envelopeFromMessage(message);
    }
    if (!envelope) {
      return this.deadLetter(h, delivery, 'missing-envelope', {
        message: 'the message has no id (ce-id header or message_id property) or no Tidings type',
      });
    }
    const sub = h.events.get(`${envelope.exchange}.${envelope.event}`);
    if (!sub) {
      return this.deadLetter(h, delivery, 'unknown-event', {
        message: `${envelope.type} is not an event this handler knows (${[...h.events.keys()].join(', ')})`,
      });
    }
    if (envelope.version > sub.version && !canDowncast(sub, envelope.version)) {
      return this.deadLetter(h, delivery, 'unsupported-version', {
        message:
          envelope.version > sub.event.latest
            ? `version ${envelope.version} is unknown to this consumer (it knows 1..${sub.event.latest}); upgrade the consumer, then replay`
            : `version ${envelope.version} is newer than the handler's version ${sub.version} and declares no downcast to it; upgrade the handler, then replay`,
      });
    }
    if (!celery) {
      try {
        payload = JSON.parse(message.body.toString('utf8'));
      } catch (error) {
        return this.deadLetter(h, delivery, 'invalid-json', {
          message: `body is not JSON: ${(error as Error).message}`,
        });
      }
    }
    try {
      payload = this.decode(sub, envelope.version, payload);
      if (payload instanceof Promise) payload = await payload;
    } catch (error) {
      if (error instanceof ValidationError) {
        return this.deadLetter(h, delivery, 'schema-violation', {
          name: error.name,
          message: error.message,
          issues: JSON.stringify(
            error.issues.map((i) => ({ path: i.path.map(String), message: i.message })),
          ),
        });
      }
      return this.deadLetter(
        h,
        delivery,
        'schema-violation',
        describeError(error, 'upcast failed'),
      );
    }

    const attempt = attemptsOf(message) + 1;
    const started = performance.now();
    const context: HandlerContext = {
      envelope,
      wireVersion: envelope.version,
      attempt,
      redelivered: message.redelivered,
      signal: this.abort.signal,
      service: this.name,
      publish: (event, p, options) => this.send(event, p, options, envelope),
    };
    const idem = h.idempotency;
    const key = idem ? `${h.queue}:${envelope.id}` : undefined;
    if (idem && key) {
      let claim: ClaimResult;
      try {
        claim = await idem.store.claim(key, idem.leaseMs);
      } catch (error) {
        // The store is down: not the message's fault, so no attempt is spent; look again later.
        this.storeError(error, h);
        return delivery.retry(idem.busyRetryMs, {});
      }
      if (claim === 'done') {
        await delivery.ack();
        this.emit('duplicate', { service: this.name, queue: h.queue, envelope });
        return;
      }
      if (claim === 'busy') return delivery.retry(idem.busyRetryMs, {});
    }
    try {
      await h.fn(
        h.tagged ? { exchange: envelope.exchange, event: envelope.event, payload } : payload,
        context,
      );
    } catch (error) {
      if (idem && key) {
        await Promise.resolve()
          .then(() => idem.store.release(key))
          .catch((e: unknown) => this.storeError(e, h));
      }
      return this.fail(h, delivery, envelope, attempt, error);
    }
    if (idem && key) {
      // The effects happened: a failure to record them must not turn into a retry that repeats them.
      await Promise.resolve()
        .then(() => idem.store.complete(key, idem.ttlMs))
        .catch((e: unknown) => this.storeError(e, h));
    }
    await delivery.ack();
    if (this.listeners.handled) {
      this.emit('handled', {
        service: this.name,
        queue: h.queue,
        envelope,
        payload,
        durationMs: performance.now() - started,
      });
    }
  }

  private storeError(error: unknown, h: RegisteredHandler): void {
    this.logger.error(`the idempotency store of ${h.queue} failed`, { error });
  }

  /** A handler (or its idempotency claim) failed: retry later, or dead-letter. */
  private fail(
    h: RegisteredHandler,
    delivery: Delivery,
    envelope: Envelope,
    attempt: number,
    error: unknown,
  ): Promise<void> {
    if (this.abort.signal.aborted) return delivery.requeue();
    const willRetry = attempt < h.retry.maxAttempts && isRetryable(h.retry, error);
    this.emit('failed', {
      service: this.name,
      queue: h.queue,
      envelope,
      error,
      attempt,
      willRetry,
    });
    const now = new Date().toISOString();
    const firstFailure = delivery.message.properties.headers[HEADERS.firstFailure] ?? now;
    if (willRetry) {
      return delivery.retry(retryDelay(h.retry, attempt), {
        [HEADERS.attempts]: attempt,
        [HEADERS.firstFailure]: firstFailure,
        [HEADERS.lastFailure]: now,
        [HEADERS.errorName]: errorName(error),
        [HEADERS.errorMessage]: bounded(redactSecrets(errorMessage(error)), 1000),
      });
    }
    return this.deadLetter(
      h,
      delivery,
      'handler-error',
      describeError(error),
      attempt,
      firstFailure,
    );
  }

  /**
   * Validates a wire payload of `wireVersion`, then converts it step by step to the handler's
   * version (upcasting an older one, downcasting a newer one), validating after every step.
   * Synchronous as long as the schemas are (the common case), so that a message costs no promise
   * and no turn of the microtask queue here, whatever its version (versions keep their order).
   */
  private decode(sub: Subscription, wireVersion: number, raw: unknown): unknown {
    const wire = sub.event.versions[wireVersion - 1]!;
    const value = validate(wire.schema, raw, wire.routingKey);
    if (value instanceof Promise) return value.then((v) => this.convert(sub, wireVersion, v));
    return this.convert(sub, wireVersion, value);
  }

  /** Converts a payload valid at version `from` to the handler's version (see {@link decode}). */
  private convert(sub: Subscription, from: number, valid: unknown): unknown {
    const versions = sub.event.versions;
    let value = valid;
    for (let v = from + 1; v <= sub.version; v++) {
      const spec = versions[v - 1]!;
      value = validate(spec.schema, spec.upcast!(value), spec.routingKey);
      if (value instanceof Promise) return value.then((x) => this.convert(sub, v, x));
    }
    for (let v = from - 1; v >= sub.version; v--) {
      const spec = versions[v - 1]!;
      value = validate(spec.schema, versions[v]!.downcast!(value), spec.routingKey);
      if (value instanceof Promise) return value.then((x) => this.convert(sub, v, x));
    }
    return value;
  }

  private async deadLetter(
    h: RegisteredHandler,
    delivery: Delivery,
    reason: DeadLetterReason,
    error: { name?: string; message: string; stack?: string; issues?: string },
    attempts = attemptsOf(delivery.message) + 1,
    firstFailure?: HeaderValue,
  ): Promise<void> {
    const now = new Date().toISOString();
    const m = delivery.message;
    const h0 = m.properties.headers;
    const headers: Record<string, HeaderValue> = {
      [HEADERS.deadReason]: reason,
      [HEADERS.errorName]: error.name ?? reason,
      [HEADERS.errorMessage]: bounded(redactSecrets(error.message), 1000),
      [HEADERS.attempts]: attempts,
      [HEADERS.firstFailure]: firstFailure ?? h0[HEADERS.firstFailure] ?? now,
      [HEADERS.lastFailure]: now,
      [HEADERS.service]: this.name,
      [HEADERS.handler]: h.name,
      [HEADERS.queue]: h.queue,
      // A replayed message travels through the default exchange: keep where it was first published.
      [HEADERS.originalExchange]: h0[HEADERS.originalExchange] ?? m.exchange,
      [HEADERS.originalRoutingKey]: h0[HEADERS.originalRoutingKey] ?? m.routingKey,
    };
    if (error.stack) headers[HEADERS.errorStack] = bounded(redactSecrets(error.stack), 2000);
    if (error.issues) headers[HEADERS.issues] = bounded(error.issues, 4000);
    await delivery.deadLetter(headers);
    const id = m.properties.headers[HEADERS.id];
    this.emit('dead-lettered', {
      service: this.name,
      queue: h.queue,
      reason,
      routingKey: m.routingKey,
      messageId: typeof id === 'string' ? id : m.properties.messageId,
      error: error.message,
    });
    this.logger.warn(`dead-lettered a message of ${h.queue}: ${reason}`, {
      routingKey: m.routingKey,
      error: error.message,
    });
  }
}

/** Creates a {@link Service}. Throws a `ConfigError` listing every problem in the options. */
export function createService(options: ServiceOptions): Service {
  return new Service(options);
}

/** True when every version from `wireVersion` down to the handler's declares a downcast. */
function canDowncast(sub: Subscription, wireVersion: number): boolean {
  if (wireVersion > sub.event.latest) return false;
  for (let v = wireVersion; v > sub.version; v--) {
    if (!sub.event.versions[v - 1]!.downcast) return false;
  }
  return true;
}

function checkPositiveInt(problems: string[], name: string, value: unknown, zeroOk = false): void {
  if (value === undefined) return;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < (zeroOk ? 0 : 1)) {
    problems.push(`${name} must be an integer >= ${zeroOk ? 0 : 1} (got ${String(value)})`);
  }
}

function errorName(error: unknown): string {
  if (error instanceof Error) return error.name;
  return typeof error;
}

function errorMessage(error: unknown): string {
  if (error instanceof Error) return error.message;
  // A thrown non-Error (a config object, a response) may hold anything: only its kind is kept.
  if (typeof error === 'string') return error;
  return `a non-Error value was thrown (${error === null ? 'null' : typeof error})`;
}

function describeError(
  error: unknown,
  prefix?: string,
): { name: string; message: string; stack?: string } {
  const message = prefix ? `${prefix}: ${errorMessage(error)}` : errorMessage(error);
  const out: { name: string; message: string; stack?: string } = {
    name: errorName(error),
    message,
  };
  if (error instanceof Error && error.stack) {
    out.stack = error.stack.split('\n').slice(0, 12).join('\n');
  }
  return out;
}

function bounded(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}
