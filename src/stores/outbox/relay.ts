import type { OutgoingMessage } from '../../envelope/envelope.js';
import {
  ConfigError,
  MessageEncodingError,
  PublishRejectedError,
  StateError,
  UnroutableError,
} from '../../errors.js';
import { consoleLogger, type Logger } from '../../logger.js';
import type { UnroutablePolicy } from '../../runtime/service.js';
import {
  DEFAULT_EXCHANGE,
  type PublishOutcome,
  type Transport,
} from '../../transports/transport.js';
import type { PgClientLike, PgPoolLike } from '../pg-table.js';
import { decodeRow } from './codec.js';
import { describeFailure, OutboxError } from './errors.js';
import { PENDING } from './schema.js';

/**
 * After a write through its outbox object, a relay looks `SOON_MS` later (the write precedes its
 * commit by a little), then every `HOT_INTERVAL_MS` until `HOT_WINDOW_MS` have passed without a
 * write: a commit is seen within milliseconds without NOTIFY, and an idle relay polls slowly.
 */
const SOON_MS = 2;
const HOT_INTERVAL_MS = 10;
const HOT_WINDOW_MS = 1000;

/** An exponential backoff: `initialDelayMs`, doubling on each further failure, capped at `maxDelayMs`. */
export interface OutboxBackoff {
  readonly initialDelayMs?: number | undefined;
  readonly maxDelayMs?: number | undefined;
}

/** What a relay needs of its outbox: a `PostgresOutbox` (`outbox.relay(options)` makes the relay). */
export interface RelaySource {
  /** The table's quoted name, as used in SQL. */
  readonly table: string;
  /** The table's name as given. */
  readonly name: string;
  /** The notification channel a migrated table's trigger notifies. */
  readonly channel: string;
  readonly pool: PgPoolLike;
  checkSchema(): Promise<{ readonly notifies: boolean }>;
  /** Calls `listener` after each write through this outbox object; returns its remover. */
  onWrite(listener: () => void): () => void;
  /** Deletes sent rows past their keeping time; resolves with how many. */
  prune(): Promise<number>;
}

/** Options of {@link OutboxRelay} (`outbox.relay(options)`). Every field but `transport` has a default. */
export interface OutboxRelayOptions {
  /** Where messages are published: the service's transport. The relay never closes it. */
  readonly transport: Transport;
  /**
   * Rows claimed, published and marked together. Rows without a key are all in flight at once;
   * the rows of one key are published one after the other.
   * @defaultValue 200
   */
  readonly batchSize?: number | undefined;
  /**
   * Batches a relay runs at once, each on its own connection; like that many relays. With two,
   * one claims what was committed while the other waits for its confirms and its commit.
   * @defaultValue 2
   */
  readonly concurrency?: number | undefined;
  /**
   * How often the table is looked at when nothing woke the relay, in milliseconds: the longest
   * delay of a message written by another process (without `notify`), and of a retry that became
   * due. Writes through the relay's own `PostgresOutbox` object wake it within milliseconds.
   * @defaultValue 1000
   */
  readonly pollIntervalMs?: number | undefined;
  /**
   * Hold a connection that LISTENs on the table's channel, so that any commit wakes the relay at
   * once (the table must have been migrated with `notify`). The relay also polls when on.
   * @defaultValue true when the table has its notify trigger, else false
   */
  readonly listen?: boolean | undefined;
  /**
   * A message the broker routed to no queue: `error` counts a failed attempt (retried, then
   * parked, so it waits until a queue is bound); `warn` logs it and marks it sent; `ignore` marks
   * it sent.
   * @defaultValue 'error'
   */
  readonly unroutable?: UnroutablePolicy | undefined;
  /**
   * Attempts a message gets (the first included) when the broker refuses it or routes it
   * nowhere; after the last it is parked (`failed_at` set) until `tidings outbox retry`, and the
   * next message of its ordering key goes ahead. `Infinity` never parks: the key waits for ever.
   * An unreachable broker or database never spends attempts.
   * @defaultValue 10
   */
  readonly maxAttempts?: number | undefined;
  /**
   * Delay before a failed message's next attempt, doubling per attempt.
   * @defaultValue `{ initialDelayMs: 1000, maxDelayMs: 60000 }`
   */
  readonly retryBackoff?: OutboxBackoff | undefined;
  /**
   * Pause after the broker or the database was unavailable, doubling while it stays so. Rows
   * wait; none is marked failed for it.
   * @defaultValue `{ initialDelayMs: 200, maxDelayMs: 5000 }`
   */
  readonly outageBackoff?: OutboxBackoff | undefined;
  /**
   * How long a sent row is kept, in milliseconds, for inspection; 0 deletes it as soon as it is
   * confirmed.
   * @defaultValue 3600000 (one hour)
   */
  readonly retentionMs?: number | undefined;
  /**
   * How often sent rows past their retention are deleted, in milliseconds; `Infinity` never
   * (call `outbox.prune()` yourself).
   * @defaultValue 60000
   */
  readonly pruneIntervalMs?: number | undefined;
  /** @defaultValue warnings and errors to stderr */
  readonly logger?: Logger | undefined;
}

