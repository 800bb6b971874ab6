import { type DecodeFailure, decodeMessage } from '../envelope/codec.js';
import { attemptsOf, type Envelope } from '../envelope/envelope.js';
import { ValidationError } from '../errors.js';
import type { Delivery } from '../transports/transport.js';
import type { HandlerContext, RegisteredHandler } from './handlers.js';
import type { ClaimResult } from './idempotency.js';
import { type DeliveryProbe, messageLogFields } from './instrumentation.js';
import type { EventPublisher } from './publishing.js';
import { deadLetter, describeError, type SettlementScope, settleFailure } from './settlement.js';
import { readPayload, unreadableVersion } from './versions.js';

/** What the delivery pipeline needs of its service, besides what settling needs. */
export interface DeliveryScope extends SettlementScope {
  readonly publisher: EventPublisher;
}

/**
 * The life of one delivered message, start to settlement:
 *
 * 1. size: a body over `maxMessageBytes` is dead-lettered (`oversize`) unparsed;
 * 2. decode: the codec of its wire format (native or Celery, detected per message) reads the
 *    envelope and the payload. A message without a readable envelope is dead-lettered at once
 *    (`missing-envelope`, and for Celery messages also `invalid-json` and `invalid-celery`);
 * 3. route: the event must be one the handler knows (`unknown-event`) in a version it can read
 *    (`unsupported-version`); only then does a native message whose body is not JSON get
 *    `invalid-json`, so a message of a version the consumer cannot read yet is kept as such;
 * 4. validate and convert: the payload is checked against its version's schema, then upcast or
 *    downcast to the handler's version, checked at every step (`schema-violation`);
 * 5. claim: with an idempotency store, a message already processed is acknowledged unhandled;
 * 6. handle: the handler runs; returning acknowledges, throwing goes to `settleFailure` (retry
 *    with backoff, then `handler-error`).
 *
 * Resolves once the message is settled. Rejects only when settling itself failed (the broker
 * refused the ack, say); the caller then makes sure the message does not stay unsettled.
 *
 * With instrumentation, all of it runs inside the probe's `run`, the handler inside its `handle`,
 * and the message is settled through the probe's `delivery`.
 */
export function processDelivery(
  scope: DeliveryScope,
  h: RegisteredHandler,
  delivery: Delivery,
): Promise<void> {
  const hooks = scope.service.instrumentation;
  if (!hooks) return processMessage(scope, h, delivery, undefined);
  try {
    const probe = hooks.deliver(delivery, h);
    if (!probe) return processMessage(scope, h, delivery, undefined);
    return probe
      .run(() => processMessage(scope, h, probe.delivery, probe))
      .then(
        () => probe.end(undefined),
        (error: unknown) => {
          probe.end(error);
          throw error;
        },
      );
  } catch (error) {
    // A hook that throws fails this delivery like any failure to settle, never the dispatcher.
    return Promise.reject(error);
  }
}

async function processMessage(
  scope: DeliveryScope,
  h: RegisteredHandler,
  delivery: Delivery,
  probe: DeliveryProbe | undefined,
): Promise<void> {
  const message = delivery.message;
  if (scope.signal.aborted) return delivery.requeue();
  const limit = scope.service.maxMessageBytes;
  if (message.body.length > limit) {
    return deadLetter(scope, h, delivery, 'oversize', {
      message: `body is ${message.body.length} bytes, over the limit of ${limit}`,
    });
  }
  const decoded = decodeMessage(message);
  const envelope = decoded.envelope;
  if (!envelope) {
    // Only a failure comes without an envelope.
    const { reason, error } = decoded as DecodeFailure;
    return deadLetter(scope, h, delivery, reason, { message: error });
  }
  const sub = h.events.get(`${envelope.exchange}.${envelope.event}`);
  if (!sub) {
    return deadLetter(scope, h, delivery, 'unknown-event', {
      message: `${envelope.type} is not an event this handler knows (${[...h.events.keys()].join(', ')})`,
    });
  }
  const unreadable = unreadableVersion(sub, envelope.version);
  if (unreadable) {
    return deadLetter(scope, h, delivery, 'unsupported-version', { message: unreadable });
  }
  if (!decoded.ok) {
    return deadLetter(scope, h, delivery, decoded.reason, { message: decoded.error });
  }
  let payload: unknown;
  try {
    payload = readPayload(sub, envelope.version, decoded.payload);
    if (payload instanceof Promise) payload = await payload;
  } catch (error) {
    if (error instanceof ValidationError) {
      return deadLetter(scope, h, delivery, 'schema-violation', {
        name: error.name,
        message: error.message,
        issues: JSON.stringify(
          error.issues.map((i) => ({ path: i.path.map(String), message: i.message })),
        ),
      });
    }
    return deadLetter(
      scope,
      h,
      delivery,
      'schema-violation',
      describeError(error, 'upcast failed'),
    );
  }
  return handle(scope, h, delivery, envelope, payload, probe);
}

/** Steps 5 and 6 of {@link processDelivery}: the idempotency claim, the handler, the ack. */
async function handle(
  scope: DeliveryScope,
  h: RegisteredHandler,
  delivery: Delivery,
  envelope: Envelope,
  payload: unknown,
  probe: DeliveryProbe | undefined,
): Promise<void> {
  const attempt = attemptsOf(delivery.message) + 1;
  const started = performance.now();
  const service = scope.service.name;
  const context: HandlerContext = {
    envelope,
    wireVersion: envelope.version,
    attempt,
    redelivered: delivery.message.redelivered,
    signal: scope.signal,
    service,
    publish: (event, p, options) => scope.publisher.send(event, p, options, envelope, probe),
  };
  const idem = h.idempotency;
  const key = idem ? `${h.queue}:${envelope.id}` : undefined;
  if (idem && key) {
    let claim: ClaimResult;
    try {
      claim = await idem.store.claim(key, idem.leaseMs);
    } catch (error) {
      // The store is down: not the message's fault, so no attempt is spent; look again later.
      storeError(scope, error, h, delivery);
      return delivery.retry(idem.busyRetryMs, {});
    }
    if (claim === 'done') {
      await delivery.ack();
      scope.observers.emit('duplicate', { service, queue: h.queue, envelope });
      return;
    }
    if (claim === 'busy') return delivery.retry(idem.busyRetryMs, {});
  }
  try {
    const input = h.tagged
      ? { exchange: envelope.exchange, event: envelope.event, payload }
      : payload;
    await (probe
      ? probe.handle(envelope, attempt, () => h.fn(input, context))
      : h.fn(input, context));
  } catch (error) {
    if (idem && key) {
      await Promise.resolve()
        .then(() => idem.store.release(key))
        .catch((e: unknown) => storeError(scope, e, h, delivery));
    }
    return settleFailure(scope, h, delivery, envelope, attempt, error);
  }
  if (idem && key) {
    // The effects happened: a failure to record them must not turn into a retry that repeats them.
    await Promise.resolve()
      .then(() => idem.store.complete(key, idem.ttlMs))
      .catch((e: unknown) => storeError(scope, e, h, delivery));
  }
  await delivery.ack();
  if (scope.observers.has('handled')) {
    scope.observers.emit('handled', {
      service,
      queue: h.queue,
      envelope,
      payload,
      durationMs: performance.now() - started,
    });
  }
}

function storeError(
  scope: DeliveryScope,
  error: unknown,
  h: RegisteredHandler,
  delivery: Delivery,
): void {
  scope.service.logger.error(`the idempotency store of ${h.queue} failed`, {
    error,
    ...messageLogFields(delivery.message),
  });
}
