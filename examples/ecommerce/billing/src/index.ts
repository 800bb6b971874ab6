import { orderChargeback, orderSubmit } from '@ecommerce/contracts';
import Fastify, { type FastifyInstance } from 'fastify';
import {
  consoleLogger,
  createService,
  type Instrumentation,
  type Logger,
  type Service,
  type Transport,
} from 'tidings';
import { type BillingBooks, Books } from './books.js';

export * from './books.js';
export * from './ledger.js';
export { PostgresBooks, type PostgresBooksOptions } from './postgres.js';

/** Options of {@link createBillingService}. */
export interface BillingServiceOptions<B extends BillingBooks = Books> {
  /** The broker connection; the service never closes it. */
  readonly transport: Transport;
  /**
   * Where the general ledger is kept: `new PostgresBooks({ pool })` for durable books with
   * exactly-once posting across restarts and replicas (call its `ensureSchema()` first).
   * @defaultValue `new Books(logger)`, in this process's memory
   */
  readonly books?: B | undefined;
  /** @defaultValue warnings and errors to stderr */
  readonly logger?: Logger;
  /** Tracing and metrics (`openTelemetry()` from `tidings/otel`). @defaultValue none */
  readonly instrumentation?: Instrumentation;
  /** HTTP port. @defaultValue 0 (any free port) */
  readonly port?: number;
  /** HTTP interface. @defaultValue '127.0.0.1' */
  readonly host?: string;
}

/** A running (or startable) Billing service. */
export interface BillingService<B extends BillingBooks = Books> {
  /** The Tidings service: its handlers, and `observe()` for what it handles. */
  readonly service: Service;
  /** The domain: the general ledger and the rules that feed it. */
  readonly books: B;
  /** The HTTP API: `GET /balances`, `GET /journal`. */
  readonly http: FastifyInstance;
  /** Starts consuming, then listens; resolves with the API's base URL. */
  start(): Promise<string>;
  /** Stops listening, then stops consuming (in-flight handlers finish). Leaves the transport open. */
  stop(): Promise<void>;
}

/**
 * Billing keeps the company's general ledger: it posts a sale for each `order.v1.submit` and the
 * reversing entry for each `order.v1.chargeback`, and answers balance queries over HTTP. The
 * books are in memory unless `options.books` says otherwise.
 */
export function createBillingService(options: BillingServiceOptions<Books>): BillingService<Books>;
export function createBillingService<B extends BillingBooks>(
  options: BillingServiceOptions<B> & { readonly books: B },
): BillingService<B>;
export function createBillingService(
  options: BillingServiceOptions<BillingBooks>,
): BillingService<BillingBooks> {
  const logger = options.logger ?? consoleLogger('billing');
  const books = options.books ?? new Books(logger);
  const service = createService({
    name: 'billing',
    transport: options.transport,
    logger,
    instrumentation: options.instrumentation,
  });
  // Written against version 2 (the default, the newest): version 1 orders arrive upcast.
  service.on(orderSubmit, async (order, ctx) => {
    await books.recordSale(order, ctx.envelope.id);
  });
  service.on(orderChargeback, async (chargeback, ctx) => {
    await books.recordChargeback(chargeback, ctx.envelope.id);
  });
  const http = billingApi(books);
  return {
    service,
    books,
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

/** The read-only HTTP API over the books. Amounts are integer cents. */
function billingApi(books: BillingBooks): FastifyInstance {
  const http = Fastify({ logger: false });
  http.get('/balances', async () => {
    const trial = await books.trialBalance();
    return { ...trial, balanced: trial.totalDebits === trial.totalCredits };
  });
  http.get('/journal', async () => books.journal());
  return http;
}
