import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { defineEvent, defineExchange } from '../contracts/event.js';
import { type CompatibilityCode, checkCompatibility, diffPaths } from './check.js';
import { type ContractSnapshot, snapshot } from './snapshot.js';

const order = defineExchange('order');
const orders = defineExchange('orders');
const billing = defineExchange('billing');

const Order = z.object({ id: z.number().int(), total: z.number() });
const OrderV2 = Order.extend({ currency: z.string() });
const toV2 = (o: z.infer<typeof Order>) => ({ ...o, currency: 'EUR' });

const submitV1 = defineEvent(order, 'submit', Order);
const submitV2 = submitV1.version(OrderV2, toV2);
const submitV2Down = submitV1.version(OrderV2, toV2, { downcast: ({ currency: _, ...o }) => o });
const cancel = defineEvent(order, 'cancel', z.object({ id: z.number() }));

/** Edits a snapshot as a hand (or another tool) could: for cases the API itself prevents. */
function edit(s: ContractSnapshot, change: (copy: ContractSnapshot) => void): ContractSnapshot {
  const copy = structuredClone(s) as ContractSnapshot;
  change(copy);
  return copy;
}

function versionsOf(s: ContractSnapshot, exchange: string, event: string) {
  return s.exchanges[exchange]!.events[event]!.versions as {
    hasUpcaster: boolean;
    version: number;
    routingKey: string;
    schema: Record<string, unknown>;
  }[];
}

interface Case {
  readonly rule: CompatibilityCode;
  readonly name: string;
  readonly before: () => Promise<ContractSnapshot>;
  readonly after: () => Promise<ContractSnapshot>;
  /** The codes expected; empty when the change is fine. */
  readonly expected: readonly CompatibilityCode[];
}

const cases: Case[] = [
  {
    rule: 'exchange-removed',
    name: 'passes: an exchange is added',
    before: () => snapshot({ submitV1 }),
    after: () => snapshot({ submitV1, billing }),
    expected: [],
  },
  {
    rule: 'exchange-removed',
    name: 'fails: the exchange is renamed',
    before: () => snapshot({ submitV1 }),
    after: () => snapshot({ submit: defineEvent(orders, 'submit', Order) }),
    expected: ['exchange-removed'],
  },
  {
    rule: 'event-removed',
    name: 'passes: an event is added',
    before: () => snapshot({ submitV1 }),
    after: () => snapshot({ submitV1, cancel }),
    expected: [],
  },
  {
    rule: 'event-removed',
    name: 'fails: an event is renamed',
    before: () => snapshot({ submitV1, cancel }),
    after: () =>
      snapshot({
        submitV1,
        cancelled: defineEvent(order, 'cancelled', z.object({ id: z.number() })),
      }),
    expected: ['event-removed'],
  },
  {
    rule: 'version-removed',
    name: 'passes: a version is added with an upcaster',
    before: () => snapshot({ submitV1 }),
    after: () => snapshot({ submitV2 }),
    expected: [],
  },
  {
    rule: 'version-removed',
    name: 'fails: the newest version is removed',
    before: () => snapshot({ submitV2 }),
    after: () => snapshot({ submitV1 }),
    expected: ['version-removed'],
  },
  {
    rule: 'schema-changed',
    name: 'passes: the same schema written with its fields in another order',
    before: () => snapshot({ submitV1 }),
    after: () =>
      snapshot({
        s: defineEvent(order, 'submit', z.object({ total: z.number(), id: z.number().int() })),
      }),
    expected: [],
  },
  {
    rule: 'schema-changed',
    name: 'fails: an optional field is added to a published version',
    before: () => snapshot({ submitV1 }),
    after: () =>
      snapshot({ s: defineEvent(order, 'submit', Order.extend({ note: z.string().optional() })) }),
    expected: ['schema-changed'],
  },
  {
    rule: 'schema-changed',
    name: "fails: a field's type changes in a published version",
    before: () => snapshot({ submitV1 }),
    after: () => snapshot({ s: defineEvent(order, 'submit', Order.extend({ total: z.string() })) }),
    expected: ['schema-changed'],
  },
  {
    rule: 'upcaster-missing',
    name: 'passes: the new version has an upcaster',
    before: () => snapshot({ submitV1 }),
    after: () => snapshot({ submitV2 }),
    expected: [],
  },
  {
    rule: 'upcaster-missing',
    name: 'fails: the new version has none',
    before: () => snapshot({ submitV1 }),
    after: async () =>
      edit(await snapshot({ submitV2 }), (s) => {
        versionsOf(s, 'order', 'submit')[1]!.hasUpcaster = false;
      }),
    expected: ['upcaster-missing'],
  },
  {
    rule: 'upcaster-removed',
    name: 'passes: a published version keeps its upcaster',
    before: () => snapshot({ submitV2 }),
    after: () => snapshot({ submitV2, cancel }),
    expected: [],
  },
  {
    rule: 'upcaster-removed',
    name: 'fails: a published version loses its upcaster',
    before: () => snapshot({ submitV2 }),
    after: async () =>
      edit(await snapshot({ submitV2 }), (s) => {
        versionsOf(s, 'order', 'submit')[1]!.hasUpcaster = false;
      }),
    expected: ['upcaster-removed'],
  },
  {
    rule: 'downcaster-removed',
    name: 'passes: a published version gains a downcaster',
    before: () => snapshot({ submitV2 }),
    after: () => snapshot({ submitV2Down }),
    expected: [],
  },
  {
    rule: 'downcaster-removed',
    name: 'fails: a published version loses its downcaster',
    before: () => snapshot({ submitV2Down }),
    after: () => snapshot({ submitV2 }),
    expected: ['downcaster-removed'],
  },
];

