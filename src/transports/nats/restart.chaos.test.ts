import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, connect as tcpConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { defineEvent, defineExchange } from '../../contracts/event.js';
import { silentLogger } from '../../logger.js';
import { createService, type Service } from '../../runtime/service.js';
import { uniqueName } from '../../testing/broker.js';
import { waitFor } from '../../testing/conformance.js';
import { testOrderSchema } from '../../testing/schema.js';
import { type NatsTransport, type NatsTransportOptions, natsTransport } from './index.js';

/*
 * Failures for real, on a nats-server of the test's own (a free port, a store directory of its
 * own), never the shared one: the server is restarted twice during a stream of messages (once
 * stopped cleanly, once killed with SIGKILL), and a consumer process is killed. Every message is
 * counted. NATS_SERVER_BIN names the binary (default /usr/sbin/nats-server, else on the PATH).
 */

const candidates = [process.env.NATS_SERVER_BIN, '/usr/sbin/nats-server', '/usr/bin/nats-server'];
const binary = candidates.find((p): p is string => p !== undefined && existsSync(p));
if (!binary) {
  if (process.env.CI) throw new Error('nats-server is not installed, and CI requires it.');
  console.warn('\n  SKIPPED: nats-server is not installed; the NATS restart tests are skipped.\n');
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));
const srcUrl = (path: string) => pathToFileURL(join(repoRoot, 'src', path)).href;

/** A port nobody listens on: the first free one of 4230-4239, else one the system picks. */
async function freePort(): Promise<number> {
  const tryPort = (port: number) =>
    new Promise<number | undefined>((resolve) => {
      const server = createServer();
      server.once('error', () => resolve(undefined));
      server.listen(port, '127.0.0.1', () => {
        const address = server.address();
        server.close(() =>
          resolve(typeof address === 'object' && address ? address.port : undefined),
        );
      });
    });
  for (let port = 4230; port <= 4239; port++) {
    const got = await tryPort(port);
    if (got) return got;
  }
  const any = await tryPort(0);
  if (!any) throw new Error('no free port');
  return any;
}

function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = tcpConnect({ host: '127.0.0.1', port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/** One nats-server process with JetStream, restartable on the same port and store. */
class PrivateServer {
  private child: ChildProcess | undefined;
  readonly store = mkdtempSync(join(tmpdir(), 'tidings-nats-chaos-'));
  constructor(readonly port: number) {}

  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }

  get running(): boolean {
    const c = this.child;
    return c !== undefined && c.exitCode === null && c.signalCode === null;
  }

  /** Starts the server unless it runs, and waits until it accepts connections. */
  async start(): Promise<void> {
    if (this.running) return;
    if (await listening(this.port)) throw new Error(`port ${this.port} is taken by someone else`);
    const child = spawn(
      binary!,
      ['-a', '127.0.0.1', '-p', String(this.port), '-js', '-sd', this.store],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let output = '';
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
      output = (output + chunk).slice(-4000);
    });
    this.child = child;
    // Never outlive the test run, even one that is killed or crashes.
    const reap = () => child.kill('SIGKILL');
    process.once('exit', reap);
    child.once('exit', () => process.off('exit', reap));
    const deadline = Date.now() + 30_000;
    while (!(await listening(this.port))) {
      if (child.exitCode !== null || Date.now() > deadline) {
        throw new Error(`nats-server did not start on ${this.port}:\n${output}`);
      }
      await sleep(100);
    }
  }

  /** Stops the server: `SIGTERM` shuts it down cleanly, `SIGKILL` is a crash. */
  async stop(signal: 'SIGTERM' | 'SIGKILL'): Promise<void> {
    const child = this.child;
    if (!child || !this.running) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill(signal);
    await exited;
    this.child = undefined;
  }

  async dispose(): Promise<void> {
    await this.stop('SIGKILL');
    rmSync(this.store, { recursive: true, force: true });
  }
}

/** Streams and consumers of a server, for a failure message. */
async function describeServer(url: string): Promise<string> {
  const { connect } = await import('@nats-io/transport-node');
  const { jetstreamManager } = await import('@nats-io/jetstream');
  const nc = await connect({ servers: url });
  try {
    const jsm = await jetstreamManager(nc);
    const lines: string[] = [];
    for await (const s of jsm.streams.list()) {
      lines.push(`${s.config.name} ${JSON.stringify(s.config.subjects)} ${s.state.messages} msgs`);
      for await (const c of jsm.consumers.list(s.config.name)) {
        lines.push(
          `  ${c.name}: pending ${c.num_pending}, ack pending ${c.num_ack_pending}, ` +
            `redelivered ${c.num_redelivered}, waiting ${c.num_waiting}, ` +
            `delivered ${c.delivered.stream_seq}, ack floor ${c.ack_floor.stream_seq}`,
        );
      }
    }
    return `\n${lines.join('\n')}`;
  } finally {
    await nc.close();
  }
}

