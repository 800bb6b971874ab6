import { hostname } from 'node:os';
import { ConfigError } from '../../errors.js';
import { consoleLogger, type Logger } from '../../logger.js';
import { redactUrl } from '../../redact.js';
import type { QueueType } from './args.js';

/** TLS settings for `amqps://` connections. Every field is optional. */
export interface AmqpTlsOptions {
  /**
   * Certificate authorities (PEM) that signed the broker's certificate.
   * @defaultValue Node's bundled root certificates
   */
  readonly ca?: string | Buffer | readonly (string | Buffer)[];
  /** Client certificate (PEM), for brokers that authenticate clients by certificate. */
  readonly cert?: string | Buffer;
  /** Private key (PEM) of the client certificate. */
  readonly key?: string | Buffer;
  /** Passphrase of `key`, when it is encrypted. */
  readonly passphrase?: string;
  /**
   * Host name to check the broker's certificate against (and to send as SNI).
   * @defaultValue the host of the URL
   */
  readonly servername?: string;
  /**
   * Refuse brokers whose certificate does not verify. Turn off only for a local experiment.
   * @defaultValue true
   */
  readonly rejectUnauthorized?: boolean;
}

/** How the transport reconnects after losing the broker: exponential backoff with jitter. */
export interface ReconnectOptions {
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
 * Options of {@link amqpTransport}. Every field has a default; the URL alone is enough.
 *
 * ```ts
 * amqpTransport({ url: process.env.BROKER_URL, connectionName: 'billing' });
 * ```
 */
export interface AmqpTransportOptions {
  /**
   * `amqp://user:password@host:port/vhost` or `amqps://…`. The query may set `heartbeat` (seconds),
   * `frame_max` and `connection_name`. The password never appears in errors, events or logs.
   * @defaultValue `amqp://guest:guest@localhost:5672/`
   */
  readonly url?: string;
  /**
   * Several nodes of one RabbitMQ cluster, tried in turn: the first connection starts with the
   * first one; each failed attempt moves to the next; after a lost connection the transport
   * starts with the node after the one it lost (see docs/rabbitmq.md, "On a cluster"). Every
   * URL must have the same protocol; credentials, vhost and query come from the first. Instead
   * of a list, `url` may name several hosts: `amqp://user:pass@node1:5672,node2:5672/vhost`.
   * @defaultValue `[url]`
   */
  readonly urls?: readonly string[];
  /** Overrides the user name of the URL. */
  readonly username?: string;
  /** Overrides the password of the URL (handy when it comes from a secret store). */
  readonly password?: string;
  /**
   * Virtual host; overrides the URL's path.
   * @defaultValue the URL's path, else `/`
   */
  readonly vhost?: string;
  /**
   * Heartbeat period in seconds, negotiated with the broker (the smaller value wins). A dead peer
   * is noticed after about two periods. 0 turns heartbeats off on amqplib 2; on amqplib 0.10 it
   * means "no preference", and the broker's value applies.
   * @defaultValue 20 (or the URL's `heartbeat`)
   */
  readonly heartbeat?: number;
  /**
   * Shown in the RabbitMQ management UI (client property `connection_name`). The transport opens
   * two connections, suffixed ` (publish)` and ` (consume)`.
   * @defaultValue `tidings <host>:<pid>` (or the URL's `connection_name`)
   */
  readonly connectionName?: string;
  /** TLS settings; they need an `amqps://` URL. */
  readonly tls?: AmqpTlsOptions;
  /**
   * Type of the queues the transport declares (work, retry and dead-letter queues).
   * `quorum`: replicated, durable, with poison-message handling and safe dead-lettering; needs
   * RabbitMQ 3.10 or later. `classic`: faster on a single node, weaker guarantees. See
   * docs/rabbitmq.md. Changing it for an existing queue is a topology conflict.
   * @defaultValue 'quorum'
   */
  readonly queueType?: QueueType;
  /**
   * Quorum queues only: after this many deliveries without an ack (consumer crashes, requeues),
   * RabbitMQ moves the message to the queue's dead-letter queue instead of delivering it again.
   * `false` removes the limit. Changing it for an existing queue is a topology conflict.
   * @defaultValue 20 for quorum queues
   */
  readonly deliveryLimit?: number | false;
  /**
   * Publishes that may wait while there is no connection (connecting, reconnecting). Past it,
   * `publish` rejects at once with `PublishBufferFullError`. While connected there is no bound:
   * publishes wait for the socket to drain, and each resolves on its confirm.
   * @defaultValue 10000
   */
  readonly maxBufferedPublishes?: number;
  /**
   * A publish that has not been confirmed by the broker this long after it was called (waiting
   * for a connection included) rejects with `PublishTimeoutError`. It may still have been
   * delivered: retry it, and make consumers idempotent.
   * @defaultValue 30000
   */
  readonly publishTimeoutMs?: number;
  /**
   * How long the first connection (and any operation waiting for a lost one) keeps trying before
   * failing with `ConnectionError`. Wrong credentials fail at once.
   * @defaultValue 30000
   */
  readonly connectTimeoutMs?: number;
  /** Backoff between reconnection attempts. */
  readonly reconnect?: ReconnectOptions;
  /**
   * Write the frames of common publishes with Tidings' own encoder, straight into amqplib's
   * channel buffer (same bytes, about a third of the CPU of amqplib's encoder; see
   * docs/rabbitmq.md). Turn it off to send everything through `ConfirmChannel.publish`, e.g. for
   * a tool that wraps that method. It turns itself off, with a warning, when amqplib's internals
   * are not as expected, or when `ConfirmChannel.publish` is wrapped by an instrumentation such
   * as `@opentelemetry/instrumentation-amqplib`.
   * @defaultValue true
   */
  readonly fastPublish?: boolean;
  /**
   * Where connection losses, reconnections and cancelled consumers are reported.
   * @defaultValue warnings and errors to stderr
   */
  readonly logger?: Logger;
}

/** One node the transport may connect to. */
export interface AmqpEndpoint {
  readonly hostname: string;
  readonly port: number;
  /** This node's URL to show in messages: the password replaced by `***`. */
  readonly displayUrl: string;
}

/** Options with every default applied and the URL taken apart. */
export interface ResolvedAmqpOptions {
  readonly protocol: 'amqp' | 'amqps';
  /** The first node's host and port (see `endpoints` for all of them). */
  readonly hostname: string;
  readonly port: number;
  /** Every node to try, in order (one unless `urls` or a multi-host `url` named several). */
  readonly endpoints: readonly AmqpEndpoint[];
  readonly username: string;
  readonly password: string;
  readonly vhost: string;
  readonly heartbeat: number;
  readonly frameMax: number | undefined;
  readonly connectionName: string;
  readonly tls: AmqpTlsOptions | undefined;
  readonly queueType: QueueType;
  readonly deliveryLimit: number | undefined;
  readonly maxBufferedPublishes: number;
  readonly publishTimeoutMs: number;
  readonly connectTimeoutMs: number;
  readonly reconnect: Required<ReconnectOptions>;
  readonly fastPublish: boolean;
  readonly logger: Logger;
  /** The URL to show in messages: the password replaced by `***`. */
  readonly displayUrl: string;
}

const DEFAULT_URL = 'amqp://guest:guest@localhost:5672/';

/**
 * Fills in defaults and checks every option, reporting all problems at once in a `ConfigError`.
 * Messages never contain the password.
 */
export function resolveAmqpOptions(input: string | AmqpTransportOptions = {}): ResolvedAmqpOptions {
  const options: AmqpTransportOptions = typeof input === 'string' ? { url: input } : (input ?? {});
  const problems: string[] = [];
  let list: string[];
  if (options.urls !== undefined) {
    if (!Array.isArray(options.urls) || options.urls.length === 0) {
      problems.push('urls must be a non-empty list of amqp:// or amqps:// URLs');
      list = [DEFAULT_URL];
    } else list = options.urls.flatMap((u) => splitHosts(String(u)));
    if (options.url !== undefined) problems.push('give url or urls, not both');
  } else list = splitHosts(options.url ?? DEFAULT_URL);
  const rawUrl = list[0]!;
  let url: URL | undefined;
  try {
    url = new URL(rawUrl);
  } catch {
    problems.push(`url is not a URL: ${redactUrl(rawUrl)}`);
  }
  let protocol: 'amqp' | 'amqps' = 'amqp';
  if (url) {
    if (url.protocol === 'amqps:') protocol = 'amqps';
    else if (url.protocol !== 'amqp:') {
      problems.push(`url must start with amqp:// or amqps:// (got ${redactUrl(rawUrl)})`);
    }
  }
  const query = url?.searchParams;
  const fromQuery = (name: string): number | undefined => {
    const v = query?.get(name);
    if (v === null || v === undefined) return undefined;
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0)
      problems.push(`url parameter ${name} must be an integer >= 0`);
    return n;
  };
  const heartbeat = options.heartbeat ?? fromQuery('heartbeat') ?? 20;
  const frameMax = fromQuery('frame_max') ?? fromQuery('frameMax');
  checkInt(problems, 'heartbeat', heartbeat, 0);
  const queueType = options.queueType ?? 'quorum';
  if (queueType !== 'quorum' && queueType !== 'classic') {
    problems.push(`queueType must be "quorum" or "classic" (got ${String(queueType)})`);
  }
  let deliveryLimit: number | undefined;
  if (options.deliveryLimit === undefined) {
    deliveryLimit = queueType === 'quorum' ? 20 : undefined;
  } else if (options.deliveryLimit !== false) {
    checkInt(problems, 'deliveryLimit', options.deliveryLimit, 1);
    if (queueType !== 'quorum') {
      problems.push('deliveryLimit applies to quorum queues only (queueType is "classic")');
    }
    deliveryLimit = options.deliveryLimit;
  }
  const maxBufferedPublishes = options.maxBufferedPublishes ?? 10_000;
  checkInt(problems, 'maxBufferedPublishes', maxBufferedPublishes, 1);
  if (options.fastPublish !== undefined && typeof options.fastPublish !== 'boolean') {
    problems.push(`fastPublish must be true or false (got ${String(options.fastPublish)})`);
  }
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
  if (options.tls && protocol !== 'amqps') {
    problems.push('tls options need an amqps:// URL');
  }
  const others: URL[] = [];
  for (const raw of list.slice(1)) {
    try {
      const other = new URL(raw);
      if (other.protocol !== url?.protocol) {
        problems.push(`every URL must use the protocol of the first (got ${redactUrl(raw)})`);
      }
      others.push(other);
    } catch {
      problems.push(`url is not a URL: ${redactUrl(raw)}`);
    }
  }
  if (problems.length > 0) throw new ConfigError(problems, 'RabbitMQ transport options');

