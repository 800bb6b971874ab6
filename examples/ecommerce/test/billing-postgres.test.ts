import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { type BillingService, createBillingService, PostgresBooks } from '@ecommerce/billing';
import { type OrderV2, orderChargeback, orderSubmit } from '@ecommerce/contracts';
import pg from 'pg';
import {
  createService,
  type Envelope,
  type Logger,
  type MemoryTransport,
  memoryTransport,
  NonRetryableError,
  type Service,
} from 'tidings';
import { brokerReachable, uniqueName } from 'tidings/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../scenario.js';

/*
 * Billing with its ledger in PostgreSQL: each message's journal entries and the record of its id
 * (the inbox) commit together, so a duplicated order never posts twice, whether the duplicate
 * reaches the same process, a restarted one, or another replica at the same moment. Against the
 * local PostgreSQL (DATABASE_URL, default postgres://postgres@127.0.0.1:5432/test), with tables
 * of a prefix unique to the run.
 */

const databaseUrl = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const db = new URL(databaseUrl);
const up = await brokerReachable(db.hostname, Number(db.port || 5432), 'PostgreSQL');

/** Records warnings and info lines, so tests can see what Billing said about duplicates. */
function recordingLogger(): Logger & { readonly lines: string[] } {
  const lines: string[] = [];
  const keep = (level: string) => (message: string) => {
    lines.push(`${level}: ${message}`);
  };
  return { lines, debug: () => {}, info: keep('info'), warn: keep('warn'), error: keep('error') };
}

const order = (id: number, price = 10.5): OrderV2 => ({
  id,
  currency: 'EUR',
  lines: [{ id: 1, quantity: 2, price }],
});

