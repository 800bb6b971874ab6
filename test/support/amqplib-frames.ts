import type { ConfirmChannel, Options } from 'amqplib';
import { amqplibInternal } from './amqplib-package.js';

// amqplib's own encoder, as its ConfirmChannel.publish calls it (internal modules, stable since
// 0.10): the reference that Tidings' frame encoder is tested and measured against.
const defs = amqplibInternal<{
  BasicPublish: number;
  BasicProperties: number;
  encodeMethod(id: number, channel: number, fields: object): Buffer;
  encodeProperties(id: number, channel: number, size: number, fields: object): Buffer;
}>('lib/defs.js');
const args = amqplibInternal<{
  publish(exchange: string, routingKey: string, options: Options.Publish): object;
}>('lib/api_args.js');
const frame = amqplibInternal<{
  makeBodyFrame(channel: number, body: Buffer): Buffer;
}>('lib/frame.js');

/** The bytes amqplib writes for one publish (method, content header, body frame) of `body`. */
export function amqplibFrames(
  channel: number,
  exchange: string,
  routingKey: string,
  options: Options.Publish,
  body: Buffer,
): Buffer {
  const fields = args.publish(exchange, routingKey, options);
  return Buffer.concat([
    defs.encodeMethod(defs.BasicPublish, channel, fields),
    defs.encodeProperties(defs.BasicProperties, channel, body.length, fields),
    body.length > 0 ? frame.makeBodyFrame(channel, body) : Buffer.alloc(0),
  ]);
}

/**
 * Publishes on an amqplib confirm channel as another AMQP client would, without amqplib's 64 KiB
 * limit on the header table: the method frame from amqplib, a content header written here
 * (content type, string headers, persistent), and the body, straight into the channel's buffer.
 * Resolves on the broker's confirm. For tests of messages amqplib itself could not send.
 */
export function publishLikeAnotherClient(
  channel: ConfirmChannel,
  exchange: string,
  routingKey: string,
  headers: Readonly<Record<string, string>>,
  body: Buffer,
): Promise<void> {
  const c = channel as unknown as {
    ch: number;
    connection: { channels: { buffer: { write(b: Buffer): boolean } }[] };
    pushConfirmCallback(cb: (error: unknown) => void): void;
  };
  const fields = args.publish(exchange, routingKey, {});
  const method = defs.encodeMethod(defs.BasicPublish, c.ch, fields);
  const table: Buffer[] = [];
  for (const [name, value] of Object.entries(headers)) {
    const key = Buffer.from(name);
    const text = Buffer.from(value);
    const length = Buffer.alloc(4);
    length.writeUInt32BE(text.length);
    table.push(Buffer.from([key.length]), key, Buffer.from('S'), length, text);
  }
  const tableBytes = Buffer.concat(table);
  const contentType = Buffer.from('application/json');
  // class 60, weight 0, body size (64 bits), flags: content-type, headers, delivery-mode.
  const properties = Buffer.concat([
    Buffer.from([0, 60, 0, 0]),
    u32(0),
    u32(body.length),
    Buffer.from([0x80 | 0x20 | 0x10, 0x00]),
    Buffer.from([contentType.length]),
    contentType,
    u32(tableBytes.length),
    tableBytes,
    Buffer.from([2]),
  ]);
  const header = Buffer.concat([
    Buffer.from([2]),
    u16(c.ch),
    u32(properties.length),
    properties,
    Buffer.from([0xce]),
  ]);
  return new Promise((resolve, reject) => {
    c.pushConfirmCallback((error) => (error ? reject(error) : resolve()));
    const buffer = c.connection.channels[c.ch]!.buffer;
    buffer.write(Buffer.concat([method, header, frame.makeBodyFrame(c.ch, body)]));
  });
}

function u16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n);
  return b;
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
}
