import { execFileSync, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import amqplib from 'amqplib';
import { deadLetterQueueName, type Topology } from 'tidings';
import { amqpTransport, MAX_RETRY_LEVEL, retryQueueName } from 'tidings/amqp';
import { brokerReachable } from 'tidings/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import ecommerceServices from '../services.js';

/*
 * What a new user does on a fresh clone: the tests, then the README's RabbitMQ demo, on the same
 * broker. The Celery interop test publishes orders to the real `order` exchange; it must do so
 * where the demo's queues cannot see them, and the demo must come out right whatever the broker
 * holds. This file works on vhost `/` itself, where a user's demo runs, so it belongs to the
 * serial pass (nothing else runs beside it there). It creates only what was missing and deletes
 * only that afterwards.
 */

const AMQP_URL = process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const broker = new URL(AMQP_URL);
const up = await brokerReachable(broker.hostname, Number(broker.port || 5672), 'RabbitMQ');
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
/** The broker's default vhost `/`, where the README's demo runs. */
const DEFAULT_VHOST = (() => {
  const u = new URL(AMQP_URL);
  u.pathname = '/';
  return u.href;
})();

/** The demo's topology: the four services' queues and the exchanges they bind. */
const topology: Topology = (() => {
  const services = ecommerceServices();
  const queues = services.flatMap((s) => s.topology().queues);
  const exchanges = [...new Set(queues.flatMap((q) => q.bindings.map((b) => b.exchange)))];
  return { exchanges, queues };
})();
const workQueues = topology.queues.map((q) => q.name);
const everyQueue = workQueues.flatMap((q) => [
  q,
  deadLetterQueueName(q),
  ...Array.from({ length: MAX_RETRY_LEVEL }, (_, i) => retryQueueName(q, i + 1)),
]);

function run(
  args: readonly string[],
  timeoutMs: number,
): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, {
      cwd: ROOT,
      env: { ...process.env, FORCE_COLOR: '0', NO_COLOR: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => {
      output += c;
    });
    child.stderr.setEncoding('utf8').on('data', (c: string) => {
      output += c;
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', reject);
    child.once('exit', (code) => {
      clearTimeout(timer);
      // biome-ignore lint/suspicious/noControlCharactersInRegex: terminal colours are what it removes
      resolve({ code, output: output.replace(/\x1b\[[0-9;]*m/g, '') });
    });
  });
}

const demo = (...args: string[]) =>
  run(
    ['--import', 'tsx', 'examples/ecommerce/demo.ts', '--broker', DEFAULT_VHOST, ...args],
    180_000,
  );

/** Ready messages per queue of the demo on `/`; queues that do not exist are left out. */
async function depths(): Promise<Record<string, number>> {
  const connection = await amqplib.connect(DEFAULT_VHOST);
  const out: Record<string, number> = {};
  try {
    for (const queue of everyQueue) {
      const channel = await connection.createChannel();
      channel.on('error', () => {});
      const ok = await channel.checkQueue(queue).catch(() => undefined);
      if (ok) {
        out[queue] = ok.messageCount;
        await channel.close().catch(() => {});
      }
    }
  } finally {
    await connection.close().catch(() => {});
  }
  return out;
}

describe.skipIf(!up)('the interop test, then the demo, on one broker', () => {
  let existed: Record<string, number> = {};
  const exchangesExisted: string[] = [];

  beforeAll(async () => {
    existed = await depths();
    const connection = await amqplib.connect(DEFAULT_VHOST);
    try {
      for (const name of topology.exchanges) {
        const channel = await connection.createChannel();
        channel.on('error', () => {});
        if (
          await channel.checkExchange(name).then(
            () => true,
            () => false,
          )
        ) {
          exchangesExisted.push(name);
          await channel.close().catch(() => {});
        }
      }
    } finally {
      await connection.close().catch(() => {});
    }
    // The demo's durable queues as earlier demo runs leave them on `/`: bound, and listening.
    const t = amqpTransport({ url: DEFAULT_VHOST, connectionName: 'isolation-test' });
    try {
      await t.declare(topology);
    } finally {
      await t.close();
    }
  }, 60_000);

  afterAll(async () => {
    const connection = await amqplib.connect(DEFAULT_VHOST);
    try {
      const channel = await connection.createChannel();
      for (const queue of everyQueue) {
        if (!(queue in existed)) await channel.deleteQueue(queue);
      }
      for (const name of topology.exchanges) {
        if (!exchangesExisted.includes(name)) await channel.deleteExchange(name);
      }
    } finally {
      await connection.close().catch(() => {});
    }
  }, 60_000);

  it('the Celery interop test passes and leaves nothing in the queues the demo uses', async () => {
    const before = await depths();
    const r = await run(
      ['node_modules/vitest/vitest.mjs', 'run', 'examples/ecommerce/test/celery-interop.test.ts'],
      180_000,
    );
    expect(r.output).toMatch(/Test Files {2}1 (passed|skipped)/);
    expect(r.code).toBe(0);
    expect(await depths()).toEqual(before);
  }, 200_000);

  it('the demo then comes out right, in a vhost of its own that it deletes afterwards', async () => {
    const r = await demo();
    expect(r.output).toMatch(/^In a vhost of its own, (tidings-demo-\S+) /m);
    expect(r.output).toContain('Outcome as expected.');
    expect(r.code).toBe(0);
    const name = /In a vhost of its own, (\S+) /.exec(r.output)![1]!;
    const vhosts = execFileSync('rabbitmqctl', ['-q', 'list_vhosts'], { encoding: 'utf8' });
    expect(vhosts.split('\n')).not.toContain(name);
  }, 200_000);

  it('without a vhost of its own, the demo sets aside what others left in its queues, says what it was, and comes out right', async () => {
    // What the interop test used to leave on `/`: Celery-format orders from a Python producer
    // and Tidings messages, copied into every queue bound to `order.*.submit`.
    const connection = await amqplib.connect(DEFAULT_VHOST);
    try {
      const channel = await connection.createConfirmChannel();
      for (const id of [9000, 9001, 9002]) {
        const task = `celery-${id}`;
        channel.publish(
          'order',
          'order.v1.submit',
          Buffer.from(
            JSON.stringify([
              [],
              { instance: { id, lines: [{ id: 1, quantity: 2, price: 3 }] } },
              {},
            ]),
          ),
          {
            headers: {
              lang: 'py',
              task: 'order.v1.submit',
              id: task,
              root_id: task,
              origin: 'gen1@host',
            },
            contentType: 'application/json',
            contentEncoding: 'utf-8',
            persistent: true,
          },
        );
      }
      await channel.waitForConfirms();
    } finally {
      await connection.close();
    }
    const r = await demo('--no-own-vhost');
    expect(r.output).toContain(
      'Found 3 messages already waiting for billing.order.submit, not sent by this run: ' +
        'order.v1.submit ×3 (orders #9000, #9001, #9002; from gen1@host). ' +
        'Moved to billing.order.submit.dlq',
    );
    expect(r.output).toContain('Outcome as expected.');
    expect(r.code).toBe(0);
    const after = await depths();
    for (const queue of ['billing', 'logistic', 'notification'].map((s) => `${s}.order.submit`)) {
      expect(after[queue]).toBe(0);
      expect(after[deadLetterQueueName(queue)]).toBe(
        (existed[deadLetterQueueName(queue)] ?? 0) + 3,
      );
    }
  }, 200_000);
});
