import { Socket } from 'node:net';
import type { ChannelModel, ConfirmChannel, Options } from 'amqplib';
import { encodePublish } from './frames.js';

/**
 * Every place where Tidings reaches into amqplib's private state, in one module, each with why.
 * amqplib's public API offers no way to do these things at this cost; each use checks the shape
 * it relies on first, and without it Tidings takes amqplib's public path (slower, same bytes and
 * same behaviour). The shapes were read from amqplib 0.10.9 and 2.3.1, the versions CI runs the
 * RabbitMQ tests on (`npm test` runs the amqp tests a second time on 2.3.1).
 *
 * - the publish fast path ({@link probePublishPath}): the frames of a publish written straight
 *   into the channel's buffer, with the confirm callback in the channel's queue;
 * - {@link closing}: whether amqplib has stopped sending on a channel;
 * - {@link takeBackCallback}: a confirm callback taken back after amqplib refused a message;
 * - {@link coalesceWrites}: the socket under a connection, corked per tick.
 *
 * @module
 */

/**
 * Publishes one message through the fast path. Returns what amqplib's `publish` would (false:
 * wait for `drain`), or `undefined`, having done nothing, when the message is not one the frame
 * encoder writes or the channel is closing: the caller then uses `channel.publish`.
 */
export type FastPublish = (
  exchange: string,
  routingKey: string,
  body: Buffer,
  options: Options.Publish,
  callback: (error: unknown) => void,
) => boolean | undefined;

/** What {@link probePublishPath} found. */
export type PublishPath =
  | { readonly fast: FastPublish; readonly reason?: undefined }
  | { readonly fast: undefined; readonly reason: string };

/** amqplib's internals that the fast path uses. */
interface ChannelInternals {
  readonly ch?: unknown;
  readonly connection?: {
    frameMax?: unknown;
    sentSinceLastCheck?: boolean;
    channels?: ({ channel?: unknown; buffer?: { write?: unknown } } | null)[];
    sendMessage?: unknown;
  };
  pushConfirmCallback?: unknown;
  unconfirmed?: unknown;
  sendMessage?: unknown;
}

/**
 * Whether an instrumentation library has wrapped `method`: shimmer (used by OpenTelemetry) marks
 * its wrappers with `__wrapped` and `__original`; others (dd-trace's shimmer) give the wrapper the
 * original as its prototype. A plain method's prototype is `Function.prototype`.
 */
function isWrapped(method: unknown): boolean {
  if (typeof method !== 'function') return false;
  const marks = method as { __wrapped?: unknown; __original?: unknown };
  return (
    Boolean(marks.__wrapped) ||
    marks.__original !== undefined ||
    Object.getPrototypeOf(method) !== Function.prototype
  );
}

/**
 * The methods on a channel's way to the socket that instrumentations wrap to add spans and
 * headers: `publish` (ConfirmChannel's and Channel's) and `sendMessage`. Looked up along the
 * prototype chain, where the wrappers are installed.
 */
function instrumented(channel: ConfirmChannel): boolean {
  for (let p: object | null = channel; p && p !== Object.prototype; p = Object.getPrototypeOf(p)) {
    for (const name of ['publish', 'sendMessage']) {
      const own = Object.getOwnPropertyDescriptor(p, name);
      if (own && isWrapped(own.value)) return true;
    }
  }
  return false;
}

/**
 * Looks once, when a confirm channel opens, at whether the fast path can publish on it: amqplib's
 * internals have the expected shape, and no instrumentation has wrapped the methods a publish goes
 * through (`@opentelemetry/instrumentation-amqplib` wraps `ConfirmChannel.publish`, dd-trace
 * `Channel.sendMessage`, to add spans and headers, which the fast path would bypass; a wrapper
 * written by hand that leaves no mark needs `fastPublish: false`). Returns the fast publish
 * function, or why not.
 */
