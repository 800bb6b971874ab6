import * as ampqcm from 'amqp-connection-manager';
import * as amqplib from 'amqplib';
import rascal from 'rascal';
import { envelopeToProperties, envelopeToPropertiesV1 } from '../src/envelope/envelope.js';
import { uuidv7 } from '../src/envelope/id.js';
import { type AnyEvent, createService } from '../src/index.js';
import { type AmqpTransport, amqpTransport } from '../src/transports/amqp/index.js';
import { publishOptions } from '../src/transports/amqp/transport.js';
import { order, type SchemaLibrary, submitEvent } from './payload.js';

/**
 * Who publishes and consumes in a RabbitMQ scenario. `raw-envelope` is raw amqplib publishing
 * messages as large as Tidings' (the same properties and CloudEvents headers of wire format 3,
 * constant, built once): a control that separates what the envelope costs the broker from what
 * Tidings' code costs the client. `raw-envelope-v1` is the same with wire format 1 (every
 * attribute twice), to show what formats 2 and 3 saved the broker.
 */
export type Library =
  | 'tidings'
  | 'raw'
  | 'raw-nodelay'
  | 'raw-envelope'
  | 'raw-envelope-v1'
  | 'acm'
  | 'rascal';

/** Unique names of one run (made by the orchestrator, deleted by it afterwards). */
export interface Names {
  readonly exchange: string;
  /** `benchc.<exchange>.submit`: what a Tidings service named `benchc` declares. */
  readonly queue: string;
  /** `<exchange>.v2.submit`: what Tidings publishes the order's version 2 with. */
  readonly routingKey: string;
  /** `<exchange>.*.submit`. */
  readonly pattern: string;
}

export function namesFor(exchange: string): Names {
  return {
    exchange,
    queue: `benchc.${exchange}.submit`,
    routingKey: `${exchange}.v2.submit`,
    pattern: `${exchange}.*.submit`,
  };
}

export interface Settings {
  readonly url: string;
  readonly names: Names;
  readonly prefetch: number;
  readonly schemas: SchemaLibrary;
  /** Called when the connection breaks mid-run (a broker restart): the run is void. */
  readonly onTrouble: (reason: string) => void;
}

/** Publishes orders; `publish` resolves on the broker's confirm. */
export interface BenchProducer {
  publish(seq: number): Promise<unknown>;
  close(): Promise<void>;
}

/** Consumes orders; calls `onOrder` with the order's id after validation (Tidings) or parsing. */
export interface BenchConsumer {
  close(): Promise<void>;
}

/** What raw amqplib publishes with: persistent, mandatory, a content type. */
export const PUBLISH_OPTIONS = {
  persistent: true,
  mandatory: true,
  contentType: 'application/json',
} as const;

/**
 * Tidings' envelope for one order, as the publish options its RabbitMQ transport builds: wire
 * format 3 (what Tidings writes), or format 1 (what it wrote first, every attribute twice).
 */
export function envelopeOptions(names: Names, format: 1 | 3 = 3): amqplib.Options.Publish {
  // The id made at the time's millisecond, as the runtime makes it (so no `ce-time` in format 3).
  const now = Date.now();
  const id = uuidv7(now);
  return publishOptions(
    (format === 1 ? envelopeToPropertiesV1 : envelopeToProperties)({
      id,
      type: names.routingKey,
      exchange: names.exchange,
      event: 'submit',
      version: 2,
      source: 'benchp',
      time: new Date(now).toISOString(),
      correlationId: id,
    }),
  );
}

/** amqplib's socket options: its default leaves Nagle's algorithm on. */
function socketOptions(library: Library): object {
  return library === 'raw-nodelay' ? { noDelay: true } : {};
}

async function rawTopology(channel: amqplib.Channel, names: Names): Promise<void> {
  await channel.assertExchange(names.exchange, 'topic', { durable: true });
  await channel.assertQueue(names.queue, { durable: true });
  await channel.bindQueue(names.queue, names.exchange, names.pattern);
}

function tidingsTransport(s: Settings, role: string): AmqpTransport {
  const transport = amqpTransport({
    url: s.url,
    // The same queue type as the raw clients' (RabbitMQ's default), to compare like with like.
    queueType: 'classic',
    connectionName: `tidings bench ${role}`,
    logger: { debug() {}, info() {}, warn() {}, error() {} },
  });
  transport.on('disconnected', (e) => s.onTrouble(`disconnected: ${e.error?.message ?? ''}`));
  transport.on('error', (e) => s.onTrouble(`${e.during}: ${e.error.message}`));
  return transport;
}

function tidingsEvent(s: Settings): AnyEvent {
  return submitEvent(s.names.exchange, s.schemas);
}

