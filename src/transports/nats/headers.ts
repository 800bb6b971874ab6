import { type MsgHdrs, headers as natsHeaders } from '@nats-io/transport-node';
import type { HeaderValue, MessageProperties } from '../../envelope/envelope.js';

/*
 * AMQP-style message properties and typed headers on NATS, whose headers are strings. These names
 * are persistent identifiers (docs/nats.md lists them): a consumer of another version must read
 * what this one wrote.
 */

/** NATS header names that carry Tidings' message properties (and nothing else). */
export const PROPERTY_HEADERS = {
  messageId: 'tidings-message-id',
  correlationId: 'tidings-correlation-id',
  type: 'tidings-type',
  appId: 'tidings-app-id',
  /** Seconds since the Unix epoch, in decimal. */
  timestamp: 'tidings-timestamp',
  contentType: 'content-type',
  contentEncoding: 'content-encoding',
} as const;

/**
 * Headers that cannot travel as a plain NATS header (a number, a boolean, bytes, a list, a value
 * with a line break or surrounding white space, a name NATS refuses or reserves), as one JSON
 * object: `{"tidings-attempts": 2}`. Bytes are `{"$bytes": "<base64>"}`; an object whose keys
 * start with `$` is wrapped as `{"$object": {...}}`, so nothing is ambiguous.
 */
export const TYPED_HEADERS = 'tidings-typed-headers';

/**
 * When a retried copy is due (RFC 3339). The transport holds the copy back until then; it is not
 * shown to handlers.
 */
export const DUE_HEADER = 'tidings-retry-due';

/** Properties whose value NATS cannot carry as is (a line break in an id), as one JSON object. */
export const TYPED_PROPERTIES = 'tidings-typed-properties';

const PROPERTY_KEYS = Object.keys(PROPERTY_HEADERS) as (keyof typeof PROPERTY_HEADERS)[];

const RESERVED = new Set<string>([
  ...Object.values(PROPERTY_HEADERS),
  TYPED_HEADERS,
  TYPED_PROPERTIES,
  DUE_HEADER,
]);

/** True for names nats-server itself interprets (`Nats-Msg-Id`, `Nats-Expected-Stream`, ...). */
function isServerHeader(name: string): boolean {
  return name.length >= 5 && name.slice(0, 5).toLowerCase() === 'nats-';
}

// Printable ASCII without ':' (what NATS accepts in a header name).
const HEADER_NAME = /^[!-9;-~]+$/;
// No line breaks, no other control characters: the value survives NATS's header parsing.
function hasControl(value: string): boolean {
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if ((c < 0x20 && c !== 0x09) || c === 0x7f) return true;
  }
  return false;
}

function plainValue(value: string): boolean {
  return value === value.trim() && !hasControl(value);
}

/** Encodes properties and headers as NATS headers; `extra` (already strings) is added as is. */
export function encodeHeaders(
  properties: MessageProperties,
  extra?: Readonly<Record<string, string>>,
): MsgHdrs {
  const out = natsHeaders();
  const p = properties;
  let odd: Record<string, string | number> | undefined;
  for (const key of PROPERTY_KEYS) {
    const value = p[key];
    if (value === undefined) continue;
    const text = String(value);
    if (plainValue(text)) out.set(PROPERTY_HEADERS[key], text);
    else {
      odd ??= {};
      odd[key] = value;
    }
  }
  if (odd) out.set(TYPED_PROPERTIES, JSON.stringify(odd));
  let typed: Record<string, unknown> | undefined;
  for (const name of Object.keys(p.headers)) {
    const value = p.headers[name];
    if (value === undefined) continue;
    if (
      typeof value === 'string' &&
      plainValue(value) &&
      HEADER_NAME.test(name) &&
      !RESERVED.has(name) &&
      !isServerHeader(name)
    ) {
      out.set(name, value);
    } else {
      typed ??= {};
      typed[name] = toJson(value);
    }
  }
  if (typed) out.set(TYPED_HEADERS, JSON.stringify(typed));
  if (extra) for (const [name, value] of Object.entries(extra)) out.set(name, value);
  return out;
}

