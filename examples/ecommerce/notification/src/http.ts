import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** A minimal read-only JSON API: each path maps to a function returning the body. */
export type JsonRoutes = Readonly<Record<string, () => unknown>>;

/** A listening read-only JSON API. */
export interface JsonServer {
  /** Base URL, e.g. `http://127.0.0.1:41234`. */
  readonly url: string;
  close(): Promise<void>;
}

/**
 * Serves `GET <path>` for each route as JSON; anything else is 404. Plain `node:http` keeps this
 * service free of a web framework: it only exposes its state for inspection.
 */
export async function serveJson(
  routes: JsonRoutes,
  port: number,
  host: string,
): Promise<JsonServer> {
  const server = createServer((request, response) => {
    const path = request.url ?? '';
    const route =
      request.method === 'GET' && Object.hasOwn(routes, path) ? routes[path] : undefined;
    const [status, body] = route ? [200, route()] : [404, { error: `no route ${request.url}` }];
    response.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const { address, family, port: actual } = server.address() as AddressInfo;
  const hostname = family === 'IPv6' ? `[${address}]` : address;
  return { url: `http://${hostname}:${actual}`, close: () => closeServer(server) };
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve, reject) => {
    server.close((error) => (error ? reject(error) : resolve()));
    server.closeIdleConnections();
  });
}
