import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { consoleFetch } from '../../test/support/console.js';
import { defineEvent, defineExchange } from '../contracts/event.js';
import { NonRetryableError } from '../errors.js';
import { type Logger, silentLogger } from '../logger.js';
import { createService, type Service } from '../runtime/service.js';
import { waitFor } from '../testing/conformance.js';
import { MemoryBroker } from '../transports/memory/broker.js';
import { type RunningConsole, startConsole, TOKEN_HEADER } from './server.js';

const shop = defineExchange('shop');
const orderPlaced = defineEvent(shop, 'placed', z.object({ id: z.number() })).version(
  z.object({ id: z.number(), note: z.string() }),
  (v1) => ({ ...v1, note: '' }),
);

const SECRET = 's3cret-Pa55';

interface System {
  broker: MemoryBroker;
  shopService: Service;
  billing: Service;
  billed: number[];
  fail: { on: boolean };
}

const running: { close(): Promise<void> }[] = [];
afterEach(async () => {
  for (const r of running.splice(0).reverse()) await r.close();
});

async function system(): Promise<System> {
  const broker = new MemoryBroker();
  const fail = { on: true };
  const billed: number[] = [];
  const billing = createService({
    name: 'billing',
    transport: broker.transport(),
    logger: silentLogger,
  });
  billing.on(orderPlaced, (o) => {
    if (fail.on) throw new NonRetryableError(`ledger closed for order ${o.id}`);
    billed.push(o.id);
  });
  const shopService = createService({
    name: 'shop',
    transport: broker.transport(),
    publishes: [orderPlaced],
    logger: silentLogger,
  });
  await billing.start();
  await shopService.start();
  running.push({ close: () => billing.stop() });
  return { broker, shopService, billing, billed, fail };
}

async function consoleOn(
  sys: System,
  options: { allowWrites?: boolean; maxTails?: number; logger?: Logger } = {},
): Promise<RunningConsole & { transport: ReturnType<MemoryBroker['transport']> }> {
  const transport = sys.broker.transport();
  const c = await startConsole({
    transport,
    services: [sys.shopService, sys.billing],
    brokerUrl: `amqp://admin:${SECRET}@rabbit.example:5672/shop`,
    management: false,
    logger: options.logger ?? silentLogger,
    statsIntervalMs: 100,
    ...options,
  });
  running.push(c);
  return Object.assign(c, { transport });
}

async function token(c: RunningConsole): Promise<string> {
  const html = await (await fetch(c.url)).text();
  return /name="tidings-console-token" content="([0-9a-f]+)"/.exec(html)![1]!;
}

function write(c: RunningConsole, path: string, body: unknown, headers: Record<string, string>) {
  return fetch(new URL(path, c.url), {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
}

async function deadLetter(sys: System, count = 1): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 1; i <= count; i++) {
    ids.push((await sys.shopService.publish(orderPlaced, { id: i, note: `n${i}` })).id);
  }
  await waitFor(() => sys.broker.depth('billing.shop.placed.dlq') === count, 'dead letters');
  return ids;
}

