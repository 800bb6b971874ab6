import { connect, redactUrl, stopOnSignals } from 'tidings';
import { createBillingService } from './index.js';

// Billing as its own process: `BROKER_URL=amqp://... PORT=3002 npx tsx billing/src/main.ts`.
const url = process.env.BROKER_URL ?? 'memory://';
const transport = await connect(url);
const billing = createBillingService({
  transport,
  port: Number(process.env.PORT ?? 3002),
  host: process.env.HOST ?? '127.0.0.1',
});
if (process.env.LOG_EVENTS) {
  // One line per message, for watching the flow (the multi-process demo sets it).
  billing.service.observe('published', ({ envelope }) =>
    console.log(`billing: -> ${envelope.type} ${envelope.id}`),
  );
  billing.service.observe('handled', ({ envelope }) =>
    console.log(`billing: <- ${envelope.type} ${envelope.id}`),
  );
}
console.log(`billing: HTTP on ${await billing.start()}, broker ${redactUrl(url)}`);

stopOnSignals(
  async () => {
    console.log(`billing: stopping`);
    try {
      await billing.stop();
    } finally {
      await transport.close();
    }
  },
  { name: 'billing' },
);
