import { randomUUID } from 'node:crypto';
import { compilePattern, type TopicMatcher } from '../../contracts/pattern.js';
import {
  HEADERS,
  type HeaderValue,
  type IncomingMessage,
  type OutgoingMessage,
} from '../../envelope/envelope.js';
import { PublishRejectedError, StateError, TopologyConflictError } from '../../errors.js';
import { LinkedList } from '../../linked-list.js';
import {
  type ConsumeOptions,
  type Consumer,
  DEFAULT_EXCHANGE,
  type Delivery,
  deadLetterQueueName,
  type PublishOutcome,
  partitionBuckets,
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

interface Binding {
  readonly queue: MemoryQueue;
  readonly pattern: string;
  readonly matches: TopicMatcher;
}

/** The exchange types the embedded broker models, as RabbitMQ defines them. */
export type MemoryExchangeType = 'topic' | 'headers' | 'fanout';

/** A binding from an exchange to another exchange (RabbitMQ's exchange-to-exchange binding). */
interface ExchangeBinding {
  readonly destination: string;
  readonly pattern: string;
  readonly matches: TopicMatcher;
}

/** A headers-exchange binding: `x-match` all or any over the other arguments. */
interface HeadersBinding {
  readonly queue: MemoryQueue;
  readonly all: boolean;
  readonly match: readonly (readonly [string, HeaderValue])[];
}

interface MemoryExchange {
  readonly name: string;
  readonly type: MemoryExchangeType;
  /** RabbitMQ's `alternate-exchange`: where a message that this exchange routes nowhere goes. */
  readonly alternate: string | undefined;
  /** Queue bindings of a topic exchange (a fanout exchange's, with pattern `#`). */
  readonly bindings: Binding[];
  readonly forwards: ExchangeBinding[];
  readonly headerBindings: HeadersBinding[];
  /** Routing key -> queues, rebuilt lazily after a binding changes. */
  routes: Map<string, MemoryQueue[]>;
}

/** Options of {@link MemoryBroker.declareExchange}. */
export interface MemoryExchangeOptions {
  /** @defaultValue 'topic' */
  readonly type?: MemoryExchangeType | undefined;
  /** Where messages that match no binding go (RabbitMQ's `alternate-exchange` argument). */
  readonly alternate?: string | undefined;
}

/** Options of {@link MemoryBroker.declareQueue}. */
export interface MemoryQueueOptions {
  /**
   * Only one consumer receives messages at a time, the oldest; the others wait and take over in
   * turn when it goes (RabbitMQ's `x-single-active-consumer`).
   */
  readonly singleActiveConsumer?: boolean | undefined;
  /** Where `deadLetter` sends its messages. @defaultValue `<queue>.dlq` */
  readonly deadLetterQueue?: string | undefined;
}

interface Stored {
  readonly message: OutgoingMessage;
  redelivered: boolean;
  /** Arrival order in its queue; a requeued message goes back to its original place. */
  seq: number;
}

/** A FIFO with O(1) shift, using a moving head instead of `Array.shift()`. */
class Fifo<T extends { seq: number }> {
  private items: (T | undefined)[] = [];
  private head = 0;
  get length(): number {
    return this.items.length - this.head;
  }
  push(item: T): void {
    this.items.push(item);
  }
  /**
   * Puts a message back where it was, before every message that arrived after it, as RabbitMQ does
   * with requeued messages. Requeued messages are old, so the scan from the head is short.
   */
  restore(item: T): void {
    const tail = this.items[this.items.length - 1];
    if (this.length === 0 || (tail !== undefined && tail.seq < item.seq)) {
      this.items.push(item);
      return;
    }
    let i = this.head;
    while (i < this.items.length && this.items[i]!.seq < item.seq) i++;
    if (i === this.head && this.head > 0) this.items[--this.head] = item;
    else this.items.splice(i, 0, item);
  }
  shift(): T | undefined {
    if (this.head >= this.items.length) return undefined;
    const item = this.items[this.head];
    this.items[this.head++] = undefined;
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return item;
  }
  drain(): T[] {
    const out = this.items.slice(this.head) as T[];
    this.items = [];
    this.head = 0;
    return out;
  }
}

class MemoryConsumer {
  /** Its unsettled deliveries, oldest first. */
  readonly unacked = new LinkedList<MemoryDelivery>();
  cancelled = false;
  constructor(
    readonly queue: MemoryQueue,
    readonly prefetch: number,
    readonly onDelivery: (delivery: Delivery) => void,
  ) {}
}

class MemoryQueue {
  readonly messages = new Fifo<Stored>();
  readonly consumers: MemoryConsumer[] = [];
  private next = 0;
  private scheduled = false;
  deleted = false;
  singleActiveConsumer = false;
  deadLetterQueue: string | undefined;
  /** Past this many ready messages the oldest is dropped (a tap's queue); none by default. */
  maxLength = Number.POSITIVE_INFINITY;

  constructor(
    readonly name: string,
    readonly broker: MemoryBroker,
  ) {}

  private seq = 0;

  /** Adds a new message at the tail. */
  enqueue(message: OutgoingMessage): void {
    if (this.deleted) return;
    if (this.messages.length >= this.maxLength) this.messages.shift();
    this.messages.push({ message, redelivered: false, seq: this.seq++ });
    this.schedule();
  }

  /** Returns a delivered message to its original place, flagged as redelivered. */
  restore(stored: Stored): void {
    if (this.deleted) return;
    stored.redelivered = true;
    this.messages.restore(stored);
    this.schedule();
  }

  schedule(): void {
    if (this.scheduled || this.consumers.length === 0) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.dispatch();
    });
  }

  /**
   * Hands messages to consumers round-robin while any has room under its prefetch; with a single
   * active consumer, to the oldest consumer alone.
   */
  private dispatch(): void {
    const consumers = this.singleActiveConsumer ? this.consumers.slice(0, 1) : this.consumers;
    while (this.messages.length > 0 && consumers.length > 0) {
      let chosen: MemoryConsumer | undefined;
      for (let i = 0; i < consumers.length; i++) {
        const c = consumers[(this.next + i) % consumers.length]!;
        if (c.unacked.size < c.prefetch) {
          chosen = c;
          this.next = (this.next + i + 1) % consumers.length;
          break;
        }
      }
      if (!chosen) return;
      const stored = this.messages.shift()!;
      const delivery = new MemoryDelivery(this, chosen, stored);
      chosen.unacked.add(delivery);
      try {
        chosen.onDelivery(delivery);
      } catch (error) {
        // A consumer callback must not throw; if it does, the broker stays healthy and the
        // message goes back to the queue, as RabbitMQ would do when the channel dies.
        this.broker.reportError(error);
        delivery.requeue().catch(() => {});
      }
    }
  }

  removeConsumer(consumer: MemoryConsumer): void {
    const i = this.consumers.indexOf(consumer);
    if (i >= 0) this.consumers.splice(i, 1);
    // The next consumer in line becomes the active one.
    if (i === 0 && this.singleActiveConsumer) this.schedule();
  }
}

