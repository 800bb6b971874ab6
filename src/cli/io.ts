import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';

/** Where the CLI reads and writes: the process, or a test's buffers. */
export interface Io {
  readonly cwd: string;
  stdout(text: string): void;
  stderr(text: string): void;
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
