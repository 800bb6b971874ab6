import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type OrderV2, orderSubmit } from '@ecommerce/contracts';
import amqplib from 'amqplib';
import {
  createService,
  deadLetterQueueName,
  type Envelope,
  type HandlerContext,
  HEADERS,
  type Service,
  silentLogger,
  type Transport,
} from 'tidings';
import { amqpTransport } from 'tidings/amqp';
import { brokerReachable, testVhost, uniqueName, waitFor } from 'tidings/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/**
 * Interop with the seed's Python services, both directions, against RabbitMQ and real Celery
 * workers (Debian's python3-celery, started here and killed afterwards). Both sides use the real
 * `order` exchange, as the seed does, so the file works in a vhost of its own: nothing it
 * publishes can reach the queues of the demo or of anyone else on the broker.
 */
const AMQP_URL = process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const PYTHON = '/usr/bin/python3';
const PY_DIR = fileURLToPath(new URL('../python/', import.meta.url));

function celeryInstalled(): boolean {
  try {
    execFileSync(PYTHON, ['-c', 'import celery, kombu, attr, cattr'], { stdio: 'ignore' });
    return true;
  } catch {
    if (process.env.CI)
      throw new Error(`Celery is not importable by ${PYTHON}: run scripts/ensure-python.sh`);
    console.warn(
      `\n  SKIPPED: Celery is not importable by ${PYTHON}; the interop tests are skipped.\n`,
    );
    return false;
  }
}

const broker = new URL(AMQP_URL);
const up =
  (await brokerReachable(broker.hostname, Number(broker.port || 5672), 'RabbitMQ')) &&
  celeryInstalled();
const vhost = up ? await testVhost(AMQP_URL, 'tidings-celery-interop') : undefined;
/** This file's vhost, for Tidings (amqplib) and for Celery (kombu reads the vhost from the path). */
const URL_HERE = vhost?.url ?? AMQP_URL;

interface Recorded {
  service: string;
  task: string;
  task_id: string;
  root_id: string | null;
  headers: Record<string, string>;
  message: {
    type: string;
    fields: Record<string, { type: string; value?: unknown; items?: Recorded['message'][] }>;
  };
}

describe.skipIf(!vhost)('interop with Celery services on RabbitMQ', () => {
  const workers: ChildProcess[] = [];
  const services: Service[] = [];
  let transport: Transport;
  let dir: string;

  beforeAll(() => {
    transport = amqpTransport({ url: URL_HERE, connectionName: 'celery-interop-test' });
    dir = mkdtempSync(join(tmpdir(), 'tidings-celery-'));
  });

  afterAll(async () => {
    for (const s of services) await s.stop();
    for (const w of workers) w.kill('SIGKILL');
    await transport.close();
    // Every exchange, queue and message of the file goes with its vhost.
    await vhost?.delete();
    rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  /** Starts a Python worker on a unique queue; resolves once Celery says it is ready. */
  async function startWorker(kind: 'billing' | 'logistic'): Promise<string> {
    const queue = uniqueName(`${kind}_order`);
    const record = join(dir, `${queue}.jsonl`);
    const worker = spawn(
      PYTHON,
      [
        '-m',
        'celery',
        '-A',
        kind,
        'worker',
        '-l',
        'INFO',
        '-Q',
        queue,
        '-n',
        `${queue}@%h`,
        '--pool',
        'solo',
        '--without-gossip',
        '--without-mingle',
        '--without-heartbeat',
      ],
      {
        cwd: PY_DIR,
        env: {
          ...process.env,
          BROKER_URL: URL_HERE,
          [kind === 'billing' ? 'BILLING_QUEUE' : 'LOGISTIC_QUEUE']: queue,
          RECORD_FILE: record,
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    workers.push(worker);
    let output = '';
    worker.stdout?.on('data', (d) => {
      output += d;
    });
    worker.stderr?.on('data', (d) => {
      output += d;
    });
    await waitFor(
      () => output.includes(' ready.'),
      `the Celery ${kind} worker to be ready`,
      30_000,
    );
    return record;
  }

  function records(file: string): Recorded[] {
    if (!existsSync(file)) return [];
    return readFileSync(file, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as Recorded);
  }

  it('a Tidings producer in Celery format reaches the Python billing worker as attrs objects', async () => {
    const record = await startWorker('billing');
    const order = createService({
      name: 'order',
      transport,
      format: 'celery',
      logger: silentLogger,
    });
    services.push(order);
    const sent: Envelope[] = [];
    for (let i = 0; i < 3; i++) {
      sent.push(
        await order.publish(
          orderSubmit,
          {
            id: 9000 + i,
            lines: [
              { id: 1, quantity: 2, price: 3 },
              { id: 2, quantity: 1, price: 4.5 },
            ],
          },
          { version: 1 },
        ),
      );
    }
    await waitFor(
      () => records(record).length === 3,
      'three records from the Python worker',
      20_000,
    );
    const got = records(record).sort(
      (a, b) => Number(a.message.fields.id?.value) - Number(b.message.fields.id?.value),
    );
    got.forEach((r, i) => {
      expect(r.task).toBe('order.v1.submit');
      expect(r.task_id).toBe(sent[i]!.id);
      expect(r.headers['ce-source']).toBe('order');
      expect(r.message.type).toBe('Order');
      expect(r.message.fields.id).toEqual({ type: 'int', value: 9000 + i });
      const lines = r.message.fields.lines!;
      expect(lines.type).toBe('list');
      expect(lines.items!.map((l) => l.type)).toEqual(['OrderLine', 'OrderLine']);
      expect(lines.items!.map((l) => l.fields.price)).toEqual([
        { type: 'float', value: 3 },
        { type: 'float', value: 4.5 },
      ]);
      expect(lines.items!.map((l) => l.fields.quantity)).toEqual([
        { type: 'int', value: 2 },
        { type: 'int', value: 1 },
      ]);
    });
  });

  it("the Python producer's order.submit() reaches Tidings handlers typed and validated, mixed with Tidings messages on one queue", async () => {
    const got: { service: string; order: OrderV2; ctx: HandlerContext }[] = [];
    for (const name of ['billing', 'logistic']) {
      const s = createService({ name: uniqueName(name), transport, logger: silentLogger });
      s.on(orderSubmit, (order, ctx) => void got.push({ service: name, order, ctx }));
      await s.start();
      services.push(s);
    }
    const python = spawn(PYTHON, ['-m', 'order', '3', '7000'], {
      cwd: PY_DIR,
      env: { ...process.env, BROKER_URL: URL_HERE },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const exit = await new Promise<number | null>((resolve) => python.on('exit', resolve));
    expect(exit).toBe(0);
    const producer = createService({ name: 'order-ts', transport, logger: silentLogger });
    await producer.publish(orderSubmit, {
      id: 7100,
      currency: 'USD',
      lines: [{ id: 1, quantity: 1, price: 1 }],
    });
    await producer.publish(
      orderSubmit,
      { id: 7101, lines: [{ id: 1, quantity: 1, price: 2 }] },
      { version: 1, format: 'celery' },
    );
    await waitFor(() => got.length === 10, 'five orders at each of the two handlers', 20_000);
    for (const service of ['billing', 'logistic']) {
      const mine = got.filter((g) => g.service === service).sort((a, b) => a.order.id - b.order.id);
      expect(mine.map((g) => g.order.id)).toEqual([7000, 7001, 7002, 7100, 7101]);
      const fromPython = mine[0]!;
      expect(fromPython.order).toEqual({
        id: 7000,
        currency: 'EUR',
        lines: [
          { id: 1, quantity: 2, price: 3 },
          { id: 2, quantity: 1, price: 4.5 },
        ],
      });
      expect(fromPython.ctx.wireVersion).toBe(1);
      expect(fromPython.ctx.envelope.source).toMatch(/@/);
      expect(mine[3]!.ctx.wireVersion).toBe(2);
    }
  });

  it('dead-letters a malformed Celery message with its reason', async () => {
    const s = createService({ name: uniqueName('billing'), transport, logger: silentLogger });
    const got: number[] = [];
    s.on(orderSubmit, (o) => void got.push(o.id));
    await s.start();
    services.push(s);
    const queue = s.topology().queues[0]!.name;
    const connection = await amqplib.connect(URL_HERE);
    const channel = await connection.createConfirmChannel();
    const headers = {
      lang: 'py',
      task: 'order.v1.submit',
      id: uniqueName('task'),
      root_id: null,
      parent_id: null,
    };
    const options = {
      headers,
      contentType: 'application/json',
      contentEncoding: 'utf-8',
      persistent: true,
    };
    channel.publish(
      'order',
      'order.v1.submit',
      Buffer.from('[[], {"no_instance": 1}, {}]'),
      options,
    );
    channel.publish(
      'order',
      'order.v1.submit',
      Buffer.from('[[], {"instance": {"id": 1, "lines": []}}, {}]'),
      {
        ...options,
        headers: { ...headers, id: uniqueName('task') },
      },
    );
    await channel.waitForConfirms();
    const reasons: string[] = [];
    const deadline = Date.now() + 10_000;
    while (reasons.length < 2 && Date.now() < deadline) {
      const m = await channel.get(deadLetterQueueName(queue), { noAck: true });
      if (m) reasons.push(String(m.properties.headers?.[HEADERS.deadReason]));
      else await new Promise((r) => setTimeout(r, 100));
    }
    await connection.close();
    expect(reasons.sort()).toEqual(['invalid-celery', 'schema-violation']);
    expect(got).toEqual([]);
  });
});