class MemoryDelivery implements Delivery {
  readonly message: IncomingMessage;
  /** Set by `get()`: the messages still ready behind this one. */
  remaining: number | undefined;
  /** Neighbours in its consumer's list of unsettled deliveries. */
  prev: MemoryDelivery | undefined;
  next: MemoryDelivery | undefined;
  private settled = false;
  /** Given back to its queue because its connection closed: settling it now does nothing. */
  private returned = false;

  constructor(
    private readonly q: MemoryQueue,
    private readonly consumer: MemoryConsumer,
    private readonly stored: Stored,
  ) {
    const m = stored.message;
    let exchange = m.exchange;
    let routingKey = m.routingKey;
    if (exchange === '') {
      // As on RabbitMQ: a message sent to one queue through the default exchange (a retry, a
      // replay) is seen with the exchange and routing key it was first published with.
      const h = m.properties.headers;
      const ox = h[HEADERS.originalExchange];
      const ork = h[HEADERS.originalRoutingKey];
      if (typeof ox === 'string' && typeof ork === 'string') {
        exchange = ox;
        routingKey = ork;
      }
    }
    this.message = {
      exchange,
      routingKey,
      body: m.body,
      properties: m.properties,
      redelivered: stored.redelivered,
    };
  }

  get queue(): string {
    return this.q.name;
  }

