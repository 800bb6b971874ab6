import type { Channel, ChannelModel, ConsumeMessage, Options } from 'amqplib';
import { HEADERS, type HeaderValue, type IncomingMessage } from '../../envelope/envelope.js';
import { MessageEncodingError, PublishRejectedError, StateError } from '../../errors.js';
import type { Consumer, Delivery, PublishOutcome } from '../transport.js';
import { closeQuietly as closeChannel, type ManagedConnection } from './connection.js';
import type { AmqpTransportEvents, TypedEvents } from './events.js';
import { AMQPLIB_TABLE_BYTES, trimHeaders } from './fit.js';
import type { ResolvedAmqpOptions } from './options.js';
import { AbandonedPublishError, type PublishRequest } from './publisher.js';
import { retryLevel, retryQueueName } from './topology.js';

/** What a consumer needs from its transport. */
export interface ConsumerHost {
  readonly options: ResolvedAmqpOptions;
  readonly events: TypedEvents<AmqpTransportEvents>;
  readonly connection: ManagedConnection;
  /** True once the transport is closing: nothing resumes any more. */
  readonly closing: boolean;
  publish(request: PublishRequest): Promise<PublishOutcome>;
  /** Declares `<queue>.retry.<level>` unless known to exist (`force` declares anyway). */
  ensureRetryQueue(queue: string, level: number, force: boolean): Promise<void>;
  /** Declares `<queue>.dlq` when `force` (it is declared with its work queue otherwise). */
  ensureDeadLetterQueue(queue: string, force: boolean): Promise<void>;
  /** The dead-letter queue of `queue`: `<queue>.dlq`, or a partition's shared one. */
  deadLetterQueueOf(queue: string): string;
  /** Whether this transport declared `queue`, so it may re-declare it. */
  knows(queue: string): boolean;
  /** Re-declares `queue` with its dead-letter queue and bindings. */
  redeclare(queue: string): Promise<void>;
  reportError(error: unknown, during: string): void;
  forget(consumer: AmqpConsumer): void;
}

/** What a trimmed dead-letter copy's headers may take: amqplib's limit, less room to spare. */
const TRIM_BUDGET = AMQPLIB_TABLE_BYTES - 4096;

/** Where a delivery stands with the broker, as far as its channel's ack batching is concerned. */
const Wire = {
  /** Not settled yet, or being settled by a copy (retry, dead letter) not yet confirmed. */
  Open: 0,
  /** Acknowledged by the runtime; the ack leaves with the channel's next flush. */
  AckQueued: 1,
  /** The broker was told (ack or nack sent), or the channel is gone. */
  Done: 2,
} as const;
type Wire = (typeof Wire)[keyof typeof Wire];

/**
 * One consumer channel. Deliveries keep the handle they came on: once closed they cannot be
 * settled.
 *
 * Acks are batched (when `batchAcks`): an ack is queued, and at the end of the tick one
 * `basic.ack` with `multiple` set covers the longest run of deliveries, oldest first, that are
 * all acknowledged or already settled otherwise; acks behind a delivery still open (a slow
 * handler, a retry whose copy is not yet confirmed) go out one by one in the same flush. A
 * multiple ack therefore never covers a delivery that is not settled: with handlers that finish
 * in order, which is most of them, a burst of a hundred messages costs one ack frame instead of a
 * hundred, and none is delayed past the tick in which it was acknowledged.
 */
class ChannelHandle {
  open = true;
  unsettled = 0;
  /** This channel's deliveries in the order of their tags, from the oldest not yet flushed. */
  private order: (AmqpDelivery | undefined)[] = [];
  private head = 0;
  private queued = 0;
  private flushing = false;

  constructor(
    readonly channel: Channel,
    readonly batchAcks: boolean,
  ) {}

  /** Records a delivery received on this channel (tags grow with each). */
  track(delivery: AmqpDelivery): void {
    if (this.batchAcks) this.order.push(delivery);
  }

  /** Sends the ack of `delivery` with the next flush (or at once, without batching). */
  ack(delivery: AmqpDelivery): void {
    if (!this.batchAcks) {
      if (this.open) this.channel.ack(delivery.raw);
      return;
    }
    delivery.wire = Wire.AckQueued;
    if (++this.queued === 1 && !this.flushing) {
      this.flushing = true;
      process.nextTick(flushAcks, this);
    }
  }

