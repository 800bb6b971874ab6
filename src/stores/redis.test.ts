import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../errors.js';
import { brokerReachable, uniqueName } from '../testing/broker.js';
import { describeIdempotencyStoreConformance } from '../testing/stores.js';
import { IdempotencyStoreError, REDIS_KEY_PREFIX, RedisIdempotencyStore } from './redis.js';

const url = new URL(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
const up = await brokerReachable(url.hostname, Number(url.port || 6379), 'Redis');

describe('RedisIdempotencyStore without a server', () => {
  it('reports every problem with its options at once', () => {
    expect(
      () => new RedisIdempotencyStore({ client: {} as never, keyPrefix: 3 as never }),
    ).toThrowError(ConfigError);
    try {
      new RedisIdempotencyStore({ client: {} as never, keyPrefix: 3 as never });
    } catch (error) {
      expect((error as ConfigError).problems).toHaveLength(2);
    }
  });

  it('wraps a failing client in IdempotencyStoreError with the cause', async () => {
    const cause = new Error('connect ECONNREFUSED');
    const store = new RedisIdempotencyStore({
      client: { set: () => Promise.reject(cause), eval: () => Promise.reject(cause) },
    });
    const error = await store.claim('k', 1000).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(IdempotencyStoreError);
    expect(error).toMatchObject({ code: 'idempotency-store', operation: 'claim', key: 'k', cause });
    await expect(store.complete('k', 1000)).rejects.toBeInstanceOf(IdempotencyStoreError);
  });

  it('uses tidings:processed: as the default key prefix', () => {
    const store = new RedisIdempotencyStore({
      client: { set: async () => 'OK', eval: async () => 0 },
    });
    expect(REDIS_KEY_PREFIX).toBe('tidings:processed:');
    expect(store.redisKey('billing.order.submit:0190')).toBe(
      'tidings:processed:billing.order.submit:0190',
    );
  });
});

describe.skipIf(!up)('RedisIdempotencyStore on Redis', () => {
  const keyPrefix = `tidings-test:${uniqueName('run')}:`;
  const clients: Redis[] = [];
  const connect = () => {
    const client = new Redis(url.href, { lazyConnect: false, maxRetriesPerRequest: 1 });
    clients.push(client);
    return client;
  };
  const admin = up ? connect() : undefined;

  afterAll(async () => {
    if (admin) {
      const keys = await admin.keys(`${keyPrefix}*`);
      if (keys.length > 0) await admin.del(...keys);
    }
    await Promise.all(clients.map((c) => c.quit()));
  });

  describeIdempotencyStoreConformance('Redis', {
    // One connection per store, as separate processes would have.
    create: () => new RedisIdempotencyStore({ client: connect(), keyPrefix }),
    features: { tokenRelease: true },
  });

  it('stores busy with a token and done under the prefix, both with an expiry', async () => {
    const store = new RedisIdempotencyStore({ client: admin!, keyPrefix });
    const key = uniqueName('k');
    await store.claim(key, 5_000);
    expect(await admin!.get(`${keyPrefix}${key}`)).toMatch(/^busy:[0-9a-f-]{36}$/);
    expect(await admin!.pttl(`${keyPrefix}${key}`)).toBeGreaterThan(4_000);
    await store.complete(key, 60_000);
    expect(await admin!.get(`${keyPrefix}${key}`)).toBe('done');
    expect(await admin!.pttl(`${keyPrefix}${key}`)).toBeGreaterThan(59_000);
  });

  it('fails a claim with IdempotencyStoreError while Redis is unreachable', async () => {
    const client = new Redis('redis://127.0.0.1:1', {
      lazyConnect: true,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
    });
    const store = new RedisIdempotencyStore({ client, keyPrefix });
    await expect(store.claim('k', 1000)).rejects.toBeInstanceOf(IdempotencyStoreError);
    client.disconnect();
  });
});
