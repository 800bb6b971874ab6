import pg from 'pg';
import { afterAll, beforeAll, describe, expect, expectTypeOf, it } from 'vitest';
import { z } from 'zod';
import { defineEvent, defineExchange } from '../contracts/event.js';
import { ConfigError } from '../errors.js';
import { silentLogger } from '../logger.js';
import { createService, type HandlerContext, type Service } from '../runtime/service.js';
import { brokerReachable, uniqueName } from '../testing/broker.js';
import { waitFor } from '../testing/conformance.js';
import { describeIdempotencyStoreConformance } from '../testing/stores.js';
import { MemoryBroker } from '../transports/memory/broker.js';
import {
  IdempotencyStoreError,
  POSTGRES_INBOX_TABLE,
  POSTGRES_STORE_TABLE,
  PostgresIdempotencyStore,
  PostgresInbox,
} from './postgres.js';

const databaseUrl = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const url = new URL(databaseUrl);
const up = await brokerReachable(url.hostname, Number(url.port || 5432), 'PostgreSQL');

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
/** A table name unique to this run: PostgreSQL identifiers allow no dashes. */
const tableName = (what: string) => uniqueName(`tidings_test_${what}`).replaceAll('-', '_');

const submit = defineEvent(defineExchange('order'), 'submit', z.object({ id: z.number() }));

describe('Postgres stores without a server', () => {
  it('report every problem with their options at once', () => {
    const error = (() => {
      try {
        new PostgresInbox({ pool: {} as never, table: 'a;drop', ttlMs: -1 });
      } catch (e) {
        return e;
      }
    })();
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).problems).toHaveLength(3);
    expect(
      () =>
        new PostgresIdempotencyStore({
          pool: { query: async () => ({ rows: [] }) },
          table: 'a.b.c',
        }),
    ).toThrowError(/table must be a table name/);
  });

  it('default to the tables tidings_processed and tidings_inbox', () => {
    const pool = { query: async () => ({ rows: [] }), connect: async () => ({}) as never };
    expect(POSTGRES_STORE_TABLE).toBe('tidings_processed');
    expect(POSTGRES_INBOX_TABLE).toBe('tidings_inbox');
    expect(new PostgresIdempotencyStore({ pool }).table).toBe('"tidings_processed"');
    expect(new PostgresInbox({ pool, table: 'app.inbox' }).table).toBe('"app"."inbox"');
  });

  it('type the client of inbox functions with the pool connection type given', async () => {
    const unused = new pg.Pool();
    const inbox = new PostgresInbox<pg.PoolClient>({ pool: unused });
    inbox.handler<{ id: number }>((_payload, _context, client) => {
      expectTypeOf(client).toEqualTypeOf<pg.PoolClient>();
    });
    const service = createService({ name: 'billing', transport: new MemoryBroker().transport() });
    // The payload type flows from the event (and its version), as with service.on.
    service.on(
      submit,
      inbox.handler(async (order, context, client) => {
        expectTypeOf(order).toEqualTypeOf<{ id: number }>();
        expectTypeOf(context.envelope.id).toEqualTypeOf<string>();
        expectTypeOf(client).toEqualTypeOf<pg.PoolClient>();
      }),
    );
    service.on(
      submit,
      // @ts-expect-error: the payload has no field `total`
      inbox.handler((order: { total: number }) => order.total),
      { queue: 'billing.other' },
    );
    await unused.end();
  });
});

