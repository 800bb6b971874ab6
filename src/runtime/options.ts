import type { AnyEvent, WireFormat } from '../contracts/event.js';
import { assertName } from '../contracts/names.js';
import { ConfigError } from '../errors.js';
import { consoleLogger, type Logger } from '../logger.js';
import type { Transport } from '../transports/transport.js';
import type { IdempotencyOptions } from './idempotency.js';
import type { Instrumentation, ServiceInstrumentation } from './instrumentation.js';
import type { Outbox } from './outbox.js';
import type { PartitionOptions } from './partitions.js';
import { type ResolvedRetryPolicy, type RetryPolicy, resolveRetryPolicy } from './retry.js';

/** What to do when a published message reaches no queue. */
export type UnroutablePolicy = 'error' | 'warn' | 'ignore';

/** Options of {@link createService}. */
export interface ServiceOptions {
  /** The service's name: lowercase `[a-z0-9_-]+`. It prefixes its queues and is the `source` of what it publishes. */
  readonly name: string;
  /** The broker connection. The service never closes it: close it after `stop()`. */
  readonly transport: Transport;
  /**
   * What `publish` does when no queue receives the message.
   * @defaultValue 'error' (reject with `UnroutableError`)
   */
  readonly unroutable?: UnroutablePolicy | undefined;
  /** Retry policy for every handler of the service; a handler's own fields override it. */
  readonly retry?: RetryPolicy | undefined;
  /**
   * Default for each handler's prefetch (unacknowledged messages it may hold).
   * @defaultValue 20
   */
  readonly prefetch?: number | undefined;
  /**
   * Default for each handler's concurrency (handlers running at once).
   * @defaultValue the handler's prefetch
   */
  readonly concurrency?: number | undefined;
  /**
   * How long `stop()` waits for running handlers before aborting them and requeueing their messages.
   * @defaultValue 10000
   */
  readonly shutdownTimeoutMs?: number | undefined;
  /**
   * Bodies larger than this many bytes are dead-lettered with reason `oversize`, unparsed.
   * @defaultValue 1048576 (1 MiB)
   */
  readonly maxMessageBytes?: number | undefined;
  /** @defaultValue warnings and errors to stderr */
  readonly logger?: Logger | undefined;
  /**
   * Wire format of what this service publishes: `tidings` (JSON payload, CloudEvents headers) or
   * `celery` (Celery task protocol v2, for Celery workers). Consuming accepts both whatever this is.
   * @defaultValue the exchange's format (`defineExchange(name, { format })`), else `tidings`
   */
  readonly format?: WireFormat | undefined;
  /** Default idempotency settings for every handler (see {@link HandlerOptions.idempotency}). */
  readonly idempotency?: IdempotencyOptions | undefined;
  /**
   * Events this service publishes. Optional: publishing works without it. Listed events have
   * their exchanges declared by `start()`, and appear in `describe()` (AsyncAPI, topology).
   */
  readonly publishes?: readonly AnyEvent[] | undefined;
  /**
   * Tracing and metrics around every publish and delivery: `openTelemetry()` from `tidings/otel`
   * (spans and metrics on the OpenTelemetry API), or your own {@link Instrumentation}.
   * @defaultValue none (each hook point costs one check)
   */
  readonly instrumentation?: Instrumentation | undefined;
  /**
   * Where `publish(event, payload, { tx })` writes its messages instead of sending them: a
   * transactional outbox (`PostgresOutbox` from `tidings/postgres`), whose relay publishes them
   * once the transaction has committed. Publishing without `tx` is unaffected.
   * @defaultValue none: a publish with `tx` rejects with `ConfigError`
   */
  readonly outbox?: Outbox | undefined;
}

/** Options of one handler. */
export interface HandlerOptions<Ver extends number = number> {
  /**
   * The event version the handler is written against. Older versions arrive upcast to it; newer
   * ones are dead-lettered with reason `unsupported-version`.
   * @defaultValue the newest version of the event
   */
  readonly version?: Ver | undefined;
  /**
   * Binding pattern on the event's exchange.
   * @defaultValue `<exchange>.*.<event>` (every version)
   */
  readonly pattern?: string | undefined;
  /**
   * Queue name. Changing it later strands the messages in the old queue.
   * @defaultValue `<service>.<exchange>.<event>`
   */
  readonly queue?: string | undefined;
  /** Overrides of the service's retry policy. */
  readonly retry?: RetryPolicy | undefined;
  /** @defaultValue the service's `prefetch` */
  readonly prefetch?: number | undefined;
  /**
   * Handlers of this queue running at once; never more than the prefetch (a larger value is
   * capped), since only that many messages are held.
   * @defaultValue the service's `concurrency`, else the handler's prefetch
   */
  readonly concurrency?: number | undefined;
  /**
   * Skip messages this handler already processed (by message id), using a store.
   * @defaultValue the service's `idempotency`, else none
   */
  readonly idempotency?: IdempotencyOptions | undefined;
  /**
   * Spread the handler over this many partition queues (`<queue>.p0` …, at most 64), each key's
   * messages in one partition, in publish order: the event needs a key in its contract. Each
   * partition runs one message at a time and retries it in place (its key waits), with at most
   * one active consumer across all replicas. `{ count, consume }` lets a replica consume only
   * some partitions. A persistent choice, like the queue's name: read docs/scaling.md first.
   * @defaultValue undefined: one queue, no per-key order
   */
  readonly partitions?: number | PartitionOptions | undefined;
}