/** What a relay reports, for logging, metrics and tests. */
export interface OutboxRelayEvents {
  /** A row was confirmed by the broker and marked sent (after its batch committed). */
  published: {
    readonly id: string;
    readonly messageId: string;
    readonly routingKey: string;
    readonly orderingKey: string | null;
    readonly routed: boolean;
  };
  /** A row failed on its own account (refused, unroutable, undecodable) and was rescheduled or parked. */
  failed: {
    readonly id: string;
    readonly messageId: string;
    readonly routingKey: string;
    readonly orderingKey: string | null;
    readonly attempts: number;
    readonly error: unknown;
    /** True when this was its last attempt: it is parked until retried by hand. */
    readonly parked: boolean;
  };
  /** A batch ended. `deferred` rows wait because the broker was unavailable. */
  batch: {
    readonly claimed: number;
    readonly sent: number;
    readonly failed: number;
    readonly deferred: number;
    readonly ms: number;
  };
  /** The broker or the database was unavailable; the relay pauses `retryInMs`, rows wait. */
  unavailable: { readonly error: unknown; readonly retryInMs: number };
  /** Sent rows past their retention were deleted. */
  pruned: { readonly rows: number };
}

/** Counters of a relay since it started. */
export interface OutboxRelayStats {
  readonly batches: number;
  readonly sent: number;
  readonly failed: number;
  readonly parked: number;
  readonly outages: number;
}

type Listener<T> = (event: T) => void;

interface ClaimedRow {
  readonly id: string;
  readonly ordering_key: string | null;
  readonly exchange: string;
  readonly routing_key: string;
  readonly message_id: string;
  readonly properties: unknown;
  readonly body: unknown;
  readonly attempts: number;
  /** False for a follower waiting for its retry: its key's run stops before it. */
  readonly due: boolean;
}

type Outcome =
  | { readonly kind: 'sent'; readonly routed: boolean }
  | { readonly kind: 'fault'; readonly error: unknown }
  | { readonly kind: 'deferred'; readonly error: unknown }
  /** Not tried: a row before it in its key's run failed. Left as it was. */
  | { readonly kind: 'skipped' };

/** How many pending rows, per row of a batch, a claim looks at for the heads of keys. */
const WINDOW_PER_ROW = 10;
/** A window past the end of any table: every pending row. */
const UNBOUNDED = '9223372036854775807';

/**
 * Whether an error is the message's own fault (it would fail again on its own): the broker
 * refused it, routed it nowhere, or it cannot be encoded or read back. Everything else (publish
 * timeouts, a full buffer, no connection, a closed transport, anything unrecognised) counts as
 * the broker being unavailable: a relay would rather wait than park healthy messages.
 */
function isMessageFault(error: unknown): boolean {
  if (error instanceof UnroutableError || error instanceof MessageEncodingError) return true;
  if (error instanceof PublishRejectedError) return true;
  return error instanceof OutboxError && error.operation === 'decode';
}

type State = 'idle' | 'running' | 'stopping' | 'stopped';

interface Sleeper {
  /** Whether a commit (a notification, a write) may end the sleep early; an outage backoff may not. */
  readonly wakeable: boolean;
  wake(): void;
  /** Ends the sleep within `ms` instead, if it would last longer. */
  shorten(ms: number): void;
}

/** A client that can LISTEN: `pg`'s `Client` and `PoolClient` are. */
interface ListeningClient extends PgClientLike {
  on(event: 'notification', listener: (message: { channel: string }) => void): unknown;
  on(event: 'error' | 'end', listener: (error?: Error) => void): unknown;
  removeListener(event: string, listener: (...args: never[]) => void): unknown;
}

function canListen(client: PgClientLike): client is ListeningClient {
  const c = client as Partial<ListeningClient>;
  return typeof c.on === 'function' && typeof c.removeListener === 'function';
}

