import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { DATABASE_URL, Fixture, postgresUp, tableName } from '../../test/support/outbox.js';
import { PostgresOutbox } from '../stores/outbox/outbox.js';
import { run } from './run.js';

const up = await postgresUp();
const root = fileURLToPath(new URL('../..', import.meta.url));

function cli() {
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
}

/** The same URL with a password in it (trust authentication ignores it): it must never show. */
const withPassword = (() => {
  const u = new URL(DATABASE_URL);
  u.password = 's3cret-pw';
  return u.toString();
})();

describe('tidings outbox, without a database', () => {
  it('explains itself, and refuses what it cannot do', async () => {
    const c = cli();
    expect(await c.run('outbox', '--help')).toBe(0);
    expect(c.out()).toMatch(/Usage: tidings outbox <migrate\|status\|retry>/);
    expect(await c.run('--help')).toBe(0);
    expect(c.out()).toMatch(/outbox migrate {7}create the transactional outbox table/);
    const bad = cli();
    expect(await bad.run('outbox', 'drop')).toBe(2);
    expect(bad.err()).toMatch(/unknown command "outbox drop"/);
    const saved = process.env.DATABASE_URL;
    delete process.env.DATABASE_URL;
    try {
      const none = cli();
      expect(await none.run('outbox', 'status')).toBe(2);
      expect(none.err()).toMatch(/no database: pass --database <url> or set DATABASE_URL/);
    } finally {
      if (saved !== undefined) process.env.DATABASE_URL = saved;
    }
    const which = cli();
    expect(await which.run('outbox', 'retry', '--database', DATABASE_URL)).toBe(2);
    expect(which.err()).toMatch(/--id <id> \(repeatable\) or --all/);
    const id = cli();
    expect(await id.run('outbox', 'retry', '--id', '1;drop', '--database', DATABASE_URL)).toBe(2);
    expect(id.err()).toMatch(/--id must be a row id/);
    const table = cli();
    expect(await table.run('outbox', 'migrate', '--print', '--table', 'no such')).toBe(2);
    expect(table.err()).toMatch(/table must be a table name/);
  });

  it('prints the migration for your own tools without connecting', async () => {
    const c = cli();
    expect(await c.run('outbox', 'migrate', '--print', '--table', 'app.events_out')).toBe(0);
    expect(c.out()).toBe(
      new PostgresOutbox({
        pool: { query: never, connect: never },
        table: 'app.events_out',
      }).migrationSql(),
    );
    expect(c.out()).toMatch(/CREATE TABLE IF NOT EXISTS "app"."events_out"/);
  });
});

function never(): never {
  throw new Error('not connected');
}