  /**
   * Sends a nack at once (back to the queue, or with `requeue` false to the queue's own
   * dead-lettering); the delivery no longer holds back the acks after it.
   */
  nack(delivery: AmqpDelivery, requeue = true): void {
    delivery.wire = Wire.Done;
    if (this.open) this.channel.nack(delivery.raw, false, requeue);
  }

  /** Sends every queued ack: one multiple ack for the settled run at the head, the rest singly. */
  flush(): void {
    this.flushing = false;
    if (this.queued === 0) return;
    this.queued = 0;
    const order = this.order;
    let last: AmqpDelivery | undefined;
    let covered = 0;
    while (this.head < order.length) {
      const d = order[this.head]!;
      if (d.wire === Wire.Open) break;
      if (d.wire === Wire.AckQueued) {
        d.wire = Wire.Done;
        last = d;
        covered++;
      }
      order[this.head++] = undefined;
    }
    const channel = this.channel;
    try {
      if (last && this.open) channel.ack(last.raw, covered > 1);
      for (let i = this.head; i < order.length; i++) {
        const d = order[i]!;
        if (d.wire !== Wire.AckQueued) continue;
        d.wire = Wire.Done;
        if (this.open) channel.ack(d.raw);
      }
    } catch {
      // Closed between the check and the call: the broker requeues the messages by itself.
    }
    if (this.head === order.length) {
      this.order = [];
      this.head = 0;
    } else if (this.head > 1024) {
      this.order = order.slice(this.head);
      this.head = 0;
    }
  }
}

function flushAcks(handle: ChannelHandle): void {
  handle.flush();
}

/**
 * A consumer on its own channel with per-consumer prefetch and manual acks. It comes back by
 * itself after a reconnection, a channel error, or a cancellation by the broker (for a queue the
 * transport declared, which it re-declares first); each time it emits an event.
 */
export class AmqpConsumer implements Consumer {
  private handle: ChannelHandle | undefined;
  private tag: string | undefined;
  private cancelled = false;
  private resuming = false;

  constructor(
    readonly host: ConsumerHost,
    readonly queue: string,
    private readonly prefetch: number,
    private readonly onDelivery: (delivery: Delivery) => void,
  ) {}

  /** Opens a channel on `connection` and starts consuming; rejects when the broker refuses. */
  async start(connection: ChannelModel): Promise<void> {
    const channel = await connection.createChannel();
    const handle = new ChannelHandle(channel, true);
    let closeError: Error | undefined;
    channel.on('error', (error: Error) => {
      closeError = error;
    });
    channel.on('close', () => this.channelClosed(handle, closeError));
    try {
      await channel.prefetch(this.prefetch, false);
      await this.subscribe(handle);
    } catch (error) {
      await closeHandle(handle);
      throw error;
    }
  }

  private async subscribe(handle: ChannelHandle): Promise<void> {
    const ok = await handle.channel.consume(
      this.queue,
      (message) => {
        if (message) this.deliver(handle, message);
        else this.cancelledByBroker(handle);
      },
      { noAck: false },
    );
    this.handle = handle;
    this.tag = ok.consumerTag;
    if (this.cancelled) await this.cancelOnBroker(handle, ok.consumerTag);
  }

  /** Stops deliveries (basic.cancel). Deliveries already handed out can still be settled. */
  async cancel(): Promise<void> {
    if (this.cancelled) return;
    this.cancelled = true;
    this.host.forget(this);
    const handle = this.handle;
    if (handle && this.tag) await this.cancelOnBroker(handle, this.tag);
    if (handle && handle.unsettled === 0) await closeHandle(handle);
  }

  /**
   * Closes the consumer's channel without cancelling first: RabbitMQ returns every unacknowledged
   * delivery to the queue in its place, and only then makes the next consumer of a
   * single-active-consumer queue the active one. Deliveries still held settle quietly.
   */
  async release(): Promise<void> {
    if (this.cancelled && !this.handle) return;
    this.cancelled = true;
    this.host.forget(this);
    const handle = this.handle;
    this.handle = undefined;
    this.tag = undefined;
    if (handle) await closeHandle(handle);
  }