describe('checkCompatibility', () => {
  it.each(cases.map((c) => [`${c.rule}: ${c.name}`, c] as const))('%s', async (_, c) => {
    const { before, after, expected } = c;
    const problems = checkCompatibility(await before(), await after());
    expect(problems.map((p) => p.code)).toEqual(expected);
  });

  it('finds nothing between a snapshot and itself', async () => {
    const s = await snapshot({ submitV2, cancel, billing });
    expect(checkCompatibility(s, s)).toEqual([]);
  });

  it('says where a schema changed, why it matters and what to do', async () => {
    const [problem] = checkCompatibility(
      await snapshot({ submitV1 }),
      await snapshot({ s: defineEvent(order, 'submit', Order.extend({ total: z.string() })) }),
    );
    expect(problem).toMatchObject({ exchange: 'order', event: 'submit', version: 1 });
    expect(problem!.message).toContain(
      'order.v1.submit changed its schema (at /properties/total/type)',
    );
    expect(problem!.message).toContain('make the new schema version 2, with an upcaster');
  });

  it('suggests the new name of a renamed exchange or event', async () => {
    const renamedExchange = checkCompatibility(
      await snapshot({ submitV1 }),
      await snapshot({ s: defineEvent(orders, 'submit', Order) }),
    );
    expect(renamedExchange[0]!.message).toContain(
      'exchange "order" is gone (renamed to "orders"?)',
    );
    const renamedEvent = checkCompatibility(
      await snapshot({ submitV1 }),
      await snapshot({ s: defineEvent(order, 'placed', Order) }),
    );
    expect(renamedEvent[0]!.message).toContain(
      'event order.submit is gone (renamed to "order.placed"?)',
    );
  });

  it('lists every problem, in a stable order', async () => {
    const before = await snapshot({
      submitV2,
      cancel,
      billing,
      other: defineEvent(billing, 'paid', Order),
    });
    const after = await snapshot({ s: defineEvent(order, 'submit', OrderV2) });
    expect(
      checkCompatibility(before, after).map((p) => `${p.code} ${p.exchange}.${p.event ?? ''}`),
    ).toEqual([
      'exchange-removed billing.',
      'event-removed order.cancel',
      'schema-changed order.submit',
      'version-removed order.submit',
    ]);
  });
});

describe('diffPaths', () => {
  it('names the JSON Pointers that differ', () => {
    expect(
      diffPaths({ a: 1, b: [1, 2], 'c/d': 1 }, { a: 1, b: [1, 3], 'c/d': 2, e: 0 }, ''),
    ).toEqual(['/b/1', '/c~1d', '/e']);
    expect(diffPaths({ a: [1] }, { a: [1, 2] }, '')).toEqual(['/a']);
    expect(diffPaths(1, 2, '')).toEqual(['/']);
  });
});
