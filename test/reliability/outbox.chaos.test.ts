import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/logger.js';
import { createService } from '../../src/runtime/service.js';
import type { OutboxRelay } from '../../src/stores/outbox/relay.js';
import { uniqueName } from '../../src/testing/broker.js';
import { amqpTransport } from '../../src/transports/amqp/index.js';
import { Fixture, inTransaction, recordingConsumer, testEvent } from '../support/outbox.js';
import {
  AMQP_URL,
  assertBrokerUp,
  canRestartBroker,
  DATABASE_URL,
  duplicatesOf,
  ensureBrokerRunning,
  openTransport,
  RABBITMQ_NODE,
  type RestartTiming,
  rabbitmqctl,
  reachable,
  report,
  restartBroker,
  tally,
  waitUntil,
} from './harness.js';

/*
 * Chaos test: the e-commerce's Order service with its orders in PostgreSQL and its events in the
 * transactional outbox, and Billing with its ledger in PostgreSQL behind the inbox, each its own
 * process, on RabbitMQ. 5,000 orders arrive over HTTP while the Order process is SIGKILLed twice
 * and RabbitMQ is restarted once. Every order Order answered 201 for must be billed exactly once;
 * every order it refused must not be; an order whose request got no answer (the process died with
 * it) must be billed exactly once if Order stored it and not at all if it did not. An order saved
 * is an event published: Billing's ledger and Order's table hold exactly the same orders.
 */

const ORDERS = 5000;
const CLIENTS = 16;
const example = (path: string) =>
  fileURLToPath(new URL(`../../examples/ecommerce/${path}`, import.meta.url));

const up =
  (await reachable(AMQP_URL, 'RabbitMQ', 5672)) &&
  (await reachable(DATABASE_URL, 'PostgreSQL', 5432));
const restartable = up && (await canRestartBroker());

/** One service of the example as its own process (`node --import tsx <service>/src/main.ts`). */
class ServiceProcess {
  readonly child: ChildProcess;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Its base URL, once it listens. */
  url: string | undefined;
  /** Every line it printed. */
  readonly lines: string[] = [];

