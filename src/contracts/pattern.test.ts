import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ROUTING_KEYS, ROUTING_TABLE } from '../testing/routing-table.js';
import { compilePattern, matchesPattern, splitWords } from './pattern.js';

/**
 * A deliberately naive reference: recursion straight from the definition, exponential in the
 * worst case but obviously right.
 */
function reference(pattern: string[], key: string[]): boolean {
  if (pattern.length === 0) return key.length === 0;
  const [head, ...rest] = pattern;
  if (head === '#') {
    for (let skip = 0; skip <= key.length; skip++) {
      if (reference(rest, key.slice(skip))) return true;
    }
    return false;
  }
  if (key.length === 0) return false;
  return (head === '*' || head === key[0]) && reference(rest, key.slice(1));
}

describe('splitWords', () => {
  it('treats the empty key as zero words and keeps empty words', () => {
    expect(splitWords('')).toEqual([]);
    expect(splitWords('.')).toEqual(['', '']);
    expect(splitWords('a..b')).toEqual(['a', '', 'b']);
  });
});

describe('topic pattern matching', () => {
  const cases: [pattern: string, key: string, expected: boolean][] = [
    ['order.*.submit', 'order.v1.submit', true],
    ['order.*.submit', 'order.v2.submit', true],
    ['order.*.submit', 'order.v1.x.submit', false],
    ['order.*.submit', 'order.submit', false],
    ['order.#', 'order', true],
    ['order.#', 'order.v1.submit', true],
    ['order.#', 'orders.v1.submit', false],
    ['a.#.c', 'a.c', true],
    ['a.#.c', 'a.b.b.c', true],
    ['a.#.c', 'a.b.b.d', false],
    ['#', '', true],
    ['#', 'anything.at.all', true],
    ['*', '', false],
    ['*', 'a.b', false],
    ['', '', true],
    ['', 'a', false],
    ['#.#', '', true],
    ['#.*', '', false],
    ['*.#.*', 'a', false],
    ['a.*', 'a.', true],
    ['a..b', 'a..b', true],
    ['a.*.b', 'a..b', true],
    ['#.a.#.a.#', 'a.a', true],
    ['#.a.#.a.#', 'a', false],
    ['order.v1.submit', 'order.v1.submit', true],
    ['order.v1.submit', 'order.v1.submitted', false],
  ];
  it.each(cases)('%j against %j is %s', (pattern, key, expected) => {
    expect(matchesPattern(pattern, key)).toBe(expected);
    expect(reference(splitWords(pattern), splitWords(key))).toBe(expected);
  });

  it('agrees with the table recorded from RabbitMQ', () => {
    for (const [pattern, matched] of Object.entries(ROUTING_TABLE)) {
      const matcher = compilePattern(pattern);
      expect({ pattern, keys: ROUTING_KEYS.filter((k) => matcher(k)) }).toEqual({
        pattern,
        keys: ROUTING_KEYS.filter((k) => matched.includes(k)),
      });
    }
  });

  // Small alphabets make collisions (and so interesting matches) likely.
  const word = fc.constantFrom('', 'a', 'b', 'c');
  const patternWord = fc.constantFrom('', 'a', 'b', '*', '#', '#', '*');
  const key = fc.array(word, { maxLength: 7 }).map((w) => w.join('.'));
  const pattern = fc.array(patternWord, { maxLength: 6 }).map((w) => w.join('.'));

  it('agrees with the reference on random patterns and keys', () => {
    fc.assert(
      fc.property(pattern, key, (p, k) => {
        expect(matchesPattern(p, k)).toBe(reference(splitWords(p), splitWords(k)));
      }),
      { numRuns: 20_000 },
    );
  });

  it('always matches a key against itself and against "#"', () => {
    fc.assert(
      fc.property(key, (k) => matchesPattern(k, k) && matchesPattern('#', k)),
      { numRuns: 2_000 },
    );
  });

  it('matches a key where each word is replaced by "*"', () => {
    fc.assert(
      // A single empty word joins to the empty key, which has no words at all: excluded.
      fc.property(
        fc.array(word, { minLength: 1, maxLength: 7 }).filter((w) => w.join('.') !== ''),
        (words) => matchesPattern(words.map(() => '*').join('.'), words.join('.')),
      ),
    );
  });

  it('answers adversarial patterns that make naive backtracking exponential', () => {
    // 30 `#` against 200 words: the naive reference would not finish; the matcher is linear-ish.
    const p = Array.from({ length: 30 }, () => '#.a').join('.');
    const k = `${Array.from({ length: 200 }, () => 'a').join('.')}.b`;
    expect(matchesPattern(p, k)).toBe(false);
    expect(matchesPattern(`${p}.b`, k)).toBe(true);
  });
});
