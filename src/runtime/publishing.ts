import type {
  AnyEvent,
  LatestVersionOf,
  PayloadInput,
  VersionOf,
  WireFormat,
} from '../contracts/event.js';
import { codecFor } from '../envelope/codec.js';
import type { Envelope, OutgoingMessage } from '../envelope/envelope.js';
import { isoNow, uuidv7 } from '../envelope/id.js';
import { ConfigError, StateError, UnroutableError } from '../errors.js';
import type { PublishOutcome, Transport } from '../transports/transport.js';
import type { Observers } from './events.js';
import { type DeliveryProbe, envelopeLogFields, type PublishProbe } from './instrumentation.js';
import type { ResolvedServiceOptions } from './options.js';
import type { OutboxTransaction } from './outbox.js';
import { messageKey } from './partitions.js';
import { validate } from './validate.js';

/** Options of one publish. */
export interface PublishOptions<Ver extends number = number> {
  /** Publish this (older) version instead of the newest; the payload must match it. */
  readonly version?: Ver | undefined;
  /** Message id; generated (UUIDv7) when absent. Keep it when re-publishing the same fact. */
  readonly id?: string | undefined;
  /** Correlation id; defaults to the message's own id (it starts a new conversation). */
  readonly correlationId?: string | undefined;
  /** Id of the message that caused this one. */
  readonly causationId?: string | undefined;
  /**
   * W3C trace context to continue (`traceparent`). With instrumentation, the message's producer
   * span becomes a child of it; without, it travels as it is.
   * @defaultValue the active trace context with instrumentation; in a handler, the handled message's
   */
  readonly traceparent?: string | undefined;
  /** W3C trace state that goes with `traceparent`; ignored without it. */
  readonly tracestate?: string | undefined;
  /** Wire format of this message. @defaultValue the service's, else the exchange's */
  readonly format?: WireFormat | undefined;
  /**
   * The message's key, for the odd message whose key the contract cannot compute (see
   * `EventOptions.key` and docs/scaling.md): a non-empty string or a finite number. It travels
   * with the message (`tidings-key`), for partitioned consumers, and orders the outbox (below).
   * @defaultValue the contract's key of the payload, else none
   */
  readonly key?: string | number | undefined;
  /**
   * Write the message into the service's outbox in this transaction (with `tidings/postgres`, the
   * `pg` client on which you ran `BEGIN`) instead of sending it: it is published after, and only
   * if, the transaction commits. The publish resolves once the message is written.
   * @defaultValue none: the message is sent now
   */
  readonly tx?: OutboxTransaction | undefined;
  /**
   * With `tx`: messages of one key (say `order:42`) are published in the order their
   * transactions committed. Ignored without `tx`. The same concept as `key`: set it only to
   * order the outbox by something other than the message's key.
   * @defaultValue the message's key (`key`, else the contract's), else none: no order relative
   * to other messages
   */
  readonly orderingKey?: string | undefined;
}

/** Publishes a typed event; resolves with the envelope once the broker has the message. */
export type Publish = <E extends AnyEvent, Ver extends VersionOf<E> = LatestVersionOf<E>>(
  event: E,
  payload: PayloadInput<E, Ver>,
  options?: PublishOptions<Ver>,
) => Promise<Envelope>;

/**
 * The publishing half of a service: validate, build the envelope, encode with the codec of the
 * message's wire format, declare the exchange the first time, send, and apply the unroutable
 * policy to the broker's answer.
 */
export class EventPublisher {
  private readonly transport: Transport;
  private readonly declared = new Set<string>();
  private readonly declaring = new Map<string, Promise<void>>();

  constructor(
    private readonly service: ResolvedServiceOptions,
    private readonly observers: Observers,
    /** True once the service is stopped: publishing is refused from then on. */
    private readonly stopped: () => boolean,
  ) {
    this.transport = service.transport;
  }

  /** Records exchanges declared elsewhere (by `start()`), so the first publish skips declaring. */
  markDeclared(exchanges: readonly string[]): void {
    for (const exchange of exchanges) this.declared.add(exchange);
  }

