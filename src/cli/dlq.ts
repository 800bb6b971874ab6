import { createInterface } from 'node:readline/promises';
import { ConfigError } from '../errors.js';
import { silentLogger } from '../logger.js';
import {
  type DeadLetter,
  inspectDeadLetters,
  listDeadLetters,
  purgeDeadLetters,
  replayDeadLetters,
} from '../ops/dead-letters.js';
import { connect, redactUrl } from '../transports/connect.js';
import { deadLetterQueueName, type Transport } from '../transports/transport.js';
import { CliError } from './errors.js';
import { type Io, terminalColumns } from './io.js';
import { boundedJson, fitTable } from './show.js';

/** What the dead-letter commands need besides their arguments. */
export interface DlqContext {
  /** `BROKER_URL` from the environment, used when `--broker` is absent. */
  readonly brokerUrl: string | undefined;
  /** Asks a yes/no question; resolves false when nobody can answer (no terminal). */
  readonly confirm: (question: string) => Promise<boolean>;
  /** Opens the transport; tests may substitute one. */
  readonly open?: ((url: string) => Promise<Transport>) | undefined;
}

/** Asks on the terminal; refuses (false) when stdin is not a terminal. */
export async function confirmOnTerminal(question: string): Promise<boolean> {
  if (!process.stdin.isTTY) return false;
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    const answer = await rl.question(`${question} [y/N] `);
    return /^y(es)?$/i.test(answer.trim());
  } finally {
    rl.close();
  }
}

/** Accepts a handler queue (`billing.order.submit`) or its dead-letter queue (`...dlq`). */
export function dlqName(queue: string): string {
  return queue.endsWith('.dlq') ? queue : deadLetterQueueName(queue);
}

async function open(url: string, ctx: DlqContext): Promise<Transport> {
  if (ctx.open) return ctx.open(url);
  const parsed = (() => {
    try {
      return new URL(url);
    } catch {
      throw new CliError(`--broker is not a URL: ${redactUrl(url)}`);
    }
  })();
  if (parsed.protocol === 'amqp:' || parsed.protocol === 'amqps:') {
    const { amqpTransport } = await import('../transports/amqp/index.js');
    // A command fails fast instead of waiting for a broker that may never come.
    return amqpTransport({
      url,
      connectionName: 'tidings-cli',
      connectTimeoutMs: 5000,
      logger: silentLogger,
    });
  }
  if (parsed.protocol === 'nats:') {
    const { natsTransport } = await import('../transports/nats/index.js');
    return natsTransport({
      url,
      name: 'tidings-cli',
      connectTimeoutMs: 5000,
      logger: silentLogger,
    });
  }
  try {
    return await connect(url);
  } catch (error) {
    if (error instanceof ConfigError) throw new CliError(error.message);
    throw error;
  }
}

/** Runs `fn` with a transport to the broker, always closing it, and turns failures into a clear line. */
export async function withBroker<T>(
  url: string | undefined,
  ctx: DlqContext,
  fn: (transport: Transport) => Promise<T>,
): Promise<T> {
  if (!url) {
    throw new CliError(
      'no broker: pass --broker <url> or set BROKER_URL (e.g. amqp://guest:guest@localhost:5672 or nats://localhost:4222)',
    );
  }
  const transport = await open(url, ctx);
  try {
    return await fn(transport);
  } catch (error) {
    if (error instanceof CliError) throw error;
    const message = error instanceof Error ? error.message : String(error);
    // Connection errors already name the broker (redacted): say it once.
    const where = namesBroker(message, url) ? '' : ` (broker ${redactUrl(url)})`;
    throw new CliError(`${message}${where}`, { exitCode: 1, cause: error });
  } finally {
    await transport.close().catch(() => {});
  }
}

/** Whether a message already names the broker of `url` (its host and port). */
function namesBroker(message: string, url: string): boolean {
  try {
    const { host } = new URL(url);
    return host !== '' && (message.includes(`@${host}`) || message.includes(`//${host}`));
  } catch {
    return false;
  }
}

