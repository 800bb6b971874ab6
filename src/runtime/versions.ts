import type { Subscription } from './handlers.js';
import { validate } from './validate.js';

/**
 * Why a handler cannot take a payload of `wireVersion`, or `undefined` when it can: older
 * versions are upcast, newer ones only when every version down to the handler's declares a
 * downcast.
 */
export function unreadableVersion(sub: Subscription, wireVersion: number): string | undefined {
  if (wireVersion <= sub.version || canDowncast(sub, wireVersion)) return undefined;
  return wireVersion > sub.event.latest
    ? `version ${wireVersion} is unknown to this consumer (it knows 1..${sub.event.latest}); upgrade the consumer, then replay`
    : `version ${wireVersion} is newer than the handler's version ${sub.version} and declares no downcast to it; upgrade the handler, then replay`;
}

/** True when every version from `wireVersion` down to the handler's declares a downcast. */
function canDowncast(sub: Subscription, wireVersion: number): boolean {
  if (wireVersion > sub.event.latest) return false;
  for (let v = wireVersion; v > sub.version; v--) {
    if (!sub.event.versions[v - 1]!.downcast) return false;
  }
  return true;
}

/**
 * Validates a wire payload of `wireVersion`, then converts it step by step to the handler's
 * version (upcasting an older one, downcasting a newer one), validating after every step.
 * Synchronous as long as the schemas are (the common case), so that a message costs no promise
 * and no turn of the microtask queue here, whatever its version (versions keep their order).
 * Throws a `ValidationError`, or what an upcast or downcast threw.
 */
export function readPayload(sub: Subscription, wireVersion: number, raw: unknown): unknown {
  const wire = sub.event.versions[wireVersion - 1]!;
  const value = validate(wire.schema, raw, wire.routingKey);
  if (value instanceof Promise) return value.then((v) => convert(sub, wireVersion, v));
  return convert(sub, wireVersion, value);
}

/** Converts a payload valid at version `from` to the handler's version (see {@link readPayload}). */
function convert(sub: Subscription, from: number, valid: unknown): unknown {
  const versions = sub.event.versions;
  let value = valid;
  for (let v = from + 1; v <= sub.version; v++) {
    const spec = versions[v - 1]!;
    value = validate(spec.schema, spec.upcast!(value), spec.routingKey);
    if (value instanceof Promise) return value.then((x) => convert(sub, v, x));
  }
  for (let v = from - 1; v >= sub.version; v--) {
    const spec = versions[v - 1]!;
    value = validate(spec.schema, versions[v]!.downcast!(value), spec.routingKey);
    if (value instanceof Promise) return value.then((x) => convert(sub, v, x));
  }
  return value;
}
