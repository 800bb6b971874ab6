import { describe, expect, it } from 'vitest';
import type { HeaderValue, MessageProperties } from '../../envelope/envelope.js';
import {
  DUE_HEADER,
  decodeHeaders,
  encodeHeaders,
  PROPERTY_HEADERS,
  TYPED_HEADERS,
} from './headers.js';

function roundTrip(properties: MessageProperties): MessageProperties {
  return decodeHeaders(encodeHeaders(properties)).properties;
}

describe('message properties and headers on NATS', () => {
  it('carries every property and plain string header as a NATS header of the same name', () => {
    const h = encodeHeaders({
      messageId: 'id-1',
      correlationId: 'c-1',
      type: 'order.v1.submit',
      appId: 'order',
      timestamp: 1_700_000_000,
      contentType: 'application/json',
      headers: { 'ce-id': 'id-1', 'Ce-Case': 'kept', 'x-custom': 'ü€' },
    });
    expect(h.get(PROPERTY_HEADERS.messageId)).toBe('id-1');
    expect(h.get(PROPERTY_HEADERS.timestamp)).toBe('1700000000');
    expect(h.get('ce-id')).toBe('id-1');
    expect(h.get('Ce-Case')).toBe('kept');
    expect(h.has(TYPED_HEADERS)).toBe(false);
  });

  it('gives back exactly what it was given, types, odd names and odd values included', () => {
    const headers: Record<string, HeaderValue> = {
      'tidings-attempts': 3,
      flag: true,
      none: null,
      bytes: Buffer.from([0, 1, 255]),
      list: [1, 'two', { three: 3 }],
      table: { a: 1, $b: 'dollar', nested: { c: Buffer.from('x') } },
      'with space': 'a',
      'colon:name': 'b',
      'Nats-Msg-Id': 'not the server one',
      [PROPERTY_HEADERS.type]: 'a header, not the property',
      [DUE_HEADER]: 'a header too',
      stack: 'Error: x\n    at y',
      padded: '  padded  ',
      empty: '',
      nan: Number.NaN,
      __proto__: 'own key',
    };
    Object.defineProperty(headers, '__proto__', { value: 'own key', enumerable: true });
    const back = roundTrip({
      messageId: 'line\nbreak',
      correlationId: ' spaced ',
      timestamp: 5,
      headers,
    });
    expect(back.messageId).toBe('line\nbreak');
    expect(back.correlationId).toBe(' spaced ');
    expect(back.timestamp).toBe(5);
    expect(back.type).toBeUndefined();
    expect(Object.keys(back.headers).sort()).toEqual(Object.keys(headers).sort());
    for (const key of Object.keys(headers)) {
      if (key === 'nan') expect(back.headers.nan).toBeNaN();
      else expect(JSON.stringify(back.headers[key])).toBe(JSON.stringify(headers[key]));
    }
    expect(Buffer.isBuffer(back.headers.bytes)).toBe(true);
    expect(Object.getPrototypeOf(back.headers)).toBeNull();
  });

  it('reads the due time of a retried copy and keeps it out of the headers', () => {
    const due = new Date(Date.UTC(2030, 0, 1)).toISOString();
    const decoded = decodeHeaders(encodeHeaders({ headers: { a: 'b' } }, { [DUE_HEADER]: due }));
    expect(decoded.dueAt).toBe(Date.parse(due));
    expect(Object.keys(decoded.properties.headers)).toEqual(['a']);
  });
});