  /** Returns false when the delivery was given back by a closed connection (as on RabbitMQ). */
  private settle(): boolean {
    if (this.returned) return false;
    if (this.settled) throw new StateError(`A delivery from ${this.q.name} was settled twice`);
    this.settled = true;
    this.consumer.unacked.delete(this);
    this.q.schedule();
    return true;
  }

  /** Returns the message to the head of its queue; used when a consumer goes away. */
  returnToQueue(): void {
    if (this.settled) return;
    this.settled = true;
    this.returned = true;
    this.consumer.unacked.delete(this);
    this.q.restore(this.stored);
  }

  ackNow(): void {
    this.settle();
  }

  ack(): Promise<void> {
    try {
      this.settle();
      return SETTLED;
    } catch (error) {
      return Promise.reject(error);
    }
  }

  async requeue(): Promise<void> {
    if (this.settle()) this.q.restore(this.stored);
  }

  async retry(delayMs: number, headers: Record<string, HeaderValue>): Promise<void> {
    if (!this.settle()) return;
    const copy = withHeaders(this.stored.message, headers);
    const q = this.q;
    this.q.broker.later(delayMs, () => q.enqueue(copy));
  }

  async deadLetter(headers: Record<string, HeaderValue>): Promise<void> {
    if (!this.settle()) return;
    // Declared with its queue; declared again if someone deleted it since, as on RabbitMQ.
    const dlq = this.q.broker.declareQueue(
      this.q.deadLetterQueue ?? deadLetterQueueName(this.q.name),
    );
    dlq.enqueue(withHeaders(this.stored.message, headers));
  }
}

/** Header equality as a headers exchange sees it: strings equal to their bytes, numbers by value. */
function sameHeader(value: HeaderValue, expected: HeaderValue): boolean {
  if (value === expected) return true;
  const text = (v: HeaderValue) => (Buffer.isBuffer(v) ? v.toString('utf8') : v);
  return value !== undefined && text(value) === text(expected);
}
/** What a settle resolves with: one promise shared by every delivery, not one each. */
const SETTLED: Promise<void> = Promise.resolve();
const ROUTED_OUTCOME: PublishOutcome = Object.freeze({ routed: true });
const UNROUTED_OUTCOME: PublishOutcome = Object.freeze({ routed: false });
const ROUTED: Promise<PublishOutcome> = Promise.resolve(ROUTED_OUTCOME);
const UNROUTED: Promise<PublishOutcome> = Promise.resolve(UNROUTED_OUTCOME);

function withHeaders(
  message: OutgoingMessage,
  headers: Record<string, HeaderValue>,
): OutgoingMessage {
  return {
    ...message,
    properties: { ...message.properties, headers: { ...message.properties.headers, ...headers } },
  };
}

/**
 * The embedded broker: topic exchanges with exact RabbitMQ routing, FIFO queues with
 * round-robin consumers and per-consumer prefetch, acks, requeue with the redelivered flag,
 * delayed retries that never block a queue, and dead-letter queues. Everything lives in this
 * process's memory; nothing survives the process.
 *
 * One broker is one "server". Any number of services in the process can share it, through one
 * transport or several (`broker.transport()`).
 */
export class MemoryBroker {
  private readonly exchanges = new Map<string, MemoryExchange>();
  private readonly queues = new Map<string, MemoryQueue>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private errorListener: ((error: unknown) => void) | undefined;

  /** Called with errors thrown by consumer callbacks (they never reach the publisher). */
  onError(listener: (error: unknown) => void): void {
    this.errorListener = listener;
  }

  reportError(error: unknown): void {
    if (this.errorListener) this.errorListener(error);
    else console.error('[tidings memory broker] a consumer callback threw:', error);
  }

