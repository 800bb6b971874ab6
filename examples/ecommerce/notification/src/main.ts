import { connect, redactUrl, stopOnSignals } from 'tidings';
import { createNotificationService } from './index.js';

// Notification as its own process: `BROKER_URL=amqp://... PORT=3004 npx tsx notification/src/main.ts`.
const url = process.env.BROKER_URL ?? 'memory://';
const transport = await connect(url);
const notification = createNotificationService({
  transport,
  port: Number(process.env.PORT ?? 3004),
  host: process.env.HOST ?? '127.0.0.1',
});
if (process.env.LOG_EVENTS) {
  // One line per message, for watching the flow (the multi-process demo sets it).
  notification.service.observe('published', ({ envelope }) =>
    console.log(`notification: -> ${envelope.type} ${envelope.id}`),
  );
  notification.service.observe('handled', ({ envelope }) =>
    console.log(`notification: <- ${envelope.type} ${envelope.id}`),
  );
}
console.log(`notification: HTTP on ${await notification.start()}, broker ${redactUrl(url)}`);

stopOnSignals(
  async () => {
    console.log(`notification: stopping`);
    try {
      await notification.stop();
    } finally {
      await transport.close();
    }
  },
  { name: 'notification' },
);
