import { connect, redactUrl, stopOnSignals } from 'tidings';
import { createOrderService, PostgresOrders } from './index.js';

// Order as its own process: `BROKER_URL=amqp://... PORT=3001 npx tsx order/src/main.ts`.
// With DATABASE_URL (postgres://...), orders live in PostgreSQL and every event goes through the
// transactional outbox, in the order's own transaction; create the tables first with
// `DATABASE_URL=... npx tsx order/src/migrate.ts`. Without it, orders are kept in memory.
const url = process.env.BROKER_URL ?? 'memory://';
const databaseUrl = process.env.DATABASE_URL;
const transport = await connect(url);
// pg is loaded only when a database is configured, so the in-memory demo never needs it.
const pool = databaseUrl
  ? new (await import('pg')).default.Pool({ connectionString: databaseUrl, max: 10 })
  : undefined;
pool?.on('error', () => {});
const books = pool
  ? new PostgresOrders({ pool, tablePrefix: process.env.ORDER_TABLE_PREFIX })
  : undefined;
if (books) {
  try {
    await books.checkSchema();
  } catch (error) {
    console.error(`order: ${(error as Error).message}`);
    await pool?.end();
    await transport.close();
    process.exit(1);
  }
}
const options = {
  transport,
  port: Number(process.env.PORT ?? 3001),
  host: process.env.HOST ?? '127.0.0.1',
};
const order = books
  ? createOrderService({ ...options, orders: books })
  : createOrderService(options);
if (process.env.LOG_EVENTS) {
  // One line per message, for watching the flow (the multi-process demo sets it).
  const sent = ({ messageId, routingKey }: { messageId: string; routingKey: string }) =>
    console.log(`order: -> ${routingKey} ${messageId}`);
  order.service.observe('published', ({ envelope }) =>
    sent({ messageId: envelope.id, routingKey: envelope.type }),
  );
  order.relay?.observe('published', sent);
  order.service.observe('handled', ({ envelope }) =>
    console.log(`order: <- ${envelope.type} ${envelope.id}`),
  );
}
const where = databaseUrl ? `PostgreSQL ${redactUrl(databaseUrl)}, with an outbox` : 'memory';
console.log(`order: HTTP on ${await order.start()}, broker ${redactUrl(url)}, orders in ${where}`);

stopOnSignals(
  async () => {
    console.log(`order: stopping`);
    try {
      await order.stop();
    } finally {
      await transport.close();
      await pool?.end();
    }
  },
  { name: 'order' },
);
