import {
  AckPolicy,
  type ConsumerConfig,
  type ConsumerInfo,
  DeliverPolicy,
  DiscardPolicy,
  JetStreamApiError,
  type JetStreamManager,
  RetentionPolicy,
  StorageType,
  type StreamConfig,
  type StreamInfo,
} from '@nats-io/jetstream';
import {
  BrokerOperationError,
  TopologyConflictError,
  UnsupportedBindingError,
} from '../../errors.js';
import type { Logger } from '../../logger.js';
import { deadLetterQueueName, type QueueSpec, type Topology } from '../transport.js';
import {
  bindingConsumerName,
  bindingConsumerPrefix,
  exchangeSpace,
  exchangeStreamName,
  overlaps,
  patternFilter,
  placeholderSubject,
  queueConsumerName,
  queueStreamName,
  queueSubject,
  streamSubjects,
  subsumes,
  withoutSubsumed,
} from './subjects.js';

/** JetStream API error codes the transport tells apart. */
export const API = {
  consumerNotFound: 10014,
  streamNotFound: 10059,
  streamNameInUse: 10058,
  filterNotSubset: 10093,
} as const;

/** The JetStream API error code of an error, if it is one. */
export function apiCode(error: unknown): number | undefined {
  return error instanceof JetStreamApiError ? error.code : undefined;
}

/** What the topology functions need: the manager, the namespace and the queue settings. */
export interface TopologyContext {
  readonly jsm: JetStreamManager;
  readonly namespace: string;
  readonly ackWaitMs: number;
  /** The server's `max_deliver` (the transport's delivery limit plus its margin), or -1. */
  readonly maxDeliver: number;
  readonly maxAckPending: number;
  readonly replicas: number;
  readonly logger: Logger;
}

/** One binding of a queue as NATS sees it. */
export interface PlannedBinding {
  readonly exchange: string;
  readonly pattern: string;
  /** The pattern with its wildcard runs normalised (part of the consumer's name). */
  readonly normalized: string;
  readonly filter: string;
  /** The consumer, on the exchange's stream, that reads this binding. */
  readonly consumer: string;
}

/** A queue's bindings as consumers, after the checks that refuse what NATS cannot express. */
export interface QueuePlan {
  readonly queue: string;
  readonly bindings: readonly PlannedBinding[];
}

/**
 * Maps a queue's bindings to consumers: one per binding, after dropping the bindings another
 * binding of the same queue and exchange already covers (a message is delivered once per queue).
 * Throws `UnsupportedBindingError` for a partitioned queue, for a pattern NATS cannot express, or for two bindings that
 * overlap without one covering the other (one consumer has one filter on nats-server 2.9, and two
 * consumers would deliver their common messages twice). Pure: nothing is sent.
 */
export function planQueue(namespace: string, spec: QueueSpec): QueuePlan {
  if (spec.partitions !== undefined) {
    const b = spec.bindings[0];
    throw new UnsupportedBindingError(
      spec.name,
      b?.exchange ?? '',
      b?.pattern ?? '',
      'the NATS transport has no partitioned queues (TransportFeatures.partitions is false; see docs/scaling.md)',
    );
  }
  const byExchange = new Map<string, PlannedBinding[]>();
  for (const b of spec.bindings) {
    const mapped = patternFilter(namespace, b.exchange, b.pattern);
    if (!mapped.ok)
      throw new UnsupportedBindingError(spec.name, b.exchange, b.pattern, mapped.reason);
    let list = byExchange.get(b.exchange);
    if (!list) {
      list = [];
      byExchange.set(b.exchange, list);
    }
    list.push({
      exchange: b.exchange,
      pattern: b.pattern,
      normalized: mapped.normalized,
      filter: mapped.filter,
      consumer: bindingConsumerName(spec.name, mapped.normalized),
    });
  }
  const bindings: PlannedBinding[] = [];
  for (const list of byExchange.values()) {
    const kept = withoutSubsumed(list.map((b) => b.filter));
    const chosen = kept.map((f) => list.find((b) => b.filter === f)!);
    for (let i = 0; i < chosen.length; i++) {
      for (let j = i + 1; j < chosen.length; j++) {
        const [a, b] = [chosen[i]!, chosen[j]!];
        if (overlaps(a.filter, b.filter)) {
          throw new UnsupportedBindingError(
            spec.name,
            b.exchange,
            b.pattern,
            `it overlaps the queue's binding "${a.pattern}" without either containing the other; ` +
              'a nats-server 2.9 consumer has one filter subject, and two consumers would ' +
              'deliver the messages both match twice. Bind one pattern that covers both, or ' +
              'use two queues',
          );
        }
      }
    }
    bindings.push(...chosen);
  }
  return { queue: spec.name, bindings };
}