/**
 * Publishes the committed rows of a {@link PostgresOutbox} through a transport, with publisher
 * confirms, and marks each sent only after the broker confirmed it.
 *
 * Each batch is one transaction: it locks up to `batchSize` pending rows with
 * `FOR UPDATE SKIP LOCKED` (rows another relay holds are skipped, never waited for), taking a row
 * of an ordering key only if it is the key's oldest pending row, and with it the rows that follow
 * in its key; publishes them (a key's rows one after the other, each after the previous one's
 * confirm); marks the confirmed ones sent, reschedules the failed ones, and commits. So several
 * relays (replicas, or `concurrency` above 1) share the work without publishing a row twice, and
 * a key's rows go out one at a time, in commit order. A relay that dies mid-batch loses its locks with its
 * connection: the rows, unmarked, are published again by the next batch (at least once).
 *
 * A write through its `PostgresOutbox` object makes it look within milliseconds (the write comes
 * just before its commit); on a table migrated with `notify`, a LISTEN connection wakes it on any
 * commit; and it polls every `pollIntervalMs`. While the broker
 * (or the database) is unavailable it pauses with a backoff and rows wait. Sent rows are kept
 * `retentionMs`, then deleted by a prune every `pruneIntervalMs`.
 */
export class OutboxRelay {
  private readonly outbox: RelaySource;
  private readonly transport: Transport;
  private readonly batchSize: number;
  private readonly concurrency: number;
  private readonly pollIntervalMs: number;
  private readonly listenOption: boolean | undefined;
  private readonly unroutable: UnroutablePolicy;
  private readonly maxAttempts: number;
  private readonly retryBackoff: { initialDelayMs: number; maxDelayMs: number };
  private readonly outageBackoff: { initialDelayMs: number; maxDelayMs: number };
  private readonly retentionMs: number;
  private readonly pruneIntervalMs: number;
  private readonly logger: Logger;
  private readonly claimSql: string;
  private readonly windowFullSql: string;
  private readonly followersSql: string;
  private readonly listeners: {
    [K in keyof OutboxRelayEvents]?: Listener<OutboxRelayEvents[K]>[];
  } = {};
  private readonly declared = new Set<string>();
  private state: State = 'idle';
  private loops: Promise<void>[] = [];
  private sleepers = new Set<Sleeper>();
  private dirty = false;
  private hotUntil = 0;
  private deepLookAfter = 0;
  private offWrite: (() => void) | undefined;
  private listener: { client: ListeningClient; detach: () => void } | undefined;
  private listenTimer: NodeJS.Timeout | undefined;
  private listening: Promise<void> | undefined;
  private pruneTimer: NodeJS.Timeout | undefined;
  private pruning: Promise<void> | undefined;
  private outageStreak = 0;
  private outageSince = 0;
  private counters = { batches: 0, sent: 0, failed: 0, parked: 0, outages: 0 };

