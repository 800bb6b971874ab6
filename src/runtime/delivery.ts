import { type DecodeFailure, decodeMessage } from '../envelope/codec.js';
import { attemptsOf, type Envelope } from '../envelope/envelope.js';
import { ValidationError } from '../errors.js';
import type { Delivery } from '../transports/transport.js';
import type { HandlerContext, RegisteredHandler, Subscription } from './handlers.js';
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
 * Returns `undefined` when the message was settled within the call (synchronous schemas and
 * handler, and a transport with `ackNow`: the common case, which then costs no promise at all),
 * else a promise that resolves once it is settled. Rejects (or throws) only when settling itself
 * failed (the broker refused the ack, say); the caller then makes sure the message does not stay
 * unsettled.
 *
 * With instrumentation, all of it runs inside the probe's `run`, the handler inside its `handle`,
 * and the message is settled through the probe's `delivery`.
 */
export function processDelivery(
  scope: DeliveryScope,
  h: RegisteredHandler,
  delivery: Delivery,
): Promise<void> | undefined {
  // Not `async`: see above. Every failure of the asynchronous steps still reaches the caller as a
  // rejection.
  try {
    const hooks = scope.service.instrumentation;
    const probe = hooks?.deliver(delivery, h);
    if (!probe) return deliver(scope, h, delivery, undefined);
    return probe
      .run(() => deliver(scope, h, probe.delivery, probe) ?? Promise.resolve())
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

function deliver(
  scope: DeliveryScope,
  h: RegisteredHandler,
  delivery: Delivery,
  probe: DeliveryProbe | undefined,
): Promise<void> | undefined {
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
  const sub = subscriptionOf(h, envelope);
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
  } catch (error) {
    return invalid(scope, h, delivery, error);
  }
  if (payload instanceof Promise) {
    return payload.then(
      (p: unknown) => handle(scope, h, delivery, envelope, p, probe),
      (error: unknown) => invalid(scope, h, delivery, error),
    );
  }
  return handle(scope, h, delivery, envelope, payload, probe);
}

/** The last type looked up per handler, and its subscription: most queues carry one type. */
const lastLookup = new WeakMap<
  RegisteredHandler,
  { type: string; sub: Subscription | undefined }
>();

/** The subscription of a handler for the event of `envelope`, if it has one. */
function subscriptionOf(h: RegisteredHandler, envelope: Envelope): Subscription | undefined {
  const last = lastLookup.get(h);
  if (last?.type === envelope.type) return last.sub;
  const sub = h.events.get(`${envelope.exchange}.${envelope.event}`);
  lastLookup.set(h, { type: envelope.type, sub });
  return sub;
}

/** Step 4 failed: the payload does not match its schema, or an upcast threw. */
function invalid(
  scope: DeliveryScope,
  h: RegisteredHandler,
  delivery: Delivery,
  error: unknown,
): Promise<void> {
  if (error instanceof ValidationError) {
    return deadLetter(scope, h, delivery, 'schema-violation', {
      name: error.name,
      message: error.message,
      issues: JSON.stringify(
        error.issues.map((i) => ({ path: i.path.map(String), message: i.message })),
      ),
    });
  }
  return deadLetter(scope, h, delivery, 'schema-violation', describeError(error, 'upcast failed'));
}

/**
 * What a handler gets besides the payload. A class rather than a literal with a closure: the
 * `publish` function is made only when a handler reads it (most never do).
 */
class Context implements HandlerContext {
  readonly wireVersion: number;
  constructor(
    readonly envelope: Envelope,
    readonly attempt: number,
    readonly redelivered: boolean,
    readonly signal: AbortSignal,
    readonly service: string,
    private readonly publisher: EventPublisher,
    /** The delivery's probe: what the handler publishes is traced as caused by it. */
    private readonly probe: DeliveryProbe | undefined,
  ) {
    this.wireVersion = envelope.version;
  }

  get publish(): HandlerContext['publish'] {
    const { publisher, envelope, probe } = this;
    return (event, p, options) => publisher.send(event, p, options, envelope, probe);
  }
}

/** Whether a handler's result is a promise (or any thenable) to wait for. */
function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (
    value !== null &&
    (typeof value === 'object' || typeof value === 'function') &&
    typeof (value as { then?: unknown }).then === 'function'
  );
}

