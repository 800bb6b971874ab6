import { memoryTransport, silentLogger } from 'tidings';
import { openTelemetry } from 'tidings/otel';
import { describe, expect, it } from 'vitest';
import { tracingSdk } from '../../../test/support/tracing.js';
import { runScenario } from '../scenario.js';
import { startEcommerce } from '../system.js';
import { renderOrderTrace } from '../tracing.js';

describe('the demo with --trace', () => {
  it("prints one order's trace through the four services", async () => {
    const sdk = tracingSdk();
    const transport = memoryTransport();
    const system = await startEcommerce(
      transport,
      silentLogger,
      openTelemetry({ tracerProvider: sdk.tracerProvider, propagator: sdk.propagator }),
    );
    try {
      await runScenario(system.urls, () => {}, 20_000);
    } finally {
      await system.stop();
      await transport.close();
    }
    const text = renderOrderTrace(sdk.exporter.getFinishedSpans());
    const shape = text?.split('\n').map((line) => line.replace(/ {2}\d+\.\d ms/, ''));
    expect(shape?.[0]).toMatch(/^trace [0-9a-f]{32}$/);
    expect(shape?.slice(1).map((line) => line.replace(/ +/g, ' '))).toEqual([
      'order producer send order:order.v2.submit',
      '├─ billing consumer process order:order.v2.submit:billing.order.submit -> ack',
      '├─ logistic consumer process order:order.v2.submit:logistic.order.submit -> ack',
      '│ └─ logistic producer send logistic:logistic.v1.dispatched',
      expect.stringMatching(
        /^│ [├└]─ (notification|order) consumer process logistic:logistic\.v1\.dispatched:(notification|order)\.logistic\.dispatched -> ack$/,
      ),
      expect.stringMatching(
        /^│ [├└]─ (notification|order) consumer process logistic:logistic\.v1\.dispatched:(notification|order)\.logistic\.dispatched -> ack$/,
      ),
      '└─ notification consumer process order:order.v2.submit:notification.order.submit -> ack',
    ]);
  });
});
