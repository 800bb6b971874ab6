import { connect, redactUrl } from 'tidings';
import { createOrderService } from './index.js';

// Order as its own process: `BROKER_URL=amqp://... PORT=3001 npx tsx order/src/main.ts`.
const url = process.env.BROKER_URL ?? 'memory://';
const transport = await connect(url);
const order = createOrderService({
  transport,
  port: Number(process.env.PORT ?? 3001),
  host: process.env.HOST ?? '127.0.0.1',
});
if (process.env.LOG_EVENTS) {
  // One line per message, for watching the flow (the multi-process demo sets it).
  order.service.observe('published', ({ envelope }) =>
    console.log(`order: -> ${envelope.type} ${envelope.id}`),
  );
  order.service.observe('handled', ({ envelope }) =>
    console.log(`order: <- ${envelope.type} ${envelope.id}`),
  );
}
console.log(`order: HTTP on ${await order.start()}, broker ${redactUrl(url)}`);

let stopping = false;
async function shutdown(signal: NodeJS.Signals): Promise<void> {
  if (stopping) return;
  stopping = true;
  console.log(`order: ${signal}, stopping`);
  try {
    await order.stop();
  } finally {
    await transport.close();
  }
}
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    shutdown(signal).catch((error: unknown) => {
      console.error('order: could not stop cleanly', error);
      process.exitCode = 1;
    });
  });
}
