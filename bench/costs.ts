import { createRequire } from 'node:module';
import type { Options } from 'amqplib';
import { envelopeToProperties } from '../src/envelope/envelope.js';
import { encodePublish } from '../src/transports/amqp/frames.js';
import { order, submitEvent } from './payload.js';

const require = createRequire(import.meta.url);
// amqplib's encoder, as its ConfirmChannel.publish calls it (internal modules, stable since 0.10).
const defs = require('amqplib/lib/defs.js') as {
  BasicPublish: number;
  BasicProperties: number;
  encodeMethod(id: number, channel: number, fields: object): Buffer;
  encodeProperties(id: number, channel: number, size: number, fields: object): Buffer;
};
const args = require('amqplib/lib/api_args.js') as {
  publish(exchange: string, routingKey: string, options: Options.Publish): object;
};
const frame = require('amqplib/lib/frame.js') as {
  makeBodyFrame(channel: number, body: Buffer): Buffer;
};

/** What one order costs on this machine, in µs: the floor under any per-message figure. */
export interface Costs {
  readonly bytes: number;
  readonly stringify: number;
  readonly parse: number;
  /** `~standard.validate` of the example's order schema (version 2), in ArkType. */
  readonly arktype: number;
  /** The same schema in zod 4 and in valibot. */
  readonly zod: number;
  readonly valibot: number;
  /** The frames of one publish with Tidings' envelope (6 properties, 5 headers): amqplib's encoder. */
  readonly framesAmqplib: number;
  /** …and Tidings' own (src/transports/amqp/frames.ts), the same bytes. */
  readonly framesTidings: number;
  /** …and amqplib's encoder with raw amqplib's options (persistent, mandatory, content type). */
  readonly framesRaw: number;
}

function time(fn: (i: number) => unknown, n = 100_000): number {
  for (let i = 0; i < 10_000; i++) fn(i);
  let best = Number.POSITIVE_INFINITY;
  // Best of five: other load on the machine only ever adds time.
  for (let k = 0; k < 5; k++) {
    const t = performance.now();
    for (let i = 0; i < n / 5; i++) fn(i);
    best = Math.min(best, ((performance.now() - t) * 1000) / (n / 5));
  }
  return best;
}

/** Measures JSON and validation of the ~550-byte order, in this process. */
export function measureCosts(): Costs {
  const payloads = Array.from({ length: 256 }, (_, i) => order(i + 1));
  const bodies = payloads.map((p) => Buffer.from(JSON.stringify(p)));
  const arktype = submitEvent('costs', 'arktype').versions[1]!.schema['~standard'];
  const zod = submitEvent('costs', 'zod').versions[1]!.schema['~standard'];
  const valibot = submitEvent('costs', 'valibot').versions[1]!.schema['~standard'];
  const envelope = (i: number) => {
    const id = `019abcde-1234-7abc-8def-${String(i).padStart(12, '0')}`;
    const p = envelopeToProperties({
      id,
      type: 'order.v2.submit',
      exchange: 'order',
      event: 'submit',
      version: 2,
      source: 'order',
      time: '2026-11-26T11:19:28.123Z',
      correlationId: id,
    });
    return { persistent: true, mandatory: true, ...p } as Options.Publish;
  };
  const envelopes = Array.from({ length: 256 }, (_, i) => envelope(i));
  const raw: Options.Publish = {
    persistent: true,
    mandatory: true,
    contentType: 'application/json',
  };
  const amqplibFrames = (o: Options.Publish, body: Buffer) => {
    const fields = args.publish('order', 'order.v2.submit', o);
    return Buffer.concat([
      defs.encodeMethod(defs.BasicPublish, 1, fields),
      defs.encodeProperties(defs.BasicProperties, 1, body.length, fields),
      frame.makeBodyFrame(1, body),
    ]);
  };
  return {
    framesAmqplib: time((i) => amqplibFrames(envelopes[i & 255]!, bodies[i & 255]!)),
    framesTidings: time((i) =>
      encodePublish(1, 131_072, 'order', 'order.v2.submit', envelopes[i & 255]!, bodies[i & 255]!),
    ),
    framesRaw: time((i) => amqplibFrames(raw, bodies[i & 255]!)),
    bytes: bodies[0]!.length,
    stringify: time((i) => Buffer.from(JSON.stringify(payloads[i & 255]))),
    parse: time((i) => JSON.parse(bodies[i & 255]!.toString('utf8'))),
    arktype: time((i) => arktype.validate(payloads[i & 255])),
    zod: time((i) => zod.validate(payloads[i & 255])),
    valibot: time((i) => valibot.validate(payloads[i & 255])),
  };
}
