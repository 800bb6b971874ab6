/**
 * A RabbitMQ node of a test's own: started on free ports with its own node name, configuration,
 * database, logs and plugins (the management plugin when asked), in a temporary directory, and
 * stopped with that directory removed afterwards. For tests that need what the shared broker must
 * not have (plugins) or must not suffer. It needs root and Debian's rabbitmq-server: the node
 * runs as the `rabbitmq` user, as the package's scripts require.
 */
import { type ChildProcess, execFile, execFileSync, spawn } from 'node:child_process';
import {
  accessSync,
  constants,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createServer, type Server, connect as tcpConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { canRun } from '../../src/testing/broker.js';

const exec = promisify(execFile);
const WATCHDOG = fileURLToPath(new URL('./private-rabbit-watchdog.sh', import.meta.url));
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A running private node. */
export interface PrivateRabbit {
  /** The Erlang node name, `<name>@localhost`, for `rabbitmqctl -n`. */
  readonly node: string;
  /** `amqp://guest:guest@127.0.0.1:<port>`. */
  readonly amqpUrl: string;
  /** `http://guest:guest@127.0.0.1:<port>` when the management plugin was asked for. */
  readonly managementUrl: string | undefined;
  /** The node's directory: configuration, database, logs. Removed by {@link stop}. */
  readonly dir: string;
  /** Stops the node (killing it if it does not stop) and removes its directory; idempotent. */
  stop(): Promise<void>;
}

/** How to start a private node. */
export interface PrivateRabbitOptions {
  /**
   * The start of the node's name; the process id and a random suffix are added.
   * @defaultValue `'tidings-test'`
   */
  readonly name?: string;
  /**
   * Enable `rabbitmq_management`, its HTTP API on 127.0.0.1 only.
   * @defaultValue `false`
   */
  readonly management?: boolean;
  /**
   * The AMQP and management ports. The Erlang distribution port is the AMQP port + 20000.
   * @defaultValue `TIDINGS_PRIVATE_RABBIT_PORTS` (`<amqp>,<management>`) when set, else free
   * ports the system chooses
   */
  readonly ports?: { readonly amqp: number; readonly management: number };
  /**
   * How long the node may take to start, plugins included.
   * @defaultValue 120 000 ms (it took 5 to 7 s, management included, on a shared 2-core machine)
   */
  readonly startTimeoutMs?: number;
}

/**
 * Why a private node cannot be started here (not root, rabbitmq-server not installed, no
 * `rabbitmq` user), or `undefined` when it can.
 */
export function privateRabbitMissing(): string | undefined {
  if (process.getuid?.() !== 0) return 'starting a private RabbitMQ node needs root';
  for (const command of ['rabbitmq-server', 'rabbitmqctl']) {
    if (!findCommand(command)) return `a private RabbitMQ node needs ${command}, not installed`;
  }
  try {
    execFileSync('id', ['-u', 'rabbitmq'], { stdio: 'ignore' });
  } catch {
    return 'a private RabbitMQ node runs as the rabbitmq user, and there is none';
  }
  return undefined;
}

/**
 * Whether `what` can run on a private node, like `brokerReachable` for a shared broker: when it
 * cannot, it says why on stderr and returns false, and in CI (`CI` set) it throws instead, so a
 * machine that lacks rabbitmq-server or root never passes green.
 */
export function canStartPrivateRabbit(what: string): boolean {
  const missing = privateRabbitMissing();
  if (missing && process.env.CI) {
    throw new Error(`${what} need a private RabbitMQ node, and CI requires them: ${missing}.`);
  }
  return canRun(missing === undefined, what, missing ?? '');
}

/**
 * Starts a private node and resolves once it accepts AMQP connections and, with `management`,
 * its HTTP API answers. A node that fails to start is stopped and its directory removed before
 * the error (with the first errors of the node's log) is thrown. Call `stop()` when done, in an
 * `afterAll` or a `finally`; should the test process die first, a watchdog process stops the
 * node and removes its directory once the test process is gone.
 */
export async function startPrivateRabbit(
  options: PrivateRabbitOptions = {},
): Promise<PrivateRabbit> {
  const given = options.ports ?? portsFromEnv();
  const pinned = given && { ...given, dist: given.amqp + 20000 };
  // Free ports are free when chosen, not necessarily when the node binds them: a node that
  // exits while starting (as it does when a port is taken) gets a second try on other ports.
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(options, pinned ?? (await freePorts()));
    } catch (error) {
      if (pinned || attempt === 2 || !(error as StartError).exited) throw error;
    }
  }
}

/** Why a node did not start; `exited` when its processes were gone before it was up. */
interface StartError extends Error {
  exited?: boolean;
}

