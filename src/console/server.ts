import { randomBytes, timingSafeEqual } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { ConfigError, StateError } from '../errors.js';
import { consoleLogger, type Logger } from '../logger.js';
import {
  type DeadLetter,
  listDeadLetters,
  purgeDeadLetters,
  replayDeadLetters,
} from '../ops/dead-letters.js';
import { flowsOf, type ServiceInput } from '../tooling/flows.js';
import { topologySvg } from '../tooling/svg.js';
import type { Transport } from '../transports/transport.js';
import { managementTarget } from './management.js';
import { type ConsoleModel, type ConsoleQueue, consoleModel } from './model.js';
import { previewBody, previewHeaders } from './preview.js';
import { StatsSampler } from './stats.js';
import { TailSession } from './tail.js';

/** Options of {@link startConsole}. */
export interface ConsoleOptions {
  /** The broker connection the console reads (and, with writes allowed, replays) through. It is never closed by the console. */
  readonly transport: Transport;
  /**
   * The running system's services, or what their `describe()` returns: the console draws their
   * topology and watches their queues and dead-letter queues. Only these queues can be read.
   */
  readonly services: readonly ServiceInput[];
  /** Whether the page may replay and purge dead letters. @defaultValue false (read-only) */
  readonly allowWrites?: boolean | undefined;
  /** The interface to listen on. @defaultValue '127.0.0.1' */
  readonly host?: string | undefined;
  /** The port to listen on; 0 picks a free one. @defaultValue 0 */
  readonly port?: number | undefined;
  /** @defaultValue warnings and errors to stderr */
  readonly logger?: Logger | undefined;
  /**
   * The broker's URL, to name it on the page (without user or password) and to find RabbitMQ's
   * management API. @defaultValue none: the page names the transport's kind only
   */
  readonly brokerUrl?: string | undefined;
  /**
   * RabbitMQ's management HTTP API, for rates and unacknowledged counts: its URL
   * (`http://user:password@host:15672`), or `false` not to use it.
   * @defaultValue derived from an `amqp://` `brokerUrl` (same host, port 15672, same user and
   * password); when it does not answer, passive declares through the transport
   */
  readonly management?: string | false | undefined;
  /** The page's heading. @defaultValue 'Tidings console' */
  readonly title?: string | undefined;
  /** The broker is asked for numbers at most this often, however many pages watch. @defaultValue 2000 */
  readonly statsIntervalMs?: number | undefined;
  /** Dead letters listed per queue, at most. @defaultValue 200 */
  readonly deadLetterLimit?: number | undefined;
  /** Live tails open at once, at most. @defaultValue 4 */
  readonly maxTails?: number | undefined;
}

/** A console that is listening. */
export interface RunningConsole {
  /** Its address, `http://127.0.0.1:7100/`. */
  readonly url: string;
  readonly host: string;
  readonly port: number;
  /** Ends the live tails and stops listening. Leaves the transport open. Idempotent. */
  close(): Promise<void>;
}

const DEFAULTS = {
  host: '127.0.0.1',
  port: 0,
  title: 'Tidings console',
  statsIntervalMs: 2000,
  deadLetterLimit: 200,
  maxTails: 4,
} as const;

/** The header the page sends its token in, with every write. */
export const TOKEN_HEADER = 'x-tidings-console-token';

const BODY_LIMIT = 64 * 1024;
const LIST_PREVIEW_CHARS = 4000;
const TAIL_LIMITS = { buffer: 200, flushMs: 200, previewChars: 2000 } as const;
const PAGE_FILES = {
  '/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/app.js': { file: 'app.js', type: 'text/javascript; charset=utf-8' },
  '/style.css': { file: 'style.css', type: 'text/css; charset=utf-8' },
} as const;

const SECURITY_HEADERS = {
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  'cross-origin-resource-policy': 'same-origin',
  'cache-control': 'no-store',
  // Nothing but the console's own script and style runs or loads: message bodies are untrusted.
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
} as const;

