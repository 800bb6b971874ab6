import {
  JetStreamApiError,
  type JetStreamClient,
  type JetStreamManager,
  type Consumer as JsConsumer,
  jetstream,
  jetstreamManager,
} from '@nats-io/jetstream';
import {
  errors,
  type MsgHdrs,
  type NatsConnection,
  connect as natsConnect,
} from '@nats-io/transport-node';
import { TypedEvents, type Unsubscribe } from '../../emitter.js';
import type { OutgoingMessage } from '../../envelope/envelope.js';
import {
  ConnectionError,
  PublishRejectedError,
  PublishTimeoutError,
  StateError,
} from '../../errors.js';
import {
  type ConsumeOptions,
  type Consumer,
  DEFAULT_EXCHANGE,
  type Delivery,
  type PublishOutcome,
  type QueueSpec,
  type Topology,
  type Transport,
} from '../transport.js';
import {
  type DeliveryOwner,
  NatsDelivery,
  NatsReader,
  type ParkRequest,
  type ReaderHost,
  type SourceSpec,
} from './consumer.js';
import { DUE_HEADER, decodeHeaders, encodeHeaders } from './headers.js';
import {
  type NatsTransportOptions,
  type ResolvedNatsOptions,
  resolveNatsOptions,
  sanitizeError,
} from './options.js';
import {
  exchangeStreamName,
  exchangeSubject,
  queueConsumerName,
  queueStreamName,
  queueSubject,
  subjectMatches,
} from './subjects.js';
import {
  API,
  apiCode,
  declareTopology,
  deleteQueue,
  deleteStream,
  ensureQueue,
  findBindingConsumers,
  planQueue,
  type TopologyContext,
  trimExchangeStream,
} from './topology.js';

/** Lifecycle events of a {@link NatsTransport}, for logs and metrics. Errors carry no secret. */
export interface NatsTransportEvents {
  /** The connection is open (again, when `reconnected`). */
  connected: { url: string; reconnected: boolean };
  /** The connection was lost; the client reconnects by itself. */
  disconnected: { url: string };
  /** Exchanges and queues were declared: by `declare()`, or again after a reconnection (`restored`). */
  'topology-declared': {
    exchanges: readonly string[];
    queues: readonly string[];
    restored: boolean;
  };
  /** Something failed in the background (no caller to reject), e.g. a pull request. */
  error: { error: Error; during: string };
}

interface Connection {
  readonly nc: NatsConnection;
  readonly js: JetStreamClient;
  readonly jsm: JetStreamManager;
}

/** The oldest nats-server the transport works with (see docs/nats.md). */
export const MIN_SERVER = '2.9.4';

/** Whether version `a` (`2.9.10`, maybe with a `-suffix`) is older than `b`. */
function olderThan(a: string, b: string): boolean {
  const parse = (v: string) =>
    v
      .split('-')[0]!
      .split('.')
      .map((n) => Number(n) || 0);
  const [x, y] = [parse(a), parse(b)];
  for (let i = 0; i < 3; i++) {
    if ((x[i] ?? 0) !== (y[i] ?? 0)) return (x[i] ?? 0) < (y[i] ?? 0);
  }
  return false;
}

/** Above the delivery limit, deliveries the server still makes so a failed move can be tried again. */
const MAX_DELIVER_MARGIN = 10;
/** How often a consuming transport removes acknowledged messages from exchange streams. */
const TRIM_EVERY_MS = 5_000;
/** Longest wait for one JetStream answer before it is asked again (publishes) or fails (API). */
const REQUEST_TIMEOUT_MS = 10_000;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms).unref());

