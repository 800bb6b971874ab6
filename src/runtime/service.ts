import type { AnyEvent, LatestVersionOf, Payload, VersionOf } from '../contracts/event.js';
import { StateError } from '../errors.js';
import type { Topology } from '../transports/transport.js';
import { Dispatcher, type Lane } from './dispatch.js';
import { type Listener, Observers, type ServiceEvents } from './events.js';
import {
  type Binding,
  describeHandlers,
  type EventMessage,
  type Handler,
  type HandlerRequest,
  type RegisteredHandler,
  resolveHandler,
  type ServiceDescription,
  topologyOf,
} from './handlers.js';
import { Lifecycle, type ServiceState } from './lifecycle.js';
import {
  type HandlerOptions,
  type MultiHandlerOptions,
  type ResolvedServiceOptions,
  resolveServiceOptions,
  type ServiceOptions,
} from './options.js';
import { consumedQueues } from './partitions.js';
import { EventPublisher, type Publish } from './publishing.js';

export type { DeadLetterReason } from '../envelope/envelope.js';
export type { Listener, ServiceEvents } from './events.js';
export type {
  EventMessage,
  Handler,
  HandlerContext,
  ServiceDescription,
} from './handlers.js';
export type {
  DeliveryProbe,
  HandlerInfo,
  Instrumentation,
  InstrumentedService,
  Publication,
  PublishProbe,
  ServiceInstrumentation,
} from './instrumentation.js';
export type { ServiceState } from './lifecycle.js';
export type {
  HandlerOptions,
  MultiHandlerOptions,
  ServiceOptions,
  UnroutablePolicy,
} from './options.js';
export type { PartitionOptions } from './partitions.js';
export type { Publish, PublishOptions } from './publishing.js';

/**
 * A named service: it registers handlers, declares its queues, consumes, and publishes.
 *
 * ```ts
 * const billing = createService({ name: 'billing', transport });
 * billing.on(orderSubmit, async (order, ctx) => { ... });
 * await billing.start();
 * ```
 *
 * The class only wires its parts together; each lives in a file named after what it does:
 * `options.ts` (settings and their defaults), `handlers.ts` (registering handlers, queues,
 * bindings), `publishing.ts` (publish), `dispatch.ts` (concurrency per queue), `delivery.ts` (the
 * life of one delivered message), `versions.ts` (upcasting and downcasting), `settlement.ts`
 * (retry or dead-letter), `lifecycle.ts` (start and stop), `events.ts` (observers).
 */
export class Service {
  readonly name: string;
  private readonly options: ResolvedServiceOptions;
  private readonly observers: Observers;
  private readonly publisher: EventPublisher;
  private readonly dispatcher: Dispatcher;
  private readonly lifecycle: Lifecycle;
  private readonly handlers: RegisteredHandler[] = [];
  private readonly lanes: Lane[] = [];

  constructor(options: ServiceOptions) {
    this.options = resolveServiceOptions(options);
    this.name = this.options.name;
    this.observers = new Observers(this.options.logger);
    this.publisher = new EventPublisher(
      this.options,
      this.observers,
      () => this.state === 'stopped',
    );
    const abort = new AbortController();
    this.dispatcher = new Dispatcher({
      service: this.options,
      observers: this.observers,
      signal: abort.signal,
      publisher: this.publisher,
    });
    this.lifecycle = new Lifecycle(this.options, this.dispatcher, this.publisher, abort);
  }

  /** Where the service is in its life: `idle`, `starting`, `running`, `stopping` or `stopped`. */
  get state(): ServiceState {
    return this.lifecycle.state;
  }

  /** The events this service publishes and the handlers it runs. */
  describe(): ServiceDescription {
    return {
      name: this.name,
      publishes: this.options.publishes,
      handlers: describeHandlers(this.handlers),
    };
  }

  /** Listens to a lifecycle or per-message event. Returns a function that removes the listener. */
  observe<K extends keyof ServiceEvents>(
    name: K,
    listener: Listener<ServiceEvents[K]>,
  ): () => void {
    return this.observers.add(name, listener);
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
    this.register({
      subscriptions: [{ event, version }],
      fn: handler as Handler<unknown>,
      tagged: false,
      queue: options.queue ?? `${this.name}.${exchange}.${event.name}`,
      bindings: [{ exchange, pattern: options.pattern ?? `${exchange}.*.${event.name}` }],
      options,
      problems,
    });
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
    if (!Array.isArray(events) || events.length === 0 || events.some((e) => e?.kind !== 'event')) {
      throw new TypeError(
        `${this.name}.onAny: the first argument must be a non-empty list of events`,
      );
    }
    const bindings: readonly Binding[] =
      options.patterns ??
      events.map((e) => ({ exchange: e.exchange.name, pattern: `${e.exchange.name}.*.${e.name}` }));
    this.register({
      subscriptions: events.map((event) => ({ event, version: event.latest })),
      fn: handler as Handler<unknown>,
      tagged: true,
      queue: options.queue,
      bindings,
      options,
      problems: [],
    });
    return this;
  }

  private register(request: HandlerRequest): void {
    if (this.state !== 'idle') {
      throw new StateError(`${this.name}: register handlers before start()`);
    }
    const handler = resolveHandler(request, this.options, this.handlers);
    this.handlers.push(handler);
    if (handler.partitions) {
      for (const queue of consumedQueues(handler.queue, handler.partitions)) {
        this.lanes.push(this.dispatcher.lane(handler, queue));
      }
    } else {
      this.lanes.push(this.dispatcher.lane(handler));
    }
  }

  /** The exchanges, queues and bindings this service needs. */
  topology(): Topology {
    return topologyOf(this.options.publishes, this.handlers);
  }

  /** Declares the topology and starts consuming. Resolves when every handler is consuming. */
  start(): Promise<void> {
    return this.lifecycle.start(this.topology(), this.lanes);
  }

  /**
   * Stops taking messages, waits for running handlers (up to `shutdownTimeoutMs`), then aborts
   * the rest, whose messages go back to their queues. Does not close the transport.
   */
  stop(): Promise<void> {
    return this.lifecycle.stop(this.lanes);
  }

  /**
   * Publishes an event (validated first; nothing is sent when it is invalid). Resolves with the
   * envelope once the broker has accepted the message; rejects with `ValidationError`,
   * `UnroutableError` (per the `unroutable` policy) or a transport error.
   */
  publish: Publish = (event, payload, options) =>
    this.publisher.send(event, payload, options, undefined);
}

/** Creates a {@link Service}. Throws a `ConfigError` listing every problem in the options. */
export function createService(options: ServiceOptions): Service {
  return new Service(options);
}
