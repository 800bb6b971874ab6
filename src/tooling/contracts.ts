import type { AnyEvent, Exchange } from '../contracts/event.js';
import { ContractsError } from './errors.js';

/** The exchanges and events found in a contracts module, sorted by name. */
export interface CollectedContracts {
  /** Every exchange exported, or referenced by an exported event. */
  readonly exchanges: readonly string[];
  /** One definition per `<exchange>.<event>`: the one with the most versions. */
  readonly events: readonly AnyEvent[];
}

/** True for an event made by `defineEvent` (or `.version()`), whichever copy of Tidings made it. */
export function isEventDefinition(value: unknown): value is AnyEvent {
  const v = value as Partial<AnyEvent> | null;
  return (
    typeof v === 'object' &&
    v !== null &&
    v.kind === 'event' &&
    typeof v.name === 'string' &&
    isExchange(v.exchange) &&
    Array.isArray(v.versions)
  );
}

/** True for an exchange made by `defineExchange`. */
export function isExchange(value: unknown): value is Exchange {
  const v = value as Partial<Exchange> | null;
  return typeof v === 'object' && v !== null && v.kind === 'exchange' && typeof v.name === 'string';
}

/** How deep {@link collectContracts} looks into exported plain objects and arrays. */
const MAX_DEPTH = 3;

/**
 * Finds the exchanges and events of a contracts module: its exports, and plain objects and arrays
 * among them (`export const events = { submit, chargeback }`), a few levels deep.
 *
 * An event exported at several stages of its history (`submitV1` and `submit = submitV1.version(...)`)
 * counts once, at its newest. Two definitions of one event whose versions disagree throw a
 * {@link ContractsError}: the module would describe two different contracts under one name.
 */
export function collectContracts(
  moduleNamespace: Readonly<Record<string, unknown>>,
): CollectedContracts {
  const exchanges = new Set<string>();
  const events = new Map<string, AnyEvent>();
  const seen = new Set<unknown>();
  const visit = (value: unknown, depth: number): void => {
    if (typeof value !== 'object' || value === null || seen.has(value)) return;
    seen.add(value);
    if (isExchange(value)) {
      exchanges.add(value.name);
    } else if (isEventDefinition(value)) {
      exchanges.add(value.exchange.name);
      addEvent(events, value);
    } else if (depth < MAX_DEPTH && (Array.isArray(value) || isPlainObject(value))) {
      for (const child of Object.values(value)) visit(child, depth + 1);
    }
  };
  visit({ ...moduleNamespace }, 0);
  return {
    exchanges: [...exchanges].sort(),
    events: [...events.values()].sort((a, b) => compare(eventKey(a), eventKey(b))),
  };
}

/** `<exchange>.<event>`, the identity of an event across its versions. */
export function eventKey(event: AnyEvent): string {
  return `${event.exchange.name}.${event.name}`;
}

function addEvent(events: Map<string, AnyEvent>, event: AnyEvent): void {
  const key = eventKey(event);
  const known = events.get(key);
  if (!known) {
    events.set(key, event);
    return;
  }
  const [shorter, longer] = known.latest <= event.latest ? [known, event] : [event, known];
  const agree = shorter.versions.every((v, i) => v.schema === longer.versions[i]?.schema);
  if (!agree) {
    throw new ContractsError(
      `${key} is defined twice with different schemas for the same version. Define each event ` +
        'once and add versions with .version(schema, upcast).',
    );
  }
  events.set(key, longer);
}

function isPlainObject(value: object): boolean {
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/** Compares strings by UTF-16 code units: the same order on every machine and locale. */
export function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
