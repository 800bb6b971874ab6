import { connect, redactUrl, stopOnSignals } from 'tidings';
import { narrate } from '../../narrate.js';
import { createLogisticService } from './index.js';

// Logistic as its own process: `BROKER_URL=amqp://... PORT=3003 npx tsx logistic/src/main.ts`.
const url = process.env.BROKER_URL ?? 'memory://';
const transport = await connect(url);
const logistic = createLogisticService({
  transport,
  port: Number(process.env.PORT ?? 3003),
  host: process.env.HOST ?? '127.0.0.1',
});
// The demo's narration, one line per message (the multi-process demo sets LOG_EVENTS).
if (process.env.LOG_EVENTS) narrate({ logistic }, (line) => console.log(line));
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
