import type { Channel, ChannelModel, Options } from 'amqplib';
import type {
  IncomingMessage,
  MessageProperties,
  OutgoingMessage,
} from '../../envelope/envelope.js';
import { StateError } from '../../errors.js';
import {
  type ConsumeOptions,
  type Consumer,
  type Delivery,
  deadLetterQueueName,
  type PublishOutcome,
  partitionExchangeName,
  partitionQueueName,
  type QueueSpec,
  type QueueStats,
  type Tap,
  type TapOptions,
  type Topology,
  type Transport,
  unkeyedExchangeName,
} from '../transport.js';
import type { QueueArgumentOptions } from './args.js';
import { closeQuietly, ManagedConnection, sanitizeError } from './connection.js';
import { AmqpConsumer, AmqpGetter, type ConsumerHost } from './consumer.js';
import { type AmqpTransportEvents, TypedEvents, type Unsubscribe } from './events.js';
import {
  type AmqpTransportOptions,
  type ResolvedAmqpOptions,
  resolveAmqpOptions,
} from './options.js';
import { Publisher, type PublishRequest } from './publisher.js';
import { openTap, QueueInspector } from './tap.js';
import {
  applyDeclarations,
  brokerError,
  type Declaration,
  deadLetterQueueDeclaration,
  partitionedQueuesOf,
  planTopology,
  queuesOf,
  replyCodeOf,
  retryQueueDeclaration,
} from './topology.js';

/**
 * The RabbitMQ transport, on amqplib. Create it with {@link amqpTransport}.
 *
 * - **Connections.** Two, opened lazily (or by {@link AmqpTransport.connect}): one publishes and
 *   declares, one consumes, so a broker that blocks publishers cannot stop acknowledgements.
 *   TCP no-delay is on. A lost connection is re-opened with exponential backoff and jitter,
 *   forever, until `close()`.
 * - **Topology.** Durable topic exchanges; per queue a durable work queue, `<queue>.dlq`, and
 *   `<queue>.retry.<n>` delay queues declared on first use (see docs/rabbitmq.md). Everything
 *   declared is declared again after a reconnection. A queue or exchange that exists with other
 *   arguments fails with `TopologyConflictError`, on a channel of its own.
 * - **Publishing.** One confirm channel; persistent, `mandatory` messages, many in flight;
 *   backpressure from the socket is honoured. Unconfirmed messages are sent again after a
 *   reconnection (at-least-once); publishes made while disconnected wait in a bounded buffer.
 * - **Consuming.** A channel per consumer with its prefetch, manual acks. Consumers resume after
 *   a reconnection or a cancellation by the broker, and say so through {@link AmqpTransport.on}.
 */
export class AmqpTransport implements Transport {
  readonly kind = 'amqp';
  /** The options in force, defaults applied. */
  readonly options: ResolvedAmqpOptions;
  private readonly events: TypedEvents<AmqpTransportEvents>;
  private readonly publishConnection: ManagedConnection;
  private readonly consumeConnection: ManagedConnection;
  private readonly publisher: Publisher;
  private readonly consumers = new Set<AmqpConsumer>();
  private readonly getter: AmqpGetter;
  private readonly inspector: QueueInspector;
  private readonly taps = new Set<Tap>();
  private readonly host: ConsumerHost;
  /** Everything declared through this transport, to declare again after a reconnection. */
  private readonly knownExchanges = new Set<string>();
  private readonly knownQueues = new Map<string, Map<string, QueueSpec['bindings'][number]>>();
  private readonly retryLevels = new Map<string, Set<number>>();
  /** Partitioned queues declared: their count of partitions. */
  private readonly knownPartitions = new Map<string, number>();
  /** Partition queue (`<queue>.p<i>`) -> its partitioned queue. */
  private readonly partitionOwner = new Map<string, string>();
  private readonly declaringRetry = new Map<string, Promise<void>>();
  private closing: Promise<void> | undefined;

