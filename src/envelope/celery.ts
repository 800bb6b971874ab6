import { hostname } from 'node:os';
import { parseRoutingKey } from '../contracts/event.js';
import {
  type Envelope,
  envelopeToPropertiesV1,
  HEADERS,
  type HeaderValue,
  type MessageProperties,
  timeFromTimestamp,
} from './envelope.js';

/**
 * The Celery codec: Celery task protocol v2 with the JSON serializer, as Celery 5 writes it, so a
 * Celery worker runs a Tidings event as a task and a Tidings consumer handles a Celery task as an
 * event. The task name is the routing key (`order.v1.submit`) and the payload travels as the
 * keyword argument `instance`:
 *
 * ```text
 * headers: lang, task, id, root_id, parent_id, group, retries, eta, expires, timelimit, ...
 * body:    [[], {"instance": <payload>}, {"callbacks": null, "errbacks": null, "chain": null, "chord": null}]
 * ```
 *
 * Pure functions: no broker client, no I/O. Setting `delivery_mode` (persistent) is the
 * transport's job, as for native messages.
 *
 * @module
 */

/** What {@link encodeCelery} returns: the body and properties of one AMQP message. */
export interface CeleryMessage {
  readonly body: Buffer;
  readonly properties: MessageProperties;
}

/** Options of {@link encodeCelery}. */
export interface CeleryEncodeOptions {
  /**
   * The `origin` header: the node that sent the task, shown by Celery's tools.
   * @defaultValue `gen<pid>@<hostname>`, the form Celery uses for a process that is not a worker
   */
  readonly origin?: string | undefined;
}

/** A Celery message read as a Tidings message: its envelope and its payload, not yet validated. */
export interface DecodedCelery {
  readonly envelope: Envelope;
  /** `kwargs.instance`, else `args[0]`, exactly as parsed from JSON. */
  readonly payload: unknown;
}

/**
 * Why a Celery message cannot be read. The first two match the runtime's dead-letter reasons of
 * the same name; `invalid-celery` is a Celery message Tidings cannot handle (wrong body shape, no
 * payload, a serializer other than JSON, compression, an ETA).
 */
export type CeleryDecodeFailure = 'invalid-json' | 'missing-envelope' | 'invalid-celery';

/** A Celery message that cannot be read; the runtime dead-letters it with `error` as the reason. */
export interface CeleryDecodeError {
  readonly reason: CeleryDecodeFailure;
  /** What is wrong with the message and, where it helps, what the sender should change. */
  readonly error: string;
}

/** Celery's own limit on `argsrepr` and `kwargsrepr` (`Task.kwargsrepr_maxsize`). */
const REPR_MAX = 1024;

/** The `embed` element of every body Tidings writes: no callbacks, errbacks, chain or chord. */
const EMBED = '{"callbacks": null, "errbacks": null, "chain": null, "chord": null}';

let origin: string | undefined;

/** Celery's name for a process that is not a worker: `gen<pid>@<hostname>`. */
function processOrigin(): string {
  origin ??= `gen${process.pid}@${hostname()}`;
  return origin;
}

/**
 * Encodes an event as a Celery task message (protocol v2, JSON). The headers are the ones Celery 5
 * writes, plus Tidings' own envelope headers (`ce-*`, `tidings-causation-id`, `traceparent`,
 * `tracestate`), which Celery ignores and a Tidings consumer reads to get the whole envelope back.
 * The trace context is where Celery's own OpenTelemetry instrumentation puts and looks for it: in
 * the message headers, which a worker exposes as attributes of `task.request`. Besides:
 *
 * - `task` is the routing key and `id` the envelope id (also `correlation_id`, as Celery sets it);
 * - `root_id` is the correlation id and `parent_id` the causation id (`null` for an original
 *   message), the Celery names for the same ideas;
 * - `lang` is `'py'`: the header names the language of the task's implementation, which for a
 *   message meant for a Celery worker is Python (the worker does not check it, Celery's tools
 *   expect it);
 * - `ignore_result` is `true`: an event has no result to store;
 * - `argsrepr`/`kwargsrepr` are display text for Celery's tools; `kwargsrepr` holds the payload's
 *   JSON (not Python's repr, which only Python tools parse), cut at Celery's 1024 characters.
 *
 * The payload is serialised once, straight into the body. It must already be valid for its
 * schema; this function does not validate. Throws a `TypeError` when it has no JSON form.
 */
