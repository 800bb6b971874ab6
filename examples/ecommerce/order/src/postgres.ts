import { type Dispatched, fromCents, orderTotalCents } from '@ecommerce/contracts';
import type pg from 'pg';
import { PostgresOutbox } from 'tidings/postgres';
import type { Announce, ChargeBackResult, NewOrder, OrderBook, StoredOrder } from './orders.js';

/** Options of {@link PostgresOrders}. */
export interface PostgresOrdersOptions {
  /** A `pg` pool (`new pg.Pool({ connectionString })`), at least 4 connections. Never closed here. */
  readonly pool: pg.Pool;
  /**
   * Prefix of the two tables: `<prefix>orders` and the outbox, `<prefix>outbox`. Lowercase
   * letters, digits and `_`.
   * @defaultValue `'order_'`
   */
  readonly tablePrefix?: string | undefined;
}

interface OrderRow {
  id: number;
  customer: StoredOrder['customer'] | null;
  currency: StoredOrder['currency'];
  lines: StoredOrder['lines'];
  total_cents: string;
  created_at: Date;
  status: StoredOrder['status'];
  shipment: StoredOrder['shipment'] | null;
  chargeback: StoredOrder['chargeback'] | null;
}

/** The model does not exist yet: the tables were never created. */
export class OrdersSchemaError extends Error {
  constructor(
    readonly tables: readonly string[],
    options: { cause: unknown },
  ) {
    super(
      `the Order tables (${tables.join(', ')}) do not exist; create them first: ` +
        'DATABASE_URL=... npx tsx examples/ecommerce/order/src/migrate.ts',
      options,
    );
    this.name = 'OrdersSchemaError';
  }
}

/**
 * The Order service's orders in PostgreSQL, with a transactional outbox: every change of an
 * order and the event announcing it commit in one transaction (the event goes into the outbox
 * table, `tidings/postgres`'s `PostgresOutbox`, and the service's relay publishes it after the
 * commit). An order saved is an event published, even if the process dies or RabbitMQ is down
 * in between; an order whose transaction failed was never announced.
 *
 * The tables are created by {@link PostgresOrders.migrate} (`order/src/migrate.ts`), never by
 * the service as it starts.
 */
export class PostgresOrders implements OrderBook {
  /** The tables' names. */
  readonly tables: { readonly orders: string; readonly outbox: string };
  /** The outbox the orders' transactions write their events to. */
  readonly outbox: PostgresOutbox;
  private readonly pool: pg.Pool;

  constructor(options: PostgresOrdersOptions) {
    const prefix = options.tablePrefix ?? 'order_';
    if (!/^[a-z_][a-z0-9_]{0,40}$/.test(prefix)) {
      throw new TypeError(
        `tablePrefix must be lowercase letters, digits and _ (got ${JSON.stringify(prefix)})`,
      );
    }
    this.pool = options.pool;
    this.tables = { orders: `${prefix}orders`, outbox: `${prefix}outbox` };
    this.outbox = new PostgresOutbox({ pool: this.pool, table: this.tables.outbox });
  }

  /** Creates the orders table and the outbox where missing: a deployment step, safe to repeat. */
  async migrate(): Promise<void> {
    await this.pool.query(`SELECT pg_advisory_xact_lock(hashtext('ecommerce:order:${this.tables.orders}'));
CREATE TABLE IF NOT EXISTS ${this.tables.orders} (
  id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  customer jsonb,
  currency text NOT NULL,
  lines jsonb NOT NULL,
  total_cents bigint NOT NULL CHECK (total_cents >= 0),
  created_at timestamptz NOT NULL DEFAULT now(),
  status text NOT NULL CHECK (status IN ('submitted', 'dispatched', 'charged_back')),
  shipment jsonb,
  chargeback jsonb
);`);
    await this.outbox.migrate();
  }

  /** Rejects with {@link OrdersSchemaError} unless both tables exist. */
  async checkSchema(): Promise<void> {
    try {
      await this.pool.query(`SELECT id FROM ${this.tables.orders} LIMIT 0`);
      await this.outbox.checkSchema();
    } catch (cause) {
      throw new OrdersSchemaError([this.tables.orders, this.tables.outbox], { cause });
    }
  }

