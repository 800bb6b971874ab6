import type { ServerResponse } from 'node:http';
import { parseRoutingKey } from '../contracts/event.js';
import { envelopeFromMessage, HEADERS, type IncomingMessage } from '../envelope/envelope.js';
import type { Tap, Transport } from '../transports/transport.js';
import { type BodyPreview, previewBody, previewHeaders } from './preview.js';

/** What a live tail shows: one exchange, optionally one event and one version of it. */
export interface TailFilter {
  readonly exchange: string;
  readonly event?: string | undefined;
  readonly version?: number | undefined;
}

/** One message of a live tail, as the page receives it. */
export interface TailMessage {
  /** Position in this tail, from 1; a gap means messages were dropped. */
  readonly seq: number;
  /** When the console received its copy, RFC 3339. */
  readonly receivedAt: string;
  readonly exchange: string;
  readonly routingKey: string;
  readonly event: string | undefined;
  readonly version: number | undefined;
  /** The envelope's fields, when the message has a Tidings envelope. */
  readonly envelope: Readonly<Record<string, string | number | undefined>> | undefined;
  readonly redelivered: boolean;
  readonly contentType: string | undefined;
  readonly headers: Readonly<Record<string, string | number | boolean | null>>;
  readonly body: BodyPreview;
}

/** Sizes of a tail. */
export interface TailLimits {
  /** Messages kept waiting for the page; past it the oldest are dropped. */
  readonly buffer: number;
  /** How often waiting messages are sent, in milliseconds. */
  readonly flushMs: number;
  /** Characters of each body sent to the page. */
  readonly previewChars: number;
}

/** The event and version a message is about: from its routing key, else from its `ce-type`. */
export function eventOf(message: IncomingMessage): { event?: string; version?: number } {
  const type = message.properties.headers[HEADERS.type];
  const parsed =
    parseRoutingKey(message.routingKey) ??
    (typeof type === 'string' ? parseRoutingKey(type) : undefined);
  return parsed ? { event: parsed.event, version: parsed.version } : {};
}

/**
 * One live tail, streamed to a page as Server-Sent Events: a tap on the exchange (bound with `#`),
 * the filter applied here, messages sent in batches every `flushMs`. Bounded on both sides: at
 * most `buffer` messages wait, the oldest dropped first, and nothing more is written while the
 * page's connection is not draining; each batch says how many were dropped.
 */
export class TailSession {
  private readonly waiting: { message: IncomingMessage; at: number; seq: number }[] = [];
  private dropped = 0;
  private seq = 0;
  private blocked = false;
  private tap: Tap | undefined;
  private timers: NodeJS.Timeout[] = [];
  private ended = false;

  constructor(
    private readonly response: ServerResponse,
    private readonly filter: TailFilter,
    private readonly limits: TailLimits,
    private readonly onClose: () => void,
  ) {}

  /** Starts streaming; resolves once the tap is bound (or the stream ended with its error). */
  async start(transport: Transport & { tap: NonNullable<Transport['tap']> }): Promise<void> {
    const res = this.response;
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      connection: 'keep-alive',
    });
    res.write('retry: 3000\n\n');
    res.on('close', () => this.end());
    res.on('drain', () => {
      this.blocked = false;
    });
    try {
      const tap = await transport.tap(this.filter.exchange, '#', (m) => this.receive(m), {
        onEnd: (error) => this.send('end', { reason: error.message }, true),
      });
      if (this.ended) {
        await tap.close();
        return;
      }
      this.tap = tap;
    } catch (error) {
      this.send('end', { reason: (error as Error).message }, true);
      return;
    }
    this.send('ready', { filter: this.filter });
    this.timers.push(setInterval(() => this.flush(), this.limits.flushMs));
    // A comment now and then keeps proxies from closing an idle stream.
    this.timers.push(setInterval(() => this.write(': ping\n\n'), 15_000));
  }

  private receive(message: IncomingMessage): void {
    const f = this.filter;
    if (f.event !== undefined || f.version !== undefined) {
      const of = eventOf(message);
      if (f.event !== undefined && of.event !== f.event) return;
      if (f.version !== undefined && of.version !== f.version) return;
    }
    this.seq++;
    if (this.waiting.length >= this.limits.buffer) {
      this.waiting.shift();
      this.dropped++;
    }
    this.waiting.push({ message, at: Date.now(), seq: this.seq });
  }

  private flush(): void {
    if (this.blocked || (this.waiting.length === 0 && this.dropped === 0)) return;
    const batch = this.waiting.splice(0);
    const messages = batch.map((w) => summarize(w.message, w.seq, w.at, this.limits.previewChars));
    this.send('messages', { messages, dropped: this.dropped });
    this.dropped = 0;
  }

  private send(event: string, data: unknown, last = false): void {
    this.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
    if (last) {
      this.response.end();
      this.end();
    }
  }

  private write(text: string): void {
    if (this.ended || this.response.writableEnded) return;
    if (!this.response.write(text)) this.blocked = true;
  }

  /** Stops the tap and the timers; idempotent. */
  end(): void {
    if (this.ended) return;
    this.ended = true;
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    void this.tap?.close().catch(() => {});
    if (!this.response.writableEnded) this.response.end();
    this.onClose();
  }
}

function summarize(message: IncomingMessage, seq: number, at: number, chars: number): TailMessage {
  const envelope = envelopeFromMessage(message);
  const { event, version } = eventOf(message);
  return {
    seq,
    receivedAt: new Date(at).toISOString(),
    exchange: message.exchange,
    routingKey: message.routingKey,
    event,
    version,
    envelope: envelope && {
      id: envelope.id,
      type: envelope.type,
      source: envelope.source,
      time: envelope.time,
      correlationId: envelope.correlationId,
      causationId: envelope.causationId,
      traceparent: envelope.traceparent,
    },
    redelivered: message.redelivered,
    contentType: message.properties.contentType,
    headers: previewHeaders(message.properties.headers, 300),
    body: previewBody(message.body, chars),
  };
}
