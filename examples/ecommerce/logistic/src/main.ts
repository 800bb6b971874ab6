import { redactUrl, runService } from 'tidings';
import { narrate } from '../../narrate.js';
import { createLogisticService } from './index.js';

// Logistic as its own process: `BROKER_URL=amqp://... PORT=3003 npx tsx logistic/src/main.ts`.
const url = process.env.BROKER_URL ?? 'memory://';

await runService({
  name: 'logistic',
  brokerUrl: url,
  start: async (transport) => {
    const logistic = createLogisticService({
      transport,
      port: Number(process.env.PORT ?? 3003),
      host: process.env.HOST ?? '127.0.0.1',
    });
    // The demo's narration, one line per message (the multi-process demo sets LOG_EVENTS).
    if (process.env.LOG_EVENTS) narrate({ logistic }, (line) => console.log(line));
    console.log(`logistic: HTTP on ${await logistic.start()}, broker ${redactUrl(url)}`);
    return logistic;
  },
}).catch((error: unknown) => {
  console.error(`logistic: ${(error as Error).message}`);
  process.exit(1);
});