/**
 * Declares a topology (see docs/nats.md): a stream per exchange, a
 * work-queue stream with one consumer per queue and per dead-letter queue, and per binding a
 * durable pull consumer on the exchange's stream, whose subjects are widened to cover it first.
 * Every queue is planned before anything is created, so a refused binding creates nothing.
 */
export async function declareTopology(ctx: TopologyContext, topology: Topology): Promise<void> {
  for (const q of topology.queues) {
    if (q.name === '')
      throw new BrokerOperationError('declare a queue', undefined, 'a queue needs a name');
  }
  const plans = topology.queues.map((q) => planQueue(ctx.namespace, q));
  const exchanges = new Set(topology.exchanges);
  for (const q of topology.queues) for (const b of q.bindings) exchanges.add(b.exchange);
  for (const exchange of exchanges) await ensureExchangeStream(ctx, exchange);
  for (const plan of plans) {
    await ensureQueue(ctx, plan.queue);
    await ensureQueue(ctx, deadLetterQueueName(plan.queue));
  }
  for (const plan of plans) {
    const byExchange = new Map<string, PlannedBinding[]>();
    for (const b of plan.bindings) {
      const list = byExchange.get(b.exchange) ?? [];
      list.push(b);
      byExchange.set(b.exchange, list);
    }
    for (const [exchange, bindings] of byExchange) {
      await ensureBindings(ctx, exchange, plan.queue, bindings);
    }
  }
}

function describeError(operation: string, error: unknown): BrokerOperationError {
  const reason = error instanceof Error ? error.message : String(error);
  return new BrokerOperationError(operation, apiCode(error), reason, { cause: error });
}

async function streamInfo(jsm: JetStreamManager, name: string): Promise<StreamInfo | undefined> {
  try {
    return await jsm.streams.info(name);
  } catch (error) {
    if (apiCode(error) === API.streamNotFound) return undefined;
    throw describeError(`read stream "${name}"`, error);
  }
}

async function addStream(
  ctx: TopologyContext,
  config: Partial<StreamConfig> & { name: string },
  check: (info: StreamInfo) => void,
): Promise<void> {
  const existing = await streamInfo(ctx.jsm, config.name);
  if (existing) return check(existing);
  try {
    await ctx.jsm.streams.add(config);
  } catch (error) {
    // Created meanwhile by another process: what matters is that it is the same.
    if (apiCode(error) === API.streamNameInUse) {
      const info = await streamInfo(ctx.jsm, config.name);
      if (info) return check(info);
    }
    throw describeError(`create stream "${config.name}"`, error);
  }
}

function conflict(entity: string, differences: string[]): void {
  if (differences.length > 0) throw new TopologyConflictError(entity, differences.join('; '));
}

function differ(name: string, server: unknown, ours: unknown): string[] {
  return server === ours
    ? []
    : [
        `${name} is ${JSON.stringify(server)} on the server, but Tidings declares ${JSON.stringify(ours)}`,
      ];
}

/**
 * An exchange: a stream capturing the subjects its bindings need. Its retention is `limits`, and
 * the transports that consume from it remove what every consumer has acknowledged
 * ({@link trimExchangeStream}). Interest retention would do that on the server, but nats-server
 * 2.9 then loses messages: publishes acknowledged while it shuts down cleanly, with consumers
 * acknowledging at the same moment, were gone after the restart (bare nats.js reproduces it; see
 * docs/nats.md). A stream an earlier version declared with interest retention is accepted, with a
 * warning.
 */
