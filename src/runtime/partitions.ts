import {
  type AnyEvent,
  describeKeyValue,
  type EventVersion,
  isKeyed,
  keyOf,
} from '../contracts/event.js';
import { keyText, MAX_PARTITIONS } from '../contracts/key.js';
import type { HeaderValue, IncomingMessage } from '../envelope/envelope.js';
import { PartitionKeyError } from '../errors.js';
import { type Delivery, partitionQueueName } from '../transports/transport.js';

/**
 * Partitioned subscriptions: one handler spread over N queues, each key's messages in one of
 * them, in order. The producer only puts the key on its messages (from the contract); the
 * consumer's transport routes them by the key's bucket to `<queue>.p<i>`, and the runtime runs
 * one message at a time per partition, retrying in place so a retry never lets a later message
 * of the same key overtake it. See docs/scaling.md.
 *
 * @module
 */

/** How a handler is spread over partitions (the `partitions` handler option). */
export interface PartitionOptions {
  /** How many partition queues, 1 … 64. A persistent choice: see docs/scaling.md before changing it. */
  readonly count: number;
  /**
   * The partitions this process consumes, for spreading the active partitions over replicas by
   * hand (each replica a disjoint share). Every partition queue has at most one active consumer
   * whatever this says, so overlapping shares are safe: the extra consumers wait as standbys.
   * @defaultValue every partition, 0 … count − 1
   */
  readonly consume?: readonly number[] | undefined;
}

/** Partition settings with defaults filled in. */
export interface ResolvedPartitions {
  readonly count: number;
  /** The partitions this process consumes, in order. */
  readonly consume: readonly number[];
}

/**
 * The key a message travels with: the publish's `key` option when given, else the contract's
 * key of the validated payload, else none. Throws `PartitionKeyError` for a key that is not a
 * non-empty string or a finite number.
 */
export function messageKey(
  spec: EventVersion,
  payload: unknown,
  explicit: string | number | undefined,
): string | undefined {
  if (explicit === undefined) return spec.key ? keyOf(spec, payload) : undefined;
  const text = keyText(explicit);
  if (text === undefined) {
    throw new PartitionKeyError(
      spec.routingKey,
      `the key option must be a non-empty string or a finite number (got ${describeKeyValue(explicit)})`,
    );
  }
  return text;
}

/**
 * Checks the `partitions` option of a handler for `events`, adding what is wrong to `problems`.
 * Undefined when the handler is not partitioned.
 */
export function resolvePartitions(
  option: number | PartitionOptions | undefined,
  concurrency: number | undefined,
  events: readonly AnyEvent[],
  problems: string[],
): ResolvedPartitions | undefined {
  if (option === undefined) return undefined;
  const count = typeof option === 'number' ? option : option?.count;
  if (
    typeof count !== 'number' ||
    !Number.isInteger(count) ||
    count < 1 ||
    count > MAX_PARTITIONS
  ) {
    problems.push(
      `partitions must be an integer from 1 to ${MAX_PARTITIONS} (got ${String(count)})`,
    );
    return undefined;
  }
  const all = Array.from({ length: count }, (_, i) => i);
  let consume: readonly number[] = all;
  if (typeof option === 'object' && option.consume !== undefined) {
    const wanted = option.consume;
    const bad = Array.isArray(wanted)
      ? wanted.filter((p) => !Number.isInteger(p) || p < 0 || p >= count)
      : [wanted];
    if (bad.length > 0 || !Array.isArray(wanted) || wanted.length === 0) {
      problems.push(
        `partitions.consume must list partitions from 0 to ${count - 1} (got ${JSON.stringify(wanted)})`,
      );
    } else {
      consume = [...new Set(wanted)].sort((a, b) => a - b);
    }
  }
  if (concurrency !== undefined && concurrency !== 1) {
    problems.push(
      `concurrency must be 1 for a partitioned handler (got ${concurrency}): each partition runs one message at a time to keep its keys in order; add partitions for more parallelism`,
    );
  }
  const unkeyed = events.filter((e) => !isKeyed(e));
  if (unkeyed.length > 0) {
    problems.push(
      `partitions need keyed events, and ${unkeyed
        .map((e) => `${e.exchange.name}.${e.name}`)
        .join(
          ', ',
        )} has no key: give it one in the contract (defineEvent(exchange, name, schema, { key: (payload) => payload.customerId }))`,
    );
  }
  return { count, consume };
}

/** The queues a partitioned handler consumes: `<queue>.p<i>` for each of its partitions. */
export function consumedQueues(queue: string, partitions: ResolvedPartitions): string[] {
  return partitions.consume.map((i) => partitionQueueName(queue, i));
}

/**
 * A delivery whose retries happen in place: `retry(delay, headers)` keeps the message unsettled
 * (so it keeps its place at the head of its partition, and a crash gives it back there), waits
 * `delay`, then runs `rerun` with the same message and the retry's headers merged in (so the
 * attempt count and the failure history go on). When `stopping` is aborted during the wait, the
 * message goes back to its queue instead, untouched. Every other way of settling goes to the
 * delivery itself.
 */
export function retryInPlace(
  delivery: Delivery,
  rerun: (delivery: Delivery) => Promise<void>,
  stopping: AbortSignal,
  message: IncomingMessage = delivery.message,
): Delivery {
  return {
    message,
    queue: delivery.queue,
    ack: () => delivery.ack(),
    requeue: () => delivery.requeue(),
    deadLetter: (headers) => delivery.deadLetter(headers),
    async retry(delayMs: number, headers: Record<string, HeaderValue>): Promise<void> {
      if (!(await wait(delayMs, stopping))) return delivery.requeue();
      const next: IncomingMessage = {
        ...message,
        properties: {
          ...message.properties,
          headers: { ...message.properties.headers, ...headers },
        },
      };
      return rerun(retryInPlace(delivery, rerun, stopping, next));
    },
  };
}

/** Resolves true after `ms`, or false as soon as `signal` is aborted. */
function wait(ms: number, signal: AbortSignal): Promise<boolean> {
  if (signal.aborted) return Promise.resolve(false);
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve(true);
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      resolve(false);
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
