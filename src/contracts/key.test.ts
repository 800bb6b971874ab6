import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { PartitionKeyError } from '../errors.js';
import { defineEvent, defineExchange, isKeyed, keyOf } from './event.js';
import {
  bucketOf,
  bucketsOfPartition,
  KEY_BUCKETS,
  keyText,
  partitionOfBucket,
  partitionOfKey,
} from './key.js';

describe('keys, buckets and partitions', () => {
  it('hashes keys into the same buckets forever (a wire contract: a change moves every key)', () => {
    const keys = ['', 'a', 'customer-1', 'customer-2', '42', 'ü', 'ordre-№7', 'x'.repeat(300)];
    expect(Object.fromEntries(keys.map((k) => [k.slice(0, 12), bucketOf(k)]))).toMatchSnapshot();
    expect(KEY_BUCKETS).toBe(64);
  });

  it('assigns buckets to partitions by a fixed table, the same forever', () => {
    for (const n of [2, 3, 4, 8]) {
      expect(
        Array.from({ length: KEY_BUCKETS }, (_, b) => partitionOfBucket(b, n)).join(''),
      ).toMatchSnapshot(`${n} partitions`);
    }
  });

  it('balances the buckets: partitions differ by at most one', () => {
    for (let n = 1; n <= 64; n++) {
      const sizes = Array.from({ length: n }, (_, i) => bucketsOfPartition(i, n).length);
      expect(Math.max(...sizes) - Math.min(...sizes)).toBeLessThanOrEqual(1);
      expect(sizes.reduce((a, b) => a + b, 0)).toBe(KEY_BUCKETS);
    }
  });

  it('moves only the buckets a new partition takes when the count grows by one', () => {
    for (let n = 2; n <= 64; n++) {
      let moved = 0;
      for (let b = 0; b < KEY_BUCKETS; b++) {
        const before = partitionOfBucket(b, n - 1);
        const after = partitionOfBucket(b, n);
        if (before !== after) {
          moved++;
          // A bucket that moves goes to the new partition, never between old ones.
          expect(after).toBe(n - 1);
        }
      }
      expect(moved).toBe(Math.floor(KEY_BUCKETS / n));
    }
  });

  it('spreads realistic keys evenly over buckets', () => {
    const counts = new Array<number>(KEY_BUCKETS).fill(0);
    for (let i = 0; i < 64_000; i++) counts[bucketOf(`customer-${i}`)]!++;
    expect(Math.min(...counts)).toBeGreaterThan(850);
    expect(Math.max(...counts)).toBeLessThan(1150);
  });

  it('refuses counts and buckets out of range', () => {
    expect(() => partitionOfBucket(0, 0)).toThrow(RangeError);
    expect(() => partitionOfBucket(0, 65)).toThrow(RangeError);
    expect(() => partitionOfBucket(64, 4)).toThrow(RangeError);
    expect(partitionOfKey('customer-1', 1)).toBe(0);
  });

  it('reads numbers and strings as the same key, and nothing else', () => {
    expect(keyText(42)).toBe('42');
    expect(keyText('42')).toBe('42');
    expect(keyText(1.5)).toBe('1.5');
    for (const bad of ['', Number.NaN, Number.POSITIVE_INFINITY, null, undefined, {}, true]) {
      expect(keyText(bad)).toBeUndefined();
    }
  });
});

describe('an event key in the contract', () => {
  const shop = defineExchange('shop');
  const Order = z.object({ id: z.number(), customer: z.string() });

  it('is read from the payload, per version', () => {
    const placed = defineEvent(shop, 'placed', Order, { key: (o) => o.customer }).version(
      z.object({ id: z.number(), buyer: z.object({ id: z.number() }) }),
      (o) => ({ id: o.id, buyer: { id: Number(o.customer) } }),
      { key: (o) => o.buyer.id },
    );
    expect(isKeyed(placed)).toBe(true);
    expect(keyOf(placed.versions[0]!, { id: 1, customer: 'c7' })).toBe('c7');
    expect(keyOf(placed.versions[1]!, { id: 1, buyer: { id: 7 } })).toBe('7');
    expect(isKeyed(defineEvent(shop, 'plain', Order))).toBe(false);
  });

  it('must be given again by every later version once a version has one', () => {
    const placed = defineEvent(shop, 'placed', Order, { key: (o) => o.customer });
    expect(() => placed.version(Order, (o) => o)).toThrow(/version 2 needs a key/);
    expect(() => defineEvent(shop, 'bad', Order, { key: 'customer' as never })).toThrow(
      /key must be a function/,
    );
  });

  it('fails with PartitionKeyError when the key cannot be read', () => {
    const placed = defineEvent(shop, 'placed', Order, {
      key: (o) => (o.customer === 'boom' ? JSON.parse('{') : o.customer),
    });
    const v1 = placed.versions[0]!;
    expect(() => keyOf(v1, { id: 1, customer: '' })).toThrow(PartitionKeyError);
    expect(() => keyOf(v1, { id: 1, customer: '' })).toThrow(/got an empty string/);
    expect(() => keyOf(v1, { id: 1, customer: 'boom' })).toThrow(/key function threw/);
  });
});
