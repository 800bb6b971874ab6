import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

/**
 * The public surface, name by name: every entry point of package.json with the names it exports,
 * values and types apart. A name that appears or disappears changes the snapshot, so the change
 * to what users can import is always a decision made in review, never an accident of an
 * `export *`.
 */

const root = fileURLToPath(new URL('..', import.meta.url));
const pkg = JSON.parse(readFileSync(`${root}package.json`, 'utf8')) as {
  exports: Record<string, string | { types: string; default: string }>;
};

/** `./dist/stores/redis.js` is built from `src/stores/redis.ts`. */
function sourceOf(target: { default: string }): string {
  return `${root}${target.default.replace(/^\.\/dist\//, 'src/').replace(/\.js$/, '.ts')}`;
}

const entries = Object.entries(pkg.exports).filter(
  (entry): entry is [string, { types: string; default: string }] => typeof entry[1] !== 'string',
);

describe('public surface', () => {
  it('lists types before code in every entry of the exports map', () => {
    for (const [, target] of entries) expect(Object.keys(target)).toEqual(['types', 'default']);
  });

  it('exports exactly the names in the snapshot, entry by entry', () => {
    const files = entries.map(([, target]) => sourceOf(target));
    const program = ts.createProgram(files, {
      module: ts.ModuleKind.NodeNext,
      moduleResolution: ts.ModuleResolutionKind.NodeNext,
      target: ts.ScriptTarget.ES2022,
      strict: true,
      noEmit: true,
      skipLibCheck: true,
    });
    const checker = program.getTypeChecker();
    const surface: Record<string, { values: string[]; types: string[] }> = {};
    for (const [name, target] of entries) {
      const source = program.getSourceFile(sourceOf(target));
      const module = source && checker.getSymbolAtLocation(source);
      if (!module) throw new Error(`cannot read the entry ${name} (${sourceOf(target)})`);
      const values: string[] = [];
      const types: string[] = [];
      for (const symbol of checker.getExportsOfModule(module)) {
        const resolved =
          symbol.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(symbol) : symbol;
        (resolved.flags & ts.SymbolFlags.Value ? values : types).push(symbol.name);
      }
      surface[name] = { values: values.sort(), types: types.sort() };
    }
    expect(surface).toMatchSnapshot();
  });
});
