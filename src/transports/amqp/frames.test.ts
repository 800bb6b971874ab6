import { connect as amqplibConnect, type ConfirmChannel, type Options } from 'amqplib';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { amqplibFrames as amqplibBytes } from '../../../test/support/amqplib-frames.js';
import { amqplibInternal, amqplibVersion } from '../../../test/support/amqplib-package.js';
import { envelopeToProperties } from '../../envelope/envelope.js';
import { MessageEncodingError } from '../../errors.js';
import { silentLogger } from '../../logger.js';
import { brokerReachable, uniqueName } from '../../testing/broker.js';
import { waitFor } from '../../testing/conformance.js';
import type { Delivery } from '../transport.js';
import { encodePublish } from './frames.js';
import { type AmqpTransport, amqpTransport } from './index.js';
import { type FastPublish, probePublishPath } from './internals.js';
import { publishOptions } from './transport.js';

/** Publishes through the fast path of `channel`, probed anew (undefined: it stepped aside). */
function tryPublishFrames(
  channel: ConfirmChannel,
  ...args: Parameters<FastPublish>
): ReturnType<FastPublish> {
  return probePublishPath(channel).fast?.(...args);
}

const FRAME_MAX = 131_072;
const id = '019abcde-1234-7abc-8def-0123456789ab';
/** What Tidings' runtime publishes, wire format 3: built by the envelope and the transport. */
const tidings: Options.Publish = {
  persistent: true,
  mandatory: true,
  ...publishOptions(
    envelopeToProperties({
      id,
      type: 'order.v2.submit',
      exchange: 'order',
      event: 'submit',
      version: 2,
      source: 'order',
      // The millisecond the id holds, as for every id the runtime makes.
      time: new Date(0x019abcde1234).toISOString(),
      correlationId: 'another-conversation',
      causationId: 'the-cause',
    }),
  ),
};

/** Wire format 1 (what Tidings 0.1 and the Celery codec write): every attribute twice. */
const formatOne: Options.Publish = {
  persistent: true,
  mandatory: true,
  messageId: id,
  correlationId: id,
  type: 'order.v2.submit',
  appId: 'order',
  timestamp: 1_790_000_000,
  contentType: 'application/json',
  contentEncoding: undefined,
  headers: {
    'ce-specversion': '1.0',
    'ce-id': id,
    'ce-source': 'order',
    'ce-type': 'order.v2.submit',
    'ce-time': '2026-11-26T11:19:28.123Z',
    traceparent: undefined,
  },
};

it('runs on the amqplib this pass is for (0.10 in the main pass, 2.x in test:amqplib2)', () => {
  expect(amqplibVersion).toMatch(process.env.TIDINGS_AMQPLIB ? /^2\./ : /^0\.10\./);
});

