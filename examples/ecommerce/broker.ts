import {
  DEFAULT_EXCHANGE,
  type Delivery,
  deadLetterQueueName,
  HEADERS,
  type HeaderValue,
  redactUrl,
  StateError,
  type Transport,
} from 'tidings';
import { amqpTransport, createTemporaryVhost, MAX_RETRY_LEVEL, retryQueueName } from 'tidings/amqp';
import ecommerceServices from './services.js';

/** Where the demo runs on a real broker, and how to leave it. */
export interface DemoBroker {
  /** The URL the services use. */
  readonly url: string;
  /** The vhost the demo made for itself, or `undefined` when it runs in the URL's vhost. */
  readonly vhost: string | undefined;
  /** Deletes the demo's own vhost, if it made one. Never rejects. */
  release(): Promise<void>;
}

/** The value of `tidings-dead-reason` on the messages the demo set aside. */
export const SET_ASIDE_REASON = 'left-over';

/**
 * Prepares a RabbitMQ broker for the demo, whose queues (`billing.order.submit`...) and exchanges
 * (`order`, `logistic`) have fixed names: whatever an earlier run, a test or another application
 * left in them would be consumed by the demo and spoil its exact counts.
 *
 * - On the default vhost of a local broker, it makes a vhost of its own with `rabbitmqctl`
 *   (deleted by `release()`), unless `ownVhost` is false. AMQP cannot create vhosts, so without
 *   `rabbitmqctl` (a broker in a container, say) it says so and goes on as below.
 * - Otherwise it runs in the URL's vhost, and first sets aside every message waiting in the demo's
 *   queues and their retry queues: each is moved to the queue's dead-letter queue with reason
 *   `left-over`, so nothing is lost, and the demo says what it found (how many, which events,
 *   which orders, from whom) and how to look at them (`tidings dlq list`).
 */
export async function prepareBroker(
  url: string,
  say: (line: string) => void,
  options: { readonly ownVhost: boolean },
): Promise<DemoBroker> {
  const given: DemoBroker = { url, vhost: undefined, release: async () => {} };
  const made = options.ownVhost ? await ownVhost(url, say) : undefined;
  if (made) return made;
  const transport = amqpTransport({ url, connectionName: 'tidings-demo (check)' });
  try {
    await setAsideLeftovers(transport, url, say);
  } finally {
    await transport.close();
  }
  return given;
}

async function ownVhost(url: string, say: (line: string) => void): Promise<DemoBroker | undefined> {
  const u = new URL(url);
  const vhost = decodeURIComponent(u.pathname.slice(1)) || '/';
  if (vhost !== '/') return undefined;
  if (!['127.0.0.1', 'localhost', '[::1]'].includes(u.hostname)) {
    say(`The broker is not on this machine: the demo cannot make a vhost of its own there.`);
    return undefined;
  }
  let made: Awaited<ReturnType<typeof createTemporaryVhost>>;
  try {
    made = await createTemporaryVhost(url, { prefix: 'tidings-demo' });
  } catch (error) {
    say(`No vhost of its own for the demo: ${(error as Error).message}.`);
    return undefined;
  }
  // rabbitmqctl manages the local node, which may not be the broker of the URL: check.
  const probe = amqpTransport({
    url: made.url,
    connectionName: 'tidings-demo (check)',
    connectTimeoutMs: 5000,
    logger: { debug() {}, info() {}, warn() {}, error() {} },
  });
  try {
    await probe.connect();
  } catch {
    await made.delete();
    say(
      `No vhost of its own for the demo: rabbitmqctl made one, but the broker at ${redactUrl(url)} does not know it (another node?).`,
    );
    return undefined;
  } finally {
    await probe.close();
  }
  say(`In a vhost of its own, ${made.name} (made with rabbitmqctl, deleted at the end).`);
  return { url: made.url, vhost: made.name, release: made.delete };
}

/** One message found waiting in one of the demo's queues. */
interface Found {
  readonly type: string;
  readonly orderId: number | undefined;
  readonly source: string | undefined;
}

/**
 * Moves every message waiting in the demo's work queues and their retry queues to the work
 * queue's dead-letter queue, and says what they were. Only queues that exist are read.
 */
