import {
  Chargeback,
  Currency,
  fromCents,
  logisticDispatched,
  OrderV2,
  orderChargeback,
  orderSubmit,
} from '@ecommerce/contracts';
import { type } from 'arktype';
import Fastify, { type FastifyInstance, type FastifyReply } from 'fastify';
import {
  consoleLogger,
  createService,
  type Instrumentation,
  type Logger,
  type Service,
  type Transport,
} from 'tidings';
import { OrderStore, type StoredOrder } from './orders.js';

export * from './orders.js';

/** Options of {@link createOrderService}. */
export interface OrderServiceOptions {
  /** The broker connection; the service never closes it. */
  readonly transport: Transport;
  /** @defaultValue warnings and errors to stderr */
  readonly logger?: Logger;
  /** Tracing and metrics (`openTelemetry()` from `tidings/otel`). @defaultValue none */
  readonly instrumentation?: Instrumentation;
  /** HTTP port. @defaultValue 0 (any free port) */
  readonly port?: number;
  /** HTTP interface. @defaultValue '127.0.0.1' */
  readonly host?: string;
}

/** A running (or startable) Order service. */
export interface OrderService {
  /** The Tidings service: it publishes the order events; `observe()` shows them. */
  readonly service: Service;
  /** The domain: the orders, in memory. */
  readonly orders: OrderStore;
  /** The HTTP API: `POST /orders`, `GET /orders`, `GET /orders/:id`, `POST /orders/:id/chargeback`. */
  readonly http: FastifyInstance;
  /** Starts consuming, then listens; resolves with the API's base URL. */
  start(): Promise<string>;
  /** Stops listening (no new orders), then stops consuming. Leaves the transport open. */
  stop(): Promise<void>;
}

/**
 * Order takes orders over HTTP, stores them and publishes `order.v1.submit`; it publishes
 * `order.v1.chargeback` when a payment is reversed, and marks an order dispatched on
 * `logistic.v1.dispatched`. It knows nothing of who listens to its events.
 */
export function createOrderService(options: OrderServiceOptions): OrderService {
  const logger = options.logger ?? consoleLogger('order');
  const orders = new OrderStore();
  const service = createService({
    name: 'order',
    transport: options.transport,
    logger,
    instrumentation: options.instrumentation,
    publishes: [orderSubmit, orderChargeback],
  });
  // Throws while the order is unknown, so the message is retried rather than lost.
  service.on(logisticDispatched, (dispatched) => {
    orders.markDispatched(dispatched);
  });
  const http = orderApi(orders, service);
  return {
    service,
    orders,
    http,
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

// Keys the contract does not declare are removed here, at the edge, so that a client cannot slip
// them into the published order (the contracts themselves ignore them and copy nothing).
const NewOrderBody = OrderV2.omit('id')
  .merge({ currency: Currency.default('EUR') })
  .onDeepUndeclaredKey('delete');
const ChargebackBody = Chargeback.pick('reason');

function orderApi(orders: OrderStore, service: Service): FastifyInstance {
  const http = Fastify({ logger: false });
  http.get('/orders', async () => orders.list());
  http.get<{ Params: { id: string } }>('/orders/:id', async (request, reply) => {
    return findOrder(orders, request.params.id, reply) ?? reply;
  });
  http.post('/orders', async (request, reply) => {
    const body = NewOrderBody(request.body);
    if (body instanceof type.errors) return badRequest(reply, body);
    const order = orders.create(body);
    // Stored first, so a `dispatched` that comes back quickly finds it; forgotten if not published.
    try {
      await service.publish(orderSubmit, toMessage(order));
    } catch (error) {
      orders.remove(order.id);
      return unavailable(reply, error);
    }
    return reply.code(201).send(order);
  });
  http.post<{ Params: { id: string } }>('/orders/:id/chargeback', async (request, reply) => {
    const order = findOrder(orders, request.params.id, reply);
    if (!order) return reply;
    const body = ChargebackBody(request.body);
    if (body instanceof type.errors) return badRequest(reply, body);
    return chargeBack(service, order, body.reason, reply);
  });
  return http;
}

async function chargeBack(
  service: Service,
  order: StoredOrder,
  reason: string,
  reply: FastifyReply,
): Promise<FastifyReply> {
  if (order.status === 'charged_back') {
    return reply.code(409).send({ error: `order #${order.id} is already charged back` });
  }
  const before = order.status;
  const chargeback = { orderId: order.id, amount: fromCents(order.totalCents), reason };
  order.status = 'charged_back';
  order.chargeback = { amount: chargeback.amount, reason };
  try {
    await service.publish(orderChargeback, chargeback);
  } catch (error) {
    order.status = before;
    delete order.chargeback;
    return unavailable(reply, error);
  }
  return reply.code(200).send(order);
}

/** The event payload for a stored order: the contract's `Order`, nothing of the service's own state. */
function toMessage(order: StoredOrder): OrderV2 {
  return {
    id: order.id,
    currency: order.currency,
    ...(order.customer && { customer: order.customer }),
    lines: [...order.lines],
  };
}

function findOrder(
  orders: OrderStore,
  rawId: string,
  reply: FastifyReply,
): StoredOrder | undefined {
  const order = /^[1-9][0-9]*$/.test(rawId) ? orders.get(Number(rawId)) : undefined;
  if (!order) reply.code(404).send({ error: `no order ${rawId}` });
  return order;
}

function badRequest(
  reply: FastifyReply,
  issues: readonly { path: readonly PropertyKey[]; message: string }[],
): FastifyReply {
  return reply.code(400).send({
    error: 'invalid request body',
    issues: issues.map((i) => ({ path: i.path.map(String).join('.'), message: i.message })),
  });
}

function unavailable(reply: FastifyReply, error: unknown): FastifyReply {
  const message = error instanceof Error ? error.message : String(error);
  return reply.code(503).send({ error: `the order event could not be published: ${message}` });
}
