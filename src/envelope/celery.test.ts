import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type CeleryDecodeError,
  type DecodedCelery,
  decodeCelery,
  encodeCelery,
  isCeleryMessage,
} from './celery.js';
import {
  type Envelope,
  envelopeToProperties,
  type HeaderValue,
  type IncomingMessage,
  type MessageProperties,
} from './envelope.js';
import { uuidv7 } from './id.js';

/** A message captured from Celery 5.2 (`examples/ecommerce/python/tools/capture.py`). */
interface Fixture {
  readonly captured: string;
  readonly exchange: string;
  readonly routingKey: string;
  readonly properties: MessageProperties & { deliveryMode: number; replyTo: string };
  readonly body: string;
}

const fixture = JSON.parse(
  readFileSync(new URL('./fixtures/celery-order-submit.json', import.meta.url), 'utf8'),
) as Fixture;

const fromCelery: IncomingMessage = {
  exchange: fixture.exchange,
  routingKey: fixture.routingKey,
  body: Buffer.from(fixture.body, 'utf8'),
  properties: fixture.properties,
  redelivered: false,
};

const order = {
  id: 1,
  lines: [
    { id: 1, quantity: 2, price: 3 },
    { id: 2, quantity: 1, price: 4.5 },
  ],
};

const envelope: Envelope = {
  id: uuidv7(),
  type: 'order.v1.submit',
  exchange: 'order',
  event: 'submit',
  version: 1,
  source: 'order',
  time: '2026-11-26T10:00:00.123Z',
  correlationId: 'corr-1',
  causationId: undefined,
  traceparent: undefined,
};

function message(
  body: string | Buffer,
  headers: Record<string, HeaderValue>,
  properties: Partial<MessageProperties> = {},
): IncomingMessage {
  return {
    exchange: 'order',
    routingKey: 'order.v1.submit',
    body: Buffer.isBuffer(body) ? body : Buffer.from(body, 'utf8'),
    properties: {
      contentType: 'application/json',
      contentEncoding: 'utf-8',
      ...properties,
      headers,
    },
    redelivered: false,
  };
}

const celeryHeaders = (extra: Record<string, HeaderValue> = {}): Record<string, HeaderValue> => ({
  lang: 'py',
  task: 'order.v1.submit',
  id: '6f1c1a8e-0d4b-4a57-9d6c-2a4f1b8c9e10',
  root_id: '6f1c1a8e-0d4b-4a57-9d6c-2a4f1b8c9e10',
  parent_id: null,
  eta: null,
  ...extra,
});

const EMBED = { callbacks: null, errbacks: null, chain: null, chord: null };

function decoded(result: DecodedCelery | CeleryDecodeError): DecodedCelery {
  if ('error' in result) throw new Error(`expected a decoded message, got: ${result.error}`);
  return result;
}

function failure(result: DecodedCelery | CeleryDecodeError): CeleryDecodeError {
  if (!('error' in result)) throw new Error('expected a decode error');
  return result;
}

describe('encodeCelery', () => {
  it('writes the headers and properties of Celery task protocol v2, plus the envelope headers', () => {
    const out = encodeCelery(
      { ...envelope, causationId: 'cause-1', traceparent: '00-abc-def-01', tracestate: 'v=1' },
      order,
      { origin: 'gen42@test' },
    );
    expect(out.properties).toEqual({
      messageId: envelope.id,
      correlationId: envelope.id,
      type: 'order.v1.submit',
      appId: 'order',
      timestamp: Math.floor(Date.parse(envelope.time) / 1000),
      contentType: 'application/json',
      contentEncoding: 'utf-8',
      headers: {
        lang: 'py',
        task: 'order.v1.submit',
        id: envelope.id,
        shadow: null,
        eta: null,
        expires: null,
        group: null,
        group_index: null,
        retries: 0,
        timelimit: [null, null],
        root_id: 'corr-1',
        parent_id: 'cause-1',
        argsrepr: '()',
        kwargsrepr: `{'instance': ${JSON.stringify(order)}}`,
        origin: 'gen42@test',
        ignore_result: true,
        'ce-specversion': '1.0',
        'ce-id': envelope.id,
        'ce-source': 'order',
        'ce-type': 'order.v1.submit',
        'ce-time': '2026-11-26T10:00:00.123Z',
        'tidings-causation-id': 'cause-1',
        traceparent: '00-abc-def-01',
        tracestate: 'v=1',
      },
    });
  });

  it('writes the body [[], {"instance": payload}, embed]', () => {
    const out = encodeCelery(envelope, order);
    expect(JSON.parse(out.body.toString('utf8'))).toEqual([[], { instance: order }, EMBED]);
  });

  it('writes every header a real Celery producer writes, with the same constant values', () => {
    const out = encodeCelery(envelope, order);
    const celery = fixture.properties.headers;
    for (const name of Object.keys(celery)) expect(out.properties.headers).toHaveProperty([name]);
    for (const name of ['lang', 'shadow', 'eta', 'expires', 'group', 'group_index', 'retries']) {
      expect(out.properties.headers[name], name).toEqual(celery[name]);
    }
    expect(out.properties.headers.timelimit).toEqual(celery.timelimit);
    expect(out.properties.headers.argsrepr).toBe(celery.argsrepr);
    expect(out.properties.headers.origin).toMatch(/^gen\d+@.+$/);
    expect(out.properties.contentType).toBe(fixture.properties.contentType);
    expect(out.properties.contentEncoding).toBe(fixture.properties.contentEncoding);
    // Same body as Celery's for the same order, up to JSON whitespace.
    expect(JSON.parse(out.body.toString('utf8'))).toEqual(JSON.parse(fixture.body));
  });

  it('starts a conversation with parent_id null', () => {
    const out = encodeCelery(envelope, order);
    expect(out.properties.headers.parent_id).toBeNull();
    expect(out.properties.headers.root_id).toBe('corr-1');
    expect(out.properties.headers).not.toHaveProperty(['tidings-causation-id']);
  });

  it("cuts kwargsrepr at Celery's 1024 characters", () => {
    const out = encodeCelery(envelope, { text: 'x'.repeat(5000) });
    const repr = out.properties.headers.kwargsrepr as string;
    expect(repr).toHaveLength(1024);
    expect(repr.endsWith('...')).toBe(true);
    expect(out.body.length).toBeGreaterThan(5000);
  });

  it('refuses a payload with no JSON form', () => {
    expect(() => encodeCelery(envelope, undefined)).toThrow(TypeError);
    expect(() => encodeCelery(envelope, () => 1)).toThrow(/no JSON form/);
  });
});