export function probePublishPath(channel: ConfirmChannel): PublishPath {
  if (instrumented(channel)) {
    return {
      fast: undefined,
      reason:
        "amqplib's publish is wrapped by an instrumentation (OpenTelemetry, dd-trace), which the fast path would bypass",
    };
  }
  const c = channel as unknown as ChannelInternals;
  const connection = c.connection;
  const number = c.ch;
  const record = typeof number === 'number' ? connection?.channels?.[number] : undefined;
  const buffer = record?.buffer;
  if (
    connection === undefined ||
    typeof number !== 'number' ||
    record?.channel !== channel ||
    typeof buffer?.write !== 'function' ||
    typeof c.pushConfirmCallback !== 'function' ||
    !Array.isArray(c.unconfirmed) ||
    typeof connection.frameMax !== 'number'
  ) {
    return {
      fast: undefined,
      reason:
        "this amqplib's internals differ from the versions Tidings was tested with (0.10.9, 2.3.1)",
    };
  }
  const pushConfirm = c.pushConfirmCallback as (cb: unknown) => void;
  const write = (bytes: Buffer) => (buffer.write as (b: Buffer) => boolean).call(buffer, bytes);
  const fast: FastPublish = (exchange, routingKey, body, options, callback) => {
    if (connection.channels?.[number] !== record || closing(channel)) return undefined;
    const frames = encodePublish(
      number,
      connection.frameMax as number,
      exchange,
      routingKey,
      options,
      body,
    );
    if (!frames) return undefined;
    pushConfirm.call(channel, callback);
    // The heartbeat sends a frame only when nothing else was written since its last look.
    connection.sentSinceLastCheck = true;
    if (frames.length < SINGLE_CHUNK_THRESHOLD) return write(frames);
    // As amqplib does for a large publish: the method and header frames (one write, or two when
    // they are large themselves), then the body frame. Its channel buffer counts writes, not
    // bytes, so the same writes give the same backpressure.
    const bodyStart = body.length > 0 ? frames.length - body.length - 8 : frames.length;
    if (bodyStart < SINGLE_CHUNK_THRESHOLD) write(frames.subarray(0, bodyStart));
    else {
      const methodEnd = 8 + frames.readUInt32BE(3);
      write(frames.subarray(0, methodEnd));
      write(frames.subarray(methodEnd, bodyStart));
    }
    // amqplib returns the body frame's write, or true when there is no body frame.
    return body.length > 0 ? write(frames.subarray(bodyStart)) : true;
  };
  return { fast };
}

/** amqplib writes a publish of this many bytes or more as several writes (see above). */
const SINGLE_CHUNK_THRESHOLD = 2048;

/**
 * Whether amqplib has stopped sending on `channel`: a closing or closed channel, or one whose
 * connection is closing, gets its own `sendMessage` (a thrower) in place of the prototype's.
 */
export function closing(channel: ConfirmChannel): boolean {
  const connection = (channel as unknown as ChannelInternals).connection;
  return (
    Object.hasOwn(channel, 'sendMessage') ||
    (connection !== undefined && Object.hasOwn(connection, 'sendMessage'))
  );
}

/**
 * Removes `callback` from the end of amqplib's queue of confirm callbacks, if it is there: after
 * amqplib refused to encode a message, amqplib 0.10 has queued its callback already (2.x queues
 * it after encoding, so there is nothing to take back), and every later confirm would otherwise
 * be credited to the message before it.
 */
export function takeBackCallback(channel: ConfirmChannel, callback: unknown): void {
  const queue = (channel as unknown as ChannelInternals).unconfirmed;
  if (Array.isArray(queue) && queue[queue.length - 1] === callback) queue.pop();
}

/**
 * amqplib writes each frame with a `socket.write` of its own: with no-delay set, one system call
 * and one TCP segment per publish and per ack, which cost more CPU than all the rest of a publish.
 * Corking the socket at the first write of a tick and uncorking it on the next tick sends a burst
 * (amqplib writes its queued frames in one go) as one `writev`, without Nagle's wait: the bytes
 * leave before the event loop waits for I/O again. Returns false, changing nothing, when the
 * connection's socket is not where amqplib keeps it (`connection.stream`).
 */
export function coalesceWrites(model: ChannelModel): boolean {
  const stream = (model as unknown as { connection?: { stream?: unknown } }).connection?.stream;
  if (!(stream instanceof Socket)) return false;
  const socket = stream;
  const write = socket.write;
  let corked = false;
  const uncork = () => {
    corked = false;
    socket.uncork();
  };
  socket.write = function (this: Socket, ...args: Parameters<Socket['write']>): boolean {
    if (!corked) {
      corked = true;
      socket.cork();
      process.nextTick(uncork);
    }
    return write.apply(this, args);
  } as Socket['write'];
  return true;
}
