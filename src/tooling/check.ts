import { compare } from './contracts.js';
import type {
  ContractSnapshot,
  SnapshotEvent,
  SnapshotExchange,
  SnapshotVersion,
} from './snapshot.js';

/** What {@link checkCompatibility} found wrong; stable, safe to match on. */
export type CompatibilityCode =
  | 'exchange-removed'
  | 'event-removed'
  | 'version-removed'
  | 'schema-changed'
  | 'upcaster-missing'
  | 'upcaster-removed'
  | 'downcaster-removed';

/** One change that would break a producer or a consumer. */
export interface CompatibilityProblem {
  readonly code: CompatibilityCode;
  /** What changed, why it breaks, and what to do instead. */
  readonly message: string;
  readonly exchange: string;
  readonly event?: string;
  readonly version?: number;
}

/**
 * Compares the contracts of a later commit with a committed snapshot and lists every change that
 * would break a running producer or consumer, in a stable order. An empty list means the change is
 * safe. What is checked, and why, is in `docs/contracts.md`:
 *
 * - `exchange-removed`, `event-removed`: an exchange or event is gone (removed or renamed);
 * - `version-removed`: a published version is gone;
 * - `schema-changed`: a published version's schema changed at all (published versions are
 *   immutable; add a version instead);
 * - `upcaster-missing`: a new version has no upcaster from the one before it;
 * - `upcaster-removed`: a published version lost its upcaster;
 * - `downcaster-removed`: a published version lost its downcaster.
 *
 * Adding exchanges, events, versions with upcasters, and downcasters is always fine.
 */
export function checkCompatibility(
  previous: ContractSnapshot,
  current: ContractSnapshot,
): CompatibilityProblem[] {
  const problems: CompatibilityProblem[] = [];
  for (const [name, before] of sorted(previous.exchanges)) {
    const after = current.exchanges[name];
    if (after) {
      checkExchange(name, before, after, problems);
    } else {
      problems.push(exchangeRemoved(name, before, previous, current));
    }
  }
  return problems;
}

function checkExchange(
  exchange: string,
  before: SnapshotExchange,
  after: SnapshotExchange,
  problems: CompatibilityProblem[],
): void {
  for (const [name, previous] of sorted(before.events)) {
    const current = after.events[name];
    if (current) {
      checkEvent(exchange, name, previous, current, problems);
    } else {
      problems.push(eventRemoved(exchange, name, previous, before, after));
    }
  }
}

function checkEvent(
  exchange: string,
  event: string,
  before: SnapshotEvent,
  after: SnapshotEvent,
  problems: CompatibilityProblem[],
): void {
  const where = { exchange, event };
  for (const previous of before.versions) {
    const current = after.versions[previous.version - 1];
    if (!current) {
      problems.push({
        code: 'version-removed',
        ...where,
        version: previous.version,
        message:
          `${previous.routingKey} was removed. Messages of that version may still sit in queues, ` +
          'and producers not yet upgraded still send them; consumers could no longer read them. ' +
          'A published version stays for good: put it back.',
      });
      continue;
    }
    const next = Math.max(before.versions.length, after.versions.length) + 1;
    checkPublishedVersion(where, previous, current, next, problems);
  }
  for (const added of after.versions.slice(before.versions.length)) {
    if (added.version > 1 && !added.hasUpcaster) {
      problems.push({
        code: 'upcaster-missing',
        ...where,
        version: added.version,
        message:
          `${added.routingKey} is new but has no upcaster from version ${added.version - 1}: a ` +
          `consumer written against it could not read the version ${added.version - 1} messages ` +
          'still being published. Declare it with .version(schema, upcast).',
      });
    }
  }
}