export async function ensureExchangeStream(ctx: TopologyContext, exchange: string): Promise<void> {
  const name = exchangeStreamName(ctx.namespace, exchange);
  const space = exchangeSpace(ctx.namespace, exchange);
  const placeholder = placeholderSubject(ctx.namespace, exchange);
  await addStream(
    ctx,
    {
      name,
      description: `Tidings exchange "${exchange}"`,
      subjects: [placeholder],
      retention: RetentionPolicy.Limits,
      storage: StorageType.File,
      discard: DiscardPolicy.Old,
      num_replicas: ctx.replicas,
    },
    (info) => {
      const c = info.config;
      const foreign = (c.subjects ?? []).filter((s) => s !== placeholder && !subsumes(space, s));
      if (c.retention === RetentionPolicy.Interest) {
        ctx.logger.warn(
          `stream ${name} has interest retention (declared by an earlier version of Tidings); ` +
            'nats-server 2.9 can lose messages of such a stream published during a restart. ' +
            'Delete the stream, once drained, to have it declared again with limits retention',
        );
      }
      conflict(`stream "${name}"`, [
        ...(c.retention === RetentionPolicy.Interest
          ? []
          : differ('retention', c.retention, RetentionPolicy.Limits)),
        ...differ('num_replicas', c.num_replicas, ctx.replicas),
        ...(foreign.length > 0
          ? [`it captures ${foreign.join(', ')}, outside the exchange's subjects ${space}`]
          : []),
      ]);
    },
  );
}

/** A queue's own stream (messages sent to it alone) and the consumer that reads it. */
export async function ensureQueue(ctx: TopologyContext, queue: string): Promise<void> {
  const name = queueStreamName(ctx.namespace, queue);
  const subject = queueSubject(ctx.namespace, queue);
  await addStream(
    ctx,
    {
      name,
      description: `Tidings queue "${queue}"`,
      subjects: [subject],
      retention: RetentionPolicy.Workqueue,
      storage: StorageType.File,
      discard: DiscardPolicy.Old,
      num_replicas: ctx.replicas,
    },
    (info) => {
      const c = info.config;
      conflict(`stream "${name}"`, [
        ...differ('retention', c.retention, RetentionPolicy.Workqueue),
        ...differ('num_replicas', c.num_replicas, ctx.replicas),
        ...differ('subjects', (c.subjects ?? []).join(','), subject),
      ]);
    },
  );
  await ensureConsumer(ctx, name, {
    durable_name: queueConsumerName(queue),
    description: `Tidings queue "${queue}": messages sent to it alone`,
    deliver_policy: DeliverPolicy.All,
  });
}

function consumerConfig(
  ctx: TopologyContext,
  extra: Partial<ConsumerConfig>,
): Partial<ConsumerConfig> {
  return {
    ack_policy: AckPolicy.Explicit,
    ack_wait: ctx.ackWaitMs * 1_000_000,
    max_deliver: ctx.maxDeliver,
    max_ack_pending: ctx.maxAckPending,
    num_replicas: 0,
    ...extra,
  };
}

/**
 * Creates a durable pull consumer, or checks the one there. JetStream's create would silently
 * update a consumer that differs, so the existing one is read first and a difference reported.
 */
async function ensureConsumer(
  ctx: TopologyContext,
  stream: string,
  extra: Partial<ConsumerConfig> & { durable_name: string },
): Promise<ConsumerInfo> {
  const config = consumerConfig(ctx, extra);
  let info: ConsumerInfo | undefined;
  try {
    info = await ctx.jsm.consumers.info(stream, extra.durable_name);
  } catch (error) {
    if (apiCode(error) !== API.consumerNotFound) {
      throw describeError(`read consumer "${extra.durable_name}" of stream "${stream}"`, error);
    }
  }
  if (info) {
    const c = info.config;
    conflict(`consumer "${extra.durable_name}" of stream "${stream}"`, [
      ...differ('ack_policy', c.ack_policy, config.ack_policy),
      ...differ('ack_wait (ns)', c.ack_wait, config.ack_wait),
      ...differ('max_deliver', c.max_deliver, config.max_deliver),
      ...differ('max_ack_pending', c.max_ack_pending, config.max_ack_pending),
      ...differ('filter_subject', c.filter_subject ?? '', config.filter_subject ?? ''),
    ]);
    return info;
  }
  try {
    return await ctx.jsm.consumers.add(stream, config);
  } catch (error) {
    throw describeError(`create consumer "${extra.durable_name}" of stream "${stream}"`, error);
  }
}

async function listConsumers(jsm: JetStreamManager, stream: string): Promise<ConsumerInfo[]> {
  try {
    const out: ConsumerInfo[] = [];
    for await (const c of jsm.consumers.list(stream)) out.push(c);
    return out;
  } catch (error) {
    if (apiCode(error) === API.streamNotFound) return [];
    throw describeError(`list the consumers of stream "${stream}"`, error);
  }
}

