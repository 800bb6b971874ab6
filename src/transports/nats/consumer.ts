import type { ConsumerMessages, Consumer as JsConsumer, JsMsg } from '@nats-io/jetstream';
import {
  HEADERS,
  type HeaderValue,
  type IncomingMessage,
  type MessageProperties,
} from '../../envelope/envelope.js';
import { StateError } from '../../errors.js';
import { type Consumer, type Delivery, deadLetterQueueName } from '../transport.js';
import { decodeHeaders } from './headers.js';
import type { ResolvedNatsOptions } from './options.js';
import { parseSubject } from './subjects.js';

/** A copy of a delivered message to store in a queue's own stream before settling the original. */
export interface ParkRequest {
  /** The queue whose stream receives the copy. */
  readonly queue: string;
  readonly body: Buffer;
  readonly properties: MessageProperties;
  /** For a retry: when the copy is due (ms since the epoch). */
  readonly dueAt: number | undefined;
  /** Deduplicates the copy if it is sent twice: the original's `<stream>:<sequence>:<stored at>`. */
  readonly msgId: string;
  /** Used in error messages. */
  readonly routingKey: string;
}

/** What readers and deliveries need from their transport. */
export interface ReaderHost {
  readonly options: ResolvedNatsOptions;
  /** True once the transport is closing: nothing resumes any more. */
  readonly closing: boolean;
  /** Stores a copy in a queue's stream (declaring it if it went missing); resolves once stored. */
  park(request: ParkRequest): Promise<void>;
  /** A pull consumer handle (no request is sent until it is used). */
  consumer(stream: string, name: string): Promise<JsConsumer>;
  /** Whether this transport declared `queue`, so it may declare it again. */
  knows(queue: string): boolean;
  redeclare(queue: string): Promise<void>;
  reportError(error: unknown, during: string): void;
  /** Every delivery not settled yet, for the in-progress ticks and for `close()`. */
  readonly unsettled: Set<NatsDelivery>;
}

/** Where a reader pulls from: a queue's own stream, or one binding on an exchange's stream. */
export interface SourceSpec {
  readonly stream: string;
  readonly consumer: string;
  /** Queue streams hold retried copies, which are held back until due. */
  readonly kind: 'queue' | 'binding';
}

class Source {
  handle: JsConsumer | undefined;
  /** Messages asked for and not received yet, over this source's open pull requests. */
  requested = 0;
  readonly fetches = new Set<ConsumerMessages>();
  failures = 0;
  notBefore = 0;
  constructor(readonly spec: SourceSpec) {}
}

/** How long one pull request waits on the server for messages. */
const PULL_EXPIRES_MS = 30_000;

/**
 * A consumer of one queue: pull requests on each of its sources (the queue's own stream, and one
 * consumer per binding on exchange streams), never asking for more than the prefetch leaves room
 * for. Messages from two sources may arrive together past the prefetch; the extra ones wait here
 * (their ack deadline kept alive) and are handed out as room frees, so the runtime never holds
 * more than `prefetch`. Retried copies that are not due yet go back to the server with a delay
 * (`nak` with delay), without taking room.
 */
export class NatsReader implements Consumer {
  private readonly sources: Source[];
  private readonly held = new Set<NatsDelivery>();
  private readonly waiting: NatsDelivery[] = [];
  private cancelled = false;
  private kickTimer: NodeJS.Timeout | undefined;

  constructor(
    readonly host: ReaderHost,
    readonly queue: string,
    private readonly prefetch: number,
    private readonly onDelivery: (delivery: Delivery) => void,
    sources: readonly SourceSpec[],
  ) {
    this.sources = sources.map((s) => new Source(s));
  }

  /** The exchange streams this reader pulls from (one per binding's exchange). */
  get exchangeStreams(): string[] {
    return this.sources.filter((s) => s.spec.kind === 'binding').map((s) => s.spec.stream);
  }

  /** Looks every source up; rejects with `StateError` when one does not exist. */
  async start(): Promise<void> {
    for (const s of this.sources)
      s.handle = await this.host.consumer(s.spec.stream, s.spec.consumer);
    this.kick();
  }

