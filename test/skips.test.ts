import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

/*
 * No test is skipped silently: a laptop without RabbitMQ, rsvg-convert or Celery skips tests,
 * and the run must say which and why. Each file that skips conditionally goes through something
 * that says so on stderr (brokerReachable, canRun, testVhost...), and nothing is skipped for good.
 */

const ROOT = fileURLToPath(new URL('../', import.meta.url));

/** What in a file prints the reason of its conditional skips. */
const SAYS_WHY = [
  'canRun(',
  'brokerReachable(',
  'reachable(',
  'testVhost(',
  'canRestartBroker(',
  'canStartPrivateRabbit(',
  'postgresUp(',
  'rabbitUp(',
  'SKIPPED:',
];

/** The problems of one file's skips; empty when every skip says why. */
function silentSkips(source: string): string[] {
  const problems: string[] = [];
  for (const [i, line] of source.split('\n').entries()) {
    const at = `line ${i + 1}`;
    if (/\b(it|test|describe|suite)\.(skip|todo)\s*\(/.test(line)) {
      problems.push(`${at}: skipped for good, without a condition or a reason`);
    }
    const skip = /\b(ctx|context|t)\.skip\s*\(([^)]*)\)/.exec(line);
    if (skip && !/['"`]/.test(skip[2] ?? ''))
      problems.push(`${at}: ${skip[1]}.skip() without a note`);
  }
  if (/\.skipIf\s*\(/.test(source) && !SAYS_WHY.some((s) => source.includes(s))) {
    problems.push('skipIf() without anything that says why (use canRun() from tidings/testing)');
  }
  return problems;
}

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      return ['node_modules', 'dist', 'fixtures'].includes(entry.name) ? [] : sources(path);
    }
    return /\.tsx?$/.test(entry.name) ? [path] : [];
  });
}

describe('skipped tests', () => {
  it('always say why', () => {
    const files = ['src', 'test', 'examples'].flatMap((d) => sources(join(ROOT, d)));
    expect(files.length).toBeGreaterThan(50);
    const found = files.flatMap((file) =>
      file.endsWith('skips.test.ts')
        ? []
        : silentSkips(readFileSync(file, 'utf8')).map((p) => `${relative(ROOT, file)}: ${p}`),
    );
    expect(found).toEqual([]);
  });

  it('(the check itself finds a silent skip)', () => {
    expect(silentSkips("it.skipIf(!hasTool())('x', () => {});")).toHaveLength(1);
    expect(silentSkips("it.skip('x', () => {});")).toEqual([
      'line 1: skipped for good, without a condition or a reason',
    ]);
    expect(silentSkips('it("x", (ctx) => { ctx.skip(); });')).toEqual([
      'line 1: ctx.skip() without a note',
    ]);
    expect(silentSkips("it.skipIf(!canRun(ok, 'x', 'y'))('x', () => {});")).toEqual([]);
    expect(silentSkips("it('x', (ctx) => { ctx.skip('no tool'); });")).toEqual([]);
  });
});
