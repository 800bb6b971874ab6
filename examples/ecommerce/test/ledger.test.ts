import {
  Books,
  checkEntry,
  type EntryDraft,
  Ledger,
  UnbalancedEntryError,
} from '@ecommerce/billing';
import type { OrderV2 } from '@ecommerce/contracts';
import { NonRetryableError, silentLogger } from 'tidings';
import { describe, expect, it } from 'vitest';

const sale = (cents: number, overrides: Partial<EntryDraft> = {}): EntryDraft => ({
  memo: 'Sale',
  orderId: 1,
  messageId: 'm-1',
  postings: [
    { account: 'accounts-receivable', side: 'debit', cents },
    { account: 'revenue', side: 'credit', cents },
  ],
  ...overrides,
});

describe('Ledger', () => {
  it('posts a balanced entry and numbers entries J-1, J-2, ...', () => {
    const ledger = new Ledger();
    expect(ledger.post(sale(1050)).id).toBe('J-1');
    expect(ledger.post(sale(50)).id).toBe('J-2');
    expect(ledger.trialBalance()).toEqual({
      accounts: [
        { account: 'accounts-receivable', debits: 1100, credits: 0, balance: 1100 },
        { account: 'revenue', debits: 0, credits: 1100, balance: 1100 },
      ],
      totalDebits: 1100,
      totalCredits: 1100,
    });
  });

  it('accepts a split entry whose debits and credits sum to the same amount', () => {
    const split = sale(0, {
      postings: [
        { account: 'accounts-receivable', side: 'debit', cents: 700 },
        { account: 'accounts-receivable', side: 'debit', cents: 300 },
        { account: 'revenue', side: 'credit', cents: 1000 },
      ],
    });
    expect(checkEntry(split)).toEqual([]);
  });

  it('refuses an unbalanced entry with a non-retryable error, and posts nothing', () => {
    const ledger = new Ledger();
    const unbalanced = sale(0, {
      postings: [
        { account: 'accounts-receivable', side: 'debit', cents: 1000 },
        { account: 'revenue', side: 'credit', cents: 999 },
      ],
    });
    const error = catchError(() => ledger.post(unbalanced));
    expect(error).toBeInstanceOf(UnbalancedEntryError);
    expect(error).toBeInstanceOf(NonRetryableError);
    expect((error as UnbalancedEntryError).problems).toEqual([
      'debits (1000 cents) do not equal credits (999 cents)',
    ]);
    expect(ledger.journal()).toEqual([]);
    expect(ledger.trialBalance().totalDebits).toBe(0);
  });

  it.each([
    ['a fraction of a cent', 10.5, 'amount must be a positive integer of cents (got 10.5)'],
    ['zero', 0, 'amount must be a positive integer of cents (got 0)'],
    ['a negative amount', -5, 'amount must be a positive integer of cents (got -5)'],
    ['NaN', Number.NaN, 'amount must be a positive integer of cents (got NaN)'],
  ])('refuses %s', (_, cents, problem) => {
    expect(checkEntry(sale(cents))).toEqual([`posting 1: ${problem}`, `posting 2: ${problem}`]);
  });

  it('refuses an entry with only one side, or an unknown account', () => {
    const onlyDebit = sale(0, {
      postings: [{ account: 'accounts-receivable', side: 'debit', cents: 100 }],
    });
    expect(checkEntry(onlyDebit)).toEqual(['it has no credit']);
    expect(checkEntry(sale(0, { postings: [] }))).toEqual(['it has no debit', 'it has no credit']);
    const unknown = JSON.parse(
      '{"memo":"x","orderId":1,"messageId":"m","postings":[{"account":"cash","side":"debit","cents":1},{"account":"revenue","side":"credit","cents":1}]}',
    ) as EntryDraft;
    expect(checkEntry(unknown)).toEqual(['posting 1: unknown account "cash"']);
  });

  it('reverses an entry with its mirror image, bringing the accounts back to zero', () => {
    const ledger = new Ledger();
    const original = ledger.post(sale(5997, { orderId: 2 }));
    const reversal = ledger.reverse(original.id, { memo: 'Chargeback', messageId: 'm-2' });
    expect(reversal).toMatchObject({ id: 'J-2', orderId: 2, reverses: 'J-1', messageId: 'm-2' });
    expect(reversal.postings).toEqual([
      { account: 'revenue', side: 'debit', cents: 5997 },
      { account: 'accounts-receivable', side: 'credit', cents: 5997 },
    ]);
    expect(ledger.trialBalance().accounts.map((a) => a.balance)).toEqual([0, 0]);
    expect(catchError(() => ledger.reverse('J-9', { memo: 'x', messageId: 'm' }))).toBeInstanceOf(
      NonRetryableError,
    );
  });
});

describe('Books', () => {
  const order: OrderV2 = {
    id: 3,
    currency: 'EUR',
    lines: [
      { id: 1, quantity: 3, price: 0.1 },
      { id: 2, quantity: 1, price: 0.2 },
    ],
  };

  it('bills an order in exact cents (3 × 0.10 + 0.20 is 50 cents, not 0.5000000000000001)', () => {
    const books = new Books(silentLogger);
    expect(books.recordSale(order, 'm-1')?.postings.map((p) => p.cents)).toEqual([50, 50]);
  });

  it('posts once per message id, and once per order', () => {
    const books = new Books(silentLogger);
    books.recordSale(order, 'm-1');
    expect(books.recordSale(order, 'm-1')).toBeUndefined();
    expect(books.recordSale(order, 'm-other')).toBeUndefined();
    expect(books.ledger.journal()).toHaveLength(1);
  });

  it('retries a chargeback that overtook its sale, and dead-letters a partial one', () => {
    const books = new Books(silentLogger);
    const early = catchError(() =>
      books.recordChargeback({ orderId: 3, amount: 0.5, reason: 'fraud' }, 'c-1'),
    );
    expect(early).toBeInstanceOf(Error);
    expect(early).not.toBeInstanceOf(NonRetryableError);
    books.recordSale(order, 'm-1');
    const partial = catchError(() =>
      books.recordChargeback({ orderId: 3, amount: 0.2, reason: 'fraud' }, 'c-2'),
    );
    expect(partial).toBeInstanceOf(NonRetryableError);
    const reversal = books.recordChargeback({ orderId: 3, amount: 0.5, reason: 'fraud' }, 'c-3');
    expect(reversal?.reverses).toBe('J-1');
    expect(
      books.recordChargeback({ orderId: 3, amount: 0.5, reason: 'fraud' }, 'c-3'),
    ).toBeUndefined();
    expect(books.ledger.trialBalance().accounts.map((a) => a.balance)).toEqual([0, 0]);
  });
});

function catchError(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new Error('expected an error');
}
