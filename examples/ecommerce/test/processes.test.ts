import { execFileSync } from 'node:child_process';
import { brokerReachable, uniqueName } from 'tidings/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type EcommerceProcesses, startProcesses } from '../processes.js';
import { checkOutcome, runScenario } from '../scenario.js';

/**
 * The deployment the example is for: each service its own process, on RabbitMQ, running the
 * same scenario with the same outcome as on the embedded broker. A vhost of its own keeps it
 * apart from other tests that publish to the `order` exchange at the same time.
 */
const up = await brokerReachable('127.0.0.1', 5672, 'RabbitMQ');

describe.skipIf(!up)('the e-commerce as four processes on RabbitMQ', () => {
  const vhost = uniqueName('tidings-e2e');
  let processes: EcommerceProcesses | undefined;
  const output: string[] = [];

  beforeAll(() => {
    execFileSync('rabbitmqctl', ['add_vhost', vhost], { stdio: 'ignore' });
    execFileSync('rabbitmqctl', ['set_permissions', '-p', vhost, 'guest', '.*', '.*', '.*'], {
      stdio: 'ignore',
    });
  }, 60_000);

  afterAll(async () => {
    await processes?.stop();
    execFileSync('rabbitmqctl', ['delete_vhost', vhost], { stdio: 'ignore' });
  }, 60_000);

  it('bills, ships, notifies and reverses the chargeback, exactly as on the embedded broker', async () => {
    const url = `amqp://guest:guest@127.0.0.1:5672/${vhost}`;
    processes = await startProcesses(url, (line) => output.push(line));
    const outcome = await runScenario(processes.urls, () => {}, 30_000);
    expect(checkOutcome(outcome)).toEqual([]);
    expect(outcome.balances.balanced).toBe(true);
    // The processes really talked through the broker: each logged what it published and handled.
    for (const name of ['order', 'billing', 'logistic', 'notification']) {
      expect(output.some((line) => line.startsWith(`${name}: <- `))).toBe(true);
    }
    expect(output.join('\n')).not.toContain('guest:guest');
  }, 90_000);
});
