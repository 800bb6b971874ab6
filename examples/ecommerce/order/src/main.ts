import { redactUrl, runService } from 'tidings';
import { narrate } from '../../narrate.js';
import { createOrderService, PostgresOrders } from './index.js';

// Order as its own process: `BROKER_URL=amqp://... PORT=3001 npx tsx order/src/main.ts`.
// With DATABASE_URL (postgres://...), orders live in PostgreSQL and every event goes through the
// transactional outbox, in the order's own transaction; create the tables first with
// `DATABASE_URL=... npx tsx order/src/migrate.ts`. Without it, orders are kept in memory.
const url = process.env.BROKER_URL ?? 'memory://';
const databaseUrl = process.env.DATABASE_URL;

await runService({
  name: 'order',
  brokerUrl: url,
  start: async (transport) => {
    // pg is loaded only when a database is configured, so the in-memory demo never needs it.
    const pool = databaseUrl
      ? new (await import('pg')).default.Pool({ connectionString: databaseUrl, max: 10 })
      : undefined;
    pool?.on('error', () => {});
    const books = pool
      ? new PostgresOrders({ pool, tablePrefix: process.env.ORDER_TABLE_PREFIX })
      : undefined;
    try {
      await books?.checkSchema();
    } catch (error) {
      await pool?.end();
      throw error;
    }
    const options = {
      transport,
      port: Number(process.env.PORT ?? 3001),
      host: process.env.HOST ?? '127.0.0.1',
    };
    const order = books
      ? createOrderService({ ...options, orders: books })
      : createOrderService(options);
    // The demo's narration, one line per message (the multi-process demo sets LOG_EVENTS); the
    // relay publishes what went through the outbox.
    if (process.env.LOG_EVENTS) narrate({ order }, (line) => console.log(line));
    const where = databaseUrl ? `PostgreSQL ${redactUrl(databaseUrl)}, with an outbox` : 'memory';
    console.log(
      `order: HTTP on ${await order.start()}, broker ${redactUrl(url)}, orders in ${where}`,
    );
    return {
      stop: async () => {
        try {
          await order.stop();
        } finally {
          await pool?.end();
        }
      },
    };
  },
}).catch((error: unknown) => {
  console.error(`order: ${(error as Error).message}`);
  process.exit(1);
});
