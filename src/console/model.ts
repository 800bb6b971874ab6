import { eventKey } from '../tooling/contracts.js';
import type { Flows } from '../tooling/flows.js';
import { deadLetterQueueName } from '../transports/transport.js';

/** One handler queue as the page lists it. */
export interface ConsoleQueue {
  readonly queue: string;
  /** Its dead-letter queue, `<queue>.dlq`. */
  readonly dlq: string;
  readonly service: string;
  readonly handler: string;
  readonly bindings: readonly { readonly exchange: string; readonly pattern: string }[];
  /** Routing keys that reach the queue and that its handler reads. */
  readonly accepts: readonly string[];
  /** Routing keys that reach the queue and are dead-lettered there (unknown event or version). */
  readonly rejects: readonly string[];
  /** `order.submit v2`: each event the handler takes, with the version it is written against. */
  readonly reads: readonly string[];
}

/** One event of the topology, with its versions and publishers. */
export interface ConsoleEvent {
  readonly exchange: string;
  readonly event: string;
  readonly versions: readonly number[];
  readonly publishers: readonly { readonly service: string; readonly routingKey: string }[];
}

/** What the console knows of the running system: sent to the page once. */
export interface ConsoleModel {
  readonly services: readonly string[];
  readonly exchanges: readonly string[];
  readonly queues: readonly ConsoleQueue[];
  readonly events: readonly ConsoleEvent[];
}

/** The page's model of the flows between services. */
export function consoleModel(flows: Flows): ConsoleModel {
  const byQueue = new Map<string, Flows['subscriptions'][number][]>();
  for (const s of flows.subscriptions) byQueue.set(s.queue, [...(byQueue.get(s.queue) ?? []), s]);
  const queues = [...byQueue.entries()].map(([queue, subs]) => {
    const first = subs[0]!;
    const routed = [...new Set(subs.flatMap((s) => s.routed.map((v) => v.routingKey)))];
    const accepted = new Set(subs.flatMap((s) => s.accepted.map((v) => v.routingKey)));
    const reads = new Map<string, number>();
    for (const s of subs) for (const [key, version] of s.handlerVersions) reads.set(key, version);
    return {
      queue,
      dlq: deadLetterQueueName(queue),
      service: first.service,
      handler: first.handler,
      bindings: subs.map((s) => ({ exchange: s.exchange, pattern: s.pattern })),
      accepts: routed.filter((k) => accepted.has(k)),
      rejects: routed.filter((k) => !accepted.has(k)),
      reads: [...reads.entries()].map(([key, version]) => `${key} v${version}`).sort(),
    };
  });
  const events = new Map<string, ConsoleEvent & { versions: number[] }>();
  for (const v of flows.versions) {
    const key = eventKey(v.event);
    let e = events.get(key);
    if (!e) {
      e = {
        exchange: v.exchange,
        event: v.event.name,
        versions: [],
        publishers: flows.publications
          .filter((p) => eventKey(p.event) === key)
          .map((p) => ({ service: p.service, routingKey: p.routingKey })),
      };
      events.set(key, e);
    }
    e.versions.push(v.version.version);
  }
  return {
    services: flows.services,
    exchanges: flows.exchanges,
    queues: queues.sort((a, b) => (a.queue < b.queue ? -1 : a.queue > b.queue ? 1 : 0)),
    events: [...events.values()],
  };
}
