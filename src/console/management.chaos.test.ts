import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { consoleFetch } from '../../test/support/console.js';
import {
  canStartPrivateRabbit,
  type PrivateRabbit,
  startPrivateRabbit,
} from '../../test/support/private-rabbit.js';
import { defineEvent, defineExchange } from '../contracts/event.js';
import { silentLogger } from '../logger.js';
import { createService } from '../runtime/service.js';
import { uniqueName } from '../testing/broker.js';
import { amqpTransport } from '../transports/amqp/index.js';
import type { Transport } from '../transports/transport.js';
import { startConsole } from './server.js';

/*
 * The console's numbers from RabbitMQ's management API. The shared test broker has no plugins
 * and must stay plain, so these tests start a private node with rabbitmq_management on free
 * ports (test/support/private-rabbit.ts, which needs root and rabbitmq-server) and stop it
 * afterwards; starting a broker is why they run in the serial pass. CONSOLE_RABBITMQ_URL and
 * CONSOLE_MANAGEMENT_URL name a node with the plugin to use instead.
 */
const givenBroker = process.env.CONSOLE_RABBITMQ_URL || undefined;
const givenManagement = process.env.CONSOLE_MANAGEMENT_URL || undefined;
if (!givenBroker !== !givenManagement) {
  throw new Error('set both CONSOLE_RABBITMQ_URL and CONSOLE_MANAGEMENT_URL, or neither');
}
const runnable =
  givenBroker !== undefined ||
  canStartPrivateRabbit(
    'the console tests against the RabbitMQ management API (CONSOLE_RABBITMQ_URL and ' +
      'CONSOLE_MANAGEMENT_URL unset)',
  );

describe.skipIf(!runnable)('console numbers from the management API', () => {
  let brokerUrl = givenBroker ?? '';
  let managementUrl = givenManagement ?? '';
  let rabbit: PrivateRabbit | undefined;
  const transports: Transport[] = [];
  const closers: (() => Promise<void>)[] = [];
  beforeAll(async () => {
    if (givenBroker) return;
    rabbit = await startPrivateRabbit({ name: 'console-mgmt', management: true });
    brokerUrl = rabbit.amqpUrl;
    managementUrl = rabbit.managementUrl!;
  }, 180_000);
  afterAll(async () => {
    try {
      for (const close of closers.reverse()) await close();
      for (const t of transports) await t.close();
    } finally {
      await rabbit?.stop();
    }
  }, 120_000);

  async function shop() {
    const name = uniqueName('mgmt').replace(/-/g, '_');
    const exchange = defineExchange(name);
    const placed = defineEvent(exchange, 'placed', z.object({ id: z.number() }));
    const transport = amqpTransport({ url: brokerUrl, logger: silentLogger });
    transports.push(transport);
    const billing = createService({ name: 'billing', transport, logger: silentLogger });
    billing.on(placed, () => {});
    const shopService = createService({ name: 'shop', transport, publishes: [placed] });
    await billing.start();
    await billing.stop();
    await shopService.start();
    const queue = `billing.${name}.placed`;
    closers.push(async () => {
      await transport.deleteTopology(
        {
          exchanges: [name],
          queues: [
            { name: queue, bindings: [] },
            { name: `python_${name}`, bindings: [] },
          ],
        },
        { exchanges: true },
      );
    });
    return { name, placed, transport, billing, shopService, queue };
  }

  it('shows counts, rates and the queues of consumers it does not know, without credentials', async () => {
    const s = await shop();
    // A consumer outside the services module, such as the seed's Celery services.
    await s.transport.declare({
      exchanges: [s.name],
      queues: [{ name: `python_${s.name}`, bindings: [{ exchange: s.name, pattern: '#' }] }],
    });
    const c = await startConsole({
      transport: s.transport,
      services: [s.shopService, s.billing],
      brokerUrl,
      management: managementUrl,
      logger: silentLogger,
      statsIntervalMs: 500,
    });
    closers.push(() => c.close());
    // A steady trickle, for a rate the management plugin (which samples every few seconds) sees.
    let sent = 0;
    const trickle = setInterval(() => {
      sent++;
      void s.shopService.publish(s.placed, { id: sent });
    }, 100);
    closers.push(async () => clearInterval(trickle));
    const deadline = Date.now() + 60_000;
    let text = '';
    let stats: {
      source: string;
      queues: Record<string, { messages: number; unacknowledged?: number; inRate?: number }>;
      exchanges: Record<string, { inRate?: number }>;
      otherQueues: { queue: string }[];
    };
    for (;;) {
      text = await (await consoleFetch(c.url, '/api/stats')).text();
      stats = JSON.parse(text);
      const q = stats.queues[s.queue];
      if ((q && q.messages >= 20 && (q.inRate ?? 0) > 0) || Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 500));
    }
    clearInterval(trickle);
    expect(stats.source).toBe('management');
    expect(stats.queues[s.queue]).toMatchObject({ unacknowledged: 0 });
    expect(stats.queues[s.queue]!.messages).toBeGreaterThanOrEqual(20);
    expect(stats.queues[s.queue]!.inRate).toBeGreaterThan(0);
    expect(stats.exchanges[s.name]!.inRate).toBeGreaterThanOrEqual(0);
    expect(stats.otherQueues.map((o) => o.queue)).toContain(`python_${s.name}`);
    const page = await (await fetch(c.url)).text();
    const overview = await (await consoleFetch(c.url, '/api/overview')).text();
    for (const shown of [text, page, overview]) {
      expect(shown).not.toContain(new URL(managementUrl).password);
      expect(shown).not.toContain(Buffer.from('guest:guest').toString('base64'));
    }
  }, 90_000);

  it('falls back to passive declares when the API refuses or is not there, and says why', async () => {
    const s = await shop();
    const wrong = new URL(managementUrl);
    wrong.password = 'not-the-password';
    const warnings: string[] = [];
    const logger = { ...silentLogger, warn: (m: string) => void warnings.push(m) };
    for (const management of [wrong.toString(), undefined]) {
      const c = await startConsole({
        transport: s.transport,
        services: [s.billing],
        brokerUrl: brokerUrl.replace('guest:guest', 'guest:also-secret'),
        management,
        logger,
      });
      closers.push(() => c.close());
      const text = await (await consoleFetch(c.url, '/api/stats')).text();
      const stats = JSON.parse(text) as { source: string; note: string };
      expect(stats.source).toBe('passive');
      expect(stats.note).toMatch(management ? /answered 401/ : /not reachable/);
      expect(stats.note).toMatch(/using passive declares/);
      expect(text).not.toContain('not-the-password');
      expect(text).not.toContain('also-secret');
    }
    expect(warnings.join('\n')).not.toMatch(/not-the-password|also-secret/);
    expect(warnings).toHaveLength(2);
  }, 60_000);
});
