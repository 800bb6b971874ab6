import { parseRoutingKey } from '../contracts/event.js';
import { bucketOf } from '../contracts/key.js';
import { uuidv7IsoTime, uuidv7Time } from './id.js';

/**
 * The metadata that travels with every payload. Field names here and header names on the wire
 * (see {@link HEADERS}) are public, lasting identifiers: they never change meaning.
 */
export interface Envelope {
  /** Unique, time-sortable message id (UUIDv7). Kept across retries and replays. */
  readonly id: string;
  /** The routing key the message was published with: `order.v1.submit`. */
  readonly type: string;
  /** Exchange that owns the event: `order`. */
  readonly exchange: string;
  /** Event name within the exchange: `submit`. */
  readonly event: string;
  /** Version of the payload on the wire. */
  readonly version: number;
  /** Name of the service that published the message. */
  readonly source: string;
  /** When the message was first published, RFC 3339 with milliseconds, UTC. */
  readonly time: string;
  /** Shared by every message caused, directly or not, by the same original message. */
  readonly correlationId: string;
  /** Id of the message whose handler published this one; absent for an original message. */
  readonly causationId?: string | undefined;
  /** W3C trace context (`traceparent`), when the publisher had one: the trace the message belongs to. */
  readonly traceparent?: string | undefined;
  /** W3C trace state (`tracestate`) that goes with `traceparent`: vendors' entries, passed on as they are. */
  readonly tracestate?: string | undefined;
  /**
   * The event's key (from its contract, or the publish's `key` option), what a partitioned
   * consumer keeps in order; absent for an event without one. See docs/scaling.md.
   */
  readonly key?: string | undefined;
}

/** A header value as AMQP field tables carry it. */
export type HeaderValue =
  | string
  | number
  | boolean
  | null
  | undefined
  | Buffer
  | HeaderValue[]
  | { [key: string]: HeaderValue };

/** Message properties, named as in AMQP 0-9-1 `basic.properties`. */
export interface MessageProperties {
  messageId?: string | undefined;
  correlationId?: string | undefined;
  /** The routing key of the event (so tools that only show properties see what it is). */
  type?: string | undefined;
  /** The publishing service. */
  appId?: string | undefined;
  /** Seconds since the Unix epoch (AMQP's resolution). */
  timestamp?: number | undefined;
  contentType?: string | undefined;
  contentEncoding?: string | undefined;
  headers: Record<string, HeaderValue>;
}

/** A message as a transport publishes it. */
export interface OutgoingMessage {
  readonly exchange: string;
  readonly routingKey: string;
  /** The payload alone, serialised once (JSON for native messages). */
  readonly body: Buffer;
  readonly properties: MessageProperties;
}

/** A message as a transport delivers it. */
export interface IncomingMessage extends OutgoingMessage {
  /** True when the broker delivered this message before without an ack. */
  readonly redelivered: boolean;
}

/**
 * Header names on the wire. CloudEvents 1.0 attributes that have no AMQP property use the `ce-`
 * prefix; Tidings' own use `tidings-`. Since wire format 2 (see {@link WIRE_FORMAT}) the id, type
 * and source travel only as the AMQP properties `message_id`, `type` and `app_id`; `ce-id`,
 * `ce-type` and `ce-source` are the headers of wire format 1, which readers still accept (and the
 * Celery codec still writes), as they accept `ce-specversion`, which only format 1 and 2 write.
 */
export const HEADERS = {
  specversion: 'ce-specversion',
  id: 'ce-id',
  source: 'ce-source',
  type: 'ce-type',
  time: 'ce-time',
  /** The wire format of the envelope (`2` or `3`, see {@link WIRE_FORMAT}); absent in format 1. */
  wire: 'tidings-wire',
  causationId: 'tidings-causation-id',
  /** W3C Trace Context: the trace and the span that sent the message (`00-<trace id>-<span id>-<flags>`). */
  traceparent: 'traceparent',
  /** W3C Trace Context: vendor entries that travel with `traceparent`. */
  tracestate: 'tracestate',
  /** How many times handling has failed so far (0 or absent on the first delivery). */
  attempts: 'tidings-attempts',
  /** When handling first failed (RFC 3339). */
  firstFailure: 'tidings-first-failure',
  lastFailure: 'tidings-last-failure',
  /** Why a message was dead-lettered: one of {@link DeadLetterReason}. */
  deadReason: 'tidings-dead-reason',
  errorName: 'tidings-error-name',
  errorMessage: 'tidings-error-message',
  errorStack: 'tidings-error-stack',
  /** JSON array of schema issues for `schema-violation`. */
  issues: 'tidings-issues',
  service: 'tidings-service',
  handler: 'tidings-handler',
  queue: 'tidings-queue',
  originalExchange: 'tidings-original-exchange',
  originalRoutingKey: 'tidings-original-routing-key',
  /** The event's key, for keyed events (see `Envelope.key`). */
  key: 'tidings-key',
  /**
   * The key's bucket, 0 … 63 in decimal (`bucketOf`), what partitioned subscriptions route on.
   * A string, so a broker's header match compares it exactly whatever wrote it.
   */
  bucket: 'tidings-bucket',
  /**
   * On a dead letter whose headers were too large to copy: JSON array of `{ header, bytes, kept }`
   * for each header cut to its first `kept` bytes (0: dropped), `bytes` its encoded size.
   */
  trimmedHeaders: 'tidings-trimmed-headers',
} as const;