describe('isCeleryMessage', () => {
  it('recognises a message sent by Celery and one encoded by Tidings', () => {
    expect(isCeleryMessage(fromCelery)).toBe(true);
    expect(isCeleryMessage(encodeCelery(envelope, order))).toBe(true);
  });

  it('does not take a native Tidings message for one', () => {
    expect(isCeleryMessage({ properties: envelopeToProperties(envelope) })).toBe(false);
  });

  it('needs both the task and the id header, as own non-empty values', () => {
    expect(isCeleryMessage(message('', { task: 'order.v1.submit' }))).toBe(false);
    expect(isCeleryMessage(message('', { id: 'x' }))).toBe(false);
    expect(isCeleryMessage(message('', { task: '', id: 'x' }))).toBe(false);
    expect(isCeleryMessage(message('', { task: Buffer.from('order.v1.submit'), id: 'x' }))).toBe(
      true,
    );
    const inherited = Object.create({ task: 'order.v1.submit', id: 'x' }) as Record<
      string,
      HeaderValue
    >;
    expect(isCeleryMessage(message('', inherited))).toBe(false);
  });
});

describe('decodeCelery', () => {
  it('reads the message a real Celery producer sent (order.submit())', () => {
    const headers = fixture.properties.headers;
    const { envelope: e, payload } = decoded(decodeCelery(fromCelery));
    expect(payload).toEqual(order);
    expect(e).toMatchObject({
      id: headers.id,
      type: 'order.v1.submit',
      exchange: 'order',
      event: 'submit',
      version: 1,
      source: headers.origin,
      correlationId: headers.root_id,
      causationId: undefined,
      traceparent: undefined,
    });
    expect(Number.isNaN(Date.parse(e.time))).toBe(false);
  });

  it('reads the trace context that the OpenTelemetry instrumentation of Celery puts in the headers', () => {
    // opentelemetry-instrumentation-celery injects into the message headers on before_task_publish.
    const traced = {
      ...fromCelery,
      properties: {
        ...fromCelery.properties,
        headers: {
          ...fromCelery.properties.headers,
          traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
          tracestate: 'congo=t61rcWkgMzE',
        },
      },
    };
    expect(decoded(decodeCelery(traced)).envelope).toMatchObject({
      traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
      tracestate: 'congo=t61rcWkgMzE',
    });
  });

  it('gets back the envelope and payload that encodeCelery wrote', () => {
    const full: Envelope = {
      ...envelope,
      causationId: 'cause-1',
      traceparent: '00-abc-def-01',
      tracestate: 'v=1',
    };
    for (const e of [envelope, full]) {
      const out = encodeCelery(e, order);
      const back = decoded(decodeCelery({ ...out, routingKey: e.type }));
      expect(back.envelope).toEqual(e);
      expect(back.payload).toEqual(order);
    }
  });

  it('round-trips any JSON payload, keys such as __proto__ included', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        const out = encodeCelery(envelope, value);
        const back = decoded(decodeCelery({ ...out, routingKey: envelope.type }));
        expect(back.payload).toEqual(JSON.parse(JSON.stringify(value)));
      }),
    );
  });

  it('maps Celery headers to the envelope when no Tidings header is there', () => {
    const body = JSON.stringify([[], { instance: order }, EMBED]);
    const e = decoded(
      decodeCelery(
        message(body, celeryHeaders({ root_id: 'root', parent_id: 'parent', origin: 'gen1@h' })),
      ),
    ).envelope;
    expect(e).toMatchObject({
      id: '6f1c1a8e-0d4b-4a57-9d6c-2a4f1b8c9e10',
      correlationId: 'root',
      causationId: 'parent',
      source: 'gen1@h',
    });
    const bare = decoded(
      decodeCelery(
        message(body, { task: 'order.v2.submit', id: 't-1' }, { timestamp: 1_800_000_000 }),
      ),
    ).envelope;
    expect(bare).toMatchObject({
      id: 't-1',
      version: 2,
      source: 'celery',
      correlationId: 't-1',
      time: new Date(1_800_000_000_000).toISOString(),
    });
  });

  it('falls back to the first positional argument', () => {
    const body = JSON.stringify([[order], {}, EMBED]);
    expect(decoded(decodeCelery(message(body, celeryHeaders()))).payload).toEqual(order);
  });

  it('prefers kwargs.instance to args, and accepts a null instance for the schema to judge', () => {
    const both = JSON.stringify([['other'], { instance: order }, EMBED]);
    expect(decoded(decodeCelery(message(both, celeryHeaders()))).payload).toEqual(order);
    const nothing = JSON.stringify([[], { instance: null }, null]);
    expect(decoded(decodeCelery(message(nothing, celeryHeaders()))).payload).toBeNull();
  });

  it('reads headers delivered as bytes', () => {
    const body = JSON.stringify([[], { instance: order }, EMBED]);
    const headers = { task: Buffer.from('order.v1.submit'), id: Buffer.from('t-2') };
    expect(decoded(decodeCelery(message(body, headers))).envelope.id).toBe('t-2');
  });

  it.each([
    ['a body that is not JSON', '[[], {"instance": ', 'invalid-json', /not JSON/],
    ['a JSON object', '{"instance": 1}', 'invalid-celery', /\[args, kwargs, embed\]/],
    ['an array of two', '[[], {"instance": 1}]', 'invalid-celery', /\[args, kwargs, embed\]/],
    ['args that are not an array', '[{}, {"instance": 1}, {}]', 'invalid-celery', /args/],
    ['kwargs that are null', '[[], null, {}]', 'invalid-celery', /kwargs/],
    ['kwargs that are an array', '[[], [1], {}]', 'invalid-celery', /kwargs/],
    ['no instance and no args', '[[], {"order": 1}, {}]', 'invalid-celery', /no payload/],
    [
      'an instance only under __proto__',
      '[[], {"__proto__": {"instance": 1}}, {}]',
      'invalid-celery',
      /no payload/,
    ],
  ] as const)('refuses %s', (_, body, reason, error) => {
    const result = failure(decodeCelery(message(body, celeryHeaders())));
    expect(result.reason).toBe(reason);
    expect(result.error).toMatch(error);
  });

  it('refuses messages without the task or id header, or whose task is no routing key', () => {
    const body = JSON.stringify([[], { instance: order }, EMBED]);
    expect(failure(decodeCelery(message(body, { task: 'order.v1.submit' }))).reason).toBe(
      'missing-envelope',
    );
    const named = failure(decodeCelery(message(body, celeryHeaders({ task: 'tasks.add' }))));
    expect(named).toMatchObject({ reason: 'missing-envelope' });
    expect(named.error).toMatch(/tasks\.add.*not a Tidings routing key/);
  });

  it('refuses what Tidings cannot honour: other serializers, compression, an ETA', () => {
    const body = JSON.stringify([[], { instance: order }, EMBED]);
    const pickle = decodeCelery(
      message(body, celeryHeaders(), { contentType: 'application/x-python-serialize' }),
    );
    expect(failure(pickle)).toMatchObject({ reason: 'invalid-celery' });
    expect(failure(pickle).error).toMatch(/task_serializer='json'/);
    const binary = decodeCelery(message(body, celeryHeaders(), { contentEncoding: 'binary' }));
    expect(failure(binary).error).toMatch(/utf-8 only/);
    const zipped = decodeCelery(
      message(body, celeryHeaders({ compression: 'application/x-gzip' })),
    );
    expect(failure(zipped).error).toMatch(/compressed/);
    const later = decodeCelery(message(body, celeryHeaders({ eta: '2030-01-01T00:00:00+00:00' })));
    expect(failure(later).error).toMatch(/ETA/);
  });

  it('keeps __proto__ keys of the payload as plain data', () => {
    const body = '[[], {"instance": {"__proto__": {"polluted": true}, "id": 1}}, {}]';
    const payload = decoded(decodeCelery(message(body, celeryHeaders()))).payload as object;
    expect(Object.getPrototypeOf(payload)).toBe(Object.prototype);
    expect(Object.hasOwn(payload, '__proto__')).toBe(true);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});