export async function createProducer(library: Library, s: Settings): Promise<BenchProducer> {
  switch (library) {
    case 'tidings': {
      const transport = tidingsTransport(s, 'producer');
      const event = tidingsEvent(s);
      const service = createService({ name: 'benchp', transport, publishes: [event] });
      await transport.connect();
      return {
        publish: (seq) => service.publish(event, order(seq)),
        close: async () => {
          await service.stop();
          await transport.close();
        },
      };
    }
    case 'raw':
    case 'raw-nodelay':
    case 'raw-envelope':
    case 'raw-envelope-v1': {
      const connection = await amqplib.connect(s.url, socketOptions(library));
      connection.on('error', (e: Error) => s.onTrouble(e.message));
      const channel = await connection.createConfirmChannel();
      channel.on('error', (e: Error) => s.onTrouble(e.message));
      const { exchange, routingKey } = s.names;
      const options =
        library === 'raw-envelope'
          ? envelopeOptions(s.names, 3)
          : library === 'raw-envelope-v1'
            ? envelopeOptions(s.names, 1)
            : PUBLISH_OPTIONS;
      return {
        publish: (seq) =>
          new Promise<void>((resolve, reject) => {
            const body = Buffer.from(JSON.stringify(order(seq)));
            channel.publish(exchange, routingKey, body, options, (error: unknown) =>
              error ? reject(error) : resolve(),
            );
          }),
        close: () => connection.close(),
      };
    }
    case 'acm': {
      const connection = ampqcm.connect([s.url]);
      connection.on('disconnect', ({ err }) => s.onTrouble(`disconnected: ${err?.message}`));
      const channel = connection.createChannel({ json: true });
      await channel.waitForConnect();
      const { exchange, routingKey } = s.names;
      return {
        publish: (seq) => channel.publish(exchange, routingKey, order(seq), PUBLISH_OPTIONS),
        close: () => connection.close(),
      };
    }
    case 'rascal': {
      const broker = await rascal.BrokerAsPromised.create(
        rascal.withDefaultConfig(rascalConfig(s)),
      );
      broker.on('error', (e: Error) => s.onTrouble(e.message));
      return {
        publish: async (seq) => {
          const publication = await broker.publish('order', order(seq));
          await new Promise<void>((resolve, reject) => {
            publication.on('success', () => resolve());
            publication.on('error', reject);
          });
        },
        close: () => broker.shutdown(),
      };
    }
  }
}

export async function createConsumer(
  library: Library,
  s: Settings,
  onOrder: (id: number) => void,
): Promise<BenchConsumer> {
  switch (library) {
    case 'tidings': {
      const transport = tidingsTransport(s, 'consumer');
      const event = tidingsEvent(s);
      const service = createService({ name: 'benchc', transport, prefetch: s.prefetch });
      service.on(event, (payload: { id: number }) => {
        onOrder(payload.id);
      });
      await service.start();
      return {
        close: async () => {
          await service.stop();
          await transport.close();
        },
      };
    }
    case 'raw':
    case 'raw-nodelay':
    case 'raw-envelope':
    case 'raw-envelope-v1': {
      const connection = await amqplib.connect(s.url, socketOptions(library));
      connection.on('error', (e: Error) => s.onTrouble(e.message));
      const channel = await connection.createChannel();
      channel.on('error', (e: Error) => s.onTrouble(e.message));
      await rawTopology(channel, s.names);
      await channel.prefetch(s.prefetch);
      await channel.consume(s.names.queue, (message) => {
        if (!message) return s.onTrouble('consumer cancelled by the broker');
        const o = JSON.parse(message.content.toString('utf8')) as { id: number };
        onOrder(o.id);
        channel.ack(message);
      });
      return { close: () => connection.close() };
    }
    case 'acm': {
      const connection = ampqcm.connect([s.url]);
      connection.on('disconnect', ({ err }) => s.onTrouble(`disconnected: ${err?.message}`));
      const channel = connection.createChannel({
        setup: (ch: amqplib.Channel) => rawTopology(ch, s.names),
      });
      await channel.waitForConnect();
      await channel.consume(
        s.names.queue,
        (message) => {
          const o = JSON.parse(message.content.toString('utf8')) as { id: number };
          onOrder(o.id);
          channel.ack(message);
        },
        { prefetch: s.prefetch },
      );
      return { close: () => connection.close() };
    }
    case 'rascal': {
      const broker = await rascal.BrokerAsPromised.create(
        rascal.withDefaultConfig(rascalConfig(s)),
      );
      broker.on('error', (e: Error) => s.onTrouble(e.message));
      const session = await broker.subscribe('orders');
      session.on('message', (_message, content, ackOrNack) => {
        onOrder((content as { id: number }).id);
        ackOrNack();
      });
      session.on('error', (e) => s.onTrouble(e.message));
      return { close: () => broker.shutdown() };
    }
  }
}

/** Rascal's configuration for the run's names; everything else is Rascal's default. */
function rascalConfig(s: Settings): object {
  const { exchange, queue, routingKey, pattern } = s.names;
  return {
    vhosts: {
      '/': {
        connection: { url: s.url },
        exchanges: { [exchange]: { type: 'topic' } },
        queues: { [queue]: {} },
        bindings: { b: { source: exchange, destination: queue, bindingKey: pattern } },
        publications: { order: { exchange, routingKey } },
        subscriptions: { orders: { queue, prefetch: s.prefetch } },
      },
    },
  };
}