/** Why a message was dead-lettered; the value of the `tidings-dead-reason` header. */
export type DeadLetterReason =
  | 'handler-error'
  | 'invalid-json'
  | 'invalid-celery'
  | 'schema-violation'
  | 'unsupported-version'
  | 'unknown-event'
  | 'oversize'
  | 'missing-envelope'
  | 'unencodable-headers';

/** The CloudEvents version Tidings writes. */
export const SPEC_VERSION = '1.0';

/**
 * The wire format Tidings writes, the value of the `tidings-wire` header.
 *
 * - Format 1 (Tidings 0.1; no `tidings-wire` header): every CloudEvents attribute as a `ce-`
 *   header, and the id, type, source and time a second time as the AMQP properties `message_id`,
 *   `type`, `app_id` and `timestamp`.
 * - Format 2: each attribute once. `id` is `message_id`, `type` is `type`, `source` is `app_id`,
 *   `datacontenttype` is `content_type`; `specversion` and `time` have no AMQP property that
 *   holds them (AMQP's `timestamp` has whole seconds only) and are the headers `ce-specversion`
 *   and `ce-time`. `correlation_id` is left out when it equals the id (an original message).
 * - Format 3: as format 2, with two headers fewer. `specversion` is implied (every message of
 *   format 2 or later is a CloudEvents 1.0 event). `time` is the millisecond the id was made when
 *   the id is a UUIDv7 made at that millisecond (what Tidings generates): `ce-time` is written
 *   only when the time cannot be read from the id (an id given by the publisher). The AMQP
 *   `timestamp` carries the time in seconds, for tools and for readers of format 2, which read
 *   the time from it when `ce-time` is absent.
 *
 * Readers accept all three, per message.
 */
export const WIRE_FORMAT = '3';

/** Builds the AMQP-style properties for an envelope, in wire format 3 (see {@link WIRE_FORMAT}). */
export function envelopeToProperties(envelope: Envelope): MessageProperties {
  const headers: Record<string, HeaderValue> = { [HEADERS.wire]: WIRE_FORMAT };
  const ms = epochMs(envelope.time);
  if (uuidv7Time(envelope.id) !== ms) headers[HEADERS.time] = envelope.time;
  if (envelope.causationId !== undefined) headers[HEADERS.causationId] = envelope.causationId;
  if (envelope.traceparent !== undefined) headers[HEADERS.traceparent] = envelope.traceparent;
  if (envelope.tracestate !== undefined) headers[HEADERS.tracestate] = envelope.tracestate;
  if (envelope.key !== undefined) {
    headers[HEADERS.key] = envelope.key;
    headers[HEADERS.bucket] = String(bucketOf(envelope.key));
  }
  return {
    messageId: envelope.id,
    correlationId: envelope.correlationId === envelope.id ? undefined : envelope.correlationId,
    type: envelope.type,
    appId: envelope.source,
    timestamp: Math.floor(ms / 1000),
    contentType: 'application/json',
    headers,
  };
}

let parsedTime = '';
let parsedMs = 0;

/** Milliseconds since the epoch of an RFC 3339 time; the last one is kept (most messages share it). */
function epochMs(time: string): number {
  if (time !== parsedTime) {
    parsedTime = time;
    parsedMs = Date.parse(time);
  }
  return parsedMs;
}

/**
 * The properties of wire format 1 (see {@link WIRE_FORMAT}): every attribute as a `ce-` header and
 * again as an AMQP property. The Celery codec keeps writing these, so that its messages stay as
 * they were; readers of both formats take them.
 */
