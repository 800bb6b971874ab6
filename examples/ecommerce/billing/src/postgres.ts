import type { Chargeback, OrderV2 } from '@ecommerce/contracts';
import { consoleLogger, type Logger } from 'tidings';
import { type PgClientLike, type PgPoolLike, PostgresInbox } from 'tidings/postgres';
import {
  assertFullChargeback,
  type BillingBooks,
  chargebackMemo,
  saleDraft,
  saleNotPostedYet,
} from './books.js';
import {
  type AccountName,
  CHART,
  checkEntry,
  type EntryDraft,
  type JournalEntry,
  type Posting,
  reversingDraft,
  type TrialBalance,
  UnbalancedEntryError,
} from './ledger.js';

/** Options of {@link PostgresBooks}. */
export interface PostgresBooksOptions {
  /** A `pg` pool (`new pg.Pool({ connectionString })`). The books never close it. */
  readonly pool: PgPoolLike;
  /**
   * Prefix of the four tables: `<prefix>journal`, `<prefix>postings`, `<prefix>journal_counter`
   * and the inbox, `<prefix>inbox`. Lowercase letters, digits and `_`.
   * @defaultValue `'billing_'`
   */
  readonly tablePrefix?: string | undefined;
  /** @defaultValue warnings and errors to stderr */
  readonly logger?: Logger | undefined;
}

/** The inbox scope: every key is `billing:<message id>`, as the service's own name would make it. */
const SCOPE = 'billing';

interface EntryRow {
  entry_no: number;
  memo: string;
  order_id: number;
  message_id: string;
  reverses: number | null;
  posted_at: Date;
}

interface PostingRow {
  entry_no: number;
  account: AccountName;
  side: Posting['side'];
  cents: string;
}

/**
 * Billing's books in PostgreSQL, with exactly-once effects: each message's entries and the record
 * that the message was processed (its id in the inbox table) commit in one transaction, through
 * `PostgresInbox` from `tidings/postgres`. A message delivered twice, to this process or to another
 * replica, before or after a restart, finds its id recorded and posts nothing; a crash before the
 * commit leaves neither the entries nor the record, so the redelivery posts them.
 *
 * The books' own rules hold across replicas too: every posting transaction first locks the
 * journal's counter row, so checks such as "this order has no sale yet" and the gapless entry
 * numbers (`J-1`, `J-2`, ...) are decided one transaction at a time; and unique indexes refuse a
 * second sale of an order or a second reversal of a sale whatever the code does.
 */
export class PostgresBooks implements BillingBooks {
  /** The tables' names, as used in SQL. */
  readonly tables: {
    readonly journal: string;
    readonly postings: string;
    readonly counter: string;
    readonly inbox: string;
  };
  private readonly pool: PgPoolLike;
  private readonly inbox: PostgresInbox;
  private readonly log: Logger;
  private readonly prefix: string;

  constructor(options: PostgresBooksOptions) {
    const prefix = options.tablePrefix ?? 'billing_';
    if (!/^[a-z_][a-z0-9_]{0,40}$/.test(prefix)) {
      throw new TypeError(
        `tablePrefix must be lowercase letters, digits and _ (got ${JSON.stringify(prefix)})`,
      );
    }
    this.prefix = prefix;
    this.pool = options.pool;
    this.log = options.logger ?? consoleLogger('billing');
    this.tables = {
      journal: `${prefix}journal`,
      postings: `${prefix}postings`,
      counter: `${prefix}journal_counter`,
      inbox: `${prefix}inbox`,
    };
    this.inbox = new PostgresInbox({ pool: this.pool, table: this.tables.inbox, logger: this.log });
  }