/**
 * A queue's bindings on one exchange: the stream's subjects are widened to cover them, then one
 * consumer per binding is created (delivering what is published from then on, as a new AMQP
 * binding does). A binding that overlaps one this queue already has, under another pattern, is
 * refused. Ends by checking that the stream covers every consumer's filter, repairing what a
 * concurrent declaration elsewhere may have undone.
 */
async function ensureBindings(
  ctx: TopologyContext,
  exchange: string,
  queue: string,
  bindings: readonly PlannedBinding[],
): Promise<void> {
  const stream = exchangeStreamName(ctx.namespace, exchange);
  const existing = await listConsumers(ctx.jsm, stream);
  const prefix = bindingConsumerPrefix(queue);
  for (const b of bindings) {
    const other = existing.find(
      (c) =>
        c.name.startsWith(prefix) &&
        c.name !== b.consumer &&
        c.config.filter_subject !== undefined &&
        overlaps(c.config.filter_subject, b.filter),
    );
    if (other) {
      throw new UnsupportedBindingError(
        queue,
        exchange,
        b.pattern,
        `the queue already has a binding whose filter ${other.config.filter_subject} overlaps it ` +
          `(consumer "${other.name}"); two consumers of one queue would deliver the messages both ` +
          'match twice. Delete the queue first to change its bindings',
      );
    }
  }
  const filtersOf = (list: readonly ConsumerInfo[]) =>
    list.flatMap((c) => (c.config.filter_subject ? [c.config.filter_subject] : []));
  for (let attempt = 0; ; attempt++) {
    await coverFilters(ctx, stream, exchange, [
      ...filtersOf(existing),
      ...bindings.map((b) => b.filter),
    ]);
    try {
      for (const b of bindings) {
        await ensureConsumer(ctx, stream, {
          durable_name: b.consumer,
          description: `Tidings queue "${queue}": binding "${b.pattern}" on exchange "${exchange}"`,
          filter_subject: b.filter,
          deliver_policy: DeliverPolicy.New,
        });
      }
      break;
    } catch (error) {
      // Another process narrowed the subjects between our two steps: widen them again.
      const code = (error as { replyCode?: unknown }).replyCode;
      if (code !== API.filterNotSubset || attempt >= 5) throw error;
    }
  }
  await coverFilters(ctx, stream, exchange, filtersOf(await listConsumers(ctx.jsm, stream)));
}

/**
 * Makes the stream capture at least `filters` (declaring only widens; a concurrent writer that
 * read an older list may have dropped a subject, so it is read back and written again until it
 * holds).
 */
async function coverFilters(
  ctx: TopologyContext,
  stream: string,
  exchange: string,
  filters: readonly string[],
): Promise<void> {
  const placeholder = placeholderSubject(ctx.namespace, exchange);
  for (let attempt = 0; attempt < 20; attempt++) {
    const info = await streamInfo(ctx.jsm, stream);
    if (!info)
      throw describeError(`update stream "${stream}"`, new Error('the stream does not exist'));
    const have = (info.config.subjects ?? []).filter((s) => s !== placeholder);
    if (filters.every((f) => have.some((s) => subsumes(s, f)))) return;
    const { subjects, exact } = streamSubjects([...have, ...filters]);
    if (!exact) {
      ctx.logger.warn(
        `stream ${stream} captures ${subjects.join(', ')}: bindings of different queues overlap ` +
          'without one containing the other, so some publishes are stored for no queue and ' +
          'reported as routed (see docs/nats.md)',
      );
    }
    try {
      await ctx.jsm.streams.update(stream, { subjects });
    } catch (error) {
      throw describeError(`update the subjects of stream "${stream}"`, error);
    }
    await new Promise((resolve) =>
      setTimeout(resolve, attempt === 0 ? 0 : 5 + Math.random() * 20 * attempt),
    );
  }
  throw describeError(`update stream "${stream}"`, new Error('its subjects kept changing'));
}

/**
 * Deletes a queue: its binding consumers on the exchanges it names (the exchanges' subjects then
 * narrow to what the remaining consumers need), its own stream and its dead-letter queue's.
 * What does not exist is skipped.
 */
