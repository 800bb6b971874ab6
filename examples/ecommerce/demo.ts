import { type AccountBalance, CHART, type JournalEntry } from '@ecommerce/billing';
import { formatCents } from '@ecommerce/contracts';
import { connect, redactUrl, type Transport } from 'tidings';
import { prepareBroker } from './broker.js';
import { LEGEND, narrate } from './narrate.js';
import { startProcesses } from './processes.js';
import { checkOutcome, type Outcome, plural, runScenario } from './scenario.js';
import { type Ecommerce, startEcommerce } from './system.js';
import { renderOrderTrace, startTracing } from './tracing.js';

/**
 * The e-commerce demo: starts Order, Billing, Logistic and Notification, plays the scenario over
 * HTTP, prints the flow of events and the final state, and exits 0 only if the outcome is right.
 *
 * - `npm run demo`: all four in this process on the embedded broker, the flow narrated.
 * - `npm run demo -- --broker amqp://guest:guest@127.0.0.1:5672`: each service as its own process
 *   on RabbitMQ, each narrating what it does (add `--one-process` to keep them in this process on
 *   that broker). On the default vhost of a local broker the demo makes a vhost of its own with
 *   `rabbitmqctl` and deletes it at the end (`--no-own-vhost` to stay on the URL's vhost); where
 *   it cannot, it first moves aside what other runs left in its queues, and says what it was.
 *   `--broker nats://127.0.0.1:4222` does the same on NATS JetStream.
 * - `--console` (in this process, on any broker): after the scenario, the web console beside the
 *   running services (`--console-port`, default 7100), until Ctrl-C.
 * - `--trace` (in one process): trace with OpenTelemetry and print the span tree of one order.
 *
 * The scenario only needs the services' URLs, so both modes play the same one.
 */
async function main(argv: readonly string[]): Promise<number> {
  const url = option(argv, '--broker') ?? 'memory://';
  const withConsole = argv.includes('--console');
  const traced = argv.includes('--trace');
  const port = Number(option(argv, '--console-port') ?? 7100);
  const after = (on: string) =>
    withConsole
      ? (transport: Transport, system: Ecommerce) => serveConsole(transport, system, on, port)
      : undefined;
  // An embedded broker lives in one process; a real broker is how separate processes talk.
  if (url.startsWith('memory:')) {
    return runInProcess(url, 'Four services', { traced, after: after(url) });
  }
  const separate = !argv.includes('--one-process') && !withConsole;
  if (separate && traced) {
    console.log('--trace prints the spans of one process: add --one-process.\n');
  }
  const broker = await prepareBroker(url, (line) => console.log(line), {
    ownVhost: !argv.includes('--no-own-vhost'),
  });
  const release = once(() => broker.release());
  const interrupted = () => {
    void release().finally(() => process.exit(130));
  };
  process.once('SIGINT', interrupted);
  process.once('SIGTERM', interrupted);
  try {
    return separate
      ? await runAsProcesses(broker.url)
      : await runInProcess(broker.url, 'Four services in one process', {
          traced,
          after: after(broker.url),
        });
  } finally {
    await release();
    process.off('SIGINT', interrupted);
    process.off('SIGTERM', interrupted);
  }
}

/** `client       >> POST /orders ...`: the client's lines, in the narration's columns. */
const client = (line: string) => console.log(`${'client'.padEnd(12)} ${line}`);

/** Each service as its own process on a real broker, as they are deployed, each narrating itself. */
async function runAsProcesses(url: string): Promise<number> {
  console.log(`Four services as four processes on ${redactUrl(url)}; ${LEGEND}.\n`);
  const processes = await startProcesses(url, (line) => console.log(line));
  try {
    const outcome = await runScenario(processes.urls, client, 20_000);
    return report(outcome);
  } finally {
    await processes.stop();
  }
}

function report(outcome: Outcome): number {
  printOutcome(outcome);
  const problems = checkOutcome(outcome);
  for (const problem of problems) console.log(`WRONG: expected ${problem}`);
  console.log(problems.length === 0 ? '\nOutcome as expected.' : '\nOutcome is WRONG.');
  return problems.length === 0 ? 0 : 1;
}