  /**
   * Creates the tables if they do not exist. Safe to run from several replicas at once (an
   * advisory lock serialises them).
   */
  async ensureSchema(): Promise<void> {
    const { journal, postings, counter } = this.tables;
    const p = this.prefix;
    await this.pool.query(`SELECT pg_advisory_xact_lock(hashtext('ecommerce:billing:${p}'));
CREATE TABLE IF NOT EXISTS ${journal} (
  entry_no integer PRIMARY KEY,
  kind text NOT NULL CHECK (kind IN ('sale', 'reversal')),
  memo text NOT NULL,
  order_id integer NOT NULL,
  message_id text NOT NULL,
  reverses integer REFERENCES ${journal} (entry_no),
  posted_at timestamptz NOT NULL DEFAULT now(),
  CHECK ((kind = 'reversal') = (reverses IS NOT NULL))
);
CREATE UNIQUE INDEX IF NOT EXISTS ${p}journal_one_sale_per_order ON ${journal} (order_id) WHERE kind = 'sale';
CREATE UNIQUE INDEX IF NOT EXISTS ${p}journal_one_reversal_per_entry ON ${journal} (reverses) WHERE kind = 'reversal';
CREATE TABLE IF NOT EXISTS ${postings} (
  entry_no integer NOT NULL REFERENCES ${journal} (entry_no),
  line smallint NOT NULL,
  account text NOT NULL,
  side text NOT NULL CHECK (side IN ('debit', 'credit')),
  cents bigint NOT NULL CHECK (cents > 0),
  PRIMARY KEY (entry_no, line)
);
CREATE TABLE IF NOT EXISTS ${counter} (
  only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
  last_entry_no integer NOT NULL
);
INSERT INTO ${counter} (only_row, last_entry_no) VALUES (true, 0) ON CONFLICT DO NOTHING;`);
    await this.inbox.ensureSchema();
  }

  /**
   * Posts the sale of a submitted order, in one transaction with the record of `messageId`.
   * Returns `undefined` when the message was processed before (a duplicate) or the order was
   * already billed by another message.
   */
  async recordSale(order: OrderV2, messageId: string): Promise<JournalEntry | undefined> {
    return this.once(messageId, async (db) => {
      await this.lockJournal(db);
      const existing = await this.entryOf(db, order.id, 'sale');
      if (existing) {
        this.log.warn(
          `order #${order.id} was already billed in ${existing.id}; ignoring message ${messageId}`,
        );
        return undefined;
      }
      return this.post(db, 'sale', saleDraft(order, messageId));
    });
  }

  /**
   * Posts the entry reversing a charged-back order's sale, in one transaction with the record of
   * `messageId`. Throws a plain (retryable) error when the sale is not posted yet, and a
   * `NonRetryableError` when the amount is not the sale's; either way nothing is recorded.
   */
  async recordChargeback(
    chargeback: Chargeback,
    messageId: string,
  ): Promise<JournalEntry | undefined> {
    return this.once(messageId, async (db) => {
      await this.lockJournal(db);
      const { orderId } = chargeback;
      const sale = await this.entryOf(db, orderId, 'sale');
      if (!sale) throw saleNotPostedYet(orderId);
      const done = await this.entryOf(db, orderId, 'reversal');
      if (done) {
        this.log.warn(
          `order #${orderId} was already reversed in ${done.id}; ignoring message ${messageId}`,
        );
        return undefined;
      }
      assertFullChargeback(chargeback, sale);
      return this.post(
        db,
        'reversal',
        reversingDraft(sale, { memo: chargebackMemo(chargeback), messageId }),
      );
    });
  }

  /** Every account of the chart with its totals, and the totals of all debits and credits. */
  async trialBalance(): Promise<TrialBalance> {
    const { rows } = await this.pool.query(
      `SELECT account,
              coalesce(sum(cents) FILTER (WHERE side = 'debit'), 0) AS debits,
              coalesce(sum(cents) FILTER (WHERE side = 'credit'), 0) AS credits
       FROM ${this.tables.postings} GROUP BY account`,
    );
    const totals = new Map(rows.map((r) => [r.account as string, r]));
    const accounts = (Object.keys(CHART) as AccountName[]).map((account) => {
      const debits = Number(totals.get(account)?.debits ?? 0);
      const credits = Number(totals.get(account)?.credits ?? 0);
      const balance = CHART[account] === 'debit' ? debits - credits : credits - debits;
      return { account, debits, credits, balance };
    });
    return {
      accounts,
      totalDebits: accounts.reduce((sum, a) => sum + a.debits, 0),
      totalCredits: accounts.reduce((sum, a) => sum + a.credits, 0),
    };
  }

  /** Every posted entry, oldest first. */
  async journal(): Promise<readonly JournalEntry[]> {
    return this.entries(this.pool, '');
  }

  /** Runs `post` once per message id, in the inbox's transaction; a duplicate posts nothing. */
  private async once(
    messageId: string,
    post: (db: PgClientLike) => Promise<JournalEntry | undefined>,
  ): Promise<JournalEntry | undefined> {
    const result = await this.inbox.run(`${SCOPE}:${messageId}`, post);
    if (result.status === 'duplicate') {
      this.log.info(`message ${messageId} was already posted; skipping the duplicate`);
      return undefined;
    }
    return result.value;
  }