  constructor(options?: string | AmqpTransportOptions) {
    this.options = resolveAmqpOptions(options);
    this.events = new TypedEvents(this.options.logger);
    this.publishConnection = new ManagedConnection('publish', this.options, this.events, {
      onOpen: (connection, reconnected) => this.publishConnectionOpened(connection, reconnected),
      onLost: () => this.publisher.detach(),
      onGiveUp: (error) => this.publisher.failAll(error),
    });
    this.consumeConnection = new ManagedConnection('consume', this.options, this.events, {
      onOpen: async (_connection, reconnected) => {
        if (!reconnected) return;
        await Promise.all([...this.consumers].map((c) => c.resume('reconnection')));
      },
      onLost: () => {
        for (const c of this.consumers) c.detach();
      },
      onGiveUp: () => {},
    });
    this.publisher = new Publisher(this.publishConnection, this.options, (error, during) =>
      this.reportError(error, during),
    );
    const self = this;
    this.host = {
      options: this.options,
      events: this.events,
      connection: this.consumeConnection,
      get closing() {
        return self.closing !== undefined;
      },
      publish: (request) => this.publisher.publish(request),
      ensureRetryQueue: (queue, level, force) => this.ensureRetryQueue(queue, level, force),
      ensureDeadLetterQueue: async (queue, force) => {
        const owner = this.partitionOwner.get(queue) ?? queue;
        if (force) await this.run([deadLetterQueueDeclaration(owner, this.argumentOptions)]);
      },
      deadLetterQueueOf: (queue) => deadLetterQueueName(this.partitionOwner.get(queue) ?? queue),
      knows: (queue) => this.knownQueues.has(queue) || this.partitionOwner.has(queue),
      redeclare: (queue) => this.run(this.plan([this.partitionOwner.get(queue) ?? queue])),
      reportError: (error, during) => this.reportError(error, during),
      forget: (consumer) => this.consumers.delete(consumer),
    };
    this.getter = new AmqpGetter(this.host);
    this.inspector = new QueueInspector(() => this.publishConnection.get(), this.options.password);
  }

  /** The broker URL with the password replaced by `***`. */
  get url(): string {
    return this.options.displayUrl;
  }

  /**
   * Listens to a lifecycle event (`connected`, `disconnected`, `reconnecting`, `blocked`,
   * `unblocked`, `topology-declared`, `consumer-cancelled`, `consumer-resumed`, `error`). Returns a
   * function that removes the listener.
   */
  on<K extends keyof AmqpTransportEvents>(
    name: K,
    listener: (event: AmqpTransportEvents[K]) => void,
  ): Unsubscribe {
    return this.events.on(name, listener);
  }

  /**
   * Opens the publish connection now instead of on first use. Rejects with `ConnectionError` (no
   * password in it) when the broker cannot be reached within `connectTimeoutMs` or refuses the
   * credentials.
   */
  async connect(): Promise<void> {
    this.assertOpen();
    await this.publishConnection.get();
  }

  /**
   * Declares the exchanges, the queues with their dead-letter queues, and the bindings (see
   * `planTopology`), on a channel of its own. Remembered, and declared again after every
   * reconnection. Rejects with `TopologyConflictError` naming every differing argument when an
   * entity exists with other arguments, `BrokerOperationError` for other refusals, and
   * `ConnectionError` when the broker cannot be reached.
   */
  async declare(topology: Topology): Promise<void> {
    this.assertOpen();
    const retryLevels = (queue: string) => this.retryLevels.get(queue) ?? [];
    await this.run(planTopology(topology, this.argumentOptions, retryLevels));
    for (const name of topology.exchanges) this.knownExchanges.add(name);
    for (const q of topology.queues) {
      let bindings = this.knownQueues.get(q.name);
      if (!bindings) {
        bindings = new Map();
        this.knownQueues.set(q.name, bindings);
      }
      for (const b of q.bindings) {
        this.knownExchanges.add(b.exchange);
        bindings.set(`${b.exchange}\u0000${b.pattern}`, b);
      }
      if (q.partitions !== undefined) {
        this.knownPartitions.set(q.name, q.partitions);
        for (let i = 0; i < q.partitions; i++) {
          this.partitionOwner.set(partitionQueueName(q.name, i), q.name);
        }
      }
    }
    this.events.emit('topology-declared', {
      exchanges: [
        ...new Set([
          ...topology.exchanges,
          ...topology.queues.flatMap((q) => q.bindings.map((b) => b.exchange)),
        ]),
      ],
      queues: topology.queues.map((q) => q.name),
      restored: false,
    });
  }

