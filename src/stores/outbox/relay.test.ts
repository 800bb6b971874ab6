import type pg from 'pg';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { FlakyProxy } from '../../../test/support/flaky-proxy.js';
import {
  AMQP_URL,
  Fixture,
  inTransaction,
  postgresUp,
  rabbitUp,
  recordingConsumer,
  type TestEvent,
  testEvent,
  until,
} from '../../../test/support/outbox.js';
import { defineEvent } from '../../contracts/event.js';
import { ConfigError, MessageEncodingError, UnroutableError } from '../../errors.js';
import { silentLogger } from '../../logger.js';
import { createService, type Service } from '../../runtime/service.js';
import { uniqueName } from '../../testing/broker.js';
import { waitFor } from '../../testing/conformance.js';
import {
  type AmqpTransport,
  type AmqpTransportOptions,
  amqpTransport,
} from '../../transports/amqp/index.js';
import { MemoryBroker } from '../../transports/memory/broker.js';
import { PostgresOutbox } from './outbox.js';
import type { OutboxRelay, OutboxRelayEvents, OutboxRelayOptions } from './relay.js';

const up = (await postgresUp()) && (await rabbitUp());

describe('OutboxRelay options', () => {
  it('reports every problem at once', () => {
    const outbox = new PostgresOutbox({
      pool: { query: async () => ({ rows: [] }), connect: async () => ({}) as never },
    });
    let error: unknown;
    try {
      outbox.relay({
        transport: undefined as never,
        batchSize: 0,
        pollIntervalMs: -1,
        maxAttempts: 1.5,
        retentionMs: -1,
        unroutable: 'drop' as never,
        retryBackoff: { initialDelayMs: 100, maxDelayMs: 10 },
      });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).problems).toHaveLength(7);
    expect(() =>
      outbox.relay({ transport: new MemoryBroker().transport(), maxAttempts: Infinity }),
    ).not.toThrow();
  });
});

