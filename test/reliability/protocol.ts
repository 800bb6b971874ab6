/**
 * What the reliability tests and their consumer processes share: the contract of the messages,
 * the consumer's configuration, the lines it reports on stdout, and the deterministic fault
 * injection. Nothing here touches a broker.
 */
import { z } from 'zod';
import { defineEvent, defineExchange } from '../../src/contracts/event.js';

/** The payload of every message in these tests: an order, as the example's contracts have it. */
export const TestOrder = z.object({
  id: z.number().int().nonnegative(),
  lines: z.array(
    z.object({
      id: z.number().int(),
      quantity: z.number().int().positive(),
      price: z.number().nonnegative(),
    }),
  ),
});

/** The type of {@link TestOrder}. */
export type TestOrder = z.infer<typeof TestOrder>;

/** `<exchange>.v1.submit`, on an exchange with a name unique to one test. */
export function submitEvent(exchange: string) {
  return defineEvent(defineExchange(exchange), 'submit', TestOrder);
}

/** A small valid order whose id is `id`. */
export function order(id: number): TestOrder {
  return { id, lines: [{ id: 1, quantity: 1 + (id % 3), price: 2.5 }] };
}

/** Faults a consumer injects into its handler. */
export type FaultConfig =
  | { readonly kind: 'none' }
  /**
   * Throws a plain (retryable) error on `rate` of the calls, chosen by {@link transientFailure}
   * from the seed, the order id and the attempt; throws `NonRetryableError` for the ids in
   * `nonRetryable`, and a plain error on every attempt for the ids in `alwaysFail`.
   */
  | {
      readonly kind: 'flaky';
      readonly seed: number;
      readonly rate: number;
      readonly nonRetryable: readonly number[];
      readonly alwaysFail: readonly number[];
    }
  /** Throws a plain error on every call: the bug a replay is run after fixing. */
  | { readonly kind: 'broken' };

/** Where a handler records its effect, so a test can count effects exactly. */
export type EffectConfig =
  | { readonly kind: 'none' }
  /** `HINCRBY <key> <order id> 1` in Redis: the field's value is how often the effect happened. */
  | { readonly kind: 'redis-counter'; readonly key: string }
  /**
   * `INSERT INTO <table> (order_id, message_id, consumer)`, in the transaction of a
   * `PostgresInbox` whose table is `inboxTable`. The effects table has no unique constraint, so a
   * second effect would show as a second row instead of failing.
   */
  | { readonly kind: 'pg-inbox'; readonly table: string; readonly inboxTable: string };

/** An idempotency store in front of a handler. */
export type StoreConfig =
  | { readonly kind: 'none' }
  | { readonly kind: 'redis'; readonly keyPrefix: string }
  | { readonly kind: 'postgres'; readonly table: string };

/** One Tidings service of a consumer process, with one handler for `<exchange>.*.submit`. */
export interface HandlerConfig {
  /** The service's name; its queue is `<service>.<exchange>.submit`. */
  readonly service: string;
  readonly faults: FaultConfig;
  readonly effect: EffectConfig;
  readonly store: StoreConfig;
}

/** How a consumer process is set up; passed as JSON in {@link CONSUMER_ENV}. */
export interface ConsumerConfig {
  /** Shown in the consumer's reports and its connection name. */
  readonly label: string;
  readonly amqpUrl: string;
  readonly redisUrl: string;
  readonly databaseUrl: string;
  readonly exchange: string;
  readonly handlers: readonly HandlerConfig[];
  readonly prefetch: number;
  /** Bodies over this many bytes are dead-lettered unparsed (`oversize`). */
  readonly maxMessageBytes?: number;
  readonly retry?: {
    readonly maxAttempts: number;
    readonly baseDelayMs: number;
    readonly factor: number;
    readonly maxDelayMs: number;
  };
}

/** The environment variable holding the consumer's {@link ConsumerConfig}. */
export const CONSUMER_ENV = 'TIDINGS_RELIABILITY_CONSUMER';

/**
 * What a consumer process writes on stdout, one line each:
 *
 * - `ready`: every service is consuming;
 * - `h <service> <order id> <message id> <attempt> <redelivered 0|1>`: the handler was called;
 * - `ok <service> <order id>`: the handler returned (the message is being acknowledged);
 * - `dup <service> <message id>`: a duplicate was acknowledged without running the effect;
 * - `dead <service> <reason> <message id or ->`: a message went to the dead-letter queue;
 * - `proto <service> <order id>`: a payload arrived with a prototype other than `Object.prototype`;
 * - `bye <json>`: the process stopped cleanly; the JSON is a {@link ConsumerSummary}.
 */