/** The four services in this process, on one transport, with the flow narrated. */
async function runInProcess(
  url: string,
  what: string,
  options: {
    /** Trace with OpenTelemetry, and print one order's span tree at the end. */
    readonly traced?: boolean;
    /** Run after the outcome is reported, before the services stop (the console). */
    readonly after?: ((transport: Transport, system: Ecommerce) => Promise<void>) | undefined;
  } = {},
): Promise<number> {
  const tracing = options.traced ? startTracing() : undefined;
  const transport = await connect(url);
  const system = await startEcommerce(transport, undefined, tracing?.instrumentation);
  const stopNarrating = narrate(system, (line) => console.log(line));
  try {
    console.log(`${what} on ${redactUrl(url)}; ${LEGEND}.\n`);
    const outcome = await runScenario(system.urls, client);
    stopNarrating();
    const code = report(outcome);
    if (tracing) {
      console.log('\nThe trace of order #1 across the four services (OpenTelemetry, in memory):');
      console.log(renderOrderTrace(tracing.spans()) ?? '  no span was recorded');
    }
    await options.after?.(transport, system);
    return code;
  } finally {
    stopNarrating();
    await system.stop();
    await transport.close();
    await tracing?.shutdown();
  }
}

/** `--console`: the web console on the running services, until Ctrl-C (docs/console.md). */
async function serveConsole(
  transport: Transport,
  system: Ecommerce,
  url: string,
  port: number,
): Promise<void> {
  const { startConsole } = await import('tidings/console');
  const services = [system.order, system.billing, system.logistic, system.notification];
  const running = await startConsole({
    transport,
    services: services.map((s) => s.service),
    brokerUrl: url,
    allowWrites: true,
    port,
    title: 'E-commerce console',
  });
  console.log(`\nConsole: ${running.url} (writes allowed). Order's API: ${system.urls.order}`);
  console.log('Ctrl-C stops the console and the services.');
  await new Promise((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await running.close();
}

function printOutcome({ balances, journal, shipments, notifications, orders }: Outcome): void {
  const row = (cells: string[]) =>
    `  ${cells[0]?.padEnd(20)}${cells
      .slice(1)
      .map((c) => c.padStart(12))
      .join('')}`;
  console.log('\nGeneral ledger');
  console.log(row(['account', 'debits Dr', 'credits Cr', 'balance']));
  for (const a of balances.accounts) {
    console.log(row([a.account, formatCents(a.debits), formatCents(a.credits), withSide(a)]));
  }
  const verdict = balances.balanced ? 'debits = credits' : 'UNBALANCED';
  console.log(
    `${row(['total', formatCents(balances.totalDebits), formatCents(balances.totalCredits)])}  ${verdict}`,
  );
  console.log('Journal');
  for (const entry of journal) console.log(`  ${entry.id}  ${describeEntry(entry)}`);
  console.log('Shipments');
  for (const s of shipments)
    console.log(`  ${s.id}  order #${s.orderId}, ${plural(s.items, 'item')} by ${s.carrier}`);
  console.log('Notifications');
  for (const n of notifications) console.log(`  ${n.id}  to ${n.to.padEnd(18)} ${n.text}`);
  console.log(`Orders: ${orders.map((o) => `#${o.id} ${o.status}`).join(', ')}`);
}

/** A balance with the side it is on: `11.00 Dr` for accounts-receivable, `11.00 Cr` for revenue. */
function withSide(a: AccountBalance): string {
  const normal = CHART[a.account] === 'debit' ? 'Dr' : 'Cr';
  const other = normal === 'Dr' ? 'Cr' : 'Dr';
  if (a.balance === 0) return `${formatCents(0)}   `;
  return `${formatCents(Math.abs(a.balance))} ${a.balance > 0 ? normal : other}`;
}

function describeEntry(entry: JournalEntry): string {
  const postings = entry.postings.map(
    (p) => `${p.side === 'debit' ? 'Dr' : 'Cr'} ${p.account} ${formatCents(p.cents)}`,
  );
  return `${entry.memo.padEnd(44)} ${postings.join(' / ')}`;
}

function once(fn: () => Promise<void>): () => Promise<void> {
  let done: Promise<void> | undefined;
  return () => {
    done ??= fn();
    return done;
  };
}

function option(argv: readonly string[], name: string): string | undefined {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : undefined;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    console.error('The demo failed:', error);
    process.exitCode = 1;
  },
);
