import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { defineEvent, defineExchange } from '../../contracts/event.js';
import { silentLogger } from '../../logger.js';
import { createService } from '../../runtime/service.js';
import { uniqueName } from '../../testing/broker.js';
import { waitFor } from '../../testing/conformance.js';
import { testOrderSchema } from '../../testing/schema.js';
import { amqpTransport } from './index.js';

/*
 * Failover between two RabbitMQ nodes that the test may stop: the transport is given both URLs,
 * works on the first, the first node is stopped (`rabbitmqctl stop_app`), and the transport
 * moves to the second: it re-declares its topology there, the consumer resumes there, and new
 * publishes are confirmed and handled. Needs AMQP_FAILOVER="<url>=<node>,<url>=<node>" naming two
 * private nodes (e.g. from /work/dev/private-rabbit.sh); skipped with a message otherwise, since a
 * shared broker must never be stopped. The nodes are independent here (no cluster): messages
 * left on the stopped node wait for it; replicating them is what a cluster with quorum queues
 * adds (docs/rabbitmq.md).
 */

const spec = process.env.AMQP_FAILOVER?.split(',').map((pair) => {
  const at = pair.lastIndexOf('=');
  return { url: pair.slice(0, at), node: pair.slice(at + 1) };
});
if (!spec || spec.length < 2) {
  console.warn('\n  SKIPPED: the failover test needs AMQP_FAILOVER="<url>=<node>,<url>=<node>".\n');
}
const run = promisify(execFile);
const rabbitmqctl = (node: string, ...args: string[]) =>
  run('rabbitmqctl', ['-n', node, ...args], { timeout: 60_000 });

describe.skipIf(!spec || spec.length < 2)('failover between RabbitMQ nodes', () => {
  it('moves to the next node when the one it uses stops, topology and consumer included', async () => {
    const [a, b] = spec!;
    const transport = amqpTransport({
      urls: [a!.url, b!.url],
      logger: silentLogger,
      reconnect: { initialDelayMs: 50, maxDelayMs: 500 },
    });
    const connected: string[] = [];
    transport.on('connected', (e) => connected.push(e.url));
    const exchange = defineExchange(uniqueName('ha'));
    const submit = defineEvent(exchange, 'submit', testOrderSchema);
    const service = createService({ name: uniqueName('svc'), transport, logger: silentLogger });
    const got = new Set<number>();
    service.on(submit, (o) => void got.add(o.id));
    let stopped = false;
    try {
      await service.start();
      for (let id = 0; id < 20; id++) await service.publish(submit, { id, lines: [] });
      await waitFor(() => got.size === 20, '20 messages on the first node', 20_000);
      const before = connected.length;
      await rabbitmqctl(a!.node, 'stop_app');
      stopped = true;
      await waitFor(
        () => connected.length >= before + 2,
        'both connections on the second node',
        60_000,
      );
      const port = new URL(b!.url).port;
      expect(connected.slice(before).every((u) => u.includes(`:${port}/`))).toBe(true);
      for (let id = 20; id < 40; id++) await service.publish(submit, { id, lines: [] });
      await waitFor(() => got.size === 40, '20 more messages on the second node', 30_000);
    } finally {
      if (stopped) await rabbitmqctl(a!.node, 'start_app');
      await service.stop();
      await transport.deleteTopology(service.topology(), { exchanges: true }).catch(() => {});
      await transport.close();
    }
  }, 180_000);
});