function checkPublishedVersion(
  where: { exchange: string; event: string },
  previous: SnapshotVersion,
  current: SnapshotVersion,
  next: number,
  problems: CompatibilityProblem[],
): void {
  const changes = diffPaths(previous.schema, current.schema, '');
  if (changes.length > 0) {
    const shown = changes.slice(0, 5).join(', ');
    const more = changes.length > 5 ? ` and ${changes.length - 5} more` : '';
    problems.push({
      code: 'schema-changed',
      ...where,
      version: previous.version,
      message:
        `${previous.routingKey} changed its schema (at ${shown}${more}). A published version is ` +
        'immutable: its messages already exist, and services built on the old schema still run. ' +
        `Revert it, and make the new schema version ${next}, with an upcaster.`,
    });
  }
  if (previous.hasDowncaster === true && current.hasDowncaster !== true) {
    problems.push({
      code: 'downcaster-removed',
      ...where,
      version: previous.version,
      message:
        `${previous.routingKey} lost its downcaster to version ${previous.version - 1}: consumers ` +
        `still on version ${previous.version - 1} receive it today and would dead-letter it. Put it back.`,
    });
  }
  if (previous.hasUpcaster && !current.hasUpcaster) {
    problems.push({
      code: 'upcaster-removed',
      ...where,
      version: previous.version,
      message:
        `${previous.routingKey} lost its upcaster from version ${previous.version - 1}: consumers ` +
        `on version ${previous.version} or later could no longer read older messages. Put it back.`,
    });
  }
}

function exchangeRemoved(
  name: string,
  before: SnapshotExchange,
  previous: ContractSnapshot,
  current: ContractSnapshot,
): CompatibilityProblem {
  const eventNames = Object.keys(before.events).sort().join(',');
  const renamedTo = Object.entries(current.exchanges)
    .filter(([other]) => !(other in previous.exchanges))
    .filter(([, exchange]) => Object.keys(exchange.events).sort().join(',') === eventNames)
    .map(([other]) => other);
  return {
    code: 'exchange-removed',
    exchange: name,
    message:
      `exchange "${name}" is gone${renamedHint(renamedTo)}. Queues bound to it would receive ` +
      'nothing more, and services built against the old contracts publish to it still. Keep it; ' +
      'to move, add the new exchange beside it and retire the old one once nobody uses it.',
  };
}

function eventRemoved(
  exchange: string,
  name: string,
  previous: SnapshotEvent,
  before: SnapshotExchange,
  after: SnapshotExchange,
): CompatibilityProblem {
  const first = JSON.stringify(previous.versions[0]?.schema);
  const renamedTo = Object.entries(after.events)
    .filter(([other]) => !(other in before.events))
    .filter(([, event]) => JSON.stringify(event.versions[0]?.schema) === first)
    .map(([other]) => `${exchange}.${other}`);
  return {
    code: 'event-removed',
    exchange,
    event: name,
    message:
      `event ${exchange}.${name} is gone${renamedHint(renamedTo)}. Its consumers would receive ` +
      'nothing more, and its routing keys are part of running services. Keep it; add a new ' +
      'event beside it if the name must change.',
  };
}

function renamedHint(candidates: readonly string[]): string {
  return candidates.length > 0
    ? ` (renamed to ${candidates.map((c) => `"${c}"`).join(' or ')}?)`
    : ' (removed or renamed)';
}

function sorted<T>(record: Readonly<Record<string, T>>): [string, T][] {
  return Object.entries(record).sort(([a], [b]) => compare(a, b));
}

/**
 * The JSON Pointers at which two JSON values differ, in document order. Object keys compare
 * regardless of their order; array items by position.
 */
export function diffPaths(a: unknown, b: unknown, path: string): string[] {
  if (Object.is(a, b)) return [];
  const bothArrays = Array.isArray(a) && Array.isArray(b);
  const bothObjects = isRecord(a) && isRecord(b);
  if (!bothArrays && !bothObjects) return [path || '/'];
  if (bothArrays) {
    if (a.length !== b.length) return [path || '/'];
    return a.flatMap((item, i) => diffPaths(item, b[i], `${path}/${i}`));
  }
  const ra = a as Record<string, unknown>;
  const rb = b as Record<string, unknown>;
  const keys = [...new Set([...Object.keys(ra), ...Object.keys(rb)])].sort();
  return keys.flatMap((key) => diffPaths(ra[key], rb[key], `${path}/${escapePointer(key)}`));
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function escapePointer(key: string): string {
  return key.replace(/~/g, '~0').replace(/\//g, '~1');
}