export type ConsumerLine =
  | { readonly kind: 'ready' }
  | {
      readonly kind: 'h';
      readonly service: string;
      readonly orderId: number;
      readonly messageId: string;
      readonly attempt: number;
      readonly redelivered: boolean;
    }
  | { readonly kind: 'ok'; readonly service: string; readonly orderId: number }
  | { readonly kind: 'dup'; readonly service: string; readonly messageId: string }
  | {
      readonly kind: 'dead';
      readonly service: string;
      readonly reason: string;
      readonly messageId: string | undefined;
    }
  | { readonly kind: 'proto'; readonly service: string; readonly orderId: number }
  | { readonly kind: 'bye'; readonly summary: ConsumerSummary };

/** What a consumer reports when it stops. */
export interface ConsumerSummary {
  readonly label: string;
  /** Properties added to, or removed from, the built-in prototypes since the process started. */
  readonly pollution: readonly string[];
  /** Errors the transport or the services logged. */
  readonly errors: number;
}

/** Parses one line of a consumer's stdout; `undefined` for anything else. */
export function parseLine(line: string): ConsumerLine | undefined {
  const [kind, ...rest] = line.split(' ');
  switch (kind) {
    case 'ready':
      return { kind };
    case 'h':
      return {
        kind,
        service: rest[0]!,
        orderId: Number(rest[1]),
        messageId: rest[2]!,
        attempt: Number(rest[3]),
        redelivered: rest[4] === '1',
      };
    case 'ok':
      return { kind, service: rest[0]!, orderId: Number(rest[1]) };
    case 'dup':
      return { kind, service: rest[0]!, messageId: rest[1]! };
    case 'dead':
      return {
        kind,
        service: rest[0]!,
        reason: rest[1]!,
        messageId: rest[2] === '-' ? undefined : rest[2],
      };
    case 'proto':
      return { kind, service: rest[0]!, orderId: Number(rest[1]) };
    case 'bye':
      return { kind, summary: JSON.parse(rest.join(' ')) as ConsumerSummary };
    default:
      return undefined;
  }
}

/**
 * Whether the handler fails, transiently, on this attempt of this order: true for about `rate`
 * of the (order, attempt) pairs, always the same ones for one seed, whichever process or order
 * they are handled in. Lets a test know in advance exactly how many calls each order takes.
 */
export function transientFailure(seed: number, id: number, attempt: number, rate: number): boolean {
  return unitHash(seed, id, attempt) < rate;
}

/** A number in [0, 1) from three integers (a 32-bit integer hash, murmur3's finaliser). */
function unitHash(a: number, b: number, c: number): number {
  let h = Math.imul(a ^ 0x9e3779b9, 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13) ^ b, 0xc2b2ae35);
  h = Math.imul(h ^ (h >>> 16) ^ Math.imul(c, 0x27d4eb2f), 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return (h >>> 0) / 2 ** 32;
}

/**
 * Every own property name of the built-in prototypes, to compare before and after: a polluted
 * prototype gains (or loses) one.
 */
export function prototypeSnapshot(): Map<string, string[]> {
  const protos: Record<string, object> = {
    Object: Object.prototype,
    Array: Array.prototype,
    Function: Function.prototype,
    String: String.prototype,
    Number: Number.prototype,
    Boolean: Boolean.prototype,
    Promise: Promise.prototype,
    Buffer: Buffer.prototype,
  };
  return new Map(
    Object.entries(protos).map(([name, proto]) => [
      name,
      Reflect.ownKeys(proto).map(String).sort(),
    ]),
  );
}

/** The differences between two {@link prototypeSnapshot}s, plus the classic `polluted` probes. */
export function pollutionSince(before: Map<string, string[]>): string[] {
  const problems: string[] = [];
  for (const [name, keys] of prototypeSnapshot()) {
    const old = new Set(before.get(name));
    const now = new Set(keys);
    for (const k of now) if (!old.has(k)) problems.push(`${name}.prototype gained ${k}`);
    for (const k of old) if (!now.has(k)) problems.push(`${name}.prototype lost ${k}`);
  }
  const probe = {} as Record<string, unknown>;
  for (const key of ['polluted', 'isAdmin', 'injected']) {
    if (probe[key] !== undefined) problems.push(`({}).${key} is ${String(probe[key])}`);
    if (([] as unknown as Record<string, unknown>)[key] !== undefined) {
      problems.push(`[].${key} is defined`);
    }
  }
  return problems;
}
