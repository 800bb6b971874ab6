import { type BillingService, createBillingService } from '@ecommerce/billing';
import { createLogisticService, type LogisticService } from '@ecommerce/logistic';
import { createNotificationService, type NotificationService } from '@ecommerce/notification';
import { createOrderService, type OrderService } from '@ecommerce/order';
import type { Instrumentation, Logger, Transport } from 'tidings';
import type { ServiceUrls } from './scenario.js';

/** The four services of the e-commerce, running in this process on one transport. */
export interface Ecommerce {
  readonly order: OrderService;
  readonly billing: BillingService;
  readonly logistic: LogisticService;
  readonly notification: NotificationService;
  /** Base URL of each service's HTTP API. */
  readonly urls: ServiceUrls;
  /** Stops every service (Order first, so no new orders arrive). Leaves the transport open. */
  stop(): Promise<void>;
}

/**
 * Starts all four services in this process on `transport`, each HTTP API on a free port, traced
 * when `instrumentation` is given. This is the one place that knows how the services are
 * deployed; the scenario only sees URLs.
 */
export async function startEcommerce(
  transport: Transport,
  logger?: Logger,
  instrumentation?: Instrumentation,
): Promise<Ecommerce> {
  const common = {
    transport,
    ...(logger && { logger }),
    ...(instrumentation && { instrumentation }),
  };
  const order = createOrderService(common);
  const billing = createBillingService(common);
  const logistic = createLogisticService(common);
  const notification = createNotificationService(common);
  const started: { stop(): Promise<void> }[] = [];
  const start = async (service: { start(): Promise<string>; stop(): Promise<void> }) => {
    const url = await service.start();
    started.push(service);
    return url;
  };
  let urls: ServiceUrls;
  try {
    // Consumers first, so their queues exist before Order accepts the first order.
    urls = {
      billing: await start(billing),
      logistic: await start(logistic),
      notification: await start(notification),
      order: await start(order),
    };
  } catch (error) {
    await Promise.allSettled(started.map((s) => s.stop()));
    throw error;
  }
  return {
    order,
    billing,
    logistic,
    notification,
    urls,
    async stop() {
      await order.stop();
      await Promise.all([billing.stop(), logistic.stop(), notification.stop()]);
    },
  };
}
