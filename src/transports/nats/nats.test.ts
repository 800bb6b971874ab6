import { jetstreamManager, RetentionPolicy } from '@nats-io/jetstream';
import { connect as connectNats } from '@nats-io/transport-node';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { run as runCli } from '../../cli/run.js';
import { defineEvent, defineExchange } from '../../contracts/event.js';
import { envelopeToProperties, HEADERS, type OutgoingMessage } from '../../envelope/envelope.js';
import { uuidv7 } from '../../envelope/id.js';
import {
  ConfigError,
  ConnectionError,
  PublishRejectedError,
  TopologyConflictError,
  UnsupportedBindingError,
} from '../../errors.js';
import { silentLogger } from '../../logger.js';
import { listDeadLetters } from '../../ops/dead-letters.js';
import { MemoryIdempotencyStore } from '../../runtime/idempotency.js';
import { createService, type Service } from '../../runtime/service.js';
import { brokerReachable, uniqueName } from '../../testing/broker.js';
import { waitFor } from '../../testing/conformance.js';
import { testOrderSchema } from '../../testing/schema.js';
import { connect } from '../connect.js';
import type { Delivery, Topology } from '../transport.js';
import { type NatsTransport, type NatsTransportOptions, natsTransport } from './index.js';
import { resolveNatsOptions } from './options.js';
import { exchangeStreamName } from './subjects.js';

const url = process.env.NATS_URL ?? 'nats://127.0.0.1:4222';
const { hostname, port } = new URL(url);
const up = await brokerReachable(hostname, Number(port || 4222), 'NATS');

describe('NATS transport options', () => {
  it('reports every problem at once, without the password', () => {
    let error: unknown;
    try {
      resolveNatsOptions({
        url: 'amqp://user:s3cret@h',
        ackWaitMs: 10,
        deliveryLimit: 0,
        namespace: 'Bad.Name',
      });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const problems = (error as ConfigError).problems;
    expect(problems).toHaveLength(4);
    expect(String((error as Error).message)).not.toContain('s3cret');
  });

  it('reads credentials, a token and the namespace from the URL, and never shows a secret', () => {
    const withUser = resolveNatsOptions('nats://alice:s3cret@nats.example:4333?namespace=shop');
    expect(withUser).toMatchObject({
      server: 'nats://nats.example:4333',
      username: 'alice',
      password: 's3cret',
      namespace: 'shop',
    });
    expect(withUser.displayUrl).toBe('nats://alice:***@nats.example:4333?namespace=shop');
    const withToken = resolveNatsOptions('nats://t0ken@127.0.0.1');
    expect(withToken).toMatchObject({ token: 't0ken', username: undefined });
    expect(withToken.displayUrl).not.toContain('t0ken');
  });

  it('fails to connect with a ConnectionError that carries no secret', async () => {
    const t = natsTransport({
      url: 'nats://alice:s3cret@127.0.0.1:1',
      connectTimeoutMs: 300,
      logger: silentLogger,
    });
    const error = await t.connect().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConnectionError);
    expect(String((error as Error).message)).toContain('nats://alice:***@127.0.0.1:1');
    expect(JSON.stringify(error) + String((error as Error).stack)).not.toContain('s3cret');
    await t.close();
  });
});

