import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import {
  DATABASE_URL,
  Fixture,
  inTransaction,
  postgresUp,
  tableName,
  testEvent,
  until,
} from '../../../test/support/outbox.js';
import { ConfigError } from '../../errors.js';
import { silentLogger } from '../../logger.js';
import { createService } from '../../runtime/service.js';
import { MemoryBroker } from '../../transports/memory/broker.js';
import { PostgresInbox } from '../postgres.js';
import { decodeRow, encodeProperties } from './codec.js';
import { OutboxError, OutboxSchemaError } from './errors.js';
import { POSTGRES_OUTBOX_TABLE, PostgresOutbox } from './outbox.js';

const up = await postgresUp();
const fakePool = { query: async () => ({ rows: [] }), connect: async () => ({}) as never };

describe('PostgresOutbox without a server', () => {
  it('reports every problem with its options at once', () => {
    const error = (() => {
      try {
        new PostgresOutbox({ pool: {} as never, table: 'a;drop' });
      } catch (e) {
        return e;
      }
    })();
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).problems).toHaveLength(2);
    expect(
      () => new PostgresOutbox({ pool: fakePool, table: `${'s'.repeat(40)}.${'t'.repeat(40)}` }),
    ).toThrow(/at most 63 characters/);
  });

  it('defaults to the table tidings_outbox, whose name is also its channel', () => {
    expect(POSTGRES_OUTBOX_TABLE).toBe('tidings_outbox');
    const outbox = new PostgresOutbox({ pool: fakePool });
    expect(outbox.table).toBe('"tidings_outbox"');
    expect(outbox.channel).toBe('tidings_outbox');
    const qualified = new PostgresOutbox({ pool: fakePool, table: 'app.events_out' });
    expect(qualified.table).toBe('"app"."events_out"');
    expect(qualified.migrationSql({ notify: true })).toContain(
      'CREATE OR REPLACE FUNCTION "app"."events_out_notify"()',
    );
  });

  it('has a migration that only creates what is missing', () => {
    const sql = new PostgresOutbox({ pool: fakePool }).migrationSql();
    for (const line of sql.split(';\n').filter((l) => /^\s*CREATE (TABLE|INDEX)/.test(l))) {
      expect(line).toMatch(/IF NOT EXISTS/);
    }
    expect(sql).toContain('txid xid8 NOT NULL DEFAULT pg_current_xact_id()');
    expect(sql).not.toMatch(/DROP|DELETE|TRUNCATE|TRIGGER|FUNCTION/);
    // The notify trigger only when asked for; replacing it is all it drops.
    const notifying = new PostgresOutbox({ pool: fakePool }).migrationSql({ notify: true });
    expect(notifying).toMatch(/AFTER INSERT ON "tidings_outbox" FOR EACH STATEMENT/);
    expect(notifying.match(/DROP \w+/g)).toEqual(['DROP TRIGGER']);
  });

  it('refuses a tx that cannot run queries, with an OutboxError', async () => {
    const outbox = new PostgresOutbox({ pool: fakePool });
    const service = createService({
      name: 'order',
      transport: new MemoryBroker().transport(),
      outbox,
      logger: silentLogger,
    });
    const error = await service
      .publish(testEvent('order'), { key: 'a', seq: 1, tag: 'x' }, { tx: {} })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OutboxError);
    expect((error as OutboxError).code).toBe('outbox');
    expect((error as OutboxError).message).toMatch(/the pg client you ran BEGIN on/);
  });

  it('stores properties as JSON and reads them back, Buffers included', () => {
    const properties = {
      messageId: 'm',
      timestamp: 1_700_000_000,
      headers: { a: 'x', n: 1.5, b: Buffer.from([0, 255]), list: [Buffer.from('y'), 2, null] },
    };
    const text = encodeProperties(properties);
    const row = { exchange: 'e', routing_key: 'e.v1.x', body: Buffer.from('{}') };
    const back = decodeRow({ ...row, properties: JSON.parse(text) });
    expect(back.properties).toEqual(properties);
    expect(decodeRow({ ...row, properties: text }).properties).toEqual(properties);
    expect(() => decodeRow({ ...row, properties: '[1]' })).toThrow(/not an object with headers/);
    expect(() => decodeRow({ ...row, properties: text, body: 'no' })).toThrow(/not bytes/);
  });
});