  /** Runs `fn` after `ms`, unless the broker is reset first. */
  later(ms: number, fn: () => void): void {
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      fn();
    }, ms);
    // A pending retry must not keep a process alive that has nothing else to do: the embedded
    // broker keeps nothing across processes anyway.
    timer.unref();
    this.timers.add(timer);
  }

  queue(name: string): MemoryQueue | undefined {
    return this.queues.get(name);
  }

  /** Number of messages ready in a queue (not counting ones delivered and not yet settled). */
  depth(queue: string): number {
    return this.queues.get(queue)?.messages.length ?? 0;
  }

  /** Names of the queues that exist, sorted. */
  queueNames(): string[] {
    return [...this.queues.keys()].sort();
  }

  /**
   * Declares an exchange (a topic exchange unless `options.type` says otherwise). Throws a
   * `TopologyConflictError`, as RabbitMQ refuses it, when it exists with another type or
   * alternate exchange.
   */
  declareExchange(name: string, options: MemoryExchangeOptions = {}): void {
    const type = options.type ?? 'topic';
    const existing = this.exchanges.get(name);
    if (existing) {
      if (existing.type !== type || existing.alternate !== options.alternate) {
        throw new TopologyConflictError(
          `exchange "${name}"`,
          `it is a ${existing.type} exchange with alternate exchange ${existing.alternate ?? 'none'}, but was declared ${type} with ${options.alternate ?? 'none'}`,
        );
      }
      return;
    }
    this.exchanges.set(name, {
      name,
      type,
      alternate: options.alternate,
      bindings: [],
      forwards: [],
      headerBindings: [],
      routes: new Map(),
    });
  }

  /** Whether an exchange of that name exists. */
  hasExchange(name: string): boolean {
    return this.exchanges.has(name);
  }

  declareQueue(name: string, options: MemoryQueueOptions = {}): MemoryQueue {
    let q = this.queues.get(name);
    if (!q) {
      q = new MemoryQueue(name, this);
      this.queues.set(name, q);
    }
    if (options.singleActiveConsumer) q.singleActiveConsumer = true;
    if (options.deadLetterQueue !== undefined) q.deadLetterQueue = options.deadLetterQueue;
    return q;
  }

  /**
   * Binds exchange `destination` to exchange `source` with a topic pattern: what `source` routes
   * with a matching key, `destination` routes again (RabbitMQ's exchange-to-exchange binding).
   */
  bindExchange(destination: string, source: string, pattern: string): void {
    const ex = this.exchanges.get(source);
    if (!ex)
      throw new StateError(`Cannot bind ${destination}: exchange "${source}" does not exist`);
    if (!this.exchanges.has(destination)) {
      throw new StateError(`Cannot bind: exchange "${destination}" does not exist`);
    }
    if (ex.forwards.some((f) => f.destination === destination && f.pattern === pattern)) return;
    ex.forwards.push({ destination, pattern, matches: compilePattern(pattern) });
  }

  /**
   * Binds a queue to a headers exchange: a message matches when all (`x-match: all`) or any
   * (`any`) of the other arguments equal its headers of the same names.
   */
  bindHeaders(queue: string, exchange: string, args: Readonly<Record<string, HeaderValue>>): void {
    const ex = this.exchanges.get(exchange);
    if (ex?.type !== 'headers') {
      throw new StateError(`Cannot bind ${queue}: "${exchange}" is not a headers exchange`);
    }
    const q = this.queues.get(queue);
    if (!q) throw new StateError(`Cannot bind: queue "${queue}" does not exist`);
    const all = args['x-match'] !== 'any';
    const match = Object.entries(args).filter(([k]) => !k.startsWith('x-'));
    const same = (b: HeadersBinding) =>
      b.queue === q &&
      b.all === all &&
      b.match.length === match.length &&
      b.match.every(([k, v], i) => match[i]![0] === k && match[i]![1] === v);
    if (!ex.headerBindings.some(same)) ex.headerBindings.push({ queue: q, all, match });
  }

  bind(queue: string, exchange: string, pattern: string): void {
    const ex = this.exchanges.get(exchange);
    if (!ex) throw new StateError(`Cannot bind ${queue}: exchange "${exchange}" does not exist`);
    const q = this.queues.get(queue);
    if (!q) throw new StateError(`Cannot bind: queue "${queue}" does not exist`);
    if (ex.bindings.some((b) => b.queue === q && b.pattern === pattern)) return;
    ex.bindings.push({ queue: q, pattern, matches: compilePattern(pattern) });
    ex.routes.clear();
  }

  deleteQueue(name: string): void {
    const q = this.queues.get(name);
    if (!q) return;
    q.deleted = true;
    q.messages.drain();
    this.queues.delete(name);
    for (const ex of this.exchanges.values()) {
      const before = ex.bindings.length;
      for (let i = ex.bindings.length - 1; i >= 0; i--) {
        if (ex.bindings[i]!.queue === q) ex.bindings.splice(i, 1);
      }
      if (ex.bindings.length !== before) ex.routes.clear();
      for (let i = ex.headerBindings.length - 1; i >= 0; i--) {
        if (ex.headerBindings[i]!.queue === q) ex.headerBindings.splice(i, 1);
      }
    }
  }

  /** Deletes an exchange and the bindings of other exchanges to it. */
  deleteExchange(name: string): void {
    if (!this.exchanges.delete(name)) return;
    for (const ex of this.exchanges.values()) {
      for (let i = ex.forwards.length - 1; i >= 0; i--) {
        if (ex.forwards[i]!.destination === name) ex.forwards.splice(i, 1);
      }
    }
  }

  /**
   * Routes a message to every queue whose binding matches its routing key (each queue at most
   * once, as RabbitMQ does). Throws when the exchange does not exist.
   */
  route(message: OutgoingMessage): PublishOutcome {
    return this.deliverTo(message) ? ROUTED_OUTCOME : UNROUTED_OUTCOME;
  }

  /** {@link route}, saying whether any queue took the message. */
  deliverTo(message: OutgoingMessage): boolean {
    if (message.exchange === DEFAULT_EXCHANGE) {
      const q = this.queues.get(message.routingKey);
      q?.enqueue(message);
      return q !== undefined;
    }
    const ex = this.exchanges.get(message.exchange);
    if (!ex) {
      throw new PublishRejectedError(
        message.routingKey,
        `exchange "${message.exchange}" does not exist (declare it first)`,
      );
    }
    if (ex.type === 'topic' && ex.forwards.length === 0 && ex.alternate === undefined) {
      let targets = ex.routes.get(message.routingKey);
      if (!targets) {
        const set = new Set<MemoryQueue>();
        for (const b of ex.bindings) if (b.matches(message.routingKey)) set.add(b.queue);
        targets = [...set];
        if (ex.routes.size > 10_000) ex.routes.clear();
        ex.routes.set(message.routingKey, targets);
      }
      for (const q of targets) q.enqueue(message);
      return targets.length > 0;
    }
    const set = new Set<MemoryQueue>();
    this.collect(ex, message, set, new Set());
    for (const q of set) q.enqueue(message);
    return set.size > 0;
  }

  /**
   * Adds the queues `ex` routes `message` to, following exchange-to-exchange bindings, and the
   * alternate exchange when `ex` itself reaches no queue. Each exchange is visited once, so a
   * cycle of bindings ends, as on RabbitMQ.
   */
  private collect(
    ex: MemoryExchange,
    message: OutgoingMessage,
    into: Set<MemoryQueue>,
    visited: Set<MemoryExchange>,
  ): void {
    if (visited.has(ex)) return;
    visited.add(ex);
    const before = into.size;
    const key = message.routingKey;
    if (ex.type === 'headers') {
      const headers = message.properties.headers;
      for (const b of ex.headerBindings) {
        const hit = (pair: readonly [string, HeaderValue]) => sameHeader(headers[pair[0]], pair[1]);
        if (b.all ? b.match.every(hit) : b.match.some(hit)) into.add(b.queue);
      }
    } else {
      for (const b of ex.bindings) if (ex.type === 'fanout' || b.matches(key)) into.add(b.queue);
    }
    for (const f of ex.forwards) {
      const next = this.exchanges.get(f.destination);
      if (next && (ex.type === 'fanout' || f.matches(key)))
        this.collect(next, message, into, visited);
    }
    if (into.size === before && ex.alternate !== undefined) {
      const alternate = this.exchanges.get(ex.alternate);
      if (alternate) this.collect(alternate, message, into, visited);
    }
  }

  /** A new transport (a "connection") to this broker. */
  transport(): MemoryTransport {
    return new MemoryTransport(this);
  }

  /** Cancels pending retries and forgets every exchange and queue. */
  reset(): void {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    for (const name of [...this.queues.keys()]) this.deleteQueue(name);
    this.exchanges.clear();
  }
}

