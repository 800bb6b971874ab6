import { createBillingService } from '@ecommerce/billing';
import { createLogisticService } from '@ecommerce/logistic';
import { createNotificationService } from '@ecommerce/notification';
import { createOrderService } from '@ecommerce/order';
import { memoryTransport, type Service } from 'tidings';

/**
 * The e-commerce's four services, for the tooling (`tidings asyncapi`, `tidings topology`):
 * the CLI's `--services` module. Building them starts nothing: no service consumes, no HTTP
 * server listens, and the memory transport opens no connection; the tooling only reads each
 * service's `describe()`.
 *
 * ```sh
 * npx tsx src/cli/main.ts topology --services examples/ecommerce/services.ts
 * ```
 */
export default function ecommerceServices(): Service[] {
  const common = { transport: memoryTransport() };
  return [
    createOrderService(common).service,
    createBillingService(common).service,
    createLogisticService(common).service,
    createNotificationService(common).service,
  ];
}