/** Runs the handler on its input, inside the probe's `handle` when there is one. */
function run(
  h: RegisteredHandler,
  envelope: Envelope,
  payload: unknown,
  context: Context,
  probe: DeliveryProbe | undefined,
): unknown {
  const input = h.tagged
    ? { exchange: envelope.exchange, event: envelope.event, payload }
    : payload;
  return probe
    ? probe.handle(envelope, context.attempt, () => h.fn(input, context))
    : h.fn(input, context);
}

/** Steps 5 and 6 of {@link processDelivery}: the idempotency claim, the handler, the ack. */
function handle(
  scope: DeliveryScope,
  h: RegisteredHandler,
  delivery: Delivery,
  envelope: Envelope,
  payload: unknown,
  probe: DeliveryProbe | undefined,
): Promise<void> | undefined {
  const context = new Context(
    envelope,
    attemptsOf(delivery.message) + 1,
    delivery.message.redelivered,
    scope.signal,
    scope.service.name,
    scope.publisher,
    probe,
  );
  if (h.idempotency) return handleOnce(scope, h, delivery, context, payload, probe);
  const started = scope.observers.has('handled') ? performance.now() : -1;
  let result: unknown;
  try {
    result = run(h, envelope, payload, context, probe);
  } catch (error) {
    return settleFailure(scope, h, delivery, envelope, context.attempt, error);
  }
  if (isThenable(result)) {
    return Promise.resolve(result).then(
      () => acknowledge(scope, h, delivery, envelope, payload, started),
      (error: unknown) => settleFailure(scope, h, delivery, envelope, context.attempt, error),
    );
  }
  return acknowledge(scope, h, delivery, envelope, payload, started);
}

/** The handler returned: ack, then tell the `handled` observers (when any listened at the start). */
function acknowledge(
  scope: DeliveryScope,
  h: RegisteredHandler,
  delivery: Delivery,
  envelope: Envelope,
  payload: unknown,
  started: number,
): Promise<void> | undefined {
  if (delivery.ackNow) {
    delivery.ackNow();
    if (started >= 0) handled(scope, h, envelope, payload, started);
    return undefined;
  }
  const acked = delivery.ack();
  if (started < 0) return acked;
  return acked.then(() => handled(scope, h, envelope, payload, started));
}

function handled(
  scope: DeliveryScope,
  h: RegisteredHandler,
  envelope: Envelope,
  payload: unknown,
  started: number,
): void {
  scope.observers.emit('handled', {
    service: scope.service.name,
    queue: h.queue,
    envelope,
    payload,
    durationMs: performance.now() - started,
  });
}

/** {@link handle} with an idempotency store: claim the id first, record it once handled. */
async function handleOnce(
  scope: DeliveryScope,
  h: RegisteredHandler,
  delivery: Delivery,
  context: Context,
  payload: unknown,
  probe: DeliveryProbe | undefined,
): Promise<void> {
  const envelope = context.envelope;
  const started = performance.now();
  const service = scope.service.name;
  const idem = h.idempotency!;
  const key = `${h.queue}:${envelope.id}`;
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
  try {
    await run(h, envelope, payload, context, probe);
  } catch (error) {
    await Promise.resolve()
      .then(() => idem.store.release(key))
      .catch((e: unknown) => storeError(scope, e, h, delivery));
    return settleFailure(scope, h, delivery, envelope, context.attempt, error);
  }
  // The effects happened: a failure to record them must not turn into a retry that repeats them.
  await Promise.resolve()
    .then(() => idem.store.complete(key, idem.ttlMs))
    .catch((e: unknown) => storeError(scope, e, h, delivery));
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
