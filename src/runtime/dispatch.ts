import type { Consumer, Delivery } from '../transports/transport.js';
import { type DeliveryScope, processDelivery } from './delivery.js';
import type { RegisteredHandler } from './handlers.js';

/** One handler's share of the dispatcher: its consumer, what runs and what waits. */
export interface Lane {
  readonly handler: RegisteredHandler;
  consumer: Consumer | undefined;
  running: number;
  readonly waiting: Delivery[];
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

  constructor(private readonly scope: DeliveryScope) {}

  /** A lane for a handler; its consumer is attached once the transport starts delivering. */
  lane(handler: RegisteredHandler): Lane {
    return { handler, consumer: undefined, running: 0, waiting: [] };
  }

  /** Takes one delivery of a lane: runs it, or queues it behind the lane's running handlers. */
  deliver(lane: Lane, delivery: Delivery): void {
    if (this.closing) {
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
  }

  /** Gives the messages still waiting behind running handlers back to their queues. */
  async returnWaiting(lanes: readonly Lane[]): Promise<void> {
    for (const lane of lanes) {
      for (const d of lane.waiting.splice(0)) {
        this.inFlight--;
        await d.requeue().catch(() => {});
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
    let settling: Promise<void> | undefined;
    try {
      settling = processDelivery(this.scope, lane.handler, delivery);
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
      { error },
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
      next.requeue().catch(() => {});
    }
    if (this.inFlight === 0 && this.idleWaiters.length > 0) {
      for (const resolve of this.idleWaiters.splice(0)) resolve();
    }
  }
}