  /** Inserts the order and, in the same transaction, has `announce` write its event to the outbox. */
  async place(draft: NewOrder, announce: Announce): Promise<StoredOrder> {
    return this.transaction(async (db) => {
      const { rows } = await db.query<OrderRow>(
        `INSERT INTO ${this.tables.orders} (customer, currency, lines, total_cents, status)
         VALUES ($1, $2, $3, $4, 'submitted') RETURNING *`,
        [
          draft.customer ? JSON.stringify(draft.customer) : null,
          draft.currency,
          JSON.stringify(draft.lines),
          orderTotalCents(draft),
        ],
      );
      const order = toOrder(rows[0]!);
      await announce(order, db);
      return order;
    });
  }

  /** Locks the order, marks it charged back and has `announce` write the event, in one transaction. */
  async chargeBack(id: number, reason: string, announce: Announce): Promise<ChargeBackResult> {
    return this.transaction(async (db) => {
      const found = await db.query<OrderRow>(
        `SELECT * FROM ${this.tables.orders} WHERE id = $1 FOR UPDATE`,
        [id],
      );
      const row = found.rows[0];
      if (!row) return { status: 'unknown' };
      if (row.status === 'charged_back') return { status: 'already' };
      const chargeback = { amount: fromCents(Number(row.total_cents)), reason };
      const { rows } = await db.query<OrderRow>(
        `UPDATE ${this.tables.orders} SET status = 'charged_back', chargeback = $2
         WHERE id = $1 RETURNING *`,
        [id, JSON.stringify(chargeback)],
      );
      const order = toOrder(rows[0]!);
      await announce(order, db);
      return { status: 'charged-back', order };
    });
  }

  async get(id: number): Promise<StoredOrder | undefined> {
    const { rows } = await this.pool.query<OrderRow>(
      `SELECT * FROM ${this.tables.orders} WHERE id = $1`,
      [id],
    );
    return rows[0] && toOrder(rows[0]);
  }

  async list(): Promise<readonly StoredOrder[]> {
    const { rows } = await this.pool.query<OrderRow>(
      `SELECT * FROM ${this.tables.orders} ORDER BY id`,
    );
    return rows.map(toOrder);
  }

  /**
   * Records the shipment; a `submitted` order becomes `dispatched`, a charged-back one keeps its
   * status. Idempotent. Throws when the order is unknown (the message is then retried).
   */
  async markDispatched(event: Dispatched): Promise<StoredOrder> {
    const shipment = {
      id: event.shipmentId,
      carrier: event.carrier,
      dispatchedAt: event.dispatchedAt,
    };
    const { rows } = await this.pool.query<OrderRow>(
      `UPDATE ${this.tables.orders}
       SET shipment = $2, status = CASE WHEN status = 'submitted' THEN 'dispatched' ELSE status END
       WHERE id = $1 RETURNING *`,
      [event.orderId, JSON.stringify(shipment)],
    );
    if (!rows[0]) {
      throw new Error(`order #${event.orderId} is unknown; cannot mark it dispatched`);
    }
    return toOrder(rows[0]);
  }

  /** Runs `fn` in a transaction on one connection; commits unless it throws. */
  private async transaction<T>(fn: (db: pg.PoolClient) => Promise<T>): Promise<T> {
    const db = await this.pool.connect();
    // A checked-out connection has no error listener: one that breaks mid-transaction would
    // otherwise crash the process instead of failing this request.
    const ignore = () => {};
    db.on('error', ignore);
    let broken: Error | undefined;
    try {
      await db.query('BEGIN');
      const value = await fn(db);
      await db.query('COMMIT');
      return value;
    } catch (error) {
      await db.query('ROLLBACK').catch((e: unknown) => {
        broken = e instanceof Error ? e : new Error(String(e));
      });
      throw error;
    } finally {
      db.removeListener('error', ignore);
      db.release(broken);
    }
  }
}

function toOrder(row: OrderRow): StoredOrder {
  return {
    id: row.id,
    ...(row.customer && { customer: row.customer }),
    currency: row.currency,
    lines: row.lines,
    totalCents: Number(row.total_cents),
    createdAt: row.created_at.toISOString(),
    status: row.status,
    ...(row.shipment && { shipment: row.shipment }),
    ...(row.chargeback && { chargeback: row.chargeback }),
  };
}
