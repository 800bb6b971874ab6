import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { until } from '../../test/support/tracing.js';
import { defineEvent, defineExchange } from '../contracts/event.js';
import { silentLogger } from '../logger.js';
import { createService } from '../runtime/service.js';
import { MemoryBroker } from '../transports/memory/broker.js';
import { openTelemetry } from './otel.js';

const placed = defineEvent(defineExchange('shop'), 'placed', z.object({ id: z.number() }));

describe('the Prometheus exporter setup of docs/observability.md', () => {
  it('serves the counters by event and version, the handler histogram and the queue depth', async () => {
    // A port of this project's test range; Prometheus' own default is 9464.
    const exporter = new PrometheusExporter({ host: '127.0.0.1', port: 5738 });
    await exporter.startServer();
    const meterProvider = new MeterProvider({ readers: [exporter] });
    const instrumentation = openTelemetry({ meterProvider });
    const broker = new MemoryBroker();
    const billing = createService({
      name: 'billing',
      transport: broker.transport(),
      logger: silentLogger,
      instrumentation,
    });
    let handled = 0;
    billing.on(placed, () => {
      handled++;
    });
    await billing.start();
    const shop = createService({ name: 'shop', transport: broker.transport(), instrumentation });
    try {
      for (let i = 0; i < 3; i++) await shop.publish(placed, { id: i });
      await until('three handled', () => handled === 3);
      await until('three acked', async () => {
        const text = await (await fetch('http://127.0.0.1:5738/metrics')).text();
        return /tidings_messages_acked_total\{[^}]*\} 3/.test(text);
      });
      const text = await (await fetch('http://127.0.0.1:5738/metrics')).text();
      const line = (name: string) => text.split('\n').find((l) => l.startsWith(name)) ?? '';
      expect(line('tidings_messages_acked_total')).toMatch(/tidings_event="shop.placed"/);
      expect(line('tidings_messages_acked_total')).toMatch(/tidings_event_version="1"/);
      expect(line('messaging_client_sent_messages_total')).toMatch(/ 3$/);
      expect(line('messaging_client_consumed_messages_total')).toMatch(/ 3$/);
      expect(line('messaging_process_duration_count')).toMatch(/ 3$/);
      expect(text).toMatch(
        /tidings_queue_depth\{[^}]*messaging_destination_name="billing.shop.placed"[^}]*\} 0/,
      );
    } finally {
      await billing.stop();
      await meterProvider.shutdown();
    }
  });
});
