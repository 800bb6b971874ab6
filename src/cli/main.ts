#!/usr/bin/env node
import { run } from './run.js';

/** Writes to a stream and resolves once the data is handed to the OS, so exiting loses none. */
function write(stream: NodeJS.WriteStream, text: string): Promise<void> {
  return new Promise((resolve) => stream.write(text, () => resolve()));
}

const pending: Promise<void>[] = [];
const code = await run(process.argv.slice(2), {
  cwd: process.cwd(),
  columns: process.stdout.isTTY ? process.stdout.columns : undefined,
  stdout: (text) => pending.push(write(process.stdout, text)),
  stderr: (text) => pending.push(write(process.stderr, text)),
});
await Promise.all(pending);
// Exit explicitly: a services module may have opened a broker connection that would keep the
// process alive.
process.exit(code);