/** An answer the console gives on purpose, with its status and a message for people. */
class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Starts the web console of a running system: an HTTP server with one static page (plain HTML,
 * CSS and JavaScript, shipped in the package) and a small JSON API under `/api/`.
 *
 * - **Topology**: the services' flows, drawn like `tidings topology --format svg`, with each
 *   queue's ready, unacknowledged and consumer counts and rates: from RabbitMQ's management API
 *   when it answers, else from passive declares (`Transport.queueStats`), with net rates from
 *   successive samples.
 * - **Dead letters** of each handler queue, listed with `listDeadLetters` (the same operation as
 *   `tidings dlq list`), and with `allowWrites`, replayed or purged with `replayDeadLetters` and
 *   `purgeDeadLetters`. Operations on one dead-letter queue run one at a time.
 * - **Live tail** of an exchange through `Transport.tap`, filtered by event and version, streamed
 *   as Server-Sent Events in bounded batches.
 *
 * Security: it listens on 127.0.0.1 unless told otherwise and then accepts only loopback `Host`
 * headers (against DNS rebinding); the API answers only requests with the page's token (in a
 * header, or the tail's query); writes answer 403 unless `allowWrites`, and need a JSON body and
 * a same-origin `Origin` (against cross-site requests). No
 * broker password or management credential is ever sent to the page or written to the log.
 * Rejects with `ConfigError` listing every problem in the options.
 */