  constructor(outbox: RelaySource, options: OutboxRelayOptions) {
    const problems: string[] = [];
    if (typeof options?.transport?.publish !== 'function') {
      problems.push('transport is required (the service transport, e.g. await connect(url))');
    }
    positiveInt(problems, 'batchSize', options?.batchSize);
    positiveInt(problems, 'concurrency', options?.concurrency);
    positiveMs(problems, 'pollIntervalMs', options?.pollIntervalMs);
    positiveMs(problems, 'pruneIntervalMs', options?.pruneIntervalMs, true);
    const maxAttempts = options?.maxAttempts ?? 10;
    if (maxAttempts !== Number.POSITIVE_INFINITY) positiveInt(problems, 'maxAttempts', maxAttempts);
    const retention = options?.retentionMs;
    if (retention !== undefined && !(Number.isFinite(retention) && retention >= 0)) {
      problems.push(`retentionMs must be a number of milliseconds >= 0 (got ${String(retention)})`);
    }
    const unroutable = options?.unroutable ?? 'error';
    if (!['error', 'warn', 'ignore'].includes(unroutable)) {
      problems.push(`unroutable must be "error", "warn" or "ignore" (got ${String(unroutable)})`);
    }
    const retryBackoff = backoff(problems, 'retryBackoff', options?.retryBackoff, 1000, 60_000);
    const outageBackoff = backoff(problems, 'outageBackoff', options?.outageBackoff, 200, 5000);
    if (problems.length > 0) throw new ConfigError(problems, 'outbox relay options');
    this.outbox = outbox;
    this.transport = options.transport;
    this.batchSize = options.batchSize ?? 200;
    this.concurrency = options.concurrency ?? 2;
    this.pollIntervalMs = options.pollIntervalMs ?? 1000;
    this.listenOption = options.listen;
    this.unroutable = unroutable;
    this.maxAttempts = maxAttempts;
    this.retryBackoff = retryBackoff;
    this.outageBackoff = outageBackoff;
    this.retentionMs = retention ?? 3_600_000;
    this.pruneIntervalMs = options.pruneIntervalMs ?? 60_000;
    this.logger = options.logger ?? consoleLogger('tidings outbox');
    const t = outbox.table;
    // The oldest pending row of each key, and rows without a key, among the first $2 pending
    // rows. `sent_at IS NULL` is also checked on the locked row itself, so a row another relay
    // marked sent after this statement's snapshot is dropped here (PostgreSQL re-checks the
    // locked row's quals) instead of published twice; its key's next row waits for the next
    // batch, whose snapshot sees the mark. The window bounds the work: without it, every pending
    // row behind the head of a busy key would be looked at in every batch. It is a bound on the
    // id (computed once), not a join, so the plan stays an index scan whatever the statistics.
    this.claimSql = `SELECT o.id::text AS id, o.ordering_key, o.exchange, o.routing_key, o.message_id,
       o.properties, o.body, o.attempts, true AS due
FROM ${t} o
WHERE o.sent_at IS NULL AND o.failed_at IS NULL
  AND o.id <= coalesce(
    (SELECT id FROM ${t} WHERE ${PENDING} ORDER BY id OFFSET $2::bigint - 1 LIMIT 1),
    9223372036854775807)
  AND (o.next_attempt_at IS NULL OR o.next_attempt_at <= clock_timestamp())
  AND (o.ordering_key IS NULL OR NOT EXISTS (
    SELECT 1 FROM ${t} p
    WHERE p.ordering_key = o.ordering_key AND p.id < o.id
      AND p.sent_at IS NULL AND p.failed_at IS NULL))
ORDER BY o.id
LIMIT $1
FOR UPDATE OF o SKIP LOCKED`;
    // Whether the window is full: then a claim that found nothing looks at every pending row.
    this.windowFullSql = `SELECT 1 FROM ${t} WHERE ${PENDING} ORDER BY id OFFSET $1 - 1 LIMIT 1`;
    // The next pending rows of keys whose head this batch holds. Nobody else can hold them (they
    // are no key's head while the head is pending), so a plain FOR UPDATE never waits.
    this.followersSql = `SELECT f.* FROM unnest($1::text[], $2::bigint[]) AS h(key, head)
CROSS JOIN LATERAL (
  SELECT o.id::text AS id, o.ordering_key, o.exchange, o.routing_key, o.message_id,
         o.properties, o.body, o.attempts,
         (o.next_attempt_at IS NULL OR o.next_attempt_at <= clock_timestamp()) AS due
  FROM ${t} o
  WHERE o.ordering_key = h.key AND o.id > h.head AND o.sent_at IS NULL AND o.failed_at IS NULL
  ORDER BY o.id
  LIMIT $3
  FOR UPDATE OF o
) f`;
  }

  /** Listens to one kind of event; returns a function that removes the listener. */
  observe<K extends keyof OutboxRelayEvents>(
    name: K,
    listener: Listener<OutboxRelayEvents[K]>,
  ): () => void {
    const list = (this.listeners[name] ?? []) as Listener<OutboxRelayEvents[K]>[];
    this.listeners[name] = list as (typeof this.listeners)[K];
    list.push(listener);
    return () => {
      const i = list.indexOf(listener);
      if (i >= 0) list.splice(i, 1);
    };
  }

  /** Counters since start. */
  get stats(): OutboxRelayStats {
    return { ...this.counters };
  }

  /**
   * Checks the table (rejects with `OutboxSchemaError` when it is missing: run
   * `tidings outbox migrate`), then starts publishing. Resolves once started, not once caught up.
   */
  async start(): Promise<void> {
    if (this.state !== 'idle') throw new StateError('the outbox relay was already started');
    this.state = 'running';
    let notifies: boolean;
    try {
      ({ notifies } = await this.outbox.checkSchema());
    } catch (error) {
      this.state = 'stopped';
      throw error;
    }
    if (this.state !== 'running') return;
    if (this.listenOption ?? notifies) this.listening = this.listen();
    this.offWrite = this.outbox.onWrite(() => this.written());
    if (Number.isFinite(this.pruneIntervalMs)) {
      this.pruneTimer = setInterval(() => this.pruneInBackground(), this.pruneIntervalMs);
    }
    for (let i = 0; i < this.concurrency; i++) this.loops.push(this.run());
  }

  /**
   * Stops: no new batch starts; the batches in flight finish (their publishes confirm or fail,
   * so at most the transport's publish timeout) and commit. Then the LISTEN connection is
   * released. Leaves the pool and the transport open. Idempotent.
   */
  async stop(): Promise<void> {
    if (this.state === 'idle') {
      this.state = 'stopped';
      return;
    }
    if (this.state === 'stopped') return;
    if (this.state === 'stopping') {
      await Promise.all(this.loops);
      return;
    }
    this.state = 'stopping';
    this.offWrite?.();
    clearInterval(this.pruneTimer);
    clearTimeout(this.listenTimer);
    for (const s of this.sleepers) s.wake();
    await Promise.all(this.loops);
    await this.listening?.catch(() => {});
    await this.pruning;
    this.unlisten();
    this.state = 'stopped';
  }