/**
 * The NATS JetStream transport, on the official `@nats-io/transport-node` and
 * `@nats-io/jetstream` clients. Create it with {@link natsTransport}. Needs nats-server 2.9.4 or
 * later with JetStream enabled; docs/nats.md describes the layout and the guarantees.
 *
 * - **Connection.** One, opened lazily (or by {@link NatsTransport.connect}); the client
 *   reconnects by itself, forever, with backoff. The topology declared is declared again after a
 *   reconnection.
 * - **Topology.** An exchange is a stream (trimmed of what every consumer acknowledged), a queue a durable pull consumer per
 *   binding on it plus a work-queue stream of its own (retried copies, replays); `<queue>.dlq` is
 *   such a queue stream too.
 * - **Publishing.** A JetStream publish, acknowledged by the server once stored; many in flight.
 *   `Nats-Msg-Id` is the message id, so a publish sent again after a lost acknowledgement is stored
 *   once. A subject no stream captures gets no acknowledgement: that is `routed: false`.
 * - **Consuming.** Pull requests that never exceed the prefetch; acknowledgements after the
 *   handler; retries as delayed copies in the queue's own stream.
 */
export class NatsTransport implements Transport {
  readonly kind = 'nats';
  /** The options in force, defaults applied. */
  readonly options: ResolvedNatsOptions;
  private readonly events: TypedEvents<NatsTransportEvents>;
  private connection: Promise<Connection> | undefined;
  private closing: Promise<void> | undefined;
  private readonly readers = new Set<NatsReader>();
  private readonly unsettled = new Set<NatsDelivery>();
  private readonly inFlight = new Set<Promise<unknown>>();
  private readonly knownExchanges = new Set<string>();
  private readonly knownQueues = new Map<string, Map<string, QueueSpec['bindings'][number]>>();
  private declaring: Promise<void> = Promise.resolve();
  private ticker: NodeJS.Timeout | undefined;
  private trimmer: NodeJS.Timeout | undefined;
  /** Publishes waiting for the server's answer: each is sent again at a reconnection. */
  private readonly awaitingAnswer = new Set<() => void>();
  private trimming = false;
  private trimFailures = 0;
  private readonly host: ReaderHost;
  private readonly getHolders = new Map<string, DeliveryOwner & { count: number }>();

  constructor(options?: string | NatsTransportOptions) {
    this.options = resolveNatsOptions(options);
    this.events = new TypedEvents(this.options.logger);
    const self = this;
    this.host = {
      options: this.options,
      get closing() {
        return self.closing !== undefined;
      },
      park: (request) => this.track(this.park(request)),
      consumer: (stream, name) => this.consumerHandle(stream, name),
      knows: (queue) => this.knownQueues.has(queue),
      redeclare: (queue) => this.redeclare([queue]),
      reportError: (error, during) => this.reportError(error, during),
      unsettled: this.unsettled,
    };
  }

  /** The server URL with the password or token replaced by `***`. */
  get url(): string {
    return this.options.displayUrl;
  }

  /**
   * Listens to a lifecycle event (`connected`, `disconnected`, `topology-declared`, `error`).
   * Returns a function that removes the listener.
   */
  on<K extends keyof NatsTransportEvents>(
    name: K,
    listener: (event: NatsTransportEvents[K]) => void,
  ): Unsubscribe {
    return this.events.on(name, listener);
  }

  /**
   * Opens the connection now instead of on first use. Rejects with `ConnectionError` (no secret
   * in it) when the server cannot be reached within `connectTimeoutMs`, refuses the credentials,
   * or has no JetStream.
   */
  async connect(): Promise<void> {
    this.assertOpen();
    await this.open();
  }

  /**
   * The largest message the server accepts, body and headers together (its `max_payload`).
   * Connects if needed.
   */
  async maxPayload(): Promise<number> {
    return (await this.open()).nc.info?.max_payload ?? 1024 * 1024;
  }

