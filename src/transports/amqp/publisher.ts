import type { ChannelModel, ConfirmChannel, Message, Options } from 'amqplib';
import {
  type ConnectionError,
  MessageEncodingError,
  PublishBufferFullError,
  PublishRejectedError,
  PublishTimeoutError,
  StateError,
} from '../../errors.js';
import { LinkedList } from '../../linked-list.js';
import type { PublishOutcome } from '../transport.js';
import { closeQuietly, type ManagedConnection } from './connection.js';
import { headersRefusal } from './fit.js';
import { closing, type FastPublish, probePublishPath, takeBackCallback } from './internals.js';
import type { ResolvedAmqpOptions } from './options.js';
import { brokerReason, replyCodeOf } from './topology.js';

/** What is published: amqplib's arguments, kept until the broker confirms. */
export interface PublishRequest {
  readonly exchange: string;
  readonly routingKey: string;
  readonly body: Buffer;
  readonly options: Options.Publish;
  /**
   * Checked before the message is (re)sent: false drops it and rejects with
   * {@link AbandonedPublishError}. Retry and dead-letter copies use it to skip the copy when the
   * original delivery can no longer be acknowledged (its channel died): RabbitMQ redelivers the
   * original, so sending the copy too would only duplicate it.
   */
  readonly stillWanted?: () => boolean;
}

/** A publish dropped because {@link PublishRequest.stillWanted} said so. Internal. */
export class AbandonedPublishError extends Error {}

interface Entry {
  readonly request: PublishRequest;
  readonly startedAt: number;
  readonly resolve: (outcome: PublishOutcome) => void;
  readonly reject: (error: Error) => void;
  state: 'pending' | 'in-flight' | 'done';
  /** The channel it was written to, while in flight. */
  channel: ConfirmChannel | undefined;
  /** A basic.return for it arrived: no queue took it. */
  returned: boolean;
  /** How many channels the broker closed with it in flight; a message that keeps killing channels is rejected. */
  channelErrors: number;
  /** Neighbours in the publisher's list of messages in flight. */
  prev: Entry | undefined;
  next: Entry | undefined;
}

/** What a confirmed publish resolves with: two shared objects, not one per message. */
const ROUTED: PublishOutcome = Object.freeze({ routed: true });
const UNROUTED: PublishOutcome = Object.freeze({ routed: false });

/** A FIFO with O(1) push, shift and unshift (a ring would do too; this is simpler to read). */
class Deque<T> {
  private front: T[] = [];
  private back: T[] = [];
  private head = 0;
  get length(): number {
    return this.front.length + this.back.length - this.head;
  }
  push(item: T): void {
    this.back.push(item);
  }
  /** Puts items back at the head, keeping their order. */
  unshiftAll(items: readonly T[]): void {
    if (items.length === 0) return;
    const rest = this.toArray();
    this.front = [...items, ...rest];
    this.back = [];
    this.head = 0;
  }
  shift(): T | undefined {
    if (this.head < this.front.length) {
      const item = this.front[this.head];
      this.front[this.head++] = undefined as T;
      return item;
    }
    if (this.back.length === 0) return undefined;
    this.front = this.back;
    this.back = [];
    this.head = 0;
    return this.shift();
  }
  toArray(): T[] {
    return [...this.front.slice(this.head), ...this.back];
  }
  clear(): T[] {
    const all = this.toArray();
    this.front = [];
    this.back = [];
    this.head = 0;
    return all;
  }
}

/**
 * One headers object for every publish. amqplib encodes `Object.create(options.headers)`, which
 * makes a fresh headers object a prototype: V8 gives it a map of its own and encoding the table
 * then misses every inline cache (and for-in has no enum cache). Measured, that cost about 30 µs
 * a message, as much as all the rest of a publish; the same object reused as the prototype costs
 * almost nothing. Each publish writes its headers into it just before amqplib encodes the frame
 * (synchronously, within `publish`); names it does not have are set to undefined, which amqplib
 * leaves out of the table.
 */