  /** Stops asking for messages; deliveries already handed out may still be settled. */
  async cancel(): Promise<void> {
    if (this.cancelled) return;
    this.cancelled = true;
    clearTimeout(this.kickTimer);
    for (const s of this.sources) for (const f of s.fetches) f.stop();
    for (const d of this.waiting.splice(0)) d.giveBack();
  }

  /** A delivery of this reader was settled: room for another. */
  settled(delivery: NatsDelivery): void {
    if (!this.held.delete(delivery)) return;
    this.handOut();
    this.kick();
  }

  private room(source: Source): number {
    return this.prefetch - this.held.size - source.requested;
  }

  /** Opens pull requests where there is room: at once when idle, else once half is free. */
  private kick(): void {
    if (this.cancelled || this.host.closing) return;
    const now = Date.now();
    let wake = Number.POSITIVE_INFINITY;
    for (const s of this.sources) {
      if (!s.handle) continue;
      if (now < s.notBefore) {
        wake = Math.min(wake, s.notBefore);
        continue;
      }
      const room = this.room(s);
      const threshold = s.fetches.size === 0 ? 1 : Math.max(1, Math.floor(this.prefetch / 2));
      if (room >= threshold && s.fetches.size < 2) void this.pull(s, room);
    }
    if (wake !== Number.POSITIVE_INFINITY && !this.kickTimer) {
      this.kickTimer = setTimeout(
        () => {
          this.kickTimer = undefined;
          this.kick();
        },
        Math.max(1, wake - now),
      );
      this.kickTimer.unref();
    }
  }

  private async pull(source: Source, batch: number): Promise<void> {
    let remaining = batch;
    source.requested += batch;
    let iterator: ConsumerMessages | undefined;
    let watchdog: NodeJS.Timeout | undefined;
    try {
      iterator = await source.handle!.fetch({ max_messages: batch, expires: PULL_EXPIRES_MS });
      source.fetches.add(iterator);
      if (this.cancelled) iterator.stop();
      // A pull request ends at its expiry, or the client ends it when heartbeats stop. Should it
      // hang anyway (a reconnection at the wrong moment), it must not hold its room forever.
      const hung = iterator;
      watchdog = setTimeout(() => hung.stop(), PULL_EXPIRES_MS * 2 + 15_000);
      watchdog.unref();
      for await (const raw of iterator) {
        if (remaining > 0) {
          remaining--;
          source.requested--;
        }
        this.receive(source, raw);
      }
      source.failures = 0;
    } catch (error) {
      this.pullFailed(source, error);
    } finally {
      clearTimeout(watchdog);
      source.requested -= remaining;
      if (iterator) source.fetches.delete(iterator);
      this.kick();
    }
  }

  private pullFailed(source: Source, error: unknown): void {
    if (this.cancelled || this.host.closing) return;
    source.failures++;
    const { initialDelayMs, maxDelayMs } = this.host.options.reconnect;
    const ceiling = Math.min(maxDelayMs, initialDelayMs * 2 ** Math.min(source.failures, 16));
    source.notBefore = Date.now() + ceiling / 2 + Math.random() * (ceiling / 2);
    const message = error instanceof Error ? error.message : String(error);
    const missing = /not found|deleted/i.test(message);
    if (source.failures === 1 || source.failures % 20 === 0) {
      this.host.reportError(
        error,
        `pulling messages of ${this.queue} (attempt ${source.failures})`,
      );
    }
    // The consumer or its stream was deleted under us: a queue this transport declared is
    // declared again, as on RabbitMQ; the pull after the delay then finds it.
    if (missing && this.host.knows(this.queue)) {
      this.host
        .redeclare(this.queue)
        .catch((e: unknown) => this.host.reportError(e, `declaring ${this.queue} again`));
    }
  }

