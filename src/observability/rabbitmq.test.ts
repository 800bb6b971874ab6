import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { describeTracedOrder } from '../../test/support/tracing.js';
import { silentLogger } from '../logger.js';
import { brokerReachable } from '../testing/broker.js';
import { amqpTransport } from '../transports/amqp/index.js';

const url = process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const { hostname, port } = new URL(url);
const up = await brokerReachable(hostname, Number(port || 5672), 'RabbitMQ');

if (up) {
  describeTracedOrder(
    'RabbitMQ',
    async () => amqpTransport({ url, logger: silentLogger, connectionName: 'tidings otel test' }),
    async (transport, services) => {
      for (const s of services) {
        await transport.deleteTopology(s.topology(), { exchanges: true }).catch(() => {});
      }
    },
  );
}

interface ExportedSpan {
  name: string;
  kind: string;
  scope: string;
  traceId: string;
  spanId: string;
  parent?: string;
}

/** Runs the script that enables @opentelemetry/instrumentation-amqplib before amqplib loads. */
async function runInstrumented(...args: string[]): Promise<ExportedSpan[]> {
  const root = fileURLToPath(new URL('../..', import.meta.url));
  const { stdout } = await promisify(execFile)(
    process.execPath,
    ['--import', 'tsx', 'test/support/amqplib-instrumented.ts', ...args],
    { cwd: root, env: { ...process.env, AMQP_URL: url }, timeout: 60_000 },
  );
  return stdout
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as ExportedSpan);
}

const AMQPLIB = '@opentelemetry/instrumentation-amqplib';

describe.skipIf(!up)('beside @opentelemetry/instrumentation-amqplib', () => {
  it('keeps one producer span and an unbroken parent: the instrumentation stays quiet under a send', async () => {
    const spans = await runInstrumented();
    // The instrumentation did patch amqplib: its consumer span is there.
    const theirs = spans.find((s) => s.scope === AMQPLIB && s.kind === 'CONSUMER');
    expect(theirs, 'instrumentation-amqplib did not patch amqplib').toBeDefined();
    const producers = spans.filter((s) => s.kind === 'PRODUCER');
    expect(producers.map((s) => s.scope)).toEqual(['tidings']);
    const ours = spans.find((s) => s.scope === 'tidings' && s.kind === 'CONSUMER');
    expect(ours?.parent).toBe(producers[0]?.spanId);
    // Its consumer span cannot be avoided from inside Tidings: it is a sibling, same parent.
    expect(theirs?.parent).toBe(producers[0]?.spanId);
    expect(new Set(spans.map((s) => s.traceId)).size).toBe(1);
  }, 90_000);

  it('without suppression, has two producer spans and the instrumentation overwrites traceparent', async () => {
    const spans = await runInstrumented('--no-suppress');
    const producers = spans.filter((s) => s.kind === 'PRODUCER');
    expect(producers.map((s) => s.scope).sort()).toEqual([AMQPLIB, 'tidings']);
    const amqplibSend = producers.find((s) => s.scope === AMQPLIB);
    const tidingsSend = producers.find((s) => s.scope === 'tidings');
    expect(amqplibSend?.parent).toBe(tidingsSend?.spanId);
    const ours = spans.find((s) => s.scope === 'tidings' && s.kind === 'CONSUMER');
    expect(ours?.parent).toBe(amqplibSend?.spanId);
  }, 90_000);
});