interface Ports {
  readonly amqp: number;
  readonly management: number;
  readonly dist: number;
}

async function startOnce(options: PrivateRabbitOptions, ports: Ports): Promise<PrivateRabbit> {
  const management = options.management ?? false;
  const dir = mkdtempSync(join(tmpdir(), 'tidings-rabbit-'));
  const name = `${options.name ?? 'tidings-test'}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  const node = `${name}@localhost`;
  writeFileSync(
    join(dir, 'rabbitmq.conf'),
    [
      `listeners.tcp.local = 127.0.0.1:${ports.amqp}`,
      // guest may then connect; it is bound to 127.0.0.1 anyway.
      'loopback_users = none',
      ...(management
        ? [`management.tcp.port = ${ports.management}`, 'management.tcp.ip = 127.0.0.1']
        : []),
      '',
    ].join('\n'),
  );
  writeFileSync(join(dir, 'enabled_plugins'), management ? '[rabbitmq_management].\n' : '[].\n');
  // The package's scripts run the node as the rabbitmq user, which must own what it writes.
  execFileSync('chown', ['-R', 'rabbitmq:rabbitmq', dir]);
  const watchdog = startWatchdog(node, dir);
  let stopped: Promise<void> | undefined;
  const stop = () => {
    stopped ??= stopNode(node, dir, watchdog);
    return stopped;
  };
  const env: NodeJS.ProcessEnv = {
    // What the caller's environment says of another node must not reach this one.
    ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('RABBITMQ_'))),
    RABBITMQ_NODENAME: node,
    RABBITMQ_DIST_PORT: String(ports.dist),
    RABBITMQ_CONFIG_FILE: join(dir, 'rabbitmq.conf'),
    RABBITMQ_MNESIA_BASE: join(dir, 'mnesia'),
    RABBITMQ_LOG_BASE: join(dir, 'log'),
    RABBITMQ_ENABLED_PLUGINS_FILE: join(dir, 'enabled_plugins'),
    // Nobody but this machine needs to reach the node's distribution port.
    RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS: '-kernel inet_dist_use_interface {127,0,0,1}',
  };
  const amqpUrl = `amqp://guest:guest@127.0.0.1:${ports.amqp}`;
  const managementUrl = management ? `http://guest:guest@127.0.0.1:${ports.management}` : undefined;
  const deadline = Date.now() + (options.startTimeoutMs ?? 120_000);
  try {
    await exec(command('rabbitmq-server'), ['-detached'], { env, timeout: 60_000 });
    // The CLI finds the node through epmd, where the node registers a moment after it starts
    // (before that, await_startup fails at once); then await_startup waits for the boot, which
    // fails if a listener cannot bind. So a stranger on the AMQP port cannot pass for the node.
    await waitUntil(deadline, node, 'rabbitmqctl await_startup succeeded', async () => {
      const left = Math.max(1, Math.ceil((deadline - Date.now()) / 1000));
      try {
        await exec(command('rabbitmqctl'), ['-n', node, '-t', String(left), 'await_startup'], {
          timeout: left * 1000 + 10_000,
        });
        return true;
      } catch (error) {
        const { stderr } = error as { stderr?: string };
        return `await_startup said: ${stderr?.trim().split('\n')[0] ?? (error as Error).message}`;
      }
    });
    await waitUntil(deadline, node, `AMQP listened on 127.0.0.1:${ports.amqp}`, () =>
      listening(ports.amqp),
    );
    if (management) {
      await waitUntil(
        deadline,
        node,
        `the management API answered on 127.0.0.1:${ports.management}`,
        () => managementAnswers(ports.management),
      );
    }
  } catch (error) {
    const log = logErrors(dir, node);
    await stop();
    throw Object.assign(
      new Error(
        `the private RabbitMQ node ${node} did not start: ${(error as Error).message}` +
          (log
            ? `\nthe first errors in its log:\n${log}`
            : ` (it logged no error; if it wrote no log at all, Erlang itself did not start: is ` +
              `port ${ports.dist}, its distribution port, taken?)`),
        { cause: error },
      ),
      { exited: (error as StartError).exited === true },
    );
  }
  return { node, amqpUrl, managementUrl, dir, stop };
}

/**
 * Polls `ready` until it returns true (anything else says why not yet); fails early when the
 * node's processes are gone.
 */
async function waitUntil(
  deadline: number,
  node: string,
  what: string,
  ready: () => Promise<true | string | false>,
): Promise<void> {
  for (;;) {
    const answer = await ready();
    if (answer === true) return;
    const why = answer ? ` (${answer})` : '';
    if (nodeProcesses(node).length === 0) {
      throw Object.assign(new Error(`the node exited before ${what}${why}`), { exited: true });
    }
    if (Date.now() > deadline) throw new Error(`time ran out before ${what}${why}`);
    await sleep(250);
  }
}

