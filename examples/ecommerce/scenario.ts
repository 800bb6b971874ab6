import type { JournalEntry, TrialBalance } from '@ecommerce/billing';
import { type Customer, formatCents, type OrderLine, orderTotalCents } from '@ecommerce/contracts';
import type { Shipment } from '@ecommerce/logistic';
import type { Notification } from '@ecommerce/notification';
import type { StoredOrder } from '@ecommerce/order';

/** Base URL of each service's HTTP API. */
export interface ServiceUrls {
  readonly order: string;
  readonly billing: string;
  readonly logistic: string;
  readonly notification: string;
}

/** What the services answer once the scenario has settled. */
export interface Outcome {
  readonly orders: readonly StoredOrder[];
  readonly balances: TrialBalance & { readonly balanced: boolean };
  readonly journal: readonly JournalEntry[];
  readonly shipments: readonly Shipment[];
  readonly notifications: readonly Notification[];
}

/** The orders the scenario places, in order; they get ids 1, 2, 3. */
export const ORDERS: readonly { customer: Customer; lines: OrderLine[] }[] = [
  {
    // The seed's own example: 2 × 3 + 1 × 4.5.
    customer: { name: 'Ada', email: 'ada@example.com' },
    lines: [
      { id: 1, quantity: 2, price: 3 },
      { id: 2, quantity: 1, price: 4.5 },
    ],
  },
  {
    customer: { name: 'Grace', email: 'grace@example.com' },
    lines: [{ id: 1, quantity: 3, price: 19.99 }],
  },
  {
    // 3 × 0.1 + 0.2 is 0.5000000000000001 in floating point; the ledger must say 0.50.
    customer: { name: 'Alan', email: 'alan@example.com' },
    lines: [
      { id: 1, quantity: 3, price: 0.1 },
      { id: 2, quantity: 1, price: 0.2 },
    ],
  },
];

/** The order the scenario charges back once everything is dispatched, and why. */
export const CHARGEBACK = { orderId: 2, reason: 'card reported stolen' } as const;

/**
 * Plays the scenario against running services, through their HTTP APIs only, so it works the
 * same whether they run in this process or as separate processes on a real broker: places the
 * orders, waits until they are billed, shipped and notified, charges one back, waits until it
 * is reversed, and returns what the services then answer. `say` reports each client step: `>>` an
 * HTTP call, `..` a wait that ended. A wait that times out says what the services answered last.
 */
export async function runScenario(
  urls: ServiceUrls,
  say: (line: string) => void,
  timeoutMs = 5000,
): Promise<Outcome> {
  for (const draft of ORDERS) {
    say(`>> POST /orders (${draft.customer.name}, ${plural(draft.lines.length, 'line')})`);
    await send('POST', `${urls.order}/orders`, draft, 201);
  }
  await waitFor(
    'orders billed, shipped, notified and dispatched',
    timeoutMs,
    async () => {
      const o = await observe(urls);
      return (
        o.journal.length === ORDERS.length &&
        o.shipments.length === ORDERS.length &&
        o.notifications.length === 2 * ORDERS.length &&
        o.orders.every((order) => order.status === 'dispatched')
      );
    },
    async () => describeProgress(await observe(urls), ORDERS.length),
  );
  say('.. settled: every order is billed, shipped, notified and dispatched');
  const path = `/orders/${CHARGEBACK.orderId}/chargeback`;
  say(`>> POST ${path} (${CHARGEBACK.reason})`);
  await send('POST', `${urls.order}${path}`, { reason: CHARGEBACK.reason }, 200);
  await waitFor(
    'chargeback reversed in the ledger',
    timeoutMs,
    async () => {
      const { journal } = await observe(urls);
      return journal.some((entry) => entry.reverses !== undefined);
    },
    async () => describeProgress(await observe(urls), ORDERS.length + 1),
  );
  say('.. settled: the chargeback is reversed in the ledger');
  return observe(urls);
}

/**
 * What the services hold, counted against what the scenario expects, with the orders each count
 * is about: `journal 5 entries (expected 3: orders #1, #2, #3, #9000, #9001)`. Orders the
 * scenario did not place stand out: something else put them on the broker.
 */