export function envelopeToPropertiesV1(envelope: Envelope): MessageProperties {
  const headers: Record<string, HeaderValue> = {
    [HEADERS.specversion]: SPEC_VERSION,
    [HEADERS.id]: envelope.id,
    [HEADERS.source]: envelope.source,
    [HEADERS.type]: envelope.type,
    [HEADERS.time]: envelope.time,
  };
  if (envelope.causationId !== undefined) headers[HEADERS.causationId] = envelope.causationId;
  if (envelope.traceparent !== undefined) headers[HEADERS.traceparent] = envelope.traceparent;
  if (envelope.tracestate !== undefined) headers[HEADERS.tracestate] = envelope.tracestate;
  if (envelope.key !== undefined) {
    headers[HEADERS.key] = envelope.key;
    headers[HEADERS.bucket] = String(bucketOf(envelope.key));
  }
  return {
    messageId: envelope.id,
    correlationId: envelope.correlationId,
    type: envelope.type,
    appId: envelope.source,
    timestamp: Math.floor(epochMs(envelope.time) / 1000),
    contentType: 'application/json',
    headers,
  };
}

function str(value: HeaderValue): string | undefined {
  if (typeof value === 'string') return value;
  if (Buffer.isBuffer(value)) return value.toString('utf8');
  return undefined;
}

/** The last routing key parsed, and what it gave: most messages of a queue share one type. */
let lastType = '';
let lastParsed: ReturnType<typeof parseRoutingKey>;

function parseType(type: string): ReturnType<typeof parseRoutingKey> {
  if (type !== lastType) {
    lastParsed = parseRoutingKey(type);
    lastType = type;
  }
  return lastParsed;
}

/**
 * Reads the envelope of a delivered message, of any wire format (see {@link WIRE_FORMAT}).
 * Formats 2 and 3 take the id, type and source from the AMQP properties; format 1 (and a message
 * of any other producer) prefers the `ce-` headers and falls back on the properties. The time is
 * `ce-time`, else (format 3) the time of the UUIDv7 id, else the `timestamp` property, else now.
 * Returns `undefined` when the message has no id or its type is not a Tidings routing key; such
 * messages are dead-lettered with reason `missing-envelope`.
 */
export function envelopeFromMessage(message: IncomingMessage): Envelope | undefined {
  const p = message.properties;
  const h = p.headers;
  const v2 = h[HEADERS.wire] !== undefined;
  const id = v2 ? p.messageId : (str(h[HEADERS.id]) ?? p.messageId);
  const type = (v2 ? p.type : (str(h[HEADERS.type]) ?? p.type)) ?? message.routingKey;
  if (!id || !type) return undefined;
  const parsed = parseType(type);
  if (!parsed) return undefined;
  const time =
    str(h[HEADERS.time]) ??
    (v2 ? uuidv7IsoTime(id) : undefined) ??
    timeFromTimestamp(p.timestamp) ??
    new Date().toISOString();
  const source = (v2 ? p.appId : (str(h[HEADERS.source]) ?? p.appId)) ?? 'unknown';
  const causation = h[HEADERS.causationId];
  const traceparent = h[HEADERS.traceparent];
  return {
    id,
    type,
    exchange: parsed.exchange,
    event: parsed.event,
    version: parsed.version,
    source,
    time,
    correlationId: p.correlationId ?? id,
    causationId: causation === undefined ? undefined : str(causation),
    traceparent: traceparent === undefined ? undefined : str(traceparent),
    tracestate: h[HEADERS.tracestate] === undefined ? undefined : str(h[HEADERS.tracestate]),
    key: h[HEADERS.key] === undefined ? undefined : str(h[HEADERS.key]),
  };
}

/**
 * The RFC 3339 time of an AMQP `timestamp` (seconds), or `undefined` when it is missing or out of
 * range (some clients write milliseconds or microseconds there).
 */
export function timeFromTimestamp(seconds: number | undefined): string | undefined {
  if (seconds === undefined || !Number.isFinite(seconds)) return undefined;
  const date = new Date(seconds * 1000);
  return Number.isNaN(date.getTime()) ? undefined : date.toISOString();
}

/** Number of failed attempts recorded on a message (0 when none). */
export function attemptsOf(message: IncomingMessage): number {
  const n = message.properties.headers[HEADERS.attempts];
  return typeof n === 'number' && Number.isFinite(n) && n >= 0 ? n : 0;
}
