import { createHash, randomUUID } from 'node:crypto';
import amqp from 'amqplib';
import { afterAll, describe, expect, it } from 'vitest';
import { uniqueName } from '../../src/testing/broker.js';
import { waitFor } from '../../src/testing/conformance.js';
import {
  AMQP_URL,
  assertBrokerUp,
  type ConsumerProcess,
  DATABASE_URL,
  deleteTopology,
  queueDepth,
  REDIS_URL,
  reachable,
  report,
  startConsumers,
  tally,
} from './harness.js';
import { order, pollutionSince, prototypeSnapshot } from './protocol.js';

/*
 * Chaos test 4: 1,000 bad messages, written with a plain amqplib client as any broken or hostile
 * producer could, interleaved with 1,000 valid ones, to a consumer process. Every bad one must be
 * in the dead-letter queue with the reason its defect calls for, its body byte for byte; every
 * valid one is processed; the consumer never crashes; no prototype is polluted, in the consumer
 * or in this process (which decodes the dead letters). It does not restart the broker.
 */

const up = await reachable(AMQP_URL, 'RabbitMQ', 5672);

const MAX_BYTES = 8192;

interface Injected {
  readonly kind: string;
  readonly reason: string;
  readonly routingKey: string;
  readonly body: Buffer;
  readonly options: amqp.Options.Publish;
}

/** The headers and properties of a well-formed Tidings message, written by hand. */
function envelope(type: string, id = randomUUID()): amqp.Options.Publish {
  return {
    persistent: true,
    messageId: id,
    type,
    appId: 'hand-written',
    contentType: 'application/json',
    headers: {
      'ce-specversion': '1.0',
      'ce-id': id,
      'ce-source': 'hand-written',
      'ce-type': type,
      'ce-time': new Date().toISOString(),
    },
  };
}

/** `{"__proto__": ...}` as JSON text and as an AMQP header table (JSON.parse keeps it an own key). */
const PROTO_JSON =
  '"__proto__":{"polluted":"yes","isAdmin":true},"constructor":{"prototype":{"polluted":"yes"}}';
const protoHeaders = (): Record<string, unknown> =>
  JSON.parse(`{${PROTO_JSON},"x-note":"hostile"}`) as Record<string, unknown>;

/** The n-th bad message of a kind: each kind has one defect, and every body is unique. */
const BAD: Record<string, (exchange: string, n: number) => Omit<Injected, 'kind'>> = {
  'not JSON': (ex, n) => ({
    reason: 'invalid-json',
    routingKey: `${ex}.v1.submit`,
    body: [
      Buffer.from(`not json ${n}`),
      Buffer.from(`{"id": ${n}, "lines": [`),
      Buffer.from([0xff, 0xfe, 0x00, n & 0xff, n >> 8]),
      Buffer.from(`{'id': ${n}}`),
    ][n % 4]!,
    options: envelope(`${ex}.v1.submit`),
  }),
  'wrong schema': (ex, n) => ({
    reason: 'schema-violation',
    routingKey: `${ex}.v1.submit`,
    body: Buffer.from(
      [
        `{"id":"${n}","lines":[]}`,
        `{"id":${n}}`,
        `[${n}]`,
        `{"id":${n},"lines":[{"id":1,"quantity":-1,"price":1}]}`,
        `{"id":-${n + 1},"lines":[]}`,
      ][n % 5]!,
    ),
    options: envelope(`${ex}.v1.submit`),
  }),
  'unknown version': (ex, n) => ({
    reason: 'unsupported-version',
    routingKey: `${ex}.v7.submit`,
    body: Buffer.from(JSON.stringify({ ...order(n), v7: true })),
    options: envelope(`${ex}.v7.submit`),
  }),
  oversize: (ex, n) => ({
    reason: 'oversize',
    routingKey: `${ex}.v1.submit`,
    body: Buffer.from(JSON.stringify({ ...order(n), note: 'x'.repeat(MAX_BYTES + n) })),
    options: envelope(`${ex}.v1.submit`),
  }),
  'no headers or properties': (ex, n) => ({
    reason: 'missing-envelope',
    routingKey: `${ex}.v1.submit`,
    body: Buffer.from(JSON.stringify({ ...order(n), bare: true })),
    options: { persistent: true },
  }),
  'no id, or a type that is not a routing key': (ex, n) => {
    const options = envelope(`${ex}.v1.submit`);
    const headers = { ...options.headers } as Record<string, unknown>;
    if (n % 2 === 0) {
      delete headers['ce-id'];
      return {
        reason: 'missing-envelope',
        routingKey: `${ex}.v1.submit`,
        body: Buffer.from(JSON.stringify({ ...order(n), noId: true })),
        options: { ...options, messageId: undefined, headers },
      };
    }
    headers['ce-type'] = `DROP TABLE orders; -- ${n}`;
    return {
      reason: 'missing-envelope',
      routingKey: `${ex}.v1.submit`,
      body: Buffer.from(JSON.stringify({ ...order(n), badType: true })),
      options: { ...options, type: 'not a routing key', headers },
    };
  },
  'unknown event': (ex, n) => ({
    reason: 'unknown-event',
    routingKey: `${ex}.v1.submit`,
    body: Buffer.from(JSON.stringify({ ...order(n), refund: true })),
    options: envelope(`${ex}.v1.refund`),
  }),
  'malformed Celery task': (ex, n) => ({
    reason: 'invalid-celery',
    routingKey: `${ex}.v1.submit`,
    body: Buffer.from(JSON.stringify({ celery: 'not [args, kwargs, embed]', n })),
    options: {
      persistent: true,
      contentType: 'application/json',
      headers: { task: `${ex}.v1.submit`, id: `celery-${n}`, lang: 'py' },
    },
  }),
  '__proto__ keys in the body': (ex, n) => ({
    reason: 'schema-violation',
    routingKey: `${ex}.v1.submit`,
    body: Buffer.from(`{${PROTO_JSON},"id":"${n}","lines":[]}`),
    options: envelope(`${ex}.v1.submit`),
  }),
  // Plain amqplib can send it (its table fits in 64 KiB), but not the dead-letter copy with the
  // failure headers added: the copy keeps the first 1 KiB of the header and says so.
  'headers too large to copy': (ex, n) => {
    const options = envelope(`${ex}.v1.submit`);
    return {
      reason: 'schema-violation',
      routingKey: `${ex}.v1.submit`,
      body: Buffer.from(`{"id":"${n}","lines":[],"bigHeader":true}`),
      options: {
        ...options,
        headers: { ...options.headers, 'x-big': `${n}:${'h'.repeat(65_000)}` },
      },
    };
  },
  '__proto__ keys in the headers, no id': (ex, n) => ({
    reason: 'missing-envelope',
    routingKey: `${ex}.v1.submit`,
    body: Buffer.from(JSON.stringify({ ...order(n), protoHeaders: true })),
    options: { persistent: true, headers: protoHeaders() },
  }),
};

