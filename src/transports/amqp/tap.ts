import type { Channel, ChannelModel } from 'amqplib';
import type { IncomingMessage } from '../../envelope/envelope.js';
import { StateError } from '../../errors.js';
import type { QueueStats, Tap, TapOptions } from '../transport.js';
import { tapQueueArguments } from './args.js';
import { closeQuietly, sanitizeError } from './connection.js';
import { toIncoming } from './consumer.js';
import { brokerError, replyCodeOf } from './topology.js';

/**
 * Opens a tap on `connection` (see `Transport.tap`): a channel of its own, a server-named,
 * exclusive, auto-delete, non-durable queue bounded by `x-max-length` (oldest dropped), bound to
 * `exchange` with `pattern`, consumed without acks. Closing the channel deletes the queue (it
 * loses its only consumer), and so does losing the connection (it is exclusive).
 */
export async function openTap(
  connection: ChannelModel,
  exchange: string,
  pattern: string,
  onMessage: (message: IncomingMessage) => void,
  options: TapOptions & { readonly password: string; readonly onError: (error: unknown) => void },
): Promise<Tap> {
  const channel = await connection.createChannel();
  let ready = false;
  let closing = false;
  let failure: Error | undefined;
  channel.on('error', (error: Error) => {
    failure = error;
  });
  channel.on('close', () => {
    // A refusal while setting up rejects the call instead.
    if (closing || !ready) return;
    closing = true;
    const why = failure ?? new Error('the connection to RabbitMQ was lost');
    options.onEnd?.(sanitizeError(why, options.password));
  });
  try {
    const { queue } = await channel.assertQueue('', {
      exclusive: true,
      autoDelete: true,
      durable: false,
      arguments: tapQueueArguments(Math.max(1, Math.floor(options.maxLength ?? 1000))),
    });
    await channel.bindQueue(queue, exchange, pattern);
    await channel.consume(
      queue,
      (raw) => {
        if (!raw) return; // Cancelled by the broker: the 'close' that follows reports it.
        try {
          onMessage(toIncoming(raw));
        } catch (error) {
          options.onError(error);
        }
      },
      { noAck: true },
    );
    ready = true;
  } catch (error) {
    closing = true;
    await closeQuietly(channel);
    if (replyCodeOf(error) === 404) {
      throw new StateError(`Cannot tap exchange "${exchange}": it does not exist`);
    }
    throw brokerError(`tap exchange "${exchange}"`, sanitizeError(error, options.password));
  }
  return {
    async close() {
      if (closing) return;
      closing = true;
      await closeQuietly(channel);
    },
  };
}

/**
 * Reads queue numbers with passive declares (`checkQueue`) on one channel, one at a time: a
 * passive declare of a missing queue closes its channel, so the next one opens a fresh channel.
 */
export class QueueInspector {
  private channel: Channel | undefined;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly connection: () => Promise<ChannelModel>,
    private readonly password: string,
  ) {}

  stats(name: string): Promise<QueueStats | undefined> {
    const next = this.queue.then(() => this.check(name));
    this.queue = next.catch(() => {});
    return next;
  }

  private async check(name: string): Promise<QueueStats | undefined> {
    const channel = await this.open();
    try {
      const ok = await channel.checkQueue(name);
      return { messages: ok.messageCount, consumers: ok.consumerCount };
    } catch (error) {
      this.channel = undefined;
      if (replyCodeOf(error) === 404) return undefined;
      throw brokerError(`inspect queue "${name}"`, sanitizeError(error, this.password));
    }
  }

  private async open(): Promise<Channel> {
    if (this.channel) return this.channel;
    const connection = await this.connection();
    const channel = await connection.createChannel();
    channel.on('error', () => {});
    channel.on('close', () => {
      if (this.channel === channel) this.channel = undefined;
    });
    this.channel = channel;
    return channel;
  }

  /** Closes the channel, if open. */
  async close(): Promise<void> {
    const channel = this.channel;
    this.channel = undefined;
    if (channel) await closeQuietly(channel);
  }
}
