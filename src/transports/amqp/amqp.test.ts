import { execFile } from 'node:child_process';
import { inspect, promisify } from 'node:util';
import { connect as amqplibConnect, type Channel } from 'amqplib';
import { afterEach, describe, expect, it } from 'vitest';
import { defineEvent, defineExchange } from '../../contracts/event.js';
import { HEADERS } from '../../envelope/envelope.js';
import { uuidv7Time } from '../../envelope/id.js';
import {
  ConfigError,
  ConnectionError,
  StateError,
  TopologyConflictError,
  UnroutableError,
} from '../../errors.js';
import type { Logger } from '../../logger.js';
import { silentLogger } from '../../logger.js';
import { createService, type Service } from '../../runtime/service.js';
import { brokerReachable, canRun, uniqueName } from '../../testing/broker.js';
import { waitFor } from '../../testing/conformance.js';
import { testOrderSchema } from '../../testing/schema.js';
import { connect } from '../connect.js';
import { deadLetterQueueName, type Topology } from '../transport.js';
import type { AmqpTransportEvents } from './events.js';
import { type AmqpTransport, type AmqpTransportOptions, amqpTransport } from './index.js';

const url = process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const { hostname, port } = new URL(url);
const up = await brokerReachable(hostname, Number(port || 5672), 'RabbitMQ');
const rabbitmqctl =
  up &&
  canRun(
    await hasRabbitmqctl(),
    'the connection-name test',
    "it reads RabbitMQ's connections with rabbitmqctl, which cannot reach the broker here",
  );

/** A logger that keeps every line, to check what the transport says (and never says). */
function recordingLogger(): Logger & { lines: string[] } {
  const lines: string[] = [];
  const keep = (message: string, fields?: Record<string, unknown>) =>
    void lines.push(`${message} ${fields ? inspect(fields, { depth: 5 }) : ''}`);
  return { lines, debug: keep, info: keep, warn: keep, error: keep };
}

/** Records every lifecycle event of a transport. */
function recordEvents(t: AmqpTransport) {
  const seen: { name: keyof AmqpTransportEvents; event: unknown }[] = [];
  const names: (keyof AmqpTransportEvents)[] = [
    'connected',
    'disconnected',
    'reconnecting',
    'blocked',
    'unblocked',
    'topology-declared',
    'consumer-cancelled',
    'consumer-resumed',
    'error',
  ];
  for (const name of names) t.on(name, (event) => void seen.push({ name, event }));
  return seen;
}

/** Runs `fn` on a raw amqplib channel of a connection of its own. */
async function raw<T>(fn: (channel: Channel) => Promise<T>): Promise<T> {
  const connection = await amqplibConnect(url);
  const channel = await connection.createChannel();
  channel.on('error', () => {});
  try {
    return await fn(channel);
  } finally {
    await connection.close().catch(() => {});
  }
}

