import { encodePublish } from '../src/transports/amqp/frames.js';
import { amqplibFrames } from '../test/support/amqplib-frames.js';
import { envelopeOptions, namesFor, PUBLISH_OPTIONS } from './clients.js';
import { order, submitEvent } from './payload.js';

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
  /**
   * Bytes of one publish's frames: Tidings' envelope in the wire format it writes (3; `format2`
   * in runs saved before format 3), in format 1, raw's options.
   */
  readonly frameBytes?: {
    readonly format3?: number;
    readonly format2?: number;
    readonly format1: number;
    readonly raw: number;
  };
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
  const envelopes = Array.from({ length: 256 }, () => envelopeOptions(namesFor('order')));
  const size = (o: object) =>
    encodePublish(1, 131_072, 'order', 'order.v2.submit', o, bodies[0]!)?.length ?? Number.NaN;
  return {
    frameBytes: {
      format3: size(envelopes[0]!),
      format1: size(envelopeOptions(namesFor('order'), 1)),
      raw: size(PUBLISH_OPTIONS),
    },
    framesAmqplib: time((i) =>
      amqplibFrames(1, 'order', 'order.v2.submit', envelopes[i & 255]!, bodies[i & 255]!),
    ),
    framesTidings: time((i) =>
      encodePublish(1, 131_072, 'order', 'order.v2.submit', envelopes[i & 255]!, bodies[i & 255]!),
    ),
    framesRaw: time((i) =>
      amqplibFrames(1, 'order', 'order.v2.submit', PUBLISH_OPTIONS, bodies[i & 255]!),
    ),
    bytes: bodies[0]!.length,
    stringify: time((i) => Buffer.from(JSON.stringify(payloads[i & 255]))),
    parse: time((i) => JSON.parse(bodies[i & 255]!.toString('utf8'))),
    arktype: time((i) => arktype.validate(payloads[i & 255])),
    zod: time((i) => zod.validate(payloads[i & 255])),
    valibot: time((i) => valibot.validate(payloads[i & 255])),
  };
}
