import type { Service } from 'tidings';

/** The HTTP server in front of a service: Fastify's `listen` and `close`, or any that has them. */
export interface HttpServer {
  listen(options: { port: number; host: string }): Promise<string>;
  close(): Promise<unknown>;
}

/** Something that runs beside the service, started after it and stopped before it (a relay). */
export interface Companion {
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** A service behind its HTTP API, as the four services' factories return it. */
export interface HttpService {
  /** Starts consuming (and the companions), then listens; resolves with the API's base URL. */
  start(): Promise<string>;
  /** Stops listening (no new requests), then the companions, then consuming. */
  stop(): Promise<void>;
}

/**
 * Starts and stops a service and its HTTP API in the order that loses nothing: consuming starts
 * before the API takes requests, so what a request publishes can already be answered, and the API
 * closes first on the way down, so no request publishes into a service that has stopped. When
 * listening fails (the port is taken), what was started is stopped again.
 */
export function serveOverHttp(parts: {
  readonly service: Service;
  readonly http: HttpServer;
  /** @defaultValue 0 (any free port) */
  readonly port?: number | undefined;
  /** @defaultValue '127.0.0.1' */
  readonly host?: string | undefined;
  readonly companions?: readonly (Companion | undefined)[] | undefined;
}): HttpService {
  const { service, http } = parts;
  const companions = (parts.companions ?? []).filter((c): c is Companion => c !== undefined);
  return {
    async start() {
      await service.start();
      try {
        for (const c of companions) await c.start();
        return await http.listen({ port: parts.port ?? 0, host: parts.host ?? '127.0.0.1' });
      } catch (error) {
        for (const c of [...companions].reverse()) await c.stop().catch(() => {});
        await service.stop();
        throw error;
      }
    },
    async stop() {
      await http.close();
      for (const c of [...companions].reverse()) await c.stop();
      await service.stop();
    },
  };
}