  private async cancelOnBroker(handle: ChannelHandle, tag: string): Promise<void> {
    this.tag = undefined;
    if (!handle.open) return;
    try {
      await handle.channel.cancel(tag);
    } catch {
      // The channel or connection went away: the broker sends nothing more either way.
    }
  }

  /** The consume connection was lost: deliveries on it can no longer be settled. */
  detach(): void {
    if (this.handle) this.handle.open = false;
    this.handle = undefined;
    this.tag = undefined;
  }

  /**
   * Consumes again, retrying with backoff until it works, the consumer is cancelled, the transport
   * closes, or the connection is lost (the next connection resumes it).
   */
  async resume(after: 'reconnection' | 'cancellation' | 'channel-error'): Promise<void> {
    if (this.resuming) return;
    this.resuming = true;
    let attempt = 0;
    try {
      while (!this.cancelled && !this.host.closing) {
        const connection = this.host.connection.current;
        if (!connection) return;
        try {
          if ((after === 'cancellation' || attempt > 0) && this.host.knows(this.queue)) {
            await this.host.redeclare(this.queue);
          }
          if (this.handle?.open && !this.tag) await this.subscribe(this.handle);
          else if (!this.handle?.open) await this.start(connection);
          this.host.options.logger.info(`consuming ${this.queue} again after a ${after}`);
          this.host.events.emit('consumer-resumed', { queue: this.queue, after });
          return;
        } catch (error) {
          attempt++;
          if (attempt === 1 || attempt % 10 === 0) {
            this.host.reportError(
              error,
              `resuming the consumer of ${this.queue} (attempt ${attempt})`,
            );
          }
          const { initialDelayMs, maxDelayMs } = this.host.options.reconnect;
          const ceiling = Math.min(maxDelayMs, initialDelayMs * 2 ** Math.min(attempt, 20));
          await sleep(ceiling / 2 + Math.random() * (ceiling / 2));
        }
      }
    } finally {
      this.resuming = false;
    }
  }

  /** Closes the channel at transport close; unsettled deliveries return to the queue. */
  async shutdown(): Promise<void> {
    this.cancelled = true;
    const handle = this.handle;
    this.handle = undefined;
    if (handle) await closeHandle(handle);
  }

  private deliver(handle: ChannelHandle, raw: ConsumeMessage): void {
    handle.unsettled++;
    const delivery = new AmqpDelivery(this, handle, raw);
    handle.track(delivery);
    try {
      this.onDelivery(delivery);
    } catch (error) {
      // A throwing callback must not take the connection down (amqplib would); the message goes
      // back to the queue, as the memory transport does.
      this.host.reportError(error, `delivering a message of ${this.queue}`);
      if (!delivery.settled) delivery.requeue().catch(() => {});
    }
  }

  /** Called by a delivery once settled on the broker (or found unsettleable). */
  settledOn(handle: ChannelHandle): void {
    handle.unsettled--;
    if (this.cancelled && handle.unsettled === 0) {
      if (this.handle === handle) this.handle = undefined;
      void closeHandle(handle);
    }
  }

  private cancelledByBroker(handle: ChannelHandle): void {
    if (this.handle !== handle) return;
    this.tag = undefined;
    if (this.cancelled) return;
    const resuming = !this.host.closing && this.host.knows(this.queue);
    const what = `RabbitMQ cancelled the consumer of ${this.queue} (was the queue deleted?)`;
    if (resuming) this.host.options.logger.warn(`${what}; re-declaring it and consuming again`);
    else {
      this.host.options.logger.error(
        `${what}; this transport did not declare the queue, so it does not resume: nothing consumes it now`,
      );
    }
    this.host.events.emit('consumer-cancelled', { queue: this.queue, resuming });
    if (resuming) void this.resume('cancellation');
  }

  private channelClosed(handle: ChannelHandle, error: Error | undefined): void {
    handle.open = false;
    if (this.handle !== handle) return;
    this.handle = undefined;
    this.tag = undefined;
    // Without an error the whole connection went; its next incarnation resumes every consumer.
    if (!error || this.cancelled || this.host.closing) return;
    this.host.reportError(error, `consuming ${this.queue} (the broker closed the channel)`);
    setTimeout(() => void this.resume('channel-error'), 50).unref();
  }
}

