import { connect, redactUrl, stopOnSignals } from 'tidings';
import { narrate } from '../../narrate.js';
import { createBillingService, PostgresBooks } from './index.js';

// Billing as its own process: `BROKER_URL=amqp://... PORT=3002 npx tsx billing/src/main.ts`.
// With DATABASE_URL (postgres://...), the ledger lives in PostgreSQL and each message is posted
// exactly once, across restarts and replicas; without it, in memory.
const url = process.env.BROKER_URL ?? 'memory://';
const databaseUrl = process.env.DATABASE_URL;
const transport = await connect(url);
// pg is loaded only when a database is configured, so the in-memory demo never needs it.
const pool = databaseUrl
  ? new (await import('pg')).default.Pool({ connectionString: databaseUrl })
  : undefined;
const books = pool
  ? new PostgresBooks({ pool, tablePrefix: process.env.BILLING_TABLE_PREFIX })
  : undefined;
await books?.ensureSchema();
const options = {
  transport,
  port: Number(process.env.PORT ?? 3002),
  host: process.env.HOST ?? '127.0.0.1',
};
const billing = books ? createBillingService({ ...options, books }) : createBillingService(options);
// The demo's narration, one line per message (the multi-process demo sets LOG_EVENTS).
if (process.env.LOG_EVENTS) narrate({ billing }, (line) => console.log(line));
const ledger = databaseUrl ? `PostgreSQL ${redactUrl(databaseUrl)}` : 'memory';
console.log(
  `billing: HTTP on ${await billing.start()}, broker ${redactUrl(url)}, ledger in ${ledger}`,
);

stopOnSignals(
  async () => {
    console.log(`billing: stopping`);
    try {
      await billing.stop();
    } finally {
      await transport.close();
      await pool?.end();
    }
  },
  { name: 'billing' },
);
