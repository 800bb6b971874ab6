/**
 * The parent side of the reliability tests: where the services are, consumer processes, broker
 * restarts that always leave RabbitMQ running, cleanup, and the figures each test prints.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { silentLogger } from '../../src/logger.js';
import { brokerReachable } from '../../src/testing/broker.js';
import { waitFor } from '../../src/testing/conformance.js';
import { type AmqpTransport, amqpTransport } from '../../src/transports/amqp/index.js';
import type { Topology } from '../../src/transports/transport.js';
import {
  CONSUMER_ENV,
  type ConsumerConfig,
  type ConsumerLine,
  type ConsumerSummary,
  parseLine,
} from './protocol.js';

/** The RabbitMQ the tests use (`AMQP_URL`, default the local guest account). */
export const AMQP_URL = process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
/** The Redis the tests use (`REDIS_URL`). */
export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
/** The PostgreSQL database the tests use (`DATABASE_URL`, default database `test`). */
export const DATABASE_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

/** The repository's root directory. */
export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CONSUMER = fileURLToPath(new URL('./consumer.ts', import.meta.url));

const exec = promisify(execFile);

/** Whether something listens at the host and port of `url` (a visible skip when not; CI fails). */
export function reachable(url: string, what: string, defaultPort: number): Promise<boolean> {
  const u = new URL(url);
  return brokerReachable(u.hostname, Number(u.port || defaultPort), what);
}

/**
 * The RabbitMQ node `rabbitmqctl` talks to (`RABBITMQ_NODE`, e.g. `mine@localhost` for a private
 * broker); unset, rabbitmqctl's own default, the local broker.
 */
export const RABBITMQ_NODE = process.env.RABBITMQ_NODE ?? process.env.RABBITMQ_NODENAME;

/** Runs `rabbitmqctl` (on {@link RABBITMQ_NODE}) with a time limit. */
export function rabbitmqctl(...args: string[]): Promise<{ stdout: string }> {
  const node = RABBITMQ_NODE ? ['-n', RABBITMQ_NODE] : [];
  return exec('rabbitmqctl', [...node, ...args], { timeout: 90_000 });
}

/**
 * Whether this test run may stop and start RabbitMQ: a local broker, `rabbitmqctl` at hand, and
 * `TIDINGS_SKIP_BROKER_RESTART` unset. Says why when it may not.
 */
