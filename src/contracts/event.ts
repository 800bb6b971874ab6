import type { StandardSchemaV1 } from '@standard-schema/spec';
import { PartitionKeyError } from '../errors.js';
import { type KeyFunction, keyText } from './key.js';
import { assertFits, assertName } from './names.js';

/** Any schema that implements Standard Schema v1 (zod, valibot, arktype, ...). */
export type AnySchema = StandardSchemaV1;

/** The type a schema accepts (what `publish` takes). */
export type SchemaInput<S extends AnySchema> = StandardSchemaV1.InferInput<S>;
/** The type a schema produces after validation (what a handler receives). */
export type SchemaOutput<S extends AnySchema> = StandardSchemaV1.InferOutput<S>;

/**
 * A named topic space owned by one producing domain, such as `order`. On RabbitMQ it is a durable
 * topic exchange of the same name.
 */
export interface Exchange<Name extends string = string> {
  readonly kind: 'exchange';
  readonly name: Name;
  /** How its events travel when the publisher does not say otherwise. @defaultValue 'tidings' */
  readonly format: WireFormat;
}

/**
 * A wire format: `tidings` is the payload's JSON with CloudEvents headers; `celery` is Celery
 * task protocol v2, which Celery workers (such as the seed's Python services) execute.
 */
export type WireFormat = 'tidings' | 'celery';

/** Options of {@link defineExchange}. */
export interface ExchangeOptions {
  /**
   * Wire format of the events published to this exchange, e.g. `celery` while Celery workers
   * consume it. Consumers read both formats whatever this says.
   * @defaultValue 'tidings'
   */
  readonly format?: WireFormat | undefined;
}

/**
 * Declares an exchange. The name is lowercase `[a-z0-9_-]+`; anything else throws an
 * {@link InvalidNameError} naming the problem.
 */
export function defineExchange<const Name extends string>(
  name: Name,
  options: ExchangeOptions = {},
): Exchange<Name> {
  assertName('exchange', name);
  const format = options.format ?? 'tidings';
  if (format !== 'tidings' && format !== 'celery') {
    throw new TypeError(
      `exchange ${name}: format must be "tidings" or "celery" (got ${String(format)})`,
    );
  }
  return Object.freeze({ kind: 'exchange', name, format });
}

/** One version of an event, as the runtime sees it. */
export interface EventVersion {
  /** 1-based version number. */
  readonly version: number;
  readonly schema: AnySchema;
  /** `<exchange>.v<version>.<event>`, e.g. `order.v1.submit`. */
  readonly routingKey: string;
  /** Converts a validated payload of the previous version into this version's input. */
  readonly upcast: ((previous: unknown) => unknown) | undefined;
  /**
   * Converts a validated payload of this version into the previous version's input, when the
   * contract allows consumers of the previous version to receive this one during a migration.
   */
  readonly downcast: ((next: unknown) => unknown) | undefined;
  /**
   * The key of a validated payload of this version (see {@link EventOptions.key}), or `undefined`
   * when the event has no key in this version.
   */
  readonly key: KeyFunction<unknown> | undefined;
}

/** Options of {@link defineEvent}. */
export interface EventOptions<P> {
  /**
   * What this event's messages must stay in order by: the customer of an order, the account of a
   * payment (an aggregate's id). Returns a non-empty string or a finite number. The producer puts
   * it on every message (`tidings-key`, and its bucket in `tidings-bucket`), so a consumer can
   * spread one handler over partitions and still see each key's messages in order
   * (docs/scaling.md). Consumers that do not partition ignore it. Later versions must say their
   * own key (their payload may differ).
   * @defaultValue none: messages carry no key
   */
  readonly key?: KeyFunction<P> | undefined;
}

/** Options of a new version. */
export interface VersionOptions<Previous, Next> {
  /**
   * Lets handlers written against the previous version receive this one, converted. Without it,
   * they dead-letter it (`unsupported-version`) until they are upgraded. Declare it when the new
   * version only adds information, so producers can move first.
   */
  readonly downcast?: ((next: Next) => Previous) | undefined;
  /**
   * This version's key (see {@link EventOptions.key}). Required when the previous version has
   * one, so a new version cannot silently stop carrying the key partitioned consumers rely on.
   */
  readonly key?: KeyFunction<Next> | undefined;
}

/**
 * A named fact in an exchange (`order.submit`) with versions 1..N, each with its own schema.
 * Created by {@link defineEvent}; `.version()` returns a new definition with one more version.
 *
 * The type parameters carry the exchange name, the event name and the tuple of schemas, so the
 * payload type of every version is known wherever the event is used.
 */
