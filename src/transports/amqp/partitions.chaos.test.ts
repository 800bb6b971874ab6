import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { defineEvent, defineExchange } from '../../contracts/event.js';
import { silentLogger } from '../../logger.js';
import { createService } from '../../runtime/service.js';
import { brokerReachable, uniqueName } from '../../testing/broker.js';
import { waitFor } from '../../testing/conformance.js';
import { testKeyedSchema } from '../../testing/schema.js';
import { amqpTransport } from './index.js';

/*
 * Per-key order across replicas that die: three processes run the same partitioned service in
 * turn. The first is active on every partition and is killed with SIGKILL mid-stream; the second
 * takes over; a third starts (a restart) as a standby, and takes over when the second is killed
 * too. Every handled message is logged with its time; per key, the handler must see the key's
 * messages in publish order, a message possibly twice (at least once), never an older one after
 * a newer one. It kills only its own processes, so it runs against the shared broker as well.
 */

const url = process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const broker = new URL(url);
const up = await brokerReachable(broker.hostname, Number(broker.port || 5672), 'RabbitMQ');
const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));
const srcUrl = (path: string) => pathToFileURL(join(repoRoot, 'src', path)).href;

interface Handled {
  readonly customer: string;
  readonly seq: number;
  readonly at: number;
  readonly by: string;
}

describe.skipIf(!up)('partitions on RabbitMQ, replicas killed', () => {
  const children: ChildProcess[] = [];
  const dir = mkdtempSync(join(tmpdir(), 'tidings-partitions-'));

  afterAll(() => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  it('keeps every key in publish order through two SIGKILLed replicas and a restart', async () => {
    const exchange = defineExchange(uniqueName('shop'));
    const placed = defineEvent(exchange, 'placed', testKeyedSchema, { key: (o) => o.customer });
    const name = uniqueName('ordered');
    const partitions = 4;
    const script = join(dir, 'replica.mts');
    writeFileSync(
      script,
      `
import { amqpTransport } from ${JSON.stringify(srcUrl('transports/amqp/index.ts'))};
import { createService } from ${JSON.stringify(srcUrl('runtime/service.ts'))};
import { silentLogger } from ${JSON.stringify(srcUrl('logger.ts'))};
import { defineExchange, defineEvent } from ${JSON.stringify(srcUrl('contracts/event.ts'))};
import { testKeyedSchema } from ${JSON.stringify(srcUrl('testing/schema.ts'))};
const placed = defineEvent(defineExchange(${JSON.stringify(exchange.name)}), 'placed', testKeyedSchema, { key: (o) => o.customer });
const transport = amqpTransport({ url: ${JSON.stringify(url)}, logger: silentLogger });
const service = createService({ name: ${JSON.stringify(name)}, transport, logger: silentLogger, prefetch: 10 });
service.on(placed, async (o) => {
  await new Promise((resolve) => setTimeout(resolve, 2));
  process.stdout.write('handled ' + o.customer + ' ' + o.seq + ' ' + (performance.timeOrigin + performance.now()) + '\\n');
}, { partitions: ${partitions} });
await service.start();
process.stdout.write('ready\\n');
`,
    );
    const log: Handled[] = [];
    function replica(by: string): { child: ChildProcess; ready: () => boolean } {
      const child = spawn(process.execPath, ['--import', 'tsx', script], {
        cwd: repoRoot,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      children.push(child);
      let ready = false;
      let rest = '';
      child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
        const lines = (rest + chunk).split('\n');
        rest = lines.pop()!;
        for (const line of lines) {
          if (line === 'ready') ready = true;
          const m = /^handled (\S+) (\d+) ([\d.]+)$/.exec(line);
          if (m) log.push({ customer: m[1]!, seq: Number(m[2]), at: Number(m[3]), by });
        }
      });
      child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
        process.stderr.write(`[${by}] ${chunk}`);
      });
      return { child, ready: () => ready };
    }

    const first = replica('first');
    await waitFor(first.ready, 'the first replica', 60_000);
    const second = replica('second');
    await waitFor(second.ready, 'the second replica', 60_000);

    const transport = amqpTransport({ url, logger: silentLogger });
    const producer = createService({ name: 'producer', transport, logger: silentLogger });
    const customers = Array.from({ length: 8 }, (_, i) => `customer-${i}`);
    const perCustomer = 100;
    const total = customers.length * perCustomer;
    let sent = 0;
    // Paused while the restarted replica boots, so the stream is still going when it is needed.
    let paused = false;
    const publishing = (async () => {
      for (let seq = 0; seq < perCustomer; seq++) {
        await Promise.all(customers.map((customer) => producer.publish(placed, { customer, seq })));
        sent += customers.length;
        // Keep a backlog flowing rather than everything queued before the first kill.
        while (paused || sent - log.length > 40) await new Promise((r) => setTimeout(r, 5));
      }
    })();
    try {
      await waitFor(() => log.length >= 100, '100 messages handled', 60_000);
      paused = true;
      first.child.kill('SIGKILL');
      const third = replica('third');
      await waitFor(third.ready, 'the restarted replica', 60_000);
      paused = false;
      await waitFor(
        () => log.filter((e) => e.by === 'second').length >= 150,
        'the second replica to take over',
        60_000,
      );
      second.child.kill('SIGKILL');
      await publishing;
      const distinct = () => new Set(log.map((e) => `${e.customer}:${e.seq}`)).size;
      await waitFor(() => distinct() === total, `all ${total} messages handled`, 90_000);
      const by = (r: string) => log.filter((e) => e.by === r).length;
      expect({
        first: by('first') > 0,
        second: by('second') > 0,
        third: by('third') > 0,
        counts: [by('first'), by('second'), by('third')],
      }).toMatchObject({ first: true, second: true, third: true });
      for (const customer of customers) {
        const seqs = log
          .filter((e) => e.customer === customer)
          .sort((a, b) => a.at - b.at)
          .map((e) => e.seq);
        const once = seqs.filter((seq, i) => i === 0 || seq !== seqs[i - 1]);
        expect({ customer, seqs: once }).toEqual({
          customer,
          seqs: Array.from({ length: perCustomer }, (_, i) => i),
        });
      }
    } finally {
      for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
      const cleanup = createService({ name, transport, logger: silentLogger });
      cleanup.on(placed, () => {}, { partitions });
      await transport.deleteTopology(cleanup.topology(), { exchanges: true }).catch(() => {});
      await transport.close();
    }
  }, 240_000);
});