/** Options of a handler for several events ({@link Service.onAny}). */
export interface MultiHandlerOptions extends Omit<HandlerOptions, 'version' | 'pattern' | 'queue'> {
  /**
   * Queue name: required, because a default derived from the list of events would change when an
   * event is added, stranding messages in the old queue.
   */
  readonly queue: string;
  /**
   * Binding patterns. Messages of events not in the list are dead-lettered (`unknown-event`).
   * @defaultValue one `<exchange>.*.<event>` per event
   */
  readonly patterns?:
    | readonly { readonly exchange: string; readonly pattern: string }[]
    | undefined;
}

/** Service options with every default filled in, as the parts of a service read them. */
export interface ResolvedServiceOptions {
  readonly name: string;
  readonly transport: Transport;
  readonly unroutable: UnroutablePolicy;
  readonly retry: ResolvedRetryPolicy;
  readonly prefetch: number;
  readonly concurrency: number | undefined;
  readonly shutdownTimeoutMs: number;
  readonly maxMessageBytes: number;
  readonly logger: Logger;
  readonly format: WireFormat | undefined;
  readonly idempotency: IdempotencyOptions | undefined;
  readonly publishes: readonly AnyEvent[];
  /** The instrumentation's hooks for this service, when it has one. */
  readonly instrumentation: ServiceInstrumentation | undefined;
  readonly outbox: Outbox | undefined;
}

/** Checks service options and fills the defaults; throws one `ConfigError` listing every problem. */
export function resolveServiceOptions(options: ServiceOptions): ResolvedServiceOptions {
  const problems: string[] = [];
  try {
    assertName('service', options?.name);
  } catch (error) {
    problems.push((error as Error).message);
  }
  if (!options?.transport || typeof options.transport.publish !== 'function') {
    problems.push('transport is required (for example memoryTransport() or connect(url))');
  }
  const unroutable = options?.unroutable ?? 'error';
  if (!['error', 'warn', 'ignore'].includes(unroutable)) {
    problems.push(`unroutable must be "error", "warn" or "ignore" (got ${String(unroutable)})`);
  }
  checkPositiveInt(problems, 'prefetch', options?.prefetch);
  checkPositiveInt(problems, 'concurrency', options?.concurrency);
  checkPositiveInt(problems, 'shutdownTimeoutMs', options?.shutdownTimeoutMs, true);
  checkPositiveInt(problems, 'maxMessageBytes', options?.maxMessageBytes);
  let retry: ResolvedRetryPolicy | undefined;
  try {
    retry = resolveRetryPolicy(options?.retry);
  } catch (error) {
    problems.push(...((error as ConfigError).problems ?? [(error as Error).message]));
  }
  for (const e of options?.publishes ?? []) {
    if (e?.kind !== 'event') problems.push('publishes must list events made by defineEvent()');
  }
  if (options?.outbox !== undefined && typeof options.outbox?.write !== 'function') {
    problems.push('outbox must have a write() method (for example new PostgresOutbox({ pool }))');
  }
  if (
    options?.instrumentation !== undefined &&
    typeof options.instrumentation?.forService !== 'function'
  ) {
    problems.push(
      'instrumentation must have a forService() method (for example openTelemetry() from tidings/otel)',
    );
  }
  if (problems.length > 0) {
    throw new ConfigError(problems, `options for service ${JSON.stringify(options?.name)}`);
  }
  return {
    name: options.name,
    transport: options.transport,
    unroutable,
    retry: retry!,
    prefetch: options.prefetch ?? 20,
    concurrency: options.concurrency,
    shutdownTimeoutMs: options.shutdownTimeoutMs ?? 10_000,
    maxMessageBytes: options.maxMessageBytes ?? 1024 * 1024,
    logger: options.logger ?? consoleLogger(options.name),
    format: options.format,
    idempotency: options.idempotency,
    publishes: [...(options.publishes ?? [])],
    outbox: options.outbox,
    instrumentation: options.instrumentation?.forService({
      name: options.name,
      transport: options.transport,
    }),
  };
}

/** Adds a problem when `value` is given and is not an integer >= 1 (>= 0 with `zeroOk`). */
export function checkPositiveInt(
  problems: string[],
  name: string,
  value: unknown,
  zeroOk = false,
): void {
  if (value === undefined) return;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < (zeroOk ? 0 : 1)) {
    problems.push(`${name} must be an integer >= ${zeroOk ? 0 : 1} (got ${String(value)})`);
  }
}
