import { readFileSync } from 'node:fs';
import * as postgres from 'tidings/postgres';
import * as redis from 'tidings/redis';
import { describe, expect, it } from 'vitest';

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8'));

describe('store entry points', () => {
  it('are published as tidings/redis and tidings/postgres, types first', () => {
    expect(pkg.exports['./redis']).toEqual({
      types: './dist/stores/redis.d.ts',
      default: './dist/stores/redis.js',
    });
    expect(pkg.exports['./postgres']).toEqual({
      types: './dist/stores/postgres.d.ts',
      default: './dist/stores/postgres.js',
    });
  });

  it('export the stores, the inbox, the outbox and their errors', () => {
    expect(Object.keys(redis).sort()).toEqual([
      'IdempotencyStoreError',
      'REDIS_KEY_PREFIX',
      'RedisIdempotencyStore',
    ]);
    expect(Object.keys(postgres).sort()).toEqual([
      'IdempotencyStoreError',
      'OutboxError',
      'OutboxRelay',
      'OutboxSchemaError',
      'POSTGRES_INBOX_TABLE',
      'POSTGRES_OUTBOX_TABLE',
      'POSTGRES_PURGE_BATCH',
      'POSTGRES_PURGE_INTERVAL_MS',
      'POSTGRES_STORE_TABLE',
      'PostgresIdempotencyStore',
      'PostgresInbox',
      'PostgresOutbox',
    ]);
    expect(redis.IdempotencyStoreError).toBe(postgres.IdempotencyStoreError);
  });
});
