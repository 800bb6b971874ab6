import { redactUrl, runService } from 'tidings';
import { narrate } from '../../narrate.js';
import { createBillingService, PostgresBooks } from './index.js';

// Billing as its own process: `BROKER_URL=amqp://... PORT=3002 npx tsx billing/src/main.ts`.
// With DATABASE_URL (postgres://...), the ledger lives in PostgreSQL and each message is posted
// exactly once, across restarts and replicas; without it, in memory.
const url = process.env.BROKER_URL ?? 'memory://';
const databaseUrl = process.env.DATABASE_URL;

await runService({
  name: 'billing',
  brokerUrl: url,
  start: async (transport) => {
    // pg is loaded only when a database is configured, so the in-memory demo never needs it.
    const pool = databaseUrl
      ? new (await import('pg')).default.Pool({ connectionString: databaseUrl })
      : undefined;
    const books = pool
      ? new PostgresBooks({ pool, tablePrefix: process.env.BILLING_TABLE_PREFIX })
      : undefined;
    try {
      await books?.ensureSchema();
    } catch (error) {
      await pool?.end();
      throw error;
    }
    const options = {
      transport,
      port: Number(process.env.PORT ?? 3002),
      host: process.env.HOST ?? '127.0.0.1',
    };
    const billing = books
      ? createBillingService({ ...options, books })
      : createBillingService(options);
    // The demo's narration, one line per message (the multi-process demo sets LOG_EVENTS).
    if (process.env.LOG_EVENTS) narrate({ billing }, (line) => console.log(line));
    const ledger = databaseUrl ? `PostgreSQL ${redactUrl(databaseUrl)}` : 'memory';
    console.log(
      `billing: HTTP on ${await billing.start()}, broker ${redactUrl(url)}, ledger in ${ledger}`,
    );
    return {
      stop: async () => {
        try {
          await billing.stop();
        } finally {
          await pool?.end();
        }
      },
    };
  },
}).catch((error: unknown) => {
  console.error(`billing: ${(error as Error).message}`);
  process.exit(1);
});
