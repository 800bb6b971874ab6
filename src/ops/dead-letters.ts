import { isCeleryMessage } from '../envelope/celery.js';
import { HEADERS, type HeaderValue, type IncomingMessage } from '../envelope/envelope.js';
import { TidingsError } from '../errors.js';
import { DEFAULT_EXCHANGE, type Delivery, type Transport } from '../transports/transport.js';

/** One dead-lettered message, summarised for people and scripts. */
export interface DeadLetter {
  /**
   * The message id: `ce-id`; for a Celery task message, its task id (the `id` header); else the
   * `message_id` property. `undefined` when it has none.
   */
  readonly id: string | undefined;
  /** The event's routing key as published (`ce-type`, else the original routing key). */
  readonly type: string;
  /** Why it was dead-lettered (`tidings-dead-reason`). */
  readonly reason: string;
  /** The error message recorded with it. */
  readonly error: string;
  /** Failed attempts. */
  readonly attempts: number;
  /** When handling first failed (`tidings-first-failure`), RFC 3339. */
  readonly firstFailedAt: string | undefined;
  /** When it was dead-lettered (the last failure), RFC 3339. */
  readonly deadLetteredAt: string | undefined;
  /** The queue whose handler failed, where a replay sends it back. */
  readonly queue: string | undefined;
  readonly service: string | undefined;
  readonly headers: Readonly<Record<string, HeaderValue>>;
  readonly body: Buffer;
}

/** Progress of a long operation: `done` of `total` (total may grow while the queue is read). */
export type Progress = (done: number, total: number) => void;

/** A dead letter could not be replayed; it stays in the dead-letter queue. */
export class ReplayError extends TidingsError {
  declare readonly code: 'replay';
  constructor(
    readonly messageId: string | undefined,
    reason: string,
    options?: { cause?: unknown },
  ) {
    super('replay', `Could not replay ${messageId ?? 'a message without id'}: ${reason}`, options);
  }
}

function str(value: HeaderValue): string | undefined {
  if (typeof value === 'string') return value;
  if (Buffer.isBuffer(value)) return value.toString('utf8');
  return undefined;
}

/** Reads the summary of a dead-lettered message from its headers. */
export function describeDeadLetter(message: IncomingMessage): DeadLetter {
  const h = message.properties.headers;
  const attempts = h[HEADERS.attempts];
  // A Celery producer sends no ce-id; its task id is what the message is known by.
  const celeryId = isCeleryMessage(message) ? str(h.id) : undefined;
  return {
    id: str(h[HEADERS.id]) ?? celeryId ?? message.properties.messageId,
    type: str(h[HEADERS.type]) ?? str(h[HEADERS.originalRoutingKey]) ?? message.routingKey,
    reason: str(h[HEADERS.deadReason]) ?? 'unknown',
    error: str(h[HEADERS.errorMessage]) ?? '',
    attempts: typeof attempts === 'number' ? attempts : 0,
    firstFailedAt: str(h[HEADERS.firstFailure]),
    deadLetteredAt: str(h[HEADERS.lastFailure]),
    queue: str(h[HEADERS.queue]),
    service: str(h[HEADERS.service]),
    headers: h,
    body: message.body,
  };
}

/**
 * Takes the ready messages of a queue, hands each to `visit`, and puts back those `visit` did
 * not settle, in their original order. While it runs, the messages it holds are invisible to
 * consumers. It stops at `limit`, at the end of the queue, or at the first message it has already
 * seen in this sweep: a message replayed, failed again at once and dead-lettered again is left
 * for the next sweep instead of looping.
 */
async function sweep(
  transport: Transport,
  queue: string,
  limit: number,
  visit: (delivery: Delivery) => Promise<boolean>,
): Promise<number | undefined> {
  const keep: Delivery[] = [];
  const seen = new Set<string>();
  let depth: number | undefined = 0;
  try {
    for (let n = 0; n < limit; n++) {
      const delivery = await transport.get(queue);
      if (!delivery) break;
      if (n === 0) depth = delivery.remaining === undefined ? undefined : delivery.remaining + 1;
      const id = describeDeadLetter(delivery.message).id;
      if (id !== undefined && seen.has(id)) {
        keep.push(delivery);
        break;
      }
      if (id !== undefined) seen.add(id);
      let settled = false;
      try {
        settled = await visit(delivery);
      } finally {
        if (!settled) keep.push(delivery);
      }
    }
  } finally {
    for (const d of keep) await d.requeue().catch(() => {});
  }
  return depth;
}

/**
 * Lists the messages of a dead-letter queue without removing them (they are read and put back).
 * @param limit - at most this many @defaultValue 10000
 */
export async function listDeadLetters(
  transport: Transport,
  queue: string,
  options: { limit?: number | undefined } = {},
): Promise<DeadLetter[]> {
  return (await inspectDeadLetters(transport, queue, options)).letters;
}

