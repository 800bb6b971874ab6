import type { Channel } from 'amqplib';
import type { HeaderValue } from '../../envelope/envelope.js';
import { BrokerOperationError, TopologyConflictError } from '../../errors.js';
import { deadLetterQueueName, type Topology } from '../transport.js';
import {
  deadLetterQueueArguments,
  type QueueArgumentOptions,
  type QueueArguments,
  retryQueueArguments,
  workQueueArguments,
} from './args.js';

/**
 * Retry queues per work queue: `<queue>.retry.1` … `<queue>.retry.10`. A message waiting for its
 * n-th retry waits in level n (levels past the last share it).
 */
export const MAX_RETRY_LEVEL = 10;

/**
 * The name of a queue's retry queue for one level: `<queue>.retry.<level>`. A persistent name,
 * like the work queue's.
 */
export function retryQueueName(queue: string, level: number): string {
  return `${queue}.retry.${level}`;
}

/**
 * The retry level for a message that has failed `attempts` times (the runtime's
 * `tidings-attempts` header): 1 for the first retry, capped at {@link MAX_RETRY_LEVEL}.
 *
 * Why levels: RabbitMQ expires messages only at the head of a queue, so in one shared delay queue
 * a 13 s retry would hold back a 0.5 s one behind it. Messages of one level have about the same
 * delay (the same backoff step, give or take the jitter), so none waits much past its own delay.
 */
export function retryLevel(attempts: HeaderValue): number {
  const n = typeof attempts === 'number' && Number.isFinite(attempts) ? Math.floor(attempts) : 1;
  return Math.min(MAX_RETRY_LEVEL, Math.max(1, n));
}

/** One thing to create on the broker. */
export type Declaration =
  | { readonly kind: 'exchange'; readonly name: string }
  | {
      readonly kind: 'queue';
      readonly name: string;
      readonly role: 'work' | 'dead-letter' | 'retry';
      readonly arguments: QueueArguments;
    }
  | {
      readonly kind: 'binding';
      readonly queue: string;
      readonly exchange: string;
      readonly pattern: string;
    };

/**
 * Everything a topology means on RabbitMQ, in the order it must be declared: durable topic
 * exchanges (those named by bindings too), then per queue its dead-letter queue, the work queue,
 * its retry queues of the given levels, and its bindings. Pure, so the CLI can print it and tests
 * can check it; {@link applyDeclarations} sends it.
 */
export function planTopology(
  topology: Topology,
  o: QueueArgumentOptions,
  retryLevels: (queue: string) => Iterable<number> = () => [],
): Declaration[] {
  const out: Declaration[] = [];
  const exchanges = new Set(topology.exchanges);
  for (const q of topology.queues) for (const b of q.bindings) exchanges.add(b.exchange);
  for (const name of exchanges) out.push({ kind: 'exchange', name });
  for (const q of topology.queues) {
    out.push(deadLetterQueueDeclaration(q.name, o));
    out.push({
      kind: 'queue',
      name: q.name,
      role: 'work',
      arguments: workQueueArguments(q.name, o),
    });
    for (const level of retryLevels(q.name)) out.push(retryQueueDeclaration(q.name, level, o));
    for (const b of q.bindings) {
      out.push({ kind: 'binding', queue: q.name, exchange: b.exchange, pattern: b.pattern });
    }
  }
  return out;
}

/** The declaration of `<queue>.retry.<level>`. */
export function retryQueueDeclaration(
  queue: string,
  level: number,
  o: QueueArgumentOptions,
): Declaration {
  return {
    kind: 'queue',
    name: retryQueueName(queue, level),
    role: 'retry',
    arguments: retryQueueArguments(queue, o),
  };
}

/** The declaration of `<queue>.dlq`. */
export function deadLetterQueueDeclaration(queue: string, o: QueueArgumentOptions): Declaration {
  return {
    kind: 'queue',
    name: deadLetterQueueName(queue),
    role: 'dead-letter',
    arguments: deadLetterQueueArguments(o),
  };
}

/** Every queue a work queue may come with, for deletion: itself, its DLQ and all retry levels. */
export function queuesOf(queue: string): string[] {
  const names = [queue, deadLetterQueueName(queue)];
  for (let level = 1; level <= MAX_RETRY_LEVEL; level++) names.push(retryQueueName(queue, level));
  return names;
}

