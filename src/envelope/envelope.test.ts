import { describe, expect, it } from 'vitest';
import {
  type Envelope,
  envelopeFromMessage,
  envelopeToProperties,
  envelopeToPropertiesV1,
  HEADERS,
  type MessageProperties,
  WIRE_FORMAT,
} from './envelope.js';
import { uuidv7, uuidv7Time } from './id.js';

describe('uuidv7', () => {
  it('produces RFC 9562 version 7 ids that sort in creation order', () => {
    const ids = Array.from({ length: 10_000 }, () => uuidv7());
    for (const id of ids) {
      expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    }
    expect([...ids].sort()).toEqual(ids);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('encodes the millisecond timestamp in the first 48 bits', () => {
    // Ahead of every id made so far: ids are monotonic, so an earlier time would not be used.
    const at = Date.now() + 10_000;
    const id = uuidv7(at);
    expect(Number.parseInt(id.replace(/-/g, '').slice(0, 12), 16)).toBe(at);
  });
});

describe('envelope on the wire', () => {
  const envelope: Envelope = {
    id: uuidv7(),
    type: 'order.v1.submit',
    exchange: 'order',
    event: 'submit',
    version: 1,
    source: 'order',
    time: '2026-11-26T10:00:00.123Z',
    correlationId: 'corr-1',
    causationId: 'cause-1',
    traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
    tracestate: 'congo=t61rcWkgMzE',
  };

  it('writes wire format 3: each attribute once, the time in the id when the id holds it', () => {
    // A publisher's own id, which does not hold the time: `ce-time` says it.
    const p = envelopeToProperties(envelope);
    expect(p.headers).toEqual({
      'tidings-wire': '3',
      'ce-time': '2026-11-26T10:00:00.123Z',
      'tidings-causation-id': 'cause-1',
      traceparent: envelope.traceparent,
      tracestate: envelope.tracestate,
    });
    expect(p).toEqual({
      messageId: envelope.id,
      correlationId: 'corr-1',
      type: 'order.v1.submit',
      appId: 'order',
      timestamp: Math.floor(Date.parse(envelope.time) / 1000),
      contentType: 'application/json',
      headers: p.headers,
    });
    expect(WIRE_FORMAT).toBe('3');
    // An id made at the envelope's millisecond, as every publish makes it: no `ce-time`, one
    // header in all for an original message.
    // Ids are monotonic: a time ahead of every id made so far is the one the id gets.
    const now = Date.now() + 20_000;
    const own = { ...envelope, time: new Date(now).toISOString(), id: uuidv7(now) };
    const minimal = envelopeToProperties({
      ...own,
      correlationId: own.id,
      causationId: undefined,
      traceparent: undefined,
      tracestate: undefined,
    });
    expect(minimal.headers).toEqual({ 'tidings-wire': '3' });
    expect(uuidv7Time(own.id)).toBe(now);
  });

  it('reads the time of format 3 from the id, to the millisecond, and older formats from ce-time', () => {
    const now = Date.now() + 30_000;
    const id = uuidv7(now);
    const read = (properties: MessageProperties) =>
      envelopeFromMessage({
        exchange: 'order',
        routingKey: 'order.v1.submit',
        body: Buffer.from('{}'),
        redelivered: false,
        properties,
      });
    const time = new Date(now).toISOString();
    const v3 = envelopeToProperties({ ...envelope, id, time, correlationId: id });
    expect(v3.headers['ce-time']).toBeUndefined();
    expect(read(v3)?.time).toBe(time);
    // Format 2, as Tidings wrote it before: ce-specversion and ce-time.
    const v2 = read({
      messageId: 'not-a-uuid',
      type: 'order.v1.submit',
      appId: 'order',
      contentType: 'application/json',
      headers: {
        'ce-specversion': '1.0',
        'ce-time': '2026-11-25T09:00:00.001Z',
        'tidings-wire': '2',
      },
    });
    expect(v2).toMatchObject({
      id: 'not-a-uuid',
      source: 'order',
      time: '2026-11-25T09:00:00.001Z',
    });
    // Without ce-time and with an id that is not a UUIDv7: the timestamp's seconds.
    const noTime = read({
      messageId: 'not-a-uuid',
      type: 'order.v1.submit',
      timestamp: 1_700_000_000,
      headers: { 'tidings-wire': '3' },
    });
    expect(noTime?.time).toBe(new Date(1_700_000_000_000).toISOString());
  });

  it('reads the time of a UUIDv7 and nothing else', () => {
    expect(uuidv7Time('01938b6e-6f2b-7c3d-8e4f-0123456789ab')).toBe(0x01938b6e6f2b);
    expect(uuidv7Time('01938B6E-6F2B-7C3D-BE4F-0123456789AB')).toBe(0x01938b6e6f2b);
    expect(uuidv7Time('01938b6e-6f2b-4c3d-8e4f-0123456789ab')).toBeUndefined(); // version 4
    expect(uuidv7Time('01938b6e-6f2b-7c3d-ce4f-0123456789ab')).toBeUndefined(); // variant 110
    expect(uuidv7Time('01938b6e6f2b-7c3d-8e4f-0123456789ab-')).toBeUndefined();
    expect(uuidv7Time('0193zb6e-6f2b-7c3d-8e4f-0123456789ab')).toBeUndefined();
    expect(uuidv7Time('order-42')).toBeUndefined();
  });

  it('leaves the correlation id out when it is the message id (an original message)', () => {
    const p = envelopeToProperties({ ...envelope, correlationId: envelope.id });
    expect(p.correlationId).toBeUndefined();
    const back = envelopeFromMessage({
      exchange: 'order',
      routingKey: 'order.v1.submit',
      body: Buffer.from('{}'),
      properties: p,
      redelivered: false,
    });
    expect(back?.correlationId).toBe(envelope.id);
  });

  it('keeps writing wire format 1 for the Celery codec: the documented, lasting header names', () => {
    const p = envelopeToPropertiesV1(envelope);
    expect(p.headers).toEqual({
      'ce-specversion': '1.0',
      'ce-id': envelope.id,
      'ce-source': 'order',
      'ce-type': 'order.v1.submit',
      'ce-time': '2026-11-26T10:00:00.123Z',
      'tidings-causation-id': 'cause-1',
      traceparent: envelope.traceparent,
      tracestate: 'congo=t61rcWkgMzE',
    });
    expect(p).toMatchObject({
      messageId: envelope.id,
      correlationId: 'corr-1',
      type: 'order.v1.submit',
      appId: 'order',
      contentType: 'application/json',
      timestamp: Math.floor(Date.parse(envelope.time) / 1000),
    });
  });

  it('reads wire format 1 as written by Tidings 0.1, and prefers its ce- headers', () => {
    const base = {
      exchange: 'order',
      routingKey: 'order.v1.submit',
      body: Buffer.from('{}'),
      redelivered: false,
    };
    expect(envelopeFromMessage({ ...base, properties: envelopeToPropertiesV1(envelope) })).toEqual(
      envelope,
    );
    // Another producer of format 1 whose headers and properties disagree: the headers win, as
    // they did before format 2; amqplib may deliver long strings as Buffers.
    const foreign = envelopeFromMessage({
      ...base,
      properties: {
        messageId: 'prop-id',
        type: 'order.v1.other',
        appId: 'prop-source',
        timestamp: 1_700_000_000,
        headers: {
          'ce-id': Buffer.from('header-id'),
          'ce-type': 'order.v1.submit',
          'ce-source': 'header-source',
        },
      },
    });
    expect(foreign).toMatchObject({
      id: 'header-id',
      type: 'order.v1.submit',
      source: 'header-source',
      time: new Date(1_700_000_000_000).toISOString(),
    });
  });

  it('reads formats 2 and 3 from the properties alone, whatever ce- headers a copy carries', () => {
    const p = envelopeToProperties(envelope);
    const message = {
      exchange: 'order',
      routingKey: 'order.v1.submit',
      body: Buffer.from('{}'),
      redelivered: false,
      properties: { ...p, headers: { ...p.headers, 'ce-id': 'stale', 'ce-source': 'stale' } },
    };
    expect(envelopeFromMessage(message)).toEqual(envelope);
    const noId = { ...message, properties: { ...p, messageId: undefined } };
    expect(envelopeFromMessage(noId)).toBeUndefined();
  });

  it('keeps the failure header names stable', () => {
    expect(HEADERS).toMatchSnapshot();
  });

  it('reads back what it wrote', () => {
    const message = {
      exchange: 'order',
      routingKey: 'order.v1.submit',
      body: Buffer.from('{}'),
      properties: envelopeToProperties(envelope),
      redelivered: false,
    };
    expect(envelopeFromMessage(message)).toEqual(envelope);
  });

  it('falls back to AMQP properties for messages from plain clients, and refuses ones without an id', () => {
    const base = {
      exchange: 'order',
      routingKey: 'order.v1.submit',
      body: Buffer.from('{}'),
      redelivered: false,
    };
    const plain = envelopeFromMessage({ ...base, properties: { messageId: 'm-1', headers: {} } });
    expect(plain).toMatchObject({
      id: 'm-1',
      type: 'order.v1.submit',
      version: 1,
      correlationId: 'm-1',
    });
    expect(envelopeFromMessage({ ...base, properties: { headers: {} } })).toBeUndefined();
    expect(
      envelopeFromMessage({
        ...base,
        routingKey: 'whatever',
        properties: { messageId: 'x', headers: {} },
      }),
    ).toBeUndefined();
  });
});
