/**
 * `tidings/otel`: OpenTelemetry for Tidings services. `openTelemetry()` is an instrumentation for
 * `ServiceOptions.instrumentation` (spans after the messaging semantic conventions, W3C trace
 * context in message headers, metrics); `tracedLogger()` and `activeTraceFields()` (a pino mixin)
 * add the active span's ids to log lines. Needs `@opentelemetry/api` (an optional peer dependency) and an SDK started by the
 * application. See docs/observability.md.
 *
 * @module
 */

export { activeTraceFields, tracedLogger } from './logger.js';
export { type OpenTelemetryOptions, openTelemetry } from './otel.js';
export { ATTRIBUTES, destinationName, METRICS, type SettleOperation } from './semconv.js';
