import { orderSubmit } from '@ecommerce/contracts';
import {
  createService,
  type Envelope,
  type Logger,
  type MemoryTransport,
  memoryTransport,
} from 'tidings';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { narrate } from '../narrate.js';
import {
  CHARGEBACK,
  checkOutcome,
  ORDERS,
  type Outcome,
  runScenario,
  waitFor,
} from '../scenario.js';
import { type Ecommerce, startEcommerce } from '../system.js';

/** Records what the services log above `info`, so the test can require silence. */
function recordingLogger(): Logger & { readonly lines: string[] } {
  const lines: string[] = [];
  const keep = (level: string) => (message: string) => {
    lines.push(`${level}: ${message}`);
  };
  return { lines, debug: () => {}, info: () => {}, warn: keep('warn'), error: keep('error') };
}

describe('the e-commerce scenario on the memory transport', () => {
  let transport: MemoryTransport;
  let system: Ecommerce;
  let outcome: Outcome;
  const logger = recordingLogger();
  const handled: { service: string; envelope: Envelope }[] = [];

  beforeAll(async () => {
    transport = memoryTransport();
    system = await startEcommerce(transport, logger);
    for (const s of [system.order, system.billing, system.logistic, system.notification]) {
      s.service.observe('handled', ({ service, envelope }) => handled.push({ service, envelope }));
    }
    outcome = await runScenario(system.urls, () => {});
  });

  afterAll(async () => {
    await system?.stop();
    await transport?.close();
  });

  it('meets every expectation of the scenario, and logs no warning', () => {
    expect(checkOutcome(outcome)).toEqual([]);
    expect(logger.lines).toEqual([]);
  });

  it('keeps the ledger balanced, in exact cents', () => {
    // Sales of 10.50 + 59.97 + 0.50 = 70.97; order #2 (59.97) is reversed; 11.00 remains.
    expect(outcome.balances).toEqual({
      accounts: [
        { account: 'accounts-receivable', debits: 7097, credits: 5997, balance: 1100 },
        { account: 'revenue', debits: 5997, credits: 7097, balance: 1100 },
      ],
      totalDebits: 13094,
      totalCredits: 13094,
      balanced: true,
    });
  });

  it('posts one sale per order and the reversing entry for the chargeback', () => {
    const summary = outcome.journal.map((e) => ({
      id: e.id,
      orderId: e.orderId,
      reverses: e.reverses,
      postings: e.postings.map((p) => `${p.side} ${p.account} ${p.cents}`),
    }));
    const sale = (id: string, orderId: number, cents: number) => ({
      id,
      orderId,
      reverses: undefined,
      postings: [`debit accounts-receivable ${cents}`, `credit revenue ${cents}`],
    });
    expect(summary).toEqual([
      sale('J-1', 1, 1050),
      sale('J-2', 2, 5997),
      sale('J-3', 3, 50),
      {
        id: 'J-4',
        orderId: CHARGEBACK.orderId,
        reverses: 'J-2',
        postings: ['debit revenue 5997', 'credit accounts-receivable 5997'],
      },
    ]);
  });

  it('ships each order once and marks it dispatched (the charged-back one stays charged back)', () => {
    expect(
      outcome.shipments.map((s) => [s.id, s.orderId, s.items, s.carrier, s.announced]),
    ).toEqual([
      ['S-1', 1, 3, 'parcel-post', true],
      ['S-2', 2, 3, 'parcel-post', true],
      ['S-3', 3, 4, 'courier', true],
    ]);
    expect(outcome.orders.map((o) => [o.id, o.status, o.totalCents, o.shipment?.id])).toEqual([
      [1, 'dispatched', 1050, 'S-1'],
      [2, 'charged_back', 5997, 'S-2'],
      [3, 'dispatched', 50, 'S-3'],
    ]);
    expect(outcome.orders[1]?.chargeback).toEqual({ amount: 59.97, reason: CHARGEBACK.reason });
  });

  it('records a confirmation and a dispatch notice for every order', () => {
    const sent = outcome.notifications.map((n) => `${n.to} ${n.kind} #${n.orderId}`).sort();
    const expected = ORDERS.flatMap((o, i) => [
      `${o.customer.email} order-confirmed #${i + 1}`,
      `${o.customer.email} order-dispatched #${i + 1}`,
    ]).sort();
    expect(sent).toEqual(expected);
  });

  it('propagates the correlation id from order.v1.submit to logistic.v1.dispatched', () => {
    for (const shipment of outcome.shipments) {
      const submit = handledBy('billing', shipment.causedBy);
      const dispatched = handledBy('order', shipment.announcementId);
      expect(submit.type).toBe('order.v2.submit');
      expect(submit.source).toBe('order');
      expect(submit.correlationId).toBe(submit.id);
      expect(submit.causationId).toBeUndefined();
      expect(dispatched.type).toBe('logistic.v1.dispatched');
      expect(dispatched.source).toBe('logistic');
      expect(dispatched.correlationId).toBe(submit.correlationId);
      expect(dispatched.causationId).toBe(submit.id);
      // The journal's audit trail points at the same submit message.
      const sale = outcome.journal.find((e) => e.orderId === shipment.orderId && !e.reverses);
      expect(sale?.messageId).toBe(submit.id);
    }
  });

  it('refuses invalid orders and a second chargeback over HTTP', async () => {
    const post = (path: string, body: unknown) =>
      fetch(`${system.urls.order}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    const line = { id: 1, quantity: 1, price: 1 };
    expect((await post('/orders', { lines: [] })).status).toBe(400);
    expect((await post('/orders', { lines: [{ ...line, quantity: 0 }] })).status).toBe(400);
    expect((await post('/orders', { lines: [{ ...line, price: -1 }] })).status).toBe(400);
    expect((await post('/orders', { lines: [{ ...line, price: 1.005 }] })).status).toBe(400);
    expect((await post('/orders/2/chargeback', { reason: 'again' })).status).toBe(409);
    expect((await post('/orders/99/chargeback', { reason: 'none' })).status).toBe(404);
    expect((await fetch(`${system.urls.order}/orders/99`)).status).toBe(404);
    expect(system.order.orders.list()).toHaveLength(ORDERS.length);
  });

  it('does not post, ship or notify twice when the same message is delivered again', async () => {
    const first = handledBy('billing', outcome.shipments[0]!.causedBy);
    const replayer = createService({ name: 'replayer', transport, logger });
    // Same id: the same fact published again, as a redelivery or a replay would bring it.
    await replayer.publish(
      orderSubmit,
      { ...ORDERS[0]!, id: 1, currency: 'EUR' },
      { id: first.id },
    );
    await waitFor('the duplicate handled by every consumer', 2000, async () =>
      ['billing', 'logistic', 'notification'].every(
        (s) => handled.filter((h) => h.service === s && h.envelope.id === first.id).length === 2,
      ),
    );
    expect(system.billing.books.ledger.journal()).toHaveLength(ORDERS.length + 1);
    expect(system.logistic.warehouse.list()).toHaveLength(ORDERS.length);
    expect(system.notification.outbox.list()).toHaveLength(2 * ORDERS.length);
    await replayer.stop();
  });

  function handledBy(service: string, messageId: string): Envelope {
    const found = handled.find((h) => h.service === service && h.envelope.id === messageId);
    if (!found) throw new Error(`${service} did not handle message ${messageId}`);
    return found.envelope;
  }
});

describe('when something else shares the broker', () => {
  it('a wait that times out says what the services held, naming the orders it did not place', async () => {
    const transport = memoryTransport();
    const system = await startEcommerce(transport, recordingLogger());
    try {
      // A stranger's order on the same exchange, as a test or a Celery producer would send it.
      const stranger = createService({ name: 'stranger', transport, logger: recordingLogger() });
      await stranger.publish(
        orderSubmit,
        { id: 9000, lines: [{ id: 1, quantity: 1, price: 1 }] },
        { version: 1 },
      );
      const failure = await runScenario(system.urls, () => {}, 1500).then(
        () => undefined,
        (error: Error) => error.message,
      );
      expect(failure).toMatch(
        /^timed out after 1500 ms waiting for: orders billed, shipped, notified and dispatched; saw journal entries 4 \(expected 3: orders #9000, #1, #2, #3\); shipments 4 \(expected 3: orders #9000, #1, #2, #3\); notifications 6 \(expected 6: orders #1, #2, #3\); orders #1 \w+, #2 \w+, #3 \w+$/,
      );
    } finally {
      await system.stop();
      await transport.close();
    }
  });
});

describe('the narration', () => {
  it('prints who did what to which order, with the downcast to version 1 where Logistic gets it', async () => {
    const transport = memoryTransport();
    const system = await startEcommerce(transport, recordingLogger());
    const lines: string[] = [];
    const stop = narrate(system, (line) => lines.push(line));
    try {
      await runScenario(system.urls, () => {});
    } finally {
      stop();
      await system.stop();
      await transport.close();
    }
    expect(lines).toContain('order        -> order.v2.submit        #1 (2 lines, 10.50)');
    expect(lines).toContain(
      'billing      <- order.v2.submit        #1: posted J-1 (Dr accounts-receivable 10.50 / Cr revenue 10.50)',
    );
    expect(lines).toContain(
      'logistic     <- order.v2.submit        #1 (downcast to v1): packed S-1 (3 items)',
    );
    expect(lines).toContain('billing      <- order.v1.chargeback    #2: posted J-4, reversing J-2');
    // Only Logistic is written against an older version than it receives.
    expect(lines.filter((l) => l.includes('downcast'))).toHaveLength(ORDERS.length);
    expect(lines.every((l) => !l.includes('upcast'))).toBe(true);
  });
});