/**
 * A message delivered by RabbitMQ. Settling sends ack/nack on the channel it came on; when that
 * channel is gone (connection lost), settling resolves quietly: RabbitMQ already returned the
 * message to its queue and delivers it again, with `redelivered` set.
 */
export class AmqpDelivery implements Delivery {
  readonly message: IncomingMessage;
  /** From `basic.get-ok`: the messages still ready behind this one; undefined when consumed. */
  readonly remaining: number | undefined;
  private state: 'unsettled' | 'settling' | 'settled' = 'unsettled';
  /** Where it stands in its channel's ack batching. */
  wire: Wire = Wire.Open as Wire;

  constructor(
    private readonly consumer: AmqpConsumer,
    private readonly handle: ChannelHandle,
    readonly raw: ConsumeMessage,
  ) {
    this.message = toIncoming(raw);
    const count = (raw.fields as { messageCount?: unknown }).messageCount;
    this.remaining = typeof count === 'number' ? count : undefined;
  }

  get queue(): string {
    return this.consumer.queue;
  }

  /** True once a settle method has been called. */
  get settled(): boolean {
    return this.state !== 'unsettled';
  }

  ackNow(): void {
    this.begin();
    this.sendAck();
  }

  ack(): Promise<void> {
    try {
      this.begin();
    } catch (error) {
      return Promise.reject(error);
    }
    this.sendAck();
    return SETTLED;
  }

  async requeue(): Promise<void> {
    this.begin();
    this.sendNack();
  }

  async retry(delayMs: number, headers: Record<string, HeaderValue>): Promise<void> {
    this.begin();
    const queue = this.consumer.queue;
    const merged: Record<string, HeaderValue> = { ...this.raw.properties.headers, ...headers };
    // Keep where the message was first published: after the retry queue it comes back through the
    // default exchange, and the runtime records the original exchange and key when dead-lettering.
    if (this.message.exchange !== '') {
      merged[HEADERS.originalExchange] ??= this.message.exchange;
      merged[HEADERS.originalRoutingKey] ??= this.message.routingKey;
    }
    const level = retryLevel(merged[HEADERS.attempts]);
    const options = copyOptions(this.raw, merged);
    options.expiration = String(Math.max(0, Math.round(delayMs)));
    await this.park(
      retryQueueName(queue, level),
      options,
      (force) => this.consumer.host.ensureRetryQueue(queue, level, force),
      (error) => this.unencodable(error, merged, headers, 'retry'),
    );
  }

  async deadLetter(headers: Record<string, HeaderValue>): Promise<void> {
    this.begin();
    const queue = this.consumer.queue;
    const merged: Record<string, HeaderValue> = { ...this.raw.properties.headers, ...headers };
    await this.park(
      this.consumer.host.deadLetterQueueOf(queue),
      copyOptions(this.raw, merged),
      (force) => this.consumer.host.ensureDeadLetterQueue(queue, force),
      (error) => this.unencodable(error, merged, headers, 'dead-letter'),
    );
  }

  /**
   * Stores a copy in `target` through the default exchange (so it reaches that queue only), waits
   * for the broker's confirm, then acks the original. A missing target is declared and the copy
   * sent once more. A copy amqplib cannot encode goes to `onUnencodable`, which settles the
   * original itself. If the copy cannot be stored otherwise, the original is requeued and the
   * error thrown.
   */
  private async park(
    target: string,
    options: Options.Publish,
    ensure: (force: boolean) => Promise<void>,
    onUnencodable?: (error: MessageEncodingError) => Promise<void>,
  ): Promise<void> {
    try {
      await this.copyTo(target, options, ensure);
    } catch (error) {
      if (error instanceof AbandonedPublishError) {
        this.wire = Wire.Done;
        this.finish();
        return;
      }
      // Requeued, it would come straight back and fail the same way, for ever: no requeue.
      if (error instanceof MessageEncodingError && onUnencodable) return onUnencodable(error);
      this.sendNack();
      throw error;
    }
    this.sendAck();
  }

