import { ConfigError } from '../../errors.js';
import type { Outbox, OutboxEntry, OutboxTransaction } from '../../runtime/outbox.js';
import type { PgPoolLike, PgQueryable } from '../pg-table.js';
import { Table } from '../pg-table.js';
import { encodeProperties } from './codec.js';
import { OutboxError, OutboxSchemaError } from './errors.js';
import { OutboxRelay, type OutboxRelayOptions } from './relay.js';
import {
  channelOf,
  NOTIFY_TRIGGER,
  OUTBOX_COLUMN_NAMES,
  OUTBOX_COLUMNS,
  outboxExtras,
  PENDING,
} from './schema.js';

/** Default table of {@link PostgresOutbox}. */
export const POSTGRES_OUTBOX_TABLE = 'tidings_outbox';

/** Options of {@link PostgresOutbox}. */
export interface PostgresOutboxOptions {
  /**
   * The pool (`new pg.Pool(...)`) its relays, `status()`, `retry()`, `prune()` and `migrate()`
   * use. Writes do not use it: they go through the caller's transaction. Never closed by Tidings.
   * A relay holds one connection per batch in flight (two by default) and one for LISTEN when it
   * listens: size the pool for those and your writers.
   */
  readonly pool: PgPoolLike;
  /**
   * The outbox table, optionally schema-qualified; at most 63 characters in all, as it also names
   * the notification channel. Create it with {@link PostgresOutbox.migrate} or
   * `tidings outbox migrate`: nothing else creates it.
   * @defaultValue `'tidings_outbox'`
   */
  readonly table?: string;
}

/** Options of {@link PostgresOutbox.migrationSql} and {@link PostgresOutbox.migrate}. */
export interface OutboxMigrationOptions {
  /**
   * Also create a trigger that notifies the table's channel on every commit that wrote to it,
   * so relays in other processes wake at once. It costs write throughput: transactions that
   * notify commit one at a time. Relays of the same `PostgresOutbox` object are woken in-process
   * without it, and every relay polls.
   * @defaultValue false
   */
  readonly notify?: boolean | undefined;
}

/** What {@link PostgresOutbox.checkSchema} found. */
export interface OutboxSchema {
  /** Whether the table has its notify trigger (migrated with `notify`). */
  readonly notifies: boolean;
}

/** How far the outbox's relays are behind, and what is stuck. See {@link PostgresOutbox.status}. */
export interface OutboxStatus {
  /** The table, as given. */
  readonly table: string;
  /** Committed messages not yet confirmed by the broker (retrying ones included). */
  readonly pending: number;
  /** Of the pending, those that failed at least once and wait for their next attempt. */
  readonly retrying: number;
  /** Parked messages: they failed `maxAttempts` times and wait for `retry()`. */
  readonly failed: number;
  /** Sent messages kept until their retention ends. */
  readonly sent: number;
  /** When the oldest pending message was written; `undefined` when none is pending. */
  readonly oldestPendingAt: Date | undefined;
  /** How long the oldest pending message has waited, in milliseconds (0 when none): the lag. */
  readonly lagMs: number;
  /** When the broker last confirmed a message still kept; `undefined` when none is kept. */
  readonly lastSentAt: Date | undefined;
}

/** One message of the outbox, as {@link PostgresOutbox.inspect} lists it (no body). */
export interface OutboxRow {
  /** The row's id (a bigint, as a string): the order of writing. */
  readonly id: string;
  /** The id of the writing transaction (`xid8`, as a string). */
  readonly txid: string;
  readonly orderingKey: string | null;
  readonly exchange: string;
  readonly routingKey: string;
  /** The envelope id of the message. */
  readonly messageId: string;
  /** Publishes tried so far, the successful one included. */
  readonly attempts: number;
  /** Why the last attempt failed, if one did (`ErrorName: message`). */
  readonly lastError: string | null;
  readonly createdAt: Date;
  readonly lastAttemptAt: Date | null;
  /** When a failed message is tried again; `null` when due now. */
  readonly nextAttemptAt: Date | null;
  readonly sentAt: Date | null;
  /** When it was parked after its last allowed attempt. */
  readonly failedAt: Date | null;
}

/** Which rows {@link PostgresOutbox.inspect} lists. */
export type OutboxRowState = 'failed' | 'retrying' | 'pending';