  /**
   * Declares exchanges, queues and bindings (see docs/nats.md). Rejects with
   * `UnsupportedBindingError` for a binding NATS cannot express (nothing is created then),
   * `TopologyConflictError` naming every difference when a stream or consumer exists with other
   * settings, `BrokerOperationError` for other refusals, and `ConnectionError` when the server
   * cannot be reached. Remembered, and declared again after every reconnection.
   */
  async declare(topology: Topology): Promise<void> {
    this.assertOpen();
    for (const q of topology.queues) planQueue(this.options.namespace, q);
    await this.serially(async () => {
      const { jsm } = await this.open();
      await declareTopology(this.context(jsm), topology);
    });
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
   * Publishes with a JetStream publish and resolves on the server's acknowledgement (stored in the
   * exchange's stream), `routed: false` when no stream captures the subject, that is when no
   * queue is bound to receive it. Rejects with `PublishRejectedError` for a missing exchange, a
   * message over the server's `max_payload`, or a refusal; `PublishTimeoutError` after
   * `publishTimeoutMs`. Returns at once: many publishes may be in flight.
   */
  publish(message: OutgoingMessage): Promise<PublishOutcome> {
    if (this.closing) {
      return Promise.reject(new StateError('The NATS transport is closed; it cannot publish'));
    }
    return this.track(this.send(message));
  }

  /**
   * Consumes a queue: its own stream and each of its bindings, with at most `prefetch`
   * deliveries unsettled. Rejects with `StateError` when the queue does not exist.
   */
  async consume(
    queue: string,
    options: ConsumeOptions,
    onDelivery: (delivery: Delivery) => void,
  ): Promise<Consumer> {
    this.assertOpen();
    const prefetch = Math.max(1, Math.floor(options.prefetch));
    const sources = await this.sourcesOf(queue, 'consume');
    const reader = new NatsReader(this.host, queue, prefetch, onDelivery, sources);
    await reader.start();
    this.readers.add(reader);
    this.startTicker();
    return {
      cancel: async () => {
        this.readers.delete(reader);
        await reader.cancel();
      },
    };
  }

  /**
   * Takes the next ready message of a queue (its own stream first, then its bindings), or
   * `undefined` when there is none; a retried copy that is not due yet is skipped. For tooling:
   * a request or two per call, and up to a second's wait when only unsettled messages remain.
   */
  async get(queue: string): Promise<Delivery | undefined> {
    this.assertOpen();
    const { jsm } = await this.open();
    const sources = await this.sourcesOf(queue, 'read');
    let holder = this.getHolders.get(queue);
    if (!holder) {
      holder = {
        queue,
        count: 0,
        settled: () => {
          holder!.count--;
        },
      };
      this.getHolders.set(queue, holder);
    }
    for (const s of sources) {
      const handle = await this.consumerHandle(s.stream, s.consumer);
      for (;;) {
        let info: Awaited<ReturnType<JetStreamManager['consumers']['info']>>;
        try {
          info = await jsm.consumers.info(s.stream, s.consumer);
        } catch (error) {
          throw this.readError(queue, error);
        }
        // Nothing new, and every unacknowledged message is one we hold: nothing to wait for.
        const ours = [...this.unsettled].filter(
          (d) => d.raw.info.stream === s.stream && d.raw.info.consumer === s.consumer,
        ).length;
        if (info.num_pending === 0 && info.num_ack_pending <= ours) break;
        const raw = await handle.next({ expires: 1000 });
        if (!raw) break;
        const decoded = decodeHeaders(raw.headers);
        if (s.kind === 'queue' && decoded.dueAt !== undefined && decoded.dueAt > Date.now() + 2) {
          raw.nak(Math.ceil(decoded.dueAt - Date.now()));
          continue;
        }
        const delivery = new NatsDelivery(
          this.host,
          holder,
          raw,
          decoded.properties,
          raw.info.deliveryCount,
        );
        // Ready behind it: the rest of this source, and what the queue's other sources hold.
        let remaining = raw.info.pending;
        for (const other of sources) {
          if (other === s) continue;
          remaining += (await jsm.consumers.info(other.stream, other.consumer)).num_pending;
        }
        delivery.remaining = remaining;
        holder.count++;
        this.unsettled.add(delivery);
        this.startTicker();
        return delivery;
      }
    }
    return undefined;
  }

  /**
   * Cancels this transport's consumers of those queues, forgets them (they are not declared again
   * any more), deletes each queue's binding consumers (the exchanges' subjects narrow to what is
   * still bound), its stream and its dead-letter queue's, then the exchanges' streams when
   * `exchanges` is true. What does not exist is skipped.
   */
  async deleteTopology(topology: Topology, options?: { exchanges?: boolean }): Promise<void> {
    this.assertOpen();
    const names = new Set(topology.queues.map((q) => q.name));
    await Promise.all(
      [...this.readers]
        .filter((r) => names.has(r.queue))
        .map((r) => {
          this.readers.delete(r);
          return r.cancel();
        }),
    );
    for (const name of names) this.knownQueues.delete(name);
    if (options?.exchanges) for (const name of topology.exchanges) this.knownExchanges.delete(name);
    await this.serially(async () => {
      const { jsm } = await this.open();
      const ctx = this.context(jsm);
      for (const q of topology.queues) await deleteQueue(ctx, q, topology.exchanges);
      if (options?.exchanges) {
        for (const name of topology.exchanges) {
          await deleteStream(jsm, exchangeStreamName(this.options.namespace, name));
        }
      }
    });
  }

  /**
   * Stops every consumer, waits until every publish (retried and dead-lettered copies included)
   * is acknowledged or has failed, gives back every unsettled delivery (`nak`, so it is delivered
   * again at once), then flushes and closes the connection. Idempotent.
   */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    clearInterval(this.ticker);
    clearInterval(this.trimmer);
    await Promise.all([...this.readers].map((r) => r.cancel()));
    this.readers.clear();
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
    for (const d of [...this.unsettled]) d.giveBack();
    const pending = this.connection;
    if (!pending) return;
    try {
      const { nc } = await pending;
      await nc.flush().catch(() => {});
      await nc.close();
    } catch {
      // Never connected: nothing to close.
    }
  }

