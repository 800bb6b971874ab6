import type { BillingBooks, BillingService, Books } from '@ecommerce/billing';
import {
  Chargeback,
  Dispatched,
  formatCents,
  Order,
  orderTotalCents,
  toCents,
} from '@ecommerce/contracts';
import type { LogisticService } from '@ecommerce/logistic';
import type { NotificationService } from '@ecommerce/notification';
import type { OrderBook, OrderService } from '@ecommerce/order';
import type { Envelope, Service } from 'tidings';
import { plural } from './scenario.js';

/** Width of the service column: the longest name, `notification`. */
const WHO = 12;
/** Width of the event column: the longest routing key, `logistic.v1.dispatched`. */
const WHAT = 22;

/** What the narration's arrows and abbreviations mean: the first line of every demo. */
export const LEGEND = '-> publishes, <- handles, >> HTTP call, Dr/Cr debit/credit';

/** Formats one line of the flow: who, an arrow (`->` published, `<-` handled), what, details. */
export function flowLine(who: string, arrow: string, what: string, details: string): string {
  return `${who.padEnd(WHO)} ${arrow} ${what.padEnd(WHAT)} ${details}`.trimEnd();
}

/** The services to narrate: all four in one process, or the one a process runs. */
export interface Narrated {
  readonly order?:
    | (Pick<OrderService<OrderBook>, 'service' | 'orders'> &
        Partial<Pick<OrderService<OrderBook>, 'relay'>>)
    | undefined;
  readonly billing?: Pick<BillingService<BillingBooks>, 'service' | 'books'> | undefined;
  readonly logistic?: Pick<LogisticService, 'service' | 'warehouse'> | undefined;
  readonly notification?: Pick<NotificationService, 'service' | 'outbox'> | undefined;
}

/**
 * Prints the flow of events as it happens: every message a service publishes (`->`) and handles
 * (`<-`), with what the message says and what the handler did, read back from the service's
 * domain. A message converted to the handler's version says so (`downcast to v1`). Failures and
 * dead letters are printed too. Returns a function that stops printing.
 *
 * The in-process demo narrates all four services; each service process of the multi-process
 * demo narrates itself (`LOG_EVENTS=1`), so both print the same lines.
 */
export function narrate(system: Narrated, print: (line: string) => void): () => void {
  const { order, billing, logistic, notification } = system;
  const outcomes: [Service, (envelope: Envelope, orderId: number) => string][] = [];
  if (order) {
    outcomes.push([
      order.service,
      (_, orderId) => {
        // The in-memory book answers at once; PostgreSQL's would answer later, too late here.
        const stored = order.orders.get(orderId);
        return stored instanceof Promise
          ? `order #${orderId} updated`
          : `order #${orderId} is now ${stored?.status}`;
      },
    ]);
  }
  if (billing) outcomes.push([billing.service, (envelope) => describeEntry(billing, envelope.id)]);
  if (logistic) {
    outcomes.push([
      logistic.service,
      (envelope) => {
        const s = logistic.warehouse.list().find((x) => x.causedBy === envelope.id);
        return s ? `packed ${s.id} (${plural(s.items, 'item')})` : 'nothing to ship';
      },
    ]);
  }
  if (notification) {
    outcomes.push([
      notification.service,
      (envelope) => {
        const n = notification.outbox.list().find((x) => x.messageId === envelope.id);
        return n ? `would email ${n.to}: "${n.subject}"` : 'nothing to send';
      },
    ]);
  }
  const stops = outcomes.flatMap(([service, outcome]) => {
    const versions = handlerVersions(service);
    return [
      service.observe('published', ({ envelope, payload }) => {
        const { text } = summarise(envelope, payload);
        print(flowLine(service.name, '->', envelope.type, text));
      }),
      service.observe('handled', ({ queue, envelope, payload }) => {
        const { orderId } = summarise(envelope, payload);
        const mine = versions.get(`${queue} ${envelope.exchange}.${envelope.event}`);
        const converted =
          mine === undefined || mine === envelope.version
            ? ''
            : ` (${mine < envelope.version ? 'downcast' : 'upcast'} to v${mine})`;
        print(
          flowLine(
            service.name,
            '<-',
            envelope.type,
            `#${orderId}${converted}: ${outcome(envelope, orderId)}`,
          ),
        );
      }),
      service.observe('failed', ({ envelope, attempt, willRetry, error }) => {
        const why = error instanceof Error ? error.message : String(error);
        const next = willRetry ? 'will retry' : 'giving up';
        print(
          flowLine(
            service.name,
            '!!',
            envelope.type,
            `attempt ${attempt} failed (${next}): ${why}`,
          ),
        );
      }),
      service.observe('dead-lettered', ({ routingKey, reason }) => {
        print(flowLine(service.name, '!!', routingKey, `dead-lettered: ${reason}`));
      }),
    ];
  });
  // Through the outbox, Order's events are published later by its relay, not by the service.
  const relay = order?.relay?.observe('published', ({ routingKey, messageId }) =>
    print(flowLine('order', '->', routingKey, `${messageId} (from the outbox)`)),
  );
  return () => {
    for (const stop of stops) stop();
    relay?.();
  };
}

/** The version each handler of a service is written against, by `<queue> <exchange>.<event>`. */
function handlerVersions(service: Service): Map<string, number> {
  const out = new Map<string, number>();
  for (const h of service.describe().handlers) {
    for (const { event, version } of h.events) {
      out.set(`${h.queue} ${event.exchange.name}.${event.name}`, version);
    }
  }
  return out;
}

/** The order an event is about, and a short account of what it says. */
function summarise(envelope: Envelope, payload: unknown): { orderId: number; text: string } {
  switch (`${envelope.exchange}.${envelope.event}`) {
    case 'order.submit': {
      const o = Order.assert(payload);
      return {
        orderId: o.id,
        text: `#${o.id} (${plural(o.lines.length, 'line')}, ${formatCents(orderTotalCents(o))})`,
      };
    }
    case 'order.chargeback': {
      const c = Chargeback.assert(payload);
      return {
        orderId: c.orderId,
        text: `#${c.orderId} (${formatCents(toCents(c.amount))}, ${c.reason})`,
      };
    }
    case 'logistic.dispatched': {
      const d = Dispatched.assert(payload);
      return { orderId: d.orderId, text: `#${d.orderId} (${d.shipmentId} by ${d.carrier})` };
    }
    default:
      return { orderId: 0, text: '' };
  }
}

function describeEntry(
  billing: Pick<BillingService<BillingBooks>, 'books'>,
  messageId: string,
): string {
  // Books in PostgreSQL answer asynchronously; the narration reads the in-memory ledger only.
  const ledger = (billing.books as Partial<Books>).ledger;
  if (!ledger) return 'posted (see GET /journal)';
  const entry = ledger.journal().find((e) => e.messageId === messageId);
  if (!entry) return 'nothing to post';
  if (entry.reverses) return `posted ${entry.id}, reversing ${entry.reverses}`;
  const postings = entry.postings.map(
    (p) => `${p.side === 'debit' ? 'Dr' : 'Cr'} ${p.account} ${formatCents(p.cents)}`,
  );
  return `posted ${entry.id} (${postings.join(' / ')})`;
}
