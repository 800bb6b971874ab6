import { logisticDispatched, orderSubmit } from '@ecommerce/contracts';
import Fastify from 'fastify';
import {
  consoleLogger,
  createService,
  type Instrumentation,
  type Logger,
  type Service,
  type Transport,
} from 'tidings';
import { Warehouse } from './warehouse.js';

export * from './warehouse.js';

/** Options of {@link createLogisticService}. */
export interface LogisticServiceOptions {
  /** The broker connection; the service never closes it. */
  readonly transport: Transport;
  /** @defaultValue warnings and errors to stderr */
  readonly logger?: Logger;
  /** Tracing and metrics (`openTelemetry()` from `tidings/otel`). @defaultValue none */
  readonly instrumentation?: Instrumentation;
  /** Port of the read-only HTTP API. @defaultValue 0 (any free port) */
  readonly port?: number;
  /** HTTP interface. @defaultValue '127.0.0.1' */
  readonly host?: string;
}

/** A running (or startable) Logistic service. */
export interface LogisticService {
  /** The Tidings service: its handler, and `observe()` for what it handles and publishes. */
  readonly service: Service;
  /** The domain: the shipments. */
  readonly warehouse: Warehouse;
  /** Starts consuming, then serves `GET /shipments`; resolves with the API's base URL. */
  start(): Promise<string>;
  /** Stops the HTTP API, then stops consuming. Leaves the transport open. */
  stop(): Promise<void>;
}

/**
 * Logistic ships every submitted order: one shipment per order, announced with
 * `logistic.v1.dispatched`. It publishes through the handler's context, so the announcement
 * carries the submit's correlation id and names the submit as its cause.
 */
export function createLogisticService(options: LogisticServiceOptions): LogisticService {
  const logger = options.logger ?? consoleLogger('logistic');
  const warehouse = new Warehouse();
  const service = createService({
    name: 'logistic',
    transport: options.transport,
    logger,
    instrumentation: options.instrumentation,
    publishes: [logisticDispatched],
  });
  // Still written against version 1: version 2 orders arrive downcast (logistic ships items and
  // has no use for the currency), so Order could move to version 2 without waiting for it.
  service.on(
    orderSubmit,
    async (order, ctx) => {
      const shipment = warehouse.shipmentFor(order, ctx.envelope.id);
      if (shipment.announced) return;
      const { id: shipmentId, carrier, dispatchedAt } = shipment;
      await ctx.publish(
        logisticDispatched,
        { orderId: order.id, shipmentId, carrier, dispatchedAt },
        { id: shipment.announcementId },
      );
      shipment.announced = true;
    },
    { version: 1 },
  );
  // Read-only: the service's state, so a client can observe it wherever it runs.
  const http = Fastify({ logger: false });
  http.get('/shipments', async () => warehouse.list());
  return {
    service,
    warehouse,
    async start() {
      await service.start();
      try {
        return await http.listen({ port: options.port ?? 0, host: options.host ?? '127.0.0.1' });
      } catch (error) {
        await service.stop();
        throw error;
      }
    },
    async stop() {
      await http.close();
      await service.stop();
    },
  };
}