function age(since: string | undefined, now = Date.now()): string {
  if (!since) return '?';
  const s = Math.max(0, Math.round((now - Date.parse(since)) / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.round(s / 60)}m`;
  if (s < 172_800) return `${Math.round(s / 3600)}h`;
  return `${Math.round(s / 86_400)}d`;
}

/**
 * Renders dead letters as an aligned table: id, event, reason, attempts, age, error. Control
 * characters are shown as spaces (a header can hold anything, terminal escapes included), and
 * cells are cut (`…`) so that no row is wider than `columns`.
 */
export function formatTable(
  letters: readonly DeadLetter[],
  now = Date.now(),
  columns = DEFAULT_COLUMNS,
): string {
  const rows = [
    ['ID', 'EVENT', 'REASON', 'ATTEMPTS', 'AGE', 'ERROR'],
    ...letters.map((d) => [
      d.id ?? '-',
      d.type,
      d.reason,
      String(d.attempts),
      age(d.deadLetteredAt, now),
      d.error.length > 60 ? `${d.error.slice(0, 59)}…` : d.error,
    ]),
  ];
  // The id stays whole as long as the other columns can give way: it is what show and replay take.
  return `${fitTable(rows, columns, [0]).join('\n')}\n`;
}

/** The width a table is cut to when the output is not a terminal. */
export const DEFAULT_COLUMNS = 160;

function toJson(d: DeadLetter): Record<string, unknown> {
  const body = d.body.toString('utf8');
  const payload = boundedJson(body);
  return {
    id: d.id,
    type: d.type,
    reason: d.reason,
    error: d.error,
    attempts: d.attempts,
    firstFailedAt: d.firstFailedAt,
    deadLetteredAt: d.deadLetteredAt,
    queue: d.queue,
    service: d.service,
    headers: payload.headers(d.headers),
    body: payload.value,
    ...(payload.note && { bodyNote: payload.note }),
  };
}

/** JSON text for the CLI's output; never throws, whatever the value holds. */
function stringify(value: unknown): string {
  try {
    return JSON.stringify(value, null, 2);
  } catch (error) {
    // boundedJson keeps nesting shallow, so this is a last resort, not a path taken.
    return JSON.stringify({ error: `cannot show this as JSON: ${(error as Error).message}` });
  }
}

/** `tidings dlq list <queue> [--json] [--limit n]`. */
export async function dlqList(
  options: { queue: string; broker: string | undefined; json: boolean; limit: number | undefined },
  io: Io,
  ctx: DlqContext,
): Promise<number> {
  const queue = dlqName(options.queue);
  const { letters, depth } = await withBroker(options.broker, ctx, (t) =>
    inspectDeadLetters(t, queue, { limit: options.limit }),
  );
  const count = (n: number) => `${n} message${n === 1 ? '' : 's'}`;
  const cut = depth !== undefined && depth > letters.length;
  const summary = cut
    ? `${letters.length} of ${count(depth)} in ${queue} (--limit ${options.limit})`
    : `${count(letters.length)} in ${queue}`;
  if (options.json) {
    io.stdout(`${stringify(letters.map(toJson))}\n`);
    // stdout stays one JSON document; how much was left out goes beside it.
    if (cut) io.stderr(`${summary}\n`);
  } else if (letters.length === 0) {
    io.stdout(`${queue} is empty.\n`);
  } else {
    io.stdout(formatTable(letters, Date.now(), terminalColumns(io) ?? DEFAULT_COLUMNS));
    io.stdout(`${summary}\n`);
  }
  return 0;
}

/** `tidings dlq show <queue> <id>`: every header and the body of one dead letter. */
export async function dlqShow(
  options: { queue: string; id: string; broker: string | undefined },
  io: Io,
  ctx: DlqContext,
): Promise<number> {
  const queue = dlqName(options.queue);
  const letters = await withBroker(options.broker, ctx, (t) =>
    listDeadLetters(t, queue, { limit: Number.MAX_SAFE_INTEGER }),
  );
  const found = letters.find((d) => d.id === options.id);
  if (!found) throw new CliError(`no message with id ${options.id} in ${queue}`, { exitCode: 1 });
  io.stdout(`${stringify(toJson(found))}\n`);
  return 0;
}

/** `tidings dlq replay <queue> (--id <id>... | --all)`, with a progress line on long replays. */
export async function dlqReplay(
  options: { queue: string; ids: readonly string[]; all: boolean; broker: string | undefined },
  io: Io,
  ctx: DlqContext,
): Promise<number> {
  if (options.all === options.ids.length > 0) {
    throw new CliError(
      'say what to replay: --id <id> (repeatable) or --all. Run tidings dlq replay --help.',
    );
  }
  const queue = dlqName(options.queue);
  let last = 0;
  const result = await withBroker(options.broker, ctx, (t) =>
    replayDeadLetters(t, queue, {
      ids: options.all ? undefined : options.ids,
      onProgress: (done, total) => {
        const now = Date.now();
        if (now - last > 500) {
          last = now;
          io.stderr(`replaying: ${done} of ${options.all ? `${total}+` : total}\n`);
        }
      },
    }),
  );
  io.stdout(
    `replayed ${result.replayed.length} message${result.replayed.length === 1 ? '' : 's'} from ${queue}\n`,
  );
  const missing = options.ids.filter((id) => !result.replayed.includes(id));
  for (const failure of result.failed) io.stderr(`not replayed: ${failure.message}\n`);
  const unknown = missing.filter((id) => !result.failed.some((f) => f.messageId === id));
  for (const id of unknown) io.stderr(`not found: ${id}\n`);
  return result.failed.length > 0 || unknown.length > 0 ? 1 : 0;
}

/** `tidings dlq purge <queue> [--yes]`: deletes every dead letter after a confirmation. */
export async function dlqPurge(
  options: { queue: string; yes: boolean; broker: string | undefined },
  io: Io,
  ctx: DlqContext,
): Promise<number> {
  const queue = dlqName(options.queue);
  return withBroker(options.broker, ctx, async (t) => {
    let ids: string[] | undefined;
    if (!options.yes) {
      // Only what was counted and confirmed is deleted, not what arrives meanwhile.
      const listed = await listDeadLetters(t, queue, { limit: Number.MAX_SAFE_INTEGER });
      if (listed.length === 0) {
        io.stdout(`${queue} is empty.\n`);
        return 0;
      }
      const count = listed.length;
      const ok = await ctx.confirm(
        `Delete ${count} message${count === 1 ? '' : 's'} from ${queue}? This cannot be undone.`,
      );
      if (!ok)
        throw new CliError('not purged: confirm at the prompt, or pass --yes', { exitCode: 1 });
      ids = listed.flatMap((d) => (d.id === undefined ? [] : [d.id]));
    }
    const purged = await purgeDeadLetters(t, queue, { ids });
    io.stdout(`purged ${purged} message${purged === 1 ? '' : 's'} from ${queue}\n`);
    return 0;
  });
}
