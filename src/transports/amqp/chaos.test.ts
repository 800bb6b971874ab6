import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { defineEvent, defineExchange } from '../../contracts/event.js';
import { silentLogger } from '../../logger.js';
import { createService, type Service } from '../../runtime/service.js';
import { brokerReachable, uniqueName } from '../../testing/broker.js';
import { waitFor } from '../../testing/conformance.js';
import { testOrderSchema } from '../../testing/schema.js';
import type { Topology } from '../transport.js';
import { type AmqpTransport, type AmqpTransportOptions, amqpTransport } from './index.js';

/*
 * Failures for real: RabbitMQ is stopped and started again (`rabbitmqctl stop_app`/`start_app`)
 * during a stream of messages, and a consumer process is killed with SIGKILL. Every message is
 * counted. The restart disturbs anything else using the local broker at that moment; set
 * TIDINGS_SKIP_BROKER_RESTART=1 to skip it.
 */

const url = process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const broker = new URL(url);
const up = await brokerReachable(broker.hostname, Number(broker.port || 5672), 'RabbitMQ');
const run = promisify(execFile);
const local = ['127.0.0.1', 'localhost', '::1'].includes(broker.hostname);
const canRestart =
  up &&
  local &&
  !process.env.TIDINGS_SKIP_BROKER_RESTART &&
  (await rabbitmqctl('-q', 'status').then(
    () => true,
    () => false,
  ));
if (up && !canRestart) {
  console.warn(
    '\n  SKIPPED: the broker restart test (it needs a local RabbitMQ, rabbitmqctl, and ' +
      'TIDINGS_SKIP_BROKER_RESTART unset).\n',
  );
}

function rabbitmqctl(...args: string[]) {
  return run('rabbitmqctl', args, { timeout: 60_000 });
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));
const srcUrl = (path: string) => pathToFileURL(join(repoRoot, 'src', path)).href;