export interface EventDefinition<
  X extends string = string,
  N extends string = string,
  V extends readonly AnySchema[] = readonly AnySchema[],
> {
  readonly kind: 'event';
  readonly exchange: Exchange<X>;
  readonly name: N;
  /** Versions in order; `versions[k - 1]` is version k. */
  readonly versions: readonly EventVersion[];
  /** The newest version number (N). */
  readonly latest: number;
  /** Phantom field carrying the schema tuple for the type system; always `undefined` at run time. */
  readonly '~schemas'?: V;
  /** The routing key of a version (default: the newest). */
  routingKey(version?: number): string;
  /**
   * Adds version N+1 with its schema and an upcaster from version N. The upcaster receives a
   * validated payload of version N and returns the input for the new schema, which validates it.
   * Returns a new definition; the original is unchanged.
   */
  version<S extends AnySchema>(
    schema: S,
    upcast: (previous: SchemaOutput<LastOf<V>>) => SchemaInput<S>,
    options?: VersionOptions<SchemaInput<LastOf<V>>, SchemaOutput<S>>,
  ): EventDefinition<X, N, readonly [...V, S]>;
}

/** Any event definition, whatever its names and schemas. */
// biome-ignore lint/suspicious/noExplicitAny: the widest event type must accept every schema tuple
export type AnyEvent = EventDefinition<string, string, any>;

type LastOf<V extends readonly AnySchema[]> = V extends readonly [
  ...unknown[],
  infer L extends AnySchema,
]
  ? L
  : AnySchema;

// Version k lives at index k - 1. A lookup table instead of recursive tuple arithmetic keeps the
// types shallow, so generic handler wrappers (`on(event, wrap(fn))`) still infer.
type IndexOfVersion = [
  never,
  0,
  1,
  2,
  3,
  4,
  5,
  6,
  7,
  8,
  9,
  10,
  11,
  12,
  13,
  14,
  15,
  16,
  17,
  18,
  19,
  20,
  21,
  22,
  23,
  24,
  25,
  26,
  27,
  28,
  29,
  30,
  31,
];

/** The schema tuple of an event. */
export type SchemasOf<E extends AnyEvent> =
  E extends EventDefinition<string, string, infer V> ? V : never;

/** The version numbers an event has, as a union of number literals (`1 | 2`). */
export type VersionOf<E extends AnyEvent> = VersionNumbers<SchemasOf<E>>;
type VersionNumbers<V extends readonly unknown[], Acc extends unknown[] = []> = V extends readonly [
  unknown,
  ...infer Rest,
]
  ? [...Acc, unknown]['length'] | VersionNumbers<Rest, [...Acc, unknown]>
  : never;

/** The newest version number of an event, as a literal type. */
export type LatestVersionOf<E extends AnyEvent> = SchemasOf<E>['length'];

/** The schema of version `Ver` of an event. */
export type SchemaAt<E extends AnyEvent, Ver extends number> = SchemasOf<E>[IndexOfVersion[Ver] &
  number] extends infer S extends AnySchema
  ? S
  : never;

/** What `publish` accepts for version `Ver` (default: newest) of an event. */
export type PayloadInput<E extends AnyEvent, Ver extends number = LatestVersionOf<E>> = SchemaInput<
  SchemaAt<E, Ver>
>;
/** What a handler written against version `Ver` (default: newest) of an event receives. */
export type Payload<E extends AnyEvent, Ver extends number = LatestVersionOf<E>> = SchemaOutput<
  SchemaAt<E, Ver>
>;

/** Builds the routing key `<exchange>.v<version>.<event>`. */
export function routingKeyOf(exchange: string, event: string, version: number): string {
  return `${exchange}.v${version}.${event}`;
}

const ROUTING_KEY = /^([a-z0-9_-]+)\.v([1-9][0-9]*)\.([a-z0-9_-]+)$/;

/** Splits a Tidings routing key into its parts, or returns `undefined` if it is not one. */
export function parseRoutingKey(
  key: string,
): { exchange: string; version: number; event: string } | undefined {
  const m = ROUTING_KEY.exec(key);
  if (!m) return undefined;
  return { exchange: m[1]!, version: Number(m[2]), event: m[3]! };
}

/** Room left for `.v<version>` with up to four digits, so later versions still fit. */
const VERSION_ROOM = 'v9999';

/**
 * Declares an event of an exchange with its first version's schema. Add versions with
 * `.version(schema, upcast)`.
 *
 * ```ts
 * const order = defineExchange('order');
 * const submit = defineEvent(order, 'submit', OrderSchema); // order.v1.submit
 * ```
 */
