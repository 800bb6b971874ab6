import { randomUUID } from 'node:crypto';
import { ConfigError } from '../errors.js';
import { consoleLogger, type Logger } from '../logger.js';
import {
  type ClaimResult,
  IDEMPOTENCY_DEFAULTS,
  type IdempotencyStore,
} from '../runtime/idempotency.js';
import type { Handler, HandlerContext } from '../runtime/service.js';
import { IdempotencyStoreError } from './errors.js';
import { checkPositiveMs, wholeMs } from './options.js';
import {
  IN_MS,
  type PgClientLike,
  type PgPoolLike,
  type PgQueryable,
  POSTGRES_PURGE_INTERVAL_MS,
  Table,
} from './pg-table.js';

export { IdempotencyStoreError } from './errors.js';
export * from './outbox/index.js';

export {
  type PgClientLike,
  type PgPoolLike,
  type PgQueryable,
  type PgQueryResult,
  POSTGRES_PURGE_BATCH,
  POSTGRES_PURGE_INTERVAL_MS,
} from './pg-table.js';

/** Default table of {@link PostgresIdempotencyStore}. */
export const POSTGRES_STORE_TABLE = 'tidings_processed';
/** Default table of {@link PostgresInbox}. */
export const POSTGRES_INBOX_TABLE = 'tidings_inbox';

const STORE = 'PostgreSQL';

/** Deletes expired rows of `table` when `intervalMs` has passed since the last time. */
class Purger {
  private nextAt = 0;

  constructor(
    private readonly table: Table,
    private readonly pool: PgQueryable,
    private readonly intervalMs: number,
  ) {}

  /** Purges if due. Best effort: a failed purge is retried at the next interval. */
  async maybe(): Promise<void> {
    const now = Date.now();
    if (now < this.nextAt || this.intervalMs === Number.POSITIVE_INFINITY) return;
    this.nextAt = now + this.intervalMs;
    await this.table.purge(this.pool).catch(() => {});
  }

  /** Purges now, and throws what the database throws. */
  async now(): Promise<number> {
    try {
      return await this.table.purge(this.pool);
    } catch (cause) {
      throw new IdempotencyStoreError(STORE, 'purge', undefined, { cause });
    }
  }
}

/** Options of {@link PostgresIdempotencyStore}. */
export interface PostgresIdempotencyStoreOptions {
  /** A pool (`new pg.Pool(...)`) or a connected client. The store never closes it. */
  readonly pool: PgQueryable;
  /**
   * The table holding the keys, optionally schema-qualified. Created by
   * {@link PostgresIdempotencyStore.ensureSchema}.
   * @defaultValue `'tidings_processed'`
   */
  readonly table?: string;
  /**
   * How often expired rows are deleted, in milliseconds. A claim that finds the interval passed
   * first deletes up to 1000 expired rows. `Infinity` turns this off; call
   * {@link PostgresIdempotencyStore.purgeExpired} yourself then.
   * @defaultValue 60000
   */
  readonly purgeIntervalMs?: number;
}

/**
 * An {@link IdempotencyStore} in a PostgreSQL table, shared by every process of a service.
 *
 * One row per message key: `state` is `busy` while a consumer holds the claim and `done` once the
 * handler returned; `expires_at` ends the lease or the memory of the processed id. Claiming is one
 * `INSERT ... ON CONFLICT DO UPDATE ... WHERE expired` statement, so two consumers racing on a key
 * never both get `claimed`, and an expired row is taken over in place. Releasing deletes the row
 * only if it still holds this store's token, so a consumer whose lease ran out cannot drop a newer
 * claim. Expired rows are ignored at once and deleted opportunistically.
 *
 * When the handler's effects are writes to the same database, prefer {@link PostgresInbox}: it
 * records the id in the same transaction as the effects, which this store cannot.
 *
 * ```ts
 * import pg from 'pg';
 * import { PostgresIdempotencyStore } from 'tidings/postgres';
 * const store = new PostgresIdempotencyStore({ pool: new pg.Pool() });
 * await store.ensureSchema();
 * createService({ name: 'billing', transport, idempotency: { store } });
 * ```
 */
export class PostgresIdempotencyStore implements IdempotencyStore {
  /** The table's quoted name, as used in SQL. */
  readonly table: string;
  private readonly pool: PgQueryable;
  private readonly t: Table;
  private readonly purger: Purger;
  /** Tokens of the claims this instance holds, by key. */
  private readonly tokens = new Map<string, string>();