/** What {@link inspectDeadLetters} found. */
export interface DeadLetterListing {
  /** The first messages of the queue, up to the limit, in queue order. */
  readonly letters: DeadLetter[];
  /**
   * How many messages the queue held when it was read (ready ones, as the broker counts them),
   * however many were listed; `undefined` when the transport cannot tell.
   */
  readonly depth: number | undefined;
}

/**
 * Like {@link listDeadLetters}, and also says how deep the queue is, so that a listing cut at
 * `limit` can say how much it left out.
 * @param limit - at most this many @defaultValue 10000
 */
export async function inspectDeadLetters(
  transport: Transport,
  queue: string,
  options: { limit?: number | undefined } = {},
): Promise<DeadLetterListing> {
  const letters: DeadLetter[] = [];
  const depth = await sweep(transport, queue, options.limit ?? 10_000, async (d) => {
    letters.push(describeDeadLetter(d.message));
    return false;
  });
  return { letters, depth: depth === undefined ? undefined : Math.max(depth, letters.length) };
}

/**
 * Headers that describe a failure: a replay removes them, so attempts start again from 1. Where
 * the message was first published (`tidings-original-*`) stays: the replay travels through the
 * default exchange, and consumers read the original exchange and routing key from those.
 */
const FAILURE_HEADERS: readonly string[] = [
  HEADERS.attempts,
  HEADERS.firstFailure,
  HEADERS.lastFailure,
  HEADERS.deadReason,
  HEADERS.errorName,
  HEADERS.errorMessage,
  HEADERS.errorStack,
  HEADERS.issues,
  HEADERS.service,
  HEADERS.handler,
  HEADERS.queue,
];

/** What {@link replayDeadLetters} did. */
export interface ReplayResult {
  /** Ids replayed, in order. */
  readonly replayed: (string | undefined)[];
  /** Dead letters that could not be replayed, with why; they are still in the queue. */
  readonly failed: ReplayError[];
}

/**
 * Sends dead letters back to the queue whose handler failed (`tidings-queue`), through the
 * default exchange, so only that consumer sees them again: other services already handled their
 * own copy. The body, the id and the envelope are unchanged; the failure headers are removed, so
 * attempts start again from 1. Each message is removed from the dead-letter queue only after the
 * broker confirmed the replayed copy: a crash in between may duplicate a message, never lose one.
 *
 * @param ids - replay only these message ids (default: every message)
 */
export async function replayDeadLetters(
  transport: Transport,
  queue: string,
  options: {
    ids?: readonly string[] | undefined;
    limit?: number | undefined;
    onProgress?: Progress | undefined;
  } = {},
): Promise<ReplayResult> {
  const wanted = options.ids ? new Set(options.ids) : undefined;
  const result: ReplayResult = { replayed: [], failed: [] };
  let seen = 0;
  await sweep(transport, queue, options.limit ?? Number.MAX_SAFE_INTEGER, async (d) => {
    seen++;
    const dead = describeDeadLetter(d.message);
    if (wanted && (dead.id === undefined || !wanted.has(dead.id))) return false;
    if (!dead.queue) {
      result.failed.push(
        new ReplayError(dead.id, 'it has no tidings-queue header saying where it failed'),
      );
      return false;
    }
    const headers: Record<string, HeaderValue> = { ...d.message.properties.headers };
    for (const name of FAILURE_HEADERS) delete headers[name];
    headers[HEADERS.originalExchange] ??= d.message.exchange;
    headers[HEADERS.originalRoutingKey] ??= d.message.routingKey;
    // A plain AMQP message names its event only by its routing key, which the replay replaces
    // with the queue's name: keep the event in the `type` property.
    const type = d.message.properties.type ?? (headers[HEADERS.type] ? undefined : dead.type);
    try {
      const outcome = await transport.publish({
        exchange: DEFAULT_EXCHANGE,
        routingKey: dead.queue,
        body: d.message.body,
        properties: { ...d.message.properties, type, headers },
      });
      if (!outcome.routed) {
        result.failed.push(new ReplayError(dead.id, `queue ${dead.queue} does not exist`));
        return false;
      }
    } catch (error) {
      result.failed.push(new ReplayError(dead.id, (error as Error).message, { cause: error }));
      return false;
    }
    await d.ack();
    result.replayed.push(dead.id);
    options.onProgress?.(result.replayed.length, wanted ? wanted.size : seen);
    return true;
  });
  return result;
}

/**
 * Deletes the messages of a dead-letter queue (all, or those with the given ids). Returns how many
 * were deleted.
 */
export async function purgeDeadLetters(
  transport: Transport,
  queue: string,
  options: { ids?: readonly string[] | undefined; onProgress?: Progress | undefined } = {},
): Promise<number> {
  const wanted = options.ids ? new Set(options.ids) : undefined;
  let purged = 0;
  let seen = 0;
  await sweep(transport, queue, Number.MAX_SAFE_INTEGER, async (d) => {
    seen++;
    const id = describeDeadLetter(d.message).id;
    if (wanted && (id === undefined || !wanted.has(id))) return false;
    await d.ack();
    purged++;
    options.onProgress?.(purged, wanted ? wanted.size : seen);
    return true;
  });
  return purged;
}