describe('console server', () => {
  it('serves the page and its API with strict security headers, and never the broker password', async () => {
    const sys = await system();
    const c = await consoleOn(sys);
    expect(c.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    const page = await fetch(c.url);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toContain('text/html');
    expect(page.headers.get('content-security-policy')).toContain("script-src 'self'");
    expect(page.headers.get('x-content-type-options')).toBe('nosniff');
    expect(page.headers.get('x-frame-options')).toBe('DENY');
    const everything = [await page.text()];
    for (const path of [
      '/app.js',
      '/style.css',
      '/api/overview',
      '/api/topology.svg',
      '/api/stats',
    ]) {
      const res = await consoleFetch(c.url, path);
      expect(res.status, path).toBe(200);
      everything.push(await res.text());
    }
    await deadLetter(sys);
    const list = await consoleFetch(c.url, '/api/dead-letters?queue=billing.shop.placed');
    everything.push(await list.text());
    const all = everything.join('\n');
    expect(all).not.toContain(SECRET);
    expect(all).not.toContain('admin');
    const overview = JSON.parse(everything[3]!);
    expect(overview).toMatchObject({
      broker: 'amqp://rabbit.example:5672/shop',
      transport: 'memory',
      allowWrites: false,
      tail: true,
    });
    expect(overview.model.services).toEqual(['billing', 'shop']);
    expect(overview.model.queues).toMatchObject([
      {
        queue: 'billing.shop.placed',
        dlq: 'billing.shop.placed.dlq',
        service: 'billing',
        accepts: ['shop.v1.placed', 'shop.v2.placed'],
        reads: ['shop.placed v2'],
      },
    ]);
    expect(everything[4]).toContain('data-queue="billing.shop.placed"');
    expect((await fetch(new URL('/nothing', c.url))).status).toBe(404);
    expect((await fetch(new URL('/favicon.ico', c.url))).status).toBe(204);
  });

  it('answers only to its own loopback Host names (against DNS rebinding)', async () => {
    const c = await consoleOn(await system());
    const { port } = c;
    const status = async (host: string) => {
      const { request } = await import('node:http');
      return new Promise<number>((resolve, reject) => {
        const req = request({ host: '127.0.0.1', port, path: '/', headers: { host } });
        req.on('response', (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        req.on('error', reject);
        req.end();
      });
    };
    expect(await status(`127.0.0.1:${port}`)).toBe(200);
    expect(await status(`localhost:${port}`)).toBe(200);
    expect(await status(`attacker.example:${port}`)).toBe(421);
    expect(await status('127.0.0.1')).toBe(421);
  });

  it('answers its API only with the page token, so another site cannot even read through it', async () => {
    const sys = await system();
    const c = await consoleOn(sys);
    await deadLetter(sys);
    for (const path of [
      '/api/overview',
      '/api/stats',
      '/api/topology.svg',
      '/api/dead-letters?queue=billing.shop.placed',
      '/api/tail?exchange=shop',
      '/api/tail?exchange=shop&token=0123',
    ]) {
      const res = await fetch(new URL(path, c.url));
      expect(res.status, path).toBe(403);
      expect((await json(res)).error).toMatch(/missing or wrong x-tidings-console-token/);
    }
    // Nothing was taken and put back: the dead letter was never delivered.
    const d = await c.transport.get('billing.shop.placed.dlq');
    expect(d?.message.redelivered).toBe(false);
    await d?.requeue();
    const t = await token(c);
    const tail = await fetch(new URL(`/api/tail?exchange=shop&token=${t}`, c.url));
    expect(tail.status).toBe(200);
    await tail.body?.cancel();
  });

  it('counts ready messages and consumers by passive declares, with net rates', async () => {
    const sys = await system();
    const c = await consoleOn(sys);
    await sys.billing.stop();
    const first = await json(await consoleFetch(c.url, '/api/stats'));
    expect(first.source).toBe('passive');
    expect(first.queues['billing.shop.placed']).toMatchObject({ messages: 0, consumers: 0 });
    for (let i = 0; i < 4; i++) await sys.shopService.publish(orderPlaced, { id: i, note: '' });
    await new Promise((r) => setTimeout(r, 150));
    const next = await json(await consoleFetch(c.url, '/api/stats'));
    expect(next.queues['billing.shop.placed'].messages).toBe(4);
    expect(next.queues['billing.shop.placed'].netRate).toBeGreaterThan(0);
    expect(next.queues['billing.shop.placed.dlq']).toMatchObject({ messages: 0 });
  });

  it('lists dead letters with reason, attempts, failures and a body preview', async () => {
    const sys = await system();
    const c = await consoleOn(sys);
    const [id] = await deadLetter(sys);
    const list = await json(
      await consoleFetch(c.url, '/api/dead-letters?queue=billing.shop.placed.dlq'),
    );
    expect(list).toMatchObject({ queue: 'billing.shop.placed', total: 1 });
    expect(list.letters[0]).toMatchObject({
      id,
      type: 'shop.v2.placed',
      reason: 'handler-error',
      error: 'ledger closed for order 1',
      attempts: 1,
      service: 'billing',
      body: { kind: 'json', truncated: false },
    });
    expect(list.letters[0].body.text).toContain('"note": "n1"');
    expect(Date.parse(list.letters[0].firstFailedAt)).toBeLessThanOrEqual(
      Date.parse(list.letters[0].deadLetteredAt),
    );
    // Listing puts everything back.
    expect(sys.broker.depth('billing.shop.placed.dlq')).toBe(1);
    // Only the topology's own queues can be read: never a work queue, never another queue.
    for (const queue of ['shop', 'other.dlq', '']) {
      const res = await consoleFetch(c.url, `/api/dead-letters?queue=${queue}`);
      expect(res.status).toBe(404);
    }
  });

  it('refuses replay and purge with 403 when read-only', async () => {
    const sys = await system();
    const c = await consoleOn(sys);
    await deadLetter(sys);
    const t = await token(c);
    for (const path of ['/api/dead-letters/replay', '/api/dead-letters/purge']) {
      const res = await write(
        c,
        path,
        { queue: 'billing.shop.placed', all: true, confirm: true },
        {
          [TOKEN_HEADER]: t,
        },
      );
      expect(res.status).toBe(403);
      expect((await json(res)).error).toMatch(/read-only: start it with --allow-writes/);
    }
    expect(sys.broker.depth('billing.shop.placed.dlq')).toBe(1);
  });

  it('needs the page token, a same-origin request and a JSON body to write', async () => {
    const sys = await system();
    const c = await consoleOn(sys, { allowWrites: true });
    await deadLetter(sys);
    const t = await token(c);
    const body = { queue: 'billing.shop.placed', all: true };
    expect((await write(c, '/api/dead-letters/replay', body, {})).status).toBe(403);
    expect(
      (await write(c, '/api/dead-letters/replay', body, { [TOKEN_HEADER]: 'f00' })).status,
    ).toBe(403);
    const crossSite = await write(c, '/api/dead-letters/replay', body, {
      [TOKEN_HEADER]: t,
      origin: 'http://attacker.example',
    });
    expect(crossSite.status).toBe(403);
    const form = await consoleFetch(c.url, '/api/dead-letters/replay', {
      method: 'POST',
      headers: { 'content-type': 'text/plain', [TOKEN_HEADER]: t },
      body: JSON.stringify(body),
    });
    expect(form.status).toBe(415);
    const bad = await write(
      c,
      '/api/dead-letters/replay',
      { queue: 'billing.shop.placed' },
      {
        [TOKEN_HEADER]: t,
      },
    );
    expect(bad.status).toBe(400);
    expect(sys.broker.depth('billing.shop.placed.dlq')).toBe(1);
    expect((await consoleFetch(c.url, '/api/overview', { method: 'DELETE' })).status).toBe(405);
  });

  it('replays one, a selection or all with the same operation as tidings dlq replay', async () => {
    const sys = await system();
    const lines: string[] = [];
    const logger = { ...silentLogger, info: (m: string) => void lines.push(m) };
    const c = await consoleOn(sys, { allowWrites: true, logger });
    const ids = await deadLetter(sys, 4);
    sys.fail.on = false;
    const t = await token(c);
    const origin = new URL(c.url).origin;
    const replay = async (body: unknown) => {
      const res = await write(c, '/api/dead-letters/replay', body, { [TOKEN_HEADER]: t, origin });
      expect(res.status).toBe(200);
      return json(res);
    };
    const one = await replay({ queue: 'billing.shop.placed', ids: [ids[1]] });
    expect(one).toMatchObject({ replayed: [ids[1]], failed: [], notFound: [] });
    await waitFor(() => sys.billed.length === 1, 'the replayed order');
    expect(sys.billed).toEqual([2]);
    const some = await replay({ queue: 'billing.shop.placed.dlq', ids: [ids[0], 'nope'] });
    expect(some).toMatchObject({ replayed: [ids[0]], notFound: ['nope'] });
    const rest = await replay({ queue: 'billing.shop.placed', all: true });
    expect(rest.replayed).toHaveLength(2);
    await waitFor(() => sys.billed.length === 4, 'every replayed order');
    expect(sys.billed.sort()).toEqual([1, 2, 3, 4]);
    expect(sys.broker.depth('billing.shop.placed.dlq')).toBe(0);
    expect(lines.some((l) => l.includes('replayed 1 from billing.shop.placed.dlq'))).toBe(true);
  });

  it('purges a selection or all, only when confirmed', async () => {
    const sys = await system();
    const c = await consoleOn(sys, { allowWrites: true });
    const ids = await deadLetter(sys, 3);
    const t = await token(c);
    const purge = (body: unknown) =>
      write(c, '/api/dead-letters/purge', body, { [TOKEN_HEADER]: t });
    const unconfirmed = await purge({ queue: 'billing.shop.placed', all: true });
    expect(unconfirmed.status).toBe(400);
    expect((await json(unconfirmed)).error).toMatch(/confirm/);
    expect(sys.broker.depth('billing.shop.placed.dlq')).toBe(3);
    const one = await purge({ queue: 'billing.shop.placed', ids: [ids[0]], confirm: true });
    expect(await json(one)).toMatchObject({ purged: 1 });
    const all = await purge({ queue: 'billing.shop.placed', all: true, confirm: true });
    expect(await json(all)).toMatchObject({ purged: 2 });
    expect(sys.broker.depth('billing.shop.placed.dlq')).toBe(0);
  });

  it('keeps previews of huge and deeply nested bodies small', async () => {
    const sys = await system();
    const c = await consoleOn(sys);
    const huge = Buffer.from(JSON.stringify({ id: 1, blob: 'x'.repeat(5_000_000) }));
    const deep = Buffer.from(`${'['.repeat(100_000)}${']'.repeat(100_000)}`);
    const binary = Buffer.from([0xff, 0xfe, 0x00, 0x01, 0x80]);
    const publisher = sys.broker.transport();
    for (const body of [huge, deep, binary]) {
      await publisher.publish({
        exchange: 'shop',
        routingKey: 'shop.v1.placed',
        body,
        properties: { messageId: `m-${body.length}`, headers: {} },
      });
    }
    await waitFor(() => sys.broker.depth('billing.shop.placed.dlq') === 3, 'three poison messages');
    const started = Date.now();
    const res = await consoleFetch(c.url, '/api/dead-letters?queue=billing.shop.placed');
    const text = await res.text();
    const list = JSON.parse(text);
    expect(text.length).toBeLessThan(60_000);
    const byId = new Map(list.letters.map((d: { id: string }) => [d.id, d]));
    expect(byId.get(`m-${huge.length}`)).toMatchObject({
      reason: 'oversize',
      body: { kind: 'text', truncated: true, bytes: huge.length },
    });
    const nested = byId.get(`m-${deep.length}`) as { body: { kind: string; text: string } };
    expect(nested.body).toMatchObject({ kind: 'json', truncated: true });
    expect(nested.body.text.length).toBeLessThanOrEqual(4000);
    expect(byId.get(`m-${binary.length}`)).toMatchObject({ body: { kind: 'binary' } });
    // Bounded work: no deep recursion, no 5 MB string shipped (a generous bound, not a benchmark).
    expect(Date.now() - started).toBeLessThan(20_000);
  });

  it('tails an exchange as Server-Sent Events, filtered by event and version', async () => {
    const sys = await system();
    const c = await consoleOn(sys, { maxTails: 1 });
    const abort = new AbortController();
    const res = await consoleFetch(c.url, '/api/tail?exchange=shop&event=placed&version=1', {
      signal: abort.signal,
    });
    expect(res.headers.get('content-type')).toContain('text/event-stream');
    const events = readEvents(res);
    expect((await events.next('ready')).filter).toEqual({
      exchange: 'shop',
      event: 'placed',
      version: 1,
    });
    // One tail at most here: a second one is refused while the first is open.
    expect((await consoleFetch(c.url, '/api/tail?exchange=shop')).status).toBe(429);
    sys.fail.on = false;
    await sys.shopService.publish(orderPlaced, { id: 7, note: 'skipped: version 2' });
    const v1 = await sys.shopService.publish(orderPlaced, { id: 8 }, { version: 1 });
    const batch = await events.next('messages');
    expect(batch.dropped).toBe(0);
    expect(batch.messages).toHaveLength(1);
    expect(batch.messages[0]).toMatchObject({
      routingKey: 'shop.v1.placed',
      event: 'placed',
      version: 1,
      envelope: { id: v1.id, source: 'shop' },
      body: { kind: 'json', text: '{\n  "id": 8\n}' },
    });
    // The tail took copies: billing got both orders.
    await waitFor(() => sys.billed.length === 2, 'both orders billed');
    abort.abort();
    await waitFor(
      () => sys.broker.queueNames().every((n) => !n.startsWith('tidings.tap.')),
      'the tap queue deleted after the page left',
    );
    for (const bad of ['exchange=nope', 'exchange=shop&version=x']) {
      expect((await consoleFetch(c.url, `/api/tail?${bad}`)).status).toBeGreaterThanOrEqual(400);
    }
  });

  it('drops the oldest waiting messages of a fast stream and says how many', async () => {
    const sys = await system();
    await sys.billing.stop();
    const c = await consoleOn(sys);
    const abort = new AbortController();
    const res = await consoleFetch(c.url, '/api/tail?exchange=shop', { signal: abort.signal });
    const events = readEvents(res);
    await events.next('ready');
    const publisher = sys.broker.transport();
    // Far more than a batch holds (200), published between two flushes.
    await Promise.all(
      Array.from({ length: 1000 }, (_, i) =>
        publisher.publish({
          exchange: 'shop',
          routingKey: 'shop.v1.placed',
          body: Buffer.from(`{"id":${i}}`),
          properties: { headers: {} },
        }),
      ),
    );
    let seen = 0;
    let dropped = 0;
    let last = 0;
    while (seen + dropped < 1000) {
      const batch = await events.next('messages');
      seen += batch.messages.length;
      dropped += batch.dropped;
      last = batch.messages.at(-1)?.seq ?? last;
    }
    expect(dropped).toBeGreaterThan(0);
    expect(seen).toBeLessThanOrEqual(1000 - dropped);
    expect(last).toBe(1000);
    abort.abort();
  });

  it('rejects bad options listing every problem, and warns when writes are open to a network', async () => {
    const sys = await system();
    await expect(
      startConsole({
        transport: sys.broker.transport(),
        services: [],
        port: 70_000,
        management: 'ftp://x',
      }),
    ).rejects.toThrow(/services must list[\s\S]*port must be[\s\S]*management/);
    const warnings: string[] = [];
    const c = await startConsole({
      transport: sys.broker.transport(),
      services: [sys.billing],
      host: '0.0.0.0',
      allowWrites: true,
      logger: { ...silentLogger, warn: (m) => void warnings.push(m) },
    });
    running.push(c);
    expect(warnings.join('\n')).toMatch(/listens on 0\.0\.0\.0 with writes allowed/);
  });
});

// biome-ignore lint/suspicious/noExplicitAny: the API's answers, read as JSON by the tests.
type Json = any;
const json = (res: Response): Promise<Json> => res.json() as Promise<Json>;

/** Reads Server-Sent Events from a fetch response. */
function readEvents(res: Response) {
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  const queue: { event: string; data: string }[] = [];
  return {
    async next(wanted: string): Promise<Json> {
      const deadline = Date.now() + 15_000;
      for (;;) {
        const i = queue.findIndex((e) => e.event === wanted);
        if (i >= 0) return JSON.parse(queue.splice(i, 1)[0]!.data);
        if (Date.now() > deadline) throw new Error(`no "${wanted}" event`);
        const { value, done } = await reader.read();
        if (done) throw new Error(`the stream ended before a "${wanted}" event`);
        buffer += decoder.decode(value, { stream: true });
        let end = buffer.indexOf('\n\n');
        while (end >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const event = /^event: (.*)$/m.exec(block)?.[1];
          const data = /^data: (.*)$/m.exec(block)?.[1];
          if (event && data !== undefined) queue.push({ event, data });
          end = buffer.indexOf('\n\n');
        }
      }
    },
  };
}