describe.skipIf(!up)('NATS transport on nats-server', () => {
  const opened: NatsTransport[] = [];
  const topologies: Topology[] = [];
  const services: Service[] = [];

  function open(options: NatsTransportOptions = {}): NatsTransport {
    const t = natsTransport({ url, logger: silentLogger, ...options });
    opened.push(t);
    return t;
  }

  async function declare(t: NatsTransport, topology: Topology): Promise<void> {
    topologies.push(topology);
    await t.declare(topology);
  }

  function message(
    exchange: string,
    routingKey: string,
    body = '{}',
    headers = {},
  ): OutgoingMessage {
    return {
      exchange,
      routingKey,
      body: Buffer.from(body),
      properties: { messageId: uuidv7(), contentType: 'application/json', headers },
    };
  }

  afterEach(async () => {
    for (const s of services.splice(0)) await s.stop();
    const [admin, ...others] = opened.splice(0);
    for (const t of others) await t.close();
    if (admin) {
      for (const topology of topologies.splice(0)) {
        await admin.deleteTopology(topology, { exchanges: true }).catch(() => {});
      }
      await admin.close();
    }
  });

  afterAll(async () => {
    for (const t of opened) await t.close();
  });

  it('is what connect() gives for a nats:// URL', async () => {
    const t = await connect(url);
    expect(t.kind).toBe('nats');
    await t.close();
  });

  it('refuses a pattern with "#" before a word at declare time, and creates nothing', async () => {
    const t = open();
    const exchange = uniqueName('ex');
    const queue = `${exchange}.q`;
    const error = await declare(t, {
      exchanges: [exchange],
      queues: [{ name: queue, bindings: [{ exchange, pattern: 'order.#.submit' }] }],
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UnsupportedBindingError);
    expect(error).toMatchObject({ code: 'unsupported-binding', queue, pattern: 'order.#.submit' });
    expect(String((error as Error).message)).toMatch(/"#" may only be followed by other wildcards/);
    // Not even the exchange: publishing to it is refused as to any missing exchange.
    await expect(t.publish(message(exchange, 'order.v1.submit'))).rejects.toBeInstanceOf(
      PublishRejectedError,
    );
    await expect(t.get(queue)).rejects.toThrow(/does not exist/);
  });

  it('refuses two bindings of one queue that overlap without one containing the other', async () => {
    const t = open();
    const exchange = uniqueName('ex');
    const error = await declare(t, {
      exchanges: [exchange],
      queues: [
        {
          name: `${exchange}.q`,
          bindings: [
            { exchange, pattern: 'order.v1.*' },
            { exchange, pattern: 'order.*.submit' },
          ],
        },
      ],
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UnsupportedBindingError);
    expect(String((error as Error).message)).toMatch(/overlaps the queue's binding "order.v1.\*"/);
  });

  it('gives a queue with disjoint bindings one consumer each, and each message once', async () => {
    const t = open();
    const exchange = uniqueName('ex');
    const other = uniqueName('ex2');
    const queue = `${exchange}.q`;
    await declare(t, {
      exchanges: [exchange, other],
      queues: [
        {
          name: queue,
          bindings: [
            { exchange, pattern: 'order.*.submit' },
            { exchange, pattern: 'order.*.chargeback' },
            { exchange: other, pattern: '#' },
          ],
        },
      ],
    });
    const got: string[] = [];
    await t.consume(queue, { prefetch: 10 }, (d) => {
      got.push(`${d.message.exchange}/${d.message.routingKey}`);
      d.ack().catch(() => {});
    });
    await t.publish(message(exchange, 'order.v1.submit'));
    await t.publish(message(exchange, 'order.v2.chargeback'));
    expect(await t.publish(message(exchange, 'order.v1.cancel'))).toEqual({ routed: false });
    await t.publish(message(other, 'anything.at.all'));
    await waitFor(() => got.length === 3, 'three deliveries');
    expect(got.sort()).toEqual(
      [
        `${exchange}/order.v1.submit`,
        `${exchange}/order.v2.chargeback`,
        `${other}/anything.at.all`,
      ].sort(),
    );
  });

  it("keeps an exchange's messages until every queue bound to it has acknowledged them, then removes them", async () => {
    const t = open();
    const exchange = uniqueName('trim');
    const [fast, slow] = [`${exchange}.fast`, `${exchange}.slow`];
    await declare(t, {
      exchanges: [exchange],
      queues: [
        { name: fast, bindings: [{ exchange, pattern: 'order.*.submit' }] },
        { name: slow, bindings: [{ exchange, pattern: 'order.#' }] },
      ],
    });
    const nc = await connectNats({ servers: url });
    try {
      const jsm = await jetstreamManager(nc);
      const stream = exchangeStreamName(t.options.namespace, exchange);
      const stored = async () => (await jsm.streams.info(stream)).state.messages;
      expect((await jsm.streams.info(stream)).config.retention).toBe(RetentionPolicy.Limits);
      let fastAcked = 0;
      await t.consume(fast, { prefetch: 10 }, (d) => {
        d.ack().then(
          () => void fastAcked++,
          () => {},
        );
      });
      for (let i = 0; i < 10; i++) await t.publish(message(exchange, 'order.v1.submit'));
      await waitFor(() => fastAcked === 10, 'the fast queue to acknowledge all 10');
      // Trimming runs every 5 s: after two rounds, the slow queue's ten are still there.
      await new Promise((resolve) => setTimeout(resolve, 11_000));
      expect(await stored()).toBe(10);
      let slowAcked = 0;
      await t.consume(slow, { prefetch: 10 }, (d) => {
        d.ack().then(
          () => void slowAcked++,
          () => {},
        );
      });
      await waitFor(() => slowAcked === 10, 'the slow queue to acknowledge all 10');
      const deadline = Date.now() + 15_000;
      while ((await stored()) > 0) {
        if (Date.now() > deadline) throw new Error(`the stream still holds ${await stored()}`);
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
    } finally {
      await nc.close();
    }
  }, 45_000);

  it('routes two queues whose patterns overlap exactly, and says which keys it cannot call unrouted', async () => {
    const t = open();
    const exchange = uniqueName('ex');
    await declare(t, {
      exchanges: [exchange],
      queues: [
        { name: `${exchange}.v1`, bindings: [{ exchange, pattern: 'order.v1.*' }] },
        { name: `${exchange}.submit`, bindings: [{ exchange, pattern: 'order.*.submit' }] },
      ],
    });
    const got = new Map<string, string[]>([
      [`${exchange}.v1`, []],
      [`${exchange}.submit`, []],
    ]);
    for (const q of got.keys()) {
      await t.consume(q, { prefetch: 10 }, (d) => {
        got.get(q)!.push(d.message.routingKey);
        d.ack().catch(() => {});
      });
    }
    for (const key of ['order.v1.submit', 'order.v1.cancel', 'order.v2.submit']) {
      expect(await t.publish(message(exchange, key))).toEqual({ routed: true });
    }
    // The stream has to capture order.*.* (nats-server refuses overlapping subjects in a stream),
    // so a key between the two patterns is stored for no queue and reported routed.
    expect(await t.publish(message(exchange, 'order.v2.cancel'))).toEqual({ routed: true });
    expect(await t.publish(message(exchange, 'other.v1.submit'))).toEqual({ routed: false });
    await waitFor(
      () => got.get(`${exchange}.v1`)!.length + got.get(`${exchange}.submit`)!.length === 4,
      '4',
    );
    expect(got.get(`${exchange}.v1`)!.sort()).toEqual(['order.v1.cancel', 'order.v1.submit']);
    expect(got.get(`${exchange}.submit`)!.sort()).toEqual(['order.v1.submit', 'order.v2.submit']);
  });

  it('reports a queue declared with other consumer settings as a conflict naming each difference', async () => {
    const exchange = uniqueName('ex');
    const topology = {
      exchanges: [exchange],
      queues: [{ name: `${exchange}.q`, bindings: [{ exchange, pattern: '#' }] }],
    };
    await declare(open(), topology);
    const error = await open({ ackWaitMs: 10_000, deliveryLimit: 5 })
      .declare(topology)
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TopologyConflictError);
    expect(String((error as Error).message)).toMatch(
      /ack_wait \(ns\) is 30000000000 on the server/,
    );
    expect(String((error as Error).message)).toMatch(
      /max_deliver is 30 on the server, but Tidings declares 15/,
    );
  });

  it('stores a message published twice with one id once (Nats-Msg-Id), and says routed both times', async () => {
    const t = open();
    const exchange = uniqueName('ex');
    const queue = `${exchange}.q`;
    await declare(t, {
      exchanges: [exchange],
      queues: [{ name: queue, bindings: [{ exchange, pattern: '#' }] }],
    });
    const once = message(exchange, 'k', 'only once');
    expect(await t.publish(once)).toEqual({ routed: true });
    expect(await t.publish(once)).toEqual({ routed: true });
    const first = await t.get(queue);
    expect(first?.message.body.toString()).toBe('only once');
    await first!.ack();
    expect(await t.get(queue)).toBeUndefined();
  });

  it('rejects a message over the server max_payload, and stores nothing', async () => {
    const t = open();
    const exchange = uniqueName('ex');
    const queue = `${exchange}.q`;
    await declare(t, {
      exchanges: [exchange],
      queues: [{ name: queue, bindings: [{ exchange, pattern: '#' }] }],
    });
    const max = await t.maxPayload();
    const error = await t.publish(message(exchange, 'k', 'x'.repeat(max))).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PublishRejectedError);
    expect(String((error as Error).message)).toMatch(/over the server's max_payload/);
    expect(await t.get(queue)).toBeUndefined();
  });

  it('keeps typed headers through a publish, a retry and a dead letter', async () => {
    const t = open();
    const exchange = uniqueName('ex');
    const queue = `${exchange}.q`;
    await declare(t, {
      exchanges: [exchange],
      queues: [{ name: queue, bindings: [{ exchange, pattern: '#' }] }],
    });
    const headers = { 'x-n': 7, 'x-bytes': Buffer.from([1, 2]), 'x-list': ['a', 1], 'x-s': ' s ' };
    await t.publish(message(exchange, 'a.b', 'body', headers));
    const seen: Delivery[] = [];
    await t.consume(queue, { prefetch: 5 }, (d) => {
      seen.push(d);
      if (seen.length === 1) d.retry(50, { [HEADERS.attempts]: 1 }).catch(() => {});
      else
        d.deadLetter({ [HEADERS.deadReason]: 'handler-error', [HEADERS.queue]: queue }).catch(
          () => {},
        );
    });
    await waitFor(() => seen.length === 2, 'the retry');
    const dead = await (async () => {
      for (let i = 0; i < 100; i++) {
        const d = await t.get(`${queue}.dlq`);
        if (d) return d;
      }
      return undefined;
    })();
    for (const d of [seen[0]!, seen[1]!, dead!]) {
      const h = d.message.properties.headers;
      expect([h['x-n'], h['x-bytes'], h['x-list'], h['x-s']]).toEqual([
        7,
        Buffer.from([1, 2]),
        ['a', 1],
        ' s ',
      ]);
      expect(d.message.exchange).toBe(exchange);
      expect(d.message.routingKey).toBe('a.b');
    }
    expect(seen[1]!.message.properties.headers[HEADERS.attempts]).toBe(1);
    expect(dead!.message.properties.headers[HEADERS.deadReason]).toBe('handler-error');
    expect(seen[1]!.message.redelivered).toBe(false);
    await dead!.ack();
  });

  it('moves a message delivered more often than the limit to the dead-letter queue, unhandled', async () => {
    const t = open({ deliveryLimit: 2 });
    const exchange = uniqueName('ex');
    const queue = `${exchange}.q`;
    await declare(t, {
      exchanges: [exchange],
      queues: [{ name: queue, bindings: [{ exchange, pattern: '#' }] }],
    });
    await t.publish(message(exchange, 'k', 'poison'));
    let deliveries = 0;
    // A consumer that never settles: each time, its "process" gives the message back unhandled.
    await t.consume(queue, { prefetch: 1 }, (d) => {
      deliveries++;
      d.requeue().catch(() => {});
    });
    const letters = await (async () => {
      for (let i = 0; i < 200; i++) {
        const found = await listDeadLetters(t, `${queue}.dlq`);
        if (found.length > 0) return found;
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
      return [];
    })();
    expect(deliveries).toBe(2);
    expect(letters).toHaveLength(1);
    expect(letters[0]).toMatchObject({ reason: 'delivery-limit', queue });
    expect(letters[0]!.error).toMatch(/delivered 3 times without being settled/);
    expect(letters[0]!.body.toString()).toBe('poison');
  });

  it('runs a handler with an idempotency store once for a message delivered twice', async () => {
    const t = open();
    const submit = defineEvent(defineExchange(uniqueName('order')), 'submit', testOrderSchema);
    const runs: number[] = [];
    const duplicates: string[] = [];
    const billing = createService({
      name: uniqueName('billing'),
      transport: t,
      logger: silentLogger,
      idempotency: { store: new MemoryIdempotencyStore() },
    });
    billing.on(submit, (o) => void runs.push(o.id));
    billing.observe('duplicate', ({ envelope }) => void duplicates.push(envelope.id));
    services.push(billing);
    topologies.push(billing.topology());
    await billing.start();
    const queue = billing.topology().queues[0]!.name;
    // The same message twice, straight to the queue (no Nats-Msg-Id there, so both are stored):
    // what a redelivery after a lost acknowledgement looks like to the handler.
    const id = uuidv7();
    const properties = envelopeToProperties({
      id,
      type: submit.routingKey(1),
      exchange: submit.exchange.name,
      event: 'submit',
      version: 1,
      source: 'test',
      time: new Date().toISOString(),
      correlationId: id,
    });
    for (let i = 0; i < 2; i++) {
      const sent = await t.publish({
        exchange: '',
        routingKey: queue,
        body: Buffer.from('{"id": 9, "lines": []}'),
        properties: {
          ...properties,
          headers: {
            ...properties.headers,
            [HEADERS.originalExchange]: submit.exchange.name,
            [HEADERS.originalRoutingKey]: submit.routingKey(1),
          },
        },
      });
      expect(sent).toEqual({ routed: true });
    }
    await waitFor(() => duplicates.length === 1, 'the duplicate skipped');
    expect(runs).toEqual([9]);
    expect(duplicates).toEqual([id]);
  });

  it('runs the dlq commands against a nats:// broker, in a namespace of their own', async () => {
    const namespace = uniqueName('cli').replace(/[^a-z0-9-]/g, '-');
    const brokerUrl = `${url}?namespace=${namespace}`;
    const t = open({ url: brokerUrl, namespace });
    const submit = defineEvent(defineExchange(uniqueName('order')), 'submit', testOrderSchema);
    let fixed = false;
    const handled: number[] = [];
    const billing = createService({
      name: 'billing',
      transport: t,
      logger: silentLogger,
      retry: { maxAttempts: 1 },
    });
    billing.on(submit, (o) => {
      if (!fixed) throw new Error(`ledger locked for order ${o.id}`);
      handled.push(o.id);
    });
    services.push(billing);
    topologies.push(billing.topology());
    await billing.start();
    const order = createService({ name: 'order', transport: t, logger: silentLogger });
    const ids: string[] = [];
    for (let i = 1; i <= 3; i++) ids.push((await order.publish(submit, { id: i, lines: [] })).id);
    const queue = billing.topology().queues[0]!.name;
    const out: string[] = [];
    const err: string[] = [];
    const io = {
      cwd: process.cwd(),
      stdout: (s: string) => out.push(s),
      stderr: (s: string) => err.push(s),
    };
    const ctx = { brokerUrl: undefined, confirm: async () => false };
    const cli = async (...argv: string[]) => {
      out.length = 0;
      err.length = 0;
      return runCli([...argv, '--broker', brokerUrl], io, ctx);
    };
    for (let i = 0; i < 200; i++) {
      await cli('dlq', 'list', queue, '--json');
      if (JSON.parse(out.join('')).length === 3) break;
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    const listed = JSON.parse(out.join('')) as { id: string; reason: string; queue: string }[];
    expect(listed.map((d) => d.id).sort()).toEqual([...ids].sort());
    expect(listed[0]).toMatchObject({ reason: 'handler-error', queue });
    expect(await cli('dlq', 'show', queue, ids[1]!)).toBe(0);
    expect(JSON.parse(out.join(''))).toMatchObject({ id: ids[1], body: { id: 2 } });
    fixed = true;
    expect(await cli('dlq', 'replay', queue, '--id', ids[0]!)).toBe(0);
    expect(out.join('')).toContain(`replayed 1 message from ${queue}.dlq`);
    await waitFor(() => handled.length === 1, 'the replayed message handled');
    expect(handled).toEqual([1]);
    expect(await cli('dlq', 'purge', queue)).toBe(1);
    expect(err.join('')).toMatch(/not purged/);
    expect(await cli('dlq', 'purge', queue, '--yes')).toBe(0);
    expect(out.join('')).toContain(`purged 2 messages from ${queue}.dlq`);
    expect(await cli('dlq', 'list', queue)).toBe(0);
    expect(out.join('')).toContain('is empty');
  });
});
