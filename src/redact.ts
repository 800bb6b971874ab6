/**
 * Secrets never reach logs, errors, headers or CLI output: these helpers take passwords out of
 * URLs, which is where they hide (a connection string in an error message, a broker URL).
 */

/** Replaces the password of a URL with `***`, so it can appear in messages and logs. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    // Not parseable: hide anything between "://user:" and "@".
    return url.replace(/(\/\/[^:/@]*:)[^@]*@/, '$1***@');
  }
}

const URL_WITH_USER = /\b[a-z][a-z0-9+.-]*:\/\/[^\s/@]*:[^\s@]*@[^\s]*/gi;

/** Replaces the password of every URL in a text with `***`. */
export function redactSecrets(text: string): string {
  return text.replace(URL_WITH_USER, (url) => redactUrl(url));
}
