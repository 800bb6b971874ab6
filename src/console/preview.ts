import type { HeaderValue } from '../envelope/envelope.js';

/** A body shown to people: bounded, whatever the message holds. */
export interface BodyPreview {
  /** `json` when the body parsed as JSON (shown indented), `text` for other UTF-8, else `binary`. */
  readonly kind: 'json' | 'text' | 'binary';
  /** At most the preview's limit in characters; a hex dump of the first bytes for `binary`. */
  readonly text: string;
  /** True when `text` leaves something out (length, depth or bytes). */
  readonly truncated: boolean;
  /** Size of the whole body in bytes. */
  readonly bytes: number;
}

/** Bodies larger than this are not parsed as JSON: their first characters are shown as text. */
const PARSE_LIMIT = 256 * 1024;
/** Deeper values are shown as `…`: a deeply nested body must not cost a deep recursion. */
const MAX_DEPTH = 16;
const HEX_BYTES = 256;

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * A bounded, printable view of a message body: indented JSON when it parses (values deeper than
 * 16 levels elided), else the text, else a hex dump of its first 256 bytes; never more than
 * `limit` characters, so a huge or hostile body costs the server and the page little.
 */
export function previewBody(body: Buffer, limit: number): BodyPreview {
  const bytes = body.length;
  let text: string;
  try {
    text = utf8.decode(bytes > PARSE_LIMIT ? body.subarray(0, PARSE_LIMIT) : body);
  } catch {
    // A multi-byte character cut at PARSE_LIMIT is not binary: decode that case leniently.
    if (bytes > PARSE_LIMIT && isUtf8Prefix(body.subarray(0, PARSE_LIMIT))) {
      text = body.subarray(0, PARSE_LIMIT).toString('utf8');
    } else {
      return {
        kind: 'binary',
        text: hexDump(body.subarray(0, HEX_BYTES)),
        truncated: bytes > HEX_BYTES,
        bytes,
      };
    }
  }
  if (bytes <= PARSE_LIMIT) {
    let value: unknown;
    let parsed = false;
    try {
      value = JSON.parse(text);
      parsed = true;
    } catch {
      // Not JSON (that may be why it was dead-lettered): shown as text.
    }
    if (parsed) {
      const out = new BoundedWriter(limit);
      writeJson(value, 0, out);
      return { kind: 'json', text: out.text, truncated: out.truncated, bytes };
    }
  }
  const cut = text.length > limit;
  return {
    kind: 'text',
    text: cut ? text.slice(0, limit) : text,
    truncated: cut || bytes > PARSE_LIMIT,
    bytes,
  };
}

function isUtf8Prefix(bytes: Buffer): boolean {
  // Drop up to three trailing bytes of a character cut in the middle, then decode strictly.
  for (let cut = 0; cut <= 3 && cut < bytes.length; cut++) {
    try {
      utf8.decode(bytes.subarray(0, bytes.length - cut));
      return true;
    } catch {
      // Try with one byte less.
    }
  }
  return false;
}

function hexDump(bytes: Buffer): string {
  const lines: string[] = [];
  for (let i = 0; i < bytes.length; i += 16) {
    const row = bytes.subarray(i, i + 16);
    const hex = [...row].map((b) => b.toString(16).padStart(2, '0')).join(' ');
    const ascii = [...row]
      .map((b) => (b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : '.'))
      .join('');
    lines.push(`${i.toString(16).padStart(8, '0')}  ${hex.padEnd(47)}  ${ascii}`);
  }
  return lines.join('\n');
}

/** Collects text up to a limit, then only remembers that more was left out. */
class BoundedWriter {
  private parts: string[] = [];
  private length = 0;
  truncated = false;

  constructor(private readonly limit: number) {}

  get full(): boolean {
    return this.length >= this.limit;
  }

  write(s: string): void {
    if (this.full) {
      this.truncated = true;
      return;
    }
    const room = this.limit - this.length;
    if (s.length > room) {
      this.parts.push(s.slice(0, room));
      this.length = this.limit;
      this.truncated = true;
      return;
    }
    this.parts.push(s);
    this.length += s.length;
  }

  get text(): string {
    return this.parts.join('');
  }
}

function writeJson(value: unknown, depth: number, out: BoundedWriter): void {
  if (out.full) {
    out.truncated = true;
    return;
  }
  if (value === null || typeof value !== 'object') {
    out.write(JSON.stringify(value) ?? 'null');
    return;
  }
  const indent = '  '.repeat(depth + 1);
  const close = '  '.repeat(depth);
  const isArray = Array.isArray(value);
  const entries: [string | undefined, unknown][] = isArray
    ? (value as unknown[]).map((v) => [undefined, v])
    : Object.entries(value as Record<string, unknown>);
  const [open, end] = isArray ? ['[', ']'] : ['{', '}'];
  if (entries.length === 0) {
    out.write(`${open}${end}`);
    return;
  }
  if (depth >= MAX_DEPTH) {
    out.write(`${open}…${end}`);
    out.truncated = true;
    return;
  }
  out.write(`${open}\n`);
  for (let i = 0; i < entries.length && !out.full; i++) {
    const [key, v] = entries[i]!;
    out.write(indent);
    if (key !== undefined) out.write(`${JSON.stringify(key)}: `);
    writeJson(v, depth + 1, out);
    out.write(i < entries.length - 1 ? ',\n' : '\n');
  }
  out.write(`${close}${end}`);
}

/**
 * Header values as JSON-friendly values for the page: buffers as UTF-8 text, nested tables
 * flattened to JSON text, every string cut at `limit` characters.
 */
export function previewHeaders(
  headers: Readonly<Record<string, HeaderValue>>,
  limit = 1000,
): Record<string, string | number | boolean | null> {
  // No prototype: a header named __proto__ stays a key.
  const out = Object.create(null) as Record<string, string | number | boolean | null>;
  const cut = (s: string) => (s.length > limit ? `${s.slice(0, limit)}…` : s);
  for (const key of Object.keys(headers).sort()) {
    const v = headers[key];
    if (v === undefined) continue;
    if (v === null || typeof v === 'number' || typeof v === 'boolean') out[key] = v;
    else if (typeof v === 'string') out[key] = cut(v);
    else if (Buffer.isBuffer(v)) out[key] = cut(v.toString('utf8'));
    else {
      let text: string;
      try {
        text = JSON.stringify(v, (_k, x: unknown) => (Buffer.isBuffer(x) ? x.toString('utf8') : x));
      } catch {
        text = String(v);
      }
      out[key] = cut(text);
    }
  }
  return out;
}