  private receive(source: Source, raw: JsMsg): void {
    const decoded = decodeHeaders(raw.headers);
    const storedAt = Number(raw.info.timestampNanos) / 1e6;
    // A retried copy pulled before it is due goes back with the rest of its delay; it takes no
    // room. Its one early delivery is not counted against it.
    const deferred = decoded.dueAt !== undefined && decoded.dueAt > storedAt + 1 ? 1 : 0;
    if (source.spec.kind === 'queue' && decoded.dueAt !== undefined) {
      const wait = decoded.dueAt - Date.now();
      if (wait > 2) {
        safely(() => raw.nak(Math.ceil(wait)));
        return;
      }
    }
    const deliveries = raw.info.deliveryCount - deferred;
    const delivery = new NatsDelivery(this.host, this, raw, decoded.properties, deliveries);
    if (this.cancelled || this.host.closing) {
      delivery.giveBack();
      return;
    }
    const limit = this.host.options.deliveryLimit;
    if (limit !== undefined && deliveries > limit) {
      this.host.unsettled.add(delivery);
      this.overLimit(delivery, deliveries);
      return;
    }
    this.held.add(delivery);
    this.host.unsettled.add(delivery);
    this.waiting.push(delivery);
    this.handOut();
  }

  /** A message delivered more often than the limit goes to the dead-letter queue, unhandled. */
  private overLimit(delivery: NatsDelivery, deliveries: number): void {
    const now = new Date().toISOString();
    const h = delivery.message.properties.headers;
    delivery
      .deadLetter({
        [HEADERS.deadReason]: 'delivery-limit',
        [HEADERS.errorMessage]:
          `delivered ${deliveries} times without being settled (a handler crashed its process, ` +
          `or ran past the ack wait of ${this.host.options.ackWaitMs} ms, each time); ` +
          `the limit is ${this.host.options.deliveryLimit}`,
        [HEADERS.queue]: this.queue,
        [HEADERS.firstFailure]: h[HEADERS.firstFailure] ?? now,
        [HEADERS.lastFailure]: now,
      })
      .catch((error: unknown) => {
        this.host.reportError(
          error,
          `dead-lettering a message of ${this.queue} over its delivery limit`,
        );
      });
  }

  private handOut(): void {
    const handedOut = this.held.size - this.waiting.length;
    let free = this.prefetch - handedOut;
    while (free > 0 && this.waiting.length > 0 && !this.cancelled) {
      const delivery = this.waiting.shift()!;
      free--;
      try {
        this.onDelivery(delivery);
      } catch (error) {
        // A throwing callback must not stop the reader; the message goes back, as on the others.
        this.host.reportError(error, `delivering a message of ${this.queue}`);
        if (!delivery.settling) delivery.requeue().catch(() => {});
      }
    }
  }
}

function safely(action: () => void): void {
  try {
    action();
  } catch {
    // The connection is closed: the server redelivers the message after its ack wait.
  }
}

/** Whatever holds deliveries: a reader, or `get()`. */
export interface DeliveryOwner {
  readonly queue: string;
  settled(delivery: NatsDelivery): void;
}

/**
 * A message delivered by JetStream. Settling acknowledges (`+ACK`), naks (`-NAK`, for requeue), or
 * first stores a copy in a queue stream (retry, dead letter) and acknowledges once it is stored.
 * After the transport closed, settling does nothing: the message was given back already.
 */
export class NatsDelivery implements Delivery {
  readonly message: IncomingMessage;
  private state: 'unsettled' | 'settling' | 'settled' = 'unsettled';
  private returned = false;
  /** For `get()`: how many messages of the queue were still ready behind this one. */
  remaining: number | undefined;

  constructor(
    private readonly host: ReaderHost,
    private readonly owner: DeliveryOwner,
    readonly raw: JsMsg,
    properties: MessageProperties,
    /** Deliveries of this message so far, this one included (early ones of a retry not counted). */
    readonly deliveries: number,
  ) {
    this.message = toIncoming(host.options.namespace, raw, properties, deliveries > 1);
  }

  get queue(): string {
    return this.owner.queue;
  }

  /** True once a settle method has been called. */
  get settling(): boolean {
    return this.state !== 'unsettled';
  }

