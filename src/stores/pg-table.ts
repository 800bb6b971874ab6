/**
 * What every PostgreSQL table of Tidings shares (the idempotency store, the inbox, the outbox):
 * the driver-free shapes of a pool and its connections, validated table names, creation under an
 * advisory lock, and batched deletion of expired rows.
 */

/** What a query resolves with: the rows, as `pg` returns them. */
export interface PgQueryResult {
  readonly rows: readonly Record<string, unknown>[];
}

/** Anything that runs a parameterised query, as a `pg` `Pool` or `Client` does. */
export interface PgQueryable {
  /** Runs `text` with `$1`, `$2`, ... bound to `values`. Without values, text may hold several statements. */
  query(text: string, values?: unknown[]): Promise<PgQueryResult>;
}

/** A connection checked out of a pool, as a `pg` `PoolClient` is. */
export interface PgClientLike extends PgQueryable {
  /** Returns the connection to its pool; with an error, the pool discards it instead. */
  release(error?: Error | boolean): void;
}

/**
 * A connection pool, as a `pg` `Pool` is. Tidings never imports a PostgreSQL driver: pass your
 * own. `C` is the type of its connections, which inbox functions receive.
 */
export interface PgPoolLike<C extends PgClientLike = PgClientLike> extends PgQueryable {
  /** Checks a connection out; the caller releases it. */
  connect(): Promise<C>;
}

/** Default of the `purgeIntervalMs` options: expired rows are deleted at most once a minute. */
export const POSTGRES_PURGE_INTERVAL_MS = 60_000;
/** At most this many expired rows are deleted by one purge, so a purge never holds locks long. */
export const POSTGRES_PURGE_BATCH = 1000;

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;

/**
 * `now() + ms` in SQL. Durations are computed on the database's clock, so clocks of consumers
 * that disagree with each other cannot shorten or stretch a lease.
 */
export const IN_MS = (param: string) =>
  `now() + ${param}::double precision * interval '1 millisecond'`;

/** A validated, quoted table name, and the statements every table of Tidings shares. */
export class Table {
  /** Quoted, possibly schema-qualified name, safe to put in SQL. */
  readonly sql: string;
  /** The name as given (`app.tidings_outbox`), unquoted. */
  readonly plain: string;
  private readonly schema: string | undefined;
  private readonly last: string;
  private readonly index: string;

  /** `name` must have passed {@link Table.problem}; `keyColumn` is what purges delete by. */
  constructor(
    name: string,
    private readonly keyColumn = 'key',
  ) {
    const parts = name.split('.');
    this.plain = name;
    this.sql = parts.map((p) => `"${p}"`).join('.');
    this.last = parts[parts.length - 1]!;
    this.schema = parts.length > 1 ? parts[0] : undefined;
    this.index = this.bare('expires_at_idx');
  }

  static problem(option: string, name: unknown): string | undefined {
    if (typeof name !== 'string') return `${option} must be a string`;
    const parts = name.split('.');
    if (parts.length > 2 || !parts.every((p) => IDENTIFIER.test(p))) {
      return `${option} must be a table name, optionally schema-qualified, of letters, digits and _ (got ${JSON.stringify(name)})`;
    }
    return undefined;
  }

  /** The quoted name `<table>_<suffix>`, unqualified (index and trigger names take no schema). */
  bare(suffix: string): string {
    return `"${this.last}_${suffix}"`;
  }

  /** The quoted name `<table>_<suffix>` in the table's schema (for a function). */
  related(suffix: string): string {
    return this.schema === undefined ? this.bare(suffix) : `"${this.schema}".${this.bare(suffix)}`;
  }

  /**
   * The statements {@link Table.ensure} runs, as one script: the advisory lock serialises
   * processes that create the same table at once (two concurrent CREATE TABLE IF NOT EXISTS can
   * otherwise fail on the catalog's unique index); `extra` statements follow the table and its
   * expiry index.
   */
  script(columns: string, extra = ''): string {
    return `SELECT pg_advisory_xact_lock(hashtext('tidings:schema:${this.plain}'));
CREATE TABLE IF NOT EXISTS ${this.sql} (${columns});
CREATE INDEX IF NOT EXISTS ${this.index} ON ${this.sql} (expires_at);${extra ? `\n${extra}` : ''}`;
  }

  /**
   * Creates the table if it does not exist: one simple-protocol query holding every statement
   * of {@link Table.script}, which PostgreSQL runs as one transaction.
   */
  ensure(pool: PgQueryable, columns: string, extra = ''): Promise<PgQueryResult> {
    return pool.query(this.script(columns, extra));
  }

  /** Deletes up to {@link POSTGRES_PURGE_BATCH} expired rows, skipping rows others have locked. */
  async purge(pool: PgQueryable): Promise<number> {
    const key = this.keyColumn;
    const result = await pool.query(
      `DELETE FROM ${this.sql} WHERE ${key} IN (
         SELECT ${key} FROM ${this.sql} WHERE expires_at <= now()
         LIMIT ${POSTGRES_PURGE_BATCH} FOR UPDATE SKIP LOCKED
       ) AND expires_at <= now() RETURNING ${key}`,
    );
    return result.rows.length;
  }
}
