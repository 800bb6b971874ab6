import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { TidingsError } from '../../errors.js';
import { redactSecrets } from '../../redact.js';

/**
 * A virtual host of its own on a RabbitMQ broker, made for one run (a test file, a demo) and
 * deleted afterwards: whatever the run declares and publishes lives and dies with it, so it never
 * meets the queues and messages of other runs on the same broker, even with fixed names such as
 * the `order` exchange.
 */
export interface TemporaryVhost {
  /** The vhost's name: the prefix, the process id and a random suffix. */
  readonly name: string;
  /** The broker URL given, with this vhost as its path (the password as given, not redacted). */
  readonly url: string;
  /** Deletes the vhost with everything in it. Idempotent; never rejects. */
  delete(): Promise<void>;
}

/** Options of {@link createTemporaryVhost}. */
export interface TemporaryVhostOptions {
  /**
   * Start of the vhost's name.
   * @defaultValue 'tidings-tmp'
   */
  readonly prefix?: string;
  /**
   * The RabbitMQ node to manage (`rabbitmqctl -n`).
   * @defaultValue rabbitmqctl's own default: `RABBITMQ_NODENAME`, else `rabbit@<this host>`
   */
  readonly node?: string;
  /**
   * The `rabbitmqctl` command.
   * @defaultValue 'rabbitmqctl'
   */
  readonly rabbitmqctl?: string;
  /**
   * Time allowed for each `rabbitmqctl` call.
   * @defaultValue 60000
   */
  readonly timeoutMs?: number;
}

/** `rabbitmqctl` is missing or refused to add or set up a vhost. */
export class VhostAdminError extends TidingsError {
  declare readonly code: 'vhost-admin';
  constructor(
    readonly vhost: string,
    reason: string,
    options?: { cause?: unknown },
  ) {
    super('vhost-admin', `Cannot make the RabbitMQ vhost "${vhost}": ${reason}`, options);
  }
}

/**
 * Makes a vhost with `rabbitmqctl add_vhost` and gives the URL's user every permission on it;
 * resolves with its name, the URL that reaches it, and `delete()`.
 *
 * AMQP cannot create vhosts, so this needs `rabbitmqctl` on this machine, allowed to manage the
 * broker's node (the Erlang cookie): the usual case for a broker installed locally, not for one in
 * a container or elsewhere. Nothing here checks that the node `rabbitmqctl` manages is the broker
 * the URL points to: connect to {@link TemporaryVhost.url} to find out (RabbitMQ refuses an
 * unknown vhost at once). Rejects with {@link VhostAdminError} when `rabbitmqctl` fails; a vhost
 * made before the failure is deleted.
 *
 * ```ts
 * const vhost = await createTemporaryVhost('amqp://guest:guest@127.0.0.1:5672', { prefix: 'e2e' });
 * try {
 *   const transport = amqpTransport({ url: vhost.url });
 *   // ...
 * } finally {
 *   await vhost.delete();
 * }
 * ```
 */
export async function createTemporaryVhost(
  url: string,
  options: TemporaryVhostOptions = {},
): Promise<TemporaryVhost> {
  const base = new URL(url);
  const name = `${options.prefix ?? 'tidings-tmp'}-${process.pid}-${randomBytes(4).toString('hex')}`;
  const ctl = (...args: string[]) => rabbitmqctl(options, args);
  const user = decodeURIComponent(base.username) || 'guest';
  try {
    await ctl('add_vhost', name);
  } catch (error) {
    throw new VhostAdminError(name, describe(error), { cause: error });
  }
  let deleted: Promise<void> | undefined;
  const remove = () => {
    deleted ??= ctl('delete_vhost', name).then(
      () => {},
      () => {},
    );
    return deleted;
  };
  try {
    await ctl('set_permissions', '-p', name, user, '.*', '.*', '.*');
  } catch (error) {
    await remove();
    throw new VhostAdminError(name, `cannot give ${user} access: ${describe(error)}`, {
      cause: error,
    });
  }
  const target = new URL(url);
  target.pathname = `/${encodeURIComponent(name)}`;
  return { name, url: target.href, delete: remove };
}

function rabbitmqctl(options: TemporaryVhostOptions, args: string[]): Promise<void> {
  const node = options.node ? ['-n', options.node] : [];
  return new Promise((resolve, reject) => {
    execFile(
      options.rabbitmqctl ?? 'rabbitmqctl',
      [...node, '-q', ...args],
      { timeout: options.timeoutMs ?? 60_000 },
      (error, _stdout, stderr) => {
        if (!error) return resolve();
        const said = String(stderr).trim().split('\n')[0];
        reject(new Error(said ? `${error.message.split('\n')[0]}: ${said}` : error.message));
      },
    );
  });
}

function describe(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  if ((error as NodeJS.ErrnoException).code === 'ENOENT' || /ENOENT/.test(message)) {
    return 'rabbitmqctl is not installed (it comes with the RabbitMQ server)';
  }
  return redactSecrets(message);
}
