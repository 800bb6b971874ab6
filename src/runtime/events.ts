import type { DeadLetterReason, Envelope } from '../envelope/envelope.js';
import type { Logger } from '../logger.js';

/** Lifecycle and per-message events a service emits, for logging and tracing. */
export interface ServiceEvents {
  /** A handler finished and the message was acknowledged. `payload` is what the handler got. */
  handled: {
    service: string;
    queue: string;
    envelope: Envelope;
    payload: unknown;
    durationMs: number;
  };
  /** A handler threw; `willRetry` says whether another attempt is scheduled. */
  failed: {
    service: string;
    queue: string;
    envelope: Envelope;
    error: unknown;
    attempt: number;
    willRetry: boolean;
  };
  /** A message went to the dead-letter queue. */
  'dead-lettered': {
    service: string;
    queue: string;
    reason: DeadLetterReason;
    routingKey: string;
    messageId: string | undefined;
    error: string;
  };
  /** A message was accepted by the broker. `payload` is the validated value that was sent. */
  published: { service: string; envelope: Envelope; payload: unknown; routed: boolean };
  /** A message whose id the idempotency store knew as processed was acknowledged unhandled. */
  duplicate: { service: string; queue: string; envelope: Envelope };
}

/** A listener of one {@link ServiceEvents} event. */
export type Listener<T> = (event: T) => void;

/**
 * The listeners of one service. A listener that throws is logged and never disturbs the message
 * being handled; `has` lets the hot path skip building an event nobody listens to.
 */
export class Observers {
  private readonly listeners: { [K in keyof ServiceEvents]?: Listener<ServiceEvents[K]>[] } = {};

  constructor(private readonly logger: Logger) {}

  /** Adds a listener; returns a function that removes it. */
  add<K extends keyof ServiceEvents>(name: K, listener: Listener<ServiceEvents[K]>): () => void {
    const list = (this.listeners[name] ?? []) as Listener<ServiceEvents[K]>[];
    this.listeners[name] = list as (typeof this.listeners)[K];
    list.push(listener);
    return () => {
      const i = list.indexOf(listener);
      if (i >= 0) list.splice(i, 1);
    };
  }

  /** Whether anyone listens to `name`. */
  has(name: keyof ServiceEvents): boolean {
    return (this.listeners[name]?.length ?? 0) > 0;
  }

  emit<K extends keyof ServiceEvents>(name: K, event: ServiceEvents[K]): void {
    const list = this.listeners[name];
    if (!list) return;
    for (const listener of list) {
      try {
        listener(event);
      } catch (error) {
        this.logger.error(`a "${name}" listener threw`, { error });
      }
    }
  }
}