export function encodeCelery(
  envelope: Envelope,
  payload: unknown,
  options: CeleryEncodeOptions = {},
): CeleryMessage {
  const json = JSON.stringify(payload);
  if (json === undefined) {
    throw new TypeError(
      `encodeCelery: the payload of ${envelope.type} has no JSON form (got ${typeof payload})`,
    );
  }
  const native = envelopeToPropertiesV1(envelope);
  const headers: Record<string, HeaderValue> = {
    lang: 'py',
    task: envelope.type,
    id: envelope.id,
    shadow: null,
    eta: null,
    expires: null,
    group: null,
    group_index: null,
    retries: 0,
    timelimit: [null, null],
    root_id: envelope.correlationId,
    parent_id: envelope.causationId ?? null,
    argsrepr: '()',
    kwargsrepr: kwargsRepr(json),
    origin: options.origin ?? processOrigin(),
    ignore_result: true,
    ...native.headers,
  };
  return {
    body: Buffer.from(`[[], {"instance": ${json}}, ${EMBED}]`, 'utf8'),
    properties: {
      ...native,
      // Celery's correlation_id is the task id; the envelope's correlation id is root_id.
      correlationId: envelope.id,
      contentType: 'application/json',
      contentEncoding: 'utf-8',
      headers,
    },
  };
}

/**
 * True when a message is a Celery task message (protocol v2): it has the `task` and `id`
 * headers that a Celery worker dispatches on. Decided from the headers alone, without parsing the
 * body: a native Tidings payload may itself be a three-element array. Messages Tidings encodes
 * with {@link encodeCelery} are Celery messages too.
 */
export function isCeleryMessage(message: { readonly properties: MessageProperties }): boolean {
  const headers = message.properties.headers;
  return header(headers, 'task') !== undefined && header(headers, 'id') !== undefined;
}

/**
 * Reads a Celery task message (protocol v2, JSON) as a Tidings message. The envelope comes from
 * Celery's headers, with Tidings' own headers preferred where a Tidings producer wrote them:
 *
 * | envelope | from |
 * |---|---|
 * | `id` | `id` (the task id) |
 * | `type`, `exchange`, `event`, `version` | `task` (the task name), which must be a Tidings routing key |
 * | `source` | `ce-source`, else `origin`, else `'celery'` |
 * | `time` | `ce-time`, else the `timestamp` property, else now (Celery sends no time) |
 * | `correlationId` | `root_id`, else the task id |
 * | `causationId` | `parent_id` (absent when `null`) |
 * | `traceparent`, `tracestate` | `traceparent`, `tracestate` (where Celery's OpenTelemetry instrumentation writes them) |
 *
 * The payload is `kwargs.instance`, else `args[0]`. Callbacks, errbacks, chains, chords, groups,
 * retries and `expires` are ignored; a message with an `eta` (or countdown) is refused, because
 * running it now would break what its sender asked for. Returns a {@link CeleryDecodeError} for a
 * message that cannot be read, which the runtime dead-letters with its reason.
 *
 * The body is parsed with `JSON.parse` and its objects are never merged into others, so keys such
 * as `__proto__` stay plain data.
 */
