import type { JournalEntry } from '@ecommerce/billing';
import { formatCents } from '@ecommerce/contracts';
import { connect, redactUrl, type Transport } from 'tidings';
import { narrate } from './narrate.js';
import { startProcesses } from './processes.js';
import { checkOutcome, type Outcome, plural, runScenario } from './scenario.js';
import { type Ecommerce, startEcommerce } from './system.js';

/**
 * The e-commerce demo: starts Order, Billing, Logistic and Notification, plays the scenario over
 * HTTP, prints the flow of events and the final state, and exits 0 only if the outcome is right.
 *
 * - `npm run demo`: all four in this process on the embedded broker, the flow narrated.
 * - `npm run demo -- --broker amqp://guest:guest@127.0.0.1:5672`: each service as its own process
 *   on RabbitMQ (add `--one-process` to keep them in this process on that broker).
 * - `--console` (in this process, on any broker): after the scenario, the web console beside the
 *   running services (`--console-port`, default 7100), until Ctrl-C.
 *
 * The scenario only needs the services' URLs, so both modes play the same one.
 */
async function main(argv: readonly string[]): Promise<number> {
  const url = option(argv, '--broker') ?? 'memory://';
  // An embedded broker lives in one process; a real broker is how separate processes talk.
  const withConsole = argv.includes('--console');
  const separate = !url.startsWith('memory:') && !argv.includes('--one-process') && !withConsole;
  if (!withConsole) return separate ? runAsProcesses(url) : runInProcess(url);
  return runInProcess(url, (transport, system) =>
    serveConsole(transport, system, url, Number(option(argv, '--console-port') ?? 7100)),
  );
}

/** Each service as its own process on a real broker, as they are deployed. */
async function runAsProcesses(url: string): Promise<number> {
  console.log(`Four services as four processes on ${redactUrl(url)}.\n`);
  const processes = await startProcesses(url, (line) => console.log(line));
  try {
    const outcome = await runScenario(
      processes.urls,
      (line) => console.log(`client: ${line}`),
      20_000,
    );
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
  after?: (transport: Transport, system: Ecommerce) => Promise<void>,
): Promise<number> {
  const transport = await connect(url);
  const system = await startEcommerce(transport);
  const stopNarrating = narrate(system, (line) => console.log(line));
  try {
    console.log(
      `Four services on ${redactUrl(url)}; -> publishes, <- handles, >> HTTP call, Dr/Cr debit/credit.\n`,
    );
    const outcome = await runScenario(system.urls, (line) =>
      console.log(`${'client'.padEnd(12)} ${line}`),
    );
    stopNarrating();
    const code = report(outcome);
    await after?.(transport, system);
    return code;
  } finally {
    stopNarrating();
    await system.stop();
    await transport.close();
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
      .map((c) => c.padStart(10))
      .join('')}`;
  console.log('\nGeneral ledger');
  console.log(row(['account', 'debits', 'credits', 'balance']));
  for (const a of balances.accounts) {
    console.log(
      row([a.account, formatCents(a.debits), formatCents(a.credits), formatCents(a.balance)]),
    );
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

function describeEntry(entry: JournalEntry): string {
  const postings = entry.postings.map(
    (p) => `${p.side === 'debit' ? 'Dr' : 'Cr'} ${p.account} ${formatCents(p.cents)}`,
  );
  return `${entry.memo.padEnd(44)} ${postings.join(' / ')}`;
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
