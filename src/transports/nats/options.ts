import { hostname } from 'node:os';
import { ConfigError } from '../../errors.js';
import { consoleLogger, type Logger } from '../../logger.js';
import { redactUrl } from '../../redact.js';

/** How the transport reconnects after losing the server: exponential backoff with jitter. */
export interface NatsReconnectOptions {
  /**
   * Delay before the first reconnection attempt; each further attempt doubles it.
   * @defaultValue 100
   */
  readonly initialDelayMs?: number;
  /**
   * No delay between attempts exceeds this.
   * @defaultValue 5000
   */
  readonly maxDelayMs?: number;
}

/**
 * Options of {@link natsTransport}. Every field has a default; the URL alone is enough.
 *
 * ```ts
 * natsTransport({ url: process.env.BROKER_URL, name: 'billing' });
 * ```
 */
export interface NatsTransportOptions {
  /**
   * `nats://host:port`, with `user:password@` or a token (`token@`) when the server asks for one,
   * and `?namespace=<ns>` to choose the namespace. The password or token never appears in
   * errors, events or logs.
   * @defaultValue `nats://127.0.0.1:4222`
   */
  readonly url?: string;
  /** Overrides the user name of the URL. */
  readonly username?: string;
  /** Overrides the password of the URL (handy when it comes from a secret store). */
  readonly password?: string;
  /** An authentication token, instead of a user and password. */
  readonly token?: string;
  /**
   * First token of every subject and prefix of every stream name, so several Tidings systems can
   * share one server (NATS's counterpart of a RabbitMQ vhost). Lowercase `[a-z0-9-]`.
   * @defaultValue the URL's `namespace` parameter, else `tidings`
   */
  readonly namespace?: string;
  /**
   * Shown by the server's monitoring (`connz`) as the connection's name.
   * @defaultValue `tidings <host>:<pid>`
   */
  readonly name?: string;
  /**
   * How long the server waits for a delivery's acknowledgement before delivering it again
   * (JetStream `ack_wait`; the server's default is 30 s). The transport tells the server a
   * handler is still working every third of it, so a long handler is not redelivered while its
   * process lives; a process that dies has its messages redelivered after this long.
   * Changing it for an existing queue is a topology conflict.
   * @defaultValue 30000
   */
  readonly ackWaitMs?: number;
  /**
   * After this many deliveries without a settlement (a handler that crashes its process, or runs
   * past the ack wait, each time), the transport moves the message to the queue's dead-letter
   * queue with reason `delivery-limit` instead of handing it out again. `false` removes the
   * limit. The server's own `max_deliver` is set 10 above it, as a backstop.
   * Changing it for an existing queue is a topology conflict.
   * @defaultValue 20
   */
  readonly deliveryLimit?: number | false;
  /**
   * Deliveries a queue's consumer may have unacknowledged on the server, over all processes
   * (JetStream `max_ack_pending`). Prefetch is enforced by each process; this only bounds the
   * total, including retried messages waiting for their delay.
   * Changing it for an existing queue is a topology conflict.
   * @defaultValue 20000
   */
  readonly maxAckPending?: number;
  /**
   * Copies of each stream the server keeps (JetStream `num_replicas`; 1 on a single server).
   * @defaultValue 1
   */
  readonly replicas?: number;
  /**
   * A publish that has no acknowledgement from JetStream this long after it was called (waiting
   * for a connection included) rejects with `PublishTimeoutError`. It is sent again meanwhile
   * with the same `Nats-Msg-Id`, so the server stores it once.
   * @defaultValue 30000
   */
  readonly publishTimeoutMs?: number;
  /**
   * How long the first connection keeps trying before failing with `ConnectionError`. Refused
   * credentials fail at once.
   * @defaultValue 30000
   */
  readonly connectTimeoutMs?: number;
  /** Backoff between reconnection attempts; the transport reconnects forever, until `close()`. */
  readonly reconnect?: NatsReconnectOptions;
  /**
   * Where connection losses, reconnections and background failures are reported.
   * @defaultValue warnings and errors to stderr
   */
  readonly logger?: Logger;
}

/** Options with every default applied and the URL taken apart. */
export interface ResolvedNatsOptions {
  /** `nats://host:port`, without credentials or query. */
  readonly server: string;
  readonly username: string | undefined;
  readonly password: string | undefined;
  readonly token: string | undefined;
  readonly namespace: string;
  readonly name: string;
  readonly ackWaitMs: number;
  readonly deliveryLimit: number | undefined;
  readonly maxAckPending: number;
  readonly replicas: number;
  readonly publishTimeoutMs: number;
  readonly connectTimeoutMs: number;
  readonly reconnect: Required<NatsReconnectOptions>;
  readonly logger: Logger;
  /** The URL to show in messages: password or token replaced by `***`. */
  readonly displayUrl: string;
}

const DEFAULT_URL = 'nats://127.0.0.1:4222';
const NAMESPACE = /^[a-z0-9][a-z0-9-]*$/;

/**
 * Fills in defaults and checks every option, reporting all problems at once in a `ConfigError`.
 * Messages never contain the password or token.
 */