  private assertOpen(): void {
    if (this.closing) throw new StateError('The NATS transport is closed');
  }

  private track<T>(promise: Promise<T>): Promise<T> {
    this.inFlight.add(promise);
    const forget = () => this.inFlight.delete(promise);
    promise.then(forget, forget);
    return promise;
  }

  private serially(fn: () => Promise<void>): Promise<void> {
    const run = this.declaring.then(fn, fn);
    this.declaring = run.catch(() => {});
    return run;
  }

  private context(jsm: JetStreamManager): TopologyContext {
    const limit = this.options.deliveryLimit;
    return {
      jsm,
      namespace: this.options.namespace,
      ackWaitMs: this.options.ackWaitMs,
      maxDeliver: limit === undefined ? -1 : limit + MAX_DELIVER_MARGIN,
      maxAckPending: this.options.maxAckPending,
      replicas: this.options.replicas,
      logger: this.options.logger,
    };
  }

  private open(): Promise<Connection> {
    if (this.closing && !this.connection) {
      return Promise.reject(new StateError('The NATS transport is closed'));
    }
    this.connection ??= this.dial();
    // A failed first connection is not kept: the next use tries again.
    this.connection.catch(() => {
      this.connection = undefined;
    });
    return this.connection;
  }

  private async dial(): Promise<Connection> {
    const o = this.options;
    const deadline = Date.now() + o.connectTimeoutMs;
    for (let attempt = 1; ; attempt++) {
      let nc: NatsConnection | undefined;
      try {
        nc = await natsConnect({
          servers: o.server,
          name: o.name,
          ...(o.token !== undefined ? { token: o.token } : {}),
          ...(o.username !== undefined ? { user: o.username } : {}),
          ...(o.password !== undefined ? { pass: o.password } : {}),
          timeout: Math.max(1000, Math.min(10_000, deadline - Date.now())),
          maxReconnectAttempts: -1,
          reconnectDelayHandler: () => this.reconnectDelay(),
          pingInterval: 10_000,
          maxPingOut: 3,
        });
        const version = nc.info?.version ?? '0.0.0';
        if (olderThan(version, MIN_SERVER)) {
          await nc.close().catch(() => {});
          throw new ConnectionError(
            `NATS at ${o.displayUrl} is nats-server ${version}; Tidings needs ${MIN_SERVER} or later ` +
              '(the JetStream consumer API it reads queues with)',
          );
        }
        const jsm = await jetstreamManager(nc, { timeout: REQUEST_TIMEOUT_MS });
        const js = jetstream(nc, { timeout: REQUEST_TIMEOUT_MS });
        const connection = { nc, js, jsm };
        this.watch(nc);
        this.events.emit('connected', { url: o.displayUrl, reconnected: false });
        return connection;
      } catch (error) {
        await nc?.close().catch(() => {});
        if (error instanceof ConnectionError) throw error;
        const safe = sanitizeError(error, o);
        if (error instanceof errors.AuthorizationError) {
          throw new ConnectionError(
            `NATS at ${o.displayUrl} refused the credentials: ${safe.message}`,
            {
              cause: safe,
            },
          );
        }
        if (/jetstream/i.test(safe.message) && nc) {
          throw new ConnectionError(
            `NATS at ${o.displayUrl} has no JetStream (start nats-server with -js): ${safe.message}`,
            { cause: safe },
          );
        }
        if (this.closing || Date.now() >= deadline) {
          throw new ConnectionError(
            `Cannot reach NATS at ${o.displayUrl} after ${attempt} attempts: ${safe.message}`,
            { cause: safe },
          );
        }
        await sleep(Math.min(deadline - Date.now(), this.reconnectDelay(attempt)));
      }
    }
  }

