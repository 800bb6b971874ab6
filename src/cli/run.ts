import { readFileSync } from 'node:fs';
import { type ParseArgsConfig, parseArgs } from 'node:util';
import { TidingsError } from '../errors.js';
import { asyncApiCommand, checkCommand, snapshotCommand, topologyCommand } from './commands.js';
import { CONSOLE_PORT, type ConsoleContext, consoleCommand } from './console.js';
import {
  confirmOnTerminal,
  type DlqContext,
  dlqList,
  dlqPurge,
  dlqReplay,
  dlqShow,
} from './dlq.js';
import { CliError } from './errors.js';
import { type Io, redactSecrets } from './io.js';
import { outboxMigrate, outboxRetry, outboxStatus } from './outbox.js';

const MODULE_NOTE = `A <module> is a path to a JavaScript or TypeScript module. TypeScript modules load
through tsx: it is used when the CLI runs under it (npx tsx ...), or registered on the fly when
it is installed.`;

const HELP = {
  main: `Usage: tidings <command> [options]

Commands:
  contracts snapshot   write a snapshot of a contracts module (events, versions, JSON Schemas)
  contracts check      compare a contracts module with a snapshot; exit 1 on a breaking change
  asyncapi             write an AsyncAPI 3.0 document describing services
  topology             show who publishes and who consumes what (text, Mermaid or SVG)
  dlq list             list the messages of a dead-letter queue
  dlq show             show one dead letter: every header and the body
  dlq replay           send dead letters back to the queue that failed them
  dlq purge            delete the messages of a dead-letter queue
  console              a web console of a running system: topology with live numbers, dead
                       letters with replay, a live tail of an exchange
  outbox migrate       create the transactional outbox table in PostgreSQL (or print its SQL)
  outbox status        how many outbox messages wait, the lag, and the ones that fail
  outbox retry         put parked outbox messages back in line

Options:
  -h, --help           show help; after a command, that command's help
  -v, --version        print the version of Tidings

Exit codes: 0 done; 1 the check found breaking changes, or the command failed;
2 bad usage or input (unknown option, missing file, a module with nothing to use).

${MODULE_NOTE}
`,
  contracts: `Usage: tidings contracts <snapshot|check> [options]

  snapshot   write a snapshot of a contracts module
  check      compare a contracts module with a snapshot

Run tidings contracts snapshot --help or tidings contracts check --help for their options.
`,
  snapshot: `Usage: tidings contracts snapshot --contracts <module> [--out <file>]

Writes the contracts of a module (its exported exchanges and events, every version with its
routing key, whether it has an upcaster, and the JSON Schema of its payload) as stable, sorted
JSON, meant to be committed and checked with tidings contracts check.

Options:
  --contracts <module>   the contracts module (required)
  --out <file>           write to this file instead of stdout

${MODULE_NOTE}
`,
  check: `Usage: tidings contracts check <snapshot> --contracts <module>

Compares the contracts of a module with a committed snapshot. Exits 1, listing each problem, on a
change that would break a producer or a consumer: an exchange, event or version removed or
renamed, a published version's schema changed, a new version without an upcaster.

Options:
  --contracts <module>   the contracts module (required)

${MODULE_NOTE}
`,
  asyncapi: `Usage: tidings asyncapi --services <module> [options]

Writes an AsyncAPI 3.0 document: one channel per routing key (AMQP topic exchange bindings), a
send operation per published event, a receive operation per queue and routing key, and each
message's payload as JSON Schema with its CloudEvents headers.

Options:
  --services <module>    the services module (required): it exports Service objects, a
                         \`services\` array, or a default function returning services
  --contracts <module>   also describe the events of this contracts module
  --out <file>           write to this file instead of stdout
  --format <json|yaml>   default: yaml when --out ends in .yaml or .yml, else json
  --title <text>         info.title (default: Tidings services)
  --api-version <text>   info.version (default: 1.0.0)
  --server <url>         the broker, e.g. amqp://rabbitmq:5672/ (credentials are never written)

${MODULE_NOTE}
`,
  topology: `Usage: tidings topology --services <module> [options]

Shows which service publishes which routing key to which exchange, and which queues receive it.

Options:
  --services <module>          the services module (required)
  --format <text|mermaid|svg>  default: from the --out extension (.svg, .mmd), else text
  --out <file>                 write to this file instead of stdout
  --title <text>               the SVG picture's heading

${MODULE_NOTE}
`,
  dlq: `Usage: tidings dlq <list|show|replay|purge> <queue> [options]

<queue> is a handler's queue (billing.order.submit) or its dead-letter queue
(billing.order.submit.dlq). The broker is --broker <url>, else the BROKER_URL variable.

  list <queue> [--json] [--limit <n>]   id, event, reason, attempts and age of each message
  show <queue> <id>                     one message: every header and the body, as JSON
  replay <queue> (--id <id>... | --all) send messages back to the queue whose handler failed
                                        them, same id and body, attempts reset; each is removed
                                        from the dead-letter queue only after the broker
                                        confirmed the copy (a crash may duplicate, never lose)
  purge <queue> [--yes]                 delete every message, after a confirmation

Options:
  --broker <url>   amqp://user:password@host:5672/vhost or nats://user:password@host:4222
                   (the password or token is never printed)

Run tidings dlq <command> --help for one command's options.
`,
  'dlq list': `Usage: tidings dlq list <queue> [--json] [--limit <n>] [--broker <url>]

Lists the messages of a dead-letter queue without taking them off it (each is read and put back):
a table of id, event, reason, attempts, age and error, then how many the queue holds. Cells are
cut to the terminal's width (COLUMNS, else 160 when the output is not a terminal).

<queue> is a handler's queue (billing.order.submit) or its dead-letter queue
(billing.order.submit.dlq).

Options:
  --json           every message with every header and its body, as a JSON array (a body
                   nested too deeply to show as JSON is shown as text)
  --limit <n>      show the first n messages (default 10000); the count says how many there are
  --broker <url>   amqp://user:password@host:5672/vhost or nats://host:4222, else BROKER_URL
                   (the password or token is never printed)
`,
  'dlq show': `Usage: tidings dlq show <queue> <id> [--broker <url>]

Shows one dead letter, found by its id (ce-id; for a Celery task message, its task id; else
message_id), as JSON: why it failed, where, how often, every header and the body. It stays in
the queue.

Options:
  --broker <url>   amqp://user:password@host:5672/vhost or nats://host:4222, else BROKER_URL
                   (the password or token is never printed)
`,
  'dlq replay': `Usage: tidings dlq replay <queue> (--id <id>... | --all) [--broker <url>]

Sends dead letters back to the queue whose handler failed them (the tidings-queue header),
through the default exchange, so only that consumer sees them again: same id and body, failure
headers removed, attempts start again from 1. Each is removed from the dead-letter queue only
after the broker confirmed its copy: a crash may duplicate a message, never lose one.

Options:
  --id <id>        replay this message (ce-id, Celery task id, or message_id); repeatable
  --all            replay every message
  --broker <url>   amqp://user:password@host:5672/vhost or nats://host:4222, else BROKER_URL
                   (the password or token is never printed)
`,
  'dlq purge': `Usage: tidings dlq purge <queue> [--yes] [--broker <url>]

Deletes the messages of a dead-letter queue, after asking on the terminal (only those counted
when asked; messages arriving meanwhile stay). Without a terminal, it refuses unless --yes.

Options:
  -y, --yes        delete without asking
  --broker <url>   amqp://user:password@host:5672/vhost or nats://host:4222, else BROKER_URL
                   (the password or token is never printed)
`,
  console: `Usage: tidings console --services <module> [options]

Serves a web page about a running system (see docs/console.md): the services' topology with each
queue's ready messages, consumers and rates; the dead letters of every handler queue, with
replay and purge; a live tail of an exchange, filtered by event and version. It stops on Ctrl-C.

Options:
  --services <module>      the services module (required), as for tidings topology: the
                           console shows and reads these services' queues only
  --broker <url>           the broker, else the BROKER_URL variable (its password never reaches
                           the page or the output)
  --port <n>               default: ${CONSOLE_PORT}
  --host <address>         default: 127.0.0.1; anything else is reachable from other machines
  --allow-writes           let the page replay and purge dead letters (default: read-only)
  --management <url|off>   RabbitMQ's management API for rates, e.g. http://user:pass@host:15672
                           (default: the broker's host on port 15672 with its credentials, and
                           passive declares when that does not answer)
  --title <text>           the page's heading

${MODULE_NOTE}
`,
  outbox: `Usage: tidings outbox <migrate|status|retry> [options]

The transactional outbox of tidings/postgres (docs/outbox.md). The database is --database <url>,
else the DATABASE_URL variable; the table is --table <name>, else tidings_outbox.

  migrate [--notify] [--print]      create the table and its indexes where missing (safe to run
                                    again); --notify adds a trigger that wakes relays of other
                                    processes on each commit (it serialises those commits: see
                                    docs/outbox.md); --print writes the SQL instead, for your own
                                    migrations, without connecting
  status [--json] [--limit <n>]     pending messages, the lag of the oldest, parked and retrying
                                    ones with their last error (up to --limit each, default 10)
  retry (--id <id>... | --all)      put parked messages back in line, attempts reset

Options:
  --database <url>   postgres://user:password@host:5432/db (the password is never printed)
  --table <name>     the outbox table, optionally schema-qualified
`,
} as const;