describe.skipIf(!up)('RabbitMQ transport', () => {
  const transports: AmqpTransport[] = [];
  const services: Service[] = [];
  const topologies: Topology[] = [];
  const cleanups: (() => Promise<unknown>)[] = [];

  function open(options: AmqpTransportOptions = {}): AmqpTransport {
    const t = amqpTransport({ url, logger: silentLogger, ...options });
    transports.push(t);
    return t;
  }

  afterEach(async () => {
    for (const s of services.splice(0)) await s.stop();
    // Close first: a live transport would re-declare a queue deleted under its consumer.
    for (const t of transports.splice(0)) await t.close();
    const admin = amqpTransport({ url, logger: silentLogger });
    for (const topology of topologies.splice(0)) {
      await admin.deleteTopology(topology, { exchanges: true }).catch(() => {});
    }
    await admin.close();
    for (const fn of cleanups.splice(0)) await fn().catch(() => {});
  });

  function contracts() {
    const exchange = defineExchange(uniqueName('order'));
    const submit = defineEvent(exchange, 'submit', testOrderSchema);
    return { exchange, submit };
  }

  it('runs a service end to end: typed delivery, retries on delay queues, then the dead-letter queue', async () => {
    const t = open({ connectionName: 'roundtrip' });
    const events = recordEvents(t);
    const { submit } = contracts();
    const attempts = new Map<number, number[]>();
    const billing = createService({
      name: uniqueName('billing'),
      transport: t,
      retry: { baseDelayMs: 60, factor: 2, maxAttempts: 3, jitter: 0 },
      logger: silentLogger,
    });
    billing.on(submit, (order, ctx) => {
      attempts.set(order.id, [...(attempts.get(order.id) ?? []), ctx.attempt]);
      if (order.id === 1 && ctx.attempt < 2) throw new Error('flaky');
      if (order.id === 2) throw new Error('always broken');
    });
    services.push(billing);
    topologies.push(billing.topology());
    await billing.start();
    const queue = billing.topology().queues[0]!.name;

    const producer = createService({
      name: uniqueName('shop'),
      transport: t,
      logger: silentLogger,
    });
    const sent = [];
    for (const id of [1, 2, 3]) {
      sent.push(await producer.publish(submit, { id, lines: [{ id: 1, quantity: 1, price: 5 }] }));
    }
    await waitFor(
      () =>
        attempts.get(1)?.length === 2 &&
        attempts.get(2)?.length === 3 &&
        attempts.get(3)?.length === 1,
      'every attempt',
    );
    expect(Object.fromEntries(attempts)).toEqual({ 1: [1, 2], 2: [1, 2, 3], 3: [1] });

    // The dead letter, read raw: body and envelope properties as published, with the history.
    const dead = await raw(async (ch) => {
      for (let i = 0; i < 100; i++) {
        const m = await ch.get(deadLetterQueueName(queue), { noAck: true });
        if (m) return m;
        await new Promise((r) => setTimeout(r, 20));
      }
      throw new Error('no dead letter');
    });
    expect(JSON.parse(dead.content.toString())).toEqual({
      id: 2,
      lines: [{ id: 1, quantity: 1, price: 5 }],
    });
    // Wire format 3, kept as published: the correlation id is left out of an original message
    // (it is the id), and the time is the id's millisecond (no ce-time), with its seconds as
    // `timestamp` for tools.
    expect(dead.properties).toMatchObject({
      messageId: sent[1]!.id,
      correlationId: undefined,
      type: submit.routingKey(),
      appId: producer.name,
      contentType: 'application/json',
      deliveryMode: 2,
      timestamp: Math.floor(Date.parse(sent[1]!.time) / 1000),
    });
    expect(sent[1]!.correlationId).toBe(sent[1]!.id);
    const h = dead.properties.headers!;
    expect(h[HEADERS.deadReason]).toBe('handler-error');
    expect(h[HEADERS.errorMessage]).toBe('always broken');
    expect(h[HEADERS.attempts]).toBe(3);
    expect(h[HEADERS.originalExchange]).toBe(submit.exchange.name);
    expect(h[HEADERS.originalRoutingKey]).toBe(submit.routingKey());
    expect(h[HEADERS.time]).toBeUndefined();
    expect(uuidv7Time(sent[1]!.id)).toBe(Date.parse(sent[1]!.time));
    expect(h[HEADERS.wire]).toBe('3');
    expect(h[HEADERS.id]).toBeUndefined();
    // The retry queues of both levels exist and are empty again.
    await raw(async (ch) => {
      for (const level of [1, 2]) {
        expect((await ch.checkQueue(`${queue}.retry.${level}`)).messageCount).toBe(0);
      }
    });
    expect(events.filter((e) => e.name === 'connected').map((e) => e.event)).toEqual([
      { connection: 'publish', url: 'amqp://guest:***@127.0.0.1:5672/', reconnected: false },
      { connection: 'consume', url: 'amqp://guest:***@127.0.0.1:5672/', reconnected: false },
    ]);
    expect(events.some((e) => e.name === 'topology-declared')).toBe(true);
  });

  it('reports unroutable messages, each to its own publish, many in flight', async () => {
    const t = open();
    const exchange = uniqueName('amqp');
    const topology = {
      exchanges: [exchange],
      queues: [{ name: `${exchange}.q`, bindings: [{ exchange, pattern: 'a.*' }] }],
    };
    topologies.push(topology);
    await t.declare(topology);
    const message = (routingKey: string) => ({
      exchange,
      routingKey,
      // The same id and body for all: the worst case for matching returns to publishes.
      body: Buffer.from('{}'),
      properties: { messageId: 'same', headers: {} },
    });
    expect(await t.publish(message('b.x'))).toEqual({ routed: false });
    expect(await t.publish(message('a.x'))).toEqual({ routed: true });
    const keys = Array.from({ length: 400 }, (_, i) => (i % 3 === 0 ? 'b.k' : 'a.k'));
    const outcomes = await Promise.all(keys.map((k) => t.publish(message(k))));
    expect(outcomes.map((o) => o.routed)).toEqual(keys.map((k) => k === 'a.k'));

    const { submit } = contracts();
    topologies.push({ exchanges: [submit.exchange.name], queues: [] });
    const producer = createService({
      name: uniqueName('shop'),
      transport: t,
      logger: silentLogger,
    });
    await expect(producer.publish(submit, { id: 1, lines: [] })).rejects.toBeInstanceOf(
      UnroutableError,
    );
  });

  it('keeps publishing around a publish to a missing exchange, which alone is rejected', async () => {
    const t = open();
    const exchange = uniqueName('amqp');
    const queue = `${exchange}.q`;
    const topology = {
      exchanges: [exchange],
      queues: [{ name: queue, bindings: [{ exchange, pattern: '#' }] }],
    };
    topologies.push(topology);
    await t.declare(topology);
    const good = (i: number) =>
      t.publish({
        exchange,
        routingKey: 'k',
        body: Buffer.from(String(i)),
        properties: { headers: {} },
      });
    const before = Array.from({ length: 300 }, (_, i) => good(i));
    const missing = t.publish({
      exchange: uniqueName('missing'),
      routingKey: 'k',
      body: Buffer.from('lost'),
      properties: { headers: {} },
    });
    const after = Array.from({ length: 300 }, (_, i) => good(300 + i));
    await expect(missing).rejects.toThrow(/NOT_FOUND - no exchange/);
    expect((await Promise.all([...before, ...after])).every((o) => o.routed)).toBe(true);
    // Messages caught in flight when the broker closed the channel were sent again: the queue has
    // every one of them, some maybe twice (at-least-once).
    const bodies = new Set<string>();
    await raw(async (ch) => {
      for (
        let m = await ch.get(queue, { noAck: true });
        m;
        m = await ch.get(queue, { noAck: true })
      ) {
        bodies.add(m.content.toString());
      }
    });
    expect(bodies.size).toBe(600);
  });

  it('does not bound a burst of publishes while connected: they wait for the socket to drain', async () => {
    const t = open({ maxBufferedPublishes: 100 });
    const exchange = uniqueName('amqp');
    const topology = {
      exchanges: [exchange],
      queues: [{ name: `${exchange}.q`, bindings: [{ exchange, pattern: '#' }] }],
    };
    topologies.push(topology);
    await t.declare(topology);
    const outcomes = await Promise.all(
      Array.from({ length: 5000 }, (_, i) =>
        t.publish({
          exchange,
          routingKey: 'k',
          body: Buffer.alloc(512, i % 256),
          properties: { headers: {} },
        }),
      ),
    );
    expect(outcomes.every((o) => o.routed)).toBe(true);
  });

  it('names the queue and the difference when a queue exists with another type', async () => {
    const t = open();
    const { submit } = contracts();
    const billing = createService({
      name: uniqueName('billing'),
      transport: t,
      logger: silentLogger,
    });
    billing.on(submit, () => {});
    const queue = billing.topology().queues[0]!.name;
    topologies.push(billing.topology());
    await raw((ch) => ch.assertQueue(queue, { durable: true }));

    const error = await billing.start().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(TopologyConflictError);
    const conflict = error as TopologyConflictError;
    expect(conflict.entity).toBe(`queue "${queue}" in vhost "/"`);
    expect(conflict.difference).toContain(
      "x-queue-type is not set (a classic queue) on the broker, but Tidings declares 'quorum'",
    );
    expect(conflict.message).toMatch(/queueType/);
    // The refusal closed a channel of its own: the transport still declares and publishes.
    const exchange = uniqueName('amqp');
    const ok = {
      exchanges: [exchange],
      queues: [{ name: `${exchange}.q`, bindings: [{ exchange, pattern: '#' }] }],
    };
    topologies.push(ok);
    await t.declare(ok);
    expect(
      await t.publish({
        exchange,
        routingKey: 'k',
        body: Buffer.from('x'),
        properties: { headers: {} },
      }),
    ).toEqual({
      routed: true,
    });
    // Every difference is named, not only the first one RabbitMQ reports.
    expect(conflict.difference).toContain('x-dead-letter-routing-key is not set on the broker');
    // Nothing of that queue was created: its dead-letter queue does not exist.
    await expect(raw((ch) => ch.checkQueue(deadLetterQueueName(queue)))).rejects.toThrow(
      /NOT_FOUND/,
    );
  });

  it('names the exchange when it exists with another type', async () => {
    const t = open();
    const exchange = uniqueName('amqp');
    cleanups.push(() => raw((ch) => ch.deleteExchange(exchange)));
    await raw((ch) => ch.assertExchange(exchange, 'direct', { durable: true }));
    const error = await t.declare({ exchanges: [exchange], queues: [] }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TopologyConflictError);
    expect((error as Error).message).toBe(
      `exchange "${exchange}" in vhost "/" already exists with different arguments: ` +
        "type is 'direct' on the broker, but Tidings declares 'topic'. " +
        'Delete it (after draining it) or change the options to match.',
    );
  });

  describe('passwords never leak', () => {
    const secret = 'Sup3r-S3cret-pw';

    async function failure(options: AmqpTransportOptions) {
      const logger = recordingLogger();
      const t = open({ logger, ...options });
      const events = recordEvents(t);
      const error = await t.connect().then(
        () => undefined,
        (e: unknown) => e,
      );
      const publishError = await t
        .publish({
          exchange: 'x',
          routingKey: 'k',
          body: Buffer.from(''),
          properties: { headers: {} },
        })
        .then(
          () => undefined,
          (e: unknown) => e,
        );
      const everything = [
        inspect(error, { depth: 10 }),
        String((error as Error)?.stack),
        inspect(publishError, { depth: 10 }),
        inspect(events, { depth: 10 }),
        ...logger.lines,
      ].join('\n');
      return { error, publishError, everything, events };
    }

    it('in a wrong-password error', async () => {
      const started = Date.now();
      const { error, publishError, everything } = await failure({
        url: `amqp://guest:${secret}@${hostname}:${port || 5672}`,
      });
      expect(error).toBeInstanceOf(ConnectionError);
      expect(publishError).toBeInstanceOf(ConnectionError);
      expect((error as Error).message).toContain('amqp://guest:***@');
      expect((error as Error).message).toMatch(/ACCESS_REFUSED/);
      expect(everything).not.toContain(secret);
      // Refused credentials are not retried.
      expect(Date.now() - started).toBeLessThan(5000);
    });

    it('in an unreachable-port error, and in reconnection events', async () => {
      const { error, everything, events } = await failure({
        url: `amqp://user:${encodeURIComponent(secret)}@127.0.0.1:1`,
        connectTimeoutMs: 400,
      });
      expect(error).toBeInstanceOf(ConnectionError);
      expect((error as Error).message).toMatch(/ECONNREFUSED/);
      expect(events.some((e) => e.name === 'reconnecting')).toBe(true);
      expect(everything).not.toContain(secret);
    });

    it('in URL errors of connect()', async () => {
      const e = await connect(`amqpx://u:${secret}@host`).catch((error: unknown) => error);
      expect(e).toBeInstanceOf(ConfigError);
      expect(inspect(e)).not.toContain(secret);
      const t = await connect(url);
      expect(t.kind).toBe('amqp');
      await t.close();
    });
  });

  describe('consumer cancelled by the broker', () => {
    it('re-declares a queue it declared and consumes again, saying so', async () => {
      const logger = recordingLogger();
      const t = open({ logger });
      const events = recordEvents(t);
      const exchange = uniqueName('amqp');
      const queue = `${exchange}.q`;
      const topology = {
        exchanges: [exchange],
        queues: [{ name: queue, bindings: [{ exchange, pattern: '#' }] }],
      };
      topologies.push(topology);
      await t.declare(topology);
      const got: string[] = [];
      await t.consume(queue, { prefetch: 5 }, (d) => {
        got.push(d.message.body.toString());
        void d.ack();
      });
      await raw((ch) => ch.deleteQueue(queue));
      await waitFor(
        () => events.some((e) => e.name === 'consumer-resumed'),
        'the consumer to resume',
      );
      expect(events.filter((e) => e.name.startsWith('consumer')).map((e) => e.event)).toEqual([
        { queue, resuming: true },
        { queue, after: 'cancellation' },
      ]);
      expect(logger.lines.some((l) => l.includes(`cancelled the consumer of ${queue}`))).toBe(true);
      await t.publish({
        exchange,
        routingKey: 'k',
        body: Buffer.from('after'),
        properties: { headers: {} },
      });
      await waitFor(() => got.length === 1, 'a delivery to the resumed consumer');
      expect(got).toEqual(['after']);
    });

    it('reports a consumer it cannot resume as an error', async () => {
      const logger = recordingLogger();
      const t = open({ logger });
      const events = recordEvents(t);
      const queue = uniqueName('foreign');
      await raw((ch) => ch.assertQueue(queue, { durable: false }));
      cleanups.push(() => raw((ch) => ch.deleteQueue(queue)));
      await t.consume(queue, { prefetch: 1 }, () => {});
      await raw((ch) => ch.deleteQueue(queue));
      await waitFor(() => events.some((e) => e.name === 'consumer-cancelled'), 'the cancellation');
      expect(events.find((e) => e.name === 'consumer-cancelled')!.event).toEqual({
        queue,
        resuming: false,
      });
      expect(logger.lines.some((l) => l.includes('nothing consumes it now'))).toBe(true);
    });
  });

  it('rejects consuming a queue that does not exist', async () => {
    const t = open();
    await expect(
      t.consume(uniqueName('missing'), { prefetch: 1 }, () => {}),
    ).rejects.toBeInstanceOf(StateError);
    // The transport is unharmed.
    const exchange = uniqueName('amqp');
    topologies.push({ exchanges: [exchange], queues: [] });
    await t.declare({ exchanges: [exchange], queues: [] });
  });

  it('close() waits for every outstanding confirm, is idempotent, and refuses later use', async () => {
    const t = open();
    const exchange = uniqueName('amqp');
    const topology = {
      exchanges: [exchange],
      queues: [{ name: `${exchange}.q`, bindings: [{ exchange, pattern: '#' }] }],
    };
    topologies.push(topology);
    await t.declare(topology);
    const publishes = Array.from({ length: 2000 }, (_, i) =>
      t.publish({
        exchange,
        routingKey: 'k',
        body: Buffer.from(String(i)),
        properties: { headers: {} },
      }),
    );
    const first = t.close();
    const second = t.close();
    expect(second).toBe(first);
    await first;
    const results = await Promise.allSettled(publishes);
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(2000);
    const depth = await raw((ch) => ch.checkQueue(`${exchange}.q`));
    expect(depth.messageCount).toBe(2000);
    await expect(
      t.publish({ exchange, routingKey: 'k', body: Buffer.from(''), properties: { headers: {} } }),
    ).rejects.toBeInstanceOf(StateError);
    await expect(t.declare(topology)).rejects.toBeInstanceOf(StateError);
  });

  it.skipIf(!rabbitmqctl)('shows its connection name in RabbitMQ', async () => {
    const name = uniqueName('conn');
    const t = open({ connectionName: name });
    await t.connect();
    const { stdout } = await promisify(execFile)(
      'rabbitmqctl',
      ['-q', 'list_connections', 'client_properties'],
      {
        timeout: 15_000,
      },
    );
    expect(stdout).toContain(`${name} (publish)`);
  });
});

async function hasRabbitmqctl(): Promise<boolean> {
  try {
    await promisify(execFile)('rabbitmqctl', ['-q', 'status'], { timeout: 15_000 });
    return true;
  } catch {
    return false;
  }
}