  /**
   * Publishes a persistent, `mandatory` message on the confirm channel, with the envelope's
   * properties (message id, correlation id, type, app id, timestamp, content type and encoding,
   * headers). Resolves on the broker's ack, `routed: false` when it came back unroutable; rejects
   * with `PublishRejectedError` on a nack or a missing exchange, `PublishTimeoutError` after
   * `publishTimeoutMs`, `PublishBufferFullError` when too many wait for a lost connection.
   * Returns at once: many publishes may be in flight.
   */
  publish(message: OutgoingMessage): Promise<PublishOutcome> {
    if (this.closing) {
      return Promise.reject(new StateError('The RabbitMQ transport is closed; it cannot publish'));
    }
    return this.publisher.publish(toRequest(message));
  }

  /**
   * Consumes a queue on a channel of its own with `prefetch` unacknowledged deliveries at most
   * (per consumer) and manual acks. The consumer resumes by itself after a reconnection, and after
   * a cancellation by the broker for a queue this transport declared. Rejects with `StateError`
   * when the queue does not exist.
   */
  async consume(
    queue: string,
    options: ConsumeOptions,
    onDelivery: (delivery: Delivery) => void,
  ): Promise<Consumer> {
    this.assertOpen();
    const prefetch = Math.min(65_535, Math.max(1, Math.floor(options.prefetch)));
    const consumer = new AmqpConsumer(this.host, queue, prefetch, onDelivery);
    const deadline = Date.now() + this.options.connectTimeoutMs;
    for (;;) {
      const connection = await this.consumeConnection.get();
      try {
        await consumer.start(connection);
        break;
      } catch (error) {
        if (replyCodeOf(error) === 404) {
          throw new StateError(
            `Cannot consume: queue "${queue}" does not exist (declare it first)`,
          );
        }
        if (this.closing) throw new StateError('The RabbitMQ transport is closed');
        if (replyCodeOf(error) !== undefined || Date.now() > deadline) {
          throw brokerError(
            `consume queue "${queue}"`,
            sanitizeError(error, this.options.password),
          );
        }
        // The connection went away while starting: try again on the next one.
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
    this.consumers.add(consumer);
    return consumer;
  }

  /**
   * Cancels this transport's consumers of those queues, forgets them (they are not re-declared
   * any more), then deletes each queue with its `.dlq` and every `.retry.<n>`, and the exchanges
   * when `exchanges` is true. Deleting what does not exist is not an error.
   */
  async deleteTopology(topology: Topology, options?: { exchanges?: boolean }): Promise<void> {
    this.assertOpen();
    const names = new Set(topology.queues.map((q) => q.name));
    const partitioned = topology.queues.filter((q) => q.partitions !== undefined);
    const consumed = new Set(names);
    for (const q of partitioned) {
      for (let i = 0; i < q.partitions!; i++) consumed.add(partitionQueueName(q.name, i));
    }
    // Cancel our own consumers first, so the deletion is not mistaken for an accident to repair.
    await Promise.all(
      [...this.consumers].filter((c) => consumed.has(c.queue)).map((c) => c.cancel()),
    );
    for (const name of consumed) {
      this.knownQueues.delete(name);
      this.retryLevels.delete(name);
      this.knownPartitions.delete(name);
      this.partitionOwner.delete(name);
    }
    if (options?.exchanges) for (const name of topology.exchanges) this.knownExchanges.delete(name);
    await this.withChannel(async (channel) => {
      const deleteQueue = (q: string) =>
        channel.deleteQueue(q).catch((error: unknown) => {
          throw brokerError(`delete queue "${q}"`, error);
        });
      for (const name of names) for (const q of queuesOf(name)) await deleteQueue(q);
      for (const q of partitioned) {
        for (const name of partitionedQueuesOf(q.name, q.partitions!)) await deleteQueue(name);
        for (const ex of [
          partitionExchangeName(q.name, q.partitions!),
          unkeyedExchangeName(q.name),
        ]) {
          await channel.deleteExchange(ex).catch((error: unknown) => {
            throw brokerError(`delete exchange "${ex}"`, error);
          });
        }
      }
      if (options?.exchanges) {
        for (const name of topology.exchanges) {
          await channel.deleteExchange(name).catch((error: unknown) => {
            throw brokerError(`delete exchange "${name}"`, error);
          });
        }
      }
    });
  }

  /**
   * Cancels every consumer, waits until every publish is confirmed (or has failed or timed out,
   * so at most `publishTimeoutMs`), then closes the channels and both connections. Deliveries not
   * settled by then return to their queues. Idempotent: later calls return the same promise.
   */
  /**
   * Takes the next ready message of a queue with `basic.get` (no consumer), or `undefined` when
   * the queue is empty. For tooling; the delivery is settled like any other.
   */
  async get(queue: string): Promise<Delivery | undefined> {
    this.assertOpen();
    const connection = await this.consumeConnection.get();
    try {
      return await this.getter.get(connection, queue);
    } catch (error) {
      // amqplib rejects a refused basic.get with the channel.close frame, not an Error.
      const frame = (error as { fields?: { replyCode?: unknown; replyText?: unknown } }).fields;
      if (replyCodeOf(error) === 404 || frame?.replyCode === 404) {
        throw new StateError(`Cannot read queue "${queue}": it does not exist`);
      }
      const reason = typeof frame?.replyText === 'string' ? new Error(frame.replyText) : error;
      throw brokerError(`get from queue "${queue}"`, sanitizeError(reason, this.options.password));
    }
  }

  /**
   * Ready messages and consumers of a queue, by a passive `queue.declare` on a channel of its own
   * (the publish connection); `undefined` when the queue does not exist. Calls run one at a time.
   */
  async queueStats(queue: string): Promise<QueueStats | undefined> {
    this.assertOpen();
    return this.inspector.stats(queue);
  }

  /**
   * A tap on the consume connection: a server-named, exclusive, auto-delete, non-durable queue
   * with `x-max-length` (default 1000, oldest dropped), bound to `exchange` by `pattern` and
   * consumed without acks, on a channel of its own. A lost connection ends it (`onEnd`); it is not
   * resumed. Rejects with `StateError` when the exchange does not exist.
   */
  async tap(
    exchange: string,
    pattern: string,
    onMessage: (message: IncomingMessage) => void,
    options: TapOptions = {},
  ): Promise<Tap> {
    this.assertOpen();
    const connection = await this.consumeConnection.get();
    let tap: Tap | undefined;
    const opened = await openTap(connection, exchange, pattern, onMessage, {
      ...options,
      password: this.options.password,
      onError: (error) => this.reportError(error, `delivering a copy from a tap on ${exchange}`),
      onEnd: (error) => {
        if (tap) this.taps.delete(tap);
        options.onEnd?.(error);
      },
    });
    const handle: Tap = {
      close: async () => {
        this.taps.delete(handle);
        await opened.close();
      },
    };
    tap = handle;
    this.taps.add(handle);
    return handle;
  }

  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    await Promise.all([...this.taps].map((t) => t.close()));
    await this.inspector.close();
    const consumers = [...this.consumers];
    await Promise.all(consumers.map((c) => c.cancel()));
    // Retry and dead-letter copies are publishes too: once confirmed their originals are acked
    // on still-open channels, so nothing is delivered twice for a clean shutdown.
    await this.publisher.close();
    await Promise.all(consumers.map((c) => c.shutdown()));
    await this.getter.close();
    await Promise.all([this.publishConnection.close(), this.consumeConnection.close()]);
  }

  private get argumentOptions(): QueueArgumentOptions {
    return { queueType: this.options.queueType, deliveryLimit: this.options.deliveryLimit };
  }

  /** Declarations for known queues (with the retry levels seen so far) and their exchanges. */
  private plan(queues: Iterable<string>): Declaration[] {
    const specs: QueueSpec[] = [];
    for (const name of queues) {
      const bindings = this.knownQueues.get(name);
      const partitions = this.knownPartitions.get(name);
      if (bindings && partitions !== undefined) {
        specs.push({ name, bindings: [...bindings.values()], partitions });
      } else if (bindings) specs.push({ name, bindings: [...bindings.values()] });
    }
    return planTopology(
      { exchanges: [], queues: specs },
      this.argumentOptions,
      (q) => this.retryLevels.get(q) ?? [],
    );
  }

  private ensureRetryQueue(queue: string, level: number, force: boolean): Promise<void> {
    const levels = this.retryLevels.get(queue);
    if (!force && levels?.has(level)) return Promise.resolve();
    const key = `${queue}\u0000${level}`;
    let pending = this.declaringRetry.get(key);
    if (!pending) {
      pending = this.run([retryQueueDeclaration(queue, level, this.argumentOptions)])
        .then(() => {
          let set = this.retryLevels.get(queue);
          if (!set) {
            set = new Set();
            this.retryLevels.set(queue, set);
          }
          set.add(level);
        })
        .finally(() => this.declaringRetry.delete(key));
      this.declaringRetry.set(key, pending);
    }
    return pending;
  }

  /** Sends declarations on a channel of their own, so a refusal closes nothing else. */
  private run(declarations: readonly Declaration[]): Promise<void> {
    if (declarations.length === 0) return Promise.resolve();
    return applyDeclarations(async () => {
      const connection = await this.publishConnection.get();
      const channel = await connection.createChannel();
      // Refusals reach the caller through the rejected operation; the event would be unhandled.
      channel.on('error', () => {});
      return channel;
    }, declarations);
  }

  private async withChannel<T>(fn: (channel: Channel) => Promise<T>): Promise<T> {
    const connection = await this.publishConnection.get();
    const channel = await connection.createChannel();
    let failed = false;
    channel.on('error', () => {
      failed = true;
    });
    try {
      return await fn(channel);
    } finally {
      if (!failed) await closeQuietly(channel);
    }
  }

  private async publishConnectionOpened(
    connection: ChannelModel,
    reconnected: boolean,
  ): Promise<void> {
    if (reconnected && (this.knownExchanges.size > 0 || this.knownQueues.size > 0)) {
      // The broker may have lost non-durable state, or be a new node: declare everything again
      // before sending what waited, so no publish hits a missing exchange.
      try {
        const exchanges = planTopology(
          { exchanges: [...this.knownExchanges], queues: [] },
          this.argumentOptions,
        );
        await this.run([...exchanges, ...this.plan(this.knownQueues.keys())]);
        this.events.emit('topology-declared', {
          exchanges: [...this.knownExchanges],
          queues: [...this.knownQueues.keys()],
          restored: true,
        });
      } catch (error) {
        this.reportError(error, 're-declaring the topology after a reconnection');
      }
    }
    await this.publisher.attach(connection);
  }

  private reportError(error: unknown, during: string): void {
    const safe = sanitizeError(error, this.options.password);
    this.options.logger.error(`failed ${during}: ${safe.message}`);
    this.events.emit('error', { error: safe, during });
  }

  private assertOpen(): void {
    if (this.closing) throw new StateError('The RabbitMQ transport is closed');
  }
}

/** amqplib publish arguments for a message: persistent, mandatory, envelope properties kept. */
/**
 * amqplib's publish options for a message's properties: persistent and mandatory, as every
 * Tidings publish is. One literal with every field, so that every publish's options share one
 * hidden class.
 */
export function publishOptions(p: MessageProperties): Options.Publish {
  return {
    persistent: true,
    mandatory: true,
    messageId: p.messageId,
    correlationId: p.correlationId,
    type: p.type,
    appId: p.appId,
    timestamp: p.timestamp,
    contentType: p.contentType,
    contentEncoding: p.contentEncoding,
    headers: p.headers,
  };
}

function toRequest(message: OutgoingMessage): PublishRequest {
  return {
    exchange: message.exchange,
    routingKey: message.routingKey,
    body: message.body,
    options: publishOptions(message.properties),
  };
}

/**
 * A RabbitMQ transport from a URL (`amqp://user:pass@host:5672/vhost`, `amqps://…`) or options.
 * Nothing connects until first use or {@link AmqpTransport.connect}. Throws `ConfigError` listing
 * every problem in the options.
 *
 * ```ts
 * const transport = amqpTransport({ url: process.env.BROKER_URL, connectionName: 'billing' });
 * transport.on('disconnected', (e) => log.warn('RabbitMQ lost', e));
 * ```
 */
export function amqpTransport(options?: string | AmqpTransportOptions): AmqpTransport {
  return new AmqpTransport(options);
}