describe.skipIf(!up)('on PostgreSQL', () => {
  const pools = [new pg.Pool({ connectionString: databaseUrl, max: 4, idleTimeoutMillis: 200 })];
  const admin = pools[0]!;
  const tables: string[] = [];
  const pool = () => {
    const p = new pg.Pool({ connectionString: databaseUrl, max: 4, idleTimeoutMillis: 200 });
    pools.push(p);
    return p;
  };

  afterAll(async () => {
    for (const t of tables) await admin.query(`DROP TABLE IF EXISTS ${t}`);
    await Promise.all(pools.map((p) => p.end()));
  });

  describe('PostgresIdempotencyStore', () => {
    const table = tableName('processed');
    const second = pool();

    beforeAll(async () => {
      tables.push(table);
      await new PostgresIdempotencyStore({ pool: admin, table }).ensureSchema();
    });

    let created = 0;
    describeIdempotencyStoreConformance('PostgreSQL', {
      // Alternate between two pools, as two processes would have.
      create: () => new PostgresIdempotencyStore({ pool: created++ % 2 ? second : admin, table }),
      features: { tokenRelease: true },
    });

    it('creates its table once, even when asked from several places at once', async () => {
      const fresh = tableName('schema');
      tables.push(fresh);
      const stores = [admin, second, admin, second].map(
        (p) => new PostgresIdempotencyStore({ pool: p, table: fresh }),
      );
      await Promise.all(stores.map((s) => s.ensureSchema()));
      await stores[0]!.ensureSchema();
      const { rows } = await admin.query(
        `SELECT column_name, data_type FROM information_schema.columns
         WHERE table_name = $1 ORDER BY ordinal_position`,
        [fresh],
      );
      expect(rows).toEqual([
        { column_name: 'key', data_type: 'text' },
        { column_name: 'state', data_type: 'text' },
        { column_name: 'token', data_type: 'text' },
        { column_name: 'expires_at', data_type: 'timestamp with time zone' },
      ]);
    });

    it('keeps a token while busy and drops it once done', async () => {
      const store = new PostgresIdempotencyStore({ pool: admin, table });
      const key = uniqueName('k');
      await store.claim(key, 60_000);
      const row = async () =>
        (
          await admin.query(
            `SELECT state, token, expires_at > now() + interval '50 seconds' AS later
             FROM ${table} WHERE key = $1`,
            [key],
          )
        ).rows[0];
      expect(await row()).toMatchObject({ state: 'busy', token: expect.any(String), later: true });
      await store.complete(key, 3_600_000);
      expect(await row()).toEqual({ state: 'done', token: null, later: true });
    });

    it('purges expired rows, on demand and opportunistically on claim', async () => {
      const store = new PostgresIdempotencyStore({ pool: admin, table, purgeIntervalMs: 100 });
      const [old, kept] = [uniqueName('old'), uniqueName('kept')];
      await store.complete(old, 50);
      await store.complete(kept, 60_000);
      await sleep(150);
      const count = async (key: string) =>
        (await admin.query(`SELECT 1 FROM ${table} WHERE key = $1`, [key])).rows.length;
      expect(await count(old)).toBe(1);
      await store.claim(uniqueName('other'), 1000);
      expect(await count(old)).toBe(0);
      expect(await count(kept)).toBe(1);
      await store.complete(old, 10);
      await sleep(50);
      expect(await store.purgeExpired()).toBeGreaterThanOrEqual(1);
      expect(await count(old)).toBe(0);
    });

    it('never purges on claim with purgeIntervalMs: Infinity', async () => {
      const store = new PostgresIdempotencyStore({ pool: admin, table, purgeIntervalMs: Infinity });
      const old = uniqueName('old');
      await store.complete(old, 10);
      await sleep(50);
      await store.claim(uniqueName('other'), 1000);
      const { rows } = await admin.query(`SELECT 1 FROM ${table} WHERE key = $1`, [old]);
      expect(rows).toHaveLength(1);
      expect(await store.claim(old, 1000)).toBe('claimed');
    });

    it('fails a claim with IdempotencyStoreError when the table is missing', async () => {
      const store = new PostgresIdempotencyStore({ pool: admin, table: tableName('missing') });
      const error = await store.claim('k', 1000).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(IdempotencyStoreError);
      expect((error as Error).message).toMatch(/failed to claim "k": relation .* does not exist/);
    });

    it('fails a claim with IdempotencyStoreError while PostgreSQL is unreachable', async () => {
      const down = new pg.Pool({ connectionString: 'postgres://postgres@127.0.0.1:1/test' });
      const store = new PostgresIdempotencyStore({ pool: down, table });
      await expect(store.claim('k', 1000)).rejects.toBeInstanceOf(IdempotencyStoreError);
      await down.end();
    });
  });

  describe('PostgresInbox', () => {
    const inboxTable = tableName('inbox');
    const ledger = tableName('ledger');
    const services: Service[] = [];
    const inbox = (options: { ttlMs?: number; pool?: pg.Pool } = {}) =>
      new PostgresInbox<pg.PoolClient>({
        pool: options.pool ?? admin,
        table: inboxTable,
        logger: silentLogger,
        ...(options.ttlMs === undefined ? {} : { ttlMs: options.ttlMs }),
      });
    /** The effect under test: one ledger row per run. */
    const post = (client: pg.PoolClient, key: string) =>
      client.query(`INSERT INTO ${ledger} (key) VALUES ($1)`, [key]);
    const posted = async (key: string) =>
      (await admin.query(`SELECT 1 FROM ${ledger} WHERE key = $1`, [key])).rows.length;
    const recorded = async (key: string) =>
      (await admin.query(`SELECT 1 FROM ${inboxTable} WHERE key = $1`, [key])).rows.length;

    beforeAll(async () => {
      tables.push(inboxTable, ledger);
      await inbox().ensureSchema();
      // No unique key on purpose: only the inbox stands between a duplicate and a double post.
      await admin.query(`CREATE TABLE ${ledger} (key text NOT NULL, at timestamptz DEFAULT now())`);
    });

    afterAll(async () => {
      for (const s of services.splice(0)) await s.stop();
    });

    it('creates the inbox table with key, processed_at and expires_at', async () => {
      const { rows } = await admin.query(
        `SELECT column_name FROM information_schema.columns
         WHERE table_name = $1 ORDER BY ordinal_position`,
        [inboxTable],
      );
      expect(rows.map((r) => r.column_name)).toEqual(['key', 'processed_at', 'expires_at']);
    });

    it('runs a key once, and reports the duplicate without running it again', async () => {
      const key = uniqueName('k');
      const first = await inbox().run(key, async (client) => {
        await post(client, key);
        return 42;
      });
      expect(first).toEqual({ status: 'processed', value: 42 });
      let ranAgain = false;
      const second = await inbox().run(key, () => {
        ranAgain = true;
      });
      expect(second).toEqual({ status: 'duplicate' });
      expect(ranAgain).toBe(false);
      expect(await posted(key)).toBe(1);
      expect(await recorded(key)).toBe(1);
    });

    it('rolls back the writes and the inbox row when the function throws, so a retry runs', async () => {
      const key = uniqueName('k');
      const failure = new Error('ledger rule broken');
      await expect(
        inbox().run(key, async (client) => {
          await post(client, key);
          throw failure;
        }),
      ).rejects.toBe(failure);
      expect(await posted(key)).toBe(0);
      expect(await recorded(key)).toBe(0);
      expect(await inbox().run(key, (client) => post(client, key).then(() => 'ok'))).toEqual({
        status: 'processed',
        value: 'ok',
      });
      expect(await posted(key)).toBe(1);
    });

    it('runs the effects once when two consumers race on a key: the second waits, then skips', async () => {
      const key = uniqueName('k');
      let open!: () => void;
      const gate = new Promise<void>((resolve) => {
        open = resolve;
      });
      let started!: () => void;
      const firstStarted = new Promise<void>((resolve) => {
        started = resolve;
      });
      const order: string[] = [];
      const first = inbox()
        .run(key, async (client) => {
          await post(client, key);
          started();
          await gate;
          order.push('first committed');
        })
        .then((r) => {
          order.push(`first ${r.status}`);
          return r;
        });
      await firstStarted;
      const second = inbox({ pool: pool() })
        .run(key, async (client) => {
          await post(client, key);
        })
        .then((r) => {
          order.push(`second ${r.status}`);
          return r;
        });
      await sleep(200);
      expect(order).toEqual([]);
      open();
      expect((await first).status).toBe('processed');
      expect((await second).status).toBe('duplicate');
      expect(order).toEqual(['first committed', 'first processed', 'second duplicate']);
      expect(await posted(key)).toBe(1);
    });

    it('runs the waiting consumer when the first one rolls back', async () => {
      const key = uniqueName('k');
      let fail!: () => void;
      const gate = new Promise<void>((resolve) => {
        fail = resolve;
      });
      let started!: () => void;
      const firstStarted = new Promise<void>((resolve) => {
        started = resolve;
      });
      const first = inbox().run(key, async (client) => {
        await post(client, key);
        started();
        await gate;
        throw new Error('crashed mid-handler');
      });
      await firstStarted;
      const second = inbox({ pool: pool() }).run(key, (client) => post(client, key));
      await sleep(100);
      fail();
      await expect(first).rejects.toThrow('crashed mid-handler');
      expect((await second).status).toBe('processed');
      expect(await posted(key)).toBe(1);
    });

    it('runs a key again once its record expired', async () => {
      const key = uniqueName('k');
      const short = inbox({ ttlMs: 150 });
      expect((await short.run(key, (c) => post(c, key))).status).toBe('processed');
      expect((await short.run(key, (c) => post(c, key))).status).toBe('duplicate');
      await sleep(300);
      expect((await short.run(key, (c) => post(c, key))).status).toBe('processed');
      expect(await posted(key)).toBe(2);
    });

    it('rejects with IdempotencyStoreError, running nothing, while the database is unreachable', async () => {
      const down = new pg.Pool({ connectionString: 'postgres://postgres@127.0.0.1:1/test' });
      let ran = false;
      await expect(
        inbox({ pool: down }).run('k', () => {
          ran = true;
        }),
      ).rejects.toBeInstanceOf(IdempotencyStoreError);
      expect(ran).toBe(false);
      await down.end();
    });

    describe('as a handler', () => {
      async function setup(
        fn: (id: number, client: pg.PoolClient, context: HandlerContext) => unknown,
        consumers: number,
      ) {
        const broker = new MemoryBroker();
        const counts = { handled: 0, failed: 0, skipped: 0 };
        for (let i = 0; i < consumers; i++) {
          const s = createService({
            name: 'billing',
            transport: broker.transport(),
            logger: silentLogger,
            retry: { baseDelayMs: 10, jitter: 0 },
          });
          s.on(
            submit,
            inbox({ pool: pool() }).handler((o, context, client) => fn(o.id, client, context), {
              onDuplicate: () => counts.skipped++,
            }),
          );
          s.observe('handled', () => counts.handled++);
          s.observe('failed', () => counts.failed++);
          await s.start();
          services.push(s);
        }
        const producer = createService({
          name: 'order',
          transport: broker.transport(),
          logger: silentLogger,
        });
        services.push(producer);
        return { counts, producer };
      }

      it('posts once when two consumers race on five duplicates of an id', async () => {
        const { producer, counts } = await setup(async (id, client, context) => {
          await post(client, `${context.envelope.id}:${id}`);
          await sleep(50);
        }, 2);
        const first = await producer.publish(submit, { id: 1 });
        await Promise.all(
          Array.from({ length: 5 }, () => producer.publish(submit, { id: 1 }, { id: first.id })),
        );
        // Duplicates are acknowledged as handled: the inbox skipped them inside the handler.
        await waitFor(() => counts.handled === 6, 'six messages acknowledged');
        expect(counts).toEqual({ handled: 6, failed: 0, skipped: 5 });
        expect(await posted(`${first.id}:1`)).toBe(1);
        expect(await recorded(`billing:${first.id}`)).toBe(1);
      });

      it('does not record a handler that threw, so its retry posts, once', async () => {
        let calls = 0;
        const { producer, counts } = await setup(async (id, client, context) => {
          calls++;
          await post(client, `${context.envelope.id}:${id}`);
          if (calls === 1) throw new Error('transient');
        }, 1);
        const first = await producer.publish(submit, { id: 9 });
        await waitFor(() => counts.handled === 1, 'the retry to succeed');
        await producer.publish(submit, { id: 9 }, { id: first.id });
        await waitFor(() => counts.skipped === 1, 'the duplicate to be skipped');
        expect(calls).toBe(2);
        expect(counts.failed).toBe(1);
        expect(await posted(`${first.id}:9`)).toBe(1);
      });
    });
  });
});