type Options = NonNullable<ParseArgsConfig['options']>;

const COMMON: Options = { help: { type: 'boolean', short: 'h' } };

/**
 * Runs the CLI with its arguments (without `node` and the script) and returns the exit code.
 * Everything printed goes through `io`; secrets in URLs are redacted from error messages.
 */
export async function run(
  argv: readonly string[],
  io: Io,
  ctx: ConsoleContext = { brokerUrl: process.env.BROKER_URL, confirm: confirmOnTerminal },
): Promise<number> {
  try {
    return await dispatch(argv, io, ctx);
  } catch (error) {
    return report(error, io);
  }
}

async function dispatch(argv: readonly string[], io: Io, ctx: ConsoleContext): Promise<number> {
  const [command, sub] = argv;
  if (command === undefined || command === '-h' || command === '--help') {
    io.stdout(HELP.main);
    return command === undefined ? 2 : 0;
  }
  if (command === '-v' || command === '--version') {
    io.stdout(`${version()}\n`);
    return 0;
  }
  switch (command) {
    case 'contracts':
      return contracts(sub, argv.slice(2), io);
    case 'asyncapi':
      return asyncapi(argv.slice(1), io);
    case 'topology':
      return topologyOf(argv.slice(1), io);
    case 'dlq':
      return dlq(sub, argv.slice(2), io, ctx);
    case 'console':
      return consoleOf(argv.slice(1), io, ctx);
    case 'outbox':
      return outbox(sub, argv.slice(2), io);
    default:
      throw new CliError(`unknown command "${command}". Run tidings --help for the commands.`);
  }
}

