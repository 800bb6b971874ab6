/**
 * AMQP 0-9-1 topic matching, exactly as RabbitMQ does it.
 *
 * A key is split on `.` into words; empty words are words (`a..b` has three), and the empty key
 * has no words at all. In a pattern, `*` matches exactly one word and `#` matches zero or more.
 * So `order.#` matches `order`, `a.#.c` matches `a.c`, `*` does not match the empty key, and `#`
 * matches every key including the empty one.
 */

/** Splits a routing key or a pattern into words the way RabbitMQ does. */
export function splitWords(key: string): string[] {
  return key === '' ? [] : key.split('.');
}

/** A compiled pattern: call it with a routing key. */
export type TopicMatcher = (routingKey: string) => boolean;

/** Compiles a binding pattern once, for matching many routing keys. */
export function compilePattern(pattern: string): TopicMatcher {
  const words = splitWords(pattern);
  if (!words.includes('*') && !words.includes('#')) {
    return (key) => key === pattern;
  }
  if (words.length === 1 && words[0] === '#') return () => true;
  return (key) => matchWords(words, splitWords(key));
}

/** True when `routingKey` matches the binding `pattern` under AMQP topic rules. */
export function matchesPattern(pattern: string, routingKey: string): boolean {
  return compilePattern(pattern)(routingKey);
}

// Iterative matcher with one backtrack point per `#`, like glob matching: linear in practice and
// never exponential, since a later `#` supersedes the backtrack point of an earlier one.
function matchWords(pattern: readonly string[], key: readonly string[]): boolean {
  let p = 0;
  let k = 0;
  let starP = -1;
  let starK = 0;
  while (k < key.length) {
    const word = pattern[p];
    if (word === '#') {
      starP = p++;
      starK = k;
    } else if (word !== undefined && (word === '*' || word === key[k])) {
      p++;
      k++;
    } else if (starP >= 0) {
      p = starP + 1;
      k = ++starK;
    } else {
      return false;
    }
  }
  while (pattern[p] === '#') p++;
  return p === pattern.length;
}