/**
 * The transactional outbox in PostgreSQL. A service given it (`createService({ outbox })`)
 * writes `publish(event, payload, { tx })` into its table in the caller's transaction, instead
 * of sending; a relay ({@link PostgresOutbox.relay}) publishes committed rows with publisher
 * confirms and marks them sent only after the confirm. So a message is published if and only if
 * its transaction commits, at least once, even if the process dies in between or the broker is
 * down. Messages of one `orderingKey` are published one at a time, in commit order.
 *
 * ```ts
 * import pg from 'pg';
 * import { PostgresOutbox } from 'tidings/postgres';
 * const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL });
 * const outbox = new PostgresOutbox({ pool }); // table created by `tidings outbox migrate`
 * const order = createService({ name: 'order', transport, outbox });
 * const relay = outbox.relay({ transport });
 * await relay.start();
 *
 * const db = await pool.connect();
 * await db.query('BEGIN');
 * const { rows } = await db.query('INSERT INTO orders (total) VALUES ($1) RETURNING id', [total]);
 * await order.publish(orderSubmit, { id: rows[0].id, ... }, { tx: db, orderingKey: `order:${rows[0].id}` });
 * await db.query('COMMIT');
 * db.release();
 * ```
 */
export class PostgresOutbox implements Outbox {
  /** The table's quoted name, as used in SQL. */
  readonly table: string;
  /** The table's name as given, which also names its notification channel. */
  readonly name: string;
  /** The pool relays and maintenance use. */
  readonly pool: PgPoolLike;
  private readonly t: Table;
  private readonly insert: string;
  private readonly insertKeyed: string;
  private readonly writeListeners = new Set<() => void>();

  constructor(options: PostgresOutboxOptions) {
    const problems: string[] = [];
    if (typeof options?.pool?.connect !== 'function' || typeof options.pool.query !== 'function') {
      problems.push('pool must be a pg Pool, with connect() and query()');
    }
    const name = options?.table ?? POSTGRES_OUTBOX_TABLE;
    const tableProblem = Table.problem('table', name);
    if (tableProblem) problems.push(tableProblem);
    else if (name.length > 63) {
      problems.push(
        `table must be at most 63 characters with its schema, as it names the notification channel (got ${name.length})`,
      );
    }
    if (problems.length > 0) throw new ConfigError(problems, 'PostgresOutbox options');
    this.pool = options.pool;
    this.t = new Table(name, 'id');
    this.table = this.t.sql;
    this.name = name;
    const columns = 'ordering_key, exchange, routing_key, message_id, properties, body';
    this.insert = `INSERT INTO ${this.table} (${columns}) VALUES ($1, $2, $3, $4, $5::jsonb, $6)`;
    // The key's lock is taken before the row's id is drawn (a materialized CTE runs first) and
    // held until the writer's transaction ends: two transactions writing one key are serialised,
    // so ids of a key follow the commit order and the relay never sees a later row of a key
    // while an earlier one could still commit.
    const lockKey = `'tidings-outbox:${name}:' || $1`;
    this.insertKeyed = `WITH key_lock AS MATERIALIZED (SELECT pg_advisory_xact_lock(hashtextextended(${lockKey}, 0)))
INSERT INTO ${this.table} (${columns}) SELECT $1, $2, $3, $4, $5::jsonb, $6 FROM key_lock`;
  }

  /**
   * The SQL that creates the table and its indexes (and, with `notify`, its notify trigger), as
   * one script that is safe to run again: it creates only what is missing. Run it in your own
   * migrations, or with {@link PostgresOutbox.migrate} / `tidings outbox migrate`.
   */
  migrationSql(options: OutboxMigrationOptions = {}): string {
    return `${this.t.script(OUTBOX_COLUMNS, outboxExtras(this.t, options.notify === true))}\n`;
  }

  /**
   * Runs {@link PostgresOutbox.migrationSql} on the pool, in one transaction. Safe to run from
   * several processes at once (an advisory lock serialises them). Call it from a deployment step,
   * not from every service start: the outbox never creates its table by itself.
   */
  async migrate(options: OutboxMigrationOptions = {}): Promise<void> {
    try {
      await this.pool.query(this.migrationSql(options));
    } catch (cause) {
      throw new OutboxError('migrate', this.name, describe(cause), { cause });
    }
  }

