import { connect as tcpConnect } from 'node:net';

/**
 * Whether a broker listens at `host:port`. On a laptop a missing broker skips its tests with a
 * visible message; in CI (`CI` set) it is an error, so a broken environment never passes green.
 *
 * ```ts
 * const up = await brokerReachable('127.0.0.1', 5672, 'RabbitMQ');
 * describe.skipIf(!up)('on RabbitMQ', () => { ... });
 * ```
 */
export async function brokerReachable(host: string, port: number, what: string): Promise<boolean> {
  const ok = await new Promise<boolean>((resolve) => {
    const socket = tcpConnect({ host, port });
    const done = (result: boolean) => {
      socket.destroy();
      resolve(result);
    };
    socket.setTimeout(2000, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
  if (ok) return true;
  if (process.env.CI) {
    throw new Error(`${what} is not reachable at ${host}:${port}, and CI requires it.`);
  }
  console.warn(
    `\n  SKIPPED: ${what} is not reachable at ${host}:${port}; its tests are skipped.\n`,
  );
  return false;
}

/**
 * Returns `condition`; when it is false, first says on stderr which tests are skipped and why,
 * so that no test is ever skipped silently. For conditions other than a reachable broker (which
 * {@link brokerReachable} reports itself): a tool that is not installed, a feature a transport
 * does not promise.
 *
 * ```ts
 * it.skipIf(!canRun(hasRsvg(), 'rendering to PNG', 'rsvg-convert is not installed'))('...', ...);
 * ```
 */
export function canRun(condition: boolean, what: string, why: string): boolean {
  if (!condition) console.warn(`\n  SKIPPED: ${what}: ${why}.\n`);
  return condition;
}

/** A name unique to this process and call, for queues and exchanges in tests. */
export function uniqueName(prefix = 't'): string {
  uniqueCounter++;
  return `${prefix}-${process.pid}-${Date.now().toString(36)}-${uniqueCounter}`;
}
let uniqueCounter = 0;
