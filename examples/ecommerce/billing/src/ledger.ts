import { NonRetryableError } from 'tidings';

/** The accounts of the chart this example uses. */
export type AccountName = 'accounts-receivable' | 'revenue';

/** Whether an account grows with debits (assets) or with credits (revenue, liabilities). */
export type NormalSide = 'debit' | 'credit';

/** The chart of accounts: each account and its normal side. */
export const CHART: Readonly<Record<AccountName, NormalSide>> = Object.freeze({
  'accounts-receivable': 'debit',
  revenue: 'credit',
});

/** One side of a journal entry: an account debited or credited, in integer cents. */
export interface Posting {
  readonly account: AccountName;
  readonly side: 'debit' | 'credit';
  /** Positive integer cents. */
  readonly cents: number;
}

/** What a caller asks the ledger to post. */
export interface EntryDraft {
  readonly memo: string;
  readonly postings: readonly Posting[];
  /** The order the entry is about. */
  readonly orderId: number;
  /** The message that caused the entry: its audit trail back to the event. */
  readonly messageId: string;
  /** The entry this one reverses, if any. */
  readonly reverses?: string;
}

/** A posted, balanced journal entry. Entries are never changed: mistakes are reversed. */
export interface JournalEntry extends EntryDraft {
  /** `J-1`, `J-2`, ... in posting order. */
  readonly id: string;
  readonly postedAt: string;
}

/** The running totals of one account, in integer cents. */
export interface AccountBalance {
  readonly account: AccountName;
  readonly debits: number;
  readonly credits: number;
  /** Debits minus credits for a debit-normal account, credits minus debits otherwise. */
  readonly balance: number;
}

/** Every account's balance, plus the trial-balance totals (equal when the books balance). */
export interface TrialBalance {
  readonly accounts: readonly AccountBalance[];
  readonly totalDebits: number;
  readonly totalCredits: number;
}

/**
 * A journal entry breaks a rule of double entry (it does not balance, has a non-integer or
 * non-positive amount, an unknown account...). Retrying would break it again, so a handler that
 * lets it escape sends the message straight to the dead-letter queue.
 */
export class UnbalancedEntryError extends NonRetryableError {
  constructor(
    readonly memo: string,
    readonly problems: readonly string[],
  ) {
    super(`Journal entry "${memo}" cannot be posted: ${problems.join('; ')}.`);
  }
}

/**
 * A double-entry general ledger kept in memory. Every entry has at least one debit and one
 * credit, each a positive integer number of cents, and its debits equal its credits; so the sum of
 * all debits always equals the sum of all credits.
 */
export class Ledger {
  private readonly entries: JournalEntry[] = [];
  private readonly totals = new Map<AccountName, { debits: number; credits: number }>();

  /** Checks a draft against the rules of double entry and posts it, or throws {@link UnbalancedEntryError}. */
  post(draft: EntryDraft, now: Date = new Date()): JournalEntry {
    const problems = checkEntry(draft);
    if (problems.length > 0) throw new UnbalancedEntryError(draft.memo, problems);
    const entry: JournalEntry = Object.freeze({
      ...draft,
      postings: Object.freeze([...draft.postings]),
      id: `J-${this.entries.length + 1}`,
      postedAt: now.toISOString(),
    });
    this.entries.push(entry);
    for (const p of entry.postings) this.apply(p);
    return entry;
  }

  /**
   * Posts the mirror image of an entry (every debit becomes a credit and the reverse), which
   * cancels its effect on every account without erasing history.
   */
  reverse(entryId: string, cause: { memo: string; messageId: string }): JournalEntry {
    const original = this.entry(entryId);
    if (!original) throw new NonRetryableError(`There is no journal entry ${entryId} to reverse.`);
    return this.post(reversingDraft(original, cause));
  }

  /** The entry with this id, if posted. */
  entry(id: string): JournalEntry | undefined {
    return this.entries.find((e) => e.id === id);
  }

  /** Every posted entry, oldest first. */
  journal(): readonly JournalEntry[] {
    return [...this.entries];
  }

  /** Every account of the chart with its totals, and the totals of all debits and credits. */
  trialBalance(): TrialBalance {
    const accounts = (Object.keys(CHART) as AccountName[]).map((account) =>
      this.balanceOf(account),
    );
    return {
      accounts,
      totalDebits: accounts.reduce((sum, a) => sum + a.debits, 0),
      totalCredits: accounts.reduce((sum, a) => sum + a.credits, 0),
    };
  }

  /** The totals and the balance of one account. */
  balanceOf(account: AccountName): AccountBalance {
    const { debits, credits } = this.totals.get(account) ?? { debits: 0, credits: 0 };
    const balance = CHART[account] === 'debit' ? debits - credits : credits - debits;
    return { account, debits, credits, balance };
  }

  private apply(p: Posting): void {
    const t = this.totals.get(p.account) ?? { debits: 0, credits: 0 };
    if (p.side === 'debit') t.debits += p.cents;
    else t.credits += p.cents;
    this.totals.set(p.account, t);
  }
}

/**
 * The mirror image of an entry (every debit becomes a credit and the reverse, debits first),
 * which cancels its effect on every account without erasing history.
 */
export function reversingDraft(
  original: JournalEntry,
  cause: { memo: string; messageId: string },
): EntryDraft {
  return {
    memo: cause.memo,
    orderId: original.orderId,
    messageId: cause.messageId,
    reverses: original.id,
    postings: original.postings
      .map((p): Posting => ({ ...p, side: p.side === 'debit' ? 'credit' : 'debit' }))
      .sort(debitsFirst),
  };
}

/** Lists every way a draft breaks double entry; empty when it may be posted. */
export function checkEntry(draft: EntryDraft): string[] {
  const problems = draft.postings.flatMap(checkPosting);
  const hasSide = (side: Posting['side']) => draft.postings.some((p) => p.side === side);
  if (!hasSide('debit')) problems.push('it has no debit');
  if (!hasSide('credit')) problems.push('it has no credit');
  const debits = sumOf(draft.postings, 'debit');
  const credits = sumOf(draft.postings, 'credit');
  // Sums of invalid amounts say nothing useful, so balance is checked only on valid ones.
  if (problems.length === 0 && debits !== credits) {
    problems.push(`debits (${debits} cents) do not equal credits (${credits} cents)`);
  }
  return problems;
}

function checkPosting(p: Posting, index: number): string[] {
  const problems: string[] = [];
  const where = `posting ${index + 1}`;
  if (!Object.hasOwn(CHART, p.account)) problems.push(`${where}: unknown account "${p.account}"`);
  if (p.side !== 'debit' && p.side !== 'credit') {
    problems.push(`${where}: side must be "debit" or "credit"`);
  }
  if (!Number.isSafeInteger(p.cents) || p.cents <= 0) {
    problems.push(`${where}: amount must be a positive integer of cents (got ${p.cents})`);
  }
  return problems;
}

function debitsFirst(a: Posting, b: Posting): number {
  return Number(a.side === 'credit') - Number(b.side === 'credit');
}

function sumOf(postings: readonly Posting[], side: Posting['side']): number {
  return postings.filter((p) => p.side === side).reduce((sum, p) => sum + p.cents, 0);
}