  /** Deletes the sent rows past their retention now; resolves with how many. */
  async pruneNow(): Promise<number> {
    const rows = await this.outbox.prune();
    if (rows > 0) this.emit('pruned', { rows });
    return rows;
  }

  private pruneInBackground(): void {
    if (this.pruning || this.state !== 'running') return;
    this.pruning = this.pruneNow()
      .then(
        () => {},
        (error: unknown) =>
          this.logger.warn('pruning the outbox failed; trying again later', { error }),
      )
      .finally(() => {
        this.pruning = undefined;
      });
  }

  private emit<K extends keyof OutboxRelayEvents>(name: K, event: OutboxRelayEvents[K]): void {
    const list = this.listeners[name];
    if (!list) return;
    for (const listener of list) {
      try {
        listener(event);
      } catch (error) {
        this.logger.error(`an outbox relay "${name}" listener threw`, { error });
      }
    }
  }

  /** Wakes idle loops: something was committed. */
  private poke(): void {
    this.dirty = true;
    for (const s of this.sleepers) if (s.wakeable) s.wake();
  }

  /** A write through the outbox object: its commit is near, so idle loops look soon and often. */
  private written(): void {
    this.hotUntil = Date.now() + HOT_WINDOW_MS;
    for (const s of this.sleepers) if (s.wakeable) s.shorten(SOON_MS);
  }

  private sleep(ms: number, wakeable: boolean): Promise<void> {
    if (this.state !== 'running') return Promise.resolve();
    return new Promise((resolve) => {
      let timer: NodeJS.Timeout;
      let deadline = Date.now() + ms;
      const sleeper: Sleeper = {
        wakeable,
        wake: () => {
          clearTimeout(timer);
          this.sleepers.delete(sleeper);
          resolve();
        },
        shorten: (soon) => {
          if (deadline <= Date.now() + soon) return;
          clearTimeout(timer);
          deadline = Date.now() + soon;
          timer = setTimeout(sleeper.wake, soon);
        },
      };
      timer = setTimeout(sleeper.wake, ms);
      this.sleepers.add(sleeper);
    });
  }

  private async run(): Promise<void> {
    while (this.state === 'running') {
      this.dirty = false;
      let claimed = 0;
      let deferred: unknown;
      try {
        ({ claimed, deferred } = await this.batch());
      } catch (error) {
        await this.outage(error);
        continue;
      }
      if (deferred !== undefined) {
        await this.outage(deferred);
        continue;
      }
      if (this.outageStreak > 0) this.recovered();
      // A full or partial batch may have unblocked the next row of its keys: look again at once.
      if (claimed > 0 || this.dirty) continue;
      const hot = Date.now() < this.hotUntil;
      await this.sleep(
        hot ? Math.min(HOT_INTERVAL_MS, this.pollIntervalMs) : this.pollIntervalMs,
        true,
      );
    }
  }

  private async outage(error: unknown): Promise<void> {
    if (this.state !== 'running') return;
    this.outageStreak++;
    if (this.outageStreak === 1) {
      this.outageSince = Date.now();
      this.counters.outages++;
    }
    const { initialDelayMs, maxDelayMs } = this.outageBackoff;
    const delay = jittered(
      Math.min(maxDelayMs, initialDelayMs * 2 ** Math.min(this.outageStreak - 1, 20)),
    );
    if (this.outageStreak === 1) {
      this.logger.warn(
        `the outbox relay cannot reach the database or the broker: ${describeFailure(error)}; messages wait, retrying`,
      );
    }
    this.emit('unavailable', { error, retryInMs: delay });
    // Not woken by notifications: a busy writer must not turn the backoff into a spin.
    await this.sleep(delay, false);
  }

  private recovered(): void {
    this.logger.info(
      `the outbox relay publishes again after ${Date.now() - this.outageSince} ms unavailable`,
    );
    this.outageStreak = 0;
  }

