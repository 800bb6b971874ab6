import type { AnyEvent } from '../contracts/event.js';
import { collectContracts } from './contracts.js';
import { SnapshotFormatError } from './errors.js';
import {
  canonicalSchema,
  type JsonSchema,
  type JsonSchemaOptions,
  toJsonSchema,
} from './json-schema.js';

/** The value of `format` in every snapshot. */
export const SNAPSHOT_FORMAT = 'tidings-contracts';
/** The snapshot layout this version of Tidings writes and reads. */
export const SNAPSHOT_FORMAT_VERSION = 1;

/**
 * The contracts of a package at one point in time: exchanges, events, and every version with its
 * routing key and the JSON Schema of its payload. Meant to be committed, and compared with the
 * contracts of a later commit by {@link checkCompatibility}.
 *
 * Everything is sorted (exchanges and events by name, versions by number, schema keys
 * alphabetically), so the same contracts always give the same bytes.
 */
export interface ContractSnapshot {
  readonly format: typeof SNAPSHOT_FORMAT;
  readonly formatVersion: typeof SNAPSHOT_FORMAT_VERSION;
  /** The JSON Schema dialect of every `schema` below. */
  readonly jsonSchemaDialect: string;
  /** Exchanges by name. */
  readonly exchanges: Readonly<Record<string, SnapshotExchange>>;
  /** Schemas that could not be converted to JSON Schema, and are recorded as `{}`. */
  readonly warnings: readonly string[];
}

/** One exchange of a {@link ContractSnapshot}. */
export interface SnapshotExchange {
  /** Events by name. */
  readonly events: Readonly<Record<string, SnapshotEvent>>;
}

/** One event of a {@link ContractSnapshot}. */
export interface SnapshotEvent {
  /** Versions 1..N in order. */
  readonly versions: readonly SnapshotVersion[];
}

/** One version of an event in a {@link ContractSnapshot}. */
export interface SnapshotVersion {
  readonly version: number;
  /** `<exchange>.v<version>.<event>`. */
  readonly routingKey: string;
  /** Whether the version declares an upcaster from the previous one (always false for version 1). */
  readonly hasUpcaster: boolean;
  /**
   * Whether the version declares a downcaster to the previous one, so that consumers of the
   * previous version receive it too. Snapshots written before downcasters existed lack it: false.
   */
  readonly hasDowncaster?: boolean;
  /** JSON Schema (draft 2020-12) of the payload a consumer accepts; `{}` when unknown. */
  readonly schema: JsonSchema;
}

const DIALECT = 'https://json-schema.org/draft/2020-12/schema';

/**
 * Takes a snapshot of a contracts module. `contracts` is the module's namespace
 * (`await import('./contracts.js')`), or any object whose values (or their values, a few levels
 * deep) are exchanges and events; see {@link collectContracts}.
 */
export async function snapshot(
  contracts: Readonly<Record<string, unknown>>,
  options: JsonSchemaOptions = {},
): Promise<ContractSnapshot> {
  const collected = collectContracts(contracts);
  const exchanges: Record<string, { events: Record<string, SnapshotEvent> }> = {};
  for (const name of collected.exchanges) exchanges[name] = { events: {} };
  const warnings: string[] = [];
  for (const event of collected.events) {
    const versions = await snapshotVersions(event, options, warnings);
    exchanges[event.exchange.name]!.events[event.name] = { versions };
  }
  return {
    format: SNAPSHOT_FORMAT,
    formatVersion: SNAPSHOT_FORMAT_VERSION,
    jsonSchemaDialect: DIALECT,
    exchanges,
    warnings: warnings.sort(),
  };
}

async function snapshotVersions(
  event: AnyEvent,
  options: JsonSchemaOptions,
  warnings: string[],
): Promise<SnapshotVersion[]> {
  const versions: SnapshotVersion[] = [];
  for (const v of event.versions) {
    const converted = await toJsonSchema(v.schema, 'draft-2020-12', v.routingKey, options);
    if (converted.warning) warnings.push(converted.warning);
    const { $schema: _dialect, ...schema } = converted.schema;
    versions.push({
      version: v.version,
      routingKey: v.routingKey,
      hasUpcaster: v.upcast !== undefined,
      hasDowncaster: v.downcast !== undefined,
      schema: canonicalSchema(schema),
    });
  }
  return versions;
}

/** A snapshot as the text to commit: two-space indented JSON with a final newline. */
export function formatSnapshot(value: ContractSnapshot): string {
  return `${JSON.stringify(value, null, 2)}\n`;
}

/**
 * Reads a snapshot from its JSON text (or already parsed JSON), checking its shape. Throws a
 * {@link SnapshotFormatError} listing every problem with its path.
 */
export function parseSnapshot(input: string | unknown): ContractSnapshot {
  let value: unknown = input;
  if (typeof input === 'string') {
    try {
      value = JSON.parse(input);
    } catch (error) {
      throw new SnapshotFormatError([`not JSON: ${(error as Error).message}`]);
    }
  }
  const problems: string[] = [];
  checkRoot(value, problems);
  if (problems.length > 0) throw new SnapshotFormatError(problems);
  return value as ContractSnapshot;
}

type Json = Record<string, unknown>;

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function checkRoot(value: unknown, problems: string[]): void {
  if (!isObject(value)) {
    problems.push('$: expected an object');
    return;
  }
  if (value.format !== SNAPSHOT_FORMAT) {
    problems.push(`$.format: expected "${SNAPSHOT_FORMAT}"`);
  }
  if (value.formatVersion !== SNAPSHOT_FORMAT_VERSION) {
    problems.push(
      `$.formatVersion: expected ${SNAPSHOT_FORMAT_VERSION} (got ${JSON.stringify(value.formatVersion)}); ` +
        'a snapshot from another Tidings version needs that version, or a new snapshot',
    );
  }
  if (!Array.isArray(value.warnings)) problems.push('$.warnings: expected an array');
  if (!isObject(value.exchanges)) {
    problems.push('$.exchanges: expected an object');
    return;
  }
  for (const [name, exchange] of Object.entries(value.exchanges)) {
    checkExchange(exchange, `$.exchanges.${name}`, problems);
  }
}

function checkExchange(value: unknown, path: string, problems: string[]): void {
  if (!isObject(value) || !isObject(value.events)) {
    problems.push(`${path}.events: expected an object`);
    return;
  }
  for (const [name, event] of Object.entries(value.events)) {
    const at = `${path}.events.${name}.versions`;
    const versions = isObject(event) ? event.versions : undefined;
    if (!Array.isArray(versions)) {
      problems.push(`${at}: expected an array`);
      continue;
    }
    versions.forEach((v: unknown, i) => {
      checkVersion(v, i + 1, `${at}[${i}]`, problems);
    });
  }
}

function checkVersion(value: unknown, expected: number, path: string, problems: string[]): void {
  if (!isObject(value)) {
    problems.push(`${path}: expected an object`);
    return;
  }
  if (value.version !== expected) problems.push(`${path}.version: expected ${expected}`);
  if (typeof value.routingKey !== 'string') problems.push(`${path}.routingKey: expected a string`);
  if (typeof value.hasUpcaster !== 'boolean') {
    problems.push(`${path}.hasUpcaster: expected a boolean`);
  }
  if (value.hasDowncaster !== undefined && typeof value.hasDowncaster !== 'boolean') {
    problems.push(`${path}.hasDowncaster: expected a boolean`);
  }
  if (!isObject(value.schema)) problems.push(`${path}.schema: expected an object`);
}