export async function canRestartBroker(): Promise<boolean> {
  const local = ['127.0.0.1', 'localhost', '::1'].includes(new URL(AMQP_URL).hostname);
  const ok =
    local &&
    !process.env.TIDINGS_SKIP_BROKER_RESTART &&
    (await rabbitmqctl('-q', 'status').then(
      () => true,
      () => false,
    ));
  if (!ok) {
    console.warn(
      '\n  SKIPPED: tests that restart RabbitMQ need a local broker, rabbitmqctl, and ' +
        'TIDINGS_SKIP_BROKER_RESTART unset.\n',
    );
  }
  return ok;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** What one broker restart took, in milliseconds. */
export interface RestartTiming {
  /** `rabbitmqctl stop_app`, until it returned (the broker closes every connection). */
  readonly stopMs: number;
  /** From `stop_app` returning until `start_app` and `await_startup` returned: the outage. */
  readonly downMs: number;
}

/**
 * Stops RabbitMQ's application, waits `pauseMs`, and starts it again. The start runs in a
 * `finally`, so the broker is started again whatever happened while it was down.
 */
export async function restartBroker(pauseMs: number): Promise<RestartTiming> {
  const started = Date.now();
  await rabbitmqctl('stop_app');
  const stopped = Date.now();
  try {
    await sleep(pauseMs);
  } finally {
    await ensureBrokerRunning();
  }
  return { stopMs: stopped - started, downMs: Date.now() - stopped };
}

/** Starts RabbitMQ's application if it is stopped (a no-op when it runs) and waits until it is up. */
export async function ensureBrokerRunning(): Promise<void> {
  await rabbitmqctl('start_app');
  await rabbitmqctl('await_startup');
}

/** Fails unless a client can connect to RabbitMQ and declare nothing (the end-of-test check). */
export async function assertBrokerUp(): Promise<void> {
  const t = amqpTransport({ url: AMQP_URL, logger: silentLogger, connectTimeoutMs: 30_000 });
  try {
    await t.declare({ exchanges: [], queues: [] });
  } finally {
    await t.close();
  }
}

/** A transport for the test process itself (publisher or admin), with fast reconnection. */
export function openTransport(name: string): AmqpTransport {
  return amqpTransport({
    url: AMQP_URL,
    connectionName: `reliability ${name}`,
    logger: silentLogger,
    reconnect: { initialDelayMs: 100, maxDelayMs: 1000 },
    publishTimeoutMs: 90_000,
    maxBufferedPublishes: 50_000,
  });
}

/** Deletes queues (with their retry and dead-letter queues) and exchanges a test created. */
export async function deleteTopology(topology: Topology): Promise<void> {
  const admin = openTransport('cleanup');
  try {
    await admin.deleteTopology(topology, { exchanges: true });
  } finally {
    await admin.close();
  }
}

/** How many messages are ready in a queue (0 when it does not exist). */
export async function queueDepth(queue: string): Promise<number> {
  const amqp = await import('amqplib');
  const connection = await amqp.connect(AMQP_URL);
  try {
    const channel = await connection.createChannel();
    channel.on('error', () => {});
    const ok = await channel.checkQueue(queue).catch(() => undefined);
    return ok?.messageCount ?? 0;
  } finally {
    await connection.close().catch(() => {});
  }
}

/**
 * Runs the real `tidings` command as a child process (`node --import tsx src/cli/main.ts
 * ...args`), with `BROKER_URL` unset unless `env` sets it, and no terminal on stdin.
 */
export function runCli(
  args: readonly string[],
  env: NodeJS.ProcessEnv = {},
  timeoutMs = 60_000,
): Promise<{ code: number | null; stdout: string; stderr: string; ms: number }> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], {
      cwd: REPO_ROOT,
      env: { ...process.env, BROKER_URL: undefined, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => {
      stdout += c;
    });
    child.stderr.setEncoding('utf8').on('data', (c: string) => {
      stderr += c;
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', reject);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, ms: Date.now() - started });
    });
  });
}

/** Polls an asynchronous check every 100 ms until it holds; throws after `timeoutMs`. */
export async function waitUntil(
  check: () => Promise<boolean>,
  what: string,
  timeoutMs = 10_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline)
      throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(100);
  }
}