/** What {@link decodeHeaders} read from a message's NATS headers. */
export interface DecodedHeaders {
  readonly properties: MessageProperties;
  /** The retried copy's due time (ms since the epoch), when it is one. */
  readonly dueAt: number | undefined;
}

/** Reads properties and headers back; headers come as a prototype-less object. */
export function decodeHeaders(h: MsgHdrs | undefined): DecodedHeaders {
  const headers = Object.create(null) as Record<string, HeaderValue>;
  const properties: MessageProperties = { headers };
  if (!h) return { properties, dueAt: undefined };
  let dueAt: number | undefined;
  for (const name of h.keys()) {
    const value = h.get(name);
    switch (name) {
      case PROPERTY_HEADERS.messageId:
        properties.messageId = value;
        break;
      case PROPERTY_HEADERS.correlationId:
        properties.correlationId = value;
        break;
      case PROPERTY_HEADERS.type:
        properties.type = value;
        break;
      case PROPERTY_HEADERS.appId:
        properties.appId = value;
        break;
      case PROPERTY_HEADERS.timestamp: {
        const n = Number(value);
        if (Number.isFinite(n)) properties.timestamp = n;
        break;
      }
      case PROPERTY_HEADERS.contentType:
        properties.contentType = value;
        break;
      case PROPERTY_HEADERS.contentEncoding:
        properties.contentEncoding = value;
        break;
      case DUE_HEADER: {
        const t = Date.parse(value);
        if (Number.isFinite(t)) dueAt = t;
        break;
      }
      case TYPED_HEADERS:
      case TYPED_PROPERTIES:
        break;
      default:
        if (!isServerHeader(name)) headers[name] = value;
    }
  }
  const oddProperties = h.get(TYPED_PROPERTIES);
  if (oddProperties) {
    try {
      const parsed = JSON.parse(oddProperties) as Record<string, unknown>;
      for (const key of PROPERTY_KEYS) {
        const v = parsed[key];
        if (key === 'timestamp' ? typeof v === 'number' : typeof v === 'string') {
          (properties as unknown as Record<string, unknown>)[key] = v;
        }
      }
    } catch {
      headers[TYPED_PROPERTIES] = oddProperties;
    }
  }
  const typed = h.get(TYPED_HEADERS);
  if (typed) {
    try {
      const parsed = JSON.parse(typed) as Record<string, unknown>;
      for (const name of Object.keys(parsed)) {
        Object.defineProperty(headers, name, {
          value: fromJson(parsed[name]),
          enumerable: true,
          writable: true,
          configurable: true,
        });
      }
    } catch {
      // Not written by Tidings: kept as the string it is.
      headers[TYPED_HEADERS] = typed;
    }
  }
  return { properties, dueAt };
}

function toJson(value: HeaderValue): unknown {
  if (Buffer.isBuffer(value)) return { $bytes: value.toString('base64') };
  if (typeof value === 'number' && !Number.isFinite(value)) return { $number: String(value) };
  if (Array.isArray(value)) return value.map(toJson);
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    let tagged = false;
    for (const key of Object.keys(value)) {
      if (key.startsWith('$')) tagged = true;
      const v = value[key];
      if (v !== undefined) out[key] = toJson(v);
    }
    return tagged ? { $object: out } : out;
  }
  return value;
}

function fromJson(value: unknown): HeaderValue {
  if (Array.isArray(value)) return value.map(fromJson);
  if (value !== null && typeof value === 'object') {
    const o = value as Record<string, unknown>;
    const keys = Object.keys(o);
    if (keys.length === 1 && typeof o.$bytes === 'string') return Buffer.from(o.$bytes, 'base64');
    if (keys.length === 1 && typeof o.$number === 'string') return Number(o.$number);
    const inner =
      keys.length === 1 && o.$object !== null && typeof o.$object === 'object'
        ? (o.$object as Record<string, unknown>)
        : o;
    const out = Object.create(null) as Record<string, HeaderValue>;
    for (const key of Object.keys(inner)) out[key] = fromJson(inner[key]);
    return out;
  }
  return value as HeaderValue;
}
