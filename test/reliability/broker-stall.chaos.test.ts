import { afterAll, describe, expect, it } from 'vitest';
import { defineEvent, defineExchange } from '../../src/contracts/event.js';
import { PublishTimeoutError } from '../../src/errors.js';
import { silentLogger } from '../../src/logger.js';
import { createService, type Service } from '../../src/runtime/service.js';
import { uniqueName } from '../../src/testing/broker.js';
import { waitFor } from '../../src/testing/conformance.js';
import { testOrderSchema } from '../../src/testing/schema.js';
import { type AmqpTransport, amqpTransport } from '../../src/transports/amqp/index.js';
import type { Topology } from '../../src/transports/transport.js';
import {
  AMQP_URL,
  assertBrokerUp,
  canRestartBroker,
  deleteTopology,
  rabbitmqctl,
  report,
} from './harness.js';

/**
 * A broker that stops answering without closing anything, and one that refuses to take more
 * messages: the two failures a restart test does not see.
 *
 * - Heartbeat loss: the broker's process is frozen (SIGSTOP), so every socket stays open and
 *   silent. Only the heartbeat can tell; the transport must notice, reconnect once the broker
 *   is back (SIGCONT), and lose nothing.
 * - Resource alarm: RabbitMQ's memory high watermark is set below what it uses, so it blocks
 *   every publishing connection. Publishes wait (or time out with `PublishTimeoutError`), none is
 *   lost, and everything flows again when the alarm clears.
 */