class ReusedHeaders {
  private table: Record<string, unknown> = {};
  private names = 0;

  fill(headers: Record<string, unknown>): Record<string, unknown> {
    const table = this.table;
    for (const name in table) table[name] = undefined;
    for (const name in headers) {
      // Assigning `__proto__` would set the prototype: such a message keeps its own object.
      if (name === '__proto__') return headers;
      if (!Object.hasOwn(table, name) && ++this.names > 64) {
        // Many distinct names (copies of foreign messages): start again rather than grow.
        this.table = {};
        this.names = 0;
        return this.fill(headers);
      }
      table[name] = headers[name];
    }
    return table;
  }
}

/**
 * Whether `channel.publish` threw because amqplib refused to encode the message (a TypeError or
 * RangeError while the channel and its connection are still open), not because the channel closed.
 */
function refusedToEncode(error: unknown, channel: ConfirmChannel): boolean {
  return (error instanceof TypeError || error instanceof RangeError) && !closing(channel);
}

/**
 * The options of one write, with the headers in the reused object: the publishes the frame
 * encoder leaves to amqplib. Written as a literal of every publish option amqplib reads, not as
 * `{ ...options, headers }`: a spread followed by another property can make V8 build a slow
 * object, and amqplib reads about twenty properties of it per message (measured: about 9 µs a
 * publish when the spread adds a property, about 1 µs here, where it replaces one).
 */
function withHeaders(o: Options.Publish, reused: ReusedHeaders): Options.Publish {
  return {
    persistent: o.persistent,
    mandatory: o.mandatory,
    deliveryMode: o.deliveryMode,
    expiration: o.expiration,
    priority: o.priority,
    messageId: o.messageId,
    correlationId: o.correlationId,
    replyTo: o.replyTo,
    type: o.type,
    appId: o.appId,
    userId: o.userId,
    timestamp: o.timestamp,
    contentType: o.contentType,
    contentEncoding: o.contentEncoding,
    CC: o.CC,
    BCC: o.BCC,
    headers: reused.fill(o.headers),
  };
}

/**
 * Publishes on one confirm channel of the publish connection, many messages in flight at once.
 *
 * - A publish resolves on the broker's ack, with `routed: false` when a `basic.return` came for it
 *   first (RabbitMQ sends the return before the ack of the same message), and rejects on a nack.
 * - When amqplib's write buffer is full (`publish` returns false) nothing more is written until
 *   the channel emits `drain`; publishes queue meanwhile.
 * - While there is no channel (connecting, reconnecting) publishes queue, up to
 *   `maxBufferedPublishes`; past it they reject at once with `PublishBufferFullError`. Messages in flight when the channel or connection is lost go back to
 *   the head of the queue and are sent again: at-least-once, a message may arrive twice.
 * - A publish that is not confirmed within `publishTimeoutMs` of being called rejects with
 *   `PublishTimeoutError`.
 */
export class Publisher {
  private readonly pending = new Deque<Entry>();
  private readonly headers = new ReusedHeaders();
  private pendingCount = 0;
  /** Written and not yet confirmed, oldest first. */
  private readonly inFlight = new LinkedList<Entry>();
  private channel: ConfirmChannel | undefined;
  /** The fast path of the current channel, when it has one (see internals.ts). */
  private fast: FastPublish | undefined;
  /** The connection whose fast path was last found off (warned once per connection). */
  private warnedFor: ChannelModel | undefined;
  private waitingForDrain = false;
  private channelFailures = 0;
  private sweeper: NodeJS.Timeout | undefined;
  private idleWaiters: (() => void)[] = [];
  private closed = false;

  constructor(
    private readonly connection: ManagedConnection,
    private readonly options: ResolvedAmqpOptions,
    private readonly reportError: (error: unknown, during: string) => void,
  ) {}

  /** Publishes not yet confirmed (waiting to be written, or written and awaiting a confirm). */
  get outstanding(): number {
    return this.pendingCount + this.inFlight.size;
  }