  private async copyTo(
    target: string,
    options: Options.Publish,
    ensure: (force: boolean) => Promise<void>,
  ): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      await ensure(attempt > 0);
      const outcome = await this.consumer.host.publish({
        exchange: '',
        routingKey: target,
        body: this.raw.content,
        options,
        stillWanted: () => this.handle.open,
      });
      if (outcome.routed) return;
      if (attempt > 0) {
        throw new PublishRejectedError(
          target,
          `queue "${target}" does not exist and could not be declared`,
        );
      }
    }
  }

  /**
   * A retry or dead-letter copy amqplib cannot encode (its headers are too large, usually from
   * another client): dead-letters at once, whatever was asked, with the reason and the offending
   * headers cut to 1 KiB or dropped (`tidings-trimmed-headers` says which, and how large they
   * were). The headers given for this settle are kept. Should even that copy fail, the original
   * is rejected without requeue, and RabbitMQ moves it to the dead-letter queue by the work
   * queue's `x-dead-letter-*` arguments.
   */
  private async unencodable(
    error: MessageEncodingError,
    merged: Record<string, HeaderValue>,
    given: Record<string, HeaderValue>,
    asked: 'retry' | 'dead-letter',
  ): Promise<void> {
    const queue = this.consumer.queue;
    const host = this.consumer.host;
    const { headers, trimmed } = trimHeaders(merged, new Set(Object.keys(given)), TRIM_BUDGET);
    // Bounded, so the record of what was trimmed cannot itself overflow the table.
    const listed = trimmed.slice(0, 20).map((t) => ({ ...t, header: clip(t.header, 64) }));
    const more = trimmed.length - listed.length;
    const what = clip(
      listed
        .map(
          (t) => `${t.header} (${t.bytes} bytes, ${t.kept > 0 ? `cut to ${t.kept}` : 'dropped'})`,
        )
        .join(', ') + (more > 0 ? ` and ${more} more` : ''),
      600,
    );
    headers[HEADERS.trimmedHeaders] = JSON.stringify(more > 0 ? [...listed, { more }] : listed);
    if (asked === 'retry') {
      const now = new Date().toISOString();
      const earlier = given[HEADERS.errorMessage];
      headers[HEADERS.deadReason] = 'unencodable-headers';
      headers[HEADERS.errorName] = error.name;
      headers[HEADERS.errorMessage] = clip(
        `could not be parked for a retry: ${error.message}; trimmed ${what || 'nothing'}` +
          (typeof earlier === 'string' && earlier
            ? `. It was to be retried after: ${earlier}`
            : ''),
        1000,
      );
      headers[HEADERS.firstFailure] ??= now;
      headers[HEADERS.lastFailure] = now;
      headers[HEADERS.queue] = queue;
    }
    const target = host.deadLetterQueueOf(queue);
    try {
      await this.copyTo(target, copyOptions(this.raw, headers), (force) =>
        host.ensureDeadLetterQueue(queue, force),
      );
    } catch (again) {
      if (again instanceof AbandonedPublishError) {
        this.wire = Wire.Done;
        this.finish();
        return;
      }
      host.reportError(
        again,
        `dead-lettering a message of ${queue} whose headers cannot be copied; RabbitMQ dead-letters the original instead`,
      );
      this.sendNack(false);
      return;
    }
    this.sendAck();
    host.options.logger.warn(
      `dead-lettered a message of ${queue} at once: its ${asked} copy cannot be encoded (${error.message}); trimmed ${what || 'nothing'}`,
    );
  }

  private begin(): void {
    if (this.state !== 'unsettled') {
      throw new StateError(`A delivery from ${this.consumer.queue} was settled twice`);
    }
    this.state = 'settling';
  }

  private sendAck(): void {
    try {
      this.handle.ack(this);
    } catch {
      // Closed between the check and the call: the broker requeues the message by itself.
    }
    this.finish();
  }

  private sendNack(requeue = true): void {
    try {
      this.handle.nack(this, requeue);
    } catch {
      // As above.
    }
    this.finish();
  }

  private finish(): void {
    if (this.state === 'settled') return;
    this.state = 'settled';
    this.consumer.settledOn(this.handle);
  }
}