  async ack(): Promise<void> {
    this.begin();
    this.finish(() => this.raw.ack());
  }

  async requeue(): Promise<void> {
    this.begin();
    this.finish(() => this.raw.nak());
  }

  async retry(delayMs: number, headers: Record<string, HeaderValue>): Promise<void> {
    this.begin();
    const merged: Record<string, HeaderValue> = { ...this.message.properties.headers, ...headers };
    // Keep where the message was first published: the copy comes back through the queue's own
    // stream, and the runtime records the original exchange and key when dead-lettering.
    if (this.message.exchange !== '') {
      merged[HEADERS.originalExchange] ??= this.message.exchange;
      merged[HEADERS.originalRoutingKey] ??= this.message.routingKey;
    }
    await this.park(this.owner.queue, merged, Date.now() + Math.max(0, delayMs));
  }

  async deadLetter(headers: Record<string, HeaderValue>): Promise<void> {
    this.begin();
    const merged: Record<string, HeaderValue> = { ...this.message.properties.headers, ...headers };
    if (this.message.exchange !== '') {
      merged[HEADERS.originalExchange] ??= this.message.exchange;
      merged[HEADERS.originalRoutingKey] ??= this.message.routingKey;
    }
    await this.park(deadLetterQueueName(this.owner.queue), merged, undefined);
  }

  /** Keeps the server from redelivering it while it is held (`+WPI`). */
  working(): void {
    if (this.state !== 'settled' && !this.returned) safely(() => this.raw.working());
  }

  /** Gives the message back to the server at once (close, cancel): later settling does nothing. */
  giveBack(): void {
    if (this.state === 'settled' || this.returned) return;
    this.returned = true;
    safely(() => this.raw.nak());
    if (this.state === 'unsettled') this.state = 'settled';
    this.host.unsettled.delete(this);
    this.owner.settled(this);
  }

  private async park(
    queue: string,
    headers: Record<string, HeaderValue>,
    dueAt: number | undefined,
  ): Promise<void> {
    try {
      await this.host.park({
        queue,
        body: this.message.body,
        properties: { ...this.message.properties, headers },
        dueAt,
        msgId: `${this.raw.info.stream}:${this.raw.seq}:${this.raw.info.timestampNanos}`,
        routingKey: this.message.routingKey,
      });
    } catch (error) {
      this.finish(() => this.raw.nak());
      throw error;
    }
    this.finish(() => this.raw.ack());
  }

  private begin(): void {
    if (this.state !== 'unsettled') {
      if (this.returned) return;
      throw new StateError(`A delivery from ${this.owner.queue} was settled twice`);
    }
    this.state = 'settling';
  }

  private finish(action: () => void): void {
    if (this.state === 'settled') return;
    if (!this.returned) safely(action);
    this.state = 'settled';
    this.host.unsettled.delete(this);
    this.owner.settled(this);
  }
}

/**
 * The delivered message as the runtime sees it. A message from a queue's own stream (a retry, a
 * replay) is shown with the exchange and routing key it was first published with, from its
 * headers, as on RabbitMQ.
 */
function toIncoming(
  namespace: string,
  raw: JsMsg,
  properties: MessageProperties,
  redelivered: boolean,
): IncomingMessage {
  const origin = parseSubject(namespace, raw.subject);
  let exchange = '';
  let routingKey = raw.subject;
  if (origin?.kind === 'exchange') {
    exchange = origin.exchange;
    routingKey = origin.routingKey;
  } else if (origin?.kind === 'queue') {
    routingKey = origin.queue;
    const ox = properties.headers[HEADERS.originalExchange];
    const ork = properties.headers[HEADERS.originalRoutingKey];
    if (typeof ox === 'string' && typeof ork === 'string') {
      exchange = ox;
      routingKey = ork;
    }
  }
  const data = raw.data;
  return {
    exchange,
    routingKey,
    body: Buffer.from(data.buffer, data.byteOffset, data.byteLength),
    redelivered,
    properties,
  };
}