export async function startConsole(options: ConsoleOptions): Promise<RunningConsole> {
  const settings = resolve(options);
  const logger = options.logger ?? consoleLogger('console');
  const flows = flowsOf(options.services);
  const model = consoleModel(flows);
  const page = await loadPage();
  const token = randomBytes(24).toString('hex');
  const svg = topologySvg(flows, { title: settings.title, live: true });
  const sampler = new StatsSampler(
    options.transport,
    model.queues.flatMap((q) => [q.queue, q.dlq]),
    model.exchanges,
    settings.management,
    logger,
    settings.statsIntervalMs,
  );
  const api = new ConsoleApi(options.transport, model, settings, logger);
  const tails = new Set<TailSession>();
  let allowedHosts: Set<string> | undefined;

  const server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      if (error instanceof HttpError) return sendJson(res, error.status, { error: error.message });
      logger.error(`console: ${req.method} ${pathOf(req)} failed: ${(error as Error).message}`);
      sendJson(res, 500, { error: (error as Error).message });
    });
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (allowedHosts && !allowedHosts.has(String(req.headers.host).toLowerCase())) {
      throw new HttpError(421, 'unexpected Host header: open the console by its own address');
    }
    const url = new URL(req.url ?? '/', 'http://console');
    const path = url.pathname;
    // Reads have effects too (listing dead letters takes and puts back each one, a tail binds a
    // queue): the API answers only the page, which carries the token.
    if (path.startsWith('/api/')) checkToken(req, url);
    if (req.method === 'POST') {
      if (path !== '/api/dead-letters/replay' && path !== '/api/dead-letters/purge') {
        throw new HttpError(404, `no such endpoint: POST ${path}`);
      }
      checkWrite(req);
      const body = await readJson(req);
      const result =
        path === '/api/dead-letters/replay' ? await api.replay(body) : await api.purge(body);
      return sendJson(res, 200, result);
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('allow', 'GET, HEAD, POST');
      throw new HttpError(405, `method ${req.method} is not allowed`);
    }
    if (path in PAGE_FILES) {
      const { file, type } = PAGE_FILES[path as keyof typeof PAGE_FILES];
      const text = file === 'index.html' ? page[file].replace('__TOKEN__', token) : page[file];
      return send(res, 200, type, text);
    }
    switch (path) {
      case '/api/overview':
        return sendJson(res, 200, {
          title: settings.title,
          broker: settings.brokerLabel ?? options.transport.kind,
          transport: options.transport.kind,
          allowWrites: settings.allowWrites,
          tail: typeof options.transport.tap === 'function',
          deadLetterLimit: settings.deadLetterLimit,
          statsIntervalMs: settings.statsIntervalMs,
          model,
        });
      case '/favicon.ico':
        res.writeHead(204, SECURITY_HEADERS);
        res.end();
        return;
      case '/api/topology.svg':
        return send(res, 200, 'image/svg+xml; charset=utf-8', svg);
      case '/api/stats':
        return sendJson(res, 200, await sampler.sample());
      case '/api/dead-letters':
        return sendJson(res, 200, await api.list(url.searchParams.get('queue')));
      case '/api/tail':
        return startTail(req, res, url.searchParams);
      default:
        throw new HttpError(404, `no such page: ${path}`);
    }
  }

  function checkWrite(req: IncomingMessage): void {
    if (!settings.allowWrites) {
      throw new HttpError(
        403,
        'this console is read-only: start it with --allow-writes (allowWrites: true) to replay or purge',
      );
    }
    const origin = req.headers.origin;
    const host = req.headers.host;
    if (origin !== undefined && origin !== `http://${host}` && origin !== `https://${host}`) {
      throw new HttpError(403, `cross-origin write refused (Origin ${origin})`);
    }
    if (!String(req.headers['content-type']).startsWith('application/json')) {
      throw new HttpError(415, 'send the request body as application/json');
    }
  }

  function checkToken(req: IncomingMessage, url: URL): void {
    // EventSource cannot send headers: the live tail carries the token in its query.
    const header = req.headers[TOKEN_HEADER];
    const given = typeof header === 'string' ? header : url.searchParams.get('token');
    if (given === null || !sameSecret(given, token)) {
      throw new HttpError(403, `missing or wrong ${TOKEN_HEADER} header: reload the page`);
    }
  }

  async function startTail(
    req: IncomingMessage,
    res: ServerResponse,
    params: URLSearchParams,
  ): Promise<void> {
    const transport = options.transport;
    if (typeof transport.tap !== 'function') {
      throw new HttpError(501, `the ${transport.kind} transport cannot tap an exchange`);
    }
    const exchange = params.get('exchange') ?? '';
    if (!model.exchanges.includes(exchange)) {
      throw new HttpError(404, `no exchange ${JSON.stringify(exchange)} in this topology`);
    }
    const event = params.get('event') || undefined;
    const versionText = params.get('version') || undefined;
    if (versionText !== undefined && !/^[1-9][0-9]{0,3}$/.test(versionText)) {
      throw new HttpError(400, 'version must be a positive integer');
    }
    if (tails.size >= settings.maxTails) {
      throw new HttpError(429, `${settings.maxTails} live tails are open already: close one`);
    }
    const session = new TailSession(
      res,
      { exchange, event, version: versionText === undefined ? undefined : Number(versionText) },
      TAIL_LIMITS,
      () => tails.delete(session),
    );
    tails.add(session);
    req.socket.setTimeout(0);
    await session.start(transport as Transport & { tap: NonNullable<Transport['tap']> });
  }

  await new Promise<void>((resolvePromise, reject) => {
    server.once('error', reject);
    server.listen(settings.port, settings.host, () => {
      server.off('error', reject);
      resolvePromise();
    });
  });
  const address = server.address() as AddressInfo;
  const port = address.port;
  const loopback = isLoopback(settings.host);
  if (loopback) {
    allowedHosts = new Set([`127.0.0.1:${port}`, `localhost:${port}`, `[::1]:${port}`]);
  } else if (settings.allowWrites) {
    logger.warn(
      `the console listens on ${settings.host} with writes allowed: anyone who can reach it can ` +
        'replay and purge dead letters. Bind 127.0.0.1 unless this network is trusted.',
    );
  }
  const shownHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  let closing: Promise<void> | undefined;
  return {
    url: `http://${shownHost}:${port}/`,
    host: settings.host,
    port,
    close() {
      closing ??= (async () => {
        for (const t of [...tails]) t.end();
        await new Promise<void>((resolvePromise) => {
          server.close(() => resolvePromise());
          server.closeAllConnections();
        });
      })();
      return closing;
    },
  };
}

/** The dead-letter operations of the API, on the known queues only, one at a time per queue. */
class ConsoleApi {
  private readonly locks = new Map<string, Promise<unknown>>();

  constructor(
    private readonly transport: Transport,
    private readonly model: ConsoleModel,
    private readonly settings: Settings,
    private readonly logger: Logger,
  ) {}

