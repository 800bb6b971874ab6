import { type ChannelModel, connect, type Options } from 'amqplib';
import { ConnectionError, StateError } from '../../errors.js';
import type { AmqpTransportEvents, ConnectionRole, TypedEvents } from './events.js';
import { coalesceWrites } from './internals.js';
import { type ResolvedAmqpOptions, redactSecrets } from './options.js';

/** What the owner of a {@link ManagedConnection} does at each step of its life. */
export interface ConnectionHooks {
  /**
   * Runs on every successful connection, before waiting callers get it: re-declare topology,
   * reopen channels, resume consumers. A rejection is reported, not fatal.
   */
  readonly onOpen: (connection: ChannelModel, reconnected: boolean) => Promise<void>;
  /** The connection was lost (not closed on purpose); a reconnection is scheduled. */
  readonly onLost: () => void;
  /** The first connection failed for good; nothing will retry until the next use. */
  readonly onGiveUp: (error: ConnectionError) => void;
}

type State = 'idle' | 'connecting' | 'open' | 'reconnecting' | 'closed';

interface Waiter {
  readonly resolve: (connection: ChannelModel) => void;
  readonly reject: (error: Error) => void;
  readonly timer: NodeJS.Timeout | undefined;
}

/**
 * One AMQP connection that connects lazily, and after a loss reconnects forever with exponential
 * backoff and jitter, until closed. The first connection gives up after `connectTimeoutMs`, or at
 * once when the broker refuses the credentials or the virtual host.
 */
export class ManagedConnection {
  private state: State = 'idle';
  private connection: ChannelModel | undefined;
  private waiters: Waiter[] = [];
  private timer: NodeJS.Timeout | undefined;
  private attempt = 0;
  private everConnected = false;
  private firstAttemptAt = 0;
  /** The node of `options.endpoints` the next attempt goes to. */
  private endpoint = 0;
  private warnedNoCoalescing = false;

  constructor(
    private readonly role: ConnectionRole,
    private readonly options: ResolvedAmqpOptions,
    private readonly events: TypedEvents<AmqpTransportEvents>,
    private readonly hooks: ConnectionHooks,
  ) {}

  /** The node being connected to, or connected. */
  private get target() {
    return this.options.endpoints[this.endpoint] ?? this.options.endpoints[0]!;
  }

  /** The URL (password hidden) of the node connected to, or being tried. */
  get displayUrl(): string {
    return this.target.displayUrl;
  }

  /** Moves to the next node of a cluster (nothing changes for a single one). */
  private nextEndpoint(): void {
    this.endpoint = (this.endpoint + 1) % this.options.endpoints.length;
  }

  /** The open connection, or undefined while there is none. */
  get current(): ChannelModel | undefined {
    return this.state === 'open' ? this.connection : undefined;
  }

  /** True once the connection has been open at least once and is not closed. */
  get established(): boolean {
    return this.everConnected && this.state !== 'closed';
  }

  /** Starts connecting when idle, without waiting. */
  kick(): void {
    if (this.state === 'idle') this.startConnecting();
  }

  /**
   * Resolves with the open connection, connecting first when needed. Rejects with
   * `ConnectionError` when the first connection fails, or when a lost one is not back within
   * `connectTimeoutMs`; with `StateError` once closed.
   */
  get(): Promise<ChannelModel> {
    if (this.state === 'open' && this.connection) return Promise.resolve(this.connection);
    if (this.state === 'closed') {
      return Promise.reject(new StateError('The RabbitMQ transport is closed'));
    }
    if (this.state === 'idle') this.startConnecting();
    return new Promise((resolve, reject) => {
      // While reconnecting the loop never gives up, so each caller bounds its own wait.
      const timer =
        this.state === 'reconnecting'
          ? setTimeout(() => {
              this.waiters = this.waiters.filter((w) => w !== waiter);
              reject(
                new ConnectionError(
                  `Not connected to RabbitMQ at ${this.options.displayUrl} (${this.role} connection) ` +
                    `after ${this.options.connectTimeoutMs} ms; still trying to reconnect.`,
                ),
              );
            }, this.options.connectTimeoutMs)
          : undefined;
      const waiter: Waiter = { resolve, reject, timer };
      this.waiters.push(waiter);
    });
  }

