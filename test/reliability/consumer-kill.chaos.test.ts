import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/logger.js';
import { createService } from '../../src/runtime/service.js';
import { PostgresInbox } from '../../src/stores/postgres.js';
import { uniqueName } from '../../src/testing/broker.js';
import { waitFor } from '../../src/testing/conformance.js';
import {
  AMQP_URL,
  assertBrokerUp,
  type ConsumerProcess,
  DATABASE_URL,
  deleteTopology,
  duplicatesOf,
  openTransport,
  publishStream,
  REDIS_URL,
  reachable,
  report,
  startConsumers,
  tally,
} from './harness.js';
import { type ConsumerConfig, order, submitEvent } from './protocol.js';

/*
 * Chaos test 2: two consumer processes share a queue; one is killed with SIGKILL in the middle of
 * the stream, holding unacknowledged messages and open transactions. Each handler writes its
 * effect through the PostgreSQL inbox, into a table without a unique constraint, so a message
 * lost would be a missing row and a message applied twice a second row.
 */

const up =
  (await reachable(AMQP_URL, 'RabbitMQ', 5672)) &&
  (await reachable(DATABASE_URL, 'PostgreSQL', 5432));

describe.skipIf(!up)('reliability: a consumer process killed mid-stream', () => {
  afterAll(assertBrokerUp);

  it('loses none of 10,000 messages when one of two consumers is SIGKILLed, and the inbox applies each once', async () => {
    const total = 10_000;
    const run = uniqueName('rel-kill');
    const exchange = run;
    const submit = submitEvent(exchange);
    const service = `${run}-billing`;
    const table = `${run}_effects`.replaceAll('-', '_');
    const inboxTable = `${run}_inbox`.replaceAll('-', '_');
    const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 2 });
    const config = (label: string): ConsumerConfig => ({
      label,
      amqpUrl: AMQP_URL,
      redisUrl: REDIS_URL,
      databaseUrl: DATABASE_URL,
      exchange,
      prefetch: 50,
      handlers: [
        {
          service,
          faults: { kind: 'none' },
          effect: { kind: 'pg-inbox', table, inboxTable },
          store: { kind: 'none' },
        },
      ],
    });
    const topology = {
      exchanges: [exchange],
      queues: [{ name: `${service}.${exchange}.submit`, bindings: [] }],
    };
    const publisher = openTransport('kill publisher');
    let consumers: ConsumerProcess[] = [];
    try {
      await pool.query(
        `CREATE TABLE ${table} (order_id int NOT NULL, message_id text NOT NULL, consumer text NOT NULL)`,
      );
      await new PostgresInbox({ pool, table: inboxTable }).ensureSchema();
      consumers = await startConsumers([config('victim'), config('survivor')]);
      const [victim, survivor] = consumers as [ConsumerProcess, ConsumerProcess];
      const producer = createService({
        name: `${run}-shop`,
        transport: publisher,
        logger: silentLogger,
      });

      const started = Date.now();
      let killedAt = 0;
      let victimCallsAtKill = 0;
      let confirmed = 0;
      let confirmedAtKill = 0;
      // Killed while the producer is still publishing, and while the victim is busy.
      const killer = (async () => {
        await waitFor(
          () => confirmed >= total * 0.4 && victim.calls.length >= 100,
          'the stream to be under way',
          60_000,
        );
        await victim.kill();
        killedAt = Date.now();
        victimCallsAtKill = victim.calls.length;
        confirmedAtKill = confirmed;
      })();
      const failures = await publishStream(total, (i) => producer.publish(submit, order(i)), {
        progress: (n) => {
          confirmed = n;
        },
      });
      const publishedMs = Date.now() - started;
      await killer;
      expect(failures).toEqual([]);

      const effects = async () =>
        (
          await pool.query<{ n: string; d: string }>(
            `SELECT count(*) AS n, count(DISTINCT order_id) AS d FROM ${table}`,
          )
        ).rows[0]!;
      let state = await effects();
      const deadline = Date.now() + 60_000;
      while (Number(state.d) < total && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 200));
        state = await effects();
      }
      const processedMs = Date.now() - started;
      // Redeliveries of what the victim held arrive within a moment of the kill; wait for quiet.
      let calls = -1;
      while (calls !== survivor.calls.length) {
        calls = survivor.calls.length;
        await new Promise((resolve) => setTimeout(resolve, 1000));
      }
      const summary = await survivor.stop();
      state = await effects();

      const byConsumer = (
        await pool.query<{ consumer: string; n: string }>(
          `SELECT consumer, count(*) AS n FROM ${table} GROUP BY consumer ORDER BY consumer`,
        )
      ).rows.map((r) => `${r.consumer} ${r.n}`);
      const twice = Number(
        (
          await pool.query<{ n: string }>(
            `SELECT count(*) AS n FROM (SELECT order_id FROM ${table} GROUP BY order_id HAVING count(*) > 1) d`,
          )
        ).rows[0]!.n,
      );
      const allCalls = [...victim.calls, ...survivor.calls];
      const delivered = duplicatesOf(tally(allCalls.map((h) => h.orderId)));
      const redelivered = survivor.calls.filter((h) => h.redelivered);
      const committedButUnacked = survivor.duplicates.length;

      report('chaos 2: SIGKILL one of two consumer processes mid-stream (PostgreSQL inbox)', {
        messages: total,
        'published and confirmed in': `${publishedMs} ms`,
        'victim killed after': `${killedAt - started} ms, ${confirmedAtKill} published, victim had called its handler ${victimCallsAtKill} times`,
        'all processed after': `${processedMs} ms`,
        'handler calls': `${allCalls.length} (victim ${victim.calls.length}, survivor ${survivor.calls.length})`,
        'messages delivered twice': `${delivered.extra} (${delivered.keys.length} messages)`,
        'redelivered to the survivor': redelivered.length,
        'of which already committed by the victim (skipped by the inbox)': committedButUnacked,
        'calls that were retries': allCalls.filter((h) => h.attempt > 1).length,
        'errors logged by the survivor': summary.errors,
        'effects (rows)': `${state.n} rows, ${state.d} distinct orders, ${twice} orders twice`,
        'effects by consumer': byConsumer,
      });

      expect(Number(state.d)).toBe(total);
      expect(Number(state.n)).toBe(total);
      expect(twice).toBe(0);
      expect(victim.child.signalCode).toBe('SIGKILL');
      expect(redelivered.length).toBeGreaterThan(0);
      expect(confirmedAtKill).toBeLessThan(total);
      expect(new Set(allCalls.map((h) => h.orderId)).size).toBe(total);
      expect(summary.pollution).toEqual([]);
      expect(summary.errors).toBe(0);
    } finally {
      await Promise.all(consumers.map((c) => c.kill()));
      await publisher.close();
      await deleteTopology(topology);
      await pool.query(`DROP TABLE IF EXISTS ${table}; DROP TABLE IF EXISTS ${inboxTable}`);
      await pool.end();
    }
  }, 120_000);
});