  private reconnectDelay(attempt = 1): number {
    const { initialDelayMs, maxDelayMs } = this.options.reconnect;
    const ceiling = Math.min(maxDelayMs, initialDelayMs * 2 ** Math.min(attempt, 16));
    return ceiling / 2 + Math.random() * (ceiling / 2);
  }

  private watch(nc: NatsConnection): void {
    void (async () => {
      for await (const s of nc.status()) {
        if (s.type === 'disconnect') {
          this.options.logger.warn(
            `lost the connection to ${this.options.displayUrl}; reconnecting`,
          );
          this.events.emit('disconnected', { url: this.options.displayUrl });
        } else if (s.type === 'reconnect') {
          this.options.logger.info(`connected to ${this.options.displayUrl} again`);
          for (const sendAgain of [...this.awaitingAnswer]) sendAgain();
          this.events.emit('connected', { url: this.options.displayUrl, reconnected: true });
          // The server may be a new one, or have lost its store: declare everything again.
          if (this.knownQueues.size > 0 || this.knownExchanges.size > 0) {
            this.redeclare(this.knownQueues.keys(), true).catch((error: unknown) =>
              this.reportError(error, 're-declaring the topology after a reconnection'),
            );
          }
        }
      }
    })();
    nc.closed().then((error) => {
      if (!this.closing && error) this.reportError(error, 'the connection (it closed)');
    });
  }

  /** Declares known queues (and every known exchange) again, with their bindings. */
  private async redeclare(queues: Iterable<string>, all = false): Promise<void> {
    const specs: QueueSpec[] = [];
    for (const name of queues) {
      const bindings = this.knownQueues.get(name);
      if (bindings) specs.push({ name, bindings: [...bindings.values()] });
    }
    // JetStream may need a moment after a restart before it answers.
    for (let attempt = 1; ; attempt++) {
      try {
        await this.serially(async () => {
          const { jsm } = await this.open();
          await declareTopology(this.context(jsm), {
            exchanges: all ? [...this.knownExchanges] : [],
            queues: specs,
          });
        });
        break;
      } catch (error) {
        if (this.closing || attempt >= 10) throw error;
        await sleep(this.reconnectDelay(attempt));
      }
    }
    this.events.emit('topology-declared', {
      exchanges: all ? [...this.knownExchanges] : [],
      queues: specs.map((s) => s.name),
      restored: true,
    });
  }