/** A connection to a {@link MemoryBroker}; implements {@link Transport}. */
export class MemoryTransport implements Transport {
  readonly kind = 'memory';
  private readonly consumers = new Set<MemoryConsumer>();
  private readonly taps = new Set<MemoryTap>();
  private closed = false;

  constructor(readonly broker: MemoryBroker = new MemoryBroker()) {}

  private assertOpen(): void {
    if (this.closed) throw new StateError('The memory transport is closed');
  }

  async declare(topology: Topology): Promise<void> {
    this.assertOpen();
    for (const name of topology.exchanges) this.broker.declareExchange(name);
    for (const q of topology.queues) {
      if (q.partitions !== undefined) {
        this.declarePartitioned(q, q.partitions);
        continue;
      }
      this.broker.declareQueue(q.name);
      this.broker.declareQueue(deadLetterQueueName(q.name));
      for (const b of q.bindings) {
        this.broker.declareExchange(b.exchange);
        this.broker.bind(q.name, b.exchange, b.pattern);
      }
    }
  }

  publishNow(message: OutgoingMessage): PublishOutcome {
    if (this.closed) throw new StateError('The memory transport is closed');
    return this.broker.route(message);
  }

  publish(message: OutgoingMessage): Promise<PublishOutcome> {
    if (this.closed) return Promise.reject(new StateError('The memory transport is closed'));
    try {
      return this.broker.deliverTo(message) ? ROUTED : UNROUTED;
    } catch (error) {
      return Promise.reject(error);
    }
  }