  /**
   * Resolves when the table exists with every column, saying whether it notifies; rejects with
   * {@link OutboxSchemaError} if not.
   */
  async checkSchema(): Promise<OutboxSchema> {
    try {
      await this.pool.query(`SELECT ${OUTBOX_COLUMN_NAMES.join(', ')} FROM ${this.table} LIMIT 0`);
      const trigger = await this.pool.query(
        'SELECT 1 FROM pg_trigger WHERE tgrelid = $1::regclass AND tgname = $2',
        [this.table, NOTIFY_TRIGGER(this.t).slice(1, -1)],
      );
      return { notifies: trigger.rows.length > 0 };
    } catch (cause) {
      const code = (cause as { code?: unknown })?.code;
      // 42P01 undefined_table, 42703 undefined_column, 3F000 invalid_schema_name
      if (code === '42P01' || code === '42703' || code === '3F000') {
        throw new OutboxSchemaError(this.name, { cause });
      }
      throw new OutboxError('check its table', this.name, describe(cause), { cause });
    }
  }

  /**
   * Writes one message in the caller's transaction; the runtime calls it for
   * `publish(event, payload, { tx })`. `tx` must be the connection on which the caller ran
   * `BEGIN` (a `pg` `PoolClient` or `Client`). With an ordering key, it first takes a lock on the
   * key that it holds until the transaction ends, so a second transaction writing the same key
   * waits for the first to commit or roll back. Rejects with {@link OutboxError}; then roll back.
   */
  async write(tx: OutboxTransaction, entry: OutboxEntry): Promise<void> {
    const client = tx as Partial<PgQueryable>;
    if (typeof client.query !== 'function') {
      throw new OutboxError(
        'write',
        this.name,
        'tx must be the database connection of an open transaction (the pg client you ran BEGIN on)',
      );
    }
    // A pool runs each query on whichever connection is free, outside any transaction of yours.
    if ('totalCount' in client && 'idleCount' in client) {
      throw new OutboxError(
        'write',
        this.name,
        'tx is a pool, not a connection: take one with pool.connect(), run BEGIN on it and pass that client',
      );
    }
    const { message, envelope, orderingKey } = entry;
    const values = [
      orderingKey ?? null,
      message.exchange,
      message.routingKey,
      envelope.id,
      encodeProperties(message.properties),
      message.body,
    ];
    try {
      await client.query(orderingKey === undefined ? this.insert : this.insertKeyed, values);
    } catch (cause) {
      const code = (cause as { code?: unknown })?.code;
      if (code === '42P01' || code === '42703') throw new OutboxSchemaError(this.name, { cause });
      throw new OutboxError('write', this.name, describe(cause), { cause });
    }
    for (const listener of this.writeListeners) listener();
  }

  /**
   * Calls `listener` after each write through this object (before its transaction commits): how
   * relays of this outbox in this process know to look soon. Returns a function that removes it.
   */
  onWrite(listener: () => void): () => void {
    this.writeListeners.add(listener);
    return () => {
      this.writeListeners.delete(listener);
    };
  }

  /** A relay that publishes this outbox's committed rows through `options.transport`; call `start()`. */
  relay(options: OutboxRelayOptions): OutboxRelay {
    return new OutboxRelay(this, options);
  }

  /** The notification channel writes announce themselves on (the table's name). */
  get channel(): string {
    return channelOf(this.t);
  }

  /** Counts of pending, retrying, parked and kept rows, and the lag of the oldest pending one. */
  async status(): Promise<OutboxStatus> {
    const t = this.table;
    let row: Record<string, unknown>;
    try {
      const result = await this.pool.query(
        `SELECT
           (SELECT count(*) FROM ${t} WHERE ${PENDING}) AS pending,
           (SELECT count(*) FROM ${t} WHERE ${PENDING} AND attempts > 0) AS retrying,
           (SELECT count(*) FROM ${t} WHERE failed_at IS NOT NULL) AS failed,
           (SELECT count(*) FROM ${t} WHERE sent_at IS NOT NULL) AS sent,
           (SELECT created_at FROM ${t} WHERE ${PENDING} ORDER BY id LIMIT 1) AS oldest,
           (SELECT max(sent_at) FROM ${t}) AS last_sent,
           clock_timestamp() AS now`,
      );
      row = result.rows[0]!;
    } catch (cause) {
      throw this.failure('status', cause);
    }
    const oldest = asDate(row.oldest);
    const now = asDate(row.now) ?? new Date();
    return {
      table: this.name,
      pending: Number(row.pending),
      retrying: Number(row.retrying),
      failed: Number(row.failed),
      sent: Number(row.sent),
      oldestPendingAt: oldest,
      lagMs: oldest ? Math.max(0, now.getTime() - oldest.getTime()) : 0,
      lastSentAt: asDate(row.last_sent),
    };
  }

