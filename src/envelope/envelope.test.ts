import { describe, expect, it } from 'vitest';
import { type Envelope, envelopeFromMessage, envelopeToProperties, HEADERS } from './envelope.js';
import { uuidv7 } from './id.js';

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

  it('uses the documented, lasting header names', () => {
    const p = envelopeToProperties(envelope);
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
