import { existsSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { extname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { CliError } from './errors.js';

const TYPESCRIPT = new Set(['.ts', '.mts', '.cts', '.tsx']);

/**
 * Imports a module given by path (relative to `cwd`) and returns its namespace.
 *
 * TypeScript modules need a loader. When the CLI itself runs from TypeScript (`npx tsx
 * src/cli/main.ts`) or under `node --import tsx`, one is active already; otherwise tsx is
 * registered on the fly if it can be found, from Tidings' own dependencies or from `cwd`.
 */
export async function loadModule(path: string, cwd: string): Promise<Record<string, unknown>> {
  const file = resolve(cwd, path);
  if (!existsSync(file)) throw new CliError(`no such file: ${file}`);
  if (!statSync(file).isFile()) throw new CliError(`not a file: ${file}`);
  if (TYPESCRIPT.has(extname(file)) && !typeScriptLoaderActive()) {
    await registerTsx(cwd, file);
  }
  try {
    return { ...((await import(pathToFileURL(file).href)) as Record<string, unknown>) };
  } catch (error) {
    throw new CliError(`could not load ${file}: ${describeError(error)}`, { cause: error });
  }
}

function typeScriptLoaderActive(): boolean {
  return (
    TYPESCRIPT.has(extname(new URL(import.meta.url).pathname)) ||
    process.execArgv.some((arg) => /\btsx\b/.test(arg))
  );
}

let registered: Promise<void> | undefined;

function registerTsx(cwd: string, file: string): Promise<void> {
  registered ??= (async () => {
    const api = await importTsxApi(cwd);
    if (!api) {
      throw new CliError(
        `${file} is TypeScript, and loading it needs tsx: install it (npm install -D tsx) and ` +
          'run the CLI again, or run it as `npx tsx node_modules/tidings/dist/cli/main.js ...`.',
      );
    }
    api.register();
  })();
  return registered;
}

async function importTsxApi(cwd: string): Promise<{ register: () => unknown } | undefined> {
  // A variable specifier: tsx is optional, so neither the compiler nor a bundler should need it.
  const specifier = 'tsx/esm/api';
  const candidates: (() => Promise<unknown>)[] = [
    () => import(specifier),
    () => import(pathToFileURL(createRequire(join(cwd, 'package.json')).resolve(specifier)).href),
  ];
  for (const candidate of candidates) {
    try {
      const api = (await candidate()) as { register?: unknown };
      if (typeof api.register === 'function') return api as { register: () => unknown };
    } catch {
      // Not found here; try the next place.
    }
  }
  return undefined;
}

/** An error's message, with its cause's, on one line. */
export function describeError(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = error.cause instanceof Error ? ` (${error.cause.message})` : '';
  return `${error.message}${cause}`;
}
