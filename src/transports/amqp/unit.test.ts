import { describe, expect, it } from 'vitest';
import { ConfigError, TopologyConflictError } from '../../errors.js';
import { silentLogger } from '../../logger.js';
import { sanitizeError } from './connection.js';
import { resolveAmqpOptions } from './options.js';
import { parseConflict, planTopology, queuesOf, retryLevel, retryQueueName } from './topology.js';

describe('amqp options', () => {
  it('takes the URL apart and applies the documented defaults', () => {
    const o = resolveAmqpOptions(
      'amqps://app:s%40cret@rabbit.example:5999/prod?heartbeat=5&connection_name=billing',
    );
    expect(o).toMatchObject({
      protocol: 'amqps',
      hostname: 'rabbit.example',
      port: 5999,
      username: 'app',
      password: 's@cret',
      vhost: 'prod',
      heartbeat: 5,
      connectionName: 'billing',
      queueType: 'quorum',
      deliveryLimit: 20,
      maxBufferedPublishes: 10_000,
      publishTimeoutMs: 30_000,
      connectTimeoutMs: 30_000,
      reconnect: { initialDelayMs: 100, maxDelayMs: 5000 },
    });
    expect(o.displayUrl).toBe('amqps://app:***@rabbit.example:5999/prod');
    expect(resolveAmqpOptions().displayUrl).toBe('amqp://guest:***@localhost:5672/');
    expect(resolveAmqpOptions('amqp://h/%2F').vhost).toBe('/');
    expect(resolveAmqpOptions('amqp://h').port).toBe(5672);
    expect(resolveAmqpOptions({ url: 'amqp://h', vhost: 'v', password: 'p' })).toMatchObject({
      vhost: 'v',
      password: 'p',
      username: 'guest',
    });
  });

  it('has no delivery limit on classic queues, and lets quorum queues drop it', () => {
    expect(resolveAmqpOptions({ queueType: 'classic' }).deliveryLimit).toBeUndefined();
    expect(resolveAmqpOptions({ deliveryLimit: false }).deliveryLimit).toBeUndefined();
    expect(resolveAmqpOptions({ deliveryLimit: 3 }).deliveryLimit).toBe(3);
  });

  it('reports every problem at once, without the password', () => {
    let error: unknown;
    try {
      resolveAmqpOptions({
        url: 'http://user:hunter2@host',
        queueType: 'lazy' as never,
        heartbeat: -1,
        maxBufferedPublishes: 0,
        publishTimeoutMs: 1.5,
        tls: { servername: 'x' },
        logger: silentLogger,
      });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const problems = (error as ConfigError).problems;
    expect(problems).toHaveLength(6);
    expect((error as Error).message).not.toContain('hunter2');
    expect((error as Error).message).toContain('amqp:// or amqps://');
  });

  it('rejects a delivery limit on classic queues', () => {
    expect(() => resolveAmqpOptions({ queueType: 'classic', deliveryLimit: 5 })).toThrow(
      /deliveryLimit applies to quorum queues only/,
    );
  });

  it('redacts the password from errors, stacks included', () => {
    const original = new Error('failed for amqp://u:pa55word@h and pa55word again');
    const safe = sanitizeError(original, 'pa55word');
    expect(safe.message).toBe('failed for amqp://u:***@h and *** again');
    expect(safe.stack).not.toContain('pa55word');
  });
});

describe('amqp topology plan', () => {
  const quorum = { queueType: 'quorum', deliveryLimit: 20 } as const;

  // Queue names and arguments are persistent identifiers: a change here breaks existing brokers
  // (PRECONDITION_FAILED), so this test pins them.
  it('declares the documented names and arguments', () => {
    const plan = planTopology(
      {
        exchanges: ['order'],
        queues: [
          {
            name: 'billing.order.submit',
            bindings: [{ exchange: 'order', pattern: 'order.*.submit' }],
          },
        ],
      },
      quorum,
      () => [1, 2],
    );
    expect(plan).toEqual([
      { kind: 'exchange', name: 'order' },
      {
        kind: 'queue',
        name: 'billing.order.submit',
        role: 'work',
        arguments: {
          'x-queue-type': 'quorum',
          'x-dead-letter-exchange': '',
          'x-dead-letter-routing-key': 'billing.order.submit.dlq',
          'x-dead-letter-strategy': 'at-least-once',
          'x-overflow': 'reject-publish',
          'x-delivery-limit': 20,
        },
      },
      {
        kind: 'queue',
        name: 'billing.order.submit.dlq',
        role: 'dead-letter',
        arguments: { 'x-queue-type': 'quorum' },
      },
      ...[1, 2].map((n) => ({
        kind: 'queue',
        name: `billing.order.submit.retry.${n}`,
        role: 'retry',
        arguments: {
          'x-queue-type': 'quorum',
          'x-dead-letter-exchange': '',
          'x-dead-letter-routing-key': 'billing.order.submit',
          'x-dead-letter-strategy': 'at-least-once',
          'x-overflow': 'reject-publish',
        },
      })),
      {
        kind: 'binding',
        queue: 'billing.order.submit',
        exchange: 'order',
        pattern: 'order.*.submit',
      },
    ]);
  });

  it('gives classic queues only the type and dead-letter routing', () => {
    const plan = planTopology(
      { exchanges: [], queues: [{ name: 'q', bindings: [{ exchange: 'e', pattern: '#' }] }] },
      { queueType: 'classic', deliveryLimit: undefined },
      () => [1],
    );
    expect(plan[0]).toEqual({ kind: 'exchange', name: 'e' });
    expect(plan.find((d) => d.kind === 'queue' && d.role === 'work')).toMatchObject({
      arguments: {
        'x-queue-type': 'classic',
        'x-dead-letter-exchange': '',
        'x-dead-letter-routing-key': 'q.dlq',
      },
    });
    expect(plan.find((d) => d.kind === 'queue' && d.role === 'retry')).toMatchObject({
      name: 'q.retry.1',
      arguments: { 'x-queue-type': 'classic', 'x-dead-letter-routing-key': 'q' },
    });
  });

  it('picks a retry level per failed attempt, capped at 10', () => {
    expect([undefined, 0, 1, 2, 9, 10, 11, 500, 'x'].map((n) => retryLevel(n as never))).toEqual([
      1, 1, 1, 2, 9, 10, 10, 10, 1,
    ]);
    expect(retryQueueName('a.b', 3)).toBe('a.b.retry.3');
    expect(queuesOf('q')).toEqual([
      'q',
      'q.dlq',
      ...Array.from({ length: 10 }, (_, i) => `q.retry.${i + 1}`),
    ]);
  });
});

describe('topology conflicts', () => {
  const amqplibError = (text: string) =>
    Object.assign(
      new Error(`Operation failed: QueueDeclare; 406 (PRECONDITION-FAILED) with message "${text}"`),
      {
        code: 406,
      },
    );

  it('explains a queue declared with another type', () => {
    const c = parseConflict(
      amqplibError(
        "PRECONDITION_FAILED - inequivalent arg 'x-queue-type' for queue 'billing.order.submit' in vhost '/': received the value 'quorum' of type 'longstr' but current is none",
      ),
    )!;
    expect(c.entity).toBe('queue "billing.order.submit" in vhost "/"');
    expect(c.difference).toMatch(
      /^x-queue-type is not set \(a classic queue\) on the broker, but Tidings declares 'quorum'/,
    );
    const e = new TopologyConflictError(c.entity, c.difference);
    expect(e.message).toContain('queueType');
  });

  it('explains other differences, for exchanges too', () => {
    expect(
      parseConflict(
        amqplibError(
          "PRECONDITION_FAILED - inequivalent arg 'type' for exchange 'order' in vhost 'shop': received 'topic' but current is 'direct'",
        ),
      ),
    ).toEqual({
      entity: 'exchange "order" in vhost "shop"',
      difference: "type is 'direct' on the broker, but Tidings declares 'topic'",
    });
    expect(
      parseConflict(
        amqplibError(
          "PRECONDITION_FAILED - inequivalent arg 'x-delivery-limit' for queue 'q' in vhost '/': received the value '20' of type 'byte' but current is the value '5' of type 'long'",
        ),
      )?.difference,
    ).toBe("x-delivery-limit is '5' on the broker, but Tidings declares '20'");
  });

  it('ignores errors that are not conflicts', () => {
    expect(
      parseConflict(Object.assign(new Error('NOT_FOUND - no queue'), { code: 404 })),
    ).toBeUndefined();
    expect(parseConflict('weird')).toBeUndefined();
  });
});