  async consume(
    queue: string,
    options: ConsumeOptions,
    onDelivery: (delivery: Delivery) => void,
  ): Promise<Consumer> {
    this.assertOpen();
    const q = this.broker.queue(queue);
    if (!q) throw new StateError(`Cannot consume: queue "${queue}" does not exist`);
    const consumer = new MemoryConsumer(q, Math.max(1, options.prefetch), onDelivery);
    q.consumers.push(consumer);
    this.consumers.add(consumer);
    q.schedule();
    return {
      cancel: async () => {
        consumer.cancelled = true;
        q.removeConsumer(consumer);
      },
      release: async () => {
        consumer.cancelled = true;
        for (const d of consumer.unacked.toArray()) d.returnToQueue();
        q.removeConsumer(consumer);
      },
    };
  }

  async get(queue: string): Promise<Delivery | undefined> {
    this.assertOpen();
    const q = this.broker.queue(queue);
    if (!q) throw new StateError(`Cannot get from queue "${queue}": it does not exist`);
    const stored = q.messages.shift();
    if (!stored) return undefined;
    for (const c of this.consumers) {
      if (c.cancelled && c.unacked.size === 0) this.consumers.delete(c);
    }
    // A one-off consumer holds the delivery, so close() returns it like any unsettled one; it
    // counts as cancelled, so it is forgotten once the delivery is settled.
    const holder = new MemoryConsumer(q, 1, () => {});
    holder.cancelled = true;
    const delivery = new MemoryDelivery(q, holder, stored);
    delivery.remaining = q.messages.length;
    holder.unacked.add(delivery);
    this.consumers.add(holder);
    return delivery;
  }

  /**
   * A partitioned queue as on RabbitMQ (see the amqp transport's topology): `count` queues with a
   * single active consumer each and one shared dead-letter queue; a headers exchange, bound to the
   * event exchanges with the queue's patterns, that sends each bucket to its partition; messages
   * without a bucket through its alternate exchange to partition 0. Partition exchanges of another
   * count are deleted once this one is bound.
   */
  private declarePartitioned(spec: QueueSpec, count: number): void {
    const b = this.broker;
    const dlq = deadLetterQueueName(spec.name);
    const unkeyed = unkeyedExchangeName(spec.name);
    const split = partitionExchangeName(spec.name, count);
    b.declareQueue(dlq);
    b.declareExchange(unkeyed, { type: 'fanout' });
    b.declareExchange(split, { type: 'headers', alternate: unkeyed });
    partitionBuckets(count).forEach((buckets, i) => {
      const queue = partitionQueueName(spec.name, i);
      b.declareQueue(queue, { singleActiveConsumer: true, deadLetterQueue: dlq });
      if (i === 0) b.bind(queue, unkeyed, '#');
      for (const bucket of buckets) {
        b.bindHeaders(queue, split, { 'x-match': 'all', [HEADERS.bucket]: String(bucket) });
      }
    });
    for (const binding of spec.bindings) {
      b.declareExchange(binding.exchange);
      b.bindExchange(split, binding.exchange, binding.pattern);
    }
    for (let other = 1; other <= 64; other++) {
      if (other !== count) b.deleteExchange(partitionExchangeName(spec.name, other));
    }
  }

