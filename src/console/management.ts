import { redactSecrets } from '../redact.js';

/**
 * Where and how to reach RabbitMQ's management HTTP API. The credentials live in `authorization`
 * only, which is sent to the API and nowhere else: never to the page, never to a log.
 */
export interface ManagementTarget {
  /** `http://host:15672` (plus a path prefix when the API sits behind one), without credentials. */
  readonly baseUrl: string;
  /** The virtual host whose queues are read. */
  readonly vhost: string;
  readonly authorization: string;
}

/** The numbers the management API gives for one queue. */
export interface ManagedQueue {
  readonly name: string;
  readonly messages: number;
  readonly unacknowledged: number;
  readonly consumers: number;
  /** Messages per second published into the queue. */
  readonly inRate: number | undefined;
  /** Messages per second delivered to consumers (or fetched). */
  readonly outRate: number | undefined;
  /** Messages per second acknowledged. */
  readonly ackRate: number | undefined;
}

/** One binding of a queue to an exchange, as the management API lists it. */
export interface ManagedBinding {
  readonly exchange: string;
  readonly queue: string;
  readonly pattern: string;
}

/**
 * The management API's target for a broker: `given` (`http://user:password@host:15672`, or
 * `false` for none), else one derived from an `amqp://` broker URL: its host, port 15672, its
 * user and password (guest/guest when it has none, as amqplib assumes), its virtual host.
 * Returns `undefined` when there is nothing to try.
 */
export function managementTarget(
  brokerUrl: string | undefined,
  given: string | false | undefined,
): ManagementTarget | undefined {
  if (given === false) return undefined;
  let broker: URL | undefined;
  try {
    broker = brokerUrl ? new URL(brokerUrl) : undefined;
  } catch {
    broker = undefined;
  }
  const amqp =
    broker !== undefined && (broker.protocol === 'amqp:' || broker.protocol === 'amqps:')
      ? broker
      : undefined;
  const vhost = amqp && amqp.pathname.length > 1 ? decodeURIComponent(amqp.pathname.slice(1)) : '/';
  let api: URL;
  if (given !== undefined) {
    api = new URL(given);
    if (api.protocol !== 'http:' && api.protocol !== 'https:') {
      throw new Error(`the management API URL must be http:// or https:// (got ${api.protocol})`);
    }
  } else {
    if (!amqp) return undefined;
    // hostname keeps the brackets of an IPv6 address.
    api = new URL(`http://${amqp.hostname}:15672/`);
    api.username = amqp.username;
    api.password = amqp.password;
  }
  const user = decodeURIComponent(api.username || 'guest');
  const password = decodeURIComponent(api.username ? api.password : 'guest');
  const base = `${api.protocol}//${api.host}${api.pathname.replace(/\/+$/, '')}`;
  return {
    baseUrl: base,
    vhost,
    authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`,
  };
}

/** A small client of the management HTTP API: queues and bindings of one virtual host. */
export class ManagementClient {
  constructor(
    readonly target: ManagementTarget,
    private readonly timeoutMs = 3000,
  ) {}

  /** Every queue of the virtual host with its counts and rates. */
  async queues(): Promise<ManagedQueue[]> {
    const columns = 'name,messages_ready,messages_unacknowledged,consumers,message_stats';
    const rows = (await this.get(
      `/api/queues/${encodeURIComponent(this.target.vhost)}?columns=${columns}`,
    )) as RawQueue[];
    return rows.map((q) => ({
      name: q.name,
      messages: q.messages_ready ?? 0,
      unacknowledged: q.messages_unacknowledged ?? 0,
      consumers: q.consumers ?? 0,
      inRate: q.message_stats?.publish_details?.rate,
      outRate: q.message_stats?.deliver_get_details?.rate,
      ackRate: q.message_stats?.ack_details?.rate,
    }));
  }

  /** Messages per second published into each exchange of the virtual host. */
  async exchangeRates(): Promise<Map<string, number | undefined>> {
    const rows = (await this.get(
      `/api/exchanges/${encodeURIComponent(this.target.vhost)}?columns=name,message_stats`,
    )) as { name: string; message_stats?: { publish_in_details?: { rate?: number } } }[];
    return new Map(rows.map((x) => [x.name, x.message_stats?.publish_in_details?.rate]));
  }

  /** Bindings from exchanges to queues in the virtual host. */
  async bindings(): Promise<ManagedBinding[]> {
    const rows = (await this.get(`/api/bindings/${encodeURIComponent(this.target.vhost)}`)) as {
      source: string;
      destination: string;
      destination_type: string;
      routing_key: string;
    }[];
    return rows
      .filter((b) => b.destination_type === 'queue' && b.source !== '')
      .map((b) => ({ exchange: b.source, queue: b.destination, pattern: b.routing_key }));
  }

  private async get(path: string): Promise<unknown> {
    let response: Response;
    try {
      response = await fetch(`${this.target.baseUrl}${path}`, {
        headers: { authorization: this.target.authorization, accept: 'application/json' },
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (error) {
      const cause = (error as { cause?: { message?: string } }).cause?.message;
      const message = `${(error as Error).message}${cause ? ` (${cause})` : ''}`;
      throw new Error(
        `the management API at ${this.target.baseUrl} is not reachable: ${redactSecrets(message)}`,
      );
    }
    if (!response.ok) {
      await response.body?.cancel();
      throw new Error(
        `the management API at ${this.target.baseUrl} answered ${response.status} ${response.statusText}` +
          (response.status === 401 ? ' (wrong user or password?)' : ''),
      );
    }
    return response.json();
  }
}

interface RawQueue {
  name: string;
  messages_ready?: number;
  messages_unacknowledged?: number;
  consumers?: number;
  message_stats?: {
    publish_details?: { rate?: number };
    deliver_get_details?: { rate?: number };
    ack_details?: { rate?: number };
  };
}
