import type { HeaderValue } from '../../envelope/envelope.js';

/*
 * How large a header table amqplib can send, and how to make a too-large one fit.
 *
 * amqplib encodes the headers of a publish into a scratch buffer of 64 KiB. A larger table does
 * not fail cleanly: a string that overflows the buffer is cut silently, and when it is the last
 * header, amqplib sends a frame whose lengths disagree and RabbitMQ closes the whole connection
 * (541 INTERNAL_ERROR). Other clients have no such limit (RabbitMQ takes a content header up to
 * its frame size, 128 KiB by default), and a header close to the limit grows past it when Tidings
 * adds its retry and dead-letter headers to a copy. So the publisher measures a table before
 * amqplib sees it, and the consumer trims one it cannot copy.
 */

/** The size of amqplib's scratch buffer for a header table (`defs.js`), in bytes. */
export const AMQPLIB_TABLE_BYTES = 65_536;

/** Nesting past this is refused rather than measured (decoded tables are never this deep). */
const MAX_DEPTH = 100;

/**
 * Bytes of `headers` encoded as an AMQP field table the way amqplib writes it (its 4-byte length
 * included); `Infinity` for a value amqplib cannot encode or nesting deeper than 100 levels.
 */
export function headerTableBytes(headers: Readonly<Record<string, unknown>>): number {
  return tableBytes(headers, 0);
}

function tableBytes(table: Readonly<Record<string, unknown>>, depth: number): number {
  if (depth > MAX_DEPTH) return Number.POSITIVE_INFINITY;
  let n = 4;
  // for-in, as amqplib iterates (prototype-less objects have nothing inherited).
  for (const key in table) {
    const value = table[key];
    if (value === undefined) continue;
    n += 1 + Buffer.byteLength(key) + fieldBytes(value, depth);
  }
  return n;
}

/** Bytes of one field value as amqplib encodes it, its type tag included. */
function fieldBytes(value: unknown, depth: number): number {
  switch (typeof value) {
    case 'string':
      return 5 + Buffer.byteLength(value);
    case 'boolean':
      return 2;
    case 'number':
      if (!Number.isInteger(value)) return 9;
      if (value >= -128 && value < 128) return 2;
      if (value >= -0x8000 && value < 0x8000) return 3;
      if (value >= -0x8000_0000 && value < 0x8000_0000) return 5;
      return 9;
    case 'object': {
      if (value === null) return 1;
      if (Buffer.isBuffer(value)) return 5 + value.length;
      if (Array.isArray(value)) {
        if (depth >= MAX_DEPTH) return Number.POSITIVE_INFINITY;
        let n = 5;
        for (const item of value) n += fieldBytes(item, depth + 1);
        return n;
      }
      const typed = value as { '!'?: unknown; value?: unknown };
      if (Object.hasOwn(typed, '!')) return typedBytes(typed['!'], typed.value);
      return 1 + tableBytes(value as Record<string, unknown>, depth + 1);
    }
    default:
      return Number.POSITIVE_INFINITY;
  }
}

/** amqplib's `{ '!': type, value }` escape for exact types (timestamps, decimals...). */
function typedBytes(type: unknown, value: unknown): number {
  switch (type) {
    case 'byte':
    case 'int8':
    case 'unsignedbyte':
    case 'uint8':
    case 'boolean':
      return 2;
    case 'short':
    case 'int16':
    case 'unsignedshort':
    case 'uint16':
      return 3;
    case 'int':
    case 'int32':
    case 'unsignedint':
    case 'uint32':
    case 'float':
      return 5;
    case 'decimal':
      return 6;
    case 'long':
    case 'int64':
    case 'double':
    case 'float64':
    case 'timestamp':
      return 9;
    case 'string':
      return typeof value === 'string' ? 5 + Buffer.byteLength(value) : Number.POSITIVE_INFINITY;
    default:
      return Number.POSITIVE_INFINITY;
  }
}

/** One header made smaller to fit: its name, its size, and the bytes of it kept. */
export interface TrimmedHeader {
  readonly header: string;
  /** The value's size: UTF-8 bytes of a string, length of bytes, else its encoded size. */
  readonly bytes: number;
  /** 0 when it was dropped. */
  readonly kept: number;
}

/** A string or byte header longer than this is cut to it; anything else too large is dropped. */
const KEPT_BYTES = 1024;

