/**
 * A consumer process for the reliability tests: one or more Tidings services on the RabbitMQ
 * transport, configured by the JSON in `TIDINGS_RELIABILITY_CONSUMER` (a `ConsumerConfig`), each
 * with a handler for `<exchange>.*.submit`. It reports what it does on stdout, one line per event
 * (see `ConsumerLine`), and on SIGTERM stops its services, closes its connections, reports a
 * summary (including any prototype pollution) and exits 0. Run with `node --import tsx`.
 */
import { Redis } from 'ioredis';
import pg from 'pg';
import { NonRetryableError } from '../../src/errors.js';
import type { Logger } from '../../src/logger.js';
import type { IdempotencyOptions } from '../../src/runtime/idempotency.js';
import { createService, type Handler, type Service } from '../../src/runtime/service.js';
import { PostgresIdempotencyStore, PostgresInbox } from '../../src/stores/postgres.js';
import { RedisIdempotencyStore } from '../../src/stores/redis.js';
import { amqpTransport } from '../../src/transports/amqp/index.js';
import {
  CONSUMER_ENV,
  type ConsumerConfig,
  type ConsumerSummary,
  type HandlerConfig,
  pollutionSince,
  prototypeSnapshot,
  submitEvent,
  type TestOrder,
  transientFailure,
} from './protocol.js';

const before = prototypeSnapshot();
const config = JSON.parse(process.env[CONSUMER_ENV] ?? '') as ConsumerConfig;

// Pipes are written synchronously on Linux, so every line written before a SIGKILL arrives.
const say = (line: string) => process.stdout.write(`${line}\n`);

let errors = 0;
const logger: Logger = {
  debug: () => {},
  info: () => {},
  warn: (message) => process.stderr.write(`warn: ${message}\n`),
  error: (message, fields) => {
    errors++;
    process.stderr.write(`error: ${message} ${describe(fields)}\n`);
  },
};
// Dead-lettering is what some tests are about: their warnings would drown the rest.
const quiet: Logger = { ...logger, warn: () => {} };

function describe(fields: unknown): string {
  const error = (fields as { error?: unknown } | undefined)?.error;
  return error instanceof Error ? `${error.name}: ${error.message}` : '';
}

const submit = submitEvent(config.exchange);
const transport = amqpTransport({
  url: config.amqpUrl,
  connectionName: `reliability ${config.label}`,
  logger,
  reconnect: { initialDelayMs: 100, maxDelayMs: 1000 },
});

let redis: Redis | undefined;
let pool: pg.Pool | undefined;
const redisClient = () => {
  redis ??= new Redis(config.redisUrl, { lazyConnect: false, maxRetriesPerRequest: 3 });
  return redis;
};
const pgPool = () => {
  // Few connections: two consumers must stay well under PostgreSQL's max_connections (100).
  pool ??= new pg.Pool({ connectionString: config.databaseUrl, max: 10 });
  return pool;
};

function storeOf(h: HandlerConfig): IdempotencyOptions | undefined {
  switch (h.store.kind) {
    case 'none':
      return undefined;
    case 'redis':
      return {
        store: new RedisIdempotencyStore({ client: redisClient(), keyPrefix: h.store.keyPrefix }),
        leaseMs: 30_000,
        busyRetryMs: 200,
      };
    case 'postgres':
      return {
        store: new PostgresIdempotencyStore({ pool: pgPool(), table: h.store.table }),
        leaseMs: 30_000,
        busyRetryMs: 200,
      };
  }
}

function injectFaults(h: HandlerConfig, order: TestOrder, attempt: number): void {
  const f = h.faults;
  if (f.kind === 'broken') throw new Error(`ledger locked: cannot post order ${order.id}`);
  if (f.kind !== 'flaky') return;
  if (f.nonRetryable.includes(order.id)) {
    throw new NonRetryableError(`order ${order.id} has no customer account`);
  }
  if (f.alwaysFail.includes(order.id)) {
    throw new Error(`payment gateway down for order ${order.id}`);
  }
  if (transientFailure(f.seed, order.id, attempt, f.rate)) {
    throw new Error(`timeout posting order ${order.id} on attempt ${attempt}`);
  }
}

async function effectOf(h: HandlerConfig): Promise<Handler<TestOrder>> {
  const e = h.effect;
  switch (e.kind) {
    case 'none':
      return () => {};
    case 'redis-counter': {
      const client = redisClient();
      return async (order) => {
        await client.hincrby(e.key, String(order.id), 1);
      };
    }
    case 'pg-inbox': {
      const inbox = new PostgresInbox<pg.PoolClient>({ pool: pgPool(), table: e.inboxTable });
      return inbox.handler<TestOrder>(
        async (order, ctx, db) => {
          await db.query(
            `INSERT INTO ${e.table} (order_id, message_id, consumer) VALUES ($1, $2, $3)`,
            [order.id, ctx.envelope.id, config.label],
          );
        },
        { onDuplicate: ({ context }) => say(`dup ${h.service} ${context.envelope.id}`) },
      );
    }
  }
}

const services: Service[] = [];
for (const h of config.handlers) {
  const idempotency = storeOf(h);
  const service = createService({
    name: h.service,
    transport,
    logger: quiet,
    prefetch: config.prefetch,
    shutdownTimeoutMs: 5000,
    ...(config.maxMessageBytes !== undefined && { maxMessageBytes: config.maxMessageBytes }),
    ...(config.retry && { retry: { ...config.retry, jitter: 0.25 } }),
    ...(idempotency && { idempotency }),
  });
  const effect = await effectOf(h);
  service.on(submit, async (order, ctx) => {
    say(`h ${h.service} ${order.id} ${ctx.envelope.id} ${ctx.attempt} ${ctx.redelivered ? 1 : 0}`);
    if (Object.getPrototypeOf(order) !== Object.prototype) say(`proto ${h.service} ${order.id}`);
    injectFaults(h, order, ctx.attempt);
    await effect(order, ctx);
    say(`ok ${h.service} ${order.id}`);
  });
  service.observe('duplicate', ({ envelope }) => say(`dup ${h.service} ${envelope.id}`));
  service.observe('dead-lettered', ({ reason, messageId }) =>
    say(`dead ${h.service} ${reason} ${messageId ?? '-'}`),
  );
  services.push(service);
}
for (const service of services) await service.start();
say('ready');

let stopping = false;
process.on('SIGTERM', () => {
  if (stopping) return;
  stopping = true;
  void (async () => {
    for (const service of services) await service.stop();
    await transport.close();
    await redis?.quit();
    await pool?.end();
    const summary: ConsumerSummary = {
      label: config.label,
      pollution: pollutionSince(before),
      errors,
    };
    say(`bye ${JSON.stringify(summary)}`);
    process.exit(0);
  })();
});
