import type { HeaderValue } from '../envelope/envelope.js';

/*
 * Showing what a dead-letter queue holds, safely: a dead letter can hold anything another client
 * sent (a 100 kB header, a body nested ten thousand levels deep, terminal escapes), and nothing
 * the CLI shows may crash it or flood the terminal.
 */

/** Nesting past this is shown as text: `JSON.stringify` recurses, and deep input overflows the stack. */
export const MAX_JSON_DEPTH = 64;

/**
 * How deeply the JSON text nests arrays and objects, counted without parsing (so without
 * recursion); stops counting past `limit`.
 */
export function jsonDepth(text: string, limit = Number.POSITIVE_INFINITY): number {
  let depth = 0;
  let max = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c)
        i++; // a backslash escapes the next character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      depth++;
      if (depth > max) {
        max = depth;
        if (max > limit) return max;
      }
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return max;
}

/**
 * A message body for JSON output: the parsed value when it is JSON nested at most
 * {@link MAX_JSON_DEPTH} levels, else the text itself, with a note saying why. `headers` turns
 * header values into JSON-safe ones the same way (bytes as UTF-8 text, nesting bounded).
 */
export function boundedJson(text: string): {
  value: unknown;
  note: string | undefined;
  headers: (headers: Readonly<Record<string, HeaderValue>>) => Record<string, unknown>;
} {
  const headers = (h: Readonly<Record<string, HeaderValue>>) => {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(h)) out[k] = plain(v, 0);
    return out;
  };
  const depth = jsonDepth(text, MAX_JSON_DEPTH);
  if (depth > MAX_JSON_DEPTH) {
    return {
      value: text,
      note: `JSON nested more than ${MAX_JSON_DEPTH} levels deep, shown as text`,
      headers,
    };
  }
  try {
    return { value: JSON.parse(text), note: undefined, headers };
  } catch {
    // Not JSON (that may be why it is here): shown as text.
    return { value: text, note: undefined, headers };
  }
}

/** A header value as JSON can show it: bytes as UTF-8 text, tables and arrays to a bounded depth. */
function plain(value: unknown, depth: number): unknown {
  if (Buffer.isBuffer(value)) return value.toString('utf8');
  if (typeof value === 'bigint') return value.toString();
  if (typeof value !== 'object' || value === null) return value;
  if (depth >= MAX_JSON_DEPTH) return `(nested more than ${MAX_JSON_DEPTH} levels deep)`;
  if (Array.isArray(value)) return value.map((v) => plain(v, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = plain(v, depth + 1);
  return out;
}

/** Characters that would move the cursor, ring, or start a terminal escape sequence. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: these are what it replaces
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g;

/**
 * Lays out rows as columns two spaces apart, the last one not padded: control characters become
 * spaces, and cells are cut with `…` so that no line is wider than `columns`. The widest columns
 * give way first, those in `keep` (an id one needs to copy whole) only when the others cannot
 * give more; every column keeps at least its heading's width (or its widest cell, if narrower),
 * and past that lines may be wider than `columns`.
 */
export function fitTable(
  rows: readonly (readonly string[])[],
  columns: number,
  keep: readonly number[] = [],
): string[] {
  const n = rows[0]?.length ?? 0;
  // Cut every cell to the line first: the work stays bounded whatever a cell holds.
  const line = Math.max(80, columns);
  const cells = rows.map((r) => r.map((c) => cut(c.replace(CONTROL, ' '), line)));
  const lengths = cells.map((r) => r.map(width));
  const natural = Array.from({ length: n }, (_, c) => Math.max(...lengths.map((l) => l[c] ?? 0)));
  const least = natural.map((w, c) => Math.min(w, Math.max(4, lengths[0]?.[c] ?? 0)));
  const budget = columns - 2 * (n - 1);
  /** Widths with every column in `give` at most `cap` wide (and at least its least). */
  const capped = (give: ReadonlySet<number>, cap: number) =>
    natural.map((w, c) => (give.has(c) ? Math.max(least[c]!, Math.min(w, cap)) : w));
  const sum = (ws: readonly number[]) => ws.reduce((a, b) => a + b, 0);
  let widths = natural;
  if (sum(natural) > budget) {
    const all = natural.map((_, c) => c);
    const others = new Set(all.filter((c) => !keep.includes(c)));
    const give = sum(capped(others, 0)) <= budget ? others : new Set(all);
    // The largest cap that fits.
    let lo = 0;
    let hi = Math.max(...natural);
    while (lo < hi) {
      const mid = Math.ceil((lo + hi) / 2);
      if (sum(capped(give, mid)) <= budget) lo = mid;
      else hi = mid - 1;
    }
    widths = capped(give, lo);
  }
  return cells.map((r) =>
    r
      .map((cell, c) => {
        const w = widths[c]!;
        const shown = cut(cell, w);
        return c === n - 1 ? shown : shown + ' '.repeat(Math.max(0, w - width(shown)));
      })
      .join('  ')
      .trimEnd(),
  );
}

/** Length in code points (a surrogate pair is one character on screen). */
function width(text: string): number {
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0xd800 || c > 0xdbff) n++;
  }
  return n;
}

/** The text cut to `max` code points, the last one `…` when something was cut. */
function cut(text: string, max: number): string {
  if (text.length <= max) return text;
  if (width(text) <= max) return text;
  let out = '';
  let n = 0;
  for (const ch of text) {
    if (n === max - 1) break;
    out += ch;
    n++;
  }
  return `${out}…`;
}
