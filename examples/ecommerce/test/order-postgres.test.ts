import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createBillingService } from '@ecommerce/billing';
import { createLogisticService } from '@ecommerce/logistic';
import { createNotificationService } from '@ecommerce/notification';
import { createOrderService, OrdersSchemaError, PostgresOrders } from '@ecommerce/order';
import pg from 'pg';
import { type MemoryTransport, memoryTransport, silentLogger } from 'tidings';
import { brokerReachable, uniqueName } from 'tidings/testing';
import { afterAll, describe, expect, it } from 'vitest';
import { checkOutcome, ORDERS, runScenario, waitFor } from '../scenario.js';

/*
 * The Order service with its orders in PostgreSQL and its events in a transactional outbox:
 * the order and its event commit together. Against the local PostgreSQL (DATABASE_URL, default
 * postgres://postgres@127.0.0.1:5432/test), on tables of a prefix unique to each test.
 */

const databaseUrl = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const db = new URL(databaseUrl);
const up = await brokerReachable(db.hostname, Number(db.port || 5432), 'PostgreSQL');

const draft = ORDERS[0]!;

async function post(url: string, body: unknown): Promise<{ status: number; body: unknown }> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: response.status, body: await response.json() };
}

describe.skipIf(!up)('Order with its orders in PostgreSQL and an outbox', () => {
  const pools: pg.Pool[] = [];
  const prefixes: string[] = [];
  const stops: (() => Promise<void>)[] = [];

  function newPool(): pg.Pool {
    const pool = new pg.Pool({ connectionString: databaseUrl, max: 6 });
    pool.on('error', () => {});
    pools.push(pool);
    return pool;
  }

  async function orders(migrate = true): Promise<PostgresOrders> {
    const tablePrefix = `${uniqueName('order_test').replaceAll('-', '_')}_`;
    prefixes.push(tablePrefix);
    const book = new PostgresOrders({ pool: newPool(), tablePrefix });
    if (migrate) await book.migrate();
    return book;
  }

  /** Order on PostgreSQL and the three other services in memory, on one memory transport. */
  async function shop(book: PostgresOrders, transport: MemoryTransport = memoryTransport()) {
    const common = { transport, logger: silentLogger };
    const billing = createBillingService(common);
    const logistic = createLogisticService(common);
    const notification = createNotificationService(common);
    const order = createOrderService({ ...common, orders: book });
    const urls = {
      billing: await billing.start(),
      logistic: await logistic.start(),
      notification: await notification.start(),
      order: await order.start(),
    };
    const stop = async () => {
      await order.stop();
      await Promise.all([billing.stop(), logistic.stop(), notification.stop()]);
    };
    stops.push(stop);
    return { order, billing, urls, stop, transport };
  }

  afterAll(async () => {
    for (const stop of stops) await stop().catch(() => {});
    const admin = newPool();
    for (const prefix of prefixes) {
      await admin.query(
        `DROP TABLE IF EXISTS ${prefix}orders, ${prefix}outbox; DROP FUNCTION IF EXISTS ${prefix}outbox_notify()`,
      );
    }
    for (const pool of pools) await pool.end();
  });

  it('plays the scenario with the same outcome as in memory', async () => {
    const book = await orders();
    const { urls, order } = await shop(book);
    const outcome = await runScenario(urls, () => {}, 20_000);
    expect(checkOutcome(outcome)).toEqual([]);
    // Every event went through the outbox, and the relay has sent them all (it counts a row once
    // the batch that marks it has committed, which may be after its delivery).
    await waitFor(
      'the relay to mark them all',
      10_000,
      async () => order.relay?.stats.sent === ORDERS.length + 1,
    );
    const status = await book.outbox.status();
    expect(status).toMatchObject({ pending: 0, failed: 0, sent: ORDERS.length + 1 });
    expect(order.relay?.stats.sent).toBe(ORDERS.length + 1);
    const { rows } = await pools[0]!.query(
      `SELECT ordering_key, routing_key FROM ${book.tables.outbox} ORDER BY id`,
    );
    expect(rows).toEqual([
      { ordering_key: 'order:1', routing_key: 'order.v2.submit' },
      { ordering_key: 'order:2', routing_key: 'order.v2.submit' },
      { ordering_key: 'order:3', routing_key: 'order.v2.submit' },
      { ordering_key: 'order:2', routing_key: 'order.v1.chargeback' },
    ]);
  });

  it('keeps an order taken while nothing relays, and publishes it once a relay runs', async () => {
    const book = await orders();
    const { urls, order, billing, transport } = await shop(book);
    // As if the relay were down (or the broker unreachable): the API still takes orders.
    await order.relay!.stop();
    const placed = await post(`${urls.order}/orders`, draft);
    expect(placed.status).toBe(201);
    expect(await book.list()).toHaveLength(1);
    expect(await book.outbox.status()).toMatchObject({ pending: 1 });
    expect(await billing.books.journal()).toEqual([]);
    const relay = book.outbox.relay({ transport, logger: silentLogger });
    stops.push(() => relay.stop());
    await relay.start();
    await waitFor(
      'the sale to be posted',
      10_000,
      async () => (await billing.books.journal()).length === 1,
    );
    await waitFor(
      'the row to be marked sent',
      10_000,
      async () => (await book.outbox.status()).pending === 0,
    );
  });

  it('stores nothing when the event cannot be written, and writes no event for a refused change', async () => {
    const book = await orders();
    const { urls } = await shop(book);
    // Take the outbox away: the order's transaction fails as a whole.
    await pools.at(-1)!.query(`DROP TABLE ${book.tables.outbox} CASCADE`);
    const refused = await post(`${urls.order}/orders`, draft);
    expect(refused.status).toBe(503);
    expect(JSON.stringify(refused.body)).toMatch(/outbox|does not exist/);
    expect(await book.list()).toEqual([]);
    await book.migrate();
    const placed = await post(`${urls.order}/orders`, draft);
    expect(placed.status).toBe(201);
    const id = (placed.body as { id: number }).id;
    expect(await book.list()).toHaveLength(1);
    // A chargeback of an unknown order or a second one writes nothing.
    expect((await post(`${urls.order}/orders/999/chargeback`, { reason: 'x' })).status).toBe(404);
    expect((await post(`${urls.order}/orders/${id}/chargeback`, { reason: 'x' })).status).toBe(200);
    expect((await post(`${urls.order}/orders/${id}/chargeback`, { reason: 'x' })).status).toBe(409);
    const { rows } = await pools
      .at(-1)!
      .query(`SELECT routing_key FROM ${book.tables.outbox} ORDER BY id`);
    expect(rows.map((r) => r.routing_key)).toEqual(['order.v2.submit', 'order.v1.chargeback']);
  });

  it('refuses a start without its tables, and never creates them by itself', async () => {
    const book = await orders(false);
    await expect(book.checkSchema()).rejects.toBeInstanceOf(OrdersSchemaError);
    const service = createOrderService({
      transport: memoryTransport(),
      logger: silentLogger,
      orders: book,
    });
    await expect(service.start()).rejects.toThrow(/does not exist/);
    const { rows } = await pools
      .at(-1)!
      .query(`SELECT count(*)::int AS n FROM pg_tables WHERE tablename LIKE $1`, [
        `${prefixes.at(-1)!.replaceAll('_', '\\_')}%`,
      ]);
    expect(rows[0].n).toBe(0);
  });

  it('runs as a process with DATABASE_URL (after its migration) and without it', async () => {
    const dir = (file: string) => fileURLToPath(new URL(`../order/src/${file}`, import.meta.url));
    function runTs(file: string, env: NodeJS.ProcessEnv) {
      const child = spawn(process.execPath, ['--import', 'tsx', dir(file)], {
        env: {
          ...process.env,
          BROKER_URL: 'memory://',
          PORT: '0',
          DATABASE_URL: undefined,
          ...env,
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let output = '';
      const collect = (c: Buffer) => {
        output += c.toString();
      };
      child.stdout.on('data', collect);
      child.stderr.on('data', collect);
      const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
      return { child, output: () => output, exited };
    }
    const tablePrefix = `${uniqueName('order_main').replaceAll('-', '_')}_`;
    prefixes.push(tablePrefix);
    const secret = new URL(databaseUrl);
    secret.password = 'not-shown';
    const env = { DATABASE_URL: secret.toString(), ORDER_TABLE_PREFIX: tablePrefix };

    const early = runTs('main.ts', env);
    expect(await early.exited).toBe(1);
    expect(early.output()).toMatch(/do not exist; create them first: .*migrate\.ts/);

    const migrate = runTs('migrate.ts', env);
    expect(await migrate.exited).toBe(0);
    expect(migrate.output()).toMatch(/_outbox are ready on postgres:\/\/postgres:\*\*\*@/);

    for (const [extra, where] of [
      [env, /orders in PostgreSQL postgres:\/\/postgres:\*\*\*@\S+, with an outbox/],
      [{}, /orders in memory/],
    ] as const) {
      const main = runTs('main.ts', extra);
      await waitFor('order to listen', 20_000, async () => /HTTP on/.test(main.output()));
      const url = /HTTP on (\S+),/.exec(main.output())![1]!;
      expect(main.output()).toMatch(where);
      expect((await fetch(`${url}/orders`)).status).toBe(200);
      main.child.kill('SIGTERM');
      expect(await main.exited).toBe(0);
      expect(main.output()).not.toContain('not-shown');
    }
  }, 60_000);
});