/** Publish options that copy a delivered message: every property, persistent, merged headers. */
function copyOptions(raw: ConsumeMessage, headers: Record<string, HeaderValue>): Options.Publish {
  const p = raw.properties;
  const o: Options.Publish = { persistent: true, mandatory: true, headers };
  // `expiration` is left out on purpose (the copy would expire in the dead-letter queue), and
  // `userId` too (RabbitMQ refuses a user id other than the connection's).
  if (p.contentType !== undefined) o.contentType = p.contentType;
  if (p.contentEncoding !== undefined) o.contentEncoding = p.contentEncoding;
  if (p.priority !== undefined) o.priority = p.priority;
  if (p.correlationId !== undefined) o.correlationId = p.correlationId;
  if (p.replyTo !== undefined) o.replyTo = p.replyTo;
  if (p.messageId !== undefined) o.messageId = p.messageId;
  if (p.timestamp !== undefined) o.timestamp = p.timestamp;
  if (p.type !== undefined) o.type = p.type;
  if (p.appId !== undefined) o.appId = p.appId;
  return o;
}

/**
 * The delivered message as the runtime sees it. A message back from a retry queue arrives
 * through the default exchange; its original exchange and routing key come from its headers.
 */
export function toIncoming(raw: ConsumeMessage): IncomingMessage {
  const p = raw.properties;
  const headers = ownHeaders(p.headers);
  let exchange = raw.fields.exchange;
  let routingKey = raw.fields.routingKey;
  if (exchange === '') {
    const ox = headers[HEADERS.originalExchange];
    const ork = headers[HEADERS.originalRoutingKey];
    if (typeof ox === 'string' && typeof ork === 'string') {
      exchange = ox;
      routingKey = ork;
    }
  }
  return {
    exchange,
    routingKey,
    body: raw.content,
    redelivered: raw.fields.redelivered,
    properties: {
      messageId: p.messageId as string | undefined,
      correlationId: p.correlationId as string | undefined,
      type: p.type as string | undefined,
      appId: p.appId as string | undefined,
      timestamp: p.timestamp as number | undefined,
      contentType: p.contentType as string | undefined,
      contentEncoding: p.contentEncoding as string | undefined,
      headers,
    },
  };
}

/**
 * Takes messages one at a time with `basic.get` on a channel of its own, for tooling (listing and
 * replaying dead letters). Each message is an {@link AmqpDelivery}, settled like any other; one
 * requeued goes back to its place in the queue.
 */
export class AmqpGetter {
  private handle: ChannelHandle | undefined;
  private readonly holders = new Map<string, AmqpConsumer>();

  constructor(private readonly host: ConsumerHost) {}

  async get(connection: ChannelModel, queue: string): Promise<Delivery | undefined> {
    if (!this.handle?.open) {
      const channel = await connection.createChannel();
      const handle = new ChannelHandle(channel, false);
      // A refused get (no such queue) closes the channel; the next get opens another.
      channel.on('error', () => {});
      channel.on('close', () => {
        handle.open = false;
      });
      this.handle = handle;
    }
    const handle = this.handle;
    const raw = await handle.channel.get(queue, { noAck: false });
    if (raw === false) return undefined;
    let holder = this.holders.get(queue);
    if (!holder) {
      holder = new AmqpConsumer(this.host, queue, 1, () => {});
      this.holders.set(queue, holder);
    }
    handle.unsettled++;
    return new AmqpDelivery(holder, handle, raw as unknown as ConsumeMessage);
  }

  async close(): Promise<void> {
    if (this.handle) await closeHandle(this.handle);
  }
}

/**
 * amqplib decodes a header table into a plain object, so a header named `__proto__` becomes that
 * object's prototype instead of a key. Copy into a prototype-less object, recovering such a header
 * as an own key: nothing is lost from dead-letter copies, and nothing is inherited.
 */
function ownHeaders(decoded: unknown): Record<string, HeaderValue> {
  const out = Object.create(null) as Record<string, HeaderValue>;
  if (typeof decoded !== 'object' || decoded === null) return out;
  for (const key of Object.keys(decoded)) out[key] = (decoded as Record<string, HeaderValue>)[key];
  const proto = Object.getPrototypeOf(decoded) as unknown;
  if (proto !== Object.prototype && proto !== null) {
    Object.defineProperty(out, '__proto__', {
      value: proto as HeaderValue,
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return out;
}

function clip(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}
/** A settle that completed: one promise shared by every delivery, not one each. */
const SETTLED: Promise<void> = Promise.resolve();

async function closeHandle(handle: ChannelHandle): Promise<void> {
  if (!handle.open) return;
  // Acks still queued for this tick leave before the channel closes.
  handle.flush();
  handle.open = false;
  await closeChannel(handle.channel);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
