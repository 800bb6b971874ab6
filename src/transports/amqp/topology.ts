import type { Channel } from 'amqplib';
import { MAX_PARTITIONS } from '../../contracts/key.js';
import { HEADERS, type HeaderValue } from '../../envelope/envelope.js';
import { BrokerOperationError, TopologyConflictError } from '../../errors.js';
import {
  deadLetterQueueName,
  partitionBuckets,
  partitionExchangeName,
  partitionQueueName,
  type QueueSpec,
  type Topology,
  unkeyedExchangeName,
} from '../transport.js';
import {
  deadLetterQueueArguments,
  partitionExchangeArguments,
  partitionQueueArguments,
  type QueueArgumentOptions,
  type QueueArguments,
  retryQueueArguments,
  workQueueArguments,
} from './args.js';
import { closeQuietly } from './connection.js';

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

/** The exchange types Tidings declares. */
export type ExchangeType = 'topic' | 'headers' | 'fanout';

/** One thing to create on the broker (or, for `exchange-delete`, to remove). */
export type Declaration =
  | {
      readonly kind: 'exchange';
      readonly name: string;
      /** @defaultValue 'topic' */
      readonly type?: ExchangeType;
      readonly arguments?: QueueArguments;
    }
  | {
      readonly kind: 'queue';
      readonly name: string;
      readonly role: 'work' | 'dead-letter' | 'retry' | 'partition';
      readonly arguments: QueueArguments;
    }
  | {
      readonly kind: 'binding';
      readonly queue: string;
      readonly exchange: string;
      readonly pattern: string;
      /** A headers exchange's match arguments (`x-match` and the headers). */
      readonly arguments?: Readonly<Record<string, string>>;
    }
  | {
      readonly kind: 'exchange-binding';
      readonly destination: string;
      readonly source: string;
      readonly pattern: string;
    }
  | { readonly kind: 'exchange-delete'; readonly name: string };

/**
 * Everything a topology means on RabbitMQ, in the order it must be declared: durable topic
 * exchanges (those named by bindings too), then per queue the work queue, its dead-letter queue,
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
    if (q.partitions !== undefined) {
      out.push(...planPartitions(q, q.partitions, o, retryLevels));
      continue;
    }
    // The work queue first: if it exists with other arguments (the usual drift), nothing of this
    // queue has been created when the declaration fails.
    out.push({
      kind: 'queue',
      name: q.name,
      role: 'work',
      arguments: workQueueArguments(q.name, o),
    });
    out.push(deadLetterQueueDeclaration(q.name, o));
    for (const level of retryLevels(q.name)) out.push(retryQueueDeclaration(q.name, level, o));
    for (const b of q.bindings) {
      out.push({ kind: 'binding', queue: q.name, exchange: b.exchange, pattern: b.pattern });
    }
  }
  return out;
}

/**
 * A partitioned queue (`QueueSpec.partitions`) on RabbitMQ, without a plugin:
 *
 * - `<queue>.p0` … `<queue>.p<n-1>`: work queues with a single active consumer, dead-lettering
 *   to the shared `<queue>.dlq` (declared first, since the partitions name it);
 * - `<queue>.unkeyed`: a fanout exchange feeding `<queue>.p0`;
 * - `<queue>.partition.<n>`: a headers exchange, alternate exchange `<queue>.unkeyed`, with one
 *   binding per bucket (`x-match: all`, `tidings-bucket: "<b>"`) to the bucket's partition;
 * - exchange-to-exchange bindings from each event exchange to it, with the queue's patterns;
 * - last, the deletion of the partition exchanges of every other count (so a changed count never
 *   leaves an old exchange delivering the same message to a second partition). Deleting an
 *   exchange that does not exist is not an error.
 */
function planPartitions(
  q: QueueSpec,
  count: number,
  o: QueueArgumentOptions,
  retryLevels: (queue: string) => Iterable<number>,
): Declaration[] {
  const out: Declaration[] = [];
  const dlq = deadLetterQueueName(q.name);
  const unkeyed = unkeyedExchangeName(q.name);
  const split = partitionExchangeName(q.name, count);
  out.push(deadLetterQueueDeclaration(q.name, o));
  const buckets = partitionBuckets(count);
  for (let i = 0; i < count; i++) {
    const name = partitionQueueName(q.name, i);
    out.push({
      kind: 'queue',
      name,
      role: 'partition',
      arguments: partitionQueueArguments(dlq, o),
    });
    for (const level of retryLevels(name)) out.push(retryQueueDeclaration(name, level, o));
  }
  out.push({ kind: 'exchange', name: unkeyed, type: 'fanout' });
  out.push({
    kind: 'binding',
    queue: partitionQueueName(q.name, 0),
    exchange: unkeyed,
    pattern: '',
  });
  out.push({
    kind: 'exchange',
    name: split,
    type: 'headers',
    arguments: partitionExchangeArguments(unkeyed),
  });
  buckets.forEach((list, i) => {
    for (const bucket of list) {
      out.push({
        kind: 'binding',
        queue: partitionQueueName(q.name, i),
        exchange: split,
        pattern: '',
        arguments: { 'x-match': 'all', [HEADERS.bucket]: String(bucket) },
      });
    }
  });
  for (const b of q.bindings) {
    out.push({
      kind: 'exchange-binding',
      destination: split,
      source: b.exchange,
      pattern: b.pattern,
    });
  }
  for (let other = 1; other <= MAX_PARTITIONS; other++) {
    if (other !== count) {
      out.push({ kind: 'exchange-delete', name: partitionExchangeName(q.name, other) });
    }
  }
  return out;
}