  publish(request: PublishRequest): Promise<PublishOutcome> {
    if (this.closed) {
      return Promise.reject(new StateError('The RabbitMQ transport is closed; it cannot publish'));
    }
    // The bound protects memory while the broker is away. While connected, publishes waiting for
    // the socket to drain are the caller's own backpressure (each one awaits its confirm).
    if (!this.channel && this.pendingCount >= this.options.maxBufferedPublishes) {
      return Promise.reject(
        new PublishBufferFullError(request.routingKey, this.options.maxBufferedPublishes),
      );
    }
    return new Promise<PublishOutcome>((resolve, reject) => {
      const entry: Entry = {
        request,
        startedAt: Date.now(),
        resolve,
        reject,
        state: 'pending',
        channel: undefined,
        returned: false,
        channelErrors: 0,
        prev: undefined,
        next: undefined,
      };
      this.pending.push(entry);
      this.pendingCount++;
      this.startSweeper();
      if (this.channel) this.pump();
      else this.connection.kick();
    });
  }

  /** Opens the confirm channel on a (re)opened connection and sends what waited. */
  async attach(connection: ChannelModel): Promise<void> {
    if (this.closed && this.outstanding === 0) return;
    let channel: ConfirmChannel;
    try {
      channel = await connection.createConfirmChannel();
    } catch (error) {
      // Usually the connection died too, and its successor attaches. If not, try again shortly.
      this.reopenLater(connection);
      throw error;
    }
    if (this.connection.current !== connection) {
      await closeQuietly(channel);
      return;
    }
    let closeError: Error | undefined;
    channel.on('error', (error: Error) => {
      closeError = error;
    });
    channel.on('close', () => this.channelClosed(channel, closeError));
    channel.on('return', (message: Message) => this.returned(channel, message));
    channel.on('drain', () => {
      if (this.channel !== channel) return;
      this.waitingForDrain = false;
      this.pump();
    });
    this.fast = this.fastPathOf(connection, channel);
    this.channel = channel;
    this.waitingForDrain = false;
    this.pump();
  }

  /** Probes the fast path of a new channel; says once per connection when it is off, and why. */
  private fastPathOf(connection: ChannelModel, channel: ConfirmChannel): FastPublish | undefined {
    if (!this.options.fastPublish) return undefined;
    const path = probePublishPath(channel);
    if (!path.fast && this.warnedFor !== connection) {
      this.warnedFor = connection;
      this.options.logger.warn(
        `the fast publish path is off: ${path.reason}; publishing through amqplib's own encoder instead (same bytes, more CPU per message). Set fastPublish: false to silence this.`,
      );
    }
    return path.fast;
  }

  /** The connection is gone: everything in flight will be sent again on the next one. */
  detach(): void {
    const channel = this.channel;
    this.channel = undefined;
    if (channel) this.requeueInFlight(channel, undefined);
  }

  /** The first connection failed for good: every waiting publish fails with that error. */
  failAll(error: ConnectionError): void {
    for (const entry of this.pending.clear()) {
      if (entry.state !== 'pending') continue;
      this.pendingCount--;
      this.finish(entry, error);
    }
  }

  /**
   * Stops accepting publishes and resolves once every outstanding one is confirmed, rejected or
   * timed out (so within `publishTimeoutMs`); then closes the channel.
   */
  async close(): Promise<void> {
    this.closed = true;
    if (this.outstanding > 0) {
      await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
    }
    clearInterval(this.sweeper);
    this.sweeper = undefined;
    const channel = this.channel;
    this.channel = undefined;
    if (channel) await closeQuietly(channel);
  }