async function contracts(
  sub: string | undefined,
  args: readonly string[],
  io: Io,
): Promise<number> {
  if (sub === undefined || sub === '-h' || sub === '--help') {
    io.stdout(HELP.contracts);
    return sub === undefined ? 2 : 0;
  }
  if (sub === 'snapshot') {
    const o = parse(args, { contracts: { type: 'string' }, out: { type: 'string' } }, 'snapshot');
    if (!o) return help('snapshot', io);
    return snapshotCommand(
      { contracts: required(o.values, 'contracts', 'snapshot'), out: str(o.values.out) },
      io,
    );
  }
  if (sub === 'check') {
    const o = parse(args, { contracts: { type: 'string' } }, 'check', 1);
    if (!o) return help('check', io);
    const snapshot = o.positionals[0];
    if (snapshot === undefined) throw usage('the snapshot file is missing', 'check');
    return checkCommand({ snapshot, contracts: required(o.values, 'contracts', 'check') }, io);
  }
  throw new CliError(`unknown command "contracts ${sub}". Run tidings contracts --help.`);
}

async function asyncapi(args: readonly string[], io: Io): Promise<number> {
  const o = parse(
    args,
    {
      services: { type: 'string' },
      contracts: { type: 'string' },
      out: { type: 'string' },
      format: { type: 'string' },
      title: { type: 'string' },
      'api-version': { type: 'string' },
      server: { type: 'string' },
    },
    'asyncapi',
  );
  if (!o) return help('asyncapi', io);
  const v = o.values;
  return asyncApiCommand(
    {
      services: required(v, 'services', 'asyncapi'),
      contracts: str(v.contracts),
      out: str(v.out),
      format: str(v.format),
      title: str(v.title) ?? 'Tidings services',
      apiVersion: str(v['api-version']) ?? '1.0.0',
      server: str(v.server),
    },
    io,
  );
}