  /**
   * Removes from the exchange streams this transport consumes from what every consumer of them
   * has acknowledged (exchange streams keep messages until then; see `trimExchangeStream`).
   */
  private async trim(): Promise<void> {
    if (this.trimming || this.closing) return;
    this.trimming = true;
    try {
      const streams = new Set([...this.readers].flatMap((r) => r.exchangeStreams));
      if (streams.size === 0) return;
      const { jsm } = await this.open();
      for (const stream of streams) await trimExchangeStream(jsm, stream);
      this.trimFailures = 0;
    } catch (error) {
      // Disconnected, most often: the next round tries again. Said once per streak of failures.
      if (this.trimFailures++ === 0 && !this.closing) {
        this.reportError(error, 'removing acknowledged messages from exchange streams');
      }
    } finally {
      this.trimming = false;
    }
  }

  private startTicker(): void {
    if (!this.trimmer && !this.closing) {
      this.trimmer = setInterval(() => void this.trim(), TRIM_EVERY_MS);
      this.trimmer.unref();
    }
    if (this.ticker || this.closing) return;
    // Tell the server that held deliveries are still being worked on, a few times per ack wait.
    const every = Math.max(500, Math.floor(this.options.ackWaitMs / 3));
    this.ticker = setInterval(() => {
      for (const d of this.unsettled) d.working();
    }, every);
    this.ticker.unref();
  }

  private async consumerHandle(stream: string, name: string): Promise<JsConsumer> {
    const { js } = await this.open();
    try {
      return await js.consumers.get(stream, name);
    } catch (error) {
      if (apiCode(error) === API.consumerNotFound || apiCode(error) === API.streamNotFound) {
        throw new StateError(`Cannot read from "${name}" of stream "${stream}": it does not exist`);
      }
      throw sanitizeError(error, this.options);
    }
  }

  /**
   * Where a queue's messages are: its own stream, then its binding consumers (known from the
   * declaration, or found on the server for a queue declared elsewhere).
   */
  private async sourcesOf(queue: string, purpose: 'consume' | 'read'): Promise<SourceSpec[]> {
    const { jsm } = await this.open();
    const ns = this.options.namespace;
    const stream = queueStreamName(ns, queue);
    try {
      await jsm.consumers.info(stream, queueConsumerName(queue));
    } catch (error) {
      if (apiCode(error) === API.consumerNotFound || apiCode(error) === API.streamNotFound) {
        const verb = purpose === 'consume' ? 'consume' : 'read';
        throw new StateError(
          `Cannot ${verb} queue "${queue}": it does not exist (declare it first)`,
        );
      }
      throw this.readError(queue, error);
    }
    const sources: SourceSpec[] = [{ stream, consumer: queueConsumerName(queue), kind: 'queue' }];
    const known = this.knownQueues.get(queue);
    if (known) {
      const plan = planQueue(ns, { name: queue, bindings: [...known.values()] });
      for (const b of plan.bindings) {
        sources.push({
          stream: exchangeStreamName(ns, b.exchange),
          consumer: b.consumer,
          kind: 'binding',
        });
      }
    } else {
      for (const found of await findBindingConsumers(jsm, ns, queue)) {
        sources.push({ ...found, kind: 'binding' });
      }
    }
    return sources;
  }

  private readError(queue: string, error: unknown): Error {
    const safe = sanitizeError(error, this.options);
    return new StateError(`Cannot read queue "${queue}": ${safe.message}`);
  }

