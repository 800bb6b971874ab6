import { afterAll, describe, expect, it } from 'vitest';
import { redactUrl } from '../../src/redact.js';
import { silentLogger } from '../../src/runtime/logger.js';
import { createService } from '../../src/runtime/service.js';
import { uniqueName } from '../../src/testing/broker.js';
import { waitFor } from '../../src/testing/conformance.js';
import {
  AMQP_URL,
  assertBrokerUp,
  type ConsumerProcess,
  DATABASE_URL,
  deleteTopology,
  duplicatesOf,
  openTransport,
  publishStream,
  queueDepth,
  REDIS_URL,
  reachable,
  report,
  runCli,
  startConsumers,
  tally,
} from './harness.js';
import { type ConsumerConfig, type HandlerConfig, order, submitEvent } from './protocol.js';

/*
 * Chaos test 5: a bug sends 1,000 messages to the dead-letter queue; the fixed consumer is
 * deployed; an operator replays the dead-letter queue with the real `tidings` command. Every
 * message is processed once by the fixed handler, with its original id, and only there: another
 * service that handled the same messages the first time sees none of them again.
 */

const up = await reachable(AMQP_URL, 'RabbitMQ', 5672);

describe.skipIf(!up)('reliability: replaying a dead-letter queue with the CLI', () => {
  afterAll(assertBrokerUp);

  it('processes each of 1,000 dead letters once after the fix, through `tidings dlq replay --all`', async () => {
    const total = 1000;
    const run = uniqueName('rel-replay');
    const exchange = run;
    const submit = submitEvent(exchange);
    const billing = `${run}-billing`;
    const audit = `${run}-audit`;
    const queue = `${billing}.${exchange}.submit`;
    const handler = (service: string, broken: boolean): HandlerConfig => ({
      service,
      faults: broken ? { kind: 'broken' } : { kind: 'none' },
      effect: { kind: 'none' },
      store: { kind: 'none' },
    });
    const config = (label: string, broken: boolean): ConsumerConfig => ({
      label,
      amqpUrl: AMQP_URL,
      redisUrl: REDIS_URL,
      databaseUrl: DATABASE_URL,
      exchange,
      prefetch: 50,
      retry: { maxAttempts: 2, baseDelayMs: 20, factor: 2, maxDelayMs: 100 },
      handlers: [handler(billing, broken), handler(audit, false)],
    });
    const topology = {
      exchanges: [exchange],
      queues: [queue, `${audit}.${exchange}.submit`].map((name) => ({ name, bindings: [] })),
    };
    const publisher = openTransport('replay publisher');
    const consumers: ConsumerProcess[] = [];
    try {
      const [buggy] = await startConsumers([config('buggy', true)]);
      consumers.push(buggy!);
      const producer = createService({
        name: `${run}-shop`,
        transport: publisher,
        logger: silentLogger,
      });
      expect(await publishStream(total, (i) => producer.publish(submit, order(i)))).toEqual([]);
      await waitFor(() => buggy!.dead.length === total, `${total} dead letters`, 60_000);
      const originalIds = new Map(
        buggy!.calls.filter((h) => h.service === billing).map((h) => [h.orderId, h.messageId]),
      );
      await waitFor(
        () => buggy!.returned.filter((r) => r.service === audit).length === total,
        'the audit service to handle every message',
      );
      await buggy!.stop();
      expect(await queueDepth(`${queue}.dlq`)).toBe(total);

      // The fix is deployed, then the operator replays.
      const [fixed] = await startConsumers([config('fixed', false)]);
      consumers.push(fixed!);
      const replay = await runCli(['dlq', 'replay', queue, '--all', '--broker', AMQP_URL]);
      const replayed = () => fixed!.returned.filter((r) => r.service === billing);
      await waitFor(
        () => replayed().length >= total,
        `${total} replayed messages processed`,
        60_000,
      );
      // Anything extra (a duplicate) would arrive within moments: give it the time to.
      await new Promise((resolve) => setTimeout(resolve, 1500));
      await fixed!.stop();

      const calls = fixed!.calls.filter((h) => h.service === billing);
      const perOrder = tally(calls.map((h) => h.orderId));
      const auditCalls = [...buggy!.calls, ...fixed!.calls].filter((h) => h.service === audit);
      const progressLines = replay.stderr.split('\n').filter((l) => l.startsWith('replaying:'));

      report('chaos 5: replay of 1,000 dead letters with the CLI, after the fix', {
        'dead-lettered by the bug': `${buggy!.dead.length} (2 attempts each: ${buggy!.calls.filter((h) => h.service === billing).length} failed calls)`,
        'cli command': `tidings dlq replay ${queue} --all --broker ${redactUrl(AMQP_URL)}`,
        'cli exit code': replay.code,
        'cli stdout': replay.stdout.trim(),
        'cli progress lines on stderr': progressLines.length,
        'cli wall time (including Node and tsx start-up)': `${replay.ms} ms`,
        'processed after the fix': `${calls.length} calls, ${perOrder.size} distinct, duplicates ${duplicatesOf(perOrder).extra}`,
        'same message ids as the originals': calls.every(
          (h) => originalIds.get(h.orderId) === h.messageId,
        ),
        'attempt of every replayed call': [...new Set(calls.map((h) => h.attempt))],
        'audit service calls (must stay 1 per message)': auditCalls.length,
      });

      expect(replay.code).toBe(0);
      expect(replay.stdout).toBe(`replayed ${total} messages from ${queue}.dlq\n`);
      expect(`${replay.stdout}${replay.stderr}`).not.toContain('guest:guest');
      expect(perOrder.size).toBe(total);
      expect(calls).toHaveLength(total);
      expect(calls.every((h) => originalIds.get(h.orderId) === h.messageId)).toBe(true);
      expect(calls.every((h) => h.attempt === 1)).toBe(true);
      expect(auditCalls).toHaveLength(total);
      expect(await queueDepth(`${queue}.dlq`)).toBe(0);
      expect(await queueDepth(queue)).toBe(0);
    } finally {
      await Promise.all(consumers.map((c) => c.kill()));
      await publisher.close();
      await deleteTopology(topology);
    }
  }, 120_000);
});