/**
 * Every queue a partitioned queue may come with, for deletion: each partition with its retry
 * levels, and the shared dead-letter queue.
 */
export function partitionedQueuesOf(queue: string, count: number): string[] {
  const names = [deadLetterQueueName(queue)];
  for (let i = 0; i < count; i++) {
    const p = partitionQueueName(queue, i);
    names.push(p);
    for (let level = 1; level <= MAX_RETRY_LEVEL; level++) names.push(retryQueueName(p, level));
  }
  return names;
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

/** Opens a fresh channel; the caller closes it. */
export type ChannelSource = () => Promise<Channel>;

/**
 * Sends declarations one by one on a channel of their own: when RabbitMQ refuses one it closes
 * the channel. A refusal because the entity exists with other arguments becomes a
 * `TopologyConflictError` naming the entity and every difference; any other a
 * `BrokerOperationError`. Nothing is changed on the broker by a refused declaration.
 */
export async function applyDeclarations(
  open: ChannelSource,
  declarations: readonly Declaration[],
): Promise<void> {
  const channel = await open();
  try {
    for (const d of declarations) {
      try {
        await declareOne(channel, d);
      } catch (error) {
        throw await declarationError(open, d, error);
      }
    }
  } finally {
    await closeQuietly(channel);
  }
}

interface QueueShape {
  durable: boolean;
  exclusive: boolean;
  autoDelete: boolean;
  arguments: Record<string, unknown>;
}

function shapeOf(d: Declaration & { kind: 'queue' }): QueueShape {
  return { durable: true, exclusive: false, autoDelete: false, arguments: { ...d.arguments } };
}

async function declareOne(channel: Channel, d: Declaration, shape?: QueueShape): Promise<void> {
  if (d.kind === 'exchange') {
    await channel.assertExchange(d.name, d.type ?? 'topic', {
      durable: true,
      autoDelete: false,
      internal: false,
      ...(d.arguments ? { arguments: { ...d.arguments } } : {}),
    });
  } else if (d.kind === 'queue') {
    await channel.assertQueue(d.name, shape ?? shapeOf(d));
  } else if (d.kind === 'binding') {
    await channel.bindQueue(d.queue, d.exchange, d.pattern, d.arguments);
  } else if (d.kind === 'exchange-binding') {
    await channel.bindExchange(d.destination, d.source, d.pattern);
  } else {
    await channel.deleteExchange(d.name);
  }
}

function describe(d: Declaration): string {
  if (d.kind === 'exchange') return `declare ${d.type ?? 'topic'} exchange "${d.name}"`;
  if (d.kind === 'queue') return `declare ${d.role} queue "${d.name}"`;
  if (d.kind === 'exchange-binding') {
    return `bind exchange "${d.destination}" to exchange "${d.source}" with "${d.pattern}"`;
  }
  if (d.kind === 'exchange-delete') return `delete exchange "${d.name}"`;
  const args = d.arguments ? ` and ${JSON.stringify(d.arguments)}` : '';
  return `bind queue "${d.queue}" to exchange "${d.exchange}" with "${d.pattern}"${args}`;
}

async function declarationError(
  open: ChannelSource,
  d: Declaration,
  error: unknown,
): Promise<Error> {
  const first = parseInequivalence(error);
  if (!first) return brokerError(describe(d), error);
  const found = d.kind === 'queue' ? await allDifferences(open, d, first) : [first];
  return new TopologyConflictError(first.entity, describeDifferences(found), { cause: error });
}

/**
 * RabbitMQ names only the first argument that differs. To name them all, declare again with the
 * broker's value for each one reported so far: the next refusal names the next difference, and
 * success means there is none left. Such a declaration matches the existing queue, so it changes
 * nothing. Each refusal costs a channel, hence the bound.
 */
async function allDifferences(
  open: ChannelSource,
  d: Declaration & { kind: 'queue' },
  first: Inequivalence,
): Promise<Inequivalence[]> {
  const shape = shapeOf(d);
  const all = [first];
  for (let i = 0; i < 12; i++) {
    const last = all[all.length - 1]!;
    adopt(shape, last);
    let channel: Channel;
    try {
      channel = await open();
    } catch {
      break;
    }
    let next: Inequivalence | undefined;
    try {
      await declareOne(channel, d, shape);
      await closeQuietly(channel);
    } catch (error) {
      next = parseInequivalence(error);
      if (next?.arg === last.arg) break;
    }
    // Declaring without the argument got past it: the broker's queue does not have it.
    if (last.current.unknown) all[all.length - 1] = { ...last, current: NOT_SET };
    if (!next || all.some((f) => f.arg === next.arg)) break;
    all.push(next);
  }
  return all;
}

const NOT_SET: ArgumentValue = { text: 'none', absent: true, value: undefined };

function adopt(shape: QueueShape, difference: Inequivalence): void {
  const { arg, current } = difference;
  if (arg === 'durable' || arg === 'exclusive' || arg === 'auto_delete') {
    const key = arg === 'auto_delete' ? 'autoDelete' : arg;
    shape[key] = current.value === true || current.value === 'true';
  } else if (current.absent || current.unknown) {
    // An unknown value (a cut message) is most often an argument the queue was declared without.
    delete shape.arguments[arg];
  } else {
    shape.arguments[arg] = current.value;
  }
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

/** What RabbitMQ's "inequivalent arg" refusal says, taken apart. */
interface Inequivalence {
  readonly arg: string;
  readonly entity: string;
  readonly received: ArgumentValue;
  readonly current: ArgumentValue;
}

interface ArgumentValue {
  /** As RabbitMQ printed it. */
  readonly text: string;
  readonly absent: boolean;
  /** RabbitMQ's message was cut before the value. */
  readonly unknown?: boolean;
  readonly value: string | number | boolean | undefined;
}

const INEQUIVALENT =
  /inequivalent arg '([^']+)' for (queue|exchange) '(.*?)' in vhost '(.*?)': received (.+)$/s;

