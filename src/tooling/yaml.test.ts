import { describe, expect, it } from 'vitest';
import { toYaml } from './yaml.js';

describe('toYaml', () => {
  it('writes nested objects and lists in block style', () => {
    expect(toYaml({ a: { b: [1, { c: true, d: null }], e: [] }, f: {} })).toBe(
      ['a:', '  b:', '    - 1', '    - c: true', '      d: null', '  e: []', 'f: {}', ''].join(
        '\n',
      ),
    );
  });

  it.each([
    ['a plain word', 'hello', 'hello'],
    ['a sentence', 'Routing key order.v1.submit.', 'Routing key order.v1.submit.'],
    ['a version string, not a number', '3.0.0', '"3.0.0"'],
    ['a number-like string', '42', '"42"'],
    ['a YAML boolean word', 'yes', '"yes"'],
    ['a reference', '#/components/messages/x', '"#/components/messages/x"'],
    ['a colon', 'a: b', '"a: b"'],
    ['an empty string', '', '""'],
    ['a line break and quotes', 'a\n"b"', '"a\\n\\"b\\""'],
    ['a trailing space', 'a ', '"a "'],
  ])('quotes only when needed: %s', (_, text, written) => {
    expect(toYaml({ k: text })).toBe(`k: ${written}\n`);
  });

  it('quotes keys that need it', () => {
    expect(toYaml({ y: 1, 'a b': 2, '#': 3 })).toBe('"y": 1\na b: 2\n"#": 3\n');
  });
});