  async list(name: string | null): Promise<unknown> {
    const q = this.queueOf(name);
    const limit = this.settings.deadLetterLimit;
    let letters: DeadLetter[];
    try {
      letters = await this.locked(q.dlq, () => listDeadLetters(this.transport, q.dlq, { limit }));
    } catch (error) {
      if (error instanceof StateError && /does not exist/.test(error.message)) {
        return { queue: q.queue, dlq: q.dlq, total: 0, missing: true, letters: [] };
      }
      throw error;
    }
    const stats = await this.transport.queueStats?.(q.dlq).catch(() => undefined);
    return {
      queue: q.queue,
      dlq: q.dlq,
      total: Math.max(stats?.messages ?? letters.length, letters.length),
      limit,
      letters: letters.map((d) => ({
        id: d.id ?? null,
        type: d.type,
        reason: d.reason,
        error: d.error.length > 2000 ? `${d.error.slice(0, 2000)}…` : d.error,
        attempts: d.attempts,
        firstFailedAt: d.firstFailedAt ?? null,
        deadLetteredAt: d.deadLetteredAt ?? null,
        service: d.service ?? null,
        headers: previewHeaders(d.headers),
        body: previewBody(d.body, LIST_PREVIEW_CHARS),
      })),
    };
  }

  async replay(body: unknown): Promise<unknown> {
    const { q, ids } = this.writeRequest(body, 'replay');
    const result = await this.locked(q.dlq, () =>
      replayDeadLetters(this.transport, q.dlq, { ids }),
    );
    const replayed = result.replayed.map((id) => id ?? null);
    const failed = result.failed.map((f) => ({ id: f.messageId ?? null, error: f.message }));
    const notFound = (ids ?? []).filter(
      (id) => !result.replayed.includes(id) && !result.failed.some((f) => f.messageId === id),
    );
    this.logger.info(
      `console: replayed ${replayed.length} from ${q.dlq}` +
        (failed.length ? `, ${failed.length} failed` : '') +
        (notFound.length ? `, ${notFound.length} not found` : ''),
    );
    return { queue: q.queue, dlq: q.dlq, replayed, failed, notFound };
  }

  async purge(body: unknown): Promise<unknown> {
    const { q, ids } = this.writeRequest(body, 'purge');
    const purged = await this.locked(q.dlq, () => purgeDeadLetters(this.transport, q.dlq, { ids }));
    this.logger.info(`console: purged ${purged} from ${q.dlq}`);
    return { queue: q.queue, dlq: q.dlq, purged };
  }

  /** `{ queue, ids: [...] }` or `{ queue, all: true }`; a purge also needs `confirm: true`. */
  private writeRequest(
    body: unknown,
    what: 'replay' | 'purge',
  ): { q: ConsoleQueue; ids: string[] | undefined } {
    const b = (typeof body === 'object' && body !== null ? body : {}) as Record<string, unknown>;
    const q = this.queueOf(typeof b.queue === 'string' ? b.queue : null);
    const ids = b.ids;
    const all = b.all === true;
    const validIds =
      Array.isArray(ids) &&
      ids.length > 0 &&
      ids.length <= 10_000 &&
      ids.every((id) => typeof id === 'string' && id.length > 0 && id.length <= 255);
    if (all === (ids !== undefined) || (ids !== undefined && !validIds)) {
      throw new HttpError(
        400,
        `say what to ${what}: "ids" (1 to 10000 message ids) or "all": true, not both`,
      );
    }
    if (what === 'purge' && b.confirm !== true) {
      throw new HttpError(400, 'a purge cannot be undone: confirm it with "confirm": true');
    }
    return { q, ids: all ? undefined : (ids as string[]) };
  }

  private queueOf(name: string | null): ConsoleQueue {
    const q = this.model.queues.find((x) => x.queue === name || x.dlq === name);
    if (!q) {
      throw new HttpError(
        404,
        `no queue ${JSON.stringify(name)} among this topology's handler queues`,
      );
    }
    return q;
  }