  constructor(
    readonly name: string,
    env: NodeJS.ProcessEnv,
  ) {
    this.child = spawn(process.execPath, ['--import', 'tsx', example(`${name}/src/main.ts`)], {
      env: { ...process.env, PORT: '0', LOG_EVENTS: '1', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.exited = new Promise((resolve) =>
      this.child.once('exit', (code, signal) => resolve({ code, signal })),
    );
    let pending = '';
    const take = (chunk: Buffer) => {
      pending += chunk.toString();
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      for (const line of lines) {
        this.lines.push(line);
        const url = /HTTP on (\S+),/.exec(line)?.[1];
        if (url) this.url = url;
      }
    };
    this.child.stdout!.on('data', take);
    this.child.stderr!.on('data', take);
  }

  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  async listening(timeoutMs = 60_000): Promise<string> {
    await waitUntil(
      async () => this.url !== undefined || !this.alive,
      `${this.name} to listen`,
      timeoutMs,
    );
    if (!this.url) throw new Error(`${this.name} died while starting:\n${this.lines.join('\n')}`);
    return this.url;
  }

  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    if (this.alive) this.child.kill(signal);
    await this.exited;
  }
}

/** How one order request ended, from the client's side. */
type Answer =
  | { kind: 'created'; id: number }
  | { kind: 'refused'; status: number }
  | { kind: 'none' };

describe.skipIf(!restartable)(
  'reliability: the outbox through process kills and a broker restart',
  () => {
    const run = uniqueName('outbox-chaos').replaceAll('-', '_');
    const vhost = run;
    const orderPrefix = `${run}_order_`;
    const billingPrefix = `${run}_billing_`;
    const broker = (() => {
      const u = new URL(AMQP_URL);
      u.pathname = `/${vhost}`;
      return u.toString();
    })();
    const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 2 });
    const processes: ServiceProcess[] = [];

    afterAll(async () => {
      await Promise.all(processes.map((p) => p.kill()));
      await ensureBrokerRunning();
      await assertBrokerUp();
      await rabbitmqctl('delete_vhost', vhost).catch(() => {});
      const { rows } = await pool.query(
        `SELECT tablename FROM pg_tables WHERE schemaname = current_schema() AND tablename LIKE $1`,
        [`${run.replaceAll('_', '\\_')}%`],
      );
      if (rows.length > 0) {
        await pool.query(`DROP TABLE IF EXISTS ${rows.map((r) => r.tablename).join(', ')} CASCADE`);
      }
      await pool.query(`DROP FUNCTION IF EXISTS ${orderPrefix}outbox_notify()`);
      await pool.end();
    }, 120_000);

    it('bills every order that was stored exactly once and no other, through two SIGKILLs of Order and a RabbitMQ restart', async () => {
      await rabbitmqctl('add_vhost', vhost);
      await rabbitmqctl('set_permissions', '-p', vhost, 'guest', '.*', '.*', '.*');
      const database = { DATABASE_URL };
      const migrate = spawn(
        process.execPath,
        ['--import', 'tsx', example('order/src/migrate.ts')],
        {
          env: { ...process.env, ...database, ORDER_TABLE_PREFIX: orderPrefix },
          stdio: 'ignore',
        },
      );
      expect(await new Promise((resolve) => migrate.once('exit', resolve))).toBe(0);

      const billing = new ServiceProcess('billing', {
        ...database,
        BROKER_URL: broker,
        BILLING_TABLE_PREFIX: billingPrefix,
      });
      processes.push(billing);
      await billing.listening();
      const orderEnv = { ...database, BROKER_URL: broker, ORDER_TABLE_PREFIX: orderPrefix };
      let order = new ServiceProcess('order', orderEnv);
      processes.push(order);
      let orderUrl: string | undefined = await order.listening();

      const answers: Answer[] = new Array(ORDERS);
      let answered = 0;
      let createdDuringOutage = 0;
      let brokerDown = false;
      let refusedConnections = 0;
      let next = 0;
      const client = async () => {
        while (next < ORDERS) {
          const i = next++;
          const body = {
            customer: { name: `Client ${i}`, email: `c${i}@chaos.test` },
            lines: [{ id: 1 + (i % 7), quantity: 1 + (i % 3), price: 2.5 }],
          };
          for (;;) {
            // While Order restarts there is no URL: wait for the new process.
            while (orderUrl === undefined) await new Promise((r) => setTimeout(r, 20));
            const url = orderUrl;
            try {
              const response = await fetch(`${url}/orders`, {
                method: 'POST',
                headers: { 'content-type': 'application/json' },
                body: JSON.stringify(body),
                signal: AbortSignal.timeout(30_000),
              });
              const text = await response.text();
              if (response.status === 201) {
                answers[i] = { kind: 'created', id: (JSON.parse(text) as { id: number }).id };
                if (brokerDown) createdDuringOutage++;
              } else answers[i] = { kind: 'refused', status: response.status };
            } catch (error) {
              const code = (error as { cause?: { code?: string } }).cause?.code;
              if (code === 'ECONNREFUSED') {
                // Nothing reached a server: not an answer, send it again to the next Order.
                refusedConnections++;
                if (orderUrl === url) await new Promise((r) => setTimeout(r, 20));
                continue;
              }
              answers[i] = { kind: 'none' };
            }
            answered++;
            break;
          }
        }
      };

      const kills: { at: number; downMs: number }[] = [];
      const killAndRestart = async () => {
        const at = answered;
        const started = Date.now();
        orderUrl = undefined;
        await order.kill('SIGKILL');
        order = new ServiceProcess('order', orderEnv);
        processes.push(order);
        orderUrl = await order.listening();
        kills.push({ at, downMs: Date.now() - started });
      };
      const restarts: RestartTiming[] = [];
      let restartAt = 0;
      const chaos = (async () => {
        await waitUntil(async () => answered >= ORDERS * 0.2, '20% of the orders', 120_000);
        await killAndRestart();
        await waitUntil(async () => answered >= ORDERS * 0.45, '45% of the orders', 120_000);
        restartAt = answered;
        brokerDown = true;
        try {
          restarts.push(await restartBroker(3000));
        } finally {
          brokerDown = false;
        }
        await waitUntil(async () => answered >= ORDERS * 0.7, '70% of the orders', 120_000);
        await killAndRestart();
      })();
      const started = Date.now();
      await Promise.all(Array.from({ length: CLIENTS }, client));
      const requestsMs = Date.now() - started;
      await chaos;

      const count = async (sql: string) => Number((await pool.query(sql)).rows[0].n);
      const stored = () => count(`SELECT count(*) AS n FROM ${orderPrefix}orders`);
      const billed = () =>
        count(`SELECT count(*) AS n FROM ${billingPrefix}journal WHERE kind = 'sale'`);
      const pendingOutbox = () =>
        count(`SELECT count(*) AS n FROM ${orderPrefix}outbox WHERE sent_at IS NULL`);
      await waitUntil(
        async () => (await pendingOutbox()) === 0 && (await billed()) === (await stored()),
        'every stored order to be relayed and billed',
        180_000,
      );
      const settledMs = Date.now() - started;
      // Let any copy still on its way arrive, so duplicates are counted in full.
      await new Promise((r) => setTimeout(r, 2000));

      const orders = (
        await pool.query(`SELECT id, customer->>'email' AS email FROM ${orderPrefix}orders`)
      ).rows as { id: number; email: string }[];
      const byEmail = new Map(orders.map((o) => [o.email, o.id]));
      const sales = (
        await pool.query(
          `SELECT order_id, count(*)::int AS n FROM ${billingPrefix}journal WHERE kind = 'sale' GROUP BY order_id`,
        )
      ).rows as { order_id: number; n: number }[];
      const salesOf = new Map(sales.map((s) => [s.order_id, s.n]));
      const outbox = (
        await pool.query(
          `SELECT count(*)::int AS rows, max(attempts)::int AS attempts,
                count(*) FILTER (WHERE failed_at IS NOT NULL)::int AS parked
         FROM ${orderPrefix}outbox`,
        )
      ).rows[0] as { rows: number; attempts: number; parked: number };
      const deliveries = billing.lines
        .map((l) => /^billing: <- order\.v2\.submit (\S+)$/.exec(l)?.[1])
        .filter((id): id is string => id !== undefined);
      const deliveryDup = duplicatesOf(tally(deliveries));
      const inboxRows = await count(`SELECT count(*) AS n FROM ${billingPrefix}inbox`);

      const created = answers.flatMap((a, i) => (a.kind === 'created' ? [{ i, id: a.id }] : []));
      const refused = answers.flatMap((a, i) => (a.kind === 'refused' ? [i] : []));
      const unanswered = answers.flatMap((a, i) => (a.kind === 'none' ? [i] : []));
      const unansweredStored = unanswered.filter((i) => byEmail.has(`c${i}@chaos.test`));

      report('outbox: 5,000 orders over HTTP, Order SIGKILLed twice, RabbitMQ restarted once', {
        'orders requested': ORDERS,
        'answered 201 (created)': created.length,
        'answered with an error': refused.length,
        'no answer (Order killed mid-request)': `${unanswered.length}: ${unansweredStored.length} had been stored, ${unanswered.length - unansweredStored.length} had not`,
        'connections refused while Order restarted (sent again)': refusedConnections,
        'Order kills': kills.map((k) => `after ${k.at} answers, back in ${k.downMs} ms`),
        'RabbitMQ restart': restarts.map(
          (r) => `after ${restartAt} answers: stop_app ${r.stopMs} ms, then down ${r.downMs} ms`,
        ),
        'orders created while RabbitMQ was down': createdDuringOutage,
        'requests took': `${requestsMs} ms`,
        'all relayed and billed after': `${settledMs} ms`,
        'orders stored by Order': orders.length,
        'sales posted by Billing': sales.length,
        'outbox rows': `${outbox.rows}, at most ${outbox.attempts} attempts each, ${outbox.parked} parked`,
        'submits delivered to Billing': `${deliveries.length} (${deliveryDup.extra} duplicates, skipped by the inbox)`,
        'inbox rows': inboxRows,
      });

      expect(kills).toHaveLength(2);
      expect(restarts).toHaveLength(1);
      expect(answers.filter(Boolean)).toHaveLength(ORDERS);
      // Every order Order said it created is billed exactly once.
      for (const { id } of created) expect(salesOf.get(id)).toBe(1);
      // Every refused order was not stored, so it cannot have been billed.
      for (const i of refused) expect(byEmail.has(`c${i}@chaos.test`)).toBe(false);
      // An unanswered order was billed once if stored; if not stored, it has no id to bill.
      for (const i of unansweredStored)
        expect(salesOf.get(byEmail.get(`c${i}@chaos.test`)!)).toBe(1);
      // An order saved is an event published, and nothing else was: the ledger is the orders table.
      expect(sales.length).toBe(orders.length);
      expect(new Set(sales.map((s) => s.order_id))).toEqual(new Set(orders.map((o) => o.id)));
      expect(sales.every((s) => s.n === 1)).toBe(true);
      expect(outbox).toMatchObject({ rows: orders.length, parked: 0 });
      expect(new Set(deliveries).size).toBe(orders.length);
      expect(created.length).toBeGreaterThan(ORDERS * 0.9);
    }, 600_000);
  },
);