describe.skipIf(!up)('reliability: poison messages from a plain AMQP client', () => {
  afterAll(assertBrokerUp);

  it('dead-letters 1,000 bad messages with the right reason, processes 1,000 valid ones, and stays up', async () => {
    const before = prototypeSnapshot();
    const run = uniqueName('rel-poison');
    const exchange = run;
    const service = `${run}-billing`;
    const queue = `${service}.${exchange}.submit`;
    const topology = { exchanges: [exchange], queues: [{ name: queue, bindings: [] }] };
    const connection = await amqp.connect(AMQP_URL);
    let consumers: ConsumerProcess[] = [];
    try {
      consumers = await startConsumers([
        {
          label: 'poison-consumer',
          amqpUrl: AMQP_URL,
          redisUrl: REDIS_URL,
          databaseUrl: DATABASE_URL,
          exchange,
          prefetch: 50,
          maxMessageBytes: MAX_BYTES,
          handlers: [
            {
              service,
              faults: { kind: 'none' },
              effect: { kind: 'none' },
              store: { kind: 'none' },
            },
          ],
        },
      ]);
      const consumer = consumers[0]!;

      // 2,000 messages, alternating valid and bad; the bad ones cycle through the kinds.
      const kinds = Object.keys(BAD);
      const sent: Injected[] = [];
      const valid = new Map<number, boolean>();
      for (let i = 0; i < 1000; i++) {
        const id = 100_000 + i;
        // Every tenth valid message carries __proto__ keys too, in its body and its headers.
        const hostile = i % 10 === 0;
        const options = envelope(`${exchange}.v1.submit`);
        if (hostile) options.headers = { ...protoHeaders(), ...options.headers };
        const body = hostile
          ? `{${PROTO_JSON},${JSON.stringify(order(id)).slice(1)}`
          : JSON.stringify(order(id));
        sent.push({
          kind: 'valid',
          reason: '',
          routingKey: `${exchange}.v1.submit`,
          body: Buffer.from(body),
          options,
        });
        valid.set(id, hostile);
        const kind = kinds[i % kinds.length]!;
        sent.push({ kind, ...BAD[kind]!(exchange, Math.floor(i / kinds.length)) });
      }
      const bad = sent.filter((m) => m.kind !== 'valid');
      expect(bad).toHaveLength(1000);
      const key = (body: Buffer) => createHash('sha256').update(body).digest('hex');
      const badByBody = new Map(bad.map((m) => [key(m.body), m]));
      expect(badByBody.size).toBe(1000);

      const started = Date.now();
      const channel = await connection.createConfirmChannel();
      for (const m of sent) {
        if (!channel.publish(exchange, m.routingKey, m.body, m.options)) {
          await new Promise((resolve) => channel.once('drain', resolve));
        }
      }
      await channel.waitForConfirms();
      const publishedMs = Date.now() - started;

      const dlq = `${queue}.dlq`;
      await waitFor(
        () =>
          new Set(consumer.returned.map((r) => r.orderId)).size === 1000 &&
          consumer.dead.length === 1000,
        '1,000 processed and 1,000 dead-lettered',
        60_000,
      );
      const settledMs = Date.now() - started;
      expect(consumer.alive).toBe(true);

      // Read the dead-letter queue with plain amqplib too, and take every message out of it.
      const letters: amqp.ConsumeMessage[] = [];
      const reader = await connection.createChannel();
      await reader.prefetch(200);
      const { consumerTag } = await reader.consume(dlq, (msg) => {
        if (msg) {
          letters.push(msg);
          reader.ack(msg);
        }
      });
      await waitFor(() => letters.length >= 1000, 'the dead letters to be read', 30_000);
      await reader.cancel(consumerTag);

      const summary = await consumer.stop();
      const mismatches: string[] = [];
      const byReason = new Map<string, number>();
      const byKind = new Map<string, string>();
      for (const letter of letters) {
        const original = badByBody.get(key(letter.content));
        const reason = String(letter.properties.headers?.['tidings-dead-reason']);
        byReason.set(reason, (byReason.get(reason) ?? 0) + 1);
        if (!original) {
          mismatches.push(`a dead letter whose body was not sent: ${letter.content.slice(0, 60)}`);
          continue;
        }
        badByBody.delete(key(letter.content));
        byKind.set(original.kind, reason);
        if (reason !== original.reason) {
          mismatches.push(`${original.kind}: expected ${original.reason}, got ${reason}`);
        }
        const trimmed = JSON.parse(
          String(letter.properties.headers?.['tidings-trimmed-headers'] ?? '[]'),
        ) as { header: string; kept: number }[];
        for (const [name, value] of Object.entries(original.options.headers ?? {})) {
          if (name === '__proto__') continue;
          const kept = letter.properties.headers?.[name];
          const cut = trimmed.find((t) => t.header === name);
          // A header too large to copy keeps its first bytes, and the dead letter says so.
          if (cut && typeof kept === 'string' && String(value).startsWith(kept)) {
            if (Buffer.byteLength(kept) !== cut.kept) {
              mismatches.push(`${original.kind}: header ${name} cut to other than it says`);
            }
            continue;
          }
          if (JSON.stringify(kept) !== JSON.stringify(value)) {
            mismatches.push(`${original.kind}: header ${name} changed`);
          }
        }
        if (original.kind === 'headers too large to copy' && trimmed[0]?.header !== 'x-big') {
          mismatches.push(`${original.kind}: no tidings-trimmed-headers for x-big`);
        }
      }
      const handled = tally(consumer.calls.map((h) => h.orderId));
      const expectedReasons = tally(bad.map((m) => m.reason));

      report('chaos 4: 1,000 bad messages from plain amqplib among 1,000 valid ones', {
        'messages sent': `${sent.length} (1,000 valid, 1,000 bad) in ${publishedMs} ms`,
        'all settled after': `${settledMs} ms`,
        'valid processed': `${handled.size} (each once: ${[...handled.values()].every((n) => n === 1)}); ${[...valid.values()].filter(Boolean).length} of them carried __proto__ keys`,
        'dead letters': letters.length,
        'dead letters per reason': Object.fromEntries([...byReason].sort()),
        'expected per reason': Object.fromEntries([...expectedReasons].sort()),
        'reason per kind of defect': Object.fromEntries(byKind),
        'consumer alive until stopped': true,
        'consumer errors logged': summary.errors,
        'prototype pollution (consumer, test process)': [summary.pollution, pollutionSince(before)],
      });

      expect(mismatches).toEqual([]);
      expect(badByBody.size).toBe(0);
      expect(letters).toHaveLength(1000);
      expect(byReason).toEqual(expectedReasons);
      expect([...handled.keys()].sort()).toEqual([...valid.keys()].sort());
      expect([...handled.values()].every((n) => n === 1)).toBe(true);
      expect(consumer.protos).toEqual([]);
      expect(summary.pollution).toEqual([]);
      expect(summary.errors).toBe(0);
      expect(pollutionSince(before)).toEqual([]);
      expect(({} as Record<string, unknown>).polluted).toBeUndefined();
      expect(await queueDepth(queue)).toBe(0);
      expect(await queueDepth(dlq)).toBe(0);
    } finally {
      await Promise.all(consumers.map((c) => c.kill()));
      await connection.close().catch(() => {});
      await deleteTopology(topology);
    }
  }, 120_000);
});