export function decodeCelery(message: {
  readonly routingKey: string;
  readonly body: Buffer;
  readonly properties: MessageProperties;
}): DecodedCelery | CeleryDecodeError {
  const p = message.properties;
  const h = p.headers;
  const id = header(h, 'id');
  const task = header(h, 'task');
  if (id === undefined || task === undefined) {
    return fail(
      'missing-envelope',
      'not a Celery task message: the "task" or "id" header is missing',
    );
  }
  const parsed = parseRoutingKey(task);
  if (!parsed) {
    return fail(
      'missing-envelope',
      `Celery task "${task}" is not a Tidings routing key (<exchange>.v<version>.<event>, such as order.v1.submit); name the task after the routing key`,
    );
  }
  const contentType = p.contentType?.toLowerCase();
  if (contentType !== undefined && contentType !== 'application/json') {
    return fail(
      'invalid-celery',
      `content type ${p.contentType} is not supported; configure Celery with task_serializer='json'`,
    );
  }
  const encoding = p.contentEncoding?.toLowerCase();
  if (encoding !== undefined && encoding !== 'utf-8' && encoding !== 'utf8') {
    return fail(
      'invalid-celery',
      `content encoding ${p.contentEncoding} is not supported (utf-8 only)`,
    );
  }
  const compression = header(h, 'compression');
  if (compression !== undefined) {
    return fail(
      'invalid-celery',
      `compressed bodies (${compression}) are not supported; unset Celery's task_compression`,
    );
  }
  const eta = header(h, 'eta');
  if (eta !== undefined) {
    return fail(
      'invalid-celery',
      `the task has an ETA (${eta}); delayed execution (eta, countdown) is not supported`,
    );
  }

  let body: unknown;
  try {
    body = JSON.parse(message.body.toString('utf8'));
  } catch (error) {
    return fail('invalid-json', `body is not JSON: ${(error as Error).message}`);
  }
  if (!Array.isArray(body) || body.length !== 3) {
    return fail(
      'invalid-celery',
      'the body is not a Celery protocol v2 body, a JSON array [args, kwargs, embed]',
    );
  }
  const [args, kwargs] = body as unknown[];
  if (!Array.isArray(args) || !isRecord(kwargs)) {
    return fail(
      'invalid-celery',
      'the body is [args, kwargs, embed] with args not an array or kwargs not an object',
    );
  }
  let payload: unknown;
  if (Object.hasOwn(kwargs, 'instance')) payload = kwargs.instance;
  else if (args.length > 0) payload = args[0];
  else {
    return fail(
      'invalid-celery',
      'no payload: the task has no "instance" keyword argument and no positional argument',
    );
  }

  const time = header(h, HEADERS.time);
  return {
    envelope: {
      id,
      type: task,
      exchange: parsed.exchange,
      event: parsed.event,
      version: parsed.version,
      source: header(h, HEADERS.source) ?? header(h, 'origin') ?? 'celery',
      time: time ?? timeFromTimestamp(p.timestamp) ?? new Date().toISOString(),
      correlationId: header(h, 'root_id') ?? id,
      causationId: header(h, 'parent_id'),
      traceparent: header(h, HEADERS.traceparent),
      tracestate: header(h, HEADERS.tracestate),
      key: header(h, HEADERS.key),
    },
    payload,
  };
}

/** A non-empty string header, read as an own property only (never from a prototype). */
function header(headers: Record<string, HeaderValue>, name: string): string | undefined {
  if (!Object.hasOwn(headers, name)) return undefined;
  const value = headers[name];
  const text =
    typeof value === 'string' ? value : Buffer.isBuffer(value) ? value.toString('utf8') : undefined;
  return text === '' ? undefined : text;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function fail(reason: CeleryDecodeFailure, error: string): CeleryDecodeError {
  return { reason, error };
}

/** `{'instance': <json>}`, cut at Celery's limit without copying a large payload whole. */
function kwargsRepr(json: string): string {
  const text = `{'instance': ${json.length > REPR_MAX ? json.slice(0, REPR_MAX) : json}}`;
  return text.length <= REPR_MAX ? text : `${text.slice(0, REPR_MAX - 3)}...`;
}