describe.skipIf(!up)('PostgresOutbox on PostgreSQL', () => {
  const fixture = new Fixture();
  afterAll(() => fixture.cleanup());

  it('says how to create a missing table, and creates it only when asked, from several places at once', async () => {
    const pool = fixture.pool();
    const outbox = new PostgresOutbox({ pool, table: tableName('missing') });
    await expect(outbox.checkSchema()).rejects.toBeInstanceOf(OutboxSchemaError);
    await expect(outbox.status()).rejects.toBeInstanceOf(OutboxSchemaError);
    const relayError = await outbox
      .relay({ transport: new MemoryBroker().transport(), logger: silentLogger })
      .start()
      .catch((e: unknown) => e);
    expect(relayError).toBeInstanceOf(OutboxSchemaError);
    expect((relayError as Error).message).toMatch(/tidings outbox migrate --table tidings_test_/);
    const writeError = await inTransaction(pool, (tx) =>
      outbox.write(tx, {
        message: {
          exchange: 'x',
          routingKey: 'x.v1.y',
          body: Buffer.from('1'),
          properties: { headers: {} },
        },
        envelope: { id: 'id-1' } as never,
        orderingKey: undefined,
      }),
    ).catch((e: unknown) => e);
    expect(writeError).toBeInstanceOf(OutboxSchemaError);

    const created = await fixture.outbox(pool);
    // Four more migrations of the same table at once, from two pools: all succeed.
    const other = fixture.pool();
    await Promise.all(
      [pool, other, pool, other].map((p) =>
        new PostgresOutbox({ pool: p, table: created.name }).migrate(),
      ),
    );
    expect(await created.checkSchema()).toEqual({ notifies: false });
    await created.migrate({ notify: true });
    expect(await created.checkSchema()).toEqual({ notifies: true });
    expect(await created.status()).toMatchObject({ pending: 0, failed: 0, sent: 0, lagMs: 0 });
  });

  it('writes in the caller transaction: a rollback leaves no row, a commit one row per publish', async () => {
    const pool = fixture.pool();
    const outbox = await fixture.outbox(pool);
    const event = testEvent();
    const service = createService({
      name: 'writer',
      transport: new MemoryBroker().transport(),
      outbox,
      logger: silentLogger,
    });
    await inTransaction(pool, async (tx) => {
      await service.publish(event, { key: 'k', seq: 1, tag: 'kept' }, { tx });
      await service.publish(event, { key: 'k', seq: 2, tag: 'kept' }, { tx, orderingKey: 'k' });
    });
    await inTransaction(pool, async (tx) => {
      await service.publish(event, { key: 'k', seq: 3, tag: 'rolled back' }, { tx });
      throw new Error('changed my mind');
    }).catch(() => {});
    const rows = await outbox.inspect('pending');
    expect(rows.map((r) => [r.routingKey, r.orderingKey, r.attempts])).toEqual([
      [`${event.exchange.name}.v1.changed`, null, 0],
      [`${event.exchange.name}.v1.changed`, 'k', 0],
    ]);
    // One transaction wrote both: same txid, ids in the order of writing.
    expect(rows[0]!.txid).toBe(rows[1]!.txid);
    expect(BigInt(rows[0]!.id) < BigInt(rows[1]!.id)).toBe(true);
    expect(await outbox.status()).toMatchObject({ pending: 2, retrying: 0, failed: 0 });
  });

  it('makes a second transaction writing the same key wait until the first one commits', async () => {
    const pool = fixture.pool();
    const outbox = await fixture.outbox(pool);
    const event = testEvent();
    const service = createService({
      name: 'writer',
      transport: new MemoryBroker().transport(),
      outbox,
      logger: silentLogger,
    });
    const first = await pool.connect();
    const second = await pool.connect();
    const third = await pool.connect();
    try {
      for (const c of [first, second, third]) await c.query('BEGIN');
      await service.publish(event, { key: 'a', seq: 1, tag: '' }, { tx: first, orderingKey: 'a' });
      const secondPid = Number((await second.query('SELECT pg_backend_pid() AS pid')).rows[0].pid);
      let secondWrote = false;
      const secondWrite = service
        .publish(event, { key: 'a', seq: 2, tag: '' }, { tx: second, orderingKey: 'a' })
        .then(() => {
          secondWrote = true;
        });
      // Another key is not held up.
      await service.publish(event, { key: 'b', seq: 1, tag: '' }, { tx: third, orderingKey: 'b' });
      await third.query('COMMIT');
      await until(async () => {
        const { rows } = await pool.query(
          `SELECT 1 FROM pg_locks WHERE pid = $1 AND locktype = 'advisory' AND NOT granted`,
          [secondPid],
        );
        return rows.length === 1;
      }, 'the second writer to wait on the key lock');
      expect(secondWrote).toBe(false);
      await first.query('COMMIT');
      await secondWrite;
      await second.query('COMMIT');
      const keyed = (await outbox.inspect('pending')).filter((r) => r.orderingKey === 'a');
      // The second row's id was drawn after the first transaction committed.
      expect(keyed).toHaveLength(2);
      expect(BigInt(keyed[0]!.id) < BigInt(keyed[1]!.id)).toBe(true);
    } finally {
      for (const c of [first, second, third]) c.release();
    }
  });

  it('deletes only sent rows past their retention when pruned', async () => {
    const pool = fixture.pool();
    const outbox = await fixture.outbox(pool);
    const t = outbox.table;
    await inTransaction(pool, async (tx) => {
      for (let i = 0; i < 2500; i++) {
        await outbox.write(tx, {
          message: {
            exchange: 'x',
            routingKey: 'x.v1.y',
            body: Buffer.from(String(i)),
            properties: { headers: {} },
          },
          envelope: { id: `m-${i}` } as never,
          orderingKey: undefined,
        });
      }
    });
    // 2,100 sent long ago, 100 sent but still kept, 300 pending.
    await pool.query(
      `UPDATE ${t} SET sent_at = now(), expires_at = now() - interval '1 second' WHERE id <= (SELECT min(id) + 2099 FROM ${t})`,
    );
    await pool.query(
      `UPDATE ${t} SET sent_at = now(), expires_at = now() + interval '1 hour'
       WHERE sent_at IS NULL AND id <= (SELECT min(id) + 2199 FROM ${t})`,
    );
    expect(await outbox.prune()).toBe(2100);
    expect(await outbox.prune()).toBe(0);
    expect(await outbox.status()).toMatchObject({ pending: 300, sent: 100 });
  });

  it('puts parked rows back in line with retry()', async () => {
    const pool = fixture.pool();
    const outbox = await fixture.outbox(pool);
    await inTransaction(pool, async (tx) => {
      for (const key of ['a', 'b', 'c']) {
        await outbox.write(tx, {
          message: {
            exchange: 'x',
            routingKey: 'x.v1.y',
            body: Buffer.from(key),
            properties: { headers: {} },
          },
          envelope: { id: `m-${key}` } as never,
          orderingKey: key,
        });
      }
    });
    await pool.query(
      `UPDATE ${outbox.table} SET failed_at = now(), attempts = 10, last_error = 'UnroutableError: no queue'`,
    );
    const parked = await outbox.inspect('failed');
    expect(parked.map((r) => [r.orderingKey, r.attempts, r.lastError])).toEqual([
      ['a', 10, 'UnroutableError: no queue'],
      ['b', 10, 'UnroutableError: no queue'],
      ['c', 10, 'UnroutableError: no queue'],
    ]);
    expect(await outbox.status()).toMatchObject({ pending: 0, failed: 3 });
    expect(await outbox.retry([parked[0]!.id])).toBe(1);
    expect(await outbox.retry([parked[0]!.id])).toBe(0);
    expect(await outbox.status()).toMatchObject({ pending: 1, failed: 2 });
    expect(await outbox.retry('all')).toBe(2);
    const pending = await outbox.inspect('pending');
    expect(pending.map((r) => [r.attempts, r.failedAt, r.lastError])).toEqual([
      [0, null, 'UnroutableError: no queue'],
      [0, null, 'UnroutableError: no queue'],
      [0, null, 'UnroutableError: no queue'],
    ]);
  });

  it('refuses a pool as tx: its queries would run outside the transaction', async () => {
    const pool = fixture.pool();
    const outbox = await fixture.outbox(pool);
    const error = await outbox
      .write(pool, {
        message: {
          exchange: 'x',
          routingKey: 'x.v1.y',
          body: Buffer.from('1'),
          properties: { headers: {} },
        },
        envelope: { id: 'via-pool' } as never,
        orderingKey: undefined,
      })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OutboxError);
    expect((error as Error).message).toMatch(/tx is a pool, not a connection/);
    expect(await outbox.status()).toMatchObject({ pending: 0 });
  });

  it("with the inbox: a handler's writes and the event it publishes commit together, once", async () => {
    const pool = fixture.pool();
    const outbox = await fixture.outbox(pool);
    const inboxTable = tableName('inbox');
    const inbox = new PostgresInbox<pg.PoolClient>({ pool, table: inboxTable });
    await inbox.ensureSchema();
    try {
      const broker = new MemoryBroker();
      const submitted = testEvent();
      const shipped = testEvent();
      const logistic = createService({
        name: 'logistic',
        transport: broker.transport(),
        outbox,
        logger: silentLogger,
        retry: { maxAttempts: 3, baseDelayMs: 10, jitter: 0 },
      });
      let calls = 0;
      logistic.on(
        submitted,
        inbox.handler(async (order, ctx, db) => {
          calls++;
          await ctx.publish(
            shipped,
            { ...order, tag: 'shipped' },
            { tx: db, orderingKey: order.key },
          );
          // The first attempt fails after publishing: its event must go with its rollback.
          if (calls === 1) throw new Error('the warehouse is busy');
        }),
      );
      await logistic.start();
      const shop = createService({
        name: 'shop',
        transport: broker.transport(),
        logger: silentLogger,
      });
      const sent = await shop.publish(submitted, { key: 'order:1', seq: 1, tag: 'new' });
      await until(async () => calls === 2 && (await outbox.status()).pending === 1, 'the retry');
      // The same message again (a redelivery): the inbox skips it, no second event.
      await shop.publish(submitted, { key: 'order:1', seq: 1, tag: 'new' }, { id: sent.id });
      await until(
        async () => broker.depth(`logistic.${submitted.exchange.name}.changed`) === 0,
        'the copy',
      );
      await logistic.stop();
      expect(calls).toBe(2);
      const rows = await pool.query(`SELECT ordering_key, properties FROM ${outbox.table}`);
      expect(rows.rows).toHaveLength(1);
      expect(rows.rows[0].ordering_key).toBe('order:1');
      expect(rows.rows[0].properties.headers['tidings-causation-id']).toBe(sent.id);
      expect(rows.rows[0].properties.correlationId).toBe(sent.correlationId);
    } finally {
      await pool.query(`DROP TABLE IF EXISTS ${inbox.table}`);
    }
  });

  it('works with a pg Client as well as a pool connection', async () => {
    const pool = fixture.pool();
    const outbox = await fixture.outbox(pool);
    const client = new pg.Client({ connectionString: DATABASE_URL });
    await client.connect();
    try {
      await client.query('BEGIN');
      await outbox.write(client, {
        message: {
          exchange: 'x',
          routingKey: 'x.v1.y',
          body: Buffer.from('1'),
          properties: { headers: {} },
        },
        envelope: { id: 'from-a-client' } as never,
        orderingKey: 'k',
      });
      await client.query('COMMIT');
    } finally {
      await client.end();
    }
    expect((await outbox.inspect('pending')).map((r) => r.messageId)).toEqual(['from-a-client']);
  });
});