describe.skipIf(!up)('Billing with its ledger in PostgreSQL (the inbox)', () => {
  const prefix = `${uniqueName('billing_test').replaceAll('-', '_')}_`;
  const pools: pg.Pool[] = [];
  let admin: pg.Pool;

  /** A pool of its own, as a separate process or replica would have. */
  function newPool(): pg.Pool {
    const pool = new pg.Pool({ connectionString: databaseUrl, max: 5 });
    pools.push(pool);
    return pool;
  }

  /** Books on their own pool and tables of their own prefix (default: the suite's). */
  async function books(tablePrefix = prefix, logger: Logger = recordingLogger()) {
    const b = new PostgresBooks({ pool: newPool(), tablePrefix, logger });
    await b.ensureSchema();
    return b;
  }

  async function inboxKeys(tablePrefix = prefix): Promise<string[]> {
    const { rows } = await admin.query(`SELECT key FROM ${tablePrefix}inbox ORDER BY key`);
    return rows.map((r: { key: string }) => r.key);
  }

  beforeAll(() => {
    admin = newPool();
  });

  afterAll(async () => {
    const { rows } = await admin.query(
      `SELECT tablename FROM pg_tables WHERE schemaname = current_schema() AND tablename LIKE $1`,
      [`${prefix.replaceAll('_', '\\_')}%`],
    );
    if (rows.length > 0) {
      await admin.query(
        `DROP TABLE IF EXISTS ${rows.map((r: { tablename: string }) => r.tablename).join(', ')} CASCADE`,
      );
    }
    for (const pool of pools) await pool.end();
  });

  describe('through the service', () => {
    let transport: MemoryTransport;
    let billing: BillingService<PostgresBooks>;
    let shop: Service;
    const handled: Envelope[] = [];
    const tables = `${prefix}svc_`;

    async function startBilling(logger = recordingLogger()) {
      transport = memoryTransport();
      billing = createBillingService({ transport, books: await books(tables, logger), logger });
      billing.service.observe('handled', ({ envelope }) => void handled.push(envelope));
      const url = await billing.start();
      shop = createService({ name: 'order', transport });
      return { url, logger };
    }

    async function stopBilling() {
      await shop.stop();
      await billing.stop();
      await transport.close();
    }

    it('posts a duplicated order once, and still once after a restart', async () => {
      const first = await startBilling();
      const sent = await shop.publish(orderSubmit, order(1));
      await shop.publish(orderSubmit, order(1), { id: sent.id });
      await waitFor('both copies handled', 5000, async () => handled.length === 2);
      expect(await billing.books.journal()).toHaveLength(1);
      expect(first.logger.lines).toContain(
        `info: message ${sent.id} was already posted; skipping the duplicate`,
      );
      await stopBilling();

      // A new process: a new broker connection, new pools, the same database.
      const second = await startBilling();
      await shop.publish(orderSubmit, order(1), { id: sent.id });
      const next = await shop.publish(orderSubmit, order(2, 0.25));
      await waitFor(
        'the replayed and the new order handled',
        5000,
        async () => handled.length === 4,
      );
      const journal = await billing.books.journal();
      expect(journal.map((e) => [e.id, e.orderId, e.messageId])).toEqual([
        ['J-1', 1, sent.id],
        ['J-2', 2, next.id],
      ]);
      expect(second.logger.lines).toContain(
        `info: message ${sent.id} was already posted; skipping the duplicate`,
      );
      expect(await inboxKeys(tables)).toEqual([`billing:${sent.id}`, `billing:${next.id}`].sort());

      // The HTTP API reads the same books: 21.00 + 0.50 posted, nothing reversed yet.
      const balances = await (await fetch(`${second.url}/balances`)).json();
      expect(balances).toEqual({
        accounts: [
          { account: 'accounts-receivable', debits: 2150, credits: 0, balance: 2150 },
          { account: 'revenue', debits: 0, credits: 2150, balance: 2150 },
        ],
        totalDebits: 2150,
        totalCredits: 2150,
        balanced: true,
      });
      const chargeback = { orderId: 1, amount: 21, reason: 'stolen card' };
      const cb = await shop.publish(orderChargeback, chargeback);
      await shop.publish(orderChargeback, chargeback, { id: cb.id });
      await waitFor('the chargeback and its copy', 5000, async () => handled.length === 6);
      const reversal = (await billing.books.journal()).at(-1)!;
      expect(reversal).toMatchObject({ id: 'J-3', reverses: 'J-1', orderId: 1, messageId: cb.id });
      expect(reversal.postings).toEqual([
        { account: 'revenue', side: 'debit', cents: 2100 },
        { account: 'accounts-receivable', side: 'credit', cents: 2100 },
      ]);
      expect(await (await fetch(`${second.url}/journal`)).json()).toHaveLength(3);
      await stopBilling();
    });

    it('serves the same HTTP answers as the in-memory books', async () => {
      const memory = createBillingService({ transport: memoryTransport() });
      const persisted = createBillingService({
        transport: memoryTransport(),
        books: await books(`${prefix}http_`),
      });
      const urls = [await memory.start(), await persisted.start()];
      const answers = await Promise.all(
        urls.map(async (url) => (await fetch(`${url}/balances`)).json()),
      );
      expect(answers[1]).toEqual(answers[0]);
      await Promise.all([memory.stop(), persisted.stop()]);
    });
  });

  it('lets one of two replicas post a message they race on, and never twice', async () => {
    const tables = `${prefix}race_`;
    const [a, b] = [await books(tables), await books(tables)];
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) => i + 1).flatMap((id) =>
        // Four deliveries of one message per order, two on each replica, all at once.
        [a, b, a, b].map((replica) => replica.recordSale(order(id), `m-${id}`)),
      ),
    );
    const posted = results.filter((e) => e !== undefined);
    expect(posted).toHaveLength(20);
    const journal = await a.journal();
    // One entry per order, numbered without gaps in commit order.
    expect(journal.map((e) => e.orderId).sort((x, y) => x - y)).toEqual(
      Array.from({ length: 20 }, (_, i) => i + 1),
    );
    expect(journal.map((e) => e.id)).toEqual(Array.from({ length: 20 }, (_, i) => `J-${i + 1}`));
    expect(await inboxKeys(tables)).toHaveLength(20);

    // Two different messages about the same order (a producer that re-sent it under a new id):
    // the books' own rule, under the same lock, still bills it once.
    const again = await Promise.all([
      a.recordSale(order(21), 'm-21-first'),
      b.recordSale(order(21), 'm-21-second'),
    ]);
    expect(again.filter((e) => e !== undefined)).toHaveLength(1);
    expect((await b.journal()).filter((e) => e.orderId === 21)).toHaveLength(1);
  });

  it('lets two billing services on one queue post each of 30 duplicated orders once', async () => {
    const tables = `${prefix}replicas_`;
    const transport = memoryTransport();
    const replicas = [
      createBillingService({ transport, books: await books(tables) }),
      createBillingService({ transport, books: await books(tables) }),
    ];
    let handled = 0;
    const perReplica = [0, 0];
    for (const [i, r] of replicas.entries()) {
      r.service.observe('handled', () => {
        handled++;
        perReplica[i]!++;
      });
    }
    for (const r of replicas) await r.start();
    const shop = createService({ name: 'order', transport });
    for (let id = 1; id <= 30; id++) {
      const sent = await shop.publish(orderSubmit, order(id));
      await shop.publish(orderSubmit, order(id), { id: sent.id });
    }
    await waitFor('60 deliveries handled', 10_000, async () => handled === 60);
    expect(perReplica.every((n) => n > 0)).toBe(true);
    const journal = await replicas[0]!.books.journal();
    expect(journal).toHaveLength(30);
    expect(new Set(journal.map((e) => e.orderId)).size).toBe(30);
    for (const r of replicas) await r.stop();
    await transport.close();
  });

  it('keeps the rules: a chargeback that overtakes its sale is retried, a partial one is not', async () => {
    const tables = `${prefix}rules_`;
    const logger = recordingLogger();
    const b = await books(tables, logger);
    const chargeback = { orderId: 7, amount: 21, reason: 'fraud' };
    const early = await b.recordChargeback(chargeback, 'c-1').catch((e: unknown) => e);
    expect(early).toBeInstanceOf(Error);
    expect(early).not.toBeInstanceOf(NonRetryableError);
    // Nothing was recorded, so the retry of the same message runs.
    expect(await inboxKeys(tables)).toEqual([]);
    await b.recordSale(order(7), 's-7');
    const partial = { ...chargeback, amount: 5 };
    await expect(b.recordChargeback(partial, 'c-2')).rejects.toBeInstanceOf(NonRetryableError);
    const reversal = await b.recordChargeback(chargeback, 'c-1');
    expect(reversal).toMatchObject({ id: 'J-2', reverses: 'J-1' });
    expect(await b.recordChargeback(chargeback, 'c-1')).toBeUndefined();
    expect(await b.recordChargeback(chargeback, 'c-3')).toBeUndefined();
    expect(logger.lines).toContain(
      'warn: order #7 was already reversed in J-2; ignoring message c-3',
    );
    expect(await inboxKeys(tables)).toEqual(['billing:c-1', 'billing:c-3', 'billing:s-7']);
    expect((await b.trialBalance()).accounts.map((a) => a.balance)).toEqual([0, 0]);
  });

  it('rolls back the entry and the record together when a posting fails midway', async () => {
    const tables = `${prefix}crash_`;
    const pool = newPool();
    let failNext = true;
    // A pool whose connections fail once on the postings insert, after the journal row: a crash
    // in the middle of the transaction, as a lost connection would cause.
    const flaky = {
      query: pool.query.bind(pool),
      async connect() {
        const client = await pool.connect();
        return {
          release: (error?: Error | boolean) => client.release(error),
          query: (text: string, values?: unknown[]) => {
            if (failNext && text.includes(`INSERT INTO ${tables}postings`)) {
              failNext = false;
              return Promise.reject(new Error('connection lost'));
            }
            return client.query(text, values);
          },
        };
      },
    };
    const b = new PostgresBooks({ pool: flaky, tablePrefix: tables, logger: recordingLogger() });
    await b.ensureSchema();
    await expect(b.recordSale(order(9), 'm-9')).rejects.toThrow('connection lost');
    expect(await b.journal()).toEqual([]);
    expect(await inboxKeys(tables)).toEqual([]);
    // The redelivery posts it, once, under the number the failed attempt gave back.
    expect(await b.recordSale(order(9), 'm-9')).toMatchObject({ id: 'J-1', orderId: 9 });
    expect(await b.recordSale(order(9), 'm-9')).toBeUndefined();
    expect(await b.journal()).toHaveLength(1);
  });

  it('refuses a table prefix that is not a plain identifier', () => {
    expect(() => new PostgresBooks({ pool: admin, tablePrefix: 'x; DROP TABLE y' })).toThrow(
      /tablePrefix must be lowercase letters/,
    );
  });

  it('runs as a process with DATABASE_URL (PostgreSQL) and without it (memory)', async () => {
    const main = fileURLToPath(new URL('../billing/src/main.ts', import.meta.url));
    async function startMain(env: NodeJS.ProcessEnv) {
      const child = spawn(process.execPath, ['--import', 'tsx', main], {
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
      await waitFor('billing to listen', 20_000, async () => /HTTP on/.test(output));
      const url = /HTTP on (\S+),/.exec(output)![1]!;
      const balances = await (await fetch(`${url}/balances`)).json();
      const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      return { output, balances, code: await exited };
    }
    const tables = `${prefix}main_`;
    const durable = await startMain({ DATABASE_URL: databaseUrl, BILLING_TABLE_PREFIX: tables });
    expect(durable.output).toContain(`ledger in PostgreSQL ${databaseUrl}`);
    expect(durable.balances).toMatchObject({ totalDebits: 0, balanced: true });
    expect(durable.code).toBe(0);
    expect(await inboxKeys(tables)).toEqual([]);
    const memory = await startMain({});
    expect(memory.output).toContain('ledger in memory');
    expect(memory.code).toBe(0);
  }, 60_000);
});
