import { type ChildProcess, fork } from 'node:child_process';
import { readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import type { WorkerJob, WorkerMessage, WorkerResult } from './worker.js';

/**
 * The worker and everything it imports from the project, transpiled once per run by esbuild into
 * one JavaScript module per TypeScript file (packages stay external, resolved from the project's
 * node_modules): the shape `tsc` gives the published package, each module on its own. A worker
 * then starts in about 0.3 s of CPU instead of about 2.5 s under tsx, which took a minute and a
 * half of every run's five.
 *
 * Not one bundle, and not `--enable-source-maps`, as before: on the embedded broker, Tidings cost
 * 8.7-10 µs an event as one bundled file and 6.4-7.0 µs as separate modules (10 runs each, the
 * same code), and with `--enable-source-maps` its runs were bimodal (6.5-8.9 µs), while the floor's
 * tight loop (5.2-5.6 µs) moved with neither. The benchmark measured how the code was packed,
 * not the code. Stack traces of a failing worker point into the transpiled files, which keep
 * the sources' layout.
 */
const OUT = fileURLToPath(
  new URL('../node_modules/.cache/tidings-bench/modules/', import.meta.url),
);
const ROOT = fileURLToPath(new URL('../', import.meta.url));
/** The folders the worker imports from (a new one shows up as ERR_MODULE_NOT_FOUND at start). */
const SOURCES = ['bench', 'src', 'examples/ecommerce/contracts/src'];
const entryPoints = SOURCES.flatMap((dir) =>
  readdirSync(join(ROOT, dir), { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts') && !f.endsWith('.d.ts'))
    .map((f) => join(ROOT, dir, f)),
);
rmSync(OUT, { recursive: true, force: true });
await build({
  entryPoints,
  outdir: OUT,
  outbase: ROOT,
  bundle: false,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  logLevel: 'warning',
});
const WORKER = join(OUT, 'bench', 'worker.js');

/** A failed attempt: the broker went away, a worker died or timed out. The round is run again. */
export class RoundFailed extends Error {}

/** A worker child process and the messages it sends, as promises. */
export class Worker {
  readonly ready: Promise<void>;
  /** A consumer's: it has handled the warm-up messages. */
  readonly warm: Promise<void>;
  readonly done: Promise<WorkerResult>;
  private readonly child: ChildProcess;
  private settled = false;
  private failed = false;
  private fail: (error: Error) => void = () => {};

  constructor(job: WorkerJob, label: string) {
    this.child = fork(WORKER, [JSON.stringify(job)], {
      execArgv: [],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    let onReady: () => void = () => {};
    let onWarm: () => void = () => {};
    let failWarm: (e: Error) => void = () => {};
    this.warm = new Promise<void>((resolve, reject) => {
      onWarm = resolve;
      failWarm = reject;
    });
    this.warm.catch(() => {});
    let onDone: (r: WorkerResult) => void = () => {};
    let failReady: (e: Error) => void = () => {};
    let failDone: (e: Error) => void = () => {};
    this.ready = new Promise<void>((resolve, reject) => {
      onReady = resolve;
      failReady = reject;
    });
    this.done = new Promise<WorkerResult>((resolve, reject) => {
      onDone = resolve;
      failDone = reject;
    });
    // Whoever awaits only one of them must not leave the other's rejection unhandled.
    this.ready.catch(() => {});
    this.done.catch(() => {});
    this.fail = (error) => {
      if (this.settled) return;
      this.settled = true;
      this.failed = true;
      failReady(error);
      failWarm(error);
      failDone(error);
    };
    this.child.on('message', (m: WorkerMessage) => {
      if (m.type === 'ready') onReady();
      else if (m.type === 'warm') onWarm();
      else if (m.type === 'done') {
        this.settled = true;
        onDone(m.result);
      } else this.fail(new RoundFailed(`${label}: ${m.reason.split('\n')[0]}`));
    });
    this.child.on('exit', (code, signal) => {
      this.fail(new RoundFailed(`${label} exited (${signal ?? code}) before it was done`));
    });
  }

  /** Sends `go`: the measured part starts. */
  go(): void {
    this.child.send({ type: 'go' });
  }

  /** Fails both promises after `ms` unless done by then. */
  deadline(ms: number, what: string): void {
    const timer = setTimeout(
      () => this.fail(new RoundFailed(`${what}: no result within ${Math.round(ms / 1000)} s`)),
      ms,
    );
    timer.unref();
    this.done.then(
      () => clearTimeout(timer),
      () => clearTimeout(timer),
    );
  }

  /** Lets it exit cleanly, and kills it (this child only) if it has not within 5 s. */
  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    if (this.child.connected) this.child.send({ type: 'exit' });
    const timer = setTimeout(() => this.child.kill('SIGKILL'), this.failed ? 1000 : 5000);
    await exited;
    clearTimeout(timer);
  }
}
