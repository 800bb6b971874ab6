import {
  Chargeback,
  Currency,
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
  type OutboxTransaction,
  type PublishOptions,
  type Service,
  type Transport,
} from 'tidings';
import type { OutboxRelay } from 'tidings/postgres';
import { type OrderBook, OrderStore, type StoredOrder } from './orders.js';

export * from './orders.js';
export { OrdersSchemaError, PostgresOrders, type PostgresOrdersOptions } from './postgres.js';

/** Options of {@link createOrderService}. */
export interface OrderServiceOptions<B extends OrderBook = OrderStore> {
  /** The broker connection; the service never closes it. */
  readonly transport: Transport;
  /**
   * Where the orders are kept: `new PostgresOrders({ pool })` keeps them in PostgreSQL and
   * publishes each event through its transactional outbox, in the transaction that changes the
   * order (create the tables first with its `migrate()`).
   * @defaultValue `new OrderStore()`, in this process's memory, events published directly
   */
  readonly orders?: B | undefined;
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
export interface OrderService<B extends OrderBook = OrderStore> {
  /** The Tidings service: it publishes the order events; `observe()` shows them. */
  readonly service: Service;
  /** The domain: the orders, in memory unless `options.orders` said otherwise. */
  readonly orders: B;
  /**
   * With an order book that has an outbox: the relay that publishes the outbox's committed
   * events (its `observe('published')` shows them, as the service's does for direct publishes).
   */
  readonly relay: OutboxRelay | undefined;
  /** The HTTP API: `POST /orders`, `GET /orders`, `GET /orders/:id`, `POST /orders/:id/chargeback`. */
  readonly http: FastifyInstance;
  /** Starts consuming (and the relay), then listens; resolves with the API's base URL. */
  start(): Promise<string>;
  /** Stops listening (no new orders), then the relay and consuming. Leaves the transport open. */
  stop(): Promise<void>;
}

/**
 * Order takes orders over HTTP, stores them and publishes `order.v2.submit`; it publishes
 * `order.v1.chargeback` when a payment is reversed, and marks an order dispatched on
 * `logistic.v1.dispatched`. It knows nothing of who listens to its events. With orders in
 * PostgreSQL, each event is written to the outbox in the order's own transaction.
 */
export function createOrderService(
  options: OrderServiceOptions<OrderStore>,
): OrderService<OrderStore>;
export function createOrderService<B extends OrderBook>(
  options: OrderServiceOptions<B> & { readonly orders: B },
): OrderService<B>;
export function createOrderService(
  options: OrderServiceOptions<OrderBook>,
): OrderService<OrderBook> {
  const logger = options.logger ?? consoleLogger('order');
  const orders: OrderBook = options.orders ?? new OrderStore();
  const outbox = orders.outbox;
  const service = createService({
    name: 'order',
    transport: options.transport,
    logger,
    instrumentation: options.instrumentation,
    publishes: [orderSubmit, orderChargeback],
    ...(outbox && { outbox }),
  });
  const relay = outbox?.relay({ transport: options.transport, logger });
  // Throws while the order is unknown, so the message is retried rather than lost.
  service.on(logisticDispatched, async (dispatched) => {
    await orders.markDispatched(dispatched);
  });
  const http = orderApi(orders, service);
  return {
    service,
    orders,
    relay,
    http,
    async start() {
      await service.start();
      try {
        await relay?.start();
        return await http.listen({ port: options.port ?? 0, host: options.host ?? '127.0.0.1' });
      } catch (error) {
        await relay?.stop();
        await service.stop();
        throw error;
      }
    },
    async stop() {
      await http.close();
      await relay?.stop();
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

/**
 * The options of a publish about `order`: in the order book's transaction when it has one, with
 * the order as ordering key, so its submit and its chargeback go out in the order they committed.
 */
function about(
  order: StoredOrder,
  tx: OutboxTransaction | undefined,
): Pick<PublishOptions, 'tx' | 'orderingKey'> {
  return tx === undefined ? {} : { tx, orderingKey: `order:${order.id}` };
}

function orderApi(orders: OrderBook, service: Service): FastifyInstance {
  const http = Fastify({ logger: false });
  http.get('/orders', async () => orders.list());
  http.get<{ Params: { id: string } }>('/orders/:id', async (request, reply) => {
    const order = await findOrder(orders, request.params.id);
    return order ?? notFound(reply, request.params.id);
  });
  http.post('/orders', async (request, reply) => {
    const body = NewOrderBody(request.body);
    if (body instanceof type.errors) return badRequest(reply, body);
    let order: StoredOrder;
    try {
      order = await orders.place(body, (o, tx) =>
        service.publish(orderSubmit, toMessage(o), about(o, tx)),
      );
    } catch (error) {
      return unavailable(reply, error);
    }
    return reply.code(201).send(order);
  });
  http.post<{ Params: { id: string } }>('/orders/:id/chargeback', async (request, reply) => {
    const id = orderId(request.params.id);
    if (id === undefined) return notFound(reply, request.params.id);
    const body = ChargebackBody(request.body);
    if (body instanceof type.errors) return badRequest(reply, body);
    let result: Awaited<ReturnType<OrderBook['chargeBack']>>;
    try {
      result = await orders.chargeBack(id, body.reason, (o, tx) =>
        service.publish(
          orderChargeback,
          { orderId: o.id, amount: o.chargeback!.amount, reason: body.reason },
          about(o, tx),
        ),
      );
    } catch (error) {
      return unavailable(reply, error);
    }
    if (result.status === 'unknown') return notFound(reply, request.params.id);
    if (result.status === 'already') {
      return reply.code(409).send({ error: `order #${id} is already charged back` });
    }
    return reply.code(200).send(result.order);
  });
  return http;
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

function orderId(raw: string): number | undefined {
  return /^[1-9][0-9]{0,8}$/.test(raw) ? Number(raw) : undefined;
}

async function findOrder(orders: OrderBook, raw: string): Promise<StoredOrder | undefined> {
  const id = orderId(raw);
  return id === undefined ? undefined : orders.get(id);
}

function notFound(reply: FastifyReply, raw: string): FastifyReply {
  return reply.code(404).send({ error: `no order ${raw}` });
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