describe.skipIf(!binary)('NATS chaos, on a nats-server of its own', () => {
  let server: PrivateServer;
  const transports: NatsTransport[] = [];
  const services: Service[] = [];
  const children: ChildProcess[] = [];

  function open(options: NatsTransportOptions = {}): NatsTransport {
    const t = natsTransport({
      url: server.url,
      logger: silentLogger,
      reconnect: { initialDelayMs: 100, maxDelayMs: 1000 },
      publishTimeoutMs: 60_000,
      ackWaitMs: 5000,
      ...options,
    });
    transports.push(t);
    return t;
  }

  beforeAll(async () => {
    server = new PrivateServer(await freePort());
    await server.start();
  });

  afterEach(async () => {
    for (const c of children.splice(0)) c.kill('SIGKILL');
    // A test that failed mid-restart leaves the server down: the next one needs it.
    await server.start();
    for (const s of services.splice(0)) await s.stop();
    for (const t of transports.splice(0)) await t.close();
  });

  afterAll(async () => {
    await server?.dispose();
  });

  it('loses nothing when nats-server restarts twice (clean stop, then SIGKILL) during 5,000 messages', async () => {
    const exchange = defineExchange(uniqueName('chaos'));
    const submit = defineEvent(exchange, 'submit', testOrderSchema);
    const name = uniqueName('worker');
    const seen = new Map<number, number>();
    const failedOnce = new Set<number>();
    const consumers = [open({ name: 'chaos consumer 1' }), open({ name: 'chaos consumer 2' })];
    const perConsumer = [0, 0];
    consumers.forEach((t, i) => {
      const s = createService({
        name,
        transport: t,
        logger: silentLogger,
        prefetch: 50,
        retry: { baseDelayMs: 200, maxAttempts: 5 },
      });
      s.on(submit, (order) => {
        // Every 50th message fails once, so retried copies are in flight during the restarts.
        if (order.id % 50 === 0 && !failedOnce.has(order.id)) {
          failedOnce.add(order.id);
          throw new Error('fails once');
        }
        seen.set(order.id, (seen.get(order.id) ?? 0) + 1);
        perConsumer[i]!++;
      });
      services.push(s);
    });
    for (const s of services) await s.start();

    const producerTransport = open({ name: 'chaos producer' });
    const disconnects: string[] = [];
    const reconnects: string[] = [];
    transports.forEach((t, i) => {
      t.on('disconnected', () => void disconnects.push(String(i)));
      t.on('connected', (e) => void (e.reconnected && reconnects.push(String(i))));
    });
    const producer = createService({
      name: uniqueName('shop'),
      transport: producerTransport,
      logger: silentLogger,
    });

    const total = 5000;
    const started = Date.now();
    let confirmed = 0;
    const failures: unknown[] = [];
    const restarts: Promise<void>[] = [];
    const window = new Set<Promise<unknown>>();
    const restart = (signal: 'SIGTERM' | 'SIGKILL') =>
      (async () => {
        await server.stop(signal);
        await sleep(1000);
        await server.start();
      })();
    for (let id = 0; id < total; id++) {
      const p = producer.publish(submit, { id, lines: [] }).then(
        () => void confirmed++,
        (error: unknown) => void failures.push(error),
      );
      window.add(p);
      void p.finally(() => window.delete(p));
      if (window.size >= 200) await Promise.race(window);
      if (id === 1500) restarts.push(restart('SIGTERM'));
      if (id === 3500) {
        await Promise.all(restarts);
        // Publishing resumes as soon as the producer is back, before the consumers may be: the
        // second restart must find all three connections up, or it takes one of them down once.
        await waitFor(() => reconnects.length === 3, 'all three connections back', 30_000);
        restarts.push(restart('SIGKILL'));
      }
    }
    await Promise.all(window);
    await Promise.all(restarts);
    const publishedIn = Date.now() - started;
    expect(failures).toEqual([]);
    expect(confirmed).toBe(total);

    try {
      await waitFor(() => seen.size === total, `${total} distinct messages handled`, 90_000);
    } catch (error) {
      const missing = Array.from({ length: total }, (_, i) => i).filter((i) => !seen.has(i));
      throw new Error(
        `${(error as Error).message}: ${missing.length} missing (${missing.slice(0, 10).join(', ')}…); ` +
          `server state: ${await describeServer(server.url)}`,
      );
    }
    const duplicates = [...seen.values()].reduce((n, count) => n + count - 1, 0);
    console.info(
      `nats-server restarted twice: ${total} published and acknowledged in ${publishedIn} ms, ` +
        `all ${total} handled (${perConsumer.join(' + ')} deliveries, ${duplicates} duplicates, ` +
        `${failedOnce.size} retried once), 0 lost; ${disconnects.length} disconnections, ` +
        `${reconnects.length} reconnections`,
    );
    expect(seen.size).toBe(total);
    expect(Math.min(...seen.keys())).toBe(0);
    expect(Math.max(...seen.keys())).toBe(total - 1);
    // Three connections, each lost twice.
    expect(disconnects.length).toBe(6);
    expect(perConsumer.every((n) => n > 0)).toBe(true);
  }, 170_000);

  it('delivers the unacknowledged messages of a SIGKILLed consumer process again, after the ack wait', async () => {
    const exchange = defineExchange(uniqueName('kill'));
    const submit = defineEvent(exchange, 'submit', testOrderSchema);
    const name = uniqueName('worker');
    const prefetch = 25;
    const total = 100;
    const ackWaitMs = 3000;

    const direct = open({ ackWaitMs });
    const survivor = createService({ name, transport: direct, logger: silentLogger, prefetch: 10 });
    const handled = new Map<number, boolean>();
    survivor.on(submit, (order, ctx) => {
      if (handled.has(order.id)) throw new Error(`handled ${order.id} twice`);
      handled.set(order.id, ctx.redelivered);
    });
    await direct.declare(survivor.topology());

    const dir = mkdtempSync(join(tmpdir(), 'tidings-nats-victim-'));
    const script = join(dir, 'victim.mts');
    writeFileSync(
      script,
      `
import { natsTransport } from ${JSON.stringify(srcUrl('transports/nats/index.ts'))};
import { createService } from ${JSON.stringify(srcUrl('runtime/service.ts'))};
import { silentLogger } from ${JSON.stringify(srcUrl('logger.ts'))};
import { defineExchange, defineEvent } from ${JSON.stringify(srcUrl('contracts/event.ts'))};
import { testOrderSchema } from ${JSON.stringify(srcUrl('testing/schema.ts'))};
const submit = defineEvent(defineExchange(${JSON.stringify(exchange.name)}), 'submit', testOrderSchema);
const transport = natsTransport({ url: ${JSON.stringify(server.url)}, ackWaitMs: ${ackWaitMs}, logger: silentLogger });
const service = createService({ name: ${JSON.stringify(name)}, transport, logger: silentLogger, prefetch: ${prefetch} });
service.on(submit, (order) => {
  process.stdout.write('held ' + order.id + '\\n');
  return new Promise(() => {});
});
await service.start();
process.stdout.write('ready\\n');
`,
    );
    const child = spawn(process.execPath, ['--import', 'tsx', script], {
      cwd: repoRoot,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(child);
    const held = new Set<number>();
    let ready = false;
    let output = '';
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      output += chunk;
      for (const line of chunk.split('\n')) {
        if (line === 'ready') ready = true;
        const m = /^held (\d+)$/.exec(line);
        if (m) held.add(Number(m[1]));
      }
    });
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
      output += chunk;
    });
    try {
      await waitFor(() => ready, 'the victim process to consume', 30_000);
    } catch (error) {
      throw new Error(`${(error as Error).message}; its output:\n${output}`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }

    const producer = createService({
      name: uniqueName('shop'),
      transport: direct,
      logger: silentLogger,
    });
    for (let id = 0; id < total; id++) await producer.publish(submit, { id, lines: [] });
    await waitFor(() => held.size === prefetch, `the victim to hold ${prefetch} messages`, 15_000);

    services.push(survivor);
    await survivor.start();
    await waitFor(
      () => handled.size === total - prefetch,
      'the survivor to handle the rest',
      15_000,
    );
    // The victim is alive and says it is working on its messages: they stay with it, past the
    // ack wait.
    await sleep(ackWaitMs + 1000);
    expect([...handled.keys()].some((id) => held.has(id))).toBe(false);

    const killedAt = Date.now();
    child.kill('SIGKILL');
    await waitFor(() => handled.size === total, `all ${total} messages handled`, 30_000);
    const after = Date.now() - killedAt;
    const redelivered = [...handled].filter(([, again]) => again).map(([id]) => id);
    console.info(
      `consumer killed: its ${prefetch} messages were delivered again ${after} ms later (ack wait ${ackWaitMs} ms)`,
    );
    expect(redelivered.sort((a, b) => a - b)).toEqual([...held].sort((a, b) => a - b));
    expect([...handled.keys()].sort((a, b) => a - b)).toEqual(
      Array.from({ length: total }, (_, i) => i),
    );
  }, 90_000);
});