/**
 * Sends declarations one by one on `channel`, which should be a channel of its own: when
 * RabbitMQ refuses one it closes the channel. A refusal because the entity exists with other
 * arguments becomes a `TopologyConflictError` naming the entity and the difference; any other a
 * `BrokerOperationError`.
 */
export async function applyDeclarations(
  channel: Channel,
  declarations: readonly Declaration[],
): Promise<void> {
  for (const d of declarations) {
    try {
      if (d.kind === 'exchange') {
        await channel.assertExchange(d.name, 'topic', {
          durable: true,
          autoDelete: false,
          internal: false,
        });
      } else if (d.kind === 'queue') {
        await channel.assertQueue(d.name, {
          durable: true,
          exclusive: false,
          autoDelete: false,
          arguments: { ...d.arguments },
        });
      } else {
        await channel.bindQueue(d.queue, d.exchange, d.pattern);
      }
    } catch (error) {
      throw declarationError(d, error);
    }
  }
}

function describe(d: Declaration): string {
  if (d.kind === 'exchange') return `declare exchange "${d.name}"`;
  if (d.kind === 'queue') return `declare ${d.role} queue "${d.name}"`;
  return `bind queue "${d.queue}" to exchange "${d.exchange}" with "${d.pattern}"`;
}

function declarationError(d: Declaration, error: unknown): Error {
  const conflict = parseConflict(error);
  if (conflict)
    return new TopologyConflictError(conflict.entity, conflict.difference, { cause: error });
  return brokerError(describe(d), error);
}

/** Wraps an amqplib error of a broker operation in a `BrokerOperationError`. */
export function brokerError(operation: string, error: unknown): BrokerOperationError {
  return new BrokerOperationError(operation, replyCodeOf(error), brokerReason(error), {
    cause: error,
  });
}

/** The AMQP reply code carried by an amqplib channel or connection error, if any. */
export function replyCodeOf(error: unknown): number | undefined {
  const code = (error as { code?: unknown } | undefined)?.code;
  return typeof code === 'number' ? code : undefined;
}

/** RabbitMQ's own words from an amqplib error: `NOT_FOUND - no queue 'q' in vhost '/'`. */
export function brokerReason(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  const quoted = /with message "(.*)"\s*$/s.exec(message);
  return quoted ? quoted[1]! : message;
}

const INEQUIVALENT =
  /inequivalent arg '([^']+)' for (queue|exchange) '(.*)' in vhost '(.*)': received (.+) but current is (.+)$/s;

/**
 * Reads RabbitMQ's PRECONDITION_FAILED text ("inequivalent arg 'x-queue-type' for queue 'q' in
 * vhost '/': received 'classic' but current is 'quorum'") into the entity and a sentence saying
 * what differs and what to do. Undefined when the error is not such a conflict.
 */
export function parseConflict(error: unknown): { entity: string; difference: string } | undefined {
  if (replyCodeOf(error) !== 406 && !/PRECONDITION/.test(String((error as Error)?.message))) {
    return undefined;
  }
  const m = INEQUIVALENT.exec(brokerReason(error));
  if (!m) return undefined;
  const [, arg, kind, name, vhost, received, current] = m as unknown as string[];
  const entity = `${kind} "${name}" in vhost "${vhost}"`;
  const onBroker = describeValue(arg!, current!);
  const wanted = describeValue(arg!, received!);
  let difference = `${arg} is ${onBroker} on the broker, but Tidings declares ${wanted}`;
  if (arg === 'x-queue-type') {
    difference +=
      " (a queue's type cannot change: set the transport's queueType to match, or drain and delete the queue)";
  }
  return { entity, difference };
}

function describeValue(arg: string, raw: string): string {
  const text = raw.trim().replace(/"$/, '');
  if (text === 'none') {
    return arg === 'x-queue-type' ? 'not set (a classic queue)' : 'not set';
  }
  const typed = /^the value '(.*)' of type '(.*)'$/s.exec(text);
  if (typed) return `'${typed[1]}'`;
  return text;
}
