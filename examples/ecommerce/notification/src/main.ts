import { redactUrl, runService } from 'tidings';
import { narrate } from '../../narrate.js';
import { createNotificationService } from './index.js';

// Notification as its own process: `BROKER_URL=amqp://... PORT=3004 npx tsx notification/src/main.ts`.
const url = process.env.BROKER_URL ?? 'memory://';

await runService({
  name: 'notification',
  brokerUrl: url,
  start: async (transport) => {
    const notification = createNotificationService({
      transport,
      port: Number(process.env.PORT ?? 3004),
      host: process.env.HOST ?? '127.0.0.1',
    });
    // The demo's narration, one line per message (the multi-process demo sets LOG_EVENTS).
    if (process.env.LOG_EVENTS) narrate({ notification }, (line) => console.log(line));
    console.log(`notification: HTTP on ${await notification.start()}, broker ${redactUrl(url)}`);
    return notification;
  },
}).catch((error: unknown) => {
  console.error(`notification: ${(error as Error).message}`);
  process.exit(1);
});