describe.skipIf(!restartable)('reliability: an outbox relay started while RabbitMQ is down', () => {
  afterAll(async () => {
    await ensureBrokerRunning();
    await assertBrokerUp();
  }, 120_000);

  it('keeps the rows waiting, spends no attempt, and publishes them all once RabbitMQ is back', async () => {
    const fixture = new Fixture();
    const consumerTransport = openTransport('outbox consumer');
    const relayTransport = amqpTransport({
      url: AMQP_URL,
      connectionName: 'reliability outbox relay',
      logger: silentLogger,
      reconnect: { initialDelayMs: 100, maxDelayMs: 1000 },
      connectTimeoutMs: 3000,
      publishTimeoutMs: 5000,
    });
    const event = testEvent();
    const consumer = await recordingConsumer(consumerTransport, event);
    const topology = consumer.service.topology();
    const total = 500;
    let relay: OutboxRelay | undefined;
    let downMs = 0;
    try {
      const pool = fixture.pool();
      const outbox = await fixture.outbox(pool);
      const writer = createService({
        name: 'writer',
        transport: relayTransport,
        outbox,
        logger: silentLogger,
      });
      await rabbitmqctl('stop_app');
      const stopped = Date.now();
      try {
        relay = outbox.relay({
          transport: relayTransport,
          logger: silentLogger,
          outageBackoff: { initialDelayMs: 100, maxDelayMs: 1000 },
        });
        const outages: unknown[] = [];
        relay.observe('unavailable', (e) => void outages.push(e.error));
        await relay.start();
        for (let i = 0; i < total; i += 50) {
          await inTransaction(pool, async (tx) => {
            for (let n = i; n < i + 50; n++) {
              await writer.publish(
                event,
                { key: `k${n % 10}`, seq: n, tag: `m${n}` },
                n % 2 ? { tx, orderingKey: `k${n % 10}` } : { tx },
              );
            }
          });
        }
        await waitUntil(
          async () => outages.length >= 2,
          'the relay to find RabbitMQ down twice',
          60_000,
        );
        expect(await outbox.status()).toMatchObject({ pending: total, failed: 0, retrying: 0 });
      } finally {
        await ensureBrokerRunning();
        downMs = Date.now() - stopped;
      }
      await waitUntil(
        async () => new Set(consumer.received.map((r) => r.tag)).size === total,
        `all ${total} messages after RabbitMQ came back`,
        120_000,
      );
      await waitUntil(async () => (await outbox.status()).pending === 0, 'nothing pending', 60_000);
      const { rows } = await pool.query(
        `SELECT max(attempts)::int AS attempts FROM ${outbox.table}`,
      );
      const copies = consumer.received.length - total;
      report('outbox: a relay started while RabbitMQ is down', {
        messages: total,
        'RabbitMQ down for': `${downMs} ms`,
        'relay outages reported': relay.stats.outages,
        'received after it came back': `${consumer.received.length} (${copies} copies)`,
        'attempts per row': rows[0].attempts,
      });
      expect(rows[0].attempts).toBe(1);
      expect(relay.stats.parked).toBe(0);
    } finally {
      await relay?.stop();
      await consumer.service.stop();
      await consumerTransport.deleteTopology(topology, { exchanges: true }).catch(() => {});
      await Promise.all([consumerTransport.close(), relayTransport.close()]);
      await fixture.cleanup();
    }
  }, 300_000);
});

if (restartable && RABBITMQ_NODE) {
  console.log(`\n  outbox chaos: restarting the RabbitMQ node ${RABBITMQ_NODE}\n`);
}
