import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { matchesPattern } from '../../contracts/pattern.js';
import { needsInnerHash, ROUTING_KEYS, ROUTING_TABLE } from '../../testing/routing-table.js';
import {
  bindingConsumerName,
  decodeWord,
  encodeName,
  encodeWord,
  exchangeStreamName,
  exchangeSubject,
  normalizePattern,
  overlaps,
  parseSubject,
  patternFilter,
  queueStreamName,
  queueSubject,
  streamSubjects,
  subjectMatches,
  subsumes,
} from './subjects.js';

describe('subjects and names on NATS', () => {
  it('keeps the names it gives, since they are persistent identifiers', () => {
    expect(exchangeSubject('tidings', 'order', 'order.v1.submit')).toBe(
      'tidings.x.order.order.v1.submit.$',
    );
    expect(exchangeSubject('tidings', 'order', '')).toBe('tidings.x.order.$');
    expect(exchangeSubject('tidings', 'x', 'a..b')).toBe('tidings.x.x.a.%.b.$');
    expect(exchangeSubject('tidings', 'x', 'a.*.>.%.ü')).toBe('tidings.x.x.a.%2A.%3E.%25.%C3%BC.$');
    expect(queueSubject('tidings', 'billing.order.submit.dlq')).toBe(
      'tidings.q.billing.order.submit.dlq',
    );
    expect(exchangeStreamName('tidings', 'order')).toBe('tidings_x_order');
    expect(queueStreamName('tidings', 'billing.order.submit')).toBe(
      'tidings_q_billing~order~submit',
    );
    expect(bindingConsumerName('billing.order.submit', 'order.*.submit')).toBe(
      'billing~order~submit@order~=2A~submit',
    );
    expect(encodeName('a~b=c%d e')).toBe('a=7Eb=3Dc=25d=20e');
    expect(patternFilter('tidings', 'order', 'order.*.submit')).toEqual({
      ok: true,
      filter: 'tidings.x.order.order.*.submit.$',
      normalized: 'order.*.submit',
    });
    expect(patternFilter('tidings', 'order', 'order.#')).toMatchObject({
      filter: 'tidings.x.order.order.>',
    });
  });

  it('encodes every word reversibly, and never as a wildcard or the end token', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme', maxLength: 12 }), (word) => {
        const token = encodeWord(word);
        expect(decodeWord(token)).toBe(word);
        expect(token).not.toMatch(/[.\s]/);
        expect(['*', '>', '$']).not.toContain(token);
        expect(token.length).toBeGreaterThan(0);
      }),
    );
    fc.assert(
      fc.property(
        fc.string({ unit: 'grapheme', maxLength: 12 }),
        fc.string({ maxLength: 12 }),
        (a, b) => {
          if (a !== b) expect(encodeName(a)).not.toBe(encodeName(b));
          expect(encodeName(a)).not.toMatch(/[.*>/\\%\s@]/);
        },
      ),
    );
  });

  it('reads the exchange and routing key back from a subject', () => {
    for (const key of ROUTING_KEYS) {
      expect(parseSubject('ns', exchangeSubject('ns', 'ex-1', key))).toEqual({
        kind: 'exchange',
        exchange: 'ex-1',
        routingKey: key,
      });
    }
    expect(parseSubject('ns', queueSubject('ns', 'a.b.dlq'))).toEqual({
      kind: 'queue',
      queue: 'a.b.dlq',
    });
    expect(parseSubject('ns', 'other.x.a.$')).toBeUndefined();
  });

  it('routes every pattern of the recorded RabbitMQ table exactly, or refuses it', () => {
    for (const [pattern, keys] of Object.entries(ROUTING_TABLE)) {
      const mapped = patternFilter('t', 'ex', pattern);
      expect({ pattern, refused: !mapped.ok }).toEqual({
        pattern,
        refused: needsInnerHash(pattern),
      });
      if (!mapped.ok) continue;
      const routed = ROUTING_KEYS.filter((k) =>
        subjectMatches(mapped.filter, exchangeSubject('t', 'ex', k)),
      );
      expect({ pattern, keys: routed.sort() }).toEqual({ pattern, keys: [...keys].sort() });
    }
  });

  it('matches exactly like the AMQP matcher for any pattern it accepts', () => {
    const word = fc.constantFrom('', 'a', 'b', 'c', '*x', '$');
    const patternWord = fc.constantFrom('', 'a', 'b', '*', '#', '#', '*');
    const key = fc.array(word, { maxLength: 7 }).map((w) => w.join('.'));
    const pattern = fc.array(patternWord, { maxLength: 6 }).map((w) => w.join('.'));
    fc.assert(
      fc.property(pattern, key, (p, k) => {
        const mapped = patternFilter('t', 'e', p);
        if (!mapped.ok) return needsInnerHash(p);
        return subjectMatches(mapped.filter, exchangeSubject('t', 'e', k)) === matchesPattern(p, k);
      }),
      { numRuns: 5000 },
    );
  });

  it('normalises runs of wildcards without changing what they match', () => {
    expect(normalizePattern('#.*')).toEqual(['*', '#']);
    expect(normalizePattern('*.#.*.a.#.#')).toEqual(['*', '*', '#', 'a', '#']);
    expect(normalizePattern('')).toEqual([]);
  });

  it('tells containment and overlap of filters apart', () => {
    expect(subsumes('a.>', 'a.*.$')).toBe(true);
    expect(subsumes('a.*.$', 'a.>')).toBe(false);
    expect(subsumes('a.*.$', 'a.b.$')).toBe(true);
    expect(overlaps('a.*.b.$', 'a.c.*.$')).toBe(true);
    expect(overlaps('a.*.b.$', 'a.c.d.$')).toBe(false);
    expect(overlaps('a.>', 'a.$')).toBe(true);
    expect(overlaps('a.b.>', 'a.$')).toBe(false);
  });

  it('gives an exchange stream subjects that never overlap and cover every filter', () => {
    expect(streamSubjects(['n.x.e.a.*.$', 'n.x.e.>'])).toEqual({
      subjects: ['n.x.e.>'],
      exact: true,
    });
    expect(streamSubjects(['n.x.e.a.*.$', 'n.x.e.b.*.$'])).toEqual({
      subjects: ['n.x.e.a.*.$', 'n.x.e.b.*.$'],
      exact: true,
    });
    expect(streamSubjects(['n.x.e.a.v1.*.$', 'n.x.e.a.*.submit.$'])).toEqual({
      subjects: ['n.x.e.a.*.*.$'],
      exact: false,
    });
    const filter = fc
      .constantFrom('a', 'b', '*')
      .chain((first) =>
        fc
          .array(fc.constantFrom('a', 'b', '*'), { maxLength: 3 })
          .chain((rest) =>
            fc.boolean().map((open) => `n.x.e.${[first, ...rest].join('.')}${open ? '.>' : '.$'}`),
          ),
      );
    fc.assert(
      fc.property(fc.array(filter, { maxLength: 6 }), (filters) => {
        const { subjects } = streamSubjects(filters);
        for (const f of filters) expect(subjects.some((s) => subsumes(s, f))).toBe(true);
        for (let i = 0; i < subjects.length; i++) {
          for (let j = i + 1; j < subjects.length; j++) {
            expect(overlaps(subjects[i]!, subjects[j]!)).toBe(false);
          }
        }
      }),
    );
  });
});