  /**
   * One batch: claim, publish, mark, commit. Resolves with how many rows it claimed and, when
   * some had to wait for the broker, why. Throws when the database fails.
   */
  private async batch(): Promise<{ claimed: number; deferred: unknown }> {
    const started = performance.now();
    const client = await this.outbox.pool.connect();
    // A connection checked out of a pg pool has no error listener: one that breaks while this
    // waits for the broker would otherwise crash the process.
    const onError = () => {};
    const listens = canListen(client);
    if (listens) client.on('error', onError);
    let broken: Error | undefined;
    try {
      // The batch commits synchronously, though a lost mark would only make its rows go out
      // again: with an asynchronous commit, a database crash could also undo the mark of a row
      // whose key's next row was published since, and the copies would then arrive out of order.
      await client.query('BEGIN');
      const rows = await this.claim(client);
      if (rows.length === 0) {
        await client.query('COMMIT');
        return { claimed: 0, deferred: undefined };
      }
      const outcomes = await this.publishAll(rows);
      const result = await this.mark(client, rows, outcomes);
      await client.query('COMMIT');
      this.counters.batches++;
      this.report(rows, outcomes);
      this.emit('batch', { ...result, claimed: rows.length, ms: performance.now() - started });
      const waiting = outcomes.find((o) => o.kind === 'deferred');
      return { claimed: rows.length, deferred: waiting?.error };
    } catch (error) {
      await client.query('ROLLBACK').catch((e: unknown) => {
        broken = e instanceof Error ? e : new Error(String(e));
      });
      throw error;
    } finally {
      if (listens) client.removeListener('error', onError);
      client.release(broken);
    }
  }

  /**
   * Locks the rows of a batch: heads of keys and rows without a key, then, in the room left, the
   * rows that follow each head in its key, so that a busy key sends a run per batch, not a row.
   */
  private async claim(client: PgClientLike): Promise<ClaimedRow[]> {
    const window = this.batchSize * WINDOW_PER_ROW;
    let { rows } = (await client.query(this.claimSql, [this.batchSize, window])) as unknown as {
      rows: ClaimedRow[];
    };
    if (rows.length === 0) {
      // The first pending rows may all wait behind heads that wait for their retry: look past
      // them, so that other keys never wait for those. That look reads the whole backlog, so
      // after one that found nothing, the next waits a poll interval.
      if (Date.now() < this.deepLookAfter) return [];
      const full = await client.query(this.windowFullSql, [window]);
      if (full.rows.length === 0) return [];
      ({ rows } = (await client.query(this.claimSql, [this.batchSize, UNBOUNDED])) as unknown as {
        rows: ClaimedRow[];
      });
      if (rows.length === 0) this.deepLookAfter = Date.now() + this.pollIntervalMs;
    }
    const heads = rows.filter((r) => r.ordering_key !== null);
    const room = Math.floor((this.batchSize - rows.length) / Math.max(1, heads.length));
    if (heads.length === 0 || room < 1) return rows;
    const { rows: followers } = (await client.query(this.followersSql, [
      heads.map((h) => h.ordering_key),
      heads.map((h) => h.id),
      room,
    ])) as unknown as { rows: ClaimedRow[] };
    return [...rows, ...followers];
  }

  /**
   * Publishes a batch: rows without a key all at once; the rows of one key one after the other,
   * each after the previous one's confirm, stopping at the first that fails or is not due (the
   * rest of the run is left as it was); different keys side by side.
   */
  private async publishAll(rows: readonly ClaimedRow[]): Promise<Outcome[]> {
    const problems = await this.declareExchanges(rows);
    const outcomes: Outcome[] = new Array(rows.length);
    const runs = new Map<string, number[]>();
    const work: Promise<void>[] = [];
    rows.forEach((row, i) => {
      if (row.ordering_key === null) {
        work.push(
          this.publishRow(row, problems).then((outcome) => {
            outcomes[i] = outcome;
          }),
        );
      } else {
        const run = runs.get(row.ordering_key) ?? [];
        run.push(i);
        runs.set(row.ordering_key, run);
      }
    });
    for (const run of runs.values()) {
      work.push(
        (async () => {
          let stopped = false;
          for (const i of run) {
            const row = rows[i]!;
            if (stopped || !row.due) {
              stopped = true;
              outcomes[i] = { kind: 'skipped' };
              continue;
            }
            outcomes[i] = await this.publishRow(row, problems);
            stopped = outcomes[i]!.kind !== 'sent';
          }
        })(),
      );
    }
    await Promise.all(work);
    return outcomes;
  }

