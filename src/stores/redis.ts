import { randomUUID } from 'node:crypto';
import { ConfigError } from '../errors.js';
import type { ClaimResult, IdempotencyStore } from '../runtime/idempotency.js';
import { IdempotencyStoreError } from './errors.js';
import { wholeMs } from './options.js';

export { IdempotencyStoreError } from './errors.js';

/**
 * The few commands {@link RedisIdempotencyStore} sends, as an ioredis `Redis` or `Cluster`
 * instance has them. Tidings never imports a Redis client: pass your own.
 */
export interface RedisClientLike {
  /** `SET key value PX milliseconds`. */
  set(key: string, value: string, mode: 'PX', milliseconds: number): Promise<unknown>;
  /** `EVAL script numkeys key [key ...] arg [arg ...]`: runs a Lua script atomically. */
  eval(script: string, numKeys: number, ...keysAndArgs: (string | number)[]): Promise<unknown>;
}

/** Options of {@link RedisIdempotencyStore}. */
export interface RedisIdempotencyStoreOptions {
  /** A connected client with the ioredis API (`new Redis(url)`). The store never closes it. */
  readonly client: RedisClientLike;
  /**
   * Prepended to every key. Give each application (or test run) sharing a Redis its own prefix.
   * @defaultValue `'tidings:processed:'`
   */
  readonly keyPrefix?: string;
}

/** Default of {@link RedisIdempotencyStoreOptions.keyPrefix}. */
export const REDIS_KEY_PREFIX = 'tidings:processed:';

// A key holds `busy:<token>` while claimed and `done` once processed; both carry an expiry (PX),
// so Redis forgets them by itself. One script makes "read, then claim if free" atomic.
const CLAIM = `
local v = redis.call('GET', KEYS[1])
if not v then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 'claimed'
end
if v == 'done' then return 'done' end
return 'busy'
`;

// Compare-and-delete: a consumer whose lease expired must not drop the claim another consumer
// took since, nor a `done` record.
const RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`;

/**
 * An {@link IdempotencyStore} in Redis, shared by every process of a service.
 *
 * Each message key is one Redis string under {@link RedisIdempotencyStoreOptions.keyPrefix}:
 * `busy:<token>` while a consumer holds the claim (expiring after the lease), `done` once the
 * handler returned (expiring after the handler's `ttlMs`). Claiming is one Lua script, so two
 * consumers racing on a key never both get `claimed`. Releasing deletes the key only if it still
 * holds this store's token, so a consumer whose lease ran out cannot drop a newer claim.
 *
 * Durability is Redis's: with persistence off, a Redis restart forgets every processed id, and
 * duplicates arriving afterwards run again.
 *
 * ```ts
 * import Redis from 'ioredis';
 * import { RedisIdempotencyStore } from 'tidings/redis';
 * const store = new RedisIdempotencyStore({ client: new Redis(process.env.REDIS_URL) });
 * createService({ name: 'billing', transport, idempotency: { store } });
 * ```
 */
export class RedisIdempotencyStore implements IdempotencyStore {
  private readonly client: RedisClientLike;
  private readonly prefix: string;
  /** Tokens of the claims this instance holds, by key. */
  private readonly tokens = new Map<string, string>();

  constructor(options: RedisIdempotencyStoreOptions) {
    const problems: string[] = [];
    if (typeof options?.client?.eval !== 'function' || typeof options.client.set !== 'function') {
      problems.push('client must be a Redis client with set() and eval() (e.g. new Redis(url))');
    }
    if (options?.keyPrefix !== undefined && typeof options.keyPrefix !== 'string') {
      problems.push('keyPrefix must be a string');
    }
    if (problems.length > 0) throw new ConfigError(problems, 'RedisIdempotencyStore options');
    this.client = options.client;
    this.prefix = options.keyPrefix ?? REDIS_KEY_PREFIX;
  }

  /** The Redis key that holds `key`'s state. */
  redisKey(key: string): string {
    return this.prefix + key;
  }

  async claim(key: string, leaseMs: number): Promise<ClaimResult> {
    const token = randomUUID();
    let result: unknown;
    try {
      result = await this.client.eval(
        CLAIM,
        1,
        this.redisKey(key),
        `busy:${token}`,
        wholeMs(leaseMs),
      );
    } catch (cause) {
      throw new IdempotencyStoreError('Redis', 'claim', key, { cause });
    }
    if (result === 'claimed') {
      this.tokens.set(key, token);
      return 'claimed';
    }
    if (result === 'done' || result === 'busy') return result;
    throw new IdempotencyStoreError('Redis', 'claim', key, {
      cause: new Error(`unexpected script result ${JSON.stringify(result)}`),
    });
  }

  async complete(key: string, ttlMs: number): Promise<void> {
    this.tokens.delete(key);
    try {
      await this.client.set(this.redisKey(key), 'done', 'PX', wholeMs(ttlMs));
    } catch (cause) {
      throw new IdempotencyStoreError('Redis', 'complete', key, { cause });
    }
  }

  /** Deletes the key if it still holds this instance's claim; otherwise does nothing. */
  async release(key: string): Promise<void> {
    const token = this.tokens.get(key);
    if (token === undefined) return;
    this.tokens.delete(key);
    try {
      await this.client.eval(RELEASE, 1, this.redisKey(key), `busy:${token}`);
    } catch (cause) {
      throw new IdempotencyStoreError('Redis', 'release', key, { cause });
    }
  }
}
