import type { HeaderValue, MessageProperties, OutgoingMessage } from '../../envelope/envelope.js';

// Header values may be Buffers, which JSON cannot hold: they are stored as a one-key object
// with this key, and a header object of exactly that shape reads back as bytes.
const BYTES = '$tidings:bytes';

function toJson(value: HeaderValue): unknown {
  if (Buffer.isBuffer(value)) return { [BYTES]: value.toString('base64') };
  if (Array.isArray(value)) return value.map(toJson);
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = toJson(v);
    return out;
  }
  return value;
}

function fromJson(value: unknown): HeaderValue {
  if (Array.isArray(value)) return value.map(fromJson);
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value);
    if (entries.length === 1 && entries[0]![0] === BYTES && typeof entries[0]![1] === 'string') {
      return Buffer.from(entries[0]![1], 'base64');
    }
    const out: Record<string, HeaderValue> = {};
    for (const [k, v] of entries) out[k] = fromJson(v);
    return out;
  }
  return value as HeaderValue;
}

/** A message's properties as the JSON text of the outbox's `properties` column. */
export function encodeProperties(properties: MessageProperties): string {
  return JSON.stringify(toJson(properties as unknown as HeaderValue));
}

/**
 * The message a stored row holds. `properties` is the column's value, parsed (as `pg` returns
 * `jsonb`) or as text; throws a `TypeError` on anything else.
 */
export function decodeRow(row: {
  readonly exchange: unknown;
  readonly routing_key: unknown;
  readonly properties: unknown;
  readonly body: unknown;
}): OutgoingMessage {
  const raw = typeof row.properties === 'string' ? JSON.parse(row.properties) : row.properties;
  const properties = fromJson(raw) as unknown as MessageProperties;
  if (
    properties === null ||
    typeof properties !== 'object' ||
    Array.isArray(properties) ||
    properties.headers === null ||
    typeof properties.headers !== 'object'
  ) {
    throw new TypeError('the properties column is not an object with headers');
  }
  if (!Buffer.isBuffer(row.body)) throw new TypeError('the body column is not bytes');
  if (typeof row.exchange !== 'string' || typeof row.routing_key !== 'string') {
    throw new TypeError('the exchange or routing_key column is not text');
  }
  return { exchange: row.exchange, routingKey: row.routing_key, body: row.body, properties };
}
