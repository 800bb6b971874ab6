import {
  Chargeback,
  Dispatched,
  formatCents,
  Order,
  orderTotalCents,
  toCents,
} from '@ecommerce/contracts';
import type { Envelope, Service } from 'tidings';
import { plural } from './scenario.js';
import type { Ecommerce } from './system.js';

/** Width of the service column: the longest name, `notification`. */
const WHO = 12;
/** Width of the event column: the longest routing key, `logistic.v1.dispatched`. */
const WHAT = 22;

/** Formats one line of the flow: who, an arrow (`->` published, `<-` handled), what, details. */
export function flowLine(who: string, arrow: string, what: string, details: string): string {
  return `${who.padEnd(WHO)} ${arrow} ${what.padEnd(WHAT)} ${details}`.trimEnd();
}

/**
 * Prints the flow of events as it happens: every message a service publishes (`->`) and handles
 * (`<-`), with what the message says and what the handler did, read back from the service's
 * domain. Failures and dead letters are printed too. Returns a function that stops printing.
 */
export function narrate(system: Ecommerce, print: (line: string) => void): () => void {
  const outcome: Record<string, (envelope: Envelope, orderId: number) => string> = {
    order: (_, orderId) => `order #${orderId} is now ${system.order.orders.get(orderId)?.status}`,
    billing: (envelope) => describeEntry(system, envelope.id),
    logistic: (envelope) => {
      const s = system.logistic.warehouse.list().find((x) => x.causedBy === envelope.id);
      return s ? `packed ${s.id} (${plural(s.items, 'item')})` : 'nothing to ship';
    },
    notification: (envelope) => {
      const n = system.notification.outbox.list().find((x) => x.messageId === envelope.id);
      return n ? `would email ${n.to}: "${n.subject}"` : 'nothing to send';
    },
  };
  const services: Service[] = [
    system.order.service,
    system.billing.service,
    system.logistic.service,
    system.notification.service,
  ];
  const stops = services.flatMap((service) => [
    service.observe('published', ({ envelope, payload }) => {
      const { text } = summarise(envelope, payload);
      print(flowLine(service.name, '->', envelope.type, text));
    }),
    service.observe('handled', ({ envelope, payload }) => {
      const { orderId } = summarise(envelope, payload);
      const did = outcome[service.name]?.(envelope, orderId) ?? 'handled';
      print(flowLine(service.name, '<-', envelope.type, `#${orderId}: ${did}`));
    }),
    service.observe('failed', ({ envelope, attempt, willRetry, error }) => {
      const why = error instanceof Error ? error.message : String(error);
      const next = willRetry ? 'will retry' : 'giving up';
      print(
        flowLine(service.name, '!!', envelope.type, `attempt ${attempt} failed (${next}): ${why}`),
      );
    }),
    service.observe('dead-lettered', ({ routingKey, reason }) => {
      print(flowLine(service.name, '!!', routingKey, `dead-lettered: ${reason}`));
    }),
  ]);
  return () => {
    for (const stop of stops) stop();
  };
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

function describeEntry(system: Ecommerce, messageId: string): string {
  const entry = system.billing.books.ledger.journal().find((e) => e.messageId === messageId);
  if (!entry) return 'nothing to post';
  if (entry.reverses) return `posted ${entry.id}, reversing ${entry.reverses}`;
  const postings = entry.postings.map(
    (p) => `${p.side === 'debit' ? 'Dr' : 'Cr'} ${p.account} ${formatCents(p.cents)}`,
  );
  return `posted ${entry.id} (${postings.join(' / ')})`;
}
