import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/logger.js';
import { createService, type Service } from '../../src/runtime/service.js';
import { uniqueName } from '../../src/testing/broker.js';
import { waitFor } from '../../src/testing/conformance.js';
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
import { order, submitEvent } from './protocol.js';

/*
 * The `tidings dlq` commands through the real binary (`node --import tsx src/cli/main.ts`), as an
 * operator runs them, against RabbitMQ: list (table and JSON), show, replay by id, purge with and
 * without confirmation, and the errors for a broker that is down or refuses the password. No
 * password may appear in any output.
 */

const up = await reachable(AMQP_URL, 'RabbitMQ', 5672);
const BROKER = AMQP_URL;
const { password } = new URL(AMQP_URL);

describe.skipIf(!up)('tidings dlq, the real command against RabbitMQ', () => {
  const run = uniqueName('rel-cli');
  const exchange = run;
  const service = `${run}-billing`;
  const queue = `${service}.${exchange}.submit`;
  const dlq = `${queue}.dlq`;
  const submit = submitEvent(exchange);
  const topology = { exchanges: [exchange], queues: [{ name: queue, bindings: [] }] };
  const outputs: string[] = [];
  const handled: number[] = [];
  const ids: string[] = [];
  let fixed = false;
  let transport: AmqpTransport;
  let billing: Service;

  /** Runs the command and keeps its output for the password check at the end. */
  async function cli(args: string[], env: NodeJS.ProcessEnv = {}) {
    const result = await runCli(args, env);
    outputs.push(result.stdout, result.stderr);
    return result;
  }

  beforeAll(async () => {
    transport = openTransport('cli test');
    billing = createService({
      name: service,
      transport,
      logger: silentLogger,
      retry: { maxAttempts: 1 },
    });
    billing.on(submit, (o) => {
      if (!fixed) throw new Error(`ledger locked for order ${o.id}`);
      handled.push(o.id);
    });
    await billing.start();
    const shop = createService({ name: `${run}-shop`, transport, logger: silentLogger });
    for (const id of [1, 2, 3]) ids.push((await shop.publish(submit, order(id))).id);
    await waitUntil(async () => (await queueDepth(dlq)) === 3, 'three dead letters', 15_000);
  }, 30_000);

  afterAll(async () => {
    await billing?.stop();
    await transport?.close();
    await deleteTopology(topology);
  });

  it('lists dead letters as a table, without taking them off the queue', async () => {
    const r = await cli(['dlq', 'list', queue, '--broker', BROKER]);
    expect(r.code).toBe(0);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^ID\s+EVENT\s+REASON\s+ATTEMPTS\s+AGE\s+ERROR$/);
    for (const [i, id] of ids.entries()) {
      const row = lines.find((l) => l.startsWith(id));
      expect(row).toMatch(
        new RegExp(
          `^${id}\\s+${exchange}\\.v1\\.submit\\s+handler-error\\s+1\\s+\\d+s\\s+ledger locked for order ${i + 1}$`,
        ),
      );
    }
    expect(lines.at(-1)).toBe(`3 messages in ${dlq}`);
    expect(r.stderr).toBe('');
    expect(await queueDepth(dlq)).toBe(3);
  }, 60_000);

  it('says how many the queue holds beside the ones a --limit shows (RabbitMQ counts them)', async () => {
    const r = await cli(['dlq', 'list', queue, '--limit', '2', '--broker', BROKER]);
    expect(r.code).toBe(0);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines).toHaveLength(4);
    expect(lines.at(-1)).toBe(`2 of 3 messages in ${dlq} (--limit 2)`);
    expect(await queueDepth(dlq)).toBe(3);
  }, 60_000);

  it('lists them as JSON for scripts, with every header and the body', async () => {
    const r = await cli(['dlq', 'list', dlq, '--json'], { BROKER_URL: BROKER });
    expect(r.code).toBe(0);
    const listed = JSON.parse(r.stdout) as {
      id: string;
      reason: string;
      attempts: number;
      queue: string;
      service: string;
      headers: Record<string, unknown>;
      body: unknown;
    }[];
    expect(listed.map((d) => d.id).sort()).toEqual([...ids].sort());
    for (const d of listed) {
      expect(d).toMatchObject({ reason: 'handler-error', attempts: 1, queue, service });
      expect(d.headers['tidings-error-name']).toBe('Error');
      expect(d.headers['tidings-original-routing-key']).toBe(`${exchange}.v1.submit`);
    }
    expect(listed.map((d) => (d.body as { id: number }).id).sort()).toEqual([1, 2, 3]);
  }, 60_000);

  it('shows one dead letter, and says so when the id is not there', async () => {
    const r = await cli(['dlq', 'show', queue, ids[1]!, '--broker', BROKER]);
    expect(r.code).toBe(0);
    const shown = JSON.parse(r.stdout) as {
      id: string;
      headers: Record<string, unknown>;
      body: unknown;
    };
    expect(shown.id).toBe(ids[1]);
    expect(shown.headers['tidings-error-message']).toBe('ledger locked for order 2');
    expect(shown.headers['tidings-wire']).toBe('3');
    expect(shown.body).toEqual(order(2));
    const missing = await cli(['dlq', 'show', queue, 'no-such-id', '--broker', BROKER]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toBe(`tidings: no message with id no-such-id in ${dlq}\n`);
    expect(await queueDepth(dlq)).toBe(3);
  }, 60_000);

  it('replays one message by id to the fixed handler, leaving the others', async () => {
    fixed = true;
    const r = await cli(['dlq', 'replay', queue, '--id', ids[0]!], { BROKER_URL: BROKER });
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`replayed 1 message from ${dlq}\n`);
    await waitFor(() => handled.length === 1, 'the replayed order to be handled');
    expect(handled).toEqual([1]);
    expect(await queueDepth(dlq)).toBe(2);
    const none = await cli(['dlq', 'replay', queue, '--broker', BROKER]);
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('--id <id> (repeatable) or --all');
  }, 60_000);

  it('refuses to purge without --yes when nobody can confirm (no terminal)', async () => {
    const r = await cli(['dlq', 'purge', queue, '--broker', BROKER]);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe('tidings: not purged: confirm at the prompt, or pass --yes\n');
    expect(await queueDepth(dlq)).toBe(2);
  }, 60_000);

  it('purges with --yes', async () => {
    const r = await cli(['dlq', 'purge', queue, '--yes', '--broker', BROKER]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`purged 2 messages from ${dlq}\n`);
    expect(await queueDepth(dlq)).toBe(0);
    const empty = await cli(['dlq', 'list', queue, '--broker', BROKER]);
    expect(empty.stdout).toBe(`${dlq} is empty.\n`);
    expect(handled).toEqual([1]);
  }, 60_000);

  it('says clearly that a queue does not exist', async () => {
    const r = await cli(['dlq', 'list', `${run}-nothing`, '--broker', BROKER]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`Cannot read queue "${run}-nothing.dlq": it does not exist`);
  }, 60_000);

  it('fails with exit code 1 and a clear message when the broker is unreachable, without the password', async () => {
    const secret = 'unreachable-S3cret-pw';
    const started = Date.now();
    const r = await cli(['dlq', 'list', queue, '--broker', `amqp://guest:${secret}@127.0.0.1:1`]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(
      /^tidings: Cannot connect to RabbitMQ at amqp:\/\/guest:\*\*\*@127\.0\.0\.1:1\/ .*within 5000 ms: connect ECONNREFUSED/,
    );
    expect(r.stderr).not.toContain(secret);
    // It gives up after its 5 s connection timeout rather than waiting for a broker forever.
    expect(Date.now() - started).toBeLessThan(20_000);
  }, 60_000);

  it('fails at once with exit code 1 when the broker refuses the password, without printing it', async () => {
    const secret = 'wrong-P4ss%word@x';
    const url = new URL(BROKER);
    url.password = encodeURIComponent(secret);
    const r = await cli(['dlq', 'replay', queue, '--all', '--broker', url.href]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^tidings: Cannot connect to RabbitMQ at amqp:\/\/guest:\*\*\*@/);
    expect(r.stderr).toContain('ACCESS_REFUSED');
    // One line, naming the broker once.
    expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(r.stderr.split('guest:***@')).toHaveLength(2);
    for (const form of [secret, encodeURIComponent(secret), 'P4ss']) {
      expect(r.stderr).not.toContain(form);
    }
  }, 60_000);

  it('never printed the password of any broker URL it was given', () => {
    const all = outputs.join('\n');
    expect(all.length).toBeGreaterThan(0);
    if (password.length >= 4) expect(all).not.toContain(`:${password}@`);
    expect(all).not.toMatch(/S3cret|P4ss/);
  });
});