  constructor(options: PostgresIdempotencyStoreOptions) {
    const problems: string[] = [];
    if (typeof options?.pool?.query !== 'function') {
      problems.push('pool must be a pg Pool or Client, with query()');
    }
    const tableProblem = Table.problem('table', options?.table ?? POSTGRES_STORE_TABLE);
    if (tableProblem) problems.push(tableProblem);
    checkPositiveMs(problems, 'purgeIntervalMs', options?.purgeIntervalMs, true);
    if (problems.length > 0) throw new ConfigError(problems, 'PostgresIdempotencyStore options');
    this.pool = options.pool;
    this.t = new Table(options.table ?? POSTGRES_STORE_TABLE);
    this.table = this.t.sql;
    this.purger = new Purger(
      this.t,
      this.pool,
      options.purgeIntervalMs ?? POSTGRES_PURGE_INTERVAL_MS,
    );
  }

  /**
   * Creates the table and its expiry index if they do not exist. Safe to call from several
   * processes at once. Or create them in your own migrations:
   *
   * ```sql
   * CREATE TABLE tidings_processed (
   *   key text PRIMARY KEY,
   *   state text NOT NULL CHECK (state IN ('busy', 'done')),
   *   token text,
   *   expires_at timestamptz NOT NULL
   * );
   * CREATE INDEX tidings_processed_expires_at_idx ON tidings_processed (expires_at);
   * ```
   */
  async ensureSchema(): Promise<void> {
    try {
      await this.t.ensure(
        this.pool,
        `key text PRIMARY KEY,
  state text NOT NULL CHECK (state IN ('busy', 'done')),
  token text,
  expires_at timestamptz NOT NULL`,
      );
    } catch (cause) {
      throw new IdempotencyStoreError(STORE, 'ensureSchema', undefined, { cause });
    }
  }

  async claim(key: string, leaseMs: number): Promise<ClaimResult> {
    await this.purger.maybe();
    const token = randomUUID();
    const ms = wholeMs(leaseMs);
    try {
      // A row that vanished between the two statements (released, or purged once expired) is
      // free again: try once more rather than report a busy that is not.
      for (let attempt = 0; attempt < 2; attempt++) {
        const claimed = await this.pool.query(
          `INSERT INTO ${this.table} AS p (key, state, token, expires_at)
           VALUES ($1, 'busy', $2, ${IN_MS('$3')})
           ON CONFLICT (key) DO UPDATE
             SET state = 'busy', token = excluded.token, expires_at = excluded.expires_at
             WHERE p.expires_at <= now()
           RETURNING key`,
          [key, token, ms],
        );
        if (claimed.rows.length > 0) {
          this.tokens.set(key, token);
          return 'claimed';
        }
        const held = await this.pool.query(
          `SELECT state FROM ${this.table} WHERE key = $1 AND expires_at > now()`,
          [key],
        );
        const state = held.rows[0]?.state;
        if (state === 'done') return 'done';
        if (state === 'busy') return 'busy';
      }
      return 'busy';
    } catch (cause) {
      throw new IdempotencyStoreError(STORE, 'claim', key, { cause });
    }
  }

  async complete(key: string, ttlMs: number): Promise<void> {
    this.tokens.delete(key);
    try {
      await this.pool.query(
        `INSERT INTO ${this.table} (key, state, token, expires_at)
         VALUES ($1, 'done', NULL, ${IN_MS('$2')})
         ON CONFLICT (key) DO UPDATE
           SET state = 'done', token = NULL, expires_at = excluded.expires_at`,
        [key, wholeMs(ttlMs)],
      );
    } catch (cause) {
      throw new IdempotencyStoreError(STORE, 'complete', key, { cause });
    }
  }

  /** Deletes the row if it still holds this instance's claim; otherwise does nothing. */
  async release(key: string): Promise<void> {
    const token = this.tokens.get(key);
    if (token === undefined) return;
    this.tokens.delete(key);
    try {
      await this.pool.query(
        `DELETE FROM ${this.table} WHERE key = $1 AND state = 'busy' AND token = $2`,
        [key, token],
      );
    } catch (cause) {
      throw new IdempotencyStoreError(STORE, 'release', key, { cause });
    }
  }

  /** Deletes up to 1000 expired rows now; resolves with how many. */
  purgeExpired(): Promise<number> {
    return this.purger.now();
  }
}

