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
import { Outbox } from './outbox.js';

export * from './outbox.js';

/** Options of {@link createNotificationService}. */
export interface NotificationServiceOptions {
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

/** A running (or startable) Notification service. */
export interface NotificationService {
  /** The Tidings service: its handlers, and `observe()` for what they handle. */
  readonly service: Service;
  /** The domain: what would have been sent. */
  readonly outbox: Outbox;
  /** Starts consuming, then serves `GET /notifications`; resolves with the API's base URL. */
  start(): Promise<string>;
  /** Stops the HTTP API, then stops consuming. Leaves the transport open. */
  stop(): Promise<void>;
}

/**
 * Notification tells customers about their orders: a confirmation on `order.v1.submit`, a
 * shipping notice on `logistic.v1.dispatched`. It was added after Order, Billing and Logistic
 * without a line of them changing: it only binds its own queues to their exchanges.
 */
export function createNotificationService(
  options: NotificationServiceOptions,
): NotificationService {
  const logger = options.logger ?? consoleLogger('notification');
  const outbox = new Outbox();
  const service = createService({
    name: 'notification',
    transport: options.transport,
    logger,
    instrumentation: options.instrumentation,
  });
  service.on(orderSubmit, (order, ctx) => {
    outbox.orderSubmitted(order, ctx.envelope.id);
  });
  service.on(logisticDispatched, (dispatched, ctx) => {
    outbox.orderDispatched(dispatched, ctx.envelope.id);
  });
  // Read-only: the service's state, so a client can observe it wherever it runs.
  const http = Fastify({ logger: false });
  http.get('/notifications', async () => outbox.list());
  return {
    service,
    outbox,
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
