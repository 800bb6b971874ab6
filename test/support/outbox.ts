/**
 * What the outbox's tests share: the local PostgreSQL and RabbitMQ, outboxes on tables unique to
 * a test (dropped afterwards), transactions, and a consumer that records what arrives.
 */
import pg from 'pg';
import { z } from 'zod';
import { defineEvent, defineExchange } from '../../src/contracts/event.js';
import type { Envelope } from '../../src/envelope/envelope.js';
import { silentLogger } from '../../src/logger.js';
import { createService, type Service } from '../../src/runtime/service.js';
import { PostgresOutbox } from '../../src/stores/outbox/outbox.js';
import { brokerReachable, uniqueName } from '../../src/testing/broker.js';
import type { Transport } from '../../src/transports/transport.js';

export const DATABASE_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
export const AMQP_URL = process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';

/** Whether PostgreSQL is reachable (a visible skip when not; CI fails). */
export async function postgresUp(): Promise<boolean> {
  const u = new URL(DATABASE_URL);
  return brokerReachable(u.hostname, Number(u.port || 5432), 'PostgreSQL');
}

/** Whether RabbitMQ is reachable (a visible skip when not; CI fails). */
export async function rabbitUp(): Promise<boolean> {
  const u = new URL(AMQP_URL);
  return brokerReachable(u.hostname, Number(u.port || 5672), 'RabbitMQ');
}

/** A table name unique to this run: PostgreSQL identifiers allow no dashes. */
export const tableName = (what: string) => uniqueName(`tidings_test_${what}`).replaceAll('-', '_');

/** The event of these tests, on an exchange of its own: a key, its sequence number, a tag. */
export function testEvent(exchange = uniqueName('outbox')) {
  return defineEvent(
    defineExchange(exchange),
    'changed',
    z.object({ key: z.string(), seq: z.number().int(), tag: z.string() }),
  );
}
export type TestEvent = ReturnType<typeof testEvent>;

/** Pools and outbox tables made by a test file, all closed and dropped by `cleanup()`. */
export class Fixture {
  private readonly pools: pg.Pool[] = [];
  private readonly outboxes: PostgresOutbox[] = [];

  /** A pool of its own, as a separate process would have. */
  pool(max = 6): pg.Pool {
    const p = new pg.Pool({ connectionString: DATABASE_URL, max, idleTimeoutMillis: 1000 });
    p.on('error', () => {});
    this.pools.push(p);
    return p;
  }

  /** An outbox on a fresh table, migrated. */
  async outbox(pool = this.pool()): Promise<PostgresOutbox> {
    const outbox = new PostgresOutbox({ pool, table: tableName('outbox') });
    await outbox.migrate();
    this.outboxes.push(outbox);
    return outbox;
  }

  async cleanup(): Promise<void> {
    const admin = new pg.Pool({ connectionString: DATABASE_URL, max: 1 });
    try {
      for (const o of this.outboxes) {
        await admin.query(
          `DROP TABLE IF EXISTS ${o.table}; DROP FUNCTION IF EXISTS "${o.name}_notify"()`,
        );
      }
    } finally {
      await admin.end();
      await Promise.all(this.pools.map((p) => p.end()));
    }
  }
}

/** Runs `fn` in a transaction on a connection of `pool`; commits unless it throws. */
export async function inTransaction<T>(
  pool: pg.Pool,
  fn: (client: pg.PoolClient) => Promise<T>,
): Promise<T> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    const value = await fn(client);
    await client.query('COMMIT');
    return value;
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {});
    throw error;
  } finally {
    client.release();
  }
}

/** One message as a consumer received it. */
export interface Received {
  readonly key: string;
  readonly seq: number;
  readonly tag: string;
  readonly envelope: Envelope;
}

/** A consumer service with one queue on the test event, recording every delivery in order. */
export async function recordingConsumer(
  transport: Transport,
  event: TestEvent,
): Promise<{ service: Service; received: Received[] }> {
  const received: Received[] = [];
  const service = createService({
    name: uniqueName('consumer'),
    transport,
    logger: silentLogger,
    prefetch: 200,
    concurrency: 1,
  });
  service.on(event, (payload, ctx) => {
    received.push({ ...payload, envelope: ctx.envelope });
  });
  await service.start();
  return { service, received };
}

/** Polls an asynchronous check every 50 ms until it holds; throws after `timeoutMs`. */
export async function until(
  check: () => Promise<boolean>,
  what: string,
  timeoutMs = 15_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline)
      throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