describe.skipIf(!up)('tidings outbox on PostgreSQL', () => {
  const fixture = new Fixture();
  afterAll(() => fixture.cleanup());

  it('says to migrate when the table is missing, migrates, then reports an empty outbox', async () => {
    const table = tableName('cli');
    const missing = cli();
    expect(
      await missing.run('outbox', 'status', '--database', withPassword, '--table', table),
    ).toBe(1);
    expect(missing.err()).toMatch(/does not exist .*tidings outbox migrate --table/);
    expect(missing.err()).not.toContain('s3cret-pw');

    const migrate = cli();
    expect(
      await migrate.run('outbox', 'migrate', '--database', withPassword, '--table', table),
    ).toBe(0);
    expect(migrate.out()).toMatch(
      /outbox tidings_test_cli_\S+ is ready on postgres:\/\/postgres:\*\*\*@.*no notify trigger: relays poll/,
    );
    expect(migrate.out()).not.toContain('s3cret-pw');
    const outbox = new PostgresOutbox({ pool: fixture.pool(), table });
    expect(await outbox.checkSchema()).toEqual({ notifies: false });
    const notify = cli();
    expect(
      await notify.run(
        'outbox',
        'migrate',
        '--notify',
        '--database',
        DATABASE_URL,
        '--table',
        table,
      ),
    ).toBe(0);
    expect(notify.out()).toMatch(/commits notify its channel/);
    expect(await outbox.checkSchema()).toEqual({ notifies: true });

    const status = cli();
    expect(await status.run('outbox', 'status', '--database', DATABASE_URL, '--table', table)).toBe(
      0,
    );
    expect(status.out()).toMatch(/pending +0\n/);
    expect(status.out()).toMatch(/lag +0 \(nothing pending\)/);
    await fixture.pool().query(`DROP TABLE ${outbox.table}; DROP FUNCTION "${table}_notify"()`);
  });

  it('shows pending, parked and retrying rows with their errors, and puts parked ones back', async () => {
    const outbox = await fixture.outbox();
    const pool = outbox.pool;
    const client = await pool.connect();
    try {
      await client.query('BEGIN');
      for (const [key, id] of [
        ['order:1', 'm-1'],
        ['order:2', 'm-2'],
        ['order:3', 'm-3'],
      ] as const) {
        await outbox.write(client, {
          message: {
            exchange: 'order',
            routingKey: 'order.v2.submit',
            body: Buffer.from('{}'),
            properties: { headers: {} },
          },
          envelope: { id } as never,
          orderingKey: key,
        });
      }
      await client.query('COMMIT');
    } finally {
      client.release();
    }
    const t = outbox.table;
    await pool.query(
      `UPDATE ${t} SET failed_at = now(), attempts = 10, last_error = 'UnroutableError: No queue is bound' WHERE message_id = 'm-1'`,
    );
    await pool.query(
      `UPDATE ${t} SET attempts = 2, last_error = 'PublishRejectedError: nacked', next_attempt_at = now() + interval '1 minute' WHERE message_id = 'm-2'`,
    );
    const target = ['--database', withPassword, '--table', outbox.name];
    const text = cli();
    expect(await text.run('outbox', 'status', ...target)).toBe(0);
    const out = text.out();
    expect(out).toMatch(/pending +2 \(1 retrying after a failure\)/);
    expect(out).toMatch(/parked +1\n/);
    expect(out).toMatch(/parked \(put them back with tidings outbox retry --all/);
    expect(out).toMatch(/order\.v2\.submit +order:1 +10 .*UnroutableError: No queue is bound/);
    expect(out).toMatch(
      /retrying:\n.*\n\d+ +order\.v2\.submit +order:2 +2 .*PublishRejectedError: nacked/,
    );
    expect(out).not.toContain('s3cret-pw');

    const json = cli();
    expect(await json.run('outbox', 'status', '--json', ...target)).toBe(0);
    const parsed = JSON.parse(json.out());
    expect(parsed).toMatchObject({ pending: 2, retrying: 1, failed: 1, sent: 0 });
    expect(parsed.failedRows[0]).toMatchObject({ messageId: 'm-1', attempts: 10 });
    expect(parsed.retryingRows[0]).toMatchObject({ messageId: 'm-2', attempts: 2 });

    const parkedId = parsed.failedRows[0].id as string;
    const wrong = cli();
    expect(await wrong.run('outbox', 'retry', '--id', '999999999', ...target)).toBe(1);
    expect(wrong.err()).toMatch(/1 of the ids given are not parked rows/);
    const retry = cli();
    expect(await retry.run('outbox', 'retry', '--id', parkedId, ...target)).toBe(0);
    expect(retry.out()).toMatch(/put 1 parked message of tidings_test_outbox_\S+ back in line/);
    expect(await outbox.status()).toMatchObject({ pending: 3, failed: 0 });
  });

  it('runs as the real command', async () => {
    const table = tableName('bin');
    const result = await new Promise<{ code: number | null; out: string }>((resolve, reject) => {
      const child = spawn(
        process.execPath,
        ['--import', 'tsx', 'src/cli/main.ts', 'outbox', 'migrate', '--table', table],
        { cwd: root, env: { ...process.env, DATABASE_URL: withPassword } },
      );
      let out = '';
      child.stdout.on('data', (c: Buffer) => {
        out += c.toString();
      });
      child.stderr.on('data', (c: Buffer) => {
        out += c.toString();
      });
      child.on('error', reject);
      child.on('close', (code) => resolve({ code, out }));
    });
    const outbox = new PostgresOutbox({ pool: fixture.pool(), table });
    try {
      expect(result.out).toMatch(/is ready on/);
      expect(result.code).toBe(0);
      await outbox.checkSchema();
    } finally {
      await outbox.pool.query(
        `DROP TABLE IF EXISTS ${outbox.table}; DROP FUNCTION IF EXISTS "${table}_notify"()`,
      );
    }
  });
});
