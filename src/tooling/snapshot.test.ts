import * as v from 'valibot';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { defineEvent, defineExchange } from '../contracts/event.js';
import { SnapshotFormatError } from './errors.js';
import { formatSnapshot, parseSnapshot, snapshot } from './snapshot.js';

const order = defineExchange('order');
const audit = defineExchange('audit');
const Order = z.object({ id: z.number().int(), lines: z.array(z.string()) });
const submitV1 = defineEvent(order, 'submit', Order);
const submit = submitV1.version(Order.extend({ currency: z.string() }), (o) => ({
  ...o,
  currency: 'EUR',
}));
const cancel = defineEvent(order, 'cancel', z.object({ id: z.number() }));

describe('snapshot', () => {
  it('records exchanges, events and versions, with routing keys, upcasters and schemas', async () => {
    const s = await snapshot({ order, submit, cancel });
    expect(s.format).toBe('tidings-contracts');
    expect(s.formatVersion).toBe(1);
    expect(Object.keys(s.exchanges)).toEqual(['order']);
    expect(Object.keys(s.exchanges.order!.events)).toEqual(['cancel', 'submit']);
    const versions = s.exchanges.order!.events.submit!.versions;
    expect(versions.map((x) => [x.version, x.routingKey, x.hasUpcaster])).toEqual([
      [1, 'order.v1.submit', false],
      [2, 'order.v2.submit', true],
    ]);
    expect(versions[1]!.schema).toMatchObject({ required: ['currency', 'id', 'lines'] });
    expect(versions[1]!.schema).not.toHaveProperty('$schema');
    expect(s.warnings).toEqual([]);
  });

  it('is the same text whatever the order of exports and of schema keys', async () => {
    const Reordered = z.object({ lines: z.array(z.string()), id: z.number().int() });
    const reordered = defineEvent(order, 'submit', Reordered).version(
      Reordered.extend({ currency: z.string() }),
      (o) => ({ ...o, currency: 'EUR' }),
    );
    const a = formatSnapshot(await snapshot({ order, submit, cancel }));
    const b = formatSnapshot(await snapshot({ cancel, submit: reordered, order }));
    expect(b).toBe(a);
    expect(a.endsWith('}\n')).toBe(true);
  });

  it('finds contracts in nested objects and arrays, and exchanges that only events mention', async () => {
    const s = await snapshot({ events: { all: [submit] }, audit });
    expect(Object.keys(s.exchanges)).toEqual(['audit', 'order']);
    expect(s.exchanges.audit!.events).toEqual({});
  });

  it('counts an event exported at two stages of its history once, at its newest', async () => {
    const s = await snapshot({ submitV1, submit });
    expect(s.exchanges.order!.events.submit!.versions).toHaveLength(2);
  });

  it('refuses two different definitions of one event', async () => {
    const other = defineEvent(order, 'submit', z.object({ id: z.string() }));
    await expect(snapshot({ submit, other })).rejects.toThrow(/order\.submit is defined twice/);
  });

  it('records {} and a warning for a schema without JSON Schema', async () => {
    const ping = defineEvent(audit, 'ping', v.object({ at: v.string() }));
    const s = await snapshot({ ping });
    expect(s.exchanges.audit!.events.ping!.versions[0]!.schema).toEqual({});
    expect(s.warnings).toHaveLength(1);
    expect(s.warnings[0]).toMatch(/^audit\.v1\.ping: /);
  });
});

describe('parseSnapshot', () => {
  it('reads back what formatSnapshot wrote', async () => {
    const s = await snapshot({ submit, cancel });
    expect(parseSnapshot(formatSnapshot(s))).toEqual(s);
  });

  it.each([
    ['not JSON', '{', /not JSON/],
    [
      'another format',
      '{"format":"x","formatVersion":1,"exchanges":{},"warnings":[]}',
      /\$\.format/,
    ],
    [
      'a future format version',
      '{"format":"tidings-contracts","formatVersion":9,"exchanges":{},"warnings":[]}',
      /\$\.formatVersion: expected 1 \(got 9\)/,
    ],
    [
      'a gap in the versions',
      JSON.stringify({
        format: 'tidings-contracts',
        formatVersion: 1,
        warnings: [],
        exchanges: {
          order: {
            events: {
              submit: {
                versions: [
                  { version: 2, routingKey: 'order.v2.submit', hasUpcaster: true, schema: {} },
                ],
              },
            },
          },
        },
      }),
      /\$\.exchanges\.order\.events\.submit\.versions\[0\]\.version: expected 1/,
    ],
  ])('rejects %s with a SnapshotFormatError', (_, text, message) => {
    expect(() => parseSnapshot(text)).toThrow(SnapshotFormatError);
    expect(() => parseSnapshot(text)).toThrow(message);
  });
});
