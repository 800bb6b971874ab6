import { redactUrl } from '../redact.js';
import type { OutboxRow, OutboxStatus, PostgresOutbox } from '../stores/outbox/index.js';
import type { PgPoolLike } from '../stores/pg-table.js';
import { CliError } from './errors.js';
import type { Io } from './io.js';

/** Where the outbox commands find their database and table. */
export interface OutboxTarget {
  /** `--database`, else `DATABASE_URL`. */
  readonly database: string | undefined;
  /** `--table`, else `tidings_outbox`. */
  readonly table: string | undefined;
}

/** A `pg` pool on `url`; pg is an optional peer dependency, loaded only here. */
async function openPool(url: string): Promise<PgPoolLike & { end(): Promise<void> }> {
  let pg: typeof import('pg');
  try {
    pg = await import('pg');
  } catch {
    throw new CliError('the outbox commands need the pg package: npm install pg');
  }
  const Pool = (pg.default ?? pg).Pool;
  const pool = new Pool({ connectionString: url, max: 1, connectionTimeoutMillis: 5000 });
  pool.on('error', () => {});
  return pool;
}

/** Runs `fn` with the outbox of `target`, always closing the pool; failures become one clear line. */
async function withOutbox<T>(
  target: OutboxTarget,
  fn: (outbox: PostgresOutbox) => Promise<T>,
): Promise<T> {
  const url = target.database;
  if (!url) {
    throw new CliError(
      'no database: pass --database <url> or set DATABASE_URL (e.g. postgres://user@localhost:5432/app)',
    );
  }
  const { PostgresOutbox } = await import('../stores/outbox/index.js');
  const pool = await openPool(url);
  try {
    let outbox: PostgresOutbox;
    try {
      outbox = new PostgresOutbox({
        pool,
        ...(target.table === undefined ? {} : { table: target.table }),
      });
    } catch (error) {
      throw new CliError((error as Error).message, { cause: error });
    }
    return await fn(outbox);
  } catch (error) {
    if (error instanceof CliError) throw error;
    const message = error instanceof Error ? error.message : String(error);
    throw new CliError(`${message} (database ${redactUrl(url)})`, { exitCode: 1, cause: error });
  } finally {
    await pool.end().catch(() => {});
  }
}

/** `tidings outbox migrate [--notify] [--print]`: creates the table (or prints its SQL). */
export async function outboxMigrate(
  options: OutboxTarget & { print: boolean; notify: boolean },
  io: Io,
): Promise<number> {
  if (options.print) {
    const { PostgresOutbox } = await import('../stores/outbox/index.js');
    const noPool = { query: never, connect: never };
    try {
      const outbox = new PostgresOutbox({
        pool: noPool,
        ...(options.table === undefined ? {} : { table: options.table }),
      });
      io.stdout(outbox.migrationSql({ notify: options.notify }));
    } catch (error) {
      throw new CliError((error as Error).message, { cause: error });
    }
    return 0;
  }
  await withOutbox(options, async (outbox) => {
    await outbox.migrate({ notify: options.notify });
    const { notifies } = await outbox.checkSchema();
    io.stdout(
      `outbox ${outbox.name} is ready on ${redactUrl(options.database!)} (created what was missing; ` +
        `${notifies ? 'commits notify its channel' : 'no notify trigger: relays poll'})\n`,
    );
  });
  return 0;
}

/** `tidings outbox status [--json] [--limit n]`: counts, lag, and the rows that fail. */
export async function outboxStatus(
  options: OutboxTarget & { json: boolean; limit: number },
  io: Io,
): Promise<number> {
  return withOutbox(options, async (outbox) => {
    const status = await outbox.status();
    const failed = status.failed > 0 ? await outbox.inspect('failed', options.limit) : [];
    const retrying = status.retrying > 0 ? await outbox.inspect('retrying', options.limit) : [];
    if (options.json) {
      io.stdout(
        `${JSON.stringify({ ...status, failedRows: failed, retryingRows: retrying }, null, 2)}\n`,
      );
      return 0;
    }
    io.stdout(formatStatus(status, redactUrl(options.database!)));
    if (failed.length > 0) {
      io.stdout(`\nparked (put them back with tidings outbox retry --all, or --id <id>):\n`);
      io.stdout(formatRows(failed));
    }
    if (retrying.length > 0) {
      io.stdout(`\nretrying:\n`);
      io.stdout(formatRows(retrying));
    }
    return 0;
  });
}

/** `tidings outbox retry (--id <id>... | --all)`: puts parked rows back in line. */
export async function outboxRetry(
  options: OutboxTarget & { ids: readonly string[]; all: boolean },
  io: Io,
): Promise<number> {
  if (options.all === options.ids.length > 0) {
    throw new CliError(
      'say what to retry: --id <id> (repeatable) or --all. Run tidings outbox --help.',
    );
  }
  const bad = options.ids.find((id) => !/^[1-9][0-9]{0,18}$/.test(id));
  if (bad !== undefined)
    throw new CliError(`--id must be a row id, a positive integer (got ${bad})`);
  return withOutbox(options, async (outbox) => {
    const n = await outbox.retry(options.all ? 'all' : options.ids);
    io.stdout(`put ${n} parked message${n === 1 ? '' : 's'} of ${outbox.name} back in line\n`);
    const missing = options.all ? 0 : options.ids.length - n;
    if (missing > 0)
      io.stderr(`${missing} of the ids given are not parked rows of ${outbox.name}\n`);
    return missing > 0 ? 1 : 0;
  });
}

function never(): never {
  throw new Error('not connected');
}

function duration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 120_000) return `${(ms / 1000).toFixed(1)} s`;
  if (ms < 7_200_000) return `${Math.round(ms / 60_000)} min`;
  return `${(ms / 3_600_000).toFixed(1)} h`;
}

/** The status as aligned lines. */
export function formatStatus(s: OutboxStatus, where: string): string {
  const lines: [string, string][] = [
    ['pending', `${s.pending}${s.retrying > 0 ? ` (${s.retrying} retrying after a failure)` : ''}`],
    [
      'lag',
      s.oldestPendingAt
        ? `${duration(s.lagMs)} (oldest pending written ${s.oldestPendingAt.toISOString()})`
        : '0 (nothing pending)',
    ],
    ['parked', String(s.failed)],
    [
      'sent, kept',
      `${s.sent}${s.lastSentAt ? ` (last confirmed ${s.lastSentAt.toISOString()})` : ''}`,
    ],
  ];
  const width = Math.max(...lines.map(([k]) => k.length));
  return `outbox ${s.table} on ${where}\n${lines.map(([k, v]) => `  ${k.padEnd(width)}  ${v}`).join('\n')}\n`;
}

/** Rows as an aligned table: id, routing key, key, attempts, last error. */
export function formatRows(rows: readonly OutboxRow[]): string {
  const table = [
    ['ID', 'ROUTING KEY', 'ORDERING KEY', 'ATTEMPTS', 'WRITTEN', 'LAST ERROR'],
    ...rows.map((r) => [
      r.id,
      r.routingKey,
      r.orderingKey ?? '-',
      String(r.attempts),
      r.createdAt.toISOString(),
      (r.lastError ?? '-').length > 80 ? `${r.lastError!.slice(0, 79)}…` : (r.lastError ?? '-'),
    ]),
  ];
  const widths = table[0]!.map((_, c) => Math.max(...table.map((r) => r[c]!.length)));
  return `${table
    .map((r) =>
      r
        .map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c]!)))
        .join('  ')
        .trimEnd(),
    )
    .join('\n')}\n`;
}