const up = await canRestartBroker();
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The OS process of the RabbitMQ node (`RABBITMQ_NODENAME` picks the node, as for rabbitmqctl). */
async function brokerPid(): Promise<number> {
  const { stdout } = await rabbitmqctl('eval', 'os:getpid().');
  const pid = Number(stdout.trim().replace(/"/g, ''));
  if (!Number.isInteger(pid) || pid <= 1) throw new Error(`no broker pid in ${stdout}`);
  return pid;
}

interface Rig {
  readonly transport: AmqpTransport;
  readonly consumer: Service;
  readonly producer: Service;
  readonly seen: Map<number, number>;
  readonly topology: Topology;
  readonly event: ReturnType<typeof makeEvent>;
}

function makeEvent(exchange: string) {
  return defineEvent(defineExchange(exchange), 'submit', testOrderSchema);
}

const rigs: Rig[] = [];

async function rig(name: string, heartbeat: number): Promise<Rig> {
  const exchange = uniqueName(`stall-${name}`);
  const event = makeEvent(exchange);
  const transport = amqpTransport({
    url: AMQP_URL,
    connectionName: `stall ${name}`,
    heartbeat,
    logger: silentLogger,
    queueType: 'quorum',
    reconnect: { initialDelayMs: 100, maxDelayMs: 1000 },
    publishTimeoutMs: 120_000,
    connectTimeoutMs: 120_000,
  });
  const seen = new Map<number, number>();
  const consumer = createService({ name: 'stall', transport, logger: silentLogger, prefetch: 50 });
  consumer.on(event, (order) => {
    seen.set(order.id, (seen.get(order.id) ?? 0) + 1);
  });
  const producer = createService({ name: 'stall-producer', transport, logger: silentLogger });
  await consumer.start();
  const r = { transport, consumer, producer, seen, topology: consumer.topology(), event };
  rigs.push(r);
  return r;
}

afterAll(async () => {
  for (const r of rigs.splice(0)) {
    await r.consumer.stop();
    await r.transport.close();
    await deleteTopology(r.topology);
  }
});

describe.skipIf(!up)('reliability: a stalled broker', () => {
  it('notices a frozen broker by its heartbeat, reconnects when it thaws, and loses nothing', async () => {
    const r = await rig('heartbeat', 1);
    const disconnected = new Map<string, number>();
    const resumed: string[] = [];
    r.transport.on('disconnected', ({ connection }) => {
      if (!disconnected.has(connection)) disconnected.set(connection, Date.now());
    });
    r.transport.on('consumer-resumed', ({ queue }) => resumed.push(queue));

    const pid = await brokerPid();
    const total = 6000;
    const confirmed: number[] = [];
    const failed: unknown[] = [];
    // A steady stream of about 6 s, so that the freeze lands mid-flow: 10 publishes every 10 ms.
    const publishing = (async () => {
      for (let id = 0; id < total; id += 10) {
        for (let k = id; k < Math.min(total, id + 10); k++) {
          r.producer.publish(r.event, { id: k, lines: [] }).then(
            () => confirmed.push(k),
            (error: unknown) => failed.push(error),
          );
        }
        await sleep(10);
      }
    })();
    await waitFor(() => r.seen.size >= 500, 'the first 500 messages consumed', 60_000);
    const frozenAt = Date.now();
    process.kill(pid, 'SIGSTOP');
    const consumedWhenFrozen = r.seen.size;
    let thawedAt = 0;
    try {
      await waitFor(
        () => disconnected.has('publish') && disconnected.has('consume'),
        'both connections to notice the silent broker',
        60_000,
      );
      await sleep(2000);
    } finally {
      process.kill(pid, 'SIGCONT');
      thawedAt = Date.now();
    }
    await publishing;
    await waitFor(
      () => confirmed.length + failed.length === total,
      'every publish to settle',
      120_000,
    );
    await waitFor(
      () => confirmed.every((id) => r.seen.has(id)),
      'every confirmed message consumed',
      120_000,
    );
    await waitFor(() => resumed.length > 0, 'the consumer to resume', 60_000);
    const duplicates = [...r.seen.values()].filter((n) => n > 1).length;
    report('broker frozen with SIGSTOP (heartbeat 1 s)', {
      published: total,
      confirmed: confirmed.length,
      'rejected (typed errors)': failed.length,
      'consumed (distinct)': r.seen.size,
      'consumed twice or more': duplicates,
      'publish connection noticed after': `${disconnected.get('publish')! - frozenAt} ms`,
      'consume connection noticed after': `${disconnected.get('consume')! - frozenAt} ms`,
      'frozen for': `${thawedAt - frozenAt} ms`,
      'consumed when frozen': consumedWhenFrozen,
    });
    expect(failed).toEqual([]);
    expect(confirmed).toHaveLength(total);
    expect(r.seen.size).toBe(total);
    // The freeze came mid-stream, not after it.
    expect(consumedWhenFrozen).toBeLessThan(total);
    expect(resumed).toContain(r.topology.queues[0]!.name);
    await assertBrokerUp();
  });

  it('holds publishes while a memory alarm blocks them, and delivers all of them once it clears', async () => {
    const r = await rig('alarm', 5);
    const events: string[] = [];
    r.transport.on('blocked', ({ connection }) => events.push(`blocked ${connection}`));
    r.transport.on('unblocked', ({ connection }) => events.push(`unblocked ${connection}`));
    // A second transport that gives up early: a publish during the alarm fails, and says why.
    const impatient = amqpTransport({
      url: AMQP_URL,
      connectionName: 'stall impatient',
      logger: silentLogger,
      publishTimeoutMs: 1500,
    });
    const impatientProducer = createService({
      name: 'stall-impatient',
      transport: impatient,
      logger: silentLogger,
    });

    for (let id = 0; id < 200; id++) await r.producer.publish(r.event, { id, lines: [] });
    await impatientProducer.publish(r.event, { id: 1000, lines: [] });
    await waitFor(() => r.seen.size === 201, 'the messages before the alarm', 60_000);

    const { stdout } = await rabbitmqctl(
      'eval',
      'vm_memory_monitor:get_vm_memory_high_watermark().',
    );
    const watermark = stdout.trim();
    const blockedAt = Date.now();
    let clearedAt = 0;
    const during: Promise<unknown>[] = [];
    let settledDuring = 0;
    let settledWhileBlocked = -1;
    let impatientError: unknown;
    try {
      await rabbitmqctl('set_vm_memory_high_watermark', '0.0000001');
      // RabbitMQ blocks a connection when it next publishes.
      for (let id = 200; id < 400; id++) {
        during.push(
          r.producer.publish(r.event, { id, lines: [] }).finally(() => {
            settledDuring++;
          }),
        );
      }
      impatientError = await impatientProducer
        .publish(r.event, { id: 1001, lines: [] })
        .catch((error: unknown) => error);
      await waitFor(
        () => events.includes('blocked publish'),
        'the publish connection to be blocked',
        30_000,
      );
      settledWhileBlocked = settledDuring;
      expect(settledWhileBlocked).toBe(0);
    } finally {
      // The setting comes back as a fraction (0.4) or as {absolute,Bytes}.
      const absolute = /^\{absolute,\s*(\d+)\}$/.exec(watermark);
      await rabbitmqctl(
        'set_vm_memory_high_watermark',
        ...(absolute
          ? ['absolute', absolute[1]!]
          : [/^[0-9.]+$/.test(watermark) ? watermark : '0.4']),
      );
      clearedAt = Date.now();
    }
    await Promise.all(during);
    await waitFor(
      () => events.includes('unblocked publish'),
      'the publish connection unblocked',
      30_000,
    );
    await waitFor(() => r.seen.size >= 400 + 1, 'every message published during the alarm', 60_000);
    await impatient.close();
    report('memory alarm', {
      'published before / during the alarm': '200 / 200',
      'settled while blocked': settledWhileBlocked,
      'consumed (distinct)': r.seen.size,
      'impatient publish (timeout 1.5 s)':
        impatientError instanceof PublishTimeoutError
          ? 'PublishTimeoutError'
          : String(impatientError),
      'impatient message delivered after all': r.seen.has(1001) ? 'yes' : 'no',
      'alarm lasted': `${clearedAt - blockedAt} ms`,
      events: events.join(', '),
    });
    expect(impatientError).toBeInstanceOf(PublishTimeoutError);
    for (let id = 0; id < 400; id++) expect(r.seen.has(id)).toBe(true);
    await assertBrokerUp();
  });
});
