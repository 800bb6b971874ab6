import { splitWords } from '../../contracts/pattern.js';

/*
 * How Tidings names things on NATS. Everything here is a persistent identifier, like a RabbitMQ
 * queue name: changing an encoding strands the messages stored under the old names. The layout is
 * described in docs/nats.md.
 *
 * Subjects (`<ns>` is the namespace, `tidings` unless configured):
 *
 *   <ns>.x.<exchange>.<word>...<word>.$    a message published to an exchange with a routing key
 *   <ns>.q.<word>...<word>                 a message sent to one queue (AMQP's default exchange)
 *
 * Every routing-key word becomes one subject token. NATS tokens cannot be empty and `*`, `>`, `.`
 * and white space are special, while AMQP words may be empty or hold anything, so a word is
 * escaped: `[A-Za-z0-9_-]` stays as it is, every other character becomes `%XX` per UTF-8 byte,
 * and the empty word becomes a lone `%`. The final `$` token ends every exchange subject: it is
 * what lets AMQP's `#` (zero or more words) map exactly to NATS's `>` (one or more tokens).
 */

/** The token that ends every exchange subject. */
export const END_TOKEN = '$';
/** The token of an empty routing-key word (`a..b` has one). */
export const EMPTY_WORD = '%';

const PLAIN_WORD = /^[A-Za-z0-9_-]+$/;
const PLAIN_CHAR = /[A-Za-z0-9_-]/;

/** Escapes one routing-key word as a NATS subject token (see the module comment). */
export function encodeWord(word: string): string {
  if (PLAIN_WORD.test(word)) return word;
  if (word === '') return EMPTY_WORD;
  return percentEncode(word);
}

/** The inverse of {@link encodeWord}. */
export function decodeWord(token: string): string {
  if (token === EMPTY_WORD) return '';
  if (!token.includes('%')) return token;
  return percentDecode(token);
}

function percentEncode(text: string): string {
  let out = '';
  for (const ch of text) {
    if (PLAIN_CHAR.test(ch)) out += ch;
    else for (const byte of Buffer.from(ch, 'utf8')) out += `%${hex(byte)}`;
  }
  return out;
}

function percentDecode(text: string): string {
  const bytes: number[] = [];
  for (let i = 0; i < text.length; i++) {
    if (text[i] === '%') {
      bytes.push(Number.parseInt(text.slice(i + 1, i + 3), 16));
      i += 2;
    } else {
      bytes.push(text.charCodeAt(i));
    }
  }
  return Buffer.from(bytes).toString('utf8');
}

function hex(byte: number): string {
  return byte.toString(16).toUpperCase().padStart(2, '0');
}

/**
 * Escapes a queue or exchange name for a stream or consumer name, which may not contain `.`, `*`,
 * `>`, `/` or white space (and a `%` breaks nats-server 2.9's acknowledgement subjects). Dots
 * become `~`, other characters outside `[A-Za-z0-9_-]` become `=XX` per UTF-8 byte.
 */
export function encodeName(name: string): string {
  if (PLAIN_WORD.test(name)) return name;
  let out = '';
  for (const ch of name) {
    if (ch === '.') out += '~';
    else if (PLAIN_CHAR.test(ch)) out += ch;
    else for (const byte of Buffer.from(ch, 'utf8')) out += `=${hex(byte)}`;
  }
  return out;
}

/** The subject a message published to `exchange` with `routingKey` travels on. */
export function exchangeSubject(ns: string, exchange: string, routingKey: string): string {
  let subject = `${ns}.x.${encodeWord(exchange)}`;
  for (const word of splitWords(routingKey)) subject += `.${encodeWord(word)}`;
  return `${subject}.${END_TOKEN}`;
}

/** Every subject of one exchange: what its stream may capture. */
export function exchangeSpace(ns: string, exchange: string): string {
  return `${ns}.x.${encodeWord(exchange)}.>`;
}

/**
 * The subject an exchange's stream captures while no queue is bound: no message is ever published
 * on it (exchange subjects end with `$`), so every publish to the exchange is unrouted.
 */
export function placeholderSubject(ns: string, exchange: string): string {
  return `${ns}.x.${encodeWord(exchange)}`;
}

/** The subject of messages sent to one queue only (retries, dead letters, replays). */
export function queueSubject(ns: string, queue: string): string {
  let subject = `${ns}.q`;
  for (const word of splitWords(queue)) subject += `.${encodeWord(word)}`;
  return subject;
}

/** Where a message came from, read back from its subject. */
export type SubjectOrigin =
  | { readonly kind: 'exchange'; readonly exchange: string; readonly routingKey: string }
  | { readonly kind: 'queue'; readonly queue: string };

/** Reads the exchange and routing key (or the queue) back from a subject; undefined if foreign. */
export function parseSubject(ns: string, subject: string): SubjectOrigin | undefined {
  const tokens = subject.split('.');
  if (tokens[0] !== ns) return undefined;
  if (tokens[1] === 'x' && tokens.length >= 4 && tokens[tokens.length - 1] === END_TOKEN) {
    return {
      kind: 'exchange',
      exchange: decodeWord(tokens[2]!),
      routingKey: tokens.slice(3, -1).map(decodeWord).join('.'),
    };
  }
  if (tokens[1] === 'q') return { kind: 'queue', queue: tokens.slice(2).map(decodeWord).join('.') };
  return undefined;
}

/** The stream that holds an exchange's messages. */
export function exchangeStreamName(ns: string, exchange: string): string {
  return `${ns}_x_${encodeName(exchange)}`;
}

/** The stream that holds the messages sent to one queue (and nothing else). */
export function queueStreamName(ns: string, queue: string): string {
  return `${ns}_q_${encodeName(queue)}`;
}