async function topologyOf(args: readonly string[], io: Io): Promise<number> {
  const o = parse(
    args,
    {
      services: { type: 'string' },
      format: { type: 'string' },
      out: { type: 'string' },
      title: { type: 'string' },
    },
    'topology',
  );
  if (!o) return help('topology', io);
  const v = o.values;
  return topologyCommand(
    {
      services: required(v, 'services', 'topology'),
      format: str(v.format),
      out: str(v.out),
      title: str(v.title),
    },
    io,
  );
}

async function dlq(
  sub: string | undefined,
  args: readonly string[],
  io: Io,
  ctx: DlqContext,
): Promise<number> {
  if (sub === undefined || sub === '-h' || sub === '--help') {
    io.stdout(HELP.dlq);
    return sub === undefined ? 2 : 0;
  }
  const broker = { broker: { type: 'string' } } as const;
  const queueOf = (o: Parsed, command: keyof typeof HELP) => {
    const queue = o.positionals[0];
    if (queue === undefined) throw usage('the queue is missing', command);
    return queue;
  };
  const brokerOf = (o: Parsed) => str(o.values.broker) ?? ctx.brokerUrl;
  switch (sub) {
    case 'list': {
      const o = parse(
        args,
        { ...broker, json: { type: 'boolean' }, limit: { type: 'string' } },
        'dlq list',
        1,
      );
      if (!o) return help('dlq list', io);
      const limit = str(o.values.limit);
      if (limit !== undefined && !/^[1-9][0-9]*$/.test(limit)) {
        throw usage('--limit must be a positive integer', 'dlq list');
      }
      return dlqList(
        {
          queue: queueOf(o, 'dlq list'),
          broker: brokerOf(o),
          json: o.values.json === true,
          limit: limit === undefined ? undefined : Number(limit),
        },
        io,
        ctx,
      );
    }
    case 'show': {
      const o = parse(args, broker, 'dlq show', 2);
      if (!o) return help('dlq show', io);
      const queue = queueOf(o, 'dlq show');
      const id = o.positionals[1];
      if (id === undefined) throw usage('the message id is missing', 'dlq show');
      return dlqShow({ queue, id, broker: brokerOf(o) }, io, ctx);
    }
    case 'replay': {
      const o = parse(
        args,
        { ...broker, id: { type: 'string', multiple: true }, all: { type: 'boolean' } },
        'dlq replay',
        1,
      );
      if (!o) return help('dlq replay', io);
      const ids = (o.values.id as string[] | undefined) ?? [];
      return dlqReplay(
        { queue: queueOf(o, 'dlq replay'), ids, all: o.values.all === true, broker: brokerOf(o) },
        io,
        ctx,
      );
    }
    case 'purge': {
      const o = parse(args, { ...broker, yes: { type: 'boolean', short: 'y' } }, 'dlq purge', 1);
      if (!o) return help('dlq purge', io);
      return dlqPurge(
        { queue: queueOf(o, 'dlq purge'), yes: o.values.yes === true, broker: brokerOf(o) },
        io,
        ctx,
      );
    }
    default:
      throw new CliError(`unknown command "dlq ${sub}". Run tidings dlq --help.`);
  }
}

