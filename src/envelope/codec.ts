import type { WireFormat } from '../contracts/event.js';
import { decodeCelery, encodeCelery, isCeleryMessage } from './celery.js';
import {
  type Envelope,
  envelopeFromMessage,
  envelopeToProperties,
  type IncomingMessage,
  type OutgoingMessage,
} from './envelope.js';

/**
 * A wire format: how an envelope and its payload become one broker message, and back. The
 * runtime talks to codecs only: it encodes with the codec of the format it publishes in, and
 * decodes whatever arrives with {@link decodeMessage}, which picks the codec per message, so one
 * queue can take both formats.
 *
 * Codecs are pure: no broker client, no I/O, no validation (the runtime validates the payload
 * against its schema before encoding and after decoding).
 */
export interface Codec {
  readonly format: WireFormat;
  /**
   * The message for `payload` (valid for its schema) under `envelope`, serialised once. Throws a
   * `TypeError` when the payload has no JSON form.
   */
  encode(envelope: Envelope, payload: unknown): OutgoingMessage;
  /** Reads a delivered message of this format. */
  decode(message: IncomingMessage): Decoded;
}

/** A message read back: its envelope and its payload, parsed but not yet validated. */
export interface DecodedMessage {
  readonly ok: true;
  readonly envelope: Envelope;
  readonly payload: unknown;
}

/** Why a message cannot be read; each is also a dead-letter reason of the same name. */
export type DecodeFailureReason = 'invalid-json' | 'invalid-celery' | 'missing-envelope';

/**
 * A message that cannot be read. The native codec gives the `envelope` when the metadata could be
 * read and only the body could not: the runtime then checks the event and version first, so a
 * message of a version it cannot handle is dead-lettered as such (replayable after an upgrade),
 * whatever its body. The Celery codec never does: its failures (a body that is not protocol v2,
 * an ETA, another serializer) are about the message's form, decided before its version.
 */
export interface DecodeFailure {
  readonly ok: false;
  readonly reason: DecodeFailureReason;
  /** What is wrong with the message and, where it helps, what the sender should change. */
  readonly error: string;
  readonly envelope?: Envelope | undefined;
}

/** What {@link Codec.decode} returns. */
export type Decoded = DecodedMessage | DecodeFailure;

/**
 * The native format: the body is the payload's JSON alone, and the envelope travels as AMQP
 * properties and CloudEvents headers (see `HEADERS`), so any AMQP client can read both.
 */
export const tidingsCodec: Codec = {
  format: 'tidings',
  encode(envelope, payload) {
    return {
      exchange: envelope.exchange,
      routingKey: envelope.type,
      body: Buffer.from(JSON.stringify(payload)),
      properties: envelopeToProperties(envelope),
    };
  },
  decode(message) {
    const envelope = envelopeFromMessage(message);
    if (!envelope) {
      return {
        ok: false,
        reason: 'missing-envelope',
        error: 'the message has no id (ce-id header or message_id property) or no Tidings type',
      };
    }
    try {
      return { ok: true, envelope, payload: JSON.parse(message.body.toString('utf8')) };
    } catch (error) {
      return {
        ok: false,
        reason: 'invalid-json',
        error: `body is not JSON: ${(error as Error).message}`,
        envelope,
      };
    }
  },
};

/** Celery task protocol v2 with the JSON serializer (see `encodeCelery` and `decodeCelery`). */
export const celeryCodec: Codec = {
  format: 'celery',
  encode(envelope, payload) {
    return {
      exchange: envelope.exchange,
      routingKey: envelope.type,
      ...encodeCelery(envelope, payload),
    };
  },
  decode(message) {
    const decoded = decodeCelery(message);
    if ('reason' in decoded) return { ok: false, reason: decoded.reason, error: decoded.error };
    return { ok: true, envelope: decoded.envelope, payload: decoded.payload };
  },
};

/** The codec of a wire format. */
export function codecFor(format: WireFormat): Codec {
  return format === 'celery' ? celeryCodec : tidingsCodec;
}

/**
 * Reads any delivered message: a Celery task message (detected from its headers, see
 * `isCeleryMessage`) with the Celery codec, anything else with the native one.
 */
export function decodeMessage(message: IncomingMessage): Decoded {
  return (isCeleryMessage(message) ? celeryCodec : tidingsCodec).decode(message);
}