  /** Closes the connection and stops reconnecting. Waiting callers get a `StateError`. */
  async close(): Promise<void> {
    if (this.state === 'closed') return;
    this.state = 'closed';
    clearTimeout(this.timer);
    this.settleWaiters(undefined, new StateError('The RabbitMQ transport is closed'));
    const connection = this.connection;
    this.connection = undefined;
    if (connection) await closeQuietly(connection);
  }

  private startConnecting(): void {
    this.state = 'connecting';
    this.attempt = 0;
    this.firstAttemptAt = Date.now();
    void this.tryConnect();
  }

  private async tryConnect(): Promise<void> {
    this.attempt++;
    let connection: ChannelModel;
    try {
      connection = await this.open();
    } catch (error) {
      if (this.state === 'closed') return;
      const failure = this.sanitize(error);
      const tried = this.target.displayUrl;
      this.failedAttempt(failure, tried);
      return;
    }
    if (this.state === 'closed') {
      await closeQuietly(connection);
      return;
    }
    const reconnected = this.everConnected;
    this.everConnected = true;
    this.attempt = 0;
    this.connection = connection;
    this.state = 'open';
    connection.on('error', () => {
      // Always followed by 'close', which carries the same error; handled there.
    });
    connection.on('close', (error?: Error) => this.lost(connection, error));
    connection.on('blocked', (reason: string) => {
      this.options.logger.warn(`RabbitMQ blocked the ${this.role} connection: ${reason}`);
      this.events.emit('blocked', { connection: this.role, reason: String(reason) });
    });
    connection.on('unblocked', () => this.events.emit('unblocked', { connection: this.role }));
    this.options.logger.info(`${this.role} connection open to ${this.displayUrl}`);
    this.events.emit('connected', {
      connection: this.role,
      url: this.displayUrl,
      reconnected,
    });
    try {
      await this.hooks.onOpen(connection, reconnected);
    } catch (error) {
      this.reportError(error, `setting up the ${this.role} connection`);
    }
    if (this.connection === connection && this.state === 'open') {
      this.settleWaiters(connection, undefined);
    }
  }

  private failedAttempt(error: Error, tried: string): void {
    const permanent = isPermanent(error);
    const elapsed = Date.now() - this.firstAttemptAt;
    // The next attempt goes to the next node of a cluster.
    this.nextEndpoint();
    if (!this.everConnected && (permanent || elapsed >= this.options.connectTimeoutMs)) {
      const failure = new ConnectionError(
        `Cannot connect to RabbitMQ at ${tried} (${this.role} connection)` +
          `${permanent ? '' : ` within ${this.options.connectTimeoutMs} ms`}: ${error.message}`,
        { cause: error },
      );
      this.state = 'idle';
      this.settleWaiters(undefined, failure);
      this.hooks.onGiveUp(failure);
      return;
    }
    const { initialDelayMs, maxDelayMs } = this.options.reconnect;
    const ceiling = Math.min(maxDelayMs, initialDelayMs * 2 ** Math.min(this.attempt - 1, 30));
    // "Equal jitter": half the delay fixed, half random, so a fleet of clients that lost the same
    // broker does not come back in lockstep.
    let delayMs = Math.round(ceiling / 2 + Math.random() * (ceiling / 2));
    if (!this.everConnected) {
      delayMs = Math.max(0, Math.min(delayMs, this.options.connectTimeoutMs - elapsed));
    }
    if (this.everConnected && this.attempt === 1) {
      this.options.logger.warn(
        `cannot reach RabbitMQ at ${tried} (${this.role} connection): ${error.message}; retrying`,
      );
    }
    this.events.emit('reconnecting', {
      connection: this.role,
      attempt: this.attempt,
      delayMs,
      error,
    });
    this.timer = setTimeout(() => {
      if (this.state === 'connecting' || this.state === 'reconnecting') void this.tryConnect();
    }, delayMs);
  }