  private locked<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const before = this.locks.get(key) ?? Promise.resolve();
    const run = before.then(fn, fn);
    const settled = run.catch(() => {});
    this.locks.set(key, settled);
    void settled.then(() => {
      if (this.locks.get(key) === settled) this.locks.delete(key);
    });
    return run;
  }
}

interface Settings {
  readonly host: string;
  readonly port: number;
  readonly allowWrites: boolean;
  readonly title: string;
  readonly statsIntervalMs: number;
  readonly deadLetterLimit: number;
  readonly maxTails: number;
  readonly brokerLabel: string | undefined;
  readonly management: ReturnType<typeof managementTarget>;
}

function resolve(options: ConsoleOptions): Settings {
  const problems: string[] = [];
  if (!options?.transport || typeof options.transport.get !== 'function') {
    problems.push('transport is required (connect(url), memoryTransport() or amqpTransport())');
  }
  if (!Array.isArray(options?.services) || options.services.length === 0) {
    problems.push('services must list at least one service (or its describe())');
  }
  const int = (name: string, value: unknown, min: number, max: number) => {
    if (value === undefined) return;
    if (!Number.isInteger(value) || (value as number) < min || (value as number) > max) {
      problems.push(`${name} must be an integer from ${min} to ${max} (got ${String(value)})`);
    }
  };
  int('port', options?.port, 0, 65_535);
  int('statsIntervalMs', options?.statsIntervalMs, 100, 3_600_000);
  int('deadLetterLimit', options?.deadLetterLimit, 1, 10_000);
  int('maxTails', options?.maxTails, 1, 100);
  if (options?.host !== undefined && (typeof options.host !== 'string' || options.host === '')) {
    problems.push('host must be a non-empty string such as 127.0.0.1');
  }
  let management: ReturnType<typeof managementTarget>;
  try {
    management = managementTarget(options?.brokerUrl, options?.management);
  } catch (error) {
    problems.push(`management: ${(error as Error).message}`);
  }
  if (problems.length > 0) throw new ConfigError(problems, 'console options');
  return {
    host: options.host ?? DEFAULTS.host,
    port: options.port ?? DEFAULTS.port,
    allowWrites: options.allowWrites === true,
    title: options.title ?? DEFAULTS.title,
    statsIntervalMs: options.statsIntervalMs ?? DEFAULTS.statsIntervalMs,
    deadLetterLimit: options.deadLetterLimit ?? DEFAULTS.deadLetterLimit,
    maxTails: options.maxTails ?? DEFAULTS.maxTails,
    brokerLabel: brokerLabel(options.brokerUrl),
    management,
  };
}

/** The broker as the page names it: scheme, host, port and virtual host; never user or password. */
export function brokerLabel(url: string | undefined): string | undefined {
  if (url === undefined) return undefined;
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname === '/' ? '' : u.pathname}`;
  } catch {
    return 'an unparseable broker URL';
  }
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\./.test(host);
}

function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > BODY_LIMIT) throw new HttpError(413, `request body over ${BODY_LIMIT} bytes`);
    chunks.push(chunk as Buffer);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new HttpError(400, 'the request body is not JSON');
  }
}

function pathOf(req: IncomingMessage): string {
  return (req.url ?? '/').split('?')[0] ?? '/';
}

function send(res: ServerResponse, status: number, type: string, body: string): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  res.writeHead(status, { ...SECURITY_HEADERS, 'content-type': type });
  res.end(res.req?.method === 'HEAD' ? undefined : body);
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  send(res, status, 'application/json; charset=utf-8', JSON.stringify(body));
}

type PageFile = (typeof PAGE_FILES)[keyof typeof PAGE_FILES]['file'];

/** The page's files, beside this module (`src/console/page/` or `dist/console/page/`). */
async function loadPage(): Promise<Record<PageFile, string>> {
  const dir = new URL('./page/', import.meta.url);
  const out = {} as Record<PageFile, string>;
  for (const { file } of Object.values(PAGE_FILES)) {
    try {
      out[file] = await readFile(new URL(file, dir), 'utf8');
    } catch {
      throw new StateError(
        `the console's page is missing: ${fileURLToPath(new URL(file, dir))} (was Tidings built with npm run build?)`,
      );
    }
  }
  return out;
}
