import { randomFillSync } from 'node:crypto';

// Random bytes are drawn in blocks: one system call per 4,096 ids instead of one per id (with 256
// a block, drawing them was a tenth of the id's cost on the embedded broker).
const POOL_SIZE = 16 * 4096;
const pool = Buffer.allocUnsafe(POOL_SIZE);
let poolOffset = POOL_SIZE;
let lastMs = -1;
let counter = 0;

/** The two ASCII hex digits of each byte value, at 2 × byte. */
const HEX_DIGITS = new Uint8Array(512);
for (let i = 0; i < 256; i++) {
  HEX_DIGITS[2 * i] = '0123456789abcdef'.charCodeAt(i >> 4);
  HEX_DIGITS[2 * i + 1] = '0123456789abcdef'.charCodeAt(i & 15);
}

/**
 * The id is written as ASCII into this buffer and read out as one string: concatenating 22 pieces
 * made a rope of 21 intermediate strings per id (about 700 bytes of garbage, and half the time).
 */
const text = Buffer.alloc(36, 0x2d); // '-' stays at 8, 13, 18 and 23

function hex(at: number, byte: number): void {
  text[at] = HEX_DIGITS[2 * byte]!;
  text[at + 1] = HEX_DIGITS[2 * byte + 1]!;
}

/**
 * Returns a UUID version 7 (RFC 9562): 48 bits of Unix time in milliseconds, then a 12-bit counter
 * that keeps ids created in the same millisecond in creation order, then 62 random bits. Ids sort
 * by creation time as strings and as bytes.
 */
export function uuidv7(now: number = Date.now()): string {
  if (poolOffset + 16 > POOL_SIZE) {
    randomFillSync(pool);
    poolOffset = 0;
  }
  const r = poolOffset;
  poolOffset += 16;
  if (now > lastMs) {
    lastMs = now;
    // Start each millisecond from a random point in the lower half, leaving room to count up.
    counter = pool[r + 6]! & 0x07;
  } else {
    counter++;
    if (counter > 0xfff) {
      // More than 4096 ids in one millisecond: borrow the next millisecond to stay monotonic.
      lastMs++;
      counter = 0;
    }
  }
  const ms = lastMs;
  const hi = Math.floor(ms / 0x100000000);
  const lo = ms >>> 0;
  hex(0, (hi >>> 8) & 0xff);
  hex(2, hi & 0xff);
  hex(4, (lo >>> 24) & 0xff);
  hex(6, (lo >>> 16) & 0xff);
  hex(9, (lo >>> 8) & 0xff);
  hex(11, lo & 0xff);
  hex(14, 0x70 | (counter >>> 8));
  hex(16, counter & 0xff);
  hex(19, 0x80 | (pool[r + 8]! & 0x3f));
  hex(21, pool[r + 9]!);
  for (let i = 0; i < 6; i++) hex(24 + 2 * i, pool[r + 10 + i]!);
  return text.toString('latin1', 0, 36);
}

/**
 * RFC 3339 with milliseconds, UTC (`Date#toISOString`), of the last millisecond asked for: at
 * thousands of messages a second most share their millisecond, and formatting a date costs more
 * than the rest of an envelope.
 */
class IsoOfLast {
  private ms = -1;
  private text = '';

  of(ms: number): string {
    if (ms !== this.ms) {
      this.ms = ms;
      this.text = new Date(ms).toISOString();
    }
    return this.text;
  }
}

const nowText = new IsoOfLast();

/** The current time as RFC 3339 with milliseconds, UTC; a publish needs it for every message. */
export function isoNow(now: number = Date.now()): string {
  return nowText.of(now);
}

/** The value of one ASCII hex digit, or -1. */
function hexValue(code: number): number {
  if (code >= 0x30 && code <= 0x39) return code - 0x30;
  const lower = code | 0x20;
  return lower >= 0x61 && lower <= 0x66 ? lower - 0x57 : -1;
}

/** Whether `id` has the layout of a UUIDv7: 36 characters, dashes in place, version 7, variant 10. */
function v7Shape(id: string): boolean {
  if (id.length !== 36 || id.charCodeAt(8) !== 0x2d || id.charCodeAt(13) !== 0x2d) return false;
  if (id.charCodeAt(14) !== 0x37 || id.charCodeAt(18) !== 0x2d || id.charCodeAt(23) !== 0x2d) {
    return false;
  }
  const variant = hexValue(id.charCodeAt(19));
  return variant >= 8 && variant <= 11;
}

/** The time part of the last id read (`xxxxxxxx-xxxx`), and its value: most ids share it. */
let lastPrefix = '';
let lastPrefixMs = 0;

/**
 * The Unix time in milliseconds that a UUID version 7 begins with (its first 48 bits), or
 * `undefined` when `id` is not a UUIDv7 in its canonical 8-4-4-4-12 form (hex of either case,
 * version digit 7, variant 10). Only the time is read: the rest of the id is not checked.
 */
export function uuidv7Time(id: string): number | undefined {
  if (!v7Shape(id)) return undefined;
  // Ids made in the same millisecond share their first 13 characters.
  if (lastPrefix !== '' && id.startsWith(lastPrefix)) return lastPrefixMs;
  let ms = 0;
  for (let i = 0; i < 13; i++) {
    if (i === 8) continue;
    const digit = hexValue(id.charCodeAt(i));
    if (digit < 0) return undefined;
    ms = ms * 16 + digit;
  }
  lastPrefix = id.slice(0, 13);
  lastPrefixMs = ms;
  return ms;
}

/** A cache of its own: read ids are often older than the time a handler publishes at. */
const idText = new IsoOfLast();

/** The RFC 3339 time of a UUIDv7 id (see {@link uuidv7Time}), or `undefined`. */
export function uuidv7IsoTime(id: string): string | undefined {
  const ms = uuidv7Time(id);
  return ms === undefined ? undefined : idText.of(ms);
}
