import { describe, expect, it } from 'vitest';
import { boundedJson, fitTable, jsonDepth } from './show.js';

describe('fitTable', () => {
  const rows = [
    ['ID', 'EVENT', 'ERROR'],
    ['0190a2b4-0000-7000-8000-000000000001', 'order.v1.submit', 'ledger locked for order 1'],
    ['b', 'e'.repeat(50), 'x'.repeat(80)],
  ];

  it('leaves a table that fits as it is, aligned', () => {
    expect(
      fitTable(
        [
          ['A', 'B'],
          ['long cell', 'x'],
        ],
        80,
      ),
    ).toEqual(['A          B', 'long cell  x']);
  });

  it('cuts the widest columns first, keeps an id whole, and no line is wider than the terminal', () => {
    const lines = fitTable(rows, 80, [0]);
    for (const line of lines) expect(line.length).toBeLessThanOrEqual(80);
    expect(lines[1]!.startsWith('0190a2b4-0000-7000-8000-000000000001  ')).toBe(true);
    expect(lines[2]).toMatch(/^b {37}e+… {2}x+…$/);
  });

  it('cuts even a kept column when nothing else can give way, but never below its heading', () => {
    const lines = fitTable(rows, 30, [0]);
    expect(lines[1]).toBe('0190a2b…  order.v…  ledger …');
    expect(fitTable([['EVENT'], ['x'.repeat(100)]], 3)).toEqual(['EVENT', 'xxxx…']);
  });

  it('counts a surrogate pair as one character and never splits it', () => {
    const lines = fitTable(
      [
        ['H', 'T'],
        ['😀'.repeat(30), 'x'],
      ],
      12,
    );
    expect(lines[1]).toBe(`${'😀'.repeat(8)}…  x`);
  });

  it('turns control characters, terminal escapes included, into spaces', () => {
    expect(fitTable([['A'], ['a\u001b[2Jb\r\nc\u0007d\u009be']], 80)[1]).toBe('a [2Jb  c d e');
  });

  it('cuts a 100 kB cell to the line at once', () => {
    const lines = fitTable(
      [
        ['ID', 'EVENT'],
        ['a', 'x'.repeat(100_000)],
      ],
      100,
    );
    expect(lines[1]!.length).toBe(100);
  });
});

describe('jsonDepth and boundedJson', () => {
  it('counts nesting without parsing, ignoring brackets in strings', () => {
    expect(jsonDepth('{}')).toBe(1);
    expect(jsonDepth('[[1],{"a":[2]}]')).toBe(3);
    expect(jsonDepth('{"a":"[[[[\\"]]"}')).toBe(1);
    expect(jsonDepth('"[["')).toBe(0);
    expect(jsonDepth('['.repeat(1_000_000), 10)).toBe(11);
  });

  it('gives the parsed value of shallow JSON, and deep JSON as text with a note', () => {
    expect(boundedJson('{"id":1}')).toMatchObject({ value: { id: 1 }, note: undefined });
    expect(boundedJson('not json')).toMatchObject({ value: 'not json', note: undefined });
    const deep = `${'['.repeat(10_000)}${']'.repeat(10_000)}`;
    const shown = boundedJson(deep);
    expect(shown.value).toBe(deep);
    expect(shown.note).toBe('JSON nested more than 64 levels deep, shown as text');
    expect(() => JSON.stringify(shown)).not.toThrow();
  });

  it('makes header values JSON-safe: bytes as text, deep nesting bounded', () => {
    let nested: unknown = 'leaf';
    for (let i = 0; i < 10_000; i++) nested = [nested];
    const headers = boundedJson('{}').headers({
      b: Buffer.from('bytes'),
      n: 1,
      deep: nested as never,
    });
    expect(headers.b).toBe('bytes');
    expect(headers.n).toBe(1);
    expect(() => JSON.stringify(headers)).not.toThrow();
    expect(JSON.stringify(headers)).toContain('(nested more than 64 levels deep)');
  });
});
