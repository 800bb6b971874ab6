import { type Chargeback, type OrderV2, orderTotalCents, toCents } from '@ecommerce/contracts';
import { type Logger, NonRetryableError } from 'tidings';
import { type JournalEntry, Ledger } from './ledger.js';

/**
 * Billing's domain: turns order events into journal entries. A submitted order is a sale on
 * credit (debit accounts-receivable, credit revenue, for the order's total); a chargeback posts the
 * reversing entry of that sale.
 */
export class Books {
  /** The general ledger the entries go to. */
  readonly ledger = new Ledger();
  /**
   * Ids of the messages already turned into entries. Delivery is at-least-once: the same message
   * can arrive twice (a redelivery after a crash, a replay). This set keeps one process from
   * posting twice; it does not survive a restart, and a durable idempotency store shared by every
   * replica (planned in Tidings) is what production needs.
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
    const cents = orderTotalCents(order);
    const entry = this.ledger.post({
      memo: `Sale, order #${order.id} (${order.currency})`,
      orderId: order.id,
      messageId,
      postings: [
        { account: 'accounts-receivable', side: 'debit', cents },
        { account: 'revenue', side: 'credit', cents },
      ],
    });
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
    if (!saleId)
      throw new Error(`order #${orderId} has no sale entry yet; the chargeback will be retried`);
    const done = this.reversalOf.get(orderId);
    if (done) {
      this.log.warn(
        `order #${orderId} was already reversed in ${done}; ignoring message ${messageId}`,
      );
      this.processed.add(messageId);
      return undefined;
    }
    this.assertFullAmount(chargeback, saleId);
    const entry = this.ledger.reverse(saleId, {
      memo: `Chargeback, order #${orderId}: ${chargeback.reason}`,
      messageId,
    });
    this.reversalOf.set(orderId, entry.id);
    this.processed.add(messageId);
    return entry;
  }

  private seen(messageId: string): boolean {
    if (!this.processed.has(messageId)) return false;
    this.log.info(`message ${messageId} was already posted; skipping the duplicate`);
    return true;
  }

  private assertFullAmount(chargeback: Chargeback, saleId: string): void {
    const sale = this.ledger.entry(saleId);
    const saleCents = sale?.postings.find((p) => p.side === 'debit')?.cents ?? 0;
    if (toCents(chargeback.amount) !== saleCents) {
      throw new NonRetryableError(
        `chargeback of order #${chargeback.orderId} is ${toCents(chargeback.amount)} cents but its ` +
          `sale ${saleId} is ${saleCents} cents; only full chargebacks are supported`,
      );
    }
  }
}