  async deleteTopology(topology: Topology, options?: { exchanges?: boolean }): Promise<void> {
    for (const q of topology.queues) {
      if (q.partitions !== undefined) {
        for (let i = 0; i < q.partitions; i++) {
          this.broker.deleteQueue(partitionQueueName(q.name, i));
          this.broker.deleteQueue(deadLetterQueueName(partitionQueueName(q.name, i)));
        }
        this.broker.deleteExchange(partitionExchangeName(q.name, q.partitions));
        this.broker.deleteExchange(unkeyedExchangeName(q.name));
      }
      this.broker.deleteQueue(q.name);
      this.broker.deleteQueue(deadLetterQueueName(q.name));
    }
    if (options?.exchanges) for (const ex of topology.exchanges) this.broker.deleteExchange(ex);
  }

  /** Ready messages and consumers of a queue; `undefined` when it does not exist. */
  async queueStats(queue: string): Promise<QueueStats | undefined> {
    this.assertOpen();
    const q = this.broker.queue(queue);
    return q ? { messages: q.messages.length, consumers: q.consumers.length } : undefined;
  }

  /**
   * Copies of what is published to `exchange` with a matching routing key, through a queue of
   * the tap's own (`tidings.tap.<uuid>`), bounded like RabbitMQ's `x-max-length` with the oldest
   * dropped; it is deleted by `close()`, or when this transport closes (as an exclusive queue is).
   */
  async tap(
    exchange: string,
    pattern: string,
    onMessage: (message: IncomingMessage) => void,
    options: TapOptions = {},
  ): Promise<Tap> {
    this.assertOpen();
    if (!this.broker.hasExchange(exchange)) {
      throw new StateError(`Cannot tap exchange "${exchange}": it does not exist`);
    }
    const q = this.broker.declareQueue(`tidings.tap.${randomUUID()}`);
    q.maxLength = Math.max(1, options.maxLength ?? 1000);
    this.broker.bind(q.name, exchange, pattern);
    const consumer = new MemoryConsumer(q, Number.MAX_SAFE_INTEGER, (delivery) => {
      void delivery.ack();
      try {
        onMessage(delivery.message);
      } catch (error) {
        this.broker.reportError(error);
      }
    });
    q.consumers.push(consumer);
    q.schedule();
    const tap = new MemoryTap(() => {
      this.taps.delete(tap);
      q.removeConsumer(consumer);
      this.broker.deleteQueue(q.name);
    }, options.onEnd);
    this.taps.add(tap);
    return tap;
  }

  /** Returns every unsettled delivery of this connection to its queue, as a broken connection would. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const tap of [...this.taps]) tap.end(new StateError('The memory transport was closed'));
    for (const c of this.consumers) {
      c.queue.removeConsumer(c);
      for (const d of c.unacked.toArray()) d.returnToQueue();
    }
    this.consumers.clear();
  }
}

/** A tap of the memory broker: see {@link MemoryTransport.tap}. */
class MemoryTap implements Tap {
  private done = false;

  constructor(
    private readonly release: () => void,
    private readonly onEnd: ((error: Error) => void) | undefined,
  ) {}

  /** Ends the tap by itself (its transport closed): releases it and tells `onEnd`. */
  end(error: Error): void {
    if (this.done) return;
    this.done = true;
    this.release();
    this.onEnd?.(error);
  }

  async close(): Promise<void> {
    if (this.done) return;
    this.done = true;
    this.release();
  }
}
