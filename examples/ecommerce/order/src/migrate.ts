import { redactUrl } from 'tidings';
import { PostgresOrders } from './index.js';

// Creates the Order service's tables (orders and the outbox) where missing, as a deployment step:
// `DATABASE_URL=postgres://... npx tsx examples/ecommerce/order/src/migrate.ts`. The outbox table
// alone can also be made by `tidings outbox migrate --table order_outbox`.
const databaseUrl = process.env.DATABASE_URL;
if (!databaseUrl) {
  console.error('order migrate: set DATABASE_URL (postgres://user@host:5432/db)');
  process.exit(2);
}
const pool = new (await import('pg')).default.Pool({ connectionString: databaseUrl, max: 1 });
try {
  const orders = new PostgresOrders({ pool, tablePrefix: process.env.ORDER_TABLE_PREFIX });
  await orders.migrate();
  console.log(
    `order migrate: ${orders.tables.orders} and ${orders.tables.outbox} are ready on ${redactUrl(databaseUrl)}`,
  );
} finally {
  await pool.end();
}