async function stopNode(node: string, dir: string, watchdog: ChildProcess): Promise<void> {
  try {
    // `shutdown` returns once the node's OS process has exited (`stop` returns before).
    await exec(command('rabbitmqctl'), ['-n', node, 'shutdown'], { timeout: 60_000 });
  } catch {
    // Not started, or not answering: its processes may still be there.
  }
  for (let i = 0; i < 100; i++) {
    const left = nodeProcesses(node);
    if (left.length === 0) break;
    for (const pid of left) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // Exited meanwhile.
      }
    }
    await sleep(100);
  }
  rmSync(dir, { recursive: true, force: true });
  try {
    if (watchdog.pid) process.kill(-watchdog.pid, 'SIGKILL');
  } catch {
    // Already gone.
  }
}

/**
 * A detached shell (private-rabbit-watchdog.sh) that outlives this process: once this process is
 * gone (a killed test worker runs no `afterAll`), it stops the node, kills what is left of it,
 * and removes its directory. `stop()` kills the watchdog once it has done that itself.
 */
function startWatchdog(node: string, dir: string): ChildProcess {
  const args = [String(process.pid), node, dir, command('rabbitmqctl')];
  const child = spawn('sh', [WATCHDOG, ...args], {
    detached: true,
    stdio: 'ignore',
  });
  child.unref();
  return child;
}

function portsFromEnv(): PrivateRabbitOptions['ports'] {
  const value = process.env.TIDINGS_PRIVATE_RABBIT_PORTS;
  if (!value) return undefined;
  const [amqp, management] = value.split(',').map(Number);
  if (!amqp || !management || amqp + 20000 > 65535 || management === amqp) {
    throw new Error(
      `TIDINGS_PRIVATE_RABBIT_PORTS must be "<amqp port>,<management port>" (got "${value}")`,
    );
  }
  return { amqp, management };
}

/** Three distinct ports free on every address, held open together so they differ. */
async function freePorts(): Promise<Ports> {
  const servers: Server[] = [];
  try {
    const ports: number[] = [];
    for (let i = 0; i < 3; i++) {
      const server = createServer();
      servers.push(server);
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(0, () => resolve());
      });
      ports.push((server.address() as { port: number }).port);
    }
    return { amqp: ports[0]!, management: ports[1]!, dist: ports[2]! };
  } finally {
    await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  }
}

function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = tcpConnect({ host: '127.0.0.1', port });
    const done = (up: boolean) => {
      socket.destroy();
      resolve(up);
    };
    socket.setTimeout(2000, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

async function managementAnswers(port: number): Promise<boolean> {
  try {
    const response = await fetch(`http://127.0.0.1:${port}/api/overview`, {
      headers: { authorization: `Basic ${Buffer.from('guest:guest').toString('base64')}` },
      signal: AbortSignal.timeout(3000),
    });
    await response.body?.cancel();
    return response.ok;
  } catch {
    return false;
  }
}

/**
 * The node's OS processes, found by its name in their environment (Linux; the node runs as
 * another user and `-detached` tells no pid, nor does a node that dies before writing its pid
 * file). epmd is left out: started by the first node, it serves every node on the machine.
 */
function nodeProcesses(node: string): number[] {
  const marker = `RABBITMQ_NODENAME=${node}`;
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (!readFileSync(`/proc/${entry}/environ`, 'latin1').split('\0').includes(marker)) continue;
      if (readFileSync(`/proc/${entry}/comm`, 'utf8').trim() === 'epmd') continue;
      found.push(Number(entry));
    } catch {
      // Exited meanwhile.
    }
  }
  return found;
}

/** The first error lines of the node's log (where a crash report names its reason). */
function logErrors(dir: string, node: string): string {
  try {
    return readFileSync(join(dir, 'log', `${node}.log`), 'utf8')
      .split('\n')
      .filter((line) => line.includes('[error]'))
      .slice(0, 15)
      .map((line) => line.slice(0, 300))
      .join('\n');
  } catch {
    return '';
  }
}

/** The path of an installed command (root's PATH has /usr/sbin; another's may not). */
function command(name: string): string {
  return findCommand(name) ?? name;
}

function findCommand(command: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/sbin'];
  for (const d of dirs) {
    if (!d) continue;
    try {
      accessSync(join(d, command), constants.X_OK);
      return join(d, command);
    } catch {
      // Not here.
    }
  }
  return undefined;
}