  private lost(connection: ChannelModel, error: Error | undefined): void {
    if (this.connection !== connection || this.state !== 'open') return;
    this.connection = undefined;
    this.state = 'reconnecting';
    const safe = error ? this.sanitize(error) : undefined;
    this.options.logger.warn(
      `lost the ${this.role} connection to ${this.displayUrl}${safe ? `: ${safe.message}` : ''}; reconnecting`,
    );
    this.events.emit('disconnected', {
      connection: this.role,
      url: this.displayUrl,
      error: safe,
    });
    try {
      this.hooks.onLost();
    } catch (e) {
      this.reportError(e, `handling the loss of the ${this.role} connection`);
    }
    this.attempt = 0;
    // The node that was lost is likely down: start with the next one of a cluster.
    this.nextEndpoint();
    void this.tryConnect();
  }

  private settleWaiters(connection: ChannelModel | undefined, error: Error | undefined): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) {
      clearTimeout(w.timer);
      if (connection) w.resolve(connection);
      else w.reject(error!);
    }
  }

  private reportError(error: unknown, during: string): void {
    const safe = this.sanitize(error);
    this.options.logger.error(`failed ${during}: ${safe.message}`);
    this.events.emit('error', { error: safe, during });
  }

  /** A copy of an error whose message and stack cannot contain the password. */
  sanitize(error: unknown): Error {
    return sanitizeError(error, this.options.password);
  }

  private async open(): Promise<ChannelModel> {
    const o = this.options;
    const target: Options.Connect = {
      protocol: o.protocol,
      hostname: this.target.hostname,
      port: this.target.port,
      username: o.username,
      password: o.password,
      vhost: o.vhost,
      heartbeat: o.heartbeat,
      locale: 'en_US',
    };
    if (o.frameMax !== undefined) target.frameMax = o.frameMax;
    const socket: Record<string, unknown> = {
      // Without it Nagle's algorithm holds small frames (confirms, acks) back: twice the latency.
      noDelay: true,
      timeout: Math.min(10_000, o.connectTimeoutMs),
      clientProperties: { connection_name: `${o.connectionName} (${this.role})` },
    };
    if (o.tls) {
      for (const key of [
        'ca',
        'cert',
        'key',
        'passphrase',
        'servername',
        'rejectUnauthorized',
      ] as const) {
        if (o.tls[key] !== undefined) socket[key] = o.tls[key];
      }
    }
    const model = await connect(target, socket);
    if (!coalesceWrites(model) && !this.warnedNoCoalescing) {
      this.warnedNoCoalescing = true;
      this.options.logger.warn(
        `the ${this.role} connection's socket is not where amqplib 0.10 and 2 keep it: writes are not coalesced per tick (more system calls per message)`,
      );
    }
    return model;
  }
}

/** A plain `Error` with the message of `error`, the password and URL credentials redacted. */
export function sanitizeError(error: unknown, password: string): Error {
  const message = error instanceof Error ? error.message : String(error);
  const safe = new Error(redactSecrets(message, password));
  if (error instanceof Error) {
    safe.name = error.name;
    if (error.stack) safe.stack = redactSecrets(error.stack, password);
    const code = (error as { code?: unknown }).code;
    if (typeof code === 'string' || typeof code === 'number') {
      (safe as Error & { code?: string | number }).code = code;
    }
  }
  return safe;
}

/** TLS failures: an untrusted or mismatched certificate, a refused client certificate, no TLS. */
const PERMANENT_TLS = /^(ERR_SSL_|ERR_TLS_CERT|CERT_|UNABLE_TO_|DEPTH_ZERO_|SELF_SIGNED_)/;

/** Errors that retrying cannot fix: refused credentials, unknown vhost, TLS certificate problems. */
function isPermanent(error: Error): boolean {
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string' && PERMANENT_TLS.test(code)) return true;
  return /ACCESS[-_]REFUSED|NOT[-_]ALLOWED|\b403\b|\b530\b/.test(error.message);
}

/**
 * Closes an amqplib channel or connection and resolves when it is closed, whatever happens.
 * amqplib resolves `close()` only on the broker's close-ok: if the socket dies first the promise
 * never settles, so this also listens for the 'close' event and gives up waiting after a while.
 */
export function closeQuietly(
  closable: { close(): Promise<void>; once(event: 'close', listener: () => void): unknown },
  timeoutMs = 2000,
): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, timeoutMs);
    timer.unref();
    const done = () => {
      clearTimeout(timer);
      resolve();
    };
    closable.once('close', done);
    try {
      closable.close().then(done, done);
    } catch {
      done();
    }
  });
}
