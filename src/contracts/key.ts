/**
 * The key of an event: what its messages must stay in order by (a customer, an account, an
 * aggregate). Producers and consumers share it through the contract, so a consumer that spreads
 * one handler over several partitions can keep every key's messages in one partition, in order,
 * without the producer knowing about partitions.
 *
 * A key is hashed into one of {@link KEY_BUCKETS} buckets, and the bucket travels with the
 * message (`tidings-bucket`): brokers route on it without hashing anything themselves. The hash,
 * the bucket count and the assignment of buckets to partitions are part of the wire contract:
 * they never change, so every producer (in any language) and every consumer agree.
 *
 * @module
 */

/**
 * How many buckets keys are hashed into, and so the most partitions a subscription can have. A
 * persistent constant: changing it would move every key to another partition.
 */
export const KEY_BUCKETS = 64;

/** The most partitions a subscription can have: one per bucket. */
export const MAX_PARTITIONS = KEY_BUCKETS;

/** What a contract's key function may return: a non-empty string, or a finite number. */
export type KeyValue = string | number;

/** Extracts the key from a validated payload (see `EventOptions.key`). */
export type KeyFunction<P> = (payload: P) => KeyValue;

/**
 * A key as it travels: strings as they are, numbers in their shortest decimal form (`42`, not
 * `42.0`), so `customerId: 42` and `'42'` are the same key. Returns `undefined` for anything
 * else (an empty string, `NaN`, an object): the caller reports it.
 */
export function keyText(value: unknown): string | undefined {
  if (typeof value === 'string') return value.length > 0 ? value : undefined;
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  if (typeof value === 'bigint') return value.toString();
  return undefined;
}

const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;

/**
 * The bucket of a key: 32-bit FNV-1a over the key's UTF-8 bytes, its upper and lower 16 bits
 * folded together with XOR, modulo {@link KEY_BUCKETS}. FNV-1a is a few lines in any language
 * (a Python or Go producer computes the same bucket); folding mixes the high bits into the low
 * ones, which FNV-1a alone leaves weak for short keys.
 */
export function bucketOf(key: string): number {
  let hash = FNV_OFFSET;
  const bytes = Buffer.from(key, 'utf8');
  for (let i = 0; i < bytes.length; i++) {
    hash ^= bytes[i]!;
    hash = Math.imul(hash, FNV_PRIME) >>> 0;
  }
  return ((hash >>> 16) ^ (hash & 0xffff)) % KEY_BUCKETS;
}

/** `assignments[n - 1][bucket]` is the partition of the bucket among n partitions. */
const assignments: number[][] = [];

function assignmentFor(partitions: number): number[] {
  for (let n = assignments.length + 1; n <= partitions; n++) {
    const table = n === 1 ? new Array<number>(KEY_BUCKETS).fill(0) : [...assignments[n - 2]!];
    const sizes = new Array<number>(n).fill(0);
    for (const p of table) sizes[p]!++;
    const quota = Math.floor(KEY_BUCKETS / n);
    while (sizes[n - 1]! < quota) {
      // The fullest partition (the lowest index among equals) gives up its highest bucket.
      let from = 0;
      for (let p = 1; p < n - 1; p++) if (sizes[p]! > sizes[from]!) from = p;
      table[table.lastIndexOf(from)] = n - 1;
      sizes[from]!--;
      sizes[n - 1]!++;
    }
    assignments.push(table);
  }
  return assignments[partitions - 1]!;
}

/**
 * The partition (0 … `partitions` − 1) that holds a bucket. The assignment is built one partition
 * at a time: going from n − 1 to n partitions, the new partition takes ⌊64 / n⌋ buckets, each the
 * highest-numbered bucket of the fullest partition (the lowest-numbered among equally full ones).
 * So partitions never differ by more than one bucket, and growing from n − 1 to n moves only the
 * buckets the new partition takes (and so only their keys); every other key stays where it was.
 * Throws a `RangeError` for a count outside 1 … {@link MAX_PARTITIONS} or a bucket outside
 * 0 … 63.
 */
export function partitionOfBucket(bucket: number, partitions: number): number {
  if (!Number.isInteger(partitions) || partitions < 1 || partitions > MAX_PARTITIONS) {
    throw new RangeError(`partitions must be an integer from 1 to ${MAX_PARTITIONS}`);
  }
  const p = assignmentFor(partitions)[bucket];
  if (p === undefined) {
    throw new RangeError(`bucket must be an integer from 0 to ${KEY_BUCKETS - 1}`);
  }
  return p;
}

/** The partition of a key among `partitions`: its bucket's, see {@link partitionOfBucket}. */
export function partitionOfKey(key: string, partitions: number): number {
  return partitionOfBucket(bucketOf(key), partitions);
}

/** The buckets that partition `index` of `partitions` holds, in order. */
export function bucketsOfPartition(index: number, partitions: number): number[] {
  const out: number[] = [];
  for (let b = 0; b < KEY_BUCKETS; b++) if (partitionOfBucket(b, partitions) === index) out.push(b);
  return out;
}
