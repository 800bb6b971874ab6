import { type Chargeback, type OrderV2, orderTotalCents, toCents } from '@ecommerce/contracts';
import { type Logger, NonRetryableError } from 'tidings';
import { type EntryDraft, type JournalEntry, Ledger, type TrialBalance } from './ledger.js';

/**
 * What Billing's handlers and HTTP API need from its books, wherever they are kept: in memory
 * ({@link Books}) or in PostgreSQL (`PostgresBooks`). Each record method returns the entry it
 * posted, or `undefined` when the message or the order was already posted.
 */
export interface BillingBooks {
  /** Posts the sale of a submitted order, once per message and once per order. */
  recordSale(
    order: OrderV2,
    messageId: string,
  ): JournalEntry | undefined | Promise<JournalEntry | undefined>;
  /** Posts the reversal of a charged-back order's sale, once per message and once per order. */
  recordChargeback(
    chargeback: Chargeback,
    messageId: string,
  ): JournalEntry | undefined | Promise<JournalEntry | undefined>;
  /** Every account's totals and the trial-balance totals. */
  trialBalance(): TrialBalance | Promise<TrialBalance>;
  /** Every posted entry, oldest first. */
  journal(): readonly JournalEntry[] | Promise<readonly JournalEntry[]>;
}

/** The entry of a sale on credit: debit accounts-receivable, credit revenue, the order's total. */
export function saleDraft(order: OrderV2, messageId: string): EntryDraft {
  const cents = orderTotalCents(order);
  return {
    memo: `Sale, order #${order.id} (${order.currency})`,
    orderId: order.id,
    messageId,
    postings: [
      { account: 'accounts-receivable', side: 'debit', cents },
      { account: 'revenue', side: 'credit', cents },
    ],
  };
}

/** The memo of the entry reversing a charged-back order's sale. */
export function chargebackMemo(chargeback: Chargeback): string {
  return `Chargeback, order #${chargeback.orderId}: ${chargeback.reason}`;
}

/**
 * Throws a {@link NonRetryableError} when a chargeback's amount is not its sale's: partial
 * chargebacks need a human, and no retry will change the amount.
 */
export function assertFullChargeback(chargeback: Chargeback, sale: JournalEntry): void {
  const saleCents = sale.postings.find((p) => p.side === 'debit')?.cents ?? 0;
  if (toCents(chargeback.amount) !== saleCents) {
    throw new NonRetryableError(
      `chargeback of order #${chargeback.orderId} is ${toCents(chargeback.amount)} cents but its ` +
        `sale ${sale.id} is ${saleCents} cents; only full chargebacks are supported`,
    );
  }
}

/** The plain (retryable) error of a chargeback that overtook its sale. */
export function saleNotPostedYet(orderId: number): Error {
  return new Error(`order #${orderId} has no sale entry yet; the chargeback will be retried`);
}

/**
 * Billing's domain, in memory: turns order events into journal entries. A submitted order is a
 * sale on credit (debit accounts-receivable, credit revenue, for the order's total); a chargeback
 * posts the reversing entry of that sale. Everything is lost when the process ends; with a
 * database, `PostgresBooks` keeps the same books durably.
 */
export class Books implements BillingBooks {
  /** The general ledger the entries go to. */
  readonly ledger = new Ledger();
  /**
   * Ids of the messages already turned into entries. Delivery is at-least-once: the same message
   * can arrive twice (a redelivery after a crash, a replay). This set keeps one process from
   * posting twice; it does not survive a restart and is not shared between replicas. For that,
   * `PostgresBooks` records each id in the same transaction as its entries.
   */
  private readonly processed = new Set<string>();
  private readonly saleOf = new Map<number, string>();
  private readonly reversalOf = new Map<number, string>();

  constructor(private readonly log: Logger) {}

  /** Posts the sale of a submitted order. Returns `undefined` when it was already posted. */
  recordSale(order: OrderV2, messageId: string): JournalEntry | undefined {
    if (this.seen(messageId)) return undefined;
    const existing = this.saleOf.get(order.id);
    if (existing) {
      this.log.warn(
        `order #${order.id} was already billed in ${existing}; ignoring message ${messageId}`,
      );
      this.processed.add(messageId);
      return undefined;
    }
    const entry = this.ledger.post(saleDraft(order, messageId));
    this.saleOf.set(order.id, entry.id);
    this.processed.add(messageId);
    return entry;
  }

  /**
   * Reverses the sale of a charged-back order. Throws a plain (retryable) error when the sale is
   * not posted yet: the chargeback travels on another queue than the submit and may overtake it.
   * Throws a {@link NonRetryableError} when the amount is not the sale's: partial chargebacks
   * need a human.
   */
  recordChargeback(chargeback: Chargeback, messageId: string): JournalEntry | undefined {
    if (this.seen(messageId)) return undefined;
    const { orderId } = chargeback;
    const saleId = this.saleOf.get(orderId);
    if (!saleId) throw saleNotPostedYet(orderId);
    const done = this.reversalOf.get(orderId);
    if (done) {
      this.log.warn(
        `order #${orderId} was already reversed in ${done}; ignoring message ${messageId}`,
      );
      this.processed.add(messageId);
      return undefined;
    }
    assertFullChargeback(chargeback, this.ledger.entry(saleId)!);
    const entry = this.ledger.reverse(saleId, { memo: chargebackMemo(chargeback), messageId });
    this.reversalOf.set(orderId, entry.id);
    this.processed.add(messageId);
    return entry;
  }

  /** The ledger's trial balance. */
  trialBalance(): TrialBalance {
    return this.ledger.trialBalance();
  }

  /** The ledger's entries, oldest first. */
  journal(): readonly JournalEntry[] {
    return this.ledger.journal();
  }

  private seen(messageId: string): boolean {
    if (!this.processed.has(messageId)) return false;
    this.log.info(`message ${messageId} was already posted; skipping the duplicate`);
    return true;
  }
}
