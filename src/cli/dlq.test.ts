import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { defineEvent, defineExchange } from '../contracts/event.js';
import { silentLogger } from '../runtime/logger.js';
import { createService } from '../runtime/service.js';
import { waitFor } from '../testing/conformance.js';
import { MemoryBroker } from '../transports/memory/broker.js';
import { formatTable } from './dlq.js';
import { run } from './run.js';

const submit = defineEvent(defineExchange('order'), 'submit', z.object({ id: z.number() }));

async function brokerWithDeadLetters(count: number) {
  const broker = new MemoryBroker();
  let fixed = false;
  const handled: number[] = [];
  const billing = createService({
    name: 'billing',
    transport: broker.transport(),
    logger: silentLogger,
    retry: { maxAttempts: 1 },
  });
  billing.on(submit, (o) => {
    if (!fixed) throw new Error(`ledger locked for order ${o.id}`);
    handled.push(o.id);
  });
  await billing.start();
  const order = createService({ name: 'order', transport: broker.transport() });
  const ids: string[] = [];
  for (let i = 1; i <= count; i++) ids.push((await order.publish(submit, { id: i })).id);
  await waitFor(() => broker.depth('billing.order.submit.dlq') === count, 'dead letters');
  return { broker, ids, handled, fix: () => (fixed = true) };
}

function cli(broker: MemoryBroker, answer = false) {
  const out: string[] = [];
  const err: string[] = [];
  const io = {
    cwd: process.cwd(),
    stdout: (t: string) => out.push(t),
    stderr: (t: string) => err.push(t),
  };
  const ctx = {
    brokerUrl: 'memory://',
    confirm: async () => answer,
    open: async () => broker.transport(),
  };
  return {
    run: (...argv: string[]) => run(argv, io, ctx),
    out: () => out.join(''),
    err: () => err.join(''),
  };
}

describe('tidings dlq (in process, on the embedded broker)', () => {
  it('lists dead letters as a table and as JSON', async () => {
    const { broker, ids } = await brokerWithDeadLetters(2);
    const c = cli(broker);
    expect(await c.run('dlq', 'list', 'billing.order.submit')).toBe(0);
    expect(c.out()).toMatch(/^ID\s+EVENT\s+REASON\s+ATTEMPTS\s+AGE\s+ERROR/);
    expect(c.out()).toContain(ids[0]);
    expect(c.out()).toContain('order.v1.submit  handler-error');
    expect(c.out()).toContain('2 messages in billing.order.submit.dlq');
    const j = cli(broker);
    expect(await j.run('dlq', 'list', 'billing.order.submit.dlq', '--json')).toBe(0);
    const listed = JSON.parse(j.out());
    expect(listed.map((d: { id: string }) => d.id).sort()).toEqual([...ids].sort());
    expect(listed[0]).toMatchObject({
      reason: 'handler-error',
      attempts: 1,
      body: { id: expect.any(Number) },
    });
    expect(broker.depth('billing.order.submit.dlq')).toBe(2);
  });

  it('shows one dead letter, and says when an id is not there', async () => {
    const { broker, ids } = await brokerWithDeadLetters(1);
    const c = cli(broker);
    expect(await c.run('dlq', 'show', 'billing.order.submit', ids[0]!)).toBe(0);
    const shown = JSON.parse(c.out());
    expect(shown.headers['tidings-error-message']).toBe('ledger locked for order 1');
    expect(shown.body).toEqual({ id: 1 });
    const missing = cli(broker);
    expect(await missing.run('dlq', 'show', 'billing.order.submit', 'nope')).toBe(1);
    expect(missing.err()).toContain('no message with id nope');
  });

  it('replays chosen ids or all, and the fixed handler processes each once', async () => {
    const { broker, ids, handled, fix } = await brokerWithDeadLetters(3);
    fix();
    const one = cli(broker);
    expect(await one.run('dlq', 'replay', 'billing.order.submit', '--id', ids[1]!)).toBe(0);
    expect(one.out()).toBe('replayed 1 message from billing.order.submit.dlq\n');
    const all = cli(broker);
    expect(await all.run('dlq', 'replay', 'billing.order.submit', '--all')).toBe(0);
    expect(all.out()).toBe('replayed 2 messages from billing.order.submit.dlq\n');
    await waitFor(() => handled.length === 3, 'three replayed orders');
    expect(handled.sort()).toEqual([1, 2, 3]);
    const none = cli(broker);
    expect(await none.run('dlq', 'replay', 'billing.order.submit')).toBe(2);
    expect(none.err()).toContain('--id <id> (repeatable) or --all');
  });

  it('purges only after a confirmation or --yes', async () => {
    const { broker } = await brokerWithDeadLetters(2);
    const refused = cli(broker, false);
    expect(await refused.run('dlq', 'purge', 'billing.order.submit')).toBe(1);
    expect(refused.err()).toContain('not purged');
    expect(broker.depth('billing.order.submit.dlq')).toBe(2);
    const confirmed = cli(broker, true);
    expect(await confirmed.run('dlq', 'purge', 'billing.order.submit')).toBe(0);
    expect(broker.depth('billing.order.submit.dlq')).toBe(0);
    const { broker: other } = await brokerWithDeadLetters(1);
    const yes = cli(other);
    expect(await yes.run('dlq', 'purge', 'billing.order.submit', '--yes')).toBe(0);
    expect(yes.out()).toBe('purged 1 message from billing.order.submit.dlq\n');
  });

  it('needs a broker and says so', async () => {
    const err: string[] = [];
    const io = { cwd: process.cwd(), stdout: () => {}, stderr: (t: string) => err.push(t) };
    const code = await run(['dlq', 'list', 'q'], io, {
      brokerUrl: undefined,
      confirm: async () => false,
    });
    expect(code).toBe(2);
    expect(err.join('')).toContain('pass --broker <url> or set BROKER_URL');
  });

  it('formats ages and cuts long errors in the table', () => {
    const now = Date.parse('2026-11-26T12:00:00Z');
    const table = formatTable(
      [
        {
          id: 'a',
          type: 'order.v1.submit',
          reason: 'schema-violation',
          error: 'x'.repeat(100),
          attempts: 1,
          firstFailedAt: '2026-11-26T09:59:00Z',
          deadLetteredAt: '2026-11-26T10:00:00Z',
          queue: 'q',
          service: 's',
          headers: {},
          body: Buffer.from(''),
        },
      ],
      now,
    );
    expect(table).toContain('2h');
    expect(table).toContain(`${'x'.repeat(59)}…`);
  });
});