  /** Publishes one row; never rejects, resolves with what happened. */
  private publishRow(row: ClaimedRow, problems: Map<string, unknown>): Promise<Outcome> {
    const declareError = problems.get(row.exchange);
    if (declareError !== undefined) {
      return Promise.resolve(
        isMessageFault(declareError)
          ? { kind: 'fault', error: declareError }
          : { kind: 'deferred', error: declareError },
      );
    }
    let message: OutgoingMessage;
    try {
      message = decodeRow(row);
    } catch (cause) {
      const error = new OutboxError(
        'decode',
        this.outbox.name,
        `row ${row.id} cannot be read back as a message: ${describeFailure(cause)}`,
        { cause },
      );
      return Promise.resolve({ kind: 'fault', error });
    }
    let published: Promise<PublishOutcome>;
    try {
      published = this.transport.publish(message);
    } catch (error) {
      published = Promise.reject(error);
    }
    return published.then(
      (outcome): Outcome => {
        if (outcome.routed || this.unroutable === 'ignore') {
          return { kind: 'sent', routed: outcome.routed };
        }
        if (this.unroutable === 'warn') {
          this.logger.warn(`no queue received ${row.routing_key}`, {
            id: row.message_id,
            exchange: row.exchange,
          });
          return { kind: 'sent', routed: false };
        }
        return { kind: 'fault', error: new UnroutableError(row.exchange, row.routing_key) };
      },
      (error: unknown): Outcome =>
        isMessageFault(error) ? { kind: 'fault', error } : { kind: 'deferred', error },
    );
  }

  /** Declares the exchanges this relay has not declared yet; returns those that failed. */
  private async declareExchanges(rows: readonly ClaimedRow[]): Promise<Map<string, unknown>> {
    const failed = new Map<string, unknown>();
    const fresh = new Set<string>();
    for (const row of rows) {
      if (row.exchange !== DEFAULT_EXCHANGE && !this.declared.has(row.exchange)) {
        fresh.add(row.exchange);
      }
    }
    for (const exchange of fresh) {
      try {
        await this.transport.declare({ exchanges: [exchange], queues: [] });
        this.declared.add(exchange);
      } catch (error) {
        failed.set(exchange, error);
      }
    }
    return failed;
  }

  /** Marks sent rows, reschedules or parks failed ones, notes why deferred ones wait. */
  private async mark(
    client: PgClientLike,
    rows: readonly ClaimedRow[],
    outcomes: readonly Outcome[],
  ): Promise<{ sent: number; failed: number; deferred: number }> {
    const t = this.outbox.table;
    const sent: string[] = [];
    const failed = {
      ids: [] as string[],
      errors: [] as string[],
      delays: [] as number[],
      park: [] as boolean[],
    };
    const deferred = { ids: [] as string[], errors: [] as string[] };
    rows.forEach((row, i) => {
      const outcome = outcomes[i]!;
      if (outcome.kind === 'sent') sent.push(row.id);
      else if (outcome.kind === 'fault') {
        const attempts = row.attempts + 1;
        const { initialDelayMs, maxDelayMs } = this.retryBackoff;
        failed.ids.push(row.id);
        failed.errors.push(describeFailure(outcome.error));
        failed.delays.push(
          jittered(Math.min(maxDelayMs, initialDelayMs * 2 ** Math.min(attempts - 1, 20))),
        );
        failed.park.push(attempts >= this.maxAttempts);
      } else if (outcome.kind === 'deferred') {
        deferred.ids.push(row.id);
        deferred.errors.push(describeFailure(outcome.error));
      }
    });
    try {
      if (sent.length > 0) {
        await client.query(
          this.retentionMs === 0
            ? `DELETE FROM ${t} WHERE id = ANY($1::bigint[])`
            : `UPDATE ${t} SET sent_at = clock_timestamp(), attempts = attempts + 1,
                 last_attempt_at = clock_timestamp(), next_attempt_at = NULL,
                 expires_at = clock_timestamp() + $2::double precision * interval '1 millisecond'
               WHERE id = ANY($1::bigint[])`,
          this.retentionMs === 0 ? [sent] : [sent, this.retentionMs],
        );
      }
      if (failed.ids.length > 0) {
        await client.query(
          `UPDATE ${t} AS o SET attempts = o.attempts + 1, last_error = f.error,
             last_attempt_at = clock_timestamp(),
             next_attempt_at = CASE WHEN f.park THEN NULL
               ELSE clock_timestamp() + f.delay_ms * interval '1 millisecond' END,
             failed_at = CASE WHEN f.park THEN clock_timestamp() END
           FROM unnest($1::bigint[], $2::text[], $3::double precision[], $4::boolean[])
             AS f(id, error, delay_ms, park)
           WHERE o.id = f.id`,
          [failed.ids, failed.errors, failed.delays, failed.park],
        );
      }
      if (deferred.ids.length > 0) {
        await client.query(
          `UPDATE ${t} AS o SET last_error = f.error, last_attempt_at = clock_timestamp()
           FROM unnest($1::bigint[], $2::text[]) AS f(id, error) WHERE o.id = f.id`,
          [deferred.ids, deferred.errors],
        );
      }
    } catch (cause) {
      throw new OutboxError('mark', this.outbox.name, describeFailure(cause), { cause });
    }
    return { sent: sent.length, failed: failed.ids.length, deferred: deferred.ids.length };
  }