/** Options of {@link PostgresInbox}. */
export interface PostgresInboxOptions<C extends PgClientLike = PgClientLike> {
  /**
   * The pool whose connections run the transactions (`new pg.Pool(...)`). The inbox never closes
   * it. With `pg`, write `new PostgresInbox<PoolClient>({ pool })` to type the client that inbox
   * functions receive.
   */
  readonly pool: PgPoolLike<C>;
  /**
   * The table recording processed keys, optionally schema-qualified. Created by
   * {@link PostgresInbox.ensureSchema}.
   * @defaultValue `'tidings_inbox'`
   */
  readonly table?: string;
  /**
   * How long a processed key is remembered, in milliseconds. A duplicate arriving later runs
   * again, so make it longer than any redelivery or replay you expect.
   * @defaultValue 604800000 (7 days, as {@link IDEMPOTENCY_DEFAULTS})
   */
  readonly ttlMs?: number;
  /**
   * How often expired rows are deleted, in milliseconds; `Infinity` turns it off.
   * @defaultValue 60000
   */
  readonly purgeIntervalMs?: number;
  /**
   * Where {@link PostgresInbox.handler} reports skipped duplicates (at `info`).
   * @defaultValue `consoleLogger()`, which drops `info`
   */
  readonly logger?: Logger;
}

/** What {@link PostgresInbox.run} did: ran the function and committed, or skipped a duplicate. */
export type InboxResult<T> =
  | { readonly status: 'processed'; readonly value: T }
  | { readonly status: 'duplicate' };

/** Options of {@link PostgresInbox.handler}. */
export interface InboxHandlerOptions {
  /**
   * Prefix of the inbox key, `<scope>:<message id>`. Two handlers that receive the same message
   * (same id) and share an inbox table need different scopes, or only the first one runs.
   * @defaultValue the name of the service running the handler (`context.service`)
   */
  readonly scope?: string | undefined;
  /** Called after a duplicate was skipped, e.g. to count it. */
  readonly onDuplicate?:
    | ((skipped: { readonly key: string; readonly context: HandlerContext }) => void)
    | undefined;
}

/**
 * A handler that runs inside the inbox's transaction: it gets the payload, the context, and the
 * transaction's client, through which it makes its writes.
 */
export type InboxHandler<P, C extends PgClientLike = PgClientLike> = (
  payload: P,
  context: HandlerContext,
  client: C,
) => unknown;

/**
 * The inbox pattern: a message's id is recorded in the same PostgreSQL transaction as the
 * handler's own writes, so the writes happen exactly once per id even under at-least-once
 * delivery, with no window between "effects done" and "recorded as done".
 *
 * {@link PostgresInbox.run} opens a transaction, inserts the key into the inbox table and, if the
 * key was new, runs your function with the transaction's client and commits. If the key is there,
 * it rolls back and reports `duplicate` without running the function. A second consumer inserting
 * the same key blocks on the primary key until the first commits (then it reports `duplicate`) or
 * rolls back (then it runs). A function that throws rolls back its writes and the inbox row
 * together, so the retry runs it again.
 *
 * ```ts
 * import pg from 'pg';
 * import { PostgresInbox } from 'tidings/postgres';
 * const inbox = new PostgresInbox<pg.PoolClient>({ pool: new pg.Pool() });
 * await inbox.ensureSchema();
 * billing.on(orderSubmit, inbox.handler(async (order, ctx, db) => {
 *   await db.query('INSERT INTO journal (order_id, amount) VALUES ($1, $2)', [order.id, order.total]);
 * }));
 * ```
 */
export class PostgresInbox<C extends PgClientLike = PgClientLike> {
  /** The table's quoted name, as used in SQL. */
  readonly table: string;
  private readonly pool: PgPoolLike<C>;
  private readonly t: Table;
  private readonly ttlMs: number;
  private readonly purger: Purger;
  private readonly logger: Logger;

  constructor(options: PostgresInboxOptions<C>) {
    const problems: string[] = [];
    if (typeof options?.pool?.connect !== 'function' || typeof options.pool.query !== 'function') {
      problems.push('pool must be a pg Pool, with connect() and query()');
    }
    const tableProblem = Table.problem('table', options?.table ?? POSTGRES_INBOX_TABLE);
    if (tableProblem) problems.push(tableProblem);
    checkPositiveMs(problems, 'ttlMs', options?.ttlMs);
    checkPositiveMs(problems, 'purgeIntervalMs', options?.purgeIntervalMs, true);
    if (problems.length > 0) throw new ConfigError(problems, 'PostgresInbox options');
    this.pool = options.pool;
    this.t = new Table(options.table ?? POSTGRES_INBOX_TABLE);
    this.table = this.t.sql;
    this.ttlMs = wholeMs(options.ttlMs ?? IDEMPOTENCY_DEFAULTS.ttlMs);
    this.purger = new Purger(
      this.t,
      this.pool,
      options.purgeIntervalMs ?? POSTGRES_PURGE_INTERVAL_MS,
    );
    this.logger = options.logger ?? consoleLogger();
  }