async function consoleOf(args: readonly string[], io: Io, ctx: ConsoleContext): Promise<number> {
  const o = parse(
    args,
    {
      services: { type: 'string' },
      broker: { type: 'string' },
      host: { type: 'string' },
      port: { type: 'string' },
      'allow-writes': { type: 'boolean' },
      management: { type: 'string' },
      title: { type: 'string' },
    },
    'console',
  );
  if (!o) return help('console', io);
  const v = o.values;
  const port = str(v.port);
  if (port !== undefined && !(/^[0-9]{1,5}$/.test(port) && Number(port) <= 65_535)) {
    throw usage('--port must be a port number (0 to 65535)', 'console');
  }
  return consoleCommand(
    {
      services: required(v, 'services', 'console'),
      broker: str(v.broker) ?? ctx.brokerUrl,
      host: str(v.host),
      port: port === undefined ? undefined : Number(port),
      allowWrites: v['allow-writes'] === true,
      management: str(v.management),
      title: str(v.title),
    },
    io,
    ctx,
  );
}

async function outbox(sub: string | undefined, args: readonly string[], io: Io): Promise<number> {
  if (sub === undefined || sub === '-h' || sub === '--help') {
    io.stdout(HELP.outbox);
    return sub === undefined ? 2 : 0;
  }
  const target = { database: { type: 'string' }, table: { type: 'string' } } as const;
  const targetOf = (o: Parsed) => ({
    database: str(o.values.database) ?? process.env.DATABASE_URL,
    table: str(o.values.table),
  });
  switch (sub) {
    case 'migrate': {
      const o = parse(
        args,
        { ...target, print: { type: 'boolean' }, notify: { type: 'boolean' } },
        'outbox',
      );
      if (!o) return help('outbox', io);
      return outboxMigrate(
        { ...targetOf(o), print: o.values.print === true, notify: o.values.notify === true },
        io,
      );
    }
    case 'status': {
      const o = parse(
        args,
        { ...target, json: { type: 'boolean' }, limit: { type: 'string' } },
        'outbox',
      );
      if (!o) return help('outbox', io);
      const limit = str(o.values.limit) ?? '10';
      if (!/^[1-9][0-9]*$/.test(limit)) throw usage('--limit must be a positive integer', 'outbox');
      return outboxStatus(
        { ...targetOf(o), json: o.values.json === true, limit: Number(limit) },
        io,
      );
    }
    case 'retry': {
      const o = parse(
        args,
        { ...target, id: { type: 'string', multiple: true }, all: { type: 'boolean' } },
        'outbox',
      );
      if (!o) return help('outbox', io);
      const ids = (o.values.id as string[] | undefined) ?? [];
      return outboxRetry({ ...targetOf(o), ids, all: o.values.all === true }, io);
    }
    default:
      throw new CliError(`unknown command "outbox ${sub}". Run tidings outbox --help.`);
  }
}

type Parsed = { values: Record<string, unknown>; positionals: string[] };

/** Parses a command's options strictly; returns `undefined` when `--help` was asked for. */
function parse(
  args: readonly string[],
  options: Options,
  command: keyof typeof HELP,
  positionals = 0,
): Parsed | undefined {
  let parsed: Parsed;
  try {
    parsed = parseArgs({
      args: [...args],
      options: { ...COMMON, ...options },
      allowPositionals: positionals > 0,
      strict: true,
    });
  } catch (error) {
    throw usage(parseProblem(error, { ...COMMON, ...options }), command);
  }
  if (parsed.values.help === true) return undefined;
  if (parsed.positionals.length > positionals) {
    throw usage(`unexpected argument "${parsed.positionals[positionals]}"`, command);
  }
  return parsed;
}

