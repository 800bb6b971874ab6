/**
 * Adds a problem when `value` is set and is not a positive number of milliseconds (finite, unless
 * `infinity` allows `Infinity` to mean "never").
 */
export function checkPositiveMs(
  problems: string[],
  name: string,
  value: unknown,
  infinity = false,
): void {
  if (value === undefined) return;
  if (typeof value !== 'number' || !(value > 0) || (!infinity && !Number.isFinite(value))) {
    problems.push(`${name} must be a positive number of milliseconds (got ${String(value)})`);
  }
}

/** A duration as the whole, positive number of milliseconds that Redis and PostgreSQL accept. */
export function wholeMs(ms: number): number {
  if (!(ms > 0) || !Number.isFinite(ms)) {
    throw new RangeError(`A duration must be a positive number of milliseconds (got ${ms})`);
  }
  return Math.max(1, Math.ceil(ms));
}