/**
 * Makes a header table fit in `budget` bytes: the largest headers not named in `keep` first,
 * each string or byte value cut to its first 1 KiB, other values dropped; then, if that is not
 * enough, those headers dropped altogether. Returns the new table and what was changed, largest
 * first; `fits` is false when even that was not enough (the headers in `keep` are too large).
 */
export function trimHeaders(
  headers: Readonly<Record<string, HeaderValue>>,
  keep: ReadonlySet<string>,
  budget: number,
): { headers: Record<string, HeaderValue>; trimmed: TrimmedHeader[]; fits: boolean } {
  const out = Object.create(null) as Record<string, HeaderValue>;
  for (const key of Object.keys(headers)) out[key] = headers[key];
  const sizes = Object.keys(out)
    .filter((key) => out[key] !== undefined && !keep.has(key))
    .map((key) => ({
      key,
      bytes: valueBytes(out[key]),
      encoded: 1 + Buffer.byteLength(key) + fieldBytes(out[key], 0),
    }))
    .sort((a, b) => b.encoded - a.encoded);
  const changed = new Map<string, TrimmedHeader>();
  let total = headerTableBytes(out);
  for (const pass of ['cut', 'drop'] as const) {
    for (const { key, bytes } of sizes) {
      if (total <= budget) break;
      if (!(key in out)) continue;
      const cut = pass === 'cut' ? cutValue(out[key]) : undefined;
      if (cut === out[key]) continue;
      if (cut === undefined) delete out[key];
      else out[key] = cut;
      changed.set(key, { header: key, bytes, kept: cut === undefined ? 0 : byteLength(cut) });
      // Measured again rather than subtracted: an unmeasurable value counts as Infinity.
      total = headerTableBytes(out);
    }
  }
  const order = sizes.map((x) => x.key);
  const trimmed = [...changed.values()].sort(
    (a, b) => order.indexOf(a.header) - order.indexOf(b.header),
  );
  return { headers: out, trimmed, fits: total <= budget };
}

/** The first 1 KiB of a string (on a character boundary) or of bytes; undefined for other values. */
function cutValue(value: HeaderValue): HeaderValue | undefined {
  if (Buffer.isBuffer(value)) {
    return value.length > KEPT_BYTES ? Buffer.from(value.subarray(0, KEPT_BYTES)) : value;
  }
  if (typeof value !== 'string') return undefined;
  if (Buffer.byteLength(value) <= KEPT_BYTES) return value;
  let end = Math.min(value.length, KEPT_BYTES);
  while (end > 0 && Buffer.byteLength(value.slice(0, end)) > KEPT_BYTES) end--;
  // Never end on the first half of a surrogate pair.
  const code = value.charCodeAt(end - 1);
  if (code >= 0xd800 && code <= 0xdbff) end--;
  return value.slice(0, end);
}

function byteLength(value: HeaderValue): number {
  if (Buffer.isBuffer(value)) return value.length;
  return typeof value === 'string' ? Buffer.byteLength(value) : 0;
}

/** UTF-8 bytes of a string, length of bytes, else the encoded size of the value. */
function valueBytes(value: unknown): number {
  if (Buffer.isBuffer(value)) return value.length;
  if (typeof value === 'string') return Buffer.byteLength(value);
  return fieldBytes(value, 0);
}

/**
 * Why amqplib cannot send `headers`, or `undefined` when it can as far as their size goes: the
 * table's encoded size over {@link AMQPLIB_TABLE_BYTES}, or a value it cannot encode, naming the
 * largest header.
 */
export function headersRefusal(headers: Readonly<Record<string, unknown>>): string | undefined {
  const bytes = headerTableBytes(headers);
  if (bytes <= AMQPLIB_TABLE_BYTES) return undefined;
  let largest = '';
  let largestBytes = -1;
  for (const key in headers) {
    if (headers[key] === undefined) continue;
    const n = valueBytes(headers[key]);
    if (n > largestBytes) {
      largest = key;
      largestBytes = n;
    }
  }
  const name = JSON.stringify(largest.length > 64 ? `${largest.slice(0, 64)}…` : largest);
  if (!Number.isFinite(bytes)) {
    return `header ${name} has a value amqplib cannot encode, or nesting deeper than ${MAX_DEPTH} levels`;
  }
  return (
    `its headers take ${bytes} bytes encoded, over the ${AMQPLIB_TABLE_BYTES} amqplib can send ` +
    `(the largest, ${name}, has ${largestBytes})`
  );
}
