import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';

/** Where the CLI reads and writes: the process, or a test's buffers. */
export interface Io {
  readonly cwd: string;
  /** Width of the terminal stdout writes to; `undefined` when it is not a terminal. */
  readonly columns?: number | undefined;
  stdout(text: string): void;
  stderr(text: string): void;
}

/**
 * The width tables are cut to: the terminal's, else a positive `COLUMNS` from the environment,
 * else `undefined` (the caller's default).
 */
export function terminalColumns(io: Io, env: NodeJS.ProcessEnv = process.env): number | undefined {
  if (io.columns !== undefined && io.columns > 0) return io.columns;
  const fromEnv = Number(env.COLUMNS);
  return Number.isInteger(fromEnv) && fromEnv > 0 ? fromEnv : undefined;
}

/**
 * Writes a command's result to `out` (a path relative to `cwd`; folders are created), with a
 * one-line confirmation on stderr, or to stdout when `out` is undefined.
 */
export async function writeOutput(
  text: string,
  out: string | undefined,
  io: Io,
  what: string,
): Promise<void> {
  if (out === undefined) {
    io.stdout(text);
    return;
  }
  const file = resolve(io.cwd, out);
  await mkdir(dirname(file), { recursive: true });
  await writeFile(file, text);
  io.stderr(`wrote ${out} (${what})\n`);
}

export { redactSecrets } from '../redact.js';
