import { ConfigError } from '../errors.js';
import { consoleLogger, type Logger } from '../logger.js';

/**
 * Idempotent consumers: a store remembers which messages a handler has processed, so a redelivered
 * or duplicated message (at-least-once delivery makes both normal) runs the handler's effects once.
 *
 * The protocol, per message key (`<queue>:<message id>`):
 * 1. `claim` before the handler runs. `claimed`: this consumer runs it. `done`: it ran before, so
 *    the message is acknowledged without running the handler. `busy`: another consumer is running
 *    it right now, so the message is retried later (it may still fail there).
 * 2. `complete` after the handler returned: the key is remembered as done for `ttlMs`.
 * 3. `release` after the handler threw: the key is forgotten, so a retry can claim it.
 *
 * A claim is a lease: if its holder dies without completing or releasing, the claim expires after
 * `leaseMs` and another consumer may claim the key. Keep handlers shorter than the lease.
 */
export interface IdempotencyStore {
  /** Atomically claims `key` for `leaseMs`, unless it is done or claimed by someone else. */
  claim(key: string, leaseMs: number): Promise<ClaimResult>;
  /** Marks `key` as processed for `ttlMs`. */
  complete(key: string, ttlMs: number): Promise<void>;
  /** Drops this consumer's claim on `key`, so another attempt can claim it. */
  release(key: string): Promise<void>;
}

/** The outcome of {@link IdempotencyStore.claim}. */
export type ClaimResult = 'claimed' | 'done' | 'busy';

/** A handler's idempotency settings. */
export interface IdempotencyOptions {
  readonly store: IdempotencyStore;
  /**
   * How long a processed id is remembered, in milliseconds. Duplicates arriving later run again,
   * so make it longer than any redelivery or replay you expect.
   * @defaultValue 604800000 (7 days)
   */
  readonly ttlMs?: number | undefined;
  /**
   * How long a claim holds while the handler runs, in milliseconds.
   * @defaultValue 60000
   */
  readonly leaseMs?: number | undefined;
  /**
   * Delay before a message whose id is `busy` (being handled by another consumer) is looked at
   * again, in milliseconds.
   * @defaultValue 1000
   */
  readonly busyRetryMs?: number | undefined;
}

/** Default settings of {@link IdempotencyOptions}. */
export const IDEMPOTENCY_DEFAULTS = Object.freeze({
  ttlMs: 7 * 24 * 3600 * 1000,
  leaseMs: 60_000,
  busyRetryMs: 1000,
});

interface Entry {
  state: 'busy' | 'done';
  expiresAt: number;
}

/** Options of {@link MemoryIdempotencyStore}. */
export interface MemoryIdempotencyStoreOptions {
  /**
   * The most keys the store holds. When a claim makes it hold more, the oldest keys (by when
   * they were first claimed) are evicted, down to nine tenths of the bound: a duplicate of an
   * evicted message runs its handler again, as after its `ttlMs`. Size it above the number of
   * messages you expect within the longest redelivery window (and far above the messages in
   * flight, whose claims could otherwise be evicted while their handlers run); each key costs
   * about 220 bytes (measured with 60-character keys).
   * @defaultValue 100000
   */
  readonly maxEntries?: number | undefined;
  /** The clock, in milliseconds. @defaultValue Date.now */
  readonly now?: (() => number) | undefined;
  /**
   * Told once, the first time a key that had not expired is evicted (the store is too small for
   * its `ttlMs`). @defaultValue warnings to stderr
   */
  readonly logger?: Logger | undefined;
}

/**
 * An idempotency store in this process's memory: for tests and single-process services. It is
 * bounded twice: by time (each processed key is forgotten after its `ttlMs`; expired keys are
 * swept at most once a second, as claims arrive) and by count (`maxEntries`, oldest evicted
 * first). Keys live as long as the process: use the Redis or PostgreSQL store to remember across
 * restarts and replicas.
 */
export class MemoryIdempotencyStore implements IdempotencyStore {
  // A Map iterates in insertion order: the first keys are the oldest, so eviction takes them
  // from the front. It runs only past the bound, and in batches, because each walk from the
  // front also steps over the slots of keys deleted since the Map last compacted itself.
  private readonly entries = new Map<string, Entry>();
  private readonly maxEntries: number;
  private readonly now: () => number;
  private readonly logger: Logger;
  private warned = false;
  private sweepAt = 0;

  /** @param options the options, or (as before) just the clock */
  constructor(options: MemoryIdempotencyStoreOptions | (() => number) = {}) {
    const o = typeof options === 'function' ? { now: options } : options;
    const maxEntries = o.maxEntries ?? 100_000;
    if (!Number.isInteger(maxEntries) || maxEntries < 1) {
      throw new ConfigError(
        [`maxEntries must be an integer >= 1 (got ${String(maxEntries)})`],
        'MemoryIdempotencyStore options',
      );
    }
    this.maxEntries = maxEntries;
    this.now = o.now ?? Date.now;
    this.logger = o.logger ?? consoleLogger('tidings memory idempotency store');
  }

  async claim(key: string, leaseMs: number): Promise<ClaimResult> {
    const now = this.now();
    this.sweep(now);
    const entry = this.entries.get(key);
    if (entry && entry.expiresAt > now) return entry.state === 'done' ? 'done' : 'busy';
    this.entries.set(key, { state: 'busy', expiresAt: now + leaseMs });
    if (this.entries.size > this.maxEntries) this.evict(now);
    return 'claimed';
  }

  async complete(key: string, ttlMs: number): Promise<void> {
    this.entries.set(key, { state: 'done', expiresAt: this.now() + ttlMs });
  }

  async release(key: string): Promise<void> {
    if (this.entries.get(key)?.state === 'busy') this.entries.delete(key);
  }

  /** Number of remembered keys, expired ones included until the next sweep. */
  get size(): number {
    return this.entries.size;
  }

  private evict(now: number): void {
    const target = Math.floor(this.maxEntries * 0.9);
    for (const [key, entry] of this.entries) {
      if (this.entries.size <= target) break;
      if (!this.warned && entry.expiresAt > now) {
        this.warned = true;
        this.logger.warn(
          `the store holds ${this.maxEntries} keys (maxEntries) and evicts keys that have not expired: duplicates of those messages will run again; raise maxEntries, shorten ttlMs, or use the Redis or PostgreSQL store`,
        );
      }
      this.entries.delete(key);
    }
  }

  private sweep(now: number): void {
    if (now < this.sweepAt) return;
    this.sweepAt = now + 1000;
    for (const [key, entry] of this.entries) if (entry.expiresAt <= now) this.entries.delete(key);
  }
}
