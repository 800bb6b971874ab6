import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { defineEvent, defineExchange } from '../contracts/event.js';
import { silentLogger } from '../logger.js';
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

describe('tidings dlq, with what other clients leave in a dead-letter queue', () => {
  /** A billing service on a fresh broker, and a way to send it raw messages. */
  async function brokerWith() {
    const broker = new MemoryBroker();
    const billing = createService({
      name: 'billing',
      transport: broker.transport(),
      logger: silentLogger,
      retry: { maxAttempts: 1 },
    });
    billing.on(submit, () => {
      throw new Error('never handled');
    });
    await billing.start();
    const raw = broker.transport();
    const send = (body: string, headers: Record<string, string | null>) =>
      raw.publish({
        exchange: 'order',
        routingKey: 'order.v1.submit',
        body: Buffer.from(body),
        properties: { contentType: 'application/json', headers },
      });
    return { broker, send };
  }

  it('says how many the queue holds beside the ones a --limit shows', async () => {
    const { broker, ids } = await brokerWithDeadLetters(5);
    const c = cli(broker);
    expect(await c.run('dlq', 'list', 'billing.order.submit', '--limit', '3')).toBe(0);
    const lines = c.out().trimEnd().split('\n');
    expect(lines).toHaveLength(5);
    expect(lines.at(-1)).toBe('3 of 5 messages in billing.order.submit.dlq (--limit 3)');
    for (const id of ids.slice(0, 3)) expect(c.out()).toContain(id);
    const all = cli(broker);
    expect(await all.run('dlq', 'list', 'billing.order.submit', '--limit', '5')).toBe(0);
    expect(all.out().trimEnd().split('\n').at(-1)).toBe('5 messages in billing.order.submit.dlq');
    const json = cli(broker);
    expect(await json.run('dlq', 'list', 'billing.order.submit', '--json', '--limit', '2')).toBe(0);
    expect(JSON.parse(json.out())).toHaveLength(2);
    expect(json.err()).toBe('2 of 5 messages in billing.order.submit.dlq (--limit 2)\n');
    expect(broker.depth('billing.order.submit.dlq')).toBe(5);
  });

  it('knows a Celery task message by its task id, to show and replay it', async () => {
    const { broker, send } = await brokerWith();
    const headers = { lang: 'py', task: 'order.v1.submit', root_id: null, parent_id: null };
    await send('[[], {"no_instance": 1}, {}]', { ...headers, id: 'task-1' });
    await send('[[], {"no_instance": 2}, {}]', { ...headers, id: 'task-2' });
    await waitFor(() => broker.depth('billing.order.submit.dlq') === 2, 'two dead letters');
    const list = cli(broker);
    expect(await list.run('dlq', 'list', 'billing.order.submit')).toBe(0);
    expect(list.out()).toMatch(/^task-1\s+order\.v1\.submit\s+invalid-celery\s/m);
    expect(list.out()).toMatch(/^task-2\s+order\.v1\.submit\s+invalid-celery\s/m);
    const show = cli(broker);
    expect(await show.run('dlq', 'show', 'billing.order.submit', 'task-2')).toBe(0);
    expect(JSON.parse(show.out())).toMatchObject({
      id: 'task-2',
      reason: 'invalid-celery',
      body: [[], { no_instance: 2 }, {}],
    });
    const replay = cli(broker);
    expect(await replay.run('dlq', 'replay', 'billing.order.submit', '--id', 'task-1')).toBe(0);
    expect(replay.out()).toBe('replayed 1 message from billing.order.submit.dlq\n');
    expect(replay.err()).not.toContain('not found');
  });

  it('shows a body nested 10,000 levels deep without crashing: as text in JSON, and in the table', async () => {
    const { broker, send } = await brokerWith();
    const deep = `${'['.repeat(10_000)}${']'.repeat(10_000)}`;
    await send(deep, { 'ce-id': 'deep-1', 'ce-type': 'order.v1.submit', 'ce-source': 'x' });
    await waitFor(() => broker.depth('billing.order.submit.dlq') === 1, 'the dead letter');
    const json = cli(broker);
    expect(await json.run('dlq', 'list', 'billing.order.submit', '--json')).toBe(0);
    const [listed] = JSON.parse(json.out());
    expect(listed).toMatchObject({
      id: 'deep-1',
      body: deep,
      bodyNote: 'JSON nested more than 64 levels deep, shown as text',
    });
    const show = cli(broker);
    expect(await show.run('dlq', 'show', 'billing.order.submit', 'deep-1')).toBe(0);
    expect(JSON.parse(show.out()).body).toBe(deep);
    const table = cli(broker);
    expect(await table.run('dlq', 'list', 'billing.order.submit')).toBe(0);
    expect(table.out()).toContain('deep-1');
    expect(table.err()).toBe('');
  });

  it('cuts cells to the terminal width, and shows control characters as spaces', async () => {
    const { broker, send } = await brokerWith();
    await send('{}', { 'ce-id': 'big-type', 'ce-type': 'x'.repeat(100_000), 'ce-source': 'x' });
    await send('{}', {
      'ce-id': 'escape',
      'ce-type': 'order.\u001b[2Jv1\r\nsubmit',
      'ce-source': 'x',
    });
    await waitFor(() => broker.depth('billing.order.submit.dlq') === 2, 'two dead letters');
    for (const columns of [80, 200]) {
      const out: string[] = [];
      const io = { cwd: process.cwd(), columns, stdout: (t: string) => out.push(t), stderr() {} };
      const code = await run(['dlq', 'list', 'billing.order.submit'], io, {
        brokerUrl: 'memory://',
        confirm: async () => false,
        open: async () => broker.transport(),
      });
      expect(code).toBe(0);
      const lines = out.join('').trimEnd().split('\n');
      expect(lines).toHaveLength(4);
      for (const line of lines) expect(line.length).toBeLessThanOrEqual(columns);
      expect(lines[1]).toMatch(/^big-type\s+x+…\s/);
      expect(lines[2]).toMatch(/^escape\s+order\. \[2Jv1 /);
      if (columns === 200)
        expect(lines[2]).toMatch(/ order\. \[2Jv1 {2}submit\s+missing-envelope /);
      expect(out.join('')).not.toContain('\u001b');
    }
  });
});

describe('tidings dlq, its help and its mistakes', () => {
  const noBroker = () => {
    const out: string[] = [];
    const err: string[] = [];
    const io = {
      cwd: process.cwd(),
      stdout: (t: string) => out.push(t),
      stderr: (t: string) => err.push(t),
    };
    const ctx = { brokerUrl: undefined, confirm: async () => false };
    return {
      run: (...argv: string[]) => run(argv, io, ctx),
      out: () => out.join(''),
      err: () => err.join(''),
    };
  };

  it.each(['list', 'show', 'replay', 'purge'])(
    'has a help page of its own for dlq %s',
    async (sub) => {
      const c = noBroker();
      expect(await c.run('dlq', sub, '--help')).toBe(0);
      expect(c.out()).toMatch(new RegExp(`^Usage: tidings dlq ${sub} <queue>`));
      expect(c.out()).toContain('--broker <url>');
      const general = noBroker();
      await general.run('dlq', '--help');
      expect(c.out()).not.toBe(general.out());
    },
  );

  it('answers a mistyped option with one line naming the nearest one', async () => {
    const c = noBroker();
    expect(await c.run('dlq', 'list', 'q', '--brokr', 'amqp://x')).toBe(2);
    expect(c.err()).toBe(
      'tidings: unknown option --brokr (did you mean --broker?). Run tidings dlq list --help for usage.\n',
    );
    const far = noBroker();
    expect(await far.run('dlq', 'purge', 'q', '--everything')).toBe(2);
    expect(far.err()).toBe(
      'tidings: unknown option --everything. Run tidings dlq purge --help for usage.\n',
    );
    const value = noBroker();
    expect(await value.run('dlq', 'replay', 'q', '--id')).toBe(2);
    expect(value.err()).toBe(
      'tidings: --id needs a value. Run tidings dlq replay --help for usage.\n',
    );
  });
});
