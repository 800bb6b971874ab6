/**
 * Which of the transport's two connections an event is about. Publishing (and declaring) and
 * consuming use separate connections, as RabbitMQ recommends: when the broker blocks publishers
 * (memory or disk alarm), consumers can still acknowledge and drain queues.
 */
export type ConnectionRole = 'publish' | 'consume';

/** Lifecycle events of an {@link AmqpTransport}, for logs and metrics. Errors carry no password. */
export interface AmqpTransportEvents {
  /** A connection is open (again, when `reconnected`). */
  connected: { connection: ConnectionRole; url: string; reconnected: boolean };
  /** A connection was lost; the transport is reconnecting. */
  disconnected: { connection: ConnectionRole; url: string; error: Error | undefined };
  /** A connection attempt failed; the next one starts in `delayMs`. */
  reconnecting: { connection: ConnectionRole; attempt: number; delayMs: number; error: Error };
  /** The broker stopped reading from a connection (resource alarm); publishes wait. */
  blocked: { connection: ConnectionRole; reason: string };
  /** The broker reads from the connection again. */
  unblocked: { connection: ConnectionRole };
  /** Exchanges and queues were declared: by `declare()`, or re-declared after a reconnection (`restored`). */
  'topology-declared': {
    exchanges: readonly string[];
    queues: readonly string[];
    restored: boolean;
  };
  /**
   * The broker cancelled a consumer (its queue was deleted, for instance). `resuming` says whether
   * the transport re-declares the queue and consumes again (it does for queues it declared).
   */
  'consumer-cancelled': { queue: string; resuming: boolean };
  /** A consumer consumes again after a reconnection, a cancellation or a channel error. */
  'consumer-resumed': { queue: string; after: 'reconnection' | 'cancellation' | 'channel-error' };
  /** Something failed in the background (no caller to reject), e.g. re-declaring topology. */
  error: { error: Error; during: string };
}

export { TypedEvents, type Unsubscribe } from '../../emitter.js';