export async function deleteQueue(
  ctx: TopologyContext,
  spec: QueueSpec,
  extraExchanges: Iterable<string> = [],
): Promise<void> {
  const exchanges = new Set<string>(extraExchanges);
  for (const b of spec.bindings) exchanges.add(b.exchange);
  const prefix = bindingConsumerPrefix(spec.name);
  for (const exchange of exchanges) {
    const stream = exchangeStreamName(ctx.namespace, exchange);
    const consumers = await listConsumers(ctx.jsm, stream);
    const mine = consumers.filter((c) => c.name.startsWith(prefix));
    if (mine.length === 0) continue;
    for (const c of mine) {
      try {
        await ctx.jsm.consumers.delete(stream, c.name);
      } catch (error) {
        if (apiCode(error) !== API.consumerNotFound) {
          throw describeError(`delete consumer "${c.name}" of stream "${stream}"`, error);
        }
      }
    }
    await narrowSubjects(ctx, stream, exchange);
  }
  for (const queue of [spec.name, deadLetterQueueName(spec.name)]) {
    await deleteStream(ctx.jsm, queueStreamName(ctx.namespace, queue));
  }
}

/** Sets the stream's subjects to what its consumers need (the placeholder when none). */
async function narrowSubjects(
  ctx: TopologyContext,
  stream: string,
  exchange: string,
): Promise<void> {
  const filters = (await listConsumers(ctx.jsm, stream)).flatMap((c) =>
    c.config.filter_subject ? [c.config.filter_subject] : [],
  );
  const { subjects } = streamSubjects(filters);
  const target = subjects.length > 0 ? subjects : [placeholderSubject(ctx.namespace, exchange)];
  try {
    await ctx.jsm.streams.update(stream, { subjects: target });
  } catch (error) {
    if (apiCode(error) !== API.streamNotFound) {
      throw describeError(`update the subjects of stream "${stream}"`, error);
    }
  }
}

/** Deletes a stream and everything in it; a missing one is not an error. */
export async function deleteStream(jsm: JetStreamManager, name: string): Promise<void> {
  try {
    await jsm.streams.delete(name);
  } catch (error) {
    if (apiCode(error) !== API.streamNotFound)
      throw describeError(`delete stream "${name}"`, error);
  }
}

/**
 * The binding consumers of a queue, found on the server (for a queue this transport did not
 * declare, such as the CLI reading a work queue): every exchange stream of the namespace is
 * searched.
 */
export async function findBindingConsumers(
  jsm: JetStreamManager,
  namespace: string,
  queue: string,
): Promise<{ stream: string; consumer: string }[]> {
  const prefix = bindingConsumerPrefix(queue);
  const out: { stream: string; consumer: string }[] = [];
  const streams: string[] = [];
  try {
    for await (const name of jsm.streams.names()) {
      if (name.startsWith(`${namespace}_x_`)) streams.push(name);
    }
  } catch (error) {
    throw describeError('list streams', error);
  }
  for (const stream of streams) {
    for (const c of await listConsumers(jsm, stream)) {
      if (c.name.startsWith(prefix)) out.push({ stream, consumer: c.name });
    }
  }
  return out;
}

/**
 * Removes from an exchange's stream the messages every one of its consumers is done with: below
 * the lowest acknowledgement floor, or everything up to the last message for a consumer with
 * nothing pending and nothing unacknowledged. A consumer created meanwhile starts after the last
 * message (bindings deliver what is new), so it loses nothing. Several processes may trim one
 * stream at once: each removes only what all consumers are done with. Returns how many messages
 * were removed; a stream with other retention (interest, from an earlier version) is left alone.
 */
export async function trimExchangeStream(jsm: JetStreamManager, stream: string): Promise<number> {
  const info = await streamInfo(jsm, stream);
  if (!info || info.config.retention !== RetentionPolicy.Limits || info.state.messages === 0) {
    return 0;
  }
  const last = info.state.last_seq;
  let floor = last;
  for (const c of await listConsumers(jsm, stream)) {
    const done = c.num_pending === 0 && c.num_ack_pending === 0 ? last : c.ack_floor.stream_seq;
    floor = Math.min(floor, done);
  }
  if (floor < info.state.first_seq) return 0;
  try {
    const { purged } = await jsm.streams.purge(stream, { seq: floor + 1 });
    return purged;
  } catch (error) {
    if (apiCode(error) === API.streamNotFound) return 0;
    throw describeError(`trim stream "${stream}"`, error);
  }
}
