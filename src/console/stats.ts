import type { Logger } from '../logger.js';
import type { Transport } from '../transports/transport.js';
import { ManagementClient, type ManagementTarget } from './management.js';

/** One queue's numbers at one moment, as the page shows them. */
export interface QueueSample {
  /** Messages ready for delivery. */
  readonly messages: number;
  /** Delivered, not yet settled (management API only). */
  readonly unacknowledged?: number | undefined;
  readonly consumers: number;
  /** Messages per second published into the queue (management API only). */
  readonly inRate?: number | undefined;
  /** Messages per second delivered from it (management API only). */
  readonly outRate?: number | undefined;
  /** Change of `messages` per second since the previous sample. */
  readonly netRate?: number | undefined;
}

/** Where the numbers come from. */
export type StatsSource = 'management' | 'passive' | 'none';

/** A queue bound to a known exchange that no service of the console declares (management API). */
export interface OtherQueue {
  readonly queue: string;
  readonly exchange: string;
  readonly pattern: string;
}

/** Every number the page shows at one moment. */
export interface StatsSnapshot {
  /** When it was taken, RFC 3339. */
  readonly at: string;
  readonly source: StatsSource;
  /** By queue name; a queue that does not exist on the broker is absent. */
  readonly queues: Record<string, QueueSample>;
  /** Messages per second published into each exchange (management API only). */
  readonly exchanges: Record<string, { readonly inRate?: number | undefined }>;
  /** Queues of other consumers bound to the known exchanges (management API only). */
  readonly otherQueues: readonly OtherQueue[];
  /** Why the numbers are missing or come from a fallback, when they do. */
  readonly note?: string | undefined;
}

interface Raw {
  readonly source: StatsSource;
  readonly queues: Map<string, Omit<QueueSample, 'netRate'>>;
  readonly exchanges: Record<string, { readonly inRate?: number | undefined }>;
  readonly otherQueues: readonly OtherQueue[];
  readonly note?: string | undefined;
}

/**
 * Takes samples of the queues' numbers: from RabbitMQ's management API when it answers, else by
 * passive declares through the transport (`queueStats`), else none. Samples are shared: one taken
 * less than `minIntervalMs` ago is returned again, so any number of pages costs the broker one
 * round of questions per interval. Net rates come from the difference with the previous sample.
 */
export class StatsSampler {
  private last: { snapshot: StatsSnapshot; at: number } | undefined;
  private pending: Promise<StatsSnapshot> | undefined;
  private management: ManagementClient | undefined;
  private managementFailedAt = 0;
  private managementNote: string | undefined;

  constructor(
    private readonly transport: Transport,
    private readonly queues: readonly string[],
    private readonly exchanges: readonly string[],
    management: ManagementTarget | undefined,
    private readonly logger: Logger,
    private readonly minIntervalMs: number,
  ) {
    this.management = management ? new ManagementClient(management) : undefined;
  }

  /** The newest sample, taking a new one when the last is older than the interval. */
  sample(): Promise<StatsSnapshot> {
    if (this.last && Date.now() - this.last.at < this.minIntervalMs) {
      return Promise.resolve(this.last.snapshot);
    }
    this.pending ??= this.take().finally(() => {
      this.pending = undefined;
    });
    return this.pending;
  }

  private async take(): Promise<StatsSnapshot> {
    const now = Date.now();
    const raw = await this.read();
    const previous = this.last;
    const queues: Record<string, QueueSample> = {};
    for (const [name, q] of raw.queues) {
      const before = previous?.snapshot.queues[name];
      const seconds = previous ? (now - previous.at) / 1000 : 0;
      const netRate = before && seconds > 0 ? (q.messages - before.messages) / seconds : undefined;
      queues[name] = { ...q, netRate };
    }
    const snapshot: StatsSnapshot = {
      at: new Date(now).toISOString(),
      source: raw.source,
      queues,
      exchanges: raw.exchanges,
      otherQueues: raw.otherQueues,
      note: raw.note,
    };
    this.last = { snapshot, at: now };
    return snapshot;
  }

  private async read(): Promise<Raw> {
    // After a failure the API is asked again only once a minute; passive declares fill in.
    if (this.management && Date.now() - this.managementFailedAt > 60_000) {
      try {
        return await this.fromManagement(this.management);
      } catch (error) {
        this.managementFailedAt = Date.now();
        const note = `${(error as Error).message}; using passive declares`;
        if (note !== this.managementNote) this.logger.warn(note);
        this.managementNote = note;
      }
    }
    if (this.transport.queueStats) {
      return {
        ...(await this.passive(this.transport.queueStats.bind(this.transport))),
        note: this.managementNote,
      };
    }
    return {
      source: 'none',
      queues: new Map(),
      exchanges: {},
      otherQueues: [],
      note: `the ${this.transport.kind} transport reports no queue numbers`,
    };
  }

  private async fromManagement(client: ManagementClient): Promise<Raw> {
    const [queues, rates, bindings] = await Promise.all([
      client.queues(),
      client.exchangeRates(),
      client.bindings(),
    ]);
    this.managementNote = undefined;
    const wanted = new Set(this.queues);
    const map = new Map<string, Omit<QueueSample, 'netRate'>>();
    for (const q of queues) {
      if (!wanted.has(q.name)) continue;
      map.set(q.name, {
        messages: q.messages,
        unacknowledged: q.unacknowledged,
        consumers: q.consumers,
        inRate: q.inRate,
        outRate: q.outRate,
      });
    }
    const known = new Set(this.exchanges);
    const exchanges: Record<string, { inRate?: number | undefined }> = {};
    for (const name of this.exchanges) exchanges[name] = { inRate: rates.get(name) };
    // Server-named queues (`amq.gen-…`) are taps and other tools' temporary queues.
    const otherQueues = bindings
      .filter((b) => known.has(b.exchange) && !wanted.has(b.queue) && !b.queue.startsWith('amq.'))
      .map((b) => ({ queue: b.queue, exchange: b.exchange, pattern: b.pattern }));
    return { source: 'management', queues: map, exchanges, otherQueues };
  }

  private async passive(stats: NonNullable<Transport['queueStats']>): Promise<Omit<Raw, 'note'>> {
    const map = new Map<string, Omit<QueueSample, 'netRate'>>();
    for (const name of this.queues) {
      const q = await stats(name);
      if (q) map.set(name, { messages: q.messages, consumers: q.consumers });
    }
    return { source: 'passive', queues: map, exchanges: {}, otherQueues: [] };
  }
}
