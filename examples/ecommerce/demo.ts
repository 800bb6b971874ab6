import type { JournalEntry } from '@ecommerce/billing';
import { formatCents } from '@ecommerce/contracts';
import { connect, redactUrl } from 'tidings';
import { narrate } from './narrate.js';
import { startProcesses } from './processes.js';
import { checkOutcome, type Outcome, plural, runScenario } from './scenario.js';
import { startEcommerce } from './system.js';
import { renderOrderTrace, startTracing } from './tracing.js';

/**
 * The e-commerce demo: starts Order, Billing, Logistic and Notification, plays the scenario over
 * HTTP, prints the flow of events and the final state, and exits 0 only if the outcome is right.
 *
 * - `npm run demo`: all four in this process on the embedded broker, the flow narrated.
 * - `npm run demo -- --broker amqp://guest:guest@127.0.0.1:5672`: each service as its own process
 *   on RabbitMQ (add `--one-process` to keep them in this process on that broker).
 * - `--trace` (in one process): trace with OpenTelemetry and print the span tree of one order.
 *
 * The scenario only needs the services' URLs, so both modes play the same one.
 */
async function main(argv: readonly string[]): Promise<number> {
  const url = option(argv, '--broker') ?? 'memory://';
  // An embedded broker lives in one process; a real broker is how separate processes talk.
  const separate = !url.startsWith('memory:') && !argv.includes('--one-process');
  if (separate && argv.includes('--trace')) {
    console.log('--trace prints the spans of one process: add --one-process.\n');
  }
  return separate ? runAsProcesses(url) : runInProcess(url, argv.includes('--trace'));
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
async function runInProcess(url: string, traced: boolean): Promise<number> {
  const tracing = traced ? startTracing() : undefined;
  const transport = await connect(url);
  const system = await startEcommerce(transport, undefined, tracing?.instrumentation);
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
    if (tracing) {
      console.log('\nThe trace of order #1 across the four services (OpenTelemetry, in memory):');
      console.log(renderOrderTrace(tracing.spans()) ?? '  no span was recorded');
    }
    return code;
  } finally {
    stopNarrating();
    await system.stop();
    await transport.close();
    await tracing?.shutdown();
  }
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
