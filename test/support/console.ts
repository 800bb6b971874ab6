/** The console's API as its page calls it: with the token the page carries. */
export async function consoleFetch(url: string, path: string, init: RequestInit = {}) {
  const html = await (await fetch(url)).text();
  const token = /name="tidings-console-token" content="([0-9a-f]+)"/.exec(html)?.[1] ?? '';
  return fetch(new URL(path, url), {
    ...init,
    headers: { 'x-tidings-console-token': token, ...(init.headers as Record<string, string>) },
  });
}
