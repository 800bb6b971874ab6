import type { Options } from 'amqplib';
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