export function defineEvent<const X extends string, const N extends string, S extends AnySchema>(
  exchange: Exchange<X>,
  name: N,
  schema: S,
  options: EventOptions<SchemaOutput<S>> = {},
): EventDefinition<X, N, readonly [S]> {
  if (exchange?.kind !== 'exchange') {
    throw new TypeError('defineEvent: the first argument must come from defineExchange()');
  }
  assertName('event', name);
  assertFits('routing key', `${exchange.name}.${VERSION_ROOM}.${name}`);
  assertSchema(schema, `${exchange.name}.${name}`);
  return makeEvent(exchange, name, [
    {
      version: 1,
      schema,
      routingKey: routingKeyOf(exchange.name, name, 1),
      upcast: undefined,
      downcast: undefined,
      key: checkedKey(options?.key, `${exchange.name}.${name}`),
    },
  ]);
}

function makeEvent<X extends string, N extends string, V extends readonly AnySchema[]>(
  exchange: Exchange<X>,
  name: N,
  versions: readonly EventVersion[],
): EventDefinition<X, N, V> {
  const keys = versions.map((v) => v.routingKey);
  const latest = versions.length;
  const definition: EventDefinition<X, N, V> = {
    kind: 'event',
    exchange,
    name,
    versions: Object.freeze([...versions]),
    latest,
    routingKey(version = latest) {
      const key = keys[version - 1];
      if (key === undefined) {
        throw new RangeError(
          `${exchange.name}.${name} has versions 1..${latest}; there is no version ${version}`,
        );
      }
      return key;
    },
    version(schema, upcast, options) {
      assertSchema(schema, `${exchange.name}.${name}`);
      if (typeof upcast !== 'function') {
        throw new TypeError(
          `${exchange.name}.${name}: version ${latest + 1} needs an upcaster from version ${latest}`,
        );
      }
      const next = latest + 1;
      const key = checkedKey(options?.key, `${exchange.name}.${name}`);
      if (key === undefined && versions[latest - 1]!.key !== undefined) {
        throw new TypeError(
          `${exchange.name}.${name}: version ${next} needs a key, since version ${latest} has one (pass { key } to .version())`,
        );
      }
      return makeEvent(exchange, name, [
        ...versions,
        {
          version: next,
          schema,
          routingKey: routingKeyOf(exchange.name, name, next),
          upcast: upcast as (previous: unknown) => unknown,
          downcast: options?.downcast as ((next: unknown) => unknown) | undefined,
          key: key as KeyFunction<unknown> | undefined,
        },
      ]);
    },
  };
  return Object.freeze(definition);
}

function checkedKey<P>(key: unknown, where: string): KeyFunction<P> | undefined {
  if (key === undefined) return undefined;
  if (typeof key !== 'function') {
    throw new TypeError(`${where}: key must be a function of the payload (got ${typeof key})`);
  }
  return key as KeyFunction<P>;
}

/** Whether any version of an event has a key (see {@link EventOptions.key}). */
export function isKeyed(event: AnyEvent): boolean {
  return event.versions.some((v) => v.key !== undefined);
}

/**
 * The key of a validated payload of one version, as it travels (see `keyText`), or `undefined`
 * when that version has no key. Throws a `PartitionKeyError` when the key function throws or
 * returns something that is not a non-empty string or a finite number.
 */
export function keyOf(spec: EventVersion, payload: unknown): string | undefined {
  if (!spec.key) return undefined;
  let value: unknown;
  try {
    value = spec.key(payload);
  } catch (error) {
    throw new PartitionKeyError(
      spec.routingKey,
      `the contract's key function threw (${String(error)})`,
      {
        cause: error,
      },
    );
  }
  const text = keyText(value);
  if (text === undefined) {
    throw new PartitionKeyError(
      spec.routingKey,
      `the contract's key function must return a non-empty string or a finite number (got ${describeKeyValue(value)})`,
    );
  }
  return text;
}

/** How a value that is not a key is named in an error. */
export function describeKeyValue(value: unknown): string {
  if (typeof value === 'string') return 'an empty string';
  if (typeof value === 'number') return String(value);
  return value === null ? 'null' : typeof value;
}

function assertSchema(schema: unknown, where: string): void {
  const std = (schema as StandardSchemaV1 | undefined)?.['~standard'];
  if (std?.version !== 1 || typeof std.validate !== 'function') {
    throw new TypeError(
      `${where}: the schema does not implement Standard Schema v1 (zod 3.24+, valibot 1, arktype 2 do)`,
    );
  }
}
