import { consoleLogger, type Logger } from '../logger.js';

/** Options of {@link stopOnSignals}. */
export interface StopOnSignalsOptions {
  /** Named in the log lines. @defaultValue 'tidings' */
  readonly name?: string | undefined;
  /** @defaultValue warnings and errors to stderr */
  readonly logger?: Logger | undefined;
  /** @defaultValue ['SIGINT', 'SIGTERM'] */
  readonly signals?: readonly NodeJS.Signals[] | undefined;
}

/**
 * Runs `stop` once when the process gets SIGINT or SIGTERM: the graceful shutdown of a service's
 * main module (stop the services, which finish their running handlers, then close the
 * transport). A second signal while stopping exits at once with code 130. A failing `stop` sets
 * the exit code to 1. Returns a function that removes the signal handlers.
 *
 * ```ts
 * stopOnSignals(async () => {
 *   await billing.stop();
 *   await transport.close();
 * }, { name: 'billing' });
 * ```
 */
export function stopOnSignals(
  stop: () => Promise<void>,
  options: StopOnSignalsOptions = {},
): () => void {
  const name = options.name ?? 'tidings';
  const logger = options.logger ?? consoleLogger(name);
  const signals = options.signals ?? ['SIGINT', 'SIGTERM'];
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) {
      logger.warn(`${signal} again while stopping: exiting now`);
      process.exit(130);
    }
    stopping = true;
    logger.info(`${signal}: stopping`);
    stop().then(
      () => logger.info('stopped'),
      (error: unknown) => {
        logger.error('could not stop cleanly', { error });
        process.exitCode = 1;
      },
    );
  };
  for (const signal of signals) process.on(signal, onSignal);
  return () => {
    for (const signal of signals) process.off(signal, onSignal);
  };
}
