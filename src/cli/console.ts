import { startConsole } from '../console/server.js';
import type { Logger } from '../logger.js';
import { redactSecrets } from '../redact.js';
import { redactUrl } from '../transports/connect.js';
import { type DlqContext, withBroker } from './dlq.js';
import { CliError } from './errors.js';
import { loadServices } from './inputs.js';
import type { Io } from './io.js';

/** The default port of `tidings console`. */
export const CONSOLE_PORT = 7100;

/** What `tidings console` needs besides its arguments. */
export interface ConsoleContext extends DlqContext {
  /** Resolves when the console should stop. @defaultValue on SIGINT or SIGTERM */
  readonly untilStopped?: (() => Promise<void>) | undefined;
}

/** `tidings console --services <module> [--broker <url>] [--host] [--port] [--allow-writes]`. */
export async function consoleCommand(
  options: {
    services: string;
    broker: string | undefined;
    host: string | undefined;
    port: number | undefined;
    allowWrites: boolean;
    management: string | undefined;
    title: string | undefined;
  },
  io: Io,
  ctx: ConsoleContext,
): Promise<number> {
  const services = await loadServices(options.services, io.cwd);
  const logger: Logger = {
    debug: () => {},
    info: (message) => io.stdout(redactSecrets(`${message}\n`)),
    warn: (message) => io.stderr(redactSecrets(`warning: ${message}\n`)),
    error: (message) => io.stderr(redactSecrets(`error: ${message}\n`)),
  };
  return withBroker(options.broker, ctx, async (transport) => {
    // Fail now, not on the first page load, when the broker cannot be reached.
    const queue = services
      .flatMap((s) => ('describe' in s ? s.describe() : s).handlers)
      .map((h) => h.queue)[0];
    if (queue && transport.queueStats) await transport.queueStats(queue);
    let management: string | false | undefined;
    if (options.management === 'off') management = false;
    else if (options.management !== undefined) {
      if (!/^https?:\/\//.test(options.management)) {
        throw new CliError('--management must be an http:// or https:// URL, or off');
      }
      management = options.management;
    }
    const running = await startConsole({
      transport,
      services,
      allowWrites: options.allowWrites,
      host: options.host ?? '127.0.0.1',
      port: options.port ?? CONSOLE_PORT,
      brokerUrl: options.broker,
      management,
      logger,
      ...(options.title === undefined ? {} : { title: options.title }),
    }).catch((error: unknown) => {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'EADDRINUSE' || code === 'EACCES') {
        throw new CliError(
          `cannot listen on ${options.host ?? '127.0.0.1'}:${options.port ?? CONSOLE_PORT} ` +
            `(${code}): pick another --port`,
          { exitCode: 1 },
        );
      }
      throw error;
    });
    io.stdout(
      `tidings console on ${running.url} (${options.allowWrites ? 'writes allowed' : 'read-only'}; ` +
        `broker ${redactUrl(options.broker ?? '')}; Ctrl-C stops it)\n`,
    );
    try {
      await (ctx.untilStopped ?? untilSignal)();
    } finally {
      await running.close();
    }
    io.stdout('tidings console stopped\n');
    return 0;
  });
}

function untilSignal(): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      process.off('SIGINT', done);
      process.off('SIGTERM', done);
      resolve();
    };
    process.once('SIGINT', done);
    process.once('SIGTERM', done);
  });
}