/**
 * RabbitMQ cuts reply texts at 255 bytes, so with long names the broker's value ("but current is
 * …") may be missing; it is then reported as unknown.
 */
function parseInequivalence(error: unknown): Inequivalence | undefined {
  if (replyCodeOf(error) !== 406 && !/PRECONDITION/.test(String((error as Error)?.message))) {
    return undefined;
  }
  const m = INEQUIVALENT.exec(brokerReason(error));
  if (!m) return undefined;
  const [, arg, kind, name, vhost, rest] = m as unknown as string[];
  const at = rest!.indexOf(' but current is ');
  let received: string;
  let current: ArgumentValue;
  if (at >= 0) {
    received = rest!.slice(0, at);
    current = parseValue(rest!.slice(at + ' but current is '.length));
  } else {
    const cut = rest!.lastIndexOf(' but');
    received = cut >= 0 ? rest!.slice(0, cut) : rest!.replace(/\.\.\.$/, '');
    current = { text: 'unknown', absent: false, unknown: true, value: undefined };
  }
  return {
    arg: arg!,
    entity: `${kind} "${name}" in vhost "${vhost}"`,
    received: parseValue(received),
    current,
  };
}

const NUMERIC = /^(long|signedint|short|byte|unsignedbyte|unsignedshort|unsignedint|double|float)$/;

function parseValue(raw: string): ArgumentValue {
  const text = raw.trim().replace(/"$/, '');
  if (text === 'none') return { text, absent: true, value: undefined };
  if (text.endsWith('...')) return { text, absent: false, unknown: true, value: undefined };
  const typed = /^the value '(.*)' of type '(.*)'$/s.exec(text);
  if (typed) {
    const [, v, type] = typed as unknown as [string, string, string];
    if (NUMERIC.test(type)) return { text, absent: false, value: Number(v) };
    if (type === 'bool') return { text, absent: false, value: v === 'true' };
    return { text, absent: false, value: v };
  }
  const quoted = /^'(.*)'$/s.exec(text);
  return { text, absent: false, value: quoted ? quoted[1] : text };
}

function describeDifferences(found: readonly Inequivalence[]): string {
  const parts = found.map(
    (f) =>
      `${f.arg} is ${describeValue(f.arg, f.current)} on the broker, but Tidings declares ${describeValue(f.arg, f.received)}`,
  );
  let text = parts.join('; ');
  if (found.some((f) => f.arg === 'x-queue-type')) {
    text +=
      " (a queue's type cannot change: set the transport's queueType to match, or drain and delete the queue)";
  }
  return text;
}

/**
 * Reads RabbitMQ's PRECONDITION_FAILED text ("inequivalent arg 'x-queue-type' for queue 'q' in
 * vhost '/': received 'classic' but current is 'quorum'") into the entity and a sentence saying
 * what differs. Undefined when the error is not such a conflict.
 */
export function parseConflict(error: unknown): { entity: string; difference: string } | undefined {
  const found = parseInequivalence(error);
  return found && { entity: found.entity, difference: describeDifferences([found]) };
}

function describeValue(arg: string, v: ArgumentValue): string {
  if (v.unknown) return 'different (RabbitMQ cut its message short)';
  if (v.absent) return arg === 'x-queue-type' ? 'not set (a classic queue)' : 'not set';
  return `'${String(v.value)}'`;
}