  /**
   * Lists rows without their bodies, oldest first: `failed` (parked), `retrying` (pending after
   * a failure) or every `pending` one.
   * @param limit at most this many @defaultValue 20
   */
  async inspect(state: OutboxRowState, limit = 20): Promise<OutboxRow[]> {
    const where =
      state === 'failed'
        ? 'failed_at IS NOT NULL'
        : state === 'retrying'
          ? `${PENDING} AND attempts > 0`
          : PENDING;
    try {
      const result = await this.pool.query(
        `SELECT id::text, txid::text, ordering_key, exchange, routing_key, message_id, attempts,
                last_error, created_at, last_attempt_at, next_attempt_at, sent_at, failed_at
         FROM ${this.table} WHERE ${where} ORDER BY id LIMIT $1`,
        [Math.max(1, Math.floor(limit))],
      );
      return result.rows.map(toRow);
    } catch (cause) {
      throw this.failure('inspect', cause);
    }
  }

  /**
   * Puts parked rows back in line, attempts reset, to be published as soon as a relay sees them:
   * the ones with these ids, or every parked row when `ids` is `'all'`. Resolves with how many.
   * A retried row of an ordering key is published after the key's rows already sent meanwhile.
   */
  async retry(ids: readonly string[] | 'all'): Promise<number> {
    try {
      const result = await this.pool.query(
        `UPDATE ${this.table} SET failed_at = NULL, attempts = 0, next_attempt_at = NULL
         WHERE failed_at IS NOT NULL AND ($1::boolean OR id = ANY($2::bigint[]))
         RETURNING id`,
        [ids === 'all', ids === 'all' ? [] : [...ids]],
      );
      return result.rows.length;
    } catch (cause) {
      throw this.failure('retry', cause);
    }
  }

  /**
   * Deletes sent rows whose retention has ended, 1000 at a time, until none is left or
   * `maxRows` are deleted; resolves with how many. Relays do it on their own schedule.
   */
  async prune(maxRows = 1_000_000): Promise<number> {
    let deleted = 0;
    try {
      for (;;) {
        const n = await this.t.purge(this.pool);
        deleted += n;
        if (n < 1000 || deleted >= maxRows) return deleted;
      }
    } catch (cause) {
      throw this.failure('prune', cause);
    }
  }

  /** An {@link OutboxError} for `operation`, or the schema error it really is. */
  private failure(operation: string, cause: unknown): OutboxError {
    const code = (cause as { code?: unknown })?.code;
    if (code === '42P01' || code === '42703') return new OutboxSchemaError(this.name, { cause });
    return new OutboxError(operation, this.name, describe(cause), { cause });
  }
}

function describe(cause: unknown): string {
  return cause instanceof Error ? cause.message : String(cause);
}

function asDate(value: unknown): Date | undefined {
  if (value === null || value === undefined) return undefined;
  return value instanceof Date ? value : new Date(String(value));
}

function toRow(r: Record<string, unknown>): OutboxRow {
  const date = (v: unknown) => asDate(v) ?? null;
  return {
    id: String(r.id),
    txid: String(r.txid),
    orderingKey: (r.ordering_key as string | null) ?? null,
    exchange: String(r.exchange),
    routingKey: String(r.routing_key),
    messageId: String(r.message_id),
    attempts: Number(r.attempts),
    lastError: (r.last_error as string | null) ?? null,
    createdAt: asDate(r.created_at) ?? new Date(0),
    lastAttemptAt: date(r.last_attempt_at),
    nextAttemptAt: date(r.next_attempt_at),
    sentAt: date(r.sent_at),
    failedAt: date(r.failed_at),
  };
}
