import type { Consumer, Delivery } from '../transports/transport.js';
import { type DeliveryScope, processDelivery } from './delivery.js';
import type { RegisteredHandler } from './handlers.js';
import { messageLogFields } from './instrumentation.js';
import { retryInPlace } from './partitions.js';

/** One handler's share of the dispatcher: its consumer, what runs and what waits. */
export interface Lane {
  readonly handler: RegisteredHandler;
  /** The queue it consumes: the handler's, or one partition of it (`<queue>.p<i>`). */
  readonly queue: string;
  consumer: Consumer | undefined;
  running: number;
  readonly waiting: Delivery[];
}

/**
 * Whether a lane hands its queue over by releasing its consumer (a partition, on a transport that
 * can) rather than by cancelling it and requeueing what it holds one message at a time.
 */
export function releases(lane: Lane): boolean {
  return lane.handler.partitions !== undefined && lane.consumer?.release !== undefined;
}

/**
 * Flow control between the transport's deliveries and the handlers: at most `concurrency`
 * handlers of a queue run at once (the rest of its prefetch waits in order), and the service
 * knows how many messages it holds, so `stop()` can wait for them.
 */
export class Dispatcher {
  private inFlight = 0;
  private idleWaiters: (() => void)[] = [];
  private closing = false;
  /** Aborted by `close()`: ends the waits of in-place retries (partitioned handlers). */
  private readonly stopping = new AbortController();

  constructor(private readonly scope: DeliveryScope) {}

  /**
   * A lane for a handler, consuming `queue` (default: the handler's); its consumer is attached
   * once the transport starts delivering.
   */
  lane(handler: RegisteredHandler, queue = handler.queue): Lane {
    return { handler, queue, consumer: undefined, running: 0, waiting: [] };
  }

  /** Takes one delivery of a lane: runs it, or queues it behind the lane's running handlers. */
  deliver(lane: Lane, delivery: Delivery): void {
    if (this.closing) {
      // A partition's consumer is released once its running message is done: that returns every
      // delivery it holds at once and in place, so the next replica starts in order.
      if (releases(lane)) return;
      // Delivered before the cancel took effect: back to the queue for another consumer.
      delivery.requeue().catch(() => {});
      return;
    }
    this.inFlight++;
    if (lane.running >= lane.handler.concurrency) {
      lane.waiting.push(delivery);
      return;
    }
    this.run(lane, delivery);
  }

  /** How many messages the service holds: running, or waiting for a free handler. */
  get held(): number {
    return this.inFlight;
  }

  /**
   * Stops running new messages: from now on a delivery goes back to its queue, and so does a
   * waiting one when a handler of its lane finishes.
   */
  close(): void {
    this.closing = true;
    this.stopping.abort();
  }

  /** Gives the messages still waiting behind running handlers back to their queues. */
  async returnWaiting(lanes: readonly Lane[]): Promise<void> {
    for (const lane of lanes) {
      for (const d of lane.waiting.splice(0)) {
        this.inFlight--;
        // Left unsettled: releasing the consumer returns it in its place (see `deliver`).
        if (!releases(lane)) await d.requeue().catch(() => {});
      }
    }
  }

  /** Resolves true once no message is held, or false after `timeoutMs`. */
  idle(timeoutMs: number): Promise<boolean> {
    if (this.inFlight === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMs);
      this.idleWaiters.push(() => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  }

  private run(lane: Lane, delivery: Delivery): void {
    lane.running++;
    const h = lane.handler;
    let settling: Promise<void> | undefined;
    try {
      // A partition keeps its keys in order: a retry waits in place instead of letting the next
      // message of its queue overtake it.
      settling = h.partitions
        ? processDelivery(
            this.scope,
            h,
            retryInPlace(
              delivery,
              (d) => processDelivery(this.scope, h, d) ?? Promise.resolve(),
              this.stopping.signal,
            ),
          )
        : processDelivery(this.scope, h, delivery);
    } catch (error) {
      this.recover(lane, delivery, error);
      return;
    }
    // Settled within the call (the common case): no promise at all for this message.
    if (settling === undefined) this.finished(lane);
    else {
      settling.then(
        () => this.finished(lane),
        (error: unknown) => this.recover(lane, delivery, error),
      );
    }
  }

  /**
   * Something failed outside the handler (the broker refused a settle, a store threw): the
   * message must not stay unsettled, holding a prefetch slot for ever. Park it for a second
   * (attempts unchanged), else give it back; if it was settled, both refuse quietly.
   */
  private recover(lane: Lane, delivery: Delivery, error: unknown): void {
    this.scope.service.logger.error(
      `failed to settle a message of ${lane.handler.queue}; it will be delivered again`,
      { error, ...messageLogFields(delivery.message) },
    );
    delivery
      .retry(1000, {})
      .catch(() => delivery.requeue())
      .catch(() => {})
      .then(() => this.finished(lane));
  }

  /** A message of `lane` is settled: run the next one waiting, wake `idle()` waiters. */
  private finished(lane: Lane): void {
    lane.running--;
    this.inFlight--;
    const next = lane.waiting.shift();
    if (next && !this.closing) this.run(lane, next);
    else if (next) {
      this.inFlight--;
      if (!releases(lane)) next.requeue().catch(() => {});
    }
    if (this.inFlight === 0 && this.idleWaiters.length > 0) {
      for (const resolve of this.idleWaiters.splice(0)) resolve();
    }
  }
}