  /**
   * Creates the inbox table and its expiry index if they do not exist. Safe to call from several
   * processes at once. Or create them in your own migrations:
   *
   * ```sql
   * CREATE TABLE tidings_inbox (
   *   key text PRIMARY KEY,
   *   processed_at timestamptz NOT NULL DEFAULT now(),
   *   expires_at timestamptz NOT NULL
   * );
   * CREATE INDEX tidings_inbox_expires_at_idx ON tidings_inbox (expires_at);
   * ```
   */
  async ensureSchema(): Promise<void> {
    try {
      await this.t.ensure(
        this.pool,
        `key text PRIMARY KEY,
  processed_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz NOT NULL`,
      );
    } catch (cause) {
      throw new IdempotencyStoreError(STORE, 'ensureSchema', undefined, { cause });
    }
  }

  /**
   * Runs `fn` once per `key`, in one transaction with the record of `key`.
   *
   * Resolves `{ status: 'processed', value }` after the commit, or `{ status: 'duplicate' }` if
   * `key` was processed within `ttlMs` (waiting first for a transaction that holds the same key).
   * An error thrown by `fn` rolls everything back and is rethrown unchanged; a database failure of
   * the inbox's own statements rejects with {@link IdempotencyStoreError}.
   *
   * `fn` must make its writes through the client it receives, and must not commit or roll back.
   */
  async run<T>(key: string, fn: (client: C) => T | Promise<T>): Promise<InboxResult<Awaited<T>>> {
    await this.purger.maybe();
    let client: C;
    try {
      client = await this.pool.connect();
    } catch (cause) {
      throw new IdempotencyStoreError(STORE, 'connect', key, { cause });
    }
    let broken: Error | undefined;
    const step = async (operation: string, text: string, values?: unknown[]) => {
      try {
        return await client.query(text, values);
      } catch (cause) {
        throw new IdempotencyStoreError(STORE, operation, key, { cause });
      }
    };
    try {
      await step('begin', 'BEGIN');
      const inserted = await step(
        'record',
        `INSERT INTO ${this.table} AS i (key, processed_at, expires_at)
         VALUES ($1, now(), ${IN_MS('$2')})
         ON CONFLICT (key) DO UPDATE
           SET processed_at = excluded.processed_at, expires_at = excluded.expires_at
           WHERE i.expires_at <= now()
         RETURNING key`,
        [key, this.ttlMs],
      );
      if (inserted.rows.length === 0) {
        await step('rollback', 'ROLLBACK');
        return { status: 'duplicate' };
      }
      const value = await fn(client);
      await step('commit', 'COMMIT');
      return { status: 'processed', value };
    } catch (error) {
      // After a failed ROLLBACK the connection's state is unknown: the pool must discard it.
      await client.query('ROLLBACK').catch((e: unknown) => {
        broken = e instanceof Error ? e : new Error(String(e));
      });
      throw error;
    } finally {
      client.release(broken);
    }
  }

  /**
   * Wraps `fn` as a Tidings handler that runs it through {@link PostgresInbox.run}, keyed by
   * `<scope>:<message id>`, with the transaction's client as third argument. A duplicate is
   * acknowledged (the handler returns normally), logged at `info` and passed to `onDuplicate`.
   *
   * Give the payload type explicitly (`inbox.handler<Payload<typeof submit>>(fn)`): written
   * inside `service.on(event, ...)`, TypeScript does not infer it. {@link PostgresInbox.on}
   * registers a handler with the payload typed from the event.
   */
  handler<P>(fn: InboxHandler<P, C>, options: InboxHandlerOptions = {}): Handler<P> {
    return async (payload, context) => {
      const key = `${options.scope ?? context.service}:${context.envelope.id}`;
      const result = await this.run(key, (client) => fn(payload, context, client));
      if (result.status === 'duplicate') {
        this.logger.info(`skipped a duplicate of message ${context.envelope.id}`, {
          key,
          service: context.service,
          type: context.envelope.type,
        });
        options.onDuplicate?.({ key, context });
      }
    };
  }

  /** Deletes up to 1000 expired rows now; resolves with how many. */
  purgeExpired(): Promise<number> {
    return this.purger.now();
  }
}