  const u = url!;
  const username = options.username ?? (u.username ? decodeURIComponent(u.username) : 'guest');
  const password =
    options.password ?? (u.password ? decodeURIComponent(u.password) : u.username ? '' : 'guest');
  const path = u.pathname.length > 1 ? decodeURIComponent(u.pathname.slice(1)) : '/';
  const vhost = options.vhost ?? path;
  const port = u.port ? Number(u.port) : protocol === 'amqps' ? 5671 : 5672;
  const host = u.hostname.replace(/^\[|\]$/g, '') || 'localhost';
  const connectionName =
    options.connectionName ??
    query?.get('connection_name') ??
    `tidings ${hostname()}:${process.pid}`;
  const endpointOf = (v: URL): AmqpEndpoint => {
    const display = new URL(`${protocol}://${v.host || 'localhost'}/`);
    display.username = encodeURIComponent(username);
    if (password) display.password = '***';
    if (vhost !== '/') display.pathname = `/${encodeURIComponent(vhost)}`;
    return {
      hostname: v.hostname.replace(/^\[|\]$/g, '') || 'localhost',
      port: v.port ? Number(v.port) : protocol === 'amqps' ? 5671 : 5672,
      displayUrl: display.toString(),
    };
  };
  const endpoints = [u, ...others].map(endpointOf);
  return {
    protocol,
    hostname: host,
    port,
    endpoints,
    username,
    password,
    vhost,
    heartbeat,
    frameMax,
    connectionName,
    tls: options.tls,
    queueType,
    deliveryLimit,
    maxBufferedPublishes,
    publishTimeoutMs,
    connectTimeoutMs,
    reconnect,
    fastPublish: options.fastPublish ?? true,
    logger: options.logger ?? consoleLogger('tidings amqp'),
    displayUrl: endpoints[0]!.displayUrl,
  };
}

