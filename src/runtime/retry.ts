import { ConfigError, NonRetryableError } from '../errors.js';

/** How a handler's failures are retried. Every field has a default. */
export interface RetryPolicy {
  /**
   * Total deliveries allowed, the first one included. After the last failed attempt the message
   * goes to the dead-letter queue.
   * @defaultValue 5
   */
  readonly maxAttempts?: number | undefined;
  /**
   * Delay before the first retry, in milliseconds.
   * @defaultValue 500
   */
  readonly baseDelayMs?: number | undefined;
  /**
   * Each further retry waits `factor` times longer than the previous one.
   * @defaultValue 3
   */
  readonly factor?: number | undefined;
  /**
   * No delay exceeds this, in milliseconds.
   * @defaultValue 60000
   */
  readonly maxDelayMs?: number | undefined;
  /**
   * Random spread applied to each delay, as a fraction: 0.25 means ±25%. Spreads out retries of
   * messages that failed together, so a recovering dependency is not hit all at once.
   * @defaultValue 0.25
   */
  readonly jitter?: number | undefined;
  /**
   * Decides whether an error is worth retrying. Errors that are `NonRetryableError` are never
   * retried, whatever this returns.
   * @defaultValue every error is retryable
   */
  readonly retryable?: ((error: unknown) => boolean) | undefined;
}

/** The longest delay a timer can wait: 2^31 - 1 milliseconds. */
const MAX_DELAY_MS = 2 ** 31 - 1;

/** A retry policy with every default filled in. */
export type ResolvedRetryPolicy = {
  readonly [K in keyof RetryPolicy]-?: Exclude<RetryPolicy[K], undefined>;
};

/**
 * The defaults: 5 attempts spaced 0.5 s, 1.5 s, 4.5 s and 13.5 s apart (±25%), about 20 s in all.
 * Long enough to ride out a restarting dependency or a failover, short enough that a message that
 * will never succeed reaches the dead-letter queue while someone is still looking.
 */
export const DEFAULT_RETRY_POLICY: ResolvedRetryPolicy = Object.freeze({
  maxAttempts: 5,
  baseDelayMs: 500,
  factor: 3,
  maxDelayMs: 60_000,
  jitter: 0.25,
  retryable: () => true,
});

/** Fills defaults and checks every field, reporting all problems at once. */
export function resolveRetryPolicy(
  policy: RetryPolicy | undefined,
  base: ResolvedRetryPolicy = DEFAULT_RETRY_POLICY,
  where = 'retry policy',
): ResolvedRetryPolicy {
  const p = { ...base, ...stripUndefined(policy ?? {}) } as ResolvedRetryPolicy;
  const problems: string[] = [];
  if (!Number.isInteger(p.maxAttempts) || p.maxAttempts < 1) {
    problems.push(`maxAttempts must be an integer >= 1 (got ${p.maxAttempts})`);
  }
  if (!(p.baseDelayMs >= 0)) problems.push(`baseDelayMs must be >= 0 (got ${p.baseDelayMs})`);
  if (!(p.factor >= 1)) problems.push(`factor must be >= 1 (got ${p.factor})`);
  if (!(p.maxDelayMs >= p.baseDelayMs)) {
    problems.push(`maxDelayMs must be >= baseDelayMs (got ${p.maxDelayMs})`);
  }
  // Timers (and RabbitMQ's per-message expiration) hold at most a signed 32-bit count of ms.
  if (p.maxDelayMs > MAX_DELAY_MS) {
    problems.push(
      `maxDelayMs must be at most ${MAX_DELAY_MS} (about 24.8 days; got ${p.maxDelayMs})`,
    );
  }
  if (!(p.jitter >= 0 && p.jitter <= 1))
    problems.push(`jitter must be in [0, 1] (got ${p.jitter})`);
  if (typeof p.retryable !== 'function') problems.push('retryable must be a function');
  if (problems.length > 0) throw new ConfigError(problems, where);
  return p;
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/**
 * The delay before retry number `failedAttempts` (1 after the first failure), in milliseconds:
 * `base * factor^(failedAttempts-1)`, capped, then spread by the jitter.
 */
export function retryDelay(
  policy: ResolvedRetryPolicy,
  failedAttempts: number,
  random: () => number = Math.random,
): number {
  const raw = Math.min(
    policy.maxDelayMs,
    policy.baseDelayMs * policy.factor ** (failedAttempts - 1),
  );
  const spread = raw * policy.jitter * (2 * random() - 1);
  return Math.max(0, Math.round(Math.min(policy.maxDelayMs, raw + spread)));
}

/** Whether a handler error should be retried under a policy. */
export function isRetryable(policy: ResolvedRetryPolicy, error: unknown): boolean {
  if (error instanceof NonRetryableError) return false;
  try {
    return policy.retryable(error);
  } catch {
    return true;
  }
}