  private pump(): void {
    const channel = this.channel;
    if (!channel) return;
    while (!this.waitingForDrain) {
      const entry = this.pending.shift();
      if (!entry) return;
      if (entry.state !== 'pending') continue;
      this.pendingCount--;
      const r = entry.request;
      if (r.stillWanted && !r.stillWanted()) {
        this.finish(entry, new AbandonedPublishError('the original delivery was lost'));
        continue;
      }
      entry.state = 'in-flight';
      entry.channel = channel;
      entry.returned = false;
      this.inFlight.add(entry);
      let writable: boolean;
      const done = (error: unknown) => this.confirmed(entry, channel, error);
      try {
        const fast = this.fast?.(r.exchange, r.routingKey, r.body, r.options, done);
        if (fast !== undefined) writable = fast;
        else {
          // Past its scratch buffer amqplib would send a corrupt frame, or throw halfway.
          const refusal = r.options.headers ? headersRefusal(r.options.headers) : undefined;
          if (refusal !== undefined) {
            this.inFlight.delete(entry);
            this.finish(entry, new MessageEncodingError(r.routingKey, refusal));
            continue;
          }
          const options = r.options.headers ? withHeaders(r.options, this.headers) : r.options;
          writable = channel.publish(r.exchange, r.routingKey, r.body, options, done);
        }
      } catch (error) {
        if (!refusedToEncode(error, channel)) {
          // The channel closed under us; its 'close' handler puts the entry back in the queue.
          return;
        }
        // amqplib refused the message (a string too long for its field, say) after queueing the
        // confirm callback: take the callback back, or every later confirm would be credited to
        // the message before it.
        takeBackCallback(channel, done);
        this.inFlight.delete(entry);
        this.finish(
          entry,
          new MessageEncodingError(r.routingKey, (error as Error).message, { cause: error }),
        );
        continue;
      }
      if (!writable) this.waitingForDrain = true;
    }
  }

  private confirmed(entry: Entry, channel: ConfirmChannel, error: unknown): void {
    if (entry.state !== 'in-flight' || entry.channel !== channel) return;
    if (error) {
      // amqplib fails every unconfirmed callback with "channel closed" when the channel goes;
      // those messages are not refused, just unknown: the 'close' handler sends them again.
      if (!(error instanceof Error) || error.message !== 'message nacked') return;
      this.inFlight.delete(entry);
      this.finish(
        entry,
        new PublishRejectedError(
          entry.request.routingKey,
          'the broker answered with a negative acknowledgement (basic.nack): a queue refused it ' +
            '(overflow policy reject-publish, or an internal error)',
        ),
      );
      return;
    }
    this.channelFailures = 0;
    this.inFlight.delete(entry);
    this.finish(entry, undefined, entry.returned ? UNROUTED : ROUTED);
  }

  /**
   * Matches a basic.return to the message it returns. AMQP gives a return no delivery tag, but
   * RabbitMQ sends it before the ack of the same message and in publish order, so it belongs to
   * the oldest unconfirmed, not yet returned message with the same exchange, routing key, message
   * id and body. Two messages that equal in all of these are interchangeable.
   */
  private returned(channel: ConfirmChannel, message: Message): void {
    const { exchange, routingKey } = message.fields as unknown as {
      exchange: string;
      routingKey: string;
    };
    const messageId = message.properties.messageId as string | undefined;
    for (const entry of this.inFlight.values()) {
      if (entry.channel !== channel || entry.returned) continue;
      const r = entry.request;
      if (
        r.exchange === exchange &&
        r.routingKey === routingKey &&
        r.options.messageId === messageId &&
        r.body.equals(message.content)
      ) {
        entry.returned = true;
        return;
      }
    }
  }

  private channelClosed(channel: ConfirmChannel, error: Error | undefined): void {
    if (this.channel === channel) this.channel = undefined;
    this.requeueInFlight(channel, error);
    const connection = this.connection.current;
    // The broker closed the channel but not the connection (404 no exchange, say): reopen.
    if (connection && error) this.reopenLater(connection);
  }

  /** Opens a new channel after a short, growing pause, so a repeating failure cannot spin the CPU. */
  private reopenLater(connection: ChannelModel): void {
    this.channelFailures++;
    const delay = Math.min(2000, 10 * 2 ** Math.min(this.channelFailures, 8));
    setTimeout(() => {
      if (this.channel || this.connection.current !== connection) return;
      this.attach(connection).catch((e: unknown) =>
        this.reportError(e, 'reopening the publish channel'),
      );
    }, delay).unref();
  }