describe.skipIf(!up)('RabbitMQ chaos', () => {
  const transports: AmqpTransport[] = [];
  const services: Service[] = [];
  const topologies: Topology[] = [];
  const children: ChildProcess[] = [];
  let brokerStopped = false;

  function open(options: AmqpTransportOptions = {}): AmqpTransport {
    const t = amqpTransport({
      url,
      logger: silentLogger,
      reconnect: { initialDelayMs: 100, maxDelayMs: 1000 },
      publishTimeoutMs: 60_000,
      maxBufferedPublishes: 20_000,
      ...options,
    });
    transports.push(t);
    return t;
  }

  afterEach(async () => {
    for (const c of children.splice(0)) c.kill('SIGKILL');
    // ALWAYS leave the broker running, whatever happened in the test.
    if (brokerStopped) {
      await rabbitmqctl('start_app');
      await rabbitmqctl('await_startup');
      brokerStopped = false;
    }
    for (const s of services.splice(0)) await s.stop();
    for (const t of transports.splice(0)) await t.close();
    const admin = amqpTransport({ url, logger: silentLogger });
    for (const topology of topologies.splice(0))
      await admin.deleteTopology(topology, { exchanges: true });
    await admin.close();
  });

  afterAll(async () => {
    if (brokerStopped) await rabbitmqctl('start_app');
  });

  it.skipIf(!canRestart)(
    'loses nothing when RabbitMQ restarts during a stream of 10,000 messages to two consumers',
    async () => {
      const exchange = defineExchange(uniqueName('chaos'));
      const submit = defineEvent(exchange, 'submit', testOrderSchema);
      const name = uniqueName('worker');
      const seen = new Map<number, number>();
      const consumers = [
        open({ connectionName: 'chaos consumer 1' }),
        open({ connectionName: 'chaos consumer 2' }),
      ];
      const perConsumer = [0, 0];
      consumers.forEach((t, i) => {
        const s = createService({ name, transport: t, logger: silentLogger, prefetch: 50 });
        s.on(submit, (order) => {
          seen.set(order.id, (seen.get(order.id) ?? 0) + 1);
          perConsumer[i]!++;
        });
        services.push(s);
      });
      topologies.push(services[0]!.topology());
      for (const s of services) await s.start();

      const producerTransport = open({ connectionName: 'chaos producer' });
      const disconnects: string[] = [];
      const reconnects: string[] = [];
      for (const t of [producerTransport, ...consumers]) {
        t.on('disconnected', (e) => void disconnects.push(e.connection));
        t.on('connected', (e) => void (e.reconnected && reconnects.push(e.connection)));
      }
      const producer = createService({
        name: uniqueName('shop'),
        transport: producerTransport,
        logger: silentLogger,
      });

      const total = 10_000;
      const started = Date.now();
      let confirmed = 0;
      const failures: unknown[] = [];
      let restart: Promise<void> | undefined;
      const window = new Set<Promise<unknown>>();
      for (let id = 0; id < total; id++) {
        const p = producer.publish(submit, { id, lines: [] }).then(
          () => void confirmed++,
          (error: unknown) => void failures.push(error),
        );
        window.add(p);
        void p.finally(() => window.delete(p));
        if (window.size >= 300) await Promise.race(window);
        if (id === 2000) {
          restart = (async () => {
            brokerStopped = true;
            await rabbitmqctl('stop_app');
            await sleep(1500);
            await rabbitmqctl('start_app');
            brokerStopped = false;
          })();
        }
      }
      await Promise.all(window);
      await restart;
      const publishedIn = Date.now() - started;
      expect(failures).toEqual([]);
      expect(confirmed).toBe(total);

      await waitFor(() => seen.size === total, `${total} distinct messages handled`, 40_000);
      const duplicates = [...seen.values()].reduce((n, count) => n + count - 1, 0);
      console.info(
        `broker restart: ${total} published and confirmed in ${publishedIn} ms, all ${total} handled ` +
          `(${perConsumer.join(' + ')} deliveries, ${duplicates} redelivered after the restart), ` +
          `${disconnects.length} connections lost and recovered`,
      );
      expect(seen.size).toBe(total);
      expect(Math.min(...seen.keys())).toBe(0);
      expect(Math.max(...seen.keys())).toBe(total - 1);
      // Five connections were open (the producer never consumes): each was lost and came back.
      expect(disconnects.sort()).toEqual(['consume', 'consume', 'publish', 'publish', 'publish']);
      // An idle connection may come back after the last message was handled: wait for it.
      await waitFor(
        () => reconnects.length === disconnects.length,
        'every connection back',
        30_000,
      );
      expect(reconnects.sort()).toEqual(disconnects);
      expect(perConsumer.every((n) => n > 0)).toBe(true);
    },
    90_000,
  );

  it('hands the unacknowledged messages of a SIGKILLed consumer process to another consumer', async () => {
    const exchange = defineExchange(uniqueName('kill'));
    const submit = defineEvent(exchange, 'submit', testOrderSchema);
    const name = uniqueName('worker');
    const prefetch = 25;
    const total = 100;

    const direct = open();
    const survivor = createService({ name, transport: direct, logger: silentLogger, prefetch: 10 });
    const handled = new Map<number, boolean>();
    survivor.on(submit, (order, ctx) => {
      if (handled.has(order.id)) throw new Error(`handled ${order.id} twice`);
      handled.set(order.id, ctx.redelivered);
    });
    const topology = survivor.topology();
    topologies.push(topology);
    await direct.declare(topology);

    // The victim: a separate Node process consuming the same queue, which never acks.
    const dir = mkdtempSync(join(tmpdir(), 'tidings-chaos-'));
    const script = join(dir, 'victim.mts');
    writeFileSync(
      script,
      `
import { amqpTransport } from ${JSON.stringify(srcUrl('transports/amqp/index.ts'))};
import { createService } from ${JSON.stringify(srcUrl('runtime/service.ts'))};
import { silentLogger } from ${JSON.stringify(srcUrl('logger.ts'))};
import { defineExchange, defineEvent } from ${JSON.stringify(srcUrl('contracts/event.ts'))};
import { testOrderSchema } from ${JSON.stringify(srcUrl('testing/schema.ts'))};
const submit = defineEvent(defineExchange(${JSON.stringify(exchange.name)}), 'submit', testOrderSchema);
const transport = amqpTransport({ url: ${JSON.stringify(url)}, logger: silentLogger });
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
      await waitFor(() => ready, 'the victim process to consume', 20_000);
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
    await waitFor(() => held.size === prefetch, `the victim to hold ${prefetch} messages`, 10_000);

    services.push(survivor);
    await survivor.start();
    await waitFor(() => handled.size === total - prefetch, 'the survivor to handle the rest');
    expect([...handled.keys()].some((id) => held.has(id))).toBe(false);

    child.kill('SIGKILL');
    await waitFor(() => handled.size === total, `all ${total} messages handled`, 15_000);
    const redelivered = [...handled].filter(([, again]) => again).map(([id]) => id);
    expect(redelivered.sort((a, b) => a - b)).toEqual([...held].sort((a, b) => a - b));
    expect([...handled.keys()].sort((a, b) => a - b)).toEqual(
      Array.from({ length: total }, (_, i) => i),
    );
    expect(child.signalCode ?? 'SIGKILL').toBe('SIGKILL');
  }, 60_000);
});