/**
 * What was wrong with the arguments, in one short sentence: Node's own parseArgs messages are
 * long and tell how to pass a positional argument starting with a dash, which is rarely the
 * problem. An unknown option gets the nearest known one.
 */
function parseProblem(error: unknown, options: Options): string {
  const code = (error as { code?: unknown }).code;
  const message = error instanceof Error ? error.message : String(error);
  const option = /'(-{1,2}[^' ]+)/.exec(message)?.[1];
  if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' && option) {
    const near = nearestOption(option, options);
    return `unknown option ${option}${near ? ` (did you mean ${near}?)` : ''}`;
  }
  if (code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE' && option) {
    const name = option.replace(/^-+/, '');
    const spec = options[name] ?? Object.values(options).find((o) => `-${o.short}` === option);
    return spec?.type === 'boolean' ? `${option} takes no value` : `${option} needs a value`;
  }
  if (code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL') {
    const arg = /'([^']*)'/.exec(message)?.[1];
    return `unexpected argument${arg === undefined ? '' : ` "${arg}"`}`;
  }
  return message.split('. ')[0] ?? message;
}

/** The known option closest to a mistyped one (`--brokr`: `--broker`), if any is close. */
function nearestOption(typed: string, options: Options): string | undefined {
  const given = typed.replace(/^-+/, '').split('=')[0]!.toLowerCase();
  if (given.length > 64) return undefined;
  let best: string | undefined;
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const name of Object.keys(options)) {
    const d = editDistance(given, name);
    if (d < bestDistance) {
      best = name;
      bestDistance = d;
    }
  }
  // Close means a typo or a shortening, not another word.
  if (best !== undefined && bestDistance <= 2 && bestDistance < given.length) return `--${best}`;
  const longer = Object.keys(options).filter((name) => given.length >= 2 && name.startsWith(given));
  return longer.length === 1 ? `--${longer[0]}` : undefined;
}

/** Levenshtein distance, with a transposition of two neighbours counted as one edit. */
function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) =>
    Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        v = Math.min(v, d[i - 2]![j - 2]! + 1);
      }
      d[i]![j] = v;
    }
  }
  return d[a.length]![b.length]!;
}

function help(command: keyof typeof HELP, io: Io): number {
  io.stdout(HELP[command]);
  return 0;
}

function required(
  values: Record<string, unknown>,
  name: string,
  command: keyof typeof HELP,
): string {
  const value = str(values[name]);
  if (value === undefined || value === '') throw usage(`--${name} <module> is required`, command);
  return value;
}

function str(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

function usage(message: string, command: keyof typeof HELP): CliError {
  const how = command === 'main' ? 'tidings --help' : `${commandLine(command)} --help`;
  return new CliError(`${message}. Run ${how} for usage.`);
}

function commandLine(command: keyof typeof HELP): string {
  return command === 'snapshot' || command === 'check'
    ? `tidings contracts ${command}`
    : `tidings ${command}`;
}

function report(error: unknown, io: Io): number {
  if (error instanceof CliError) {
    io.stderr(redactSecrets(`tidings: ${error.message}\n`));
    return error.exitCode;
  }
  if (error instanceof TidingsError) {
    // Invalid contracts or snapshots: the input is at fault, not Tidings.
    io.stderr(redactSecrets(`tidings: ${error.message}\n`));
    return 2;
  }
  const detail = error instanceof Error ? (error.stack ?? error.message) : String(error);
  io.stderr(redactSecrets(`tidings: unexpected error: ${detail}\n`));
  return 1;
}

function version(): string {
  // Two levels under the package root both as src/cli/run.ts and as dist/cli/run.js.
  const file = new URL('../../package.json', import.meta.url);
  return (JSON.parse(readFileSync(file, 'utf8')) as { version: string }).version;
}