  /**
   * Locks the journal's counter row until the transaction ends. Every transaction that posts
   * takes it before reading what is posted, so two replicas never both decide that an order has
   * no sale yet, and entry numbers have no gaps (a rolled-back transaction gives its number back).
   */
  private async lockJournal(db: PgClientLike): Promise<void> {
    await db.query(`SELECT last_entry_no FROM ${this.tables.counter} FOR UPDATE`);
  }

  private async post(
    db: PgClientLike,
    kind: 'sale' | 'reversal',
    draft: EntryDraft,
  ): Promise<JournalEntry> {
    const problems = checkEntry(draft);
    if (problems.length > 0) throw new UnbalancedEntryError(draft.memo, problems);
    const numbered = await db.query(
      `UPDATE ${this.tables.counter} SET last_entry_no = last_entry_no + 1 RETURNING last_entry_no`,
    );
    const no = Number(numbered.rows[0]!.last_entry_no);
    const inserted = await db.query(
      `INSERT INTO ${this.tables.journal} (entry_no, kind, memo, order_id, message_id, reverses)
       VALUES ($1, $2, $3, $4, $5, $6) RETURNING posted_at`,
      [no, kind, draft.memo, draft.orderId, draft.messageId, entryNumber(draft.reverses)],
    );
    await db.query(
      `INSERT INTO ${this.tables.postings} (entry_no, line, account, side, cents)
       SELECT $1, line, account, side, cents
       FROM unnest($2::text[], $3::text[], $4::bigint[]) WITH ORDINALITY AS p(account, side, cents, line)`,
      [
        no,
        draft.postings.map((p) => p.account),
        draft.postings.map((p) => p.side),
        draft.postings.map((p) => p.cents),
      ],
    );
    return toEntry(
      {
        entry_no: no,
        memo: draft.memo,
        order_id: draft.orderId,
        message_id: draft.messageId,
        reverses: entryNumber(draft.reverses),
        posted_at: inserted.rows[0]!.posted_at as Date,
      },
      draft.postings,
    );
  }

  /** The order's sale or reversal, if posted. */
  private async entryOf(
    db: PgClientLike,
    orderId: number,
    kind: 'sale' | 'reversal',
  ): Promise<JournalEntry | undefined> {
    const [entry] = await this.entries(db, 'WHERE j.order_id = $1 AND j.kind = $2', [
      orderId,
      kind,
    ]);
    return entry;
  }

  private async entries(
    db: PgClientLike | PgPoolLike,
    where: string,
    values: unknown[] = [],
  ): Promise<JournalEntry[]> {
    const { journal, postings } = this.tables;
    const entries = await db.query(
      `SELECT entry_no, memo, order_id, message_id, reverses, posted_at
       FROM ${journal} j ${where} ORDER BY entry_no`,
      values,
    );
    if (entries.rows.length === 0) return [];
    const lines = await db.query(
      `SELECT entry_no, account, side, cents FROM ${postings}
       WHERE entry_no = ANY($1::integer[]) ORDER BY entry_no, line`,
      [entries.rows.map((r) => r.entry_no)],
    );
    const byEntry = new Map<number, Posting[]>();
    for (const row of lines.rows as unknown as PostingRow[]) {
      const list = byEntry.get(row.entry_no) ?? [];
      list.push({ account: row.account, side: row.side, cents: Number(row.cents) });
      byEntry.set(row.entry_no, list);
    }
    return (entries.rows as unknown as EntryRow[]).map((row) =>
      toEntry(row, byEntry.get(row.entry_no) ?? []),
    );
  }
}

/** `J-12` to 12. */
function entryNumber(id: string | undefined): number | null {
  return id === undefined ? null : Number(id.slice(2));
}

function toEntry(row: EntryRow, postings: readonly Posting[]): JournalEntry {
  return Object.freeze({
    memo: row.memo,
    orderId: row.order_id,
    messageId: row.message_id,
    ...(row.reverses !== null && { reverses: `J-${row.reverses}` }),
    postings: Object.freeze([...postings]),
    id: `J-${row.entry_no}`,
    postedAt: row.posted_at.toISOString(),
  });
}
