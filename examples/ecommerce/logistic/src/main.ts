import { connect, redactUrl, stopOnSignals } from 'tidings';
import { createLogisticService } from './index.js';

// Logistic as its own process: `BROKER_URL=amqp://... PORT=3003 npx tsx logistic/src/main.ts`.
const url = process.env.BROKER_URL ?? 'memory://';
const transport = await connect(url);
const logistic = createLogisticService({
  transport,
  port: Number(process.env.PORT ?? 3003),
  host: process.env.HOST ?? '127.0.0.1',
});
if (process.env.LOG_EVENTS) {
  // One line per message, for watching the flow (the multi-process demo sets it).
  logistic.service.observe('published', ({ envelope }) =>
    console.log(`logistic: -> ${envelope.type} ${envelope.id}`),
  );
  logistic.service.observe('handled', ({ envelope }) =>
    console.log(`logistic: <- ${envelope.type} ${envelope.id}`),
  );
}
console.log(`logistic: HTTP on ${await logistic.start()}, broker ${redactUrl(url)}`);

stopOnSignals(
  async () => {
    console.log(`logistic: stopping`);
    try {
      await logistic.stop();
    } finally {
      await transport.close();
    }
  },
  { name: 'logistic' },
);
