import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { ServiceUrls } from './scenario.js';

const SERVICES = ['billing', 'logistic', 'notification', 'order'] as const;

/** The four services running as separate processes, as they are deployed. */
export interface EcommerceProcesses {
  readonly urls: ServiceUrls;
  /** Sends SIGTERM to each process (Order first) and waits for them to exit. */
  stop(): Promise<void>;
}

/**
 * Starts each service as its own Node.js process on `brokerUrl` (`BROKER_URL=... tsx
 * <service>/src/main.ts`), each HTTP API on a free port, and resolves once every one has said
 * where it listens. Their output goes to `print`, prefixed by nothing: each line already names
 * its service.
 */
export async function startProcesses(
  brokerUrl: string,
  print: (line: string) => void,
  timeoutMs = 30_000,
): Promise<EcommerceProcesses> {
  const children = new Map<string, ChildProcess>();
  const urls: Partial<Record<keyof ServiceUrls, string>> = {};
  const stop = async () => {
    for (const name of ['order', 'billing', 'logistic', 'notification']) {
      const child = children.get(name);
      if (!child || child.exitCode !== null) continue;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    }
  };
  try {
    // Consumers first, so their queues exist before Order accepts the first order.
    for (const name of SERVICES) {
      const main = fileURLToPath(new URL(`./${name}/src/main.ts`, import.meta.url));
      const child = spawn(process.execPath, ['--import', 'tsx', main], {
        // Without DATABASE_URL, Billing keeps its ledger in memory: the scenario numbers its
        // orders from 1 on every run, so a ledger kept from an earlier run would refuse them.
        env: {
          ...process.env,
          BROKER_URL: brokerUrl,
          PORT: '0',
          LOG_EVENTS: '1',
          DATABASE_URL: undefined,
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      children.set(name, child);
      urls[name] = await new Promise<string>((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`${name} did not start within ${timeoutMs} ms`)),
          timeoutMs,
        );
        child.once('exit', (code) =>
          reject(new Error(`${name} exited with code ${code} while starting`)),
        );
        let pending = '';
        const onData = (chunk: Buffer) => {
          pending += chunk.toString();
          const lines = pending.split('\n');
          pending = lines.pop() ?? '';
          for (const line of lines) {
            print(line);
            const url = /HTTP on (\S+),/.exec(line)?.[1];
            if (url) {
              clearTimeout(timer);
              resolve(url);
            }
          }
        };
        child.stdout?.on('data', onData);
        child.stderr?.on('data', onData);
      });
    }
  } catch (error) {
    await stop();
    throw error;
  }
  return { urls: urls as ServiceUrls, stop };
}