  private async send(message: OutgoingMessage): Promise<PublishOutcome> {
    const ns = this.options.namespace;
    if (message.exchange === DEFAULT_EXCHANGE) {
      const queue = message.routingKey;
      const routed = await this.store(
        queueSubject(ns, queue),
        message.body,
        encodeHeaders(message.properties),
        // A replay of one message may be sent twice on purpose: no deduplication here.
        undefined,
        message.routingKey,
        () => this.queueLookup(queue),
      );
      return { routed };
    }
    const subject = exchangeSubject(ns, message.exchange, message.routingKey);
    const routed = await this.store(
      subject,
      message.body,
      encodeHeaders(message.properties),
      message.properties.messageId,
      message.routingKey,
      () => this.exchangeLookup(message.exchange, subject, message.routingKey),
    );
    return { routed };
  }

  /** A copy stored in a queue's stream, the queue declared again if it went missing. */
  private async park(request: ParkRequest): Promise<void> {
    const subject = queueSubject(this.options.namespace, request.queue);
    const extra =
      request.dueAt === undefined
        ? undefined
        : { [DUE_HEADER]: new Date(request.dueAt).toISOString() };
    for (let attempt = 0; ; attempt++) {
      const headers = encodeHeaders(request.properties, extra);
      const stored = await this.store(
        subject,
        request.body,
        headers,
        request.msgId,
        request.routingKey,
        () => this.queueLookup(request.queue),
      );
      if (stored) return;
      if (attempt > 0) {
        throw new PublishRejectedError(
          request.routingKey,
          `queue "${request.queue}" does not exist and could not be declared`,
        );
      }
      const { jsm } = await this.open();
      await ensureQueue(this.context(jsm), request.queue);
    }
  }

  /** After "no responders" for a queue subject: is there no such queue, or is JetStream busy? */
  private async queueLookup(queue: string): Promise<'unrouted' | 'retry'> {
    const { jsm } = await this.open();
    try {
      await jsm.streams.info(queueStreamName(this.options.namespace, queue));
      return 'retry';
    } catch (error) {
      if (apiCode(error) === API.streamNotFound) return 'unrouted';
      return 'retry';
    }
  }

  /** After "no responders" for an exchange subject: no such exchange, nothing bound, or busy? */
  private async exchangeLookup(
    exchange: string,
    subject: string,
    routingKey: string,
  ): Promise<'unrouted' | 'retry'> {
    const { jsm } = await this.open();
    let subjects: string[];
    try {
      subjects =
        (await jsm.streams.info(exchangeStreamName(this.options.namespace, exchange))).config
          .subjects ?? [];
    } catch (error) {
      if (apiCode(error) === API.streamNotFound) {
        throw new PublishRejectedError(
          routingKey,
          `exchange "${exchange}" does not exist (declare it first)`,
        );
      }
      return 'retry';
    }
    // The stream says it captures the subject: the server is still starting up.
    return subjects.some((s) => subjectMatches(s, subject)) ? 'retry' : 'unrouted';
  }