/** A consumer process and everything it has reported so far. */
export class ConsumerProcess {
  /** Every `h` line, in arrival order. */
  readonly calls: Extract<ConsumerLine, { kind: 'h' }>[] = [];
  /** Every `ok` line: handlers that returned. */
  readonly returned: Extract<ConsumerLine, { kind: 'ok' }>[] = [];
  /** Every `dup` line. */
  readonly duplicates: Extract<ConsumerLine, { kind: 'dup' }>[] = [];
  /** Every `dead` line. */
  readonly dead: Extract<ConsumerLine, { kind: 'dead' }>[] = [];
  /** Order ids whose payload had an unexpected prototype. */
  readonly protos: number[] = [];
  /** The summary it wrote when it stopped cleanly. */
  summary: ConsumerSummary | undefined;
  ready = false;
  /** Its stderr and unparsed stdout, for diagnosis. */
  output = '';
  readonly child: ChildProcess;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  constructor(readonly config: ConsumerConfig) {
    this.child = spawn(process.execPath, ['--import', 'tsx', CONSUMER], {
      cwd: REPO_ROOT,
      env: { ...process.env, [CONSUMER_ENV]: JSON.stringify(config) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.exited = new Promise((resolve) =>
      this.child.once('exit', (code, signal) => resolve({ code, signal })),
    );
    let pending = '';
    this.child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      pending += chunk;
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      for (const line of lines) this.take(line);
    });
    this.child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
      this.output = (this.output + chunk).slice(-20_000);
    });
  }

  private take(line: string): void {
    const parsed = parseLine(line);
    if (!parsed) {
      this.output = `${this.output}${line}\n`.slice(-20_000);
      return;
    }
    switch (parsed.kind) {
      case 'ready':
        this.ready = true;
        break;
      case 'h':
        this.calls.push(parsed);
        break;
      case 'ok':
        this.returned.push(parsed);
        break;
      case 'dup':
        this.duplicates.push(parsed);
        break;
      case 'dead':
        this.dead.push(parsed);
        break;
      case 'proto':
        this.protos.push(parsed.orderId);
        break;
      case 'bye':
        this.summary = parsed.summary;
        break;
    }
  }

  /** True while the process runs. */
  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Resolves once it consumes; rejects with its output if it dies or takes too long. */
  async whenReady(timeoutMs = 30_000): Promise<void> {
    try {
      await waitFor(() => this.ready || !this.alive, `${this.config.label} to start`, timeoutMs);
    } catch (error) {
      throw new Error(`${(error as Error).message}; its output:\n${this.output}`);
    }
    if (!this.ready) throw new Error(`${this.config.label} died while starting:\n${this.output}`);
  }

  /** SIGTERM, then waits for a clean exit (code 0 and a summary); SIGKILL after `timeoutMs`. */
  async stop(timeoutMs = 20_000): Promise<ConsumerSummary> {
    if (this.alive) this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), timeoutMs);
    const { code, signal } = await this.exited;
    clearTimeout(timer);
    if (code !== 0 || !this.summary) {
      throw new Error(
        `${this.config.label} did not stop cleanly (code ${code}, signal ${signal}):\n${this.output}`,
      );
    }
    return this.summary;
  }

  /** Kills it without a chance to clean up. */
  async kill(): Promise<void> {
    if (this.alive) this.child.kill('SIGKILL');
    await this.exited;
  }
}

/** Starts consumer processes and waits until every one consumes. */
export async function startConsumers(
  configs: readonly ConsumerConfig[],
): Promise<ConsumerProcess[]> {
  const consumers = configs.map((c) => new ConsumerProcess(c));
  try {
    await Promise.all(consumers.map((c) => c.whenReady()));
  } catch (error) {
    await Promise.all(consumers.map((c) => c.kill()));
    throw error;
  }
  return consumers;
}

/** How often each key occurs: the ones over 1 are duplicates. */
export function tally<K>(items: Iterable<K>): Map<K, number> {
  const counts = new Map<K, number>();
  for (const k of items) counts.set(k, (counts.get(k) ?? 0) + 1);
  return counts;
}

/** The keys seen more than once, with how often; and how many extra occurrences in all. */
export function duplicatesOf<K>(counts: Map<K, number>): { keys: [K, number][]; extra: number } {
  const keys = [...counts].filter(([, n]) => n > 1);
  return { keys, extra: keys.reduce((sum, [, n]) => sum + n - 1, 0) };
}

/** Prints a test's figures as one block, so they can be quoted. */
export function report(title: string, figures: Record<string, unknown>): void {
  const width = Math.max(...Object.keys(figures).map((k) => k.length));
  const lines = Object.entries(figures).map(
    ([k, v]) => `  ${k.padEnd(width)}  ${typeof v === 'string' ? v : JSON.stringify(v)}`,
  );
  console.log(`\n[reliability] ${title}\n${lines.join('\n')}\n`);
}

/**
 * Publishes `count` messages through `publish` with up to `window` in flight, calling `progress`
 * with the number confirmed after each confirm. Resolves with the failures (expected: none).
 */
export async function publishStream(
  count: number,
  publish: (i: number) => Promise<unknown>,
  options: { window?: number; progress?: (confirmed: number) => void } = {},
): Promise<unknown[]> {
  const failures: unknown[] = [];
  const inFlight = new Set<Promise<unknown>>();
  let confirmed = 0;
  for (let i = 0; i < count; i++) {
    const p = publish(i).then(
      () => {
        confirmed++;
        options.progress?.(confirmed);
      },
      (error: unknown) => void failures.push(error),
    );
    inFlight.add(p);
    void p.finally(() => inFlight.delete(p));
    if (inFlight.size >= (options.window ?? 300)) await Promise.race(inFlight);
  }
  await Promise.all(inFlight);
  return failures;
}