describe('encodePublish', () => {
  it("writes the bytes amqplib writes for Tidings' own messages", () => {
    const body = Buffer.from(
      JSON.stringify({ id: 1, lines: [{ id: 2, quantity: 1, price: 9.5 }] }),
    );
    for (const options of [tidings, formatOne]) {
      const mine = encodePublish(3, FRAME_MAX, 'order', 'order.v2.submit', options, body);
      expect(mine).toBeDefined();
      expect(mine!.equals(amqplibBytes(3, 'order', 'order.v2.submit', options, body))).toBe(true);
    }
    // Format 3 is the smaller: the id, type and source are not repeated in headers, and the
    // specversion and the time (in the id) are not written at all.
    const two = encodePublish(3, FRAME_MAX, 'order', 'order.v2.submit', tidings, body)!;
    const one = encodePublish(3, FRAME_MAX, 'order', 'order.v2.submit', formatOne, body)!;
    expect(two.length).toBeLessThan(one.length);
    expect(tidings.headers).toEqual({ 'tidings-wire': '3', 'tidings-causation-id': 'the-cause' });
  });

  it('writes the same bytes as amqplib for any message it accepts (20,000 random ones)', () => {
    // `size: 'max'`: fast-check's default size would keep strings and bodies short. Strings of
    // 50-140 units from one-, two-, three- and four-byte characters and lone surrogates cross
    // AMQP's 255-byte limit for short strings from both sides.
    const text = fc.oneof(
      fc.string({ maxLength: 40, size: 'max' }),
      fc.string({ unit: 'grapheme', maxLength: 30, size: 'max' }),
      fc.string({ unit: 'binary', maxLength: 90, size: 'max' }),
      fc.string({
        unit: fc.constantFrom('a', 'é', '€', '😀', '\ud800', '\udc00'),
        minLength: 50,
        maxLength: 140,
      }),
    );
    const optional = <T>(a: fc.Arbitrary<T>) => fc.option(a, { nil: undefined });
    const options = fc.record(
      {
        persistent: optional(fc.boolean()),
        deliveryMode: optional(fc.constantFrom(1, 2)),
        mandatory: optional(fc.boolean()),
        contentType: optional(text),
        contentEncoding: optional(text),
        correlationId: optional(text),
        expiration: optional(fc.oneof(text, fc.nat())),
        messageId: optional(text),
        timestamp: optional(fc.oneof(fc.nat(), fc.maxSafeNat())),
        type: optional(text),
        appId: optional(text),
        headers: optional(fc.dictionary(text, optional(text), { maxKeys: 8 })),
      },
      { requiredKeys: [] },
    );
    let encoded = 0;
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 2047 }),
        text,
        text,
        options,
        fc.uint8Array({ maxLength: 3000, size: 'max' }),
        (channel, exchange, routingKey, o, bytes) => {
          const body = Buffer.from(bytes);
          const mine = encodePublish(channel, FRAME_MAX, exchange, routingKey, o, body);
          if (mine === undefined) return;
          encoded++;
          expect(mine.equals(amqplibBytes(channel, exchange, routingKey, o, body))).toBe(true);
        },
      ),
      { numRuns: 20_000 },
    );
    // The fast path must actually be taken for many messages, or this test proves little.
    expect(encoded).toBeGreaterThan(5_000);
    // About 15 s alone on the 2-core machine, over 35 s beside the whole suite.
  }, 180_000);

  it('leaves to amqplib what it does not encode', () => {
    const body = Buffer.from('{}');
    const cases: Options.Publish[] = [
      { ...tidings, headers: { 'tidings-attempts': 3 } },
      { ...tidings, headers: { nested: { a: '1' } } },
      { ...tidings, priority: 5 },
      { ...tidings, replyTo: 'amq.rabbitmq.reply-to' },
      { ...tidings, userId: 'guest' },
      { ...tidings, CC: ['a'] },
      { ...tidings, type: 'x'.repeat(256) },
      { ...tidings, messageId: 'é'.repeat(200) },
      { ...formatOne, timestamp: 1.5 },
    ];
    for (const o of cases) expect(encodePublish(1, FRAME_MAX, 'ex', 'rk', o, body)).toBeUndefined();
    // A body over one frame: amqplib splits it.
    expect(encodePublish(1, 4096, 'ex', 'rk', tidings, Buffer.alloc(4096 - 7))).toBeUndefined();
    expect(encodePublish(1, 4096, 'ex', 'rk', tidings, Buffer.alloc(4096 - 8))).toBeDefined();
  });

  it('encodes short strings of exactly 255 bytes, and leaves 256 to amqplib (which refuses them)', () => {
    const body = Buffer.from('{}');
    for (const type of ['x'.repeat(255), `${'€'.repeat(84)}abc`, '\ud800'.repeat(85)]) {
      expect(Buffer.byteLength(type)).toBe(255);
      const o = { ...tidings, type };
      const mine = encodePublish(1, FRAME_MAX, 'ex', 'rk', o, body);
      expect(mine?.equals(amqplibBytes(1, 'ex', 'rk', o, body))).toBe(true);
    }
    for (const type of ['x'.repeat(256), `${'€'.repeat(85)}a`, '😀'.repeat(64)]) {
      expect(Buffer.byteLength(type)).toBe(256);
      expect(encodePublish(1, FRAME_MAX, 'ex', 'rk', { ...tidings, type }, body)).toBeUndefined();
      expect(() => amqplibBytes(1, 'ex', 'rk', { ...tidings, type }, body)).toThrow(TypeError);
    }
  });

  it('returns a buffer of its own, not a view of its scratch space', () => {
    const a = encodePublish(1, FRAME_MAX, 'ex', 'a', tidings, Buffer.from('1'))!;
    const copy = Buffer.from(a);
    encodePublish(1, FRAME_MAX, 'ex', 'b', tidings, Buffer.from('2'));
    expect(a.equals(copy)).toBe(true);
  });
});

