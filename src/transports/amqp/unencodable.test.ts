import { createRequire } from 'node:module';
import { inspect } from 'node:util';
import { connect as amqplibConnect } from 'amqplib';
import { afterEach, describe, expect, it } from 'vitest';
import { publishLikeAnotherClient } from '../../../test/support/amqplib-frames.js';
import { defineEvent, defineExchange } from '../../contracts/event.js';
import { HEADERS } from '../../envelope/envelope.js';
import { MessageEncodingError } from '../../errors.js';
import type { Logger } from '../../logger.js';
import { replayDeadLetters } from '../../ops/dead-letters.js';
import { createService, type Service } from '../../runtime/service.js';
import { brokerReachable, uniqueName } from '../../testing/broker.js';
import { waitFor } from '../../testing/conformance.js';
import { testOrderSchema } from '../../testing/schema.js';
import { deadLetterQueueName, type Topology } from '../transport.js';
import { AMQPLIB_TABLE_BYTES, headersRefusal, headerTableBytes, trimHeaders } from './fit.js';
import { type AmqpTransport, amqpTransport } from './index.js';

const require = createRequire(import.meta.url);
const codec = require('amqplib/lib/codec.js') as {
  encodeTable(buffer: Buffer, value: object, offset: number): number;
};

/** What amqplib writes for a header table, measured with its own encoder in a large buffer. */
function amqplibTableBytes(table: object): number {
  return codec.encodeTable(Buffer.alloc(1 << 20), table, 0);
}

describe('the size of a header table, as amqplib encodes it', () => {
  it('matches amqplib for every kind of value it encodes', () => {
    const tables: Record<string, unknown>[] = [
      {},
      { 'ce-id': 'x', 'ce-type': 'order.v1.submit' },
      { s: 'é€😀'.repeat(50), n0: 0, n1: 127, n2: -128, n3: 200, n4: 40_000, n5: -(2 ** 31) },
      { big: 2 ** 40, neg: -(2 ** 40), f: 1.5, t: true, f2: false, nul: null, skip: undefined },
      { b: Buffer.alloc(300, 1), a: ['x', 1, 2.5, [true, null, Buffer.from('yz')]] },
      { nested: { inner: { deeper: 'v', list: [{ k: 1 }] } } },
      {
        ts: { '!': 'timestamp', value: 1_790_000_000 },
        d: { '!': 'decimal', value: { places: 2, digits: 12345 } },
        i8: { '!': 'int8', value: 3 },
        u16: { '!': 'uint16', value: 3 },
        i32: { '!': 'int32', value: 3 },
        f32: { '!': 'float', value: 1.5 },
        i64: { '!': 'int64', value: 3 },
        s: { '!': 'string', value: 'ü' },
      },
      Object.assign(Object.create(null), { 'x-bare': 'no prototype' }),
    ];
    for (let i = 0; i < 200; i++) {
      const t: Record<string, unknown> = {};
      for (let k = 0; k < 1 + (i % 7); k++) {
        const pick = (i * 31 + k * 17) % 5;
        t[`h${k}-${'ä'.repeat(k)}`] = [
          'v'.repeat(i * 13),
          i * 1000 - 50_000,
          Buffer.alloc(i),
          [i, `${i}`],
          { n: i },
        ][pick];
      }
      tables.push(t);
    }
    for (const table of tables) {
      expect({ table, bytes: headerTableBytes(table) }).toEqual({
        table,
        bytes: amqplibTableBytes(table),
      });
    }
  });

  it('is unlimited for values amqplib cannot encode, and names the largest header when too large', () => {
    expect(headerTableBytes({ x: 10n })).toBe(Number.POSITIVE_INFINITY);
    expect(headerTableBytes({ x: { '!': 'nonsense', value: 1 } })).toBe(Number.POSITIVE_INFINITY);
    let deep: unknown = 'leaf';
    for (let i = 0; i < 10_000; i++) deep = [deep];
    expect(headerTableBytes({ deep })).toBe(Number.POSITIVE_INFINITY);
    expect(headersRefusal({ small: 'a', 'x-big': 'h'.repeat(70_000) })).toBe(
      'its headers take 70027 bytes encoded, over the 65536 amqplib can send (the largest, "x-big", has 70000)',
    );
    expect(headersRefusal({ ok: 'h'.repeat(60_000) })).toBeUndefined();
    expect(headersRefusal({ deep })).toMatch(/"deep" has a value amqplib cannot encode/);
  });

  it('trims the largest headers not kept: strings and bytes cut to 1 KiB, the rest dropped', () => {
    const headers = {
      'ce-id': 'id-1',
      'x-big': 'é'.repeat(40_000),
      'x-bytes': Buffer.alloc(30_000, 7),
      'x-table': { a: 'b'.repeat(20_000) },
      'x-small': 'fine',
      'tidings-error-message': 'm'.repeat(900),
    };
    const {
      headers: out,
      trimmed,
      fits,
    } = trimHeaders(headers, new Set(['tidings-error-message']), 40_000);
    expect(fits).toBe(true);
    expect(headerTableBytes(out)).toBeLessThanOrEqual(40_000);
    expect(trimmed).toEqual([
      { header: 'x-big', bytes: 80_000, kept: 1024 },
      { header: 'x-bytes', bytes: 30_000, kept: 1024 },
    ]);
    expect(out['x-big']).toBe('é'.repeat(512));
    expect(out['x-bytes']).toEqual(Buffer.alloc(1024, 7));
    expect(out['x-table']).toEqual(headers['x-table']);
    expect(out['tidings-error-message']).toBe(headers['tidings-error-message']);
    const tight = trimHeaders(headers, new Set(['tidings-error-message']), 1500);
    expect(tight.fits).toBe(true);
    expect(tight.trimmed.map((t) => [t.header, t.kept])).toEqual([
      ['x-big', 0],
      ['x-bytes', 0],
      ['x-table', 0],
    ]);
    expect(Object.keys(tight.headers).sort()).toEqual([
      'ce-id',
      'tidings-error-message',
      'x-small',
    ]);
    // Never half a character: a cut string ends before a surrogate pair it would split.
    const emoji = trimHeaders({ e: `a${'😀'.repeat(1000)}` }, new Set(), 1100).headers.e as string;
    expect(emoji).toBe(`a${'😀'.repeat(255)}`);
  });
});

