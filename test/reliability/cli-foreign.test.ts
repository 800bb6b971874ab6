import amqp from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/logger.js';
import { createService, type Service } from '../../src/runtime/service.js';
import { uniqueName } from '../../src/testing/broker.js';
import type { AmqpTransport } from '../../src/transports/amqp/index.js';
import {
  AMQP_URL,
  deleteTopology,
  openTransport,
  queueDepth,
  reachable,
  runCli,
  waitUntil,
} from './harness.js';
import { submitEvent } from './protocol.js';

/*
 * The `tidings dlq` commands through the real binary, on dead letters that other clients sent:
 * Celery task messages (no ce-id, a task id), a body nested 10,000 levels deep, a 60 kB ce-type
 * and terminal escapes in a header. Nothing may crash, and the table stays as wide as the
 * terminal.
 */

const up = await reachable(AMQP_URL, 'RabbitMQ', 5672);

describe.skipIf(!up)('tidings dlq on what other clients sent, the real command on RabbitMQ', () => {
  const run = uniqueName('rel-cli-foreign');
  const exchange = run;
  const service = `${run}-billing`;
  const queue = `${service}.${exchange}.submit`;
  const dlq = `${queue}.dlq`;
  const topology = { exchanges: [exchange], queues: [{ name: queue, bindings: [] }] };
  const deep = `${'['.repeat(10_000)}${']'.repeat(10_000)}`;
  let transport: AmqpTransport;
  let billing: Service;

  beforeAll(async () => {
    transport = openTransport('cli foreign test');
    billing = createService({
      name: service,
      transport,
      logger: silentLogger,
      retry: { maxAttempts: 1 },
    });
    billing.on(submitEvent(exchange), () => {
      throw new Error('never handled');
    });
    await billing.start();
    const connection = await amqp.connect(AMQP_URL);
    try {
      const channel = await connection.createConfirmChannel();
      const send = (body: string, headers: Record<string, unknown>) =>
        channel.publish(exchange, `${exchange}.v1.submit`, Buffer.from(body), {
          headers,
          contentType: 'application/json',
          persistent: true,
        });
      const celery = { lang: 'py', task: `${exchange}.v1.submit`, root_id: null, parent_id: null };
      send('[[], {"no_instance": 1}, {}]', { ...celery, id: 'task-1' });
      send('[[], {"no_instance": 2}, {}]', { ...celery, id: 'task-2' });
      send(deep, { 'ce-id': 'deep', 'ce-type': `${exchange}.v1.submit`, 'ce-source': 'x' });
      send('{}', { 'ce-id': 'wide', 'ce-type': 'w'.repeat(60_000), 'ce-source': 'x' });
      send('{}', {
        'ce-id': 'escape',
        'ce-type': '\u001b[31mred\u001b[0m\r\n',
        'ce-source': 'x',
      });
      await channel.waitForConfirms();
    } finally {
      await connection.close();
    }
    await waitUntil(async () => (await queueDepth(dlq)) === 5, 'five dead letters', 20_000);
  }, 60_000);

  afterAll(async () => {
    await billing?.stop();
    await transport?.close();
    await deleteTopology(topology);
  });

  it('lists them in a table no wider than the terminal, with escapes shown as spaces', async () => {
    const r = await runCli(['dlq', 'list', queue, '--broker', AMQP_URL], { COLUMNS: '100' });
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines).toHaveLength(7);
    for (const line of lines.slice(0, -1)) expect(line.length).toBeLessThanOrEqual(100);
    expect(r.stdout.length).toBeLessThan(2000);
    expect(r.stdout).not.toContain('\u001b');
    expect(lines.find((l) => l.startsWith('wide'))).toMatch(/ w+… /);
    expect(lines.find((l) => l.startsWith('escape'))).toMatch(/ {2}\[31mred \[0m {2}/);
    expect(lines.filter((l) => / invalid-celery /.test(l)).map((l) => l.split(' ')[0])).toEqual([
      'task-1',
      'task-2',
    ]);
    expect(lines.at(-1)).toBe(`5 messages in ${dlq}`);
  }, 60_000);

  it('lists and shows a body nested 10,000 levels deep as text, without crashing', async () => {
    const list = await runCli(['dlq', 'list', queue, '--json', '--broker', AMQP_URL]);
    expect(list.code).toBe(0);
    expect(list.stderr).toBe('');
    const listed = JSON.parse(list.stdout) as { id: string; body: unknown; bodyNote?: string }[];
    expect(listed.find((d) => d.id === 'deep')).toMatchObject({
      body: deep,
      bodyNote: 'JSON nested more than 64 levels deep, shown as text',
    });
    const show = await runCli(['dlq', 'show', queue, 'deep', '--broker', AMQP_URL]);
    expect(show.code).toBe(0);
    expect((JSON.parse(show.stdout) as { body: unknown }).body).toBe(deep);
  }, 60_000);

  it('shows and replays a Celery dead letter by its task id', async () => {
    const show = await runCli(['dlq', 'show', queue, 'task-2', '--broker', AMQP_URL]);
    expect(show.code).toBe(0);
    expect(JSON.parse(show.stdout)).toMatchObject({
      id: 'task-2',
      reason: 'invalid-celery',
      body: [[], { no_instance: 2 }, {}],
    });
    const replay = await runCli(['dlq', 'replay', queue, '--id', 'task-1'], {
      BROKER_URL: AMQP_URL,
    });
    expect(replay.stdout).toBe(`replayed 1 message from ${dlq}\n`);
    expect(replay.code).toBe(0);
    // Still malformed, it comes back: dead-lettered again, under the same id.
    await waitUntil(async () => (await queueDepth(dlq)) === 5, 'the replayed one back', 20_000);
  }, 60_000);
});
