import { consoleLogger, type Logger } from './logger.js';
import { redactUrl } from './redact.js';
import { type StopOnSignalsOptions, stopOnSignals } from './runtime/signals.js';
import { connect } from './transports/connect.js';
import type { Transport } from './transports/transport.js';

/** What {@link runService} starts: anything with a `stop()`, such as a `Service`. */
export interface Stoppable {
  stop(): Promise<void>;
}

/** Options of {@link runService}. */
export interface RunServiceOptions<App extends Stoppable> {
  /** Names the process in its log lines. */
  readonly name: string;
  /**
   * The broker to connect to (`memory://`, `amqp://...`); the password never reaches the logs.
   * @defaultValue `process.env.BROKER_URL`, else `memory://`
   */
  readonly brokerUrl?: string | undefined;
  /**
   * Builds and starts the application on the connected transport, and returns it: `stop()` is
   * called on SIGINT or SIGTERM, before the transport is closed. When it throws, the transport is
   * closed and `runService` rejects with its error.
   */
  readonly start: (transport: Transport) => Promise<App>;
  /** @defaultValue info, warnings and errors to stderr, prefixed with the name */
  readonly logger?: Logger | undefined;
  /** @defaultValue ['SIGINT', 'SIGTERM'] */
  readonly signals?: StopOnSignalsOptions['signals'];
}

/** A process started by {@link runService}. */
export interface RunningService<App extends Stoppable> {
  readonly app: App;
  readonly transport: Transport;
  /** Stops the application, then closes the transport; what a signal does. Safe to call twice. */
  stop(): Promise<void>;
}

/**
 * The main module of a service process, in one call: connect to the broker named by
 * `BROKER_URL`, start the application, and on SIGINT or SIGTERM stop it (its running handlers
 * finish) and close the connection. A second signal while stopping exits at once.
 *
 * ```ts
 * await runService({
 *   name: 'billing',
 *   start: async (transport) => {
 *     const billing = createService({ name: 'billing', transport });
 *     billing.on(orderSubmit, (order) => ledger.post(order));
 *     await billing.start();
 *     return billing;
 *   },
 * });
 * ```
 */
export async function runService<App extends Stoppable>(
  options: RunServiceOptions<App>,
): Promise<RunningService<App>> {
  const url = options.brokerUrl ?? process.env.BROKER_URL ?? 'memory://';
  const logger = options.logger ?? processLogger(options.name);
  let transport: Transport | undefined;
  let app: App | undefined;
  let stopping: Promise<void> | undefined;
  // The signal handlers come first: a SIGTERM while `start` runs (its consumers may already be
  // taking messages) must wait for it and then stop cleanly, not kill the process mid-handler.
  const stop = () => {
    stopping ??= (async () => {
      try {
        await starting.catch(() => {});
        await app?.stop();
      } finally {
        try {
          await transport?.close();
        } finally {
          removeSignals();
        }
      }
    })();
    return stopping;
  };
  const removeSignals = stopOnSignals(stop, {
    name: options.name,
    logger,
    signals: options.signals,
  });
  const starting = (async () => {
    transport = await connect(url);
    try {
      app = await options.start(transport);
    } catch (error) {
      await transport.close().catch(() => {});
      throw error;
    }
  })();
  try {
    await starting;
  } catch (error) {
    removeSignals();
    throw error;
  }
  logger.info(`started on ${redactUrl(url)}`);
  return { app: app!, transport: transport!, stop };
}

/** Like `consoleLogger`, with info lines too: a process says when it started and stopped. */
function processLogger(name: string): Logger {
  const quiet = consoleLogger(name);
  return { ...quiet, info: (message) => console.error(`[${name}] ${message}`) };
}