describe.skipIf(!up)('OutboxRelay on PostgreSQL and RabbitMQ', () => {
  const fixture = new Fixture();
  const transports: AmqpTransport[] = [];
  const relays: OutboxRelay[] = [];
  const services: Service[] = [];
  const proxies: FlakyProxy[] = [];
  const topologies: ReturnType<Service['topology']>[] = [];

  function transport(url = AMQP_URL, extra: Partial<AmqpTransportOptions> = {}) {
    const t = amqpTransport({
      url,
      connectionName: 'outbox relay test',
      logger: silentLogger,
      reconnect: { initialDelayMs: 50, maxDelayMs: 500 },
      ...extra,
    });
    transports.push(t);
    return t;
  }

  /** An outbox on a fresh table, a writing service, a consumer of the event, and a relay. */
  async function setup(options: Partial<OutboxRelayOptions> = {}, relayTransport = transport()) {
    const pool = fixture.pool();
    const outbox = await fixture.outbox(pool);
    const event = testEvent();
    const consumer = await recordingConsumer(transport(), event);
    services.push(consumer.service);
    topologies.push(consumer.service.topology());
    const writer = createService({
      name: 'writer',
      transport: relayTransport,
      outbox,
      logger: silentLogger,
    });
    services.push(writer);
    const relay = startRelay(outbox, { transport: relayTransport, ...options });
    return { pool, outbox, event, consumer, writer, relay, received: consumer.received };
  }

  function startRelay(outbox: PostgresOutbox, options: OutboxRelayOptions): OutboxRelay {
    const relay = outbox.relay({
      logger: silentLogger,
      pollIntervalMs: 200,
      retryBackoff: { initialDelayMs: 50, maxDelayMs: 200 },
      outageBackoff: { initialDelayMs: 50, maxDelayMs: 500 },
      ...options,
    });
    relays.push(relay);
    return relay;
  }

  function record<K extends keyof OutboxRelayEvents>(relay: OutboxRelay, name: K) {
    const seen: OutboxRelayEvents[K][] = [];
    relay.observe(name, (e) => void seen.push(e));
    return seen;
  }

  const publish = (
    writer: Service,
    event: TestEvent,
    tx: pg.PoolClient,
    key: string,
    seq: number,
    tag: string,
    keyed = true,
  ) => writer.publish(event, { key, seq, tag }, keyed ? { tx, orderingKey: key } : { tx });

  afterEach(async () => {
    await Promise.all(relays.splice(0).map((r) => r.stop()));
    await Promise.all(services.splice(0).map((s) => s.stop()));
    for (const p of proxies.splice(0)) await p.stop();
    const admin = transport();
    for (const t of topologies.splice(0)) await admin.deleteTopology(t, { exchanges: true });
    await Promise.all(transports.splice(0).map((t) => t.close()));
  });
  afterAll(() => fixture.cleanup());

  it('publishes committed messages with the envelope publish returned, then marks them sent', async () => {
    const { pool, outbox, event, writer, relay, received } = await setup();
    const published = record(relay, 'published');
    await relay.start();
    const envelopes = await inTransaction(pool, async (tx) => [
      await publish(writer, event, tx, 'a', 1, 'one'),
      await publish(writer, event, tx, 'b', 1, 'two', false),
      await writer.publish(
        event,
        { key: 'a', seq: 2, tag: 'three' },
        {
          tx,
          orderingKey: 'a',
          correlationId: 'corr-1',
        },
      ),
    ]);
    await waitFor(() => received.length === 3, 'three deliveries');
    expect(received.map((r) => r.tag).sort()).toEqual(['one', 'three', 'two']);
    for (const envelope of envelopes) {
      expect(received.find((r) => r.envelope.id === envelope.id)?.envelope).toEqual(envelope);
    }
    expect(received.find((r) => r.tag === 'three')?.envelope.correlationId).toBe('corr-1');
    // Reported once the batch that marks them has committed, which may be after the deliveries.
    await waitFor(() => published.length === 3, 'the rows to be marked sent');
    expect(await outbox.status()).toMatchObject({ pending: 0, sent: 3, failed: 0, lagMs: 0 });
    const { rows } = await pool.query(`SELECT attempts, sent_at, expires_at FROM ${outbox.table}`);
    expect(rows.every((r) => r.attempts === 1 && r.sent_at && r.expires_at > r.sent_at)).toBe(true);
    expect(published.map((p) => p.messageId).sort()).toEqual(envelopes.map((e) => e.id).sort());
    expect(relay.stats).toMatchObject({ sent: 3, failed: 0, parked: 0 });
  });

  it('publishes nothing before the commit and nothing of a rolled-back transaction', async () => {
    const { pool, event, writer, relay, received } = await setup();
    await relay.start();
    const later = await pool.connect();
    const abandoned = await pool.connect();
    try {
      await later.query('BEGIN');
      await abandoned.query('BEGIN');
      await publish(writer, event, later, 'k', 1, 'committed later', false);
      await publish(writer, event, abandoned, 'k', 1, 'rolled back', false);
      // Written after both and committed: once it arrives, the relay has looked past them.
      await inTransaction(pool, (tx) => publish(writer, event, tx, 'm', 1, 'marker', false));
      await waitFor(() => received.some((r) => r.tag === 'marker'), 'the first marker');
      expect(received.map((r) => r.tag)).toEqual(['marker']);
      await abandoned.query('ROLLBACK');
      await later.query('COMMIT');
      await inTransaction(pool, (tx) => publish(writer, event, tx, 'm', 2, 'marker 2', false));
      await waitFor(
        () => received.some((r) => r.tag === 'committed later') && received.length >= 3,
        'the late commit and the second marker',
      );
      expect(received.map((r) => r.tag).sort()).toEqual(['committed later', 'marker', 'marker 2']);
    } finally {
      later.release();
      abandoned.release();
    }
  });

  it('delivers rows committed out of order: a smaller id committed later is not skipped', async () => {
    const { pool, outbox, event, writer, relay, received } = await setup();
    await relay.start();
    const first = await pool.connect();
    const second = await pool.connect();
    try {
      await first.query('BEGIN');
      await second.query('BEGIN');
      // The first transaction draws the smaller ids, for a key and without one.
      await publish(writer, event, first, 'x', 1, 'first, keyed');
      await publish(writer, event, first, 'u', 1, 'first, unkeyed', false);
      await publish(writer, event, second, 'y', 1, 'second, keyed');
      await publish(writer, event, second, 'u', 2, 'second, unkeyed', false);
      await second.query('COMMIT');
      await waitFor(() => received.length === 2, 'the second transaction');
      expect(received.map((r) => r.tag).sort()).toEqual(['second, keyed', 'second, unkeyed']);
      await first.query('COMMIT');
      await waitFor(() => received.length === 4, 'the first transaction, committed later');
      expect(
        received
          .slice(2)
          .map((r) => r.tag)
          .sort(),
      ).toEqual(['first, keyed', 'first, unkeyed']);
      await until(async () => (await outbox.status()).pending === 0, 'nothing pending');
    } finally {
      first.release();
      second.release();
    }
  });

  it('with two relays: each row published once, none skipped, every key in commit order', async () => {
    const pool = fixture.pool(12);
    const outbox = await fixture.outbox(pool);
    const event = testEvent();
    const consumer = await recordingConsumer(transport(), event);
    services.push(consumer.service);
    topologies.push(consumer.service.topology());
    const writer = createService({
      name: 'writer',
      transport: new MemoryBroker().transport(),
      outbox,
      logger: silentLogger,
    });
    // Two replicas: each its own pool and broker connection, two batches in flight each.
    const replicas = [0, 1].map(() => {
      const own = new PostgresOutbox({ pool: fixture.pool(), table: outbox.name });
      return startRelay(own, { transport: transport(), concurrency: 2, batchSize: 50 });
    });
    // The aggregates: each key's row is locked and its counter bumped in the transaction that
    // publishes, as a service does with the entity an event is about.
    const aggregates = `${outbox.name}_agg`;
    await pool.query(`CREATE TABLE ${aggregates} (key text PRIMARY KEY, seq integer NOT NULL)`);
    try {
      const keys = Array.from({ length: 12 }, (_, i) => `key-${i}`);
      await pool.query(`INSERT INTO ${aggregates} SELECT unnest($1::text[]), 0`, [keys]);
      const transactions = 1500;
      let written = 0;
      const ids = new Set<string>();
      let next = 0;
      const worker = async () => {
        while (next < transactions) {
          const n = next++;
          const key = keys[n % keys.length]!;
          await inTransaction(pool, async (tx) => {
            const { rows } = await tx.query(
              `UPDATE ${aggregates} SET seq = seq + 1 WHERE key = $1 RETURNING seq`,
              [key],
            );
            const seq = rows[0].seq as number;
            const keyed = await publish(writer, event, tx, key, seq, `t${n}`);
            const loose = await publish(writer, event, tx, 'none', n, `t${n} unkeyed`, false);
            ids.add(keyed.id).add(loose.id);
            written += 2;
          });
        }
      };
      // The relays start once a backlog is there (many rows of each key pending at once) and
      // then keep up with the writers.
      const writers = Promise.all(Array.from({ length: 8 }, worker));
      await waitFor(() => written >= transactions, 'a backlog of writes', 60_000);
      await Promise.all(replicas.map((r) => r.start()));
      await writers;
      await waitFor(() => consumer.received.length >= written, `${written} deliveries`, 90_000);
      // Anything published twice would arrive shortly after: give it a moment to show.
      await until(async () => (await outbox.status()).pending === 0, 'nothing pending', 30_000);
      const sentBy = () => replicas.reduce((n, r) => n + r.stats.sent, 0);
      await waitFor(() => sentBy() >= written, 'the relays to count what they marked');
      await new Promise((resolve) => setTimeout(resolve, 500));

      const received = consumer.received;
      const counts = new Map<string, number>();
      for (const r of received) counts.set(r.envelope.id, (counts.get(r.envelope.id) ?? 0) + 1);
      const twice = [...counts.values()].filter((n) => n > 1).length;
      const perKey = new Map<string, number[]>();
      for (const r of received.filter((x) => x.key !== 'none')) {
        perKey.set(r.key, [...(perKey.get(r.key) ?? []), r.seq]);
      }
      const stats = replicas.map((r) => r.stats);
      console.log(
        `\n[outbox] two relays: ${written} messages written in ${transactions} transactions, ` +
          `${received.length} received, ${counts.size} distinct, ${twice} twice; ` +
          `published by relay 1: ${stats[0]!.sent}, relay 2: ${stats[1]!.sent}\n`,
      );
      expect(twice).toBe(0);
      expect(received).toHaveLength(written);
      expect(new Set(counts.keys())).toEqual(ids);
      for (const key of keys) {
        const seqs = perKey.get(key)!;
        expect(seqs).toEqual(seqs.map((_, i) => i + 1));
      }
      expect(stats[0]!.sent + stats[1]!.sent).toBe(written);
      expect(stats.every((s) => s.sent > 0)).toBe(true);
    } finally {
      await pool.query(`DROP TABLE IF EXISTS ${aggregates}`);
    }
  }, 120_000);

  it('parks a message that keeps failing after maxAttempts; its key then goes on, other keys never wait', async () => {
    const { pool, outbox, event, writer, relay, received } = await setup({
      maxAttempts: 3,
      // Long enough for the other key's message to arrive before the orphan is parked.
      retryBackoff: { initialDelayMs: 500, maxDelayMs: 1000 },
    });
    // An event of the same exchange that no queue is bound to: every publish is unroutable.
    const orphan = defineEvent(event.exchange, 'orphaned', z.object({ key: z.string() }));
    const failed = record(relay, 'failed');
    // How many messages had arrived when the orphan was parked.
    let arrivedWhenParked = -1;
    relay.observe('failed', (f) => {
      if (f.parked) arrivedWhenParked = received.length;
    });
    await relay.start();
    await inTransaction(pool, async (tx) => {
      await publish(writer, event, tx, 'blocked', 1, 'before the orphan');
      await writer.publish(orphan, { key: 'blocked' }, { tx, orderingKey: 'blocked' });
      await publish(writer, event, tx, 'blocked', 2, 'after the orphan');
      await publish(writer, event, tx, 'free', 1, 'other key');
    });
    await waitFor(() => received.length === 3, 'the three routable messages', 20_000);
    // The other key did not wait for the failing one; the blocked key's next message went only
    // once the orphan was parked, after the one before it.
    expect(received.map((r) => r.tag).sort()).toEqual([
      'after the orphan',
      'before the orphan',
      'other key',
    ]);
    expect(received.filter((r) => r.key === 'blocked').map((r) => r.tag)).toEqual([
      'before the orphan',
      'after the orphan',
    ]);
    expect(arrivedWhenParked).toBeGreaterThanOrEqual(0);
    expect(received.findIndex((r) => r.tag === 'after the orphan')).toBeGreaterThanOrEqual(
      arrivedWhenParked,
    );
    expect(received.findIndex((r) => r.tag === 'other key')).toBeLessThan(arrivedWhenParked);
    expect(failed.map((f) => [f.attempts, f.parked])).toEqual([
      [1, false],
      [2, false],
      [3, true],
    ]);
    expect(failed[0]!.error).toBeInstanceOf(UnroutableError);
    const [parked] = await outbox.inspect('failed');
    expect(parked).toMatchObject({ orderingKey: 'blocked', attempts: 3 });
    expect(parked!.lastError).toMatch(/^UnroutableError: No queue is bound to receive/);
    await until(async () => (await outbox.status()).pending === 0, 'the rows marked sent');
    expect(await outbox.status()).toMatchObject({ pending: 0, failed: 1 });
    expect(relay.stats).toMatchObject({ failed: 3, parked: 1 });

    // Once a queue is bound, a retry by hand delivers it.
    const late = createService({
      name: uniqueName('late'),
      transport: transport(),
      logger: silentLogger,
    });
    const orphans: string[] = [];
    late.on(orphan, (p) => void orphans.push(p.key));
    await late.start();
    services.push(late);
    topologies.push(late.topology());
    expect(await outbox.retry('all')).toBe(1);
    await waitFor(() => orphans.length === 1, 'the retried message');
    // Marked sent once confirmed, which may come a moment after the delivery.
    await until(async () => (await outbox.status()).pending === 0, 'the retried row marked sent');
    expect(await outbox.status()).toMatchObject({ pending: 0, failed: 0 });
  });

  it('finds other keys past a backlog waiting behind a failed row', async () => {
    // A window of 50 rows: the failing key's 60 followers fill it.
    const { pool, event, writer, relay, received } = await setup({
      batchSize: 5,
      maxAttempts: 2,
      retryBackoff: { initialDelayMs: 3000, maxDelayMs: 3000 },
    });
    const orphan = defineEvent(event.exchange, 'orphaned', z.object({ key: z.string() }));
    let parkedAt = -1;
    relay.observe('failed', (f) => {
      if (f.parked) parkedAt = received.length;
    });
    await relay.start();
    await inTransaction(pool, async (tx) => {
      await writer.publish(orphan, { key: 'stuck' }, { tx, orderingKey: 'stuck' });
      for (let i = 1; i <= 60; i++) await publish(writer, event, tx, 'stuck', i, `stuck ${i}`);
      await publish(writer, event, tx, 'free', 1, 'past the backlog');
    });
    await waitFor(() => received.some((r) => r.tag === 'past the backlog'), 'the other key');
    expect(parkedAt).toBe(-1);
    await waitFor(() => received.length === 61, 'the stuck key, once its head is parked', 20_000);
    const stuck = received.filter((r) => r.key === 'stuck').map((r) => r.seq);
    expect(stuck).toEqual(stuck.map((_, i) => i + 1));
  });

  it('fails a message the broker cannot encode on its own account, and delivers the others', async () => {
    const { pool, outbox, event, writer, relay, received } = await setup({ maxAttempts: 2 });
    const failed = record(relay, 'failed');
    await relay.start();
    await inTransaction(pool, async (tx) => {
      // AMQP's message-id is a short string: 300 bytes cannot be written.
      await writer.publish(
        event,
        { key: 'k', seq: 1, tag: 'too long' },
        { tx, id: 'x'.repeat(300) },
      );
      await publish(writer, event, tx, 'k', 2, 'fine', false);
    });
    await waitFor(() => failed.some((f) => f.parked), 'the unencodable message to be parked');
    expect(failed[0]!.error).toBeInstanceOf(MessageEncodingError);
    await waitFor(() => received.length === 1, 'the other message');
    expect(received[0]!.tag).toBe('fine');
    const [parked] = await outbox.inspect('failed');
    expect(parked!.lastError).toMatch(/^MessageEncodingError/);
  });

  it('started while the broker is unreachable: rows wait, spend no attempt, and go once it is back', async () => {
    const proxy = await new FlakyProxy(AMQP_URL).start();
    proxies.push(proxy);
    await proxy.down();
    const unreachable = transport(proxy.url, { connectTimeoutMs: 1000, publishTimeoutMs: 2000 });
    const { pool, outbox, event, writer, relay, received } = await setup({}, unreachable);
    const outages = record(relay, 'unavailable');
    await relay.start();
    await inTransaction(pool, async (tx) => {
      for (let i = 1; i <= 50; i++) await publish(writer, event, tx, `k${i % 5}`, i, `m${i}`);
    });
    await waitFor(() => outages.length >= 2, 'the relay to find the broker unreachable twice');
    const waiting = await outbox.status();
    expect(waiting).toMatchObject({ pending: 50, retrying: 0, failed: 0 });
    const { rows: before } = await pool.query(
      `SELECT max(attempts) AS attempts, max(last_error) AS error FROM ${outbox.table}`,
    );
    // Not an attempt, but visible: why the rows the relay tried are waiting.
    expect(before[0].attempts).toBe(0);
    expect(before[0].error).toMatch(/ConnectionError: Cannot connect to RabbitMQ/);
    expect(outages[0]!.error).toBeInstanceOf(Error);
    await proxy.up();
    await waitFor(
      () => received.length >= 50,
      'the 50 messages after the broker came back',
      30_000,
    );
    await until(async () => (await outbox.status()).pending === 0, 'nothing pending');
    const { rows } = await pool.query(`SELECT max(attempts) AS attempts FROM ${outbox.table}`);
    expect(rows[0].attempts).toBe(1);
    expect(new Set(received.map((r) => r.tag)).size).toBe(50);
    expect(relay.stats.outages).toBeGreaterThanOrEqual(1);
  }, 60_000);

  it('keeps every message through a connection cut in the middle of a stream', async () => {
    const proxy = await new FlakyProxy(AMQP_URL).start();
    proxies.push(proxy);
    const flaky = transport(proxy.url, { publishTimeoutMs: 5000 });
    const { pool, outbox, event, writer, relay, received } = await setup({ batchSize: 50 }, flaky);
    const batches = record(relay, 'batch');
    await relay.start();
    await inTransaction(pool, async (tx) => {
      for (let i = 1; i <= 1000; i++)
        await publish(writer, event, tx, `k${i % 10}`, i, `m${i}`, i % 2 === 0);
    });
    await waitFor(() => batches.length >= 3, 'a few batches');
    proxy.cut();
    await waitFor(
      () => new Set(received.map((r) => r.tag)).size === 1000,
      'all 1000 messages',
      60_000,
    );
    await until(async () => (await outbox.status()).pending === 0, 'nothing pending');
    // Order per key holds even across the cut (a resend repeats, never overtakes).
    for (let k = 0; k < 10; k++) {
      const seqs = received.filter((r) => r.key === `k${k}` && Number(r.tag.slice(1)) % 2 === 0);
      const firsts = seqs.map((r) => r.seq).filter((s, i, all) => all.indexOf(s) === i);
      expect(firsts).toEqual([...firsts].sort((a, b) => a - b));
    }
  }, 90_000);

  it('sees a write through its own outbox at once, without polling or NOTIFY', async () => {
    const { pool, event, writer, relay, received } = await setup({ pollIntervalMs: 600_000 });
    await relay.start();
    // Long after the relay went to sleep for ten minutes.
    await new Promise((resolve) => setTimeout(resolve, 300));
    await inTransaction(pool, async (tx) => {
      await publish(writer, event, tx, 'k', 1, 'in-process');
      // The commit comes a while after the write: the relay keeps looking.
      await new Promise((resolve) => setTimeout(resolve, 200));
    });
    await waitFor(() => received.length === 1, 'a delivery woken in-process');
  });

  it('with notify, is woken by a commit in another process (LISTEN); without, polls', async () => {
    const { pool, outbox, event, writer, received } = await setup();
    await outbox.migrate({ notify: true });
    // A relay on an outbox object of its own, as in another process: only NOTIFY can wake it.
    const elsewhere = new PostgresOutbox({ pool: fixture.pool(), table: outbox.name });
    const listening = startRelay(elsewhere, { transport: transport(), pollIntervalMs: 600_000 });
    await listening.start();
    await new Promise((resolve) => setTimeout(resolve, 300));
    await inTransaction(pool, (tx) => publish(writer, event, tx, 'k', 1, 'notified'));
    await waitFor(() => received.length === 1, 'a delivery woken by NOTIFY');
    await listening.stop();

    const polling = await setup();
    const other = new PostgresOutbox({ pool: fixture.pool(), table: polling.outbox.name });
    const poller = startRelay(other, { transport: transport(), pollIntervalMs: 100 });
    await poller.start();
    await inTransaction(polling.pool, (tx) =>
      publish(polling.writer, polling.event, tx, 'k', 1, 'polled'),
    );
    await waitFor(() => polling.received.length === 1, 'a delivery found by polling');
  });

  it('deletes sent rows at once with retention 0, and on its schedule after their retention', async () => {
    const immediate = await setup({ retentionMs: 0 });
    await immediate.relay.start();
    await inTransaction(immediate.pool, (tx) =>
      publish(immediate.writer, immediate.event, tx, 'k', 1, 'gone'),
    );
    await waitFor(() => immediate.received.length === 1, 'the delivery');
    await until(
      async () =>
        (await immediate.pool.query(`SELECT 1 FROM ${immediate.outbox.table}`)).rows.length === 0,
      'the row to be deleted',
    );

    const kept = await setup({ retentionMs: 1, pruneIntervalMs: 100 });
    const pruned = record(kept.relay, 'pruned');
    await kept.relay.start();
    await inTransaction(kept.pool, async (tx) => {
      for (let i = 1; i <= 20; i++) await publish(kept.writer, kept.event, tx, 'k', i, `m${i}`);
    });
    await waitFor(() => kept.received.length === 20, 'the deliveries');
    // Marked sent after the deliveries, then pruned once their millisecond of retention is over.
    await waitFor(() => pruned.reduce((n, p) => n + p.rows, 0) === 20, 'the pruning');
    expect(await kept.outbox.status()).toMatchObject({ pending: 0, sent: 0 });
  });

  it('stops cleanly: the batch in flight commits, every connection goes back to the pool', async () => {
    const { pool, outbox, event, writer, relay, received } = await setup();
    await relay.start();
    await inTransaction(pool, async (tx) => {
      for (let i = 1; i <= 300; i++) await publish(writer, event, tx, 'none', i, `m${i}`, false);
    });
    await waitFor(() => received.length > 0, 'the first deliveries');
    await relay.stop();
    await relay.stop();
    const status = await outbox.status();
    // What was confirmed is marked: what arrives is exactly what is no longer pending.
    await waitFor(() => received.length >= 300 - status.pending, 'the confirmed messages');
    expect(received.length).toBe(300 - status.pending);
    expect(pool.totalCount - pool.idleCount).toBe(0);
    await expect(relay.start()).rejects.toThrow(/already started/);
  });
});