export function describeProgress(o: Outcome, entries: number): string {
  const orders = (ids: readonly number[]) =>
    ids.length === 0 ? '' : `: orders ${[...new Set(ids)].map((id) => `#${id}`).join(', ')}`;
  const count = (what: string, n: number, expected: number, ids: readonly number[]) =>
    `${what} ${n} (expected ${expected}${orders(ids)})`;
  const statuses = o.orders.map((order) => `#${order.id} ${order.status}`).join(', ');
  return [
    count(
      'journal entries',
      o.journal.length,
      entries,
      o.journal.map((e) => e.orderId),
    ),
    count(
      'shipments',
      o.shipments.length,
      ORDERS.length,
      o.shipments.map((s) => s.orderId),
    ),
    count(
      'notifications',
      o.notifications.length,
      2 * ORDERS.length,
      o.notifications.map((n) => n.orderId),
    ),
    `orders ${statuses || 'none'}`,
  ].join('; ');
}

/** Reads the state of every service over HTTP. */
export async function observe(urls: ServiceUrls): Promise<Outcome> {
  const [orders, balances, journal, shipments, notifications] = await Promise.all([
    send<Outcome['orders']>('GET', `${urls.order}/orders`),
    send<Outcome['balances']>('GET', `${urls.billing}/balances`),
    send<Outcome['journal']>('GET', `${urls.billing}/journal`),
    send<Outcome['shipments']>('GET', `${urls.logistic}/shipments`),
    send<Outcome['notifications']>('GET', `${urls.notification}/notifications`),
  ]);
  return { orders, balances, journal, shipments, notifications };
}

/**
 * Polls `settled` every 20 ms until it returns true; rejects after `timeoutMs` naming what it
 * waited for and, when `seen` is given, what it saw last (`seen` is asked once, at the timeout).
 * Asynchronous work has no "done" signal, so a bounded poll is the honest wait.
 */
export async function waitFor(
  what: string,
  timeoutMs: number,
  settled: () => Promise<boolean>,
  seen?: () => Promise<string>,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await settled())) {
    if (Date.now() > deadline) {
      const saw = seen
        ? await seen().then(
            (text) => `; saw ${text}`,
            (error: unknown) => `; could not read what the services hold: ${String(error)}`,
          )
        : '';
      throw new Error(`timed out after ${timeoutMs} ms waiting for: ${what}${saw}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** `1 line`, `2 lines`. */
export function plural(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? '' : 's'}`;
}

/** Sends a JSON request and returns the parsed JSON answer; rejects on an unexpected status. */
async function send<T = unknown>(
  method: 'GET' | 'POST',
  url: string,
  body?: unknown,
  expect = 200,
): Promise<T> {
  const response = await fetch(url, {
    method,
    ...(body !== undefined && {
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    }),
  });
  const text = await response.text();
  if (response.status !== expect) {
    throw new Error(`${method} ${url} answered ${response.status} (expected ${expect}): ${text}`);
  }
  return JSON.parse(text) as T;
}

/**
 * Lists every way an outcome differs from what the scenario should produce; empty when right.
 * Expected amounts are derived from {@link ORDERS} in integer cents.
 */
export function checkOutcome(outcome: Outcome): string[] {
  const problems: string[] = [];
  const expect = (ok: boolean, what: string) => {
    if (!ok) problems.push(what);
  };
  const totals = ORDERS.map((draft) => orderTotalCents(draft));
  const kept = totals.reduce((a, b) => a + b, 0) - (totals[CHARGEBACK.orderId - 1] ?? 0);
  const { balances, journal, orders, shipments, notifications } = outcome;
  expect(
    balances.balanced && balances.totalDebits === balances.totalCredits,
    'debits equal credits',
  );
  for (const account of balances.accounts) {
    expect(account.balance === kept, `${account.account} is ${formatCents(kept)}`);
  }
  expect(journal.length === ORDERS.length + 1, `${ORDERS.length + 1} journal entries`);
  const reversal = journal.find((entry) => entry.reverses !== undefined);
  expect(reversal?.orderId === CHARGEBACK.orderId, `a reversal for order #${CHARGEBACK.orderId}`);
  const shipped = new Set(shipments.map((s) => s.orderId));
  expect(
    shipments.length === ORDERS.length && shipped.size === ORDERS.length,
    'one shipment per order',
  );
  for (const order of orders) {
    const status = order.id === CHARGEBACK.orderId ? 'charged_back' : 'dispatched';
    expect(order.status === status && order.shipment !== undefined, `order #${order.id} ${status}`);
  }
  const kinds = notifications.map((n) => `${n.orderId}:${n.kind}`).sort();
  const wanted = orders
    .flatMap((o) => [`${o.id}:order-confirmed`, `${o.id}:order-dispatched`])
    .sort();
  expect(kinds.join() === wanted.join(), 'a confirmation and a dispatch notice per order');
  return problems;
}
