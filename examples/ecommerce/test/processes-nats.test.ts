import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { brokerReachable, uniqueName } from 'tidings/testing';
import { afterAll, describe, expect, it } from 'vitest';
import { type EcommerceProcesses, startProcesses } from '../processes.js';
import { checkOutcome, runScenario } from '../scenario.js';

/**
 * The same deployment on NATS JetStream: each service its own process with
 * `BROKER_URL=nats://...`, the same scenario, the same outcome. A namespace of its own (NATS's
 * counterpart of a vhost) keeps it apart from anything else on the shared server; its streams are
 * deleted afterwards.
 */
const up = await brokerReachable('127.0.0.1', 4222, 'NATS');

describe.skipIf(!up)('the e-commerce as four processes on NATS JetStream', () => {
  const namespace = uniqueName('e2e');
  let processes: EcommerceProcesses | undefined;
  const output: string[] = [];

  afterAll(async () => {
    await processes?.stop();
    const nc = await connect({ servers: '127.0.0.1:4222' });
    try {
      const jsm = await jetstreamManager(nc);
      const mine: string[] = [];
      for await (const name of jsm.streams.names()) {
        if (name.startsWith(`${namespace}_`)) mine.push(name);
      }
      for (const name of mine) await jsm.streams.delete(name);
    } finally {
      await nc.close();
    }
  }, 60_000);

  it('bills, ships, notifies and reverses the chargeback, exactly as on the embedded broker', async () => {
    const url = `nats://127.0.0.1:4222?namespace=${namespace}`;
    processes = await startProcesses(url, (line) => output.push(line));
    const outcome = await runScenario(processes.urls, () => {}, 30_000);
    expect(checkOutcome(outcome)).toEqual([]);
    expect(outcome.balances.balanced).toBe(true);
    for (const name of ['order', 'billing', 'logistic', 'notification']) {
      expect(output.some((line) => line.startsWith(`${name.padEnd(12)} <- `))).toBe(true);
      expect(
        output.some((line) => line.startsWith(`${name}: HTTP on `) && line.includes(namespace)),
      ).toBe(true);
    }
  }, 90_000);
});