  /** After the commit: counters, logs and events for each row. */
  private report(rows: readonly ClaimedRow[], outcomes: readonly Outcome[]): void {
    rows.forEach((row, i) => {
      const outcome = outcomes[i]!;
      if (outcome.kind === 'sent') {
        this.counters.sent++;
        if (this.listeners.published) {
          this.emit('published', {
            id: row.id,
            messageId: row.message_id,
            routingKey: row.routing_key,
            orderingKey: row.ordering_key,
            routed: outcome.routed,
          });
        }
      } else if (outcome.kind === 'fault') {
        const attempts = row.attempts + 1;
        const parked = attempts >= this.maxAttempts;
        this.counters.failed++;
        if (parked) this.counters.parked++;
        const what = `outbox row ${row.id} (${row.routing_key}, message ${row.message_id})`;
        if (parked) {
          this.logger.error(
            `${what} failed ${attempts} times and is parked; \`tidings outbox retry\` puts it back: ${describeFailure(outcome.error)}`,
          );
        } else {
          this.logger.warn(
            `${what} failed (attempt ${attempts}); it will be tried again: ${describeFailure(outcome.error)}`,
          );
        }
        this.emit('failed', {
          id: row.id,
          messageId: row.message_id,
          routingKey: row.routing_key,
          orderingKey: row.ordering_key,
          attempts,
          error: outcome.error,
          parked,
        });
      }
    });
  }

  private async listen(): Promise<void> {
    let client: PgClientLike;
    try {
      client = await this.outbox.pool.connect();
    } catch (error) {
      this.relisten(error);
      return;
    }
    if (!canListen(client)) {
      client.release();
      this.logger.info('the pool gives connections without LISTEN support; the relay polls');
      return;
    }
    if (this.state !== 'running') {
      client.release();
      return;
    }
    const channel = this.outbox.channel;
    const onNotification = (message: { channel: string }) => {
      if (message.channel === channel) this.poke();
    };
    const onLost = (error?: Error) => {
      if (this.listener?.client !== client) return;
      this.listener.detach();
      this.listener = undefined;
      client.release(error ?? new Error('the LISTEN connection ended'));
      this.relisten(error);
    };
    client.on('notification', onNotification);
    client.on('error', onLost);
    client.on('end', onLost);
    this.listener = {
      client,
      detach: () => {
        client.removeListener('notification', onNotification);
        client.removeListener('error', onLost);
        client.removeListener('end', onLost);
      },
    };
    try {
      await client.query(`LISTEN "${channel.replaceAll('"', '""')}"`);
      // Rows committed while nobody listened are found by looking once more.
      this.poke();
    } catch (error) {
      onLost(error instanceof Error ? error : new Error(String(error)));
    }
  }

  private relisten(error: unknown): void {
    if (this.state !== 'running') return;
    this.logger.debug('the outbox relay lost its LISTEN connection; it polls meanwhile', { error });
    this.listenTimer = setTimeout(() => {
      this.listening = this.listen();
    }, this.pollIntervalMs);
  }

  private unlisten(): void {
    const listener = this.listener;
    if (!listener) return;
    this.listener = undefined;
    listener.detach();
    // Released with an error, the pool closes the connection, which ends its LISTEN too.
    listener.client.release(new Error('the outbox relay stopped listening'));
  }
}

function jittered(ms: number): number {
  return Math.round(ms * (0.8 + Math.random() * 0.4));
}

function positiveInt(problems: string[], name: string, value: unknown): void {
  if (value === undefined) return;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) {
    problems.push(`${name} must be an integer >= 1 (got ${String(value)})`);
  }
}

function positiveMs(problems: string[], name: string, value: unknown, infinity = false): void {
  if (value === undefined) return;
  if (typeof value !== 'number' || !(value > 0) || (!infinity && !Number.isFinite(value))) {
    problems.push(`${name} must be a positive number of milliseconds (got ${String(value)})`);
  }
}

function backoff(
  problems: string[],
  name: string,
  value: OutboxBackoff | undefined,
  initial: number,
  max: number,
): { initialDelayMs: number; maxDelayMs: number } {
  const initialDelayMs = value?.initialDelayMs ?? initial;
  const maxDelayMs = value?.maxDelayMs ?? Math.max(max, initialDelayMs);
  positiveMs(problems, `${name}.initialDelayMs`, initialDelayMs);
  positiveMs(problems, `${name}.maxDelayMs`, maxDelayMs);
  if (maxDelayMs < initialDelayMs) {
    problems.push(`${name}.maxDelayMs must be at least ${name}.initialDelayMs`);
  }
  return { initialDelayMs, maxDelayMs };
}
