import { isSpanContextValid, trace } from '@opentelemetry/api';
import type { Logger } from '../logger.js';

/**
 * The active span's `trace_id`, `span_id` and `trace_flags`, or an empty object outside any span.
 * As a pino `mixin`, every line of the application gets them, Tidings' included:
 *
 * ```ts
 * const log = pino({ mixin: activeTraceFields });
 * ```
 */
export function activeTraceFields(): {
  trace_id?: string;
  span_id?: string;
  trace_flags?: string;
} {
  const c = trace.getActiveSpan()?.spanContext();
  if (!c || !isSpanContextValid(c)) return {};
  return {
    trace_id: c.traceId,
    span_id: c.spanId,
    trace_flags: `0${c.traceFlags.toString(16)}`.slice(-2),
  };
}

/**
 * A logger that adds the active span's `trace_id`, `span_id` and `trace_flags` to every line (the
 * field names the OpenTelemetry specification gives trace context in logs of other formats), then
 * writes to `logger`. Lines written outside any span are passed on as they are.
 *
 * A service's message processing runs in its process span, so what the runtime and the handlers
 * log about a message carries the span that handled it:
 *
 * ```ts
 * const logger = tracedLogger(consoleLogger('billing'));
 * createService({ name: 'billing', transport, logger, instrumentation: openTelemetry() });
 * ```
 */
export function tracedLogger(logger: Logger): Logger {
  const traced =
    (write: Logger['info']) =>
    (message: string, fields?: Record<string, unknown>): void => {
      const ids = activeTraceFields();
      write(message, ids.trace_id === undefined ? fields : { ...fields, ...ids });
    };
  return {
    debug: traced((m, f) => logger.debug(m, f)),
    info: traced((m, f) => logger.info(m, f)),
    warn: traced((m, f) => logger.warn(m, f)),
    error: traced((m, f) => logger.error(m, f)),
  };
}
