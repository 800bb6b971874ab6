import type { AnyEvent, EventVersion } from '../contracts/event.js';
import { compilePattern } from '../contracts/pattern.js';
import type { Service, ServiceDescription } from '../runtime/service.js';
import { collectContracts, compare, eventKey } from './contracts.js';

/** A service, or what its `describe()` returns. */
export type ServiceInput = Pick<Service, 'describe'> | ServiceDescription;

/** One routing key: an event version on its exchange. */
export interface RoutedVersion {
  readonly routingKey: string;
  readonly exchange: string;
  readonly event: AnyEvent;
  readonly version: EventVersion;
}

/** A service publishing the newest version of an event. */
export interface Publication {
  readonly service: string;
  readonly exchange: string;
  readonly event: AnyEvent;
  readonly routingKey: string;
}

/** One binding of a handler's queue, and the routing keys it lets through that the handler reads. */
export interface Subscription {
  readonly service: string;
  readonly handler: string;
  readonly queue: string;
  readonly exchange: string;
  readonly pattern: string;
  /** Every known routing key the binding matches: what reaches the queue through it. */
  readonly routed: readonly RoutedVersion[];
  /**
   * The routed keys whose event and version the handler accepts (older versions upcast, newer ones
   * downcast when their contract allows it); the others are dead-lettered (`unknown-event`, or
   * `unsupported-version`).
   */
  readonly accepted: readonly RoutedVersion[];
  /** For each accepted event (`<exchange>.<event>`), the version the handler is written against. */
  readonly handlerVersions: ReadonlyMap<string, number>;
  /** For a partitioned handler: its count of partitions (`<queue>.p0` …), by the events' key. */
  readonly partitions?: number | undefined;
}

/**
 * A subscription's queue as people read it: `billing.order.submit`, or for a partitioned handler
 * `billing.order.submit.p0…p7 (8 partitions by key)`.
 */
export function queueLabel(s: Subscription): string {
  if (s.partitions === undefined) return s.queue;
  const last = s.partitions - 1;
  const range = last === 0 ? `${s.queue}.p0` : `${s.queue}.p0…p${last}`;
  return `${range} (${s.partitions} partition${s.partitions === 1 ? '' : 's'} by key)`;
}

/** Who publishes and who consumes what: the input of AsyncAPI and the topology pictures. */
export interface Flows {
  /** Service names, sorted. */
  readonly services: readonly string[];
  /** Exchange names, sorted. */
  readonly exchanges: readonly string[];
  /** Every known event version, sorted by routing key. */
  readonly versions: readonly RoutedVersion[];
  readonly publications: readonly Publication[];
  readonly subscriptions: readonly Subscription[];
}

/** Reads `describe()` from a service, or returns a description as is. */
export function describeService(service: ServiceInput): ServiceDescription {
  return 'describe' in service ? service.describe() : service;
}

/**
 * Works out the flows between services: what each publishes (the newest version of each event in
 * its `publishes`), and for each handler binding, which routing keys it receives and accepts.
 * `contracts` (a contracts module's namespace) adds events that no service mentions.
 */
export function flowsOf(
  services: readonly ServiceInput[],
  contracts?: Readonly<Record<string, unknown>>,
): Flows {
  const descriptions = services.map(describeService);
  const versions = knownVersions(descriptions, contracts);
  const exchanges = new Set(versions.map((v) => v.exchange));
  const publications = descriptions.flatMap((d) =>
    d.publishes.map((event) => ({
      service: d.name,
      exchange: event.exchange.name,
      event,
      routingKey: event.routingKey(),
    })),
  );
  const subscriptions = descriptions.flatMap((d) => subscriptionsOf(d, versions));
  for (const s of subscriptions) exchanges.add(s.exchange);
  for (const name of contracts ? collectContracts(contracts).exchanges : []) exchanges.add(name);
  return {
    services: descriptions.map((d) => d.name).sort(),
    exchanges: [...exchanges].sort(),
    versions,
    publications: publications.sort((a, b) =>
      compare(a.service + a.routingKey, b.service + b.routingKey),
    ),
    subscriptions: subscriptions.sort((a, b) =>
      compare(`${a.service} ${a.queue} ${a.pattern}`, `${b.service} ${b.queue} ${b.pattern}`),
    ),
  };
}

function knownVersions(
  descriptions: readonly ServiceDescription[],
  contracts: Readonly<Record<string, unknown>> | undefined,
): RoutedVersion[] {
  const events = new Map<string, AnyEvent>();
  const add = (event: AnyEvent) => {
    const known = events.get(eventKey(event));
    if (!known || known.latest < event.latest) events.set(eventKey(event), event);
  };
  for (const event of contracts ? collectContracts(contracts).events : []) add(event);
  for (const d of descriptions) {
    d.publishes.forEach(add);
    for (const h of d.handlers) for (const e of h.events) add(e.event);
  }
  return [...events.values()]
    .flatMap((event) =>
      event.versions.map((version) => ({
        routingKey: version.routingKey,
        exchange: event.exchange.name,
        event,
        version,
      })),
    )
    .sort((a, b) => compare(a.routingKey, b.routingKey));
}

function subscriptionsOf(
  description: ServiceDescription,
  versions: readonly RoutedVersion[],
): Subscription[] {
  return description.handlers.flatMap((handler) => {
    const handlerVersions = new Map(handler.events.map((e) => [eventKey(e.event), e.version]));
    const handled = new Map(handler.events.map((e) => [eventKey(e.event), e]));
    return handler.bindings.map((binding) => {
      const matches = compilePattern(binding.pattern);
      const routed = versions.filter(
        (v) => v.exchange === binding.exchange && matches(v.routingKey),
      );
      const accepted = routed.filter((v) => {
        const h = handled.get(eventKey(v.event));
        return h !== undefined && reads(h.event, h.version, v.version.version);
      });
      return {
        service: description.name,
        handler: handler.name,
        queue: handler.queue,
        exchange: binding.exchange,
        pattern: binding.pattern,
        routed,
        accepted,
        handlerVersions,
        ...(handler.partitions ? { partitions: handler.partitions.count } : {}),
      };
    });
  });
}

/**
 * Whether a handler written against `version` of `event` takes messages of `wire` version: older
 * ones are upcast; newer ones only when every version down to the handler's declares a downcast.
 */
export function reads(event: AnyEvent, version: number, wire: number): boolean {
  if (wire <= version) return true;
  if (wire > event.latest) return false;
  for (let v = wire; v > version; v--) {
    if (!event.versions[v - 1]?.downcast) return false;
  }
  return true;
}

/** `, upcast to v2` or `, downcast to v1` when a handler reads another version than the wire's. */
export function conversion(s: Subscription, v: RoutedVersion): string {
  const target = s.handlerVersions.get(eventKey(v.event)) ?? v.version.version;
  if (target === v.version.version) return '';
  return `, ${target > v.version.version ? 'upcast' : 'downcast'} to v${target}`;
}