  // Not `async`: a publish costs one promise (the transport's) and no extra turn of the
  // microtask queue when the schema is synchronous, the common case. Every failure, thrown or
  // not, still reaches the caller as a rejection.
  /**
   * Publishes `payload` as `event` (validated first; nothing is sent when it is invalid), as a
   * consequence of `parent` when a handler publishes (`cause` is then the handled delivery's
   * probe, when it is instrumented). See `Service.publish`.
   */
  send(
    event: AnyEvent,
    payload: unknown,
    options: PublishOptions | undefined,
    parent: Envelope | undefined,
    cause?: DeliveryProbe,
  ): Promise<Envelope> {
    try {
      if (this.stopped())
        throw new StateError(`${this.service.name} is stopped; it cannot publish`);
      if (event?.kind !== 'event') {
        throw new TypeError(
          `${this.service.name}.publish: the first argument must come from defineEvent()`,
        );
      }
      const version = options?.version ?? event.latest;
      const spec = event.versions[version - 1];
      if (!spec) {
        throw new RangeError(
          `${event.exchange.name}.${event.name} has versions 1..${event.latest}; there is no version ${version}`,
        );
      }
      const value = validate(spec.schema, payload, spec.routingKey);
      if (value instanceof Promise) {
        return value.then((v) =>
          this.sendValid(event, spec.routingKey, version, v, options, parent, cause),
        );
      }
      return this.sendValid(event, spec.routingKey, version, value, options, parent, cause);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** Publishes a payload already validated at `version` (see {@link send}). */
  private sendValid(
    event: AnyEvent,
    routingKey: string,
    version: number,
    value: unknown,
    options: PublishOptions | undefined,
    parent: Envelope | undefined,
    cause: DeliveryProbe | undefined,
  ): Promise<Envelope> {
    const key = messageKey(event.versions[version - 1]!, value, options?.key);
    const now = Date.now();
    const id = options?.id ?? uuidv7(now);
    const traceparent = options?.traceparent;
    let envelope: Envelope = {
      id,
      type: routingKey,
      exchange: event.exchange.name,
      event: event.name,
      version,
      source: this.service.name,
      time: isoNow(now),
      correlationId: options?.correlationId ?? parent?.correlationId ?? id,
      causationId: options?.causationId ?? parent?.id,
      traceparent: traceparent ?? parent?.traceparent,
      // The state belongs to the traceparent it came with.
      tracestate: traceparent !== undefined ? options?.tracestate : parent?.tracestate,
      key,
    };
    const exchange = envelope.exchange;
    const format = options?.format ?? this.service.format ?? event.exchange.format;
    let probe: PublishProbe | undefined;
    const hooks = this.service.instrumentation;
    if (hooks) {
      probe = hooks.publish({
        envelope,
        format,
        traceparent,
        tracestate: traceparent !== undefined ? options?.tracestate : undefined,
        cause,
      });
      if (probe) {
        envelope = { ...envelope, traceparent: probe.traceparent, tracestate: probe.tracestate };
      }
    }
    let message: OutgoingMessage;
    try {
      message = codecFor(format).encode(envelope, value);
    } catch (error) {
      probe?.end(error, false);
      throw error;
    }
    if (options?.tx !== undefined) return this.writeToOutbox(options, envelope, message, probe);
    const declared = this.declared.has(exchange);
    if (!probe) {
      if (declared && this.transport.publishNow) {
        // A broker in this process (the embedded one) takes the message within the call: one
        // promise for the caller, none for the transport, no closure.
        const outcome = this.transport.publishNow(message);
        return Promise.resolve(this.sent(envelope, value, outcome));
      }
      const sent = declared
        ? this.transport.publish(message)
        : this.declareExchange(exchange).then(() => this.transport.publish(message));
      return sent.then((outcome) => this.sent(envelope, value, outcome));
    }
    // Instrumented: the send runs inside the probe's span, which ends with the broker's answer.
    const p = probe;
    const sending = envelope;
    let routed = false;
    return p
      .run(() =>
        declared
          ? this.transport.publish(message)
          : this.declareExchange(exchange).then(() => this.transport.publish(message)),
      )
      .then((outcome) => {
        routed = outcome.routed;
        return this.sent(sending, value, outcome);
      })
      .then(
        (sentEnvelope) => {
          p.end(undefined, routed);
          return sentEnvelope;
        },
        (error: unknown) => {
          p.end(error, routed);
          throw error;
        },
      );
  }

  /** The broker has the message: tell the observers, apply the unroutable policy. */
  private sent(envelope: Envelope, value: unknown, outcome: PublishOutcome): Envelope {
    if (this.observers.has('published')) {
      this.observers.emit('published', {
        service: this.service.name,
        envelope,
        payload: value,
        routed: outcome.routed,
      });
    }
    if (!outcome.routed) {
      const policy = this.service.unroutable;
      const { exchange, type: routingKey, id } = envelope;
      if (policy === 'error') throw new UnroutableError(exchange, routingKey);
      if (policy === 'warn') {
        this.service.logger.warn(`no queue received ${routingKey}`, {
          id,
          exchange,
          ...envelopeLogFields(envelope),
        });
      }
    }
    return envelope;
  }

  /**
   * `publish(..., { tx })`: hands the built message to the service's outbox instead of the
   * transport; its relay publishes it once the transaction has committed. No `published` event
   * and no unroutable policy here: they apply when the relay sends it.
   */
  private writeToOutbox(
    options: PublishOptions,
    envelope: Envelope,
    message: OutgoingMessage,
    probe: PublishProbe | undefined,
  ): Promise<Envelope> {
    const outbox = this.service.outbox;
    if (!outbox) {
      throw new ConfigError(
        [
          'publish with `tx` needs an outbox: createService({ outbox: new PostgresOutbox({ pool }) })',
        ],
        `options for service ${JSON.stringify(this.service.name)}`,
      );
    }
    // One key concept: the outbox orders by the message's key unless told otherwise.
    const key = options.orderingKey ?? envelope.key;
    if (key !== undefined && (typeof key !== 'string' || key.length === 0)) {
      throw new TypeError(`${this.service.name}.publish: orderingKey must be a non-empty string`);
    }
    const write = () => outbox.write(options.tx!, { message, envelope, orderingKey: key });
    const written = probe ? probe.run(write) : write();
    return written.then(
      () => {
        probe?.end(undefined, true);
        return envelope;
      },
      (error: unknown) => {
        probe?.end(error, false);
        throw error;
      },
    );
  }

  // The producer declares the exchanges it publishes to, so publishing before any consumer has
  // started cannot fail on a missing exchange (a bug of the seed implementation).
  private declareExchange(exchange: string): Promise<void> {
    let pending = this.declaring.get(exchange);
    if (!pending) {
      pending = this.transport.declare({ exchanges: [exchange], queues: [] }).then(
        () => {
          this.declared.add(exchange);
          this.declaring.delete(exchange);
        },
        (error: unknown) => {
          this.declaring.delete(exchange);
          throw error;
        },
      );
      this.declaring.set(exchange, pending);
    }
    return pending;
  }
}
