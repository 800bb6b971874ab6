/**
 * Secrets never reach logs, errors, headers or CLI output: these helpers take passwords out of
 * URLs, which is where they hide (a connection string in an error message, a broker URL).
 */

/** Schemes whose lone user name is a secret: `nats://<token>@host` authenticates with a token. */
const TOKEN_SCHEMES = new Set(['nats:', 'tls:']);

/** Replaces the password of a URL (and a NATS URL's token) with `***`, for messages and logs. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    else if (u.username && TOKEN_SCHEMES.has(u.protocol)) u.username = '***';
    return u.toString();
  } catch {
    // Not parseable: hide anything between "://user:" and "@", and a NATS token.
    return url
      .replace(/(\/\/[^:/@]*:)[^@]*@/, '$1***@')
      .replace(/^((?:nats|tls):\/\/)[^:/@]+@/i, '$1***@');
  }
}

const URL_WITH_USER = /\b[a-z][a-z0-9+.-]*:\/\/[^\s/@]*:[^\s@]*@[^\s]*/gi;
const NATS_WITH_TOKEN = /\b(?:nats|tls):\/\/[^\s:/@]+@[^\s]*/gi;

/** Replaces the password of every URL in a text (and every NATS token) with `***`. */
export function redactSecrets(text: string): string {
  return text
    .replace(URL_WITH_USER, (url) => redactUrl(url))
    .replace(NATS_WITH_TOKEN, (url) => redactUrl(url));
}