  /**
   * Sends one JetStream publish and waits for its acknowledgement, sending it again (same
   * `Nats-Msg-Id`) after a timeout or a lost connection, until `publishTimeoutMs`. Resolves false
   * when `lookup` decides that no stream captures the subject.
   */
  private async store(
    subject: string,
    body: Buffer,
    headers: MsgHdrs,
    msgId: string | undefined,
    routingKey: string,
    lookup: () => Promise<'unrouted' | 'retry'>,
  ): Promise<boolean> {
    const timeoutMs = this.options.publishTimeoutMs;
    const deadline = Date.now() + timeoutMs;
    let connection: Connection;
    try {
      connection = await this.open();
    } catch (error) {
      if (error instanceof ConnectionError || error instanceof StateError) throw error;
      throw new PublishTimeoutError(routingKey, timeoutMs);
    }
    const max = connection.nc.info?.max_payload;
    const size = body.length + (headers as MsgHdrs & { encode(): Uint8Array }).encode().length;
    if (max !== undefined && size > max) {
      throw new PublishRejectedError(
        routingKey,
        `the message is ${size} bytes with its headers, over the server's max_payload of ${max} bytes`,
      );
    }
    let resent = false;
    for (let attempt = 0; ; attempt++) {
      const remaining = deadline - Date.now();
      if (remaining <= 0) throw new PublishTimeoutError(routingKey, timeoutMs);
      try {
        const sent = connection.js.publish(subject, body, {
          headers,
          ...(msgId !== undefined ? { msgID: msgId } : {}),
          timeout: Math.max(1, Math.min(remaining, REQUEST_TIMEOUT_MS)),
        });
        // A publish in flight when the connection dropped may never be answered (its request or
        // its answer was lost with the socket): at the reconnection it is sent again at once (the
        // same Nats-Msg-Id, stored once) rather than after its timeout. Whichever answers first
        // counts; the other one's outcome is dropped.
        let sendAgain: () => void = () => {};
        const reconnected = new Promise<'again'>((resolve) => {
          sendAgain = () => resolve('again');
        });
        this.awaitingAnswer.add(sendAgain);
        try {
          if ((await Promise.race([sent, reconnected])) === 'again') {
            sent.catch(() => {});
            resent = true;
            continue;
          }
        } finally {
          this.awaitingAnswer.delete(sendAgain);
        }
        return true;
      } catch (error) {
        if (isNoResponders(error)) {
          let verdict: 'unrouted' | 'retry' | 'rejected';
          try {
            verdict = await lookup().catch(rethrowRejection);
          } catch (rejection) {
            if (!resent) throw rejection;
            verdict = 'rejected';
          }
          if (verdict !== 'retry' && resent) {
            // Sent again at a reconnection: the server may be a new one whose streams the
            // declaration queued at the reconnection has not made yet. Asked once more after it.
            resent = false;
            await this.declaring;
            continue;
          }
          if (verdict === 'unrouted') return false;
        } else if (error instanceof JetStreamApiError) {
          throw new PublishRejectedError(routingKey, sanitizeError(error, this.options).message, {
            cause: error,
          });
        } else if (error instanceof errors.ClosedConnectionError) {
          throw new StateError('The NATS transport is closed; the publish was not confirmed');
        } else if (
          !(error instanceof errors.TimeoutError) &&
          !(error instanceof errors.RequestError) &&
          !(error instanceof errors.ConnectionError)
        ) {
          throw new PublishRejectedError(routingKey, sanitizeError(error, this.options).message, {
            cause: error,
          });
        }
      }
      await sleep(Math.min(Math.max(0, deadline - Date.now()), 20 * 2 ** Math.min(attempt, 6)));
    }
  }

  private reportError(error: unknown, during: string): void {
    const safe = sanitizeError(error, this.options);
    this.options.logger.error(`failed ${during}: ${safe.message}`);
    this.events.emit('error', { error: safe, during });
  }
}

function isNoResponders(error: unknown): boolean {
  const cause = (error as { cause?: unknown } | undefined)?.cause;
  return (
    error instanceof errors.NoRespondersError ||
    cause instanceof errors.NoRespondersError ||
    (cause instanceof errors.RequestError && cause.isNoResponders())
  );
}

function rethrowRejection(error: unknown): 'retry' {
  if (error instanceof PublishRejectedError) throw error;
  return 'retry';
}

/**
 * A NATS JetStream transport. Nothing connects until it is first used (or `connect()` is called).
 *
 * ```ts
 * const transport = natsTransport('nats://127.0.0.1:4222');
 * ```
 */
export function natsTransport(options?: string | NatsTransportOptions): NatsTransport {
  return new NatsTransport(options);
}