/** The consumer of a queue's own stream. */
export function queueConsumerName(queue: string): string {
  return encodeName(queue);
}

/** The consumer, on an exchange's stream, of one binding of a queue. */
export function bindingConsumerName(queue: string, pattern: string): string {
  return `${bindingConsumerPrefix(queue)}${encodeName(pattern)}`;
}

/** What the names of a queue's binding consumers start with. */
export function bindingConsumerPrefix(queue: string): string {
  return `${encodeName(queue)}@`;
}

/**
 * Rewrites a pattern so that each run of wildcard words has its `*`s first and at most one `#`
 * last: `#.*` becomes `*.#`, `*.#.*` becomes `*.*.#`, `#.#` becomes `#`. The two match the same
 * routing keys (a run of k stars and a hash is "k or more words", in any order).
 */
export function normalizePattern(pattern: string): string[] {
  const out: string[] = [];
  let stars = 0;
  let hash = false;
  const flush = () => {
    for (let i = 0; i < stars; i++) out.push('*');
    if (hash) out.push('#');
    stars = 0;
    hash = false;
  };
  for (const word of splitWords(pattern)) {
    if (word === '*') stars++;
    else if (word === '#') hash = true;
    else {
      flush();
      out.push(word);
    }
  }
  flush();
  return out;
}

/** A binding pattern as a NATS filter subject, or why NATS cannot express it. */
export type PatternFilter =
  | { readonly ok: true; readonly filter: string; readonly normalized: string }
  | { readonly ok: false; readonly reason: string };

/**
 * Maps an AMQP binding pattern on `exchange` to the one NATS filter subject that matches exactly
 * the same routing keys: words map as in {@link exchangeSubject}, `*` to `*`, a final `#` to `>`
 * (which then also matches the end token, so `a.#` matches `a`). A `#` followed by a literal word
 * (`a.#.b`, `#.a`) has no NATS equivalent: that is refused, never approximated.
 */
export function patternFilter(ns: string, exchange: string, pattern: string): PatternFilter {
  const words = normalizePattern(pattern);
  const hashAt = words.indexOf('#');
  if (hashAt >= 0 && hashAt !== words.length - 1) {
    return {
      ok: false,
      reason:
        'NATS subjects have no wildcard for "zero or more words" before a literal word ' +
        '(`>` may only end a subject), so a "#" may only be followed by other wildcards',
    };
  }
  let filter = `${ns}.x.${encodeWord(exchange)}`;
  for (const word of words) {
    filter += `.${word === '*' ? '*' : word === '#' ? '>' : encodeWord(word)}`;
  }
  if (hashAt < 0) filter += `.${END_TOKEN}`;
  return { ok: true, filter, normalized: words.join('.') };
}

/** True when `subject` (no wildcards) matches the NATS `filter`. */
export function subjectMatches(filter: string, subject: string): boolean {
  return isSubset(subject.split('.'), filter.split('.'));
}

/** True when every subject `narrow` matches is matched by `wide` too. */
export function subsumes(wide: string, narrow: string): boolean {
  return isSubset(narrow.split('.'), wide.split('.'));
}

function isSubset(narrow: readonly string[], wide: readonly string[]): boolean {
  for (let i = 0; i < wide.length; i++) {
    const w = wide[i]!;
    const n = narrow[i];
    if (n === undefined) return false;
    if (w === '>') return true;
    if (n === '>') return false;
    if (w === '*') continue;
    if (n !== w) return false;
  }
  return narrow.length === wide.length;
}

/** True when some subject matches both filters. */
export function overlaps(a: string, b: string): boolean {
  const x = a.split('.');
  const y = b.split('.');
  for (let i = 0; ; i++) {
    const p = x[i];
    const q = y[i];
    if (p === undefined || q === undefined) return p === q;
    if (p === '>' || q === '>') return true;
    if (p !== '*' && q !== '*' && p !== q) return false;
  }
}

/** Drops the filters another one already covers (keeping one of equal filters). */
export function withoutSubsumed(filters: Iterable<string>): string[] {
  const unique = [...new Set(filters)];
  return unique.filter((f, i) => !unique.some((g, j) => j !== i && subsumes(g, f)));
}

/**
 * The subjects an exchange's stream captures so that it holds every message some filter wants.
 * nats-server refuses overlapping subjects within one stream, so overlapping filters that neither
 * covers the other are replaced by their least general common filter (token by token, `*` where
 * they differ, `>` from the first `>`). Then the stream also captures some subjects no filter
 * wants: a publish on one of them is stored for no queue (and reported routed). Exact whenever the
 * filters are disjoint or nested, as Tidings' default patterns (`<exchange>.*.<event>`) are.
 */
export function streamSubjects(filters: Iterable<string>): { subjects: string[]; exact: boolean } {
  let subjects = withoutSubsumed(filters);
  let exact = true;
  for (;;) {
    let merged = false;
    outer: for (let i = 0; i < subjects.length; i++) {
      for (let j = i + 1; j < subjects.length; j++) {
        if (overlaps(subjects[i]!, subjects[j]!)) {
          const common = generalize(subjects[i]!, subjects[j]!);
          subjects = withoutSubsumed([...subjects.filter((_, k) => k !== i && k !== j), common]);
          exact = false;
          merged = true;
          break outer;
        }
      }
    }
    if (!merged) return { subjects: subjects.sort(), exact };
  }
}

function generalize(a: string, b: string): string {
  const x = a.split('.');
  const y = b.split('.');
  const out: string[] = [];
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    const p = x[i];
    const q = y[i];
    if (p === undefined || q === undefined || p === '>' || q === '>') {
      out.push('>');
      break;
    }
    out.push(p === q ? p : '*');
  }
  return out.join('.');
}
