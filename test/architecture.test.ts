import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

/**
 * The shape of the code, checked from the imports themselves (docs/architecture.md draws it):
 * every arrow points down a layer, and no files import each other in a circle.
 */

const SRC = resolve(dirname(fileURLToPath(import.meta.url)), '../src');

/**
 * Layers from the bottom up. A file may import a file of a lower layer, or of its own part; parts
 * that share a layer (the runtime and the transports) stay independent of each other.
 */
const LAYERS: readonly (readonly string[])[] = [
  ['errors.ts', 'redact.ts', 'logger.ts'],
  ['emitter.ts', 'linked-list.ts'],
  ['contracts/'],
  ['envelope/'],
  ['transports/transport.ts'],
  ['runtime/', 'transports/memory/', 'transports/amqp/', 'transports/nats/'],
  ['transports/connect.ts', 'ops/', 'stores/', 'tooling/', 'observability/', 'wire.ts'],
  ['testing/', 'console/', 'run.ts'],
  ['cli/'],
  ['index.ts'],
];

function partOf(file: string): { part: string; layer: number } {
  for (const [layer, parts] of LAYERS.entries()) {
    for (const part of parts) {
      if (part.endsWith('/') ? file.startsWith(part) : file === part) return { part, layer };
    }
  }
  throw new Error(`src/${file} belongs to no layer: add its folder to LAYERS`);
}

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return entry.name === 'fixtures' ? [] : sources(path);
    return /\.ts$/.test(entry.name) && !/\.test(-d)?\.ts$/.test(entry.name) ? [path] : [];
  });
}

/** Every module specifier of a file: imports, re-exports, `import()` and `require()`, as written. */
function specifiers(text: string): string[] {
  const info = ts.preProcessFile(text, true, true);
  const found = info.importedFiles.map((f) => f.fileName);
  // preProcessFile sees `require('x')` only at the top level; createRequire's are anywhere.
  for (const m of text.matchAll(/\brequire\s*\(\s*['"`]([^'"`]+)['"`]\s*\)/g)) found.push(m[1]!);
  return found;
}

/** Every source file with the specifiers it imports. */
function sourcesWithImports(): Map<string, string[]> {
  const all = new Map<string, string[]>();
  for (const path of sources(SRC)) {
    all.set(relative(SRC, path), specifiers(readFileSync(path, 'utf8')));
  }
  return all;
}

/** Relative imports of every source file, as paths from src/ (`runtime/service.ts`). */
function importGraph(imports: Map<string, string[]>): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const [file, found] of imports) {
    const targets = found
      .filter((s) => s.startsWith('.'))
      .map((s) => relative(SRC, resolve(SRC, dirname(file), s)).replace(/\.js$/, '.ts'));
    graph.set(file, [...new Set(targets)]);
  }
  return graph;
}

describe('architecture', () => {
  const imports = sourcesWithImports();
  const graph = importGraph(imports);

  it('has every import point to a lower layer or within its own part', () => {
    const upward: string[] = [];
    for (const [file, targets] of graph) {
      const from = partOf(file);
      for (const target of targets) {
        const to = partOf(target);
        if (to.part !== from.part && to.layer >= from.layer) upward.push(`${file} -> ${target}`);
      }
    }
    expect(upward).toEqual([]);
  });

  it('has no circular imports', () => {
    const cycles: string[] = [];
    const state = new Map<string, 'open' | 'done'>();
    const path: string[] = [];
    const visit = (file: string) => {
      state.set(file, 'open');
      path.push(file);
      for (const next of graph.get(file) ?? []) {
        if (state.get(next) === 'open')
          cycles.push([...path.slice(path.indexOf(next)), next].join(' -> '));
        else if (!state.has(next)) visit(next);
      }
      path.pop();
      state.set(file, 'done');
    };
    for (const file of graph.keys()) if (!state.has(file)) visit(file);
    expect(cycles).toEqual([]);
  });

  it('keeps broker clients out of contracts, envelope and runtime', () => {
    const clients = /^(amqplib|@nats-io\/|pg$|pg\/|ioredis|@opentelemetry\/)/;
    const offenders = [...imports].flatMap(([file, found]) =>
      /^(contracts|envelope|runtime)\//.test(file)
        ? found.filter((s) => clients.test(s)).map((s) => `${file} -> ${s}`)
        : [],
    );
    expect(offenders).toEqual([]);
  });

  it('never imports the package by its own name from inside it (that would hide an upward arrow)', () => {
    const selfImports = [...imports].flatMap(([file, found]) =>
      found.filter((s) => /^tidings(\/|$)/.test(s)).map((s) => `${file} -> ${s}`),
    );
    expect(selfImports).toEqual([]);
  });
});