async function setAsideLeftovers(
  transport: Transport,
  url: string,
  say: (line: string) => void,
): Promise<void> {
  const queues = ecommerceServices().flatMap((s) => s.topology().queues.map((q) => q.name));
  let first: string | undefined;
  for (const queue of queues) {
    const sources = [queue];
    for (let level = 1; level <= MAX_RETRY_LEVEL; level++) {
      sources.push(retryQueueName(queue, level));
    }
    const found: Found[] = [];
    for (const source of sources) {
      for (;;) {
        const delivery = await getOrNothing(transport, source);
        if (!delivery) break;
        if (!(await setAside(transport, delivery, queue, source))) break;
        found.push(describe(delivery));
      }
    }
    if (found.length === 0) continue;
    first ??= queue;
    say(
      `Found ${found.length} message${found.length === 1 ? '' : 's'} already waiting for ${queue}, ` +
        `not sent by this run: ${summarise(found)}. Moved to ${deadLetterQueueName(queue)}, ` +
        `so they cannot change the demo's counts.`,
    );
  }
  if (first) {
    say(
      `See them with: npx tsx src/cli/main.ts dlq list ${first} --broker ${redactUrl(url)} ` +
        '(the tidings dlq command; replay or purge them the same way).',
    );
  }
}

async function getOrNothing(transport: Transport, queue: string): Promise<Delivery | undefined> {
  try {
    return await transport.get(queue);
  } catch (error) {
    // A queue that does not exist holds nothing: the demo has not run on this broker yet.
    if (error instanceof StateError) return undefined;
    throw error;
  }
}

/** Copies one message to `<queue>.dlq`, then acknowledges it; false (and put back) if it cannot. */
async function setAside(
  transport: Transport,
  delivery: Delivery,
  queue: string,
  source: string,
): Promise<boolean> {
  const m = delivery.message;
  const headers: Record<string, HeaderValue> = {
    ...m.properties.headers,
    [HEADERS.deadReason]: SET_ASIDE_REASON,
    [HEADERS.errorMessage]: `found waiting in ${source} when the demo started; set aside by the demo`,
    [HEADERS.lastFailure]: new Date().toISOString(),
    [HEADERS.queue]: queue,
  };
  headers[HEADERS.originalExchange] ??= m.exchange;
  headers[HEADERS.originalRoutingKey] ??= m.routingKey;
  try {
    const outcome = await transport.publish({
      exchange: DEFAULT_EXCHANGE,
      routingKey: deadLetterQueueName(queue),
      body: m.body,
      properties: { ...m.properties, headers },
    });
    if (!outcome.routed) throw new Error(`${deadLetterQueueName(queue)} does not exist`);
  } catch (error) {
    await delivery.requeue();
    throw new Error(`could not set aside a message left in ${source}: ${(error as Error).message}`);
  }
  await delivery.ack();
  return true;
}

/** The event, order and sender of a message, from a Tidings or a Celery message. */
function describe(delivery: Delivery): Found {
  const m = delivery.message;
  const h = m.properties.headers;
  const text = (v: HeaderValue) => (typeof v === 'string' ? v : undefined);
  const type = text(h[HEADERS.type]) ?? text(h.task) ?? m.routingKey;
  const source = text(h[HEADERS.source]) ?? text(h.origin) ?? m.properties.appId;
  let orderId: number | undefined;
  try {
    const body = JSON.parse(m.body.toString('utf8')) as unknown;
    // A Celery task's body is [args, kwargs, embed]; the payload is kwargs.instance or args[0].
    const payload = Array.isArray(body)
      ? ((body[1] as { instance?: unknown } | undefined)?.instance ?? (body[0] as unknown[])?.[0])
      : body;
    const p = payload as { id?: unknown; orderId?: unknown } | undefined;
    const id = p?.id ?? p?.orderId;
    if (typeof id === 'number') orderId = id;
  } catch {
    // Not JSON: no order to name.
  }
  return { type, orderId, source };
}

/** `order.v1.submit ×3 (orders #9000, #9001, #9002; from order)`, one group per event type. */
function summarise(found: readonly Found[]): string {
  const byType = new Map<string, Found[]>();
  for (const f of found) byType.set(f.type, [...(byType.get(f.type) ?? []), f]);
  return [...byType]
    .map(([type, all]) => {
      const ids = [
        ...new Set(all.flatMap((f) => (f.orderId === undefined ? [] : [`#${f.orderId}`]))),
      ];
      const from = [...new Set(all.flatMap((f) => (f.source ? [f.source] : [])))];
      const shown = ids.length > 8 ? [...ids.slice(0, 8), `and ${ids.length - 8} more`] : ids;
      const details = [
        ids.length > 0 ? `orders ${shown.join(', ')}` : '',
        from.length > 0 ? `from ${from.slice(0, 3).join(', ')}` : '',
      ].filter(Boolean);
      return `${type} ×${all.length}${details.length > 0 ? ` (${details.join('; ')})` : ''}`;
    })
    .join(', ');
}