const url = process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const broker = new URL(url);
const up = await brokerReachable(broker.hostname, Number(broker.port || 5672), 'RabbitMQ');

/** Runs `body` with a transport and a fresh exchange and queue bound with `pattern`; then deletes them. */
async function withQueue(
  pattern: string,
  body: (t: AmqpTransport, exchange: string, queue: string) => Promise<void>,
): Promise<void> {
  const t = amqpTransport({ url, connectionName: 'frames-test', queueType: 'classic' });
  const exchange = uniqueName('frames');
  const queue = `${exchange}.q`;
  const topology = {
    exchanges: [exchange],
    queues: [{ name: queue, bindings: [{ exchange, pattern }] }],
  };
  try {
    await t.declare(topology);
    await body(t, exchange, queue);
  } finally {
    await t.deleteTopology(topology, { exchanges: true }).catch(() => {});
    await t.close();
  }
}

type PublishMethod = ((...args: unknown[]) => boolean) & { __wrapped?: boolean };

/** The prototype whose `publish` the transport's confirm channels use. */
function confirmChannelPrototype(): { publish: PublishMethod } {
  return amqplibInternal<{ ConfirmChannel: { prototype: { publish: PublishMethod } } }>(
    'lib/channel_model.js',
  ).ConfirmChannel.prototype;
}

/** Publishes `count` messages through `t` and counts how many went through amqplib's publish. */
async function countThroughAmqplib(
  t: AmqpTransport,
  exchange: string,
  count: number,
  wrap = false,
): Promise<number> {
  const proto = confirmChannelPrototype();
  const original = proto.publish;
  let throughAmqplib = 0;
  const counting: PublishMethod = function (this: unknown, ...args: unknown[]) {
    throughAmqplib++;
    return original.apply(this, args);
  };
  // What shimmer, the wrapper OpenTelemetry's instrumentations use, leaves on a wrapped method.
  if (wrap) counting.__wrapped = true;
  proto.publish = counting;
  try {
    for (let i = 0; i < count; i++) {
      await t.publish({
        exchange,
        routingKey: `k.${i}`,
        body: Buffer.from('{}'),
        properties: { messageId: `m-${i}`, contentType: 'application/json', headers: {} },
      });
    }
  } finally {
    proto.publish = original;
  }
  return throughAmqplib;
}

