import { afterEach, describe, expect, it } from 'vitest';
import { FlakyProxy } from '../../../test/support/flaky-proxy.js';
import { PublishBufferFullError, PublishTimeoutError } from '../../errors.js';
import { silentLogger } from '../../logger.js';
import { brokerReachable, uniqueName } from '../../testing/broker.js';
import { waitFor } from '../../testing/conformance.js';
import type { Delivery, Topology } from '../transport.js';
import type { AmqpTransportEvents } from './events.js';
import { type AmqpTransport, type AmqpTransportOptions, amqpTransport } from './index.js';

const url = process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const broker = new URL(url);
const brokerPort = Number(broker.port || 5672);
const up = await brokerReachable(broker.hostname, brokerPort, 'RabbitMQ');

function record(t: AmqpTransport) {
  const seen: { name: string; event: Record<string, unknown> }[] = [];
  for (const name of [
    'connected',
    'disconnected',
    'reconnecting',
    'topology-declared',
    'consumer-resumed',
    'error',
  ] as (keyof AmqpTransportEvents)[]) {
    t.on(name, (event) => void seen.push({ name, event: event as Record<string, unknown> }));
  }
  return seen;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe.skipIf(!up)('RabbitMQ transport recovery (through a flaky proxy)', () => {
  const transports: AmqpTransport[] = [];
  const proxies: FlakyProxy[] = [];
  const topologies: Topology[] = [];

  function open(options: AmqpTransportOptions = {}): AmqpTransport {
    const t = amqpTransport({
      url,
      logger: silentLogger,
      reconnect: { initialDelayMs: 20, maxDelayMs: 200 },
      ...options,
    });
    transports.push(t);
    return t;
  }

  async function proxy(): Promise<FlakyProxy> {
    const p = await new FlakyProxy(url).start();
    proxies.push(p);
    return p;
  }

  async function queue(t: AmqpTransport) {
    const exchange = uniqueName('rec');
    const topology = {
      exchanges: [exchange],
      queues: [{ name: `${exchange}.q`, bindings: [{ exchange, pattern: '#' }] }],
    };
    topologies.push(topology);
    await t.declare(topology);
    return { exchange, queue: `${exchange}.q` };
  }

  const message = (exchange: string, body: string) => ({
    exchange,
    routingKey: 'k',
    body: Buffer.from(body),
    properties: { messageId: body, headers: {} },
  });

  /** Collects the bodies of a queue through a direct (proxy-free) connection. */
  async function drain(queue: string) {
    const bodies: string[] = [];
    const t = open();
    await t.consume(queue, { prefetch: 200 }, (d) => {
      bodies.push(d.message.body.toString());
      void d.ack();
    });
    return bodies;
  }

  afterEach(async () => {
    for (const p of proxies.splice(0)) await p.stop();
    for (const t of transports.splice(0)) await t.close();
    const admin = amqpTransport({ url, logger: silentLogger });
    for (const topology of topologies.splice(0))
      await admin.deleteTopology(topology, { exchanges: true });
    await admin.close();
  });

  it('waits for a broker that is not up yet on the first connection', async () => {
    const p = await proxy();
    await p.down();
    const t = open({ url: p.url, connectTimeoutMs: 5000 });
    const connecting = t.connect();
    await sleep(300);
    await p.up();
    await connecting;
  });

  it('buffers publishes made during an outage and confirms them after reconnecting', async () => {
    const p = await proxy();
    const t = open({ url: p.url });
    const events = record(t);
    const { exchange, queue: q } = await queue(t);
    const bodies = await drain(q);
    await p.down();
    await waitFor(() => events.some((e) => e.name === 'disconnected'), 'the disconnection');
    let settled = 0;
    const publishes = Array.from({ length: 100 }, (_, i) =>
      t.publish(message(exchange, String(i))).finally(() => void settled++),
    );
    await sleep(300);
    expect(settled).toBe(0);
    await p.up();
    const outcomes = await Promise.all(publishes);
    expect(outcomes.every((o) => o.routed)).toBe(true);
    await waitFor(() => bodies.length >= 100, '100 deliveries');
    expect(new Set(bodies).size).toBe(100);
    const names = events.map((e) => e.name);
    expect(names).toContain('reconnecting');
    expect(events.find((e) => e.name === 'connected' && e.event.reconnected)?.event).toMatchObject({
      connection: 'publish',
    });
    expect(events.find((e) => e.name === 'topology-declared' && e.event.restored)).toBeDefined();
  });

  it('sends again what was in flight when the connection dropped: nothing is lost', async () => {
    const p = await proxy();
    const t = open({ url: p.url });
    const { exchange, queue: q } = await queue(t);
    const bodies = await drain(q);
    let confirmed = 0;
    const total = 5000;
    const publishes = Array.from({ length: total }, (_, i) =>
      t.publish(message(exchange, String(i))).then((o) => {
        confirmed++;
        return o;
      }),
    );
    await waitFor(() => confirmed >= 500, 'some confirms');
    p.cut();
    const outcomes = await Promise.all(publishes);
    expect(outcomes.filter((o) => o.routed)).toHaveLength(total);
    await waitFor(() => new Set(bodies).size === total, `${total} distinct deliveries`, 20_000);
    // At-least-once: some may have arrived twice, none is missing.
    expect(bodies.length).toBeGreaterThanOrEqual(total);
  });

  it('rejects publishes past the buffer bound at once, and the buffered ones after the timeout', async () => {
    const p = await proxy();
    const t = open({ url: p.url, maxBufferedPublishes: 10, publishTimeoutMs: 400 });
    const events = record(t);
    const { exchange } = await queue(t);
    await p.down();
    await waitFor(() => events.some((e) => e.name === 'disconnected'), 'the disconnection');
    const buffered = Array.from({ length: 10 }, (_, i) => t.publish(message(exchange, String(i))));
    const started = Date.now();
    await expect(t.publish(message(exchange, 'one too many'))).rejects.toBeInstanceOf(
      PublishBufferFullError,
    );
    const results = await Promise.allSettled(buffered);
    for (const r of results) {
      expect(r.status).toBe('rejected');
      const error = (r as PromiseRejectedResult).reason as PublishTimeoutError;
      expect(error).toBeInstanceOf(PublishTimeoutError);
      expect(error.waitedMs).toBeGreaterThanOrEqual(400);
    }
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it('resumes consumers after reconnecting; deliveries from the dead channel settle quietly and come back', async () => {
    const p = await proxy();
    const t = open({ url: p.url });
    const events = record(t);
    const { exchange, queue: q } = await queue(t);
    const held: Delivery[] = [];
    await t.consume(q, { prefetch: 10 }, (d) => held.push(d));
    const direct = open();
    for (let i = 0; i < 5; i++) await direct.publish(message(exchange, String(i)));
    await waitFor(() => held.length === 5, '5 deliveries held');
    p.cut();
    await waitFor(
      () => events.some((e) => e.name === 'consumer-resumed'),
      'the consumer to resume',
    );
    expect(events.find((e) => e.name === 'consumer-resumed')!.event).toEqual({
      queue: q,
      after: 'reconnection',
    });
    // Their channel is gone: settling them is a no-op that resolves, RabbitMQ redelivers them.
    await Promise.all(held.slice(0, 5).map((d) => d.ack()));
    await waitFor(() => held.length === 10, 'the 5 redeliveries');
    const again = held.slice(5);
    expect(again.every((d) => d.message.redelivered)).toBe(true);
    expect(again.map((d) => d.message.body.toString()).sort()).toEqual(['0', '1', '2', '3', '4']);
    await Promise.all(again.map((d) => d.ack()));
    // Let the publish connection finish re-declaring, so no declaration races the cleanup.
    await waitFor(
      () => events.some((e) => e.name === 'topology-declared' && e.event.restored),
      'the topology to be re-declared',
    );
  });
});