/**
 * `amqp://u:p@a:1,b:2/vh` -> `amqp://u:p@a:1/vh`, `amqp://u:p@b:2/vh`; a URL naming one host is
 * returned as it is.
 */
function splitHosts(raw: string): string[] {
  const m = /^([a-z][a-z0-9+.-]*:\/\/)([^@/?#]*@)?([^/?#]*)(.*)$/is.exec(raw);
  if (!m || !m[3]!.includes(',')) return [raw];
  return m[3]!
    .split(',')
    .filter((h) => h.length > 0)
    .map((h) => `${m[1]}${m[2] ?? ''}${h}${m[4]}`);
}

function checkInt(problems: string[], name: string, value: unknown, min: number): void {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min) {
    problems.push(`${name} must be an integer >= ${min} (got ${String(value)})`);
  }
}

/**
 * Replaces every occurrence of the password (raw and URL-encoded) and any `user:secret@` part of
 * a URL in `text` with `***`. Applied to every message that leaves the transport.
 */
export function redactSecrets(text: string, password: string): string {
  let out = text.replace(/(\/\/[^:/@\s]*:)[^@\s]*@/g, '$1***@');
  if (password) {
    for (const secret of new Set([password, encodeURIComponent(password)])) {
      out = out.split(secret).join('***');
    }
  }
  return out;
}