describe.skipIf(!up)('publishing with the frame encoder, on RabbitMQ', () => {
  it('opens channels of the amqplib package this pass is for', async () => {
    const connection = await amqplibConnect(url);
    try {
      const channel = await connection.createConfirmChannel();
      expect(Object.getPrototypeOf(channel)).toBe(confirmChannelPrototype());
      await channel.close();
    } finally {
      await connection.close();
    }
  });

  it("takes the encoder's path with the installed amqplib, and the messages arrive intact", async () => {
    // If an amqplib upgrade changed the internals the encoder relies on, publishing would still
    // work through amqplib, silently slower: this test says so.
    const proto = confirmChannelPrototype();
    const original = proto.publish;
    let throughAmqplib = 0;
    proto.publish = function (this: unknown, ...args: unknown[]) {
      throughAmqplib++;
      return original.apply(this, args);
    };
    try {
      await withQueue('#', async (t, exchange, queue) => {
        const properties = (i: number) => ({
          messageId: `id-${i}`,
          correlationId: 'c',
          type: 'frames.v1.test',
          appId: 'frames-test',
          timestamp: 1_790_000_000 + i,
          contentType: 'application/json',
        });
        const sent = Array.from({ length: 50 }, (_, i) => ({
          body: Buffer.from(JSON.stringify({ n: i, text: 'é€😀'.repeat(i) })),
          headers: {
            'ce-id': `id-${i}`,
            'ce-time': new Date(0).toISOString(),
            'x-note': 'ü'.repeat(i),
          },
        }));
        await Promise.all(
          sent.map((m, i) =>
            t.publish({
              exchange,
              routingKey: `k.${i}`,
              body: m.body,
              properties: { ...properties(i), headers: m.headers },
            }),
          ),
        );
        expect(throughAmqplib).toBe(0);
        const got: Delivery[] = [];
        await t.consume(queue, { prefetch: 100 }, (d) => {
          got.push(d);
          d.ack().catch(() => {});
        });
        await waitFor(() => got.length === 50, 'the 50 messages');
        for (const [i, d] of got.entries()) {
          const m = d.message;
          expect(m.routingKey).toBe(`k.${i}`);
          expect(m.body.equals(sent[i]!.body)).toBe(true);
          expect(m.properties).toMatchObject(properties(i));
          expect({ ...m.properties.headers }).toEqual(sent[i]!.headers);
        }
      });
    } finally {
      proto.publish = original;
    }
  });

  it('goes through amqplib for everything with fastPublish: false, without a warning', async () => {
    const warnings: string[] = [];
    const t = amqpTransport({
      url,
      fastPublish: false,
      logger: { ...silentLogger, warn: (m) => warnings.push(m) },
    });
    const exchange = uniqueName('frames-off');
    try {
      await t.declare({ exchanges: [exchange], queues: [] });
      expect(await countThroughAmqplib(t, exchange, 5)).toBe(5);
      expect(warnings).toEqual([]);
    } finally {
      await t.deleteTopology({ exchanges: [exchange], queues: [] }, { exchanges: true });
      await t.close();
    }
  });

  it('steps aside, saying so once, when an instrumentation wraps ConfirmChannel.publish', async () => {
    const warnings: string[] = [];
    const t = amqpTransport({ url, logger: { ...silentLogger, warn: (m) => warnings.push(m) } });
    const exchange = uniqueName('frames-wrapped');
    const proto = confirmChannelPrototype();
    const original = proto.publish;
    const wrapped: PublishMethod = function (this: unknown, ...args: unknown[]) {
      return original.apply(this, args);
    };
    wrapped.__wrapped = true;
    try {
      // The probe runs when the publish channel opens: wrap before the first publish.
      proto.publish = wrapped;
      await t.declare({ exchanges: [exchange], queues: [] });
      expect(await countThroughAmqplib(t, exchange, 5, true)).toBe(5);
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toMatch(/fast publish path is off: amqplib's publish is wrapped/);
    } finally {
      proto.publish = original;
      await t.deleteTopology({ exchanges: [exchange], queues: [] }, { exchanges: true });
      await t.close();
    }
  });

  it('steps aside too when Channel.sendMessage is wrapped the way dd-trace does (no marks, the original as prototype)', async () => {
    const warnings: string[] = [];
    const t = amqpTransport({ url, logger: { ...silentLogger, warn: (m) => warnings.push(m) } });
    const exchange = uniqueName('frames-ddtrace');
    const base = amqplibInternal<{
      Channel: { prototype: { sendMessage: (...args: unknown[]) => unknown } };
    }>('lib/channel.js').Channel.prototype;
    const original = base.sendMessage;
    let throughSendMessage = 0;
    const wrapper = function (this: unknown, ...args: unknown[]) {
      throughSendMessage++;
      return original.apply(this, args);
    };
    Object.setPrototypeOf(wrapper, original);
    try {
      base.sendMessage = wrapper;
      await t.declare({ exchanges: [exchange], queues: [] });
      await countThroughAmqplib(t, exchange, 3);
      expect(throughSendMessage).toBe(3);
      expect(warnings.filter((w) => /fast publish path is off/.test(w))).toHaveLength(1);
    } finally {
      base.sendMessage = original;
      await t.deleteTopology({ exchanges: [exchange], queues: [] }, { exchanges: true });
      await t.close();
    }
  });

  it('writes in the same chunks as amqplib, small and large, so backpressure is the same', async () => {
    // A routing key of its own: no queue bound to amq.topic by anyone else receives these.
    const key = uniqueName('frames-test');
    const connection = await amqplibConnect(url);
    const channel = await connection.createConfirmChannel();
    const internals = channel as unknown as {
      ch: number;
      connection: { channels: { buffer: { write(b: Buffer): boolean } }[] };
    };
    const buffer = internals.connection.channels[internals.ch]!.buffer;
    const write = buffer.write;
    let chunks: Buffer[] = [];
    buffer.write = function (this: unknown, b: Buffer) {
      chunks.push(Buffer.from(b));
      return write.call(this, b);
    };
    const noop = () => {};
    const big = { ...tidings, headers: { 'x-big': 'h'.repeat(3000) } };
    try {
      for (const [options, size] of [
        [tidings, 100],
        [tidings, 3000],
        [big, 10],
        [big, 0],
      ] as const) {
        const body = Buffer.alloc(size, 7);
        chunks = [];
        channel.publish('amq.topic', key, body, options, noop);
        const theirs = chunks;
        chunks = [];
        expect(tryPublishFrames(channel, 'amq.topic', key, body, options, noop)).toBe(true);
        expect(chunks.map((c) => c.length)).toEqual(theirs.map((c) => c.length));
        expect(Buffer.concat(chunks).equals(Buffer.concat(theirs))).toBe(true);
      }
      await channel.waitForConfirms();
    } finally {
      buffer.write = write;
      await connection.close();
    }
  });

  it('marks the write for the heartbeat, and steps aside for a closing channel or connection', async () => {
    const key = uniqueName('frames-test');
    const publishOn = (channel: ConfirmChannel) =>
      tryPublishFrames(channel, 'amq.topic', key, Buffer.from('{}'), tidings, () => {});
    const connection = await amqplibConnect(url);
    const internals = connection as unknown as { connection: { sentSinceLastCheck: boolean } };
    const first = await connection.createConfirmChannel();
    internals.connection.sentSinceLastCheck = false;
    expect(publishOn(first)).toBe(true);
    expect(internals.connection.sentSinceLastCheck).toBe(true);
    await first.waitForConfirms();
    const closing = first.close();
    expect(publishOn(first)).toBeUndefined();
    await closing;
    const second = await connection.createConfirmChannel();
    const closed = connection.close();
    expect(publishOn(second)).toBeUndefined();
    await closed;
  });

  it('rejects a message amqplib cannot encode with MessageEncodingError, and keeps later confirms with their messages', async () => {
    await withQueue('bound.#', async (t, exchange, queue) => {
      const message = (routingKey: string, messageId: string) => ({
        exchange,
        routingKey,
        body: Buffer.from('{}'),
        properties: { messageId, headers: { 'tidings-attempts': 1 } },
      });
      // A number among the headers sends these through amqplib's encoder, which refuses a
      // message id over 255 bytes after queueing the confirm callback.
      const refused = t.publish(message('bound.a', 'x'.repeat(300)));
      const unroutable = t.publish(message('nowhere', 'b'));
      const routed = t.publish(message('bound.c', 'c'));
      await expect(refused).rejects.toBeInstanceOf(MessageEncodingError);
      await expect(refused).rejects.toThrow(/bound\.a cannot be encoded for AMQP/);
      expect(await unroutable).toEqual({ routed: false });
      expect(await routed).toEqual({ routed: true });
      const got = await t.get(queue);
      expect(got?.message.properties.messageId).toBe('c');
      await got?.ack();
    });
  });
});