  /**
   * Messages written to a channel that closed: either refused (the 404 of a missing exchange names
   * it) or in an unknown state. Refused ones reject; the others go back to the head of the queue,
   * in their order, to be sent again.
   */
  private requeueInFlight(channel: ConfirmChannel, error: Error | undefined): void {
    const missing = error && replyCodeOf(error) === 404 ? missingExchange(error) : undefined;
    const again: Entry[] = [];
    for (const entry of this.inFlight.values()) {
      if (entry.channel !== channel) continue;
      this.inFlight.delete(entry);
      entry.channel = undefined;
      if (error) entry.channelErrors++;
      if (missing !== undefined && entry.request.exchange === missing) {
        this.finish(
          entry,
          new PublishRejectedError(entry.request.routingKey, brokerReason(error), { cause: error }),
        );
      } else if (entry.channelErrors >= 5) {
        this.finish(
          entry,
          new PublishRejectedError(
            entry.request.routingKey,
            `the broker closed the channel ${entry.channelErrors} times while it was in flight: ${brokerReason(error)}`,
            { cause: error },
          ),
        );
      } else {
        entry.state = 'pending';
        again.push(entry);
      }
    }
    if (missing !== undefined) {
      // Queued publishes to the same exchange would only close the next channel too.
      const rest = this.pending.clear();
      const keep: Entry[] = [];
      for (const entry of rest) {
        if (entry.state !== 'pending') continue;
        if (entry.request.exchange === missing) {
          this.pendingCount--;
          this.finish(
            entry,
            new PublishRejectedError(entry.request.routingKey, brokerReason(error), {
              cause: error,
            }),
          );
        } else keep.push(entry);
      }
      for (const entry of keep) this.pending.push(entry);
    }
    this.pending.unshiftAll(again);
    this.pendingCount += again.length;
  }

  private finish(entry: Entry, error: Error | undefined, outcome?: PublishOutcome): void {
    if (entry.state === 'done') return;
    entry.state = 'done';
    entry.channel = undefined;
    if (error) entry.reject(error);
    else entry.resolve(outcome!);
    if (this.outstanding === 0 && this.idleWaiters.length > 0) {
      for (const resolve of this.idleWaiters.splice(0)) resolve();
    }
  }

  private startSweeper(): void {
    if (this.sweeper) return;
    const every = Math.max(20, Math.min(1000, Math.floor(this.options.publishTimeoutMs / 4)));
    this.sweeper = setInterval(() => this.sweep(), every);
    this.sweeper.unref();
  }

  /** Rejects publishes older than the timeout, wherever they are. Runs a few times a second. */
  private sweep(): void {
    const limit = this.options.publishTimeoutMs;
    const now = Date.now();
    for (const entry of this.inFlight.values()) {
      if (now - entry.startedAt < limit) continue;
      this.inFlight.delete(entry);
      this.finish(entry, new PublishTimeoutError(entry.request.routingKey, now - entry.startedAt));
    }
    if (this.pendingCount > 0) {
      for (const entry of this.pending.toArray()) {
        if (entry.state !== 'pending' || now - entry.startedAt < limit) continue;
        // Left in the deque and skipped when reached: removal from the middle is not worth it.
        this.pendingCount--;
        this.finish(
          entry,
          new PublishTimeoutError(entry.request.routingKey, now - entry.startedAt),
        );
      }
    }
    if (this.outstanding === 0) {
      clearInterval(this.sweeper);
      this.sweeper = undefined;
    }
  }
}

/** The exchange named by RabbitMQ's `NOT_FOUND - no exchange 'x' in vhost '/'`. */
function missingExchange(error: Error): string | undefined {
  return /no exchange '(.*)' in vhost/.exec(error.message)?.[1];
}