const url = process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const broker = new URL(url);
const up = await brokerReachable(broker.hostname, Number(broker.port || 5672), 'RabbitMQ');

/** A logger that keeps every line with its level. */
function recordingLogger(): Logger & { lines: string[] } {
  const lines: string[] = [];
  const keep = (level: string) => (message: string, fields?: Record<string, unknown>) =>
    void lines.push(`${level}: ${message} ${fields ? inspect(fields, { depth: 3 }) : ''}`);
  return { lines, debug: () => {}, info: keep('info'), warn: keep('warn'), error: keep('error') };
}

describe.skipIf(!up)('a message whose headers amqplib cannot copy, on RabbitMQ', () => {
  const transports: AmqpTransport[] = [];
  const services: Service[] = [];
  const topologies: Topology[] = [];

  afterEach(async () => {
    for (const s of services.splice(0)) await s.stop();
    for (const t of transports.splice(0)) await t.close();
    const admin = amqpTransport({ url, logger: recordingLogger() });
    for (const topology of topologies.splice(0)) {
      await admin.deleteTopology(topology, { exchanges: true }).catch(() => {});
    }
    await admin.close();
  });

  /** A consumer whose handler does what `behave` says, and a raw client to send it messages. */
  async function setup(behave: (id: number) => void) {
    const logger = recordingLogger();
    const transport = amqpTransport({ url, logger, connectionName: 'unencodable-test' });
    transports.push(transport);
    const exchange = defineExchange(uniqueName('oversize'));
    const submit = defineEvent(exchange, 'submit', testOrderSchema);
    const calls: number[] = [];
    const billing = createService({
      name: uniqueName('billing'),
      transport,
      logger,
      retry: { maxAttempts: 3, baseDelayMs: 200 },
    });
    billing.on(submit, (order) => {
      calls.push(order.id);
      behave(order.id);
    });
    await billing.start();
    services.push(billing);
    const topology = billing.topology();
    topologies.push(topology);
    const queue = topology.queues[0]!.name;
    const dlq = deadLetterQueueName(queue);
    const routingKey = `${exchange.name}.v1.submit`;
    const envelope = (id: number): Record<string, string> => ({
      'ce-specversion': '1.0',
      'ce-id': `msg-${id}`,
      'ce-type': routingKey,
      'ce-source': 'another-client',
      'ce-time': new Date().toISOString(),
    });
    const body = (id: number, lines: unknown[] = []) => Buffer.from(JSON.stringify({ id, lines }));
    /** Waits for `n` dead letters, takes them off the queue, and returns them. */
    async function deadLetters(n: number) {
      const got: { headers: Record<string, unknown>; body: Buffer }[] = [];
      const deadline = Date.now() + 20_000;
      while (got.length < n && Date.now() < deadline) {
        const d = await transport.get(dlq);
        if (!d) {
          await new Promise((r) => setTimeout(r, 100));
          continue;
        }
        got.push({ headers: { ...d.message.properties.headers }, body: d.message.body });
        await d.ack();
      }
      return got;
    }
    return {
      logger,
      transport,
      exchange,
      queue,
      dlq,
      routingKey,
      envelope,
      body,
      calls,
      deadLetters,
    };
  }

  it('dead-letters at once, with its reason and the header cut, a message of another client with a 100 kB header whose handler fails', async () => {
    const s = await setup(() => {
      throw new Error('ledger locked');
    });
    const connection = await amqplibConnect(url);
    try {
      const channel = await connection.createConfirmChannel();
      const headers = { ...s.envelope(1), 'x-big': 'h'.repeat(100_000) };
      await publishLikeAnotherClient(channel, s.exchange.name, s.routingKey, headers, s.body(1));
    } finally {
      await connection.close();
    }
    const [dead] = await s.deadLetters(1);
    const h = dead!.headers;
    expect(h[HEADERS.deadReason]).toBe('unencodable-headers');
    expect(h[HEADERS.errorName]).toBe('MessageEncodingError');
    expect(String(h[HEADERS.errorMessage])).toMatch(
      /^could not be parked for a retry: .* its headers take \d+ bytes encoded, over the 65536 amqplib can send \(the largest, "x-big", has 100000\); trimmed x-big \(100000 bytes, cut to 1024\)\. It was to be retried after: ledger locked$/,
    );
    expect(JSON.parse(String(h[HEADERS.trimmedHeaders]))).toEqual([
      { header: 'x-big', bytes: 100_000, kept: 1024 },
    ]);
    expect(h['x-big']).toBe('h'.repeat(1024));
    expect(h[HEADERS.queue]).toBe(s.queue);
    expect(h[HEADERS.attempts]).toBe(1);
    expect(h['ce-id']).toBe('msg-1');
    expect(JSON.parse(dead!.body.toString())).toEqual({ id: 1, lines: [] });
    // Handled once: no redelivery loop, nothing left behind, no error logged.
    expect(s.calls).toEqual([1]);
    expect((await s.transport.get(s.queue)) ?? 'empty').toBe('empty');
    expect(s.logger.lines.filter((l) => l.startsWith('error'))).toEqual([]);
    expect(s.logger.lines).toContainEqual(
      expect.stringMatching(
        /^warn: dead-lettered a message of .* at once: its retry copy cannot be encoded/,
      ),
    );
  });

  it('keeps the reason the runtime gave when the copy it dead-letters is what does not fit', async () => {
    const s = await setup(() => {});
    const connection = await amqplibConnect(url);
    try {
      const channel = await connection.createConfirmChannel();
      const headers = {
        ...s.envelope(2),
        'x-big': 'h'.repeat(100_000),
        'x-also': 'a'.repeat(9000),
      };
      // A line with quantity 0: a schema violation, dead-lettered with its issues.
      const bad = s.body(2, [{ id: 1, quantity: 0, price: 1 }]);
      await publishLikeAnotherClient(channel, s.exchange.name, s.routingKey, headers, bad);
    } finally {
      await connection.close();
    }
    const [dead] = await s.deadLetters(1);
    const h = dead!.headers;
    expect(h[HEADERS.deadReason]).toBe('schema-violation');
    expect(String(h[HEADERS.issues])).toContain('quantity');
    expect(JSON.parse(String(h[HEADERS.trimmedHeaders]))).toEqual([
      { header: 'x-big', bytes: 100_000, kept: 1024 },
    ]);
    expect(h['x-also']).toBe('a'.repeat(9000));
    expect(s.calls).toEqual([]);
    expect(s.logger.lines.filter((l) => l.startsWith('error'))).toEqual([]);
  });

  it('dead-letters at once a message plain amqplib could send, whose retry copy grows past the limit, and it can be replayed', async () => {
    let fixed = false;
    const s = await setup(() => {
      if (!fixed) throw new Error(`the ledger is locked: ${'x'.repeat(500)}`);
    });
    const connection = await amqplibConnect(url);
    try {
      const channel = await connection.createConfirmChannel();
      const headers = { ...s.envelope(3), 'x-big': 'h'.repeat(65_000) };
      expect(headerTableBytes(headers)).toBeLessThanOrEqual(AMQPLIB_TABLE_BYTES);
      channel.publish(s.exchange.name, s.routingKey, s.body(3), {
        headers,
        contentType: 'application/json',
        persistent: true,
      });
      await channel.waitForConfirms();
    } finally {
      await connection.close();
    }
    await waitFor(() => s.calls.length === 1, 'the first attempt', 20_000);
    const deadline = Date.now() + 20_000;
    let depth = 0;
    while (depth === 0 && Date.now() < deadline) {
      const d = await s.transport.get(s.dlq);
      if (d) {
        depth = 1;
        expect(d.message.properties.headers[HEADERS.deadReason]).toBe('unencodable-headers');
        expect(d.message.properties.headers['x-big']).toBe('h'.repeat(1024));
        await d.requeue();
      } else await new Promise((r) => setTimeout(r, 100));
    }
    expect(depth).toBe(1);
    expect(s.calls).toEqual([3]);
    fixed = true;
    const result = await replayDeadLetters(s.transport, s.dlq);
    expect(result.replayed).toEqual(['msg-3']);
    await waitFor(() => s.calls.length === 2, 'the replayed message', 20_000);
    expect(s.logger.lines.filter((l) => l.startsWith('error'))).toEqual([]);
  });

  it('refuses to publish headers amqplib would send as a corrupt frame, and the connection lives on', async () => {
    const transport = amqpTransport({ url, logger: recordingLogger() });
    transports.push(transport);
    const exchange = uniqueName('oversize');
    const queue = `${exchange}.q`;
    const topology = {
      exchanges: [exchange],
      queues: [{ name: queue, bindings: [{ exchange, pattern: '#' }] }],
    };
    topologies.push(topology);
    await transport.declare(topology);
    const message = (headers: Record<string, string | number>) => ({
      exchange,
      routingKey: 'k',
      body: Buffer.from('{}'),
      properties: { headers },
    });
    // Last in the table, amqplib cuts it silently and RabbitMQ closes the connection (541).
    const refused = transport.publish(
      message({ 'tidings-attempts': 1, 'x-big': 'h'.repeat(70_000) }),
    );
    await expect(refused).rejects.toBeInstanceOf(MessageEncodingError);
    await expect(refused).rejects.toThrow(/its headers take 70034 bytes encoded/);
    expect(await transport.publish(message({ 'tidings-attempts': 1, ok: 'yes' }))).toEqual({
      routed: true,
    });
    const got = await transport.get(queue);
    expect(got?.message.properties.headers.ok).toBe('yes');
    await got?.ack();
  });
});
