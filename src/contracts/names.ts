import { InvalidNameError } from '../errors.js';

/**
 * The longest routing key or queue name AMQP 0-9-1 accepts, in bytes (a `shortstr`).
 */
export const AMQP_SHORTSTR_MAX = 255;

const NAME = /^[a-z0-9_-]+$/;

/**
 * Checks an exchange, event or service name: lowercase letters, digits, `_` and `-`, at least one
 * character. Dots separate words in routing keys, and `*` and `#` are wildcards, so none may appear
 * inside a name.
 */
export function assertName(kind: string, value: unknown): asserts value is string {
  if (typeof value !== 'string')
    throw new InvalidNameError(kind, String(value), 'must be a string');
  if (value.length === 0) throw new InvalidNameError(kind, value, 'must not be empty');
  if (NAME.test(value)) {
    if (Buffer.byteLength(value) > AMQP_SHORTSTR_MAX) {
      throw new InvalidNameError(kind, value, `is longer than ${AMQP_SHORTSTR_MAX} bytes`);
    }
    return;
  }
  throw new InvalidNameError(kind, value, describeBadCharacter(value));
}

function describeBadCharacter(value: string): string {
  if (/\s/.test(value)) return 'must not contain whitespace';
  if (value.includes('.')) return 'must not contain "." (dots separate the words of a routing key)';
  if (value.includes('*') || value.includes('#')) {
    return 'must not contain "*" or "#" (they are wildcards in binding patterns)';
  }
  if (/[A-Z]/.test(value)) return 'must be lowercase';
  return 'may only contain lowercase letters, digits, "_" and "-"';
}

/** Throws when a composed routing key or queue name would not fit in an AMQP shortstr. */
export function assertFits(kind: string, value: string): void {
  if (Buffer.byteLength(value) > AMQP_SHORTSTR_MAX) {
    throw new InvalidNameError(
      kind,
      value,
      `is ${Buffer.byteLength(value)} bytes, longer than AMQP's limit of ${AMQP_SHORTSTR_MAX}; use shorter names`,
    );
  }
}
