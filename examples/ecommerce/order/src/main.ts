import { connect, redactUrl, stopOnSignals } from 'tidings';
import { narrate } from '../../narrate.js';
import { createOrderService } from './index.js';

// Order as its own process: `BROKER_URL=amqp://... PORT=3001 npx tsx order/src/main.ts`.
const url = process.env.BROKER_URL ?? 'memory://';
const transport = await connect(url);
const order = createOrderService({
  transport,
  port: Number(process.env.PORT ?? 3001),
  host: process.env.HOST ?? '127.0.0.1',
});
// The demo's narration, one line per message (the multi-process demo sets LOG_EVENTS).
if (process.env.LOG_EVENTS) narrate({ order }, (line) => console.log(line));
console.log(`order: HTTP on ${await order.start()}, broker ${redactUrl(url)}`);

stopOnSignals(
  async () => {
    console.log(`order: stopping`);
    try {
      await order.stop();
    } finally {
      await transport.close();
    }
  },
  { name: 'order' },
);