export function resolveNatsOptions(input: string | NatsTransportOptions = {}): ResolvedNatsOptions {
  const options: NatsTransportOptions = typeof input === 'string' ? { url: input } : (input ?? {});
  const problems: string[] = [];
  const rawUrl = options.url ?? DEFAULT_URL;
  let url: URL | undefined;
  try {
    url = new URL(rawUrl);
  } catch {
    problems.push(`url is not a URL: ${redactUrl(rawUrl)}`);
  }
  if (url && url.protocol !== 'nats:') {
    problems.push(`url must start with nats:// (got ${redactUrl(rawUrl)})`);
  }
  const namespace = options.namespace ?? url?.searchParams.get('namespace') ?? 'tidings';
  if (!NAMESPACE.test(namespace)) {
    problems.push(`namespace must match ${NAMESPACE} (got ${JSON.stringify(namespace)})`);
  }
  const ackWaitMs = options.ackWaitMs ?? 30_000;
  checkInt(problems, 'ackWaitMs', ackWaitMs, 1000);
  let deliveryLimit: number | undefined;
  if (options.deliveryLimit === undefined) deliveryLimit = 20;
  else if (options.deliveryLimit !== false) {
    checkInt(problems, 'deliveryLimit', options.deliveryLimit, 1);
    deliveryLimit = options.deliveryLimit;
  }
  const maxAckPending = options.maxAckPending ?? 20_000;
  checkInt(problems, 'maxAckPending', maxAckPending, 1);
  const replicas = options.replicas ?? 1;
  checkInt(problems, 'replicas', replicas, 1);
  const publishTimeoutMs = options.publishTimeoutMs ?? 30_000;
  checkInt(problems, 'publishTimeoutMs', publishTimeoutMs, 1);
  const connectTimeoutMs = options.connectTimeoutMs ?? 30_000;
  checkInt(problems, 'connectTimeoutMs', connectTimeoutMs, 1);
  const reconnect = {
    initialDelayMs: options.reconnect?.initialDelayMs ?? 100,
    maxDelayMs: options.reconnect?.maxDelayMs ?? 5000,
  };
  checkInt(problems, 'reconnect.initialDelayMs', reconnect.initialDelayMs, 1);
  checkInt(problems, 'reconnect.maxDelayMs', reconnect.maxDelayMs, reconnect.initialDelayMs);
  if (problems.length > 0) throw new ConfigError(problems, 'NATS transport options');

  const u = url!;
  const userInUrl = u.username ? decodeURIComponent(u.username) : undefined;
  const passwordInUrl = u.password ? decodeURIComponent(u.password) : undefined;
  // `nats://secret@host` carries a token, as the NATS clients read it.
  const tokenInUrl = userInUrl !== undefined && passwordInUrl === undefined ? userInUrl : undefined;
  const token = options.token ?? (options.username ? undefined : tokenInUrl);
  const username = options.username ?? (tokenInUrl === undefined ? userInUrl : undefined);
  const password = options.password ?? passwordInUrl;
  const host = u.hostname || '127.0.0.1';
  const port = u.port || '4222';
  const server = `nats://${host.includes(':') && !host.startsWith('[') ? `[${host}]` : host}:${port}`;
  const display = new URL(server);
  if (token !== undefined) display.username = '***';
  else if (username !== undefined) {
    display.username = encodeURIComponent(username);
    if (password) display.password = '***';
  }
  if (namespace !== 'tidings') display.searchParams.set('namespace', namespace);
  return {
    server,
    username,
    password,
    token,
    namespace,
    name: options.name ?? `tidings ${hostname()}:${process.pid}`,
    ackWaitMs,
    deliveryLimit,
    maxAckPending,
    replicas,
    publishTimeoutMs,
    connectTimeoutMs,
    reconnect,
    logger: options.logger ?? consoleLogger('tidings nats'),
    displayUrl: display.toString(),
  };
}

function checkInt(problems: string[], name: string, value: unknown, min: number): void {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min) {
    problems.push(`${name} must be an integer >= ${min} (got ${String(value)})`);
  }
}

/** Replaces the password, the token and any `user:secret@` part of a URL in `text` with `***`. */
export function redactNatsSecrets(text: string, o: ResolvedNatsOptions): string {
  let out = text.replace(/(\/\/[^:/@\s]*:)[^@\s]*@/g, '$1***@');
  for (const secret of [o.password, o.token]) {
    if (!secret) continue;
    for (const s of new Set([secret, encodeURIComponent(secret)])) out = out.split(s).join('***');
  }
  return out;
}

/** A copy of `error` whose message and stack carry no secret. */
export function sanitizeError(error: unknown, o: ResolvedNatsOptions): Error {
  const e = error instanceof Error ? error : new Error(String(error));
  const message = redactNatsSecrets(e.message, o);
  if (message === e.message && !(o.password || o.token)) return e;
  const safe = new Error(message);
  safe.name = e.name;
  if (e.stack) safe.stack = redactNatsSecrets(e.stack, o);
  return safe;
}
