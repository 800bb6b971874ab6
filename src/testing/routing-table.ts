/**
 * Which routing keys each binding pattern receives, recorded from RabbitMQ 3.10.8 on a topic
 * exchange. Empty words (`a..b`, `.`) and the empty key are included on purpose: in-memory brokers
 * often get them wrong. Used by the unit tests and by the conformance suite, so every transport
 * (the embedded one and RabbitMQ itself) must route exactly like this.
 */
export const ROUTING_KEYS: readonly string[] = [
  '',
  'a',
  'a.c',
  'a.b.c',
  'a.b.b.c',
  '.',
  'a.',
  '.a',
  'a..b',
  'a..c',
  '..',
  'b',
  'a.b',
];

export const ROUTING_TABLE: Readonly<Record<string, readonly string[]>> = {
  '': [''],
  '#': ['', 'a', 'a.c', 'a.b.c', 'a.b.b.c', '.', 'a.', '.a', 'a..b', 'a..c', '..', 'b', 'a.b'],
  '*': ['a', 'b'],
  '*.*': ['a.c', '.', 'a.', '.a', 'a.b'],
  'a.#': ['a', 'a.c', 'a.b.c', 'a.b.b.c', 'a.', 'a..b', 'a..c', 'a.b'],
  '#.a': ['a', '.a'],
  'a.#.c': ['a.c', 'a.b.c', 'a.b.b.c', 'a..c'],
  'a.*.c': ['a.b.c', 'a..c'],
  '#.#': ['', 'a', 'a.c', 'a.b.c', 'a.b.b.c', '.', 'a.', '.a', 'a..b', 'a..c', '..', 'b', 'a.b'],
  'a.#.#.c': ['a.c', 'a.b.c', 'a.b.b.c', 'a..c'],
  '*.#': ['a', 'a.c', 'a.b.c', 'a.b.b.c', '.', 'a.', '.a', 'a..b', 'a..c', '..', 'b', 'a.b'],
  '#.*': ['a', 'a.c', 'a.b.c', 'a.b.b.c', '.', 'a.', '.a', 'a..b', 'a..c', '..', 'b', 'a.b'],
  'a..b': ['a..b'],
  'a.*': ['a.c', 'a.', 'a.b'],
  '.': ['.'],
  'a.': ['a.'],
  '.a': ['.a'],
  '*.#.*': ['a.c', 'a.b.c', 'a.b.b.c', '.', 'a.', '.a', 'a..b', 'a..c', '..', 'a.b'],
};

/**
 * True when a pattern has `#` before a literal word once its runs of wildcards are reordered
 * (`#.*` is `*.#`): `a.#.c`, `#.a`, `a.#.#.c`. NATS subjects cannot express those (`>` may only
 * end a subject); a transport without the `innerHash` feature refuses them.
 */
export function needsInnerHash(pattern: string): boolean {
  let hash = false;
  for (const word of pattern === '' ? [] : pattern.split('.')) {
    if (word === '#') hash = true;
    else if (word !== '*' && hash) return true;
  }
  return false;
}
