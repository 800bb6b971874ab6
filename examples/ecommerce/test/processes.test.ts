import { brokerReachable, testVhost } from 'tidings/testing';
import { afterAll, describe, expect, it } from 'vitest';
import { type EcommerceProcesses, startProcesses } from '../processes.js';
import { checkOutcome, runScenario } from '../scenario.js';

/**
 * The deployment the example is for: each service its own process, on RabbitMQ, running the
 * same scenario with the same outcome as on the embedded broker. A vhost of its own keeps it
 * apart from other tests that publish to the `order` exchange at the same time.
 */
const AMQP_URL = process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const broker = new URL(AMQP_URL);
const up = await brokerReachable(broker.hostname, Number(broker.port || 5672), 'RabbitMQ');
const vhost = up ? await testVhost(AMQP_URL, 'tidings-e2e') : undefined;

describe.skipIf(!vhost)('the e-commerce as four processes on RabbitMQ', () => {
  let processes: EcommerceProcesses | undefined;
  const output: string[] = [];

  afterAll(async () => {
    await processes?.stop();
    await vhost?.delete();
  }, 60_000);

  it('bills, ships, notifies and reverses the chargeback, exactly as on the embedded broker', async () => {
    processes = await startProcesses(vhost!.url, (line) => output.push(line));
    const outcome = await runScenario(processes.urls, () => {}, 30_000);
    expect(checkOutcome(outcome)).toEqual([]);
    expect(outcome.balances.balanced).toBe(true);
    // The processes really talked through the broker: each narrated what it handled, in the
    // embedded demo's columns, with order numbers, and Logistic its downcast to version 1.
    for (const name of ['order', 'billing', 'logistic', 'notification']) {
      expect(output.some((line) => line.startsWith(`${name.padEnd(12)} <- `))).toBe(true);
    }
    expect(output).toContain(
      'billing      <- order.v2.submit        #1: posted J-1 (Dr accounts-receivable 10.50 / Cr revenue 10.50)',
    );
    expect(output.filter((line) => line.includes('(downcast to v1)'))).toHaveLength(3);
    expect(output).toContainEqual(
      expect.stringMatching(
        /^logistic {5}<- order\.v2\.submit {8}#1 \(downcast to v1\): packed S-1 \(3 items\)$/,
      ),
    );
    expect(output.join('\n')).not.toContain('guest:guest');
  }, 90_000);
});
