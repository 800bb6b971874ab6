import { isSpanContextValid, trace } from '@opentelemetry/api';
import type { Logger } from '../logger.js';

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
      const span = trace.getActiveSpan();
      const c = span?.spanContext();
      if (!c || !isSpanContextValid(c)) write(message, fields);
      else {
        write(message, {
          ...fields,
          trace_id: c.traceId,
          span_id: c.spanId,
          trace_flags: `0${c.traceFlags.toString(16)}`.slice(-2),
        });
      }
    };
  return {
    debug: traced((m, f) => logger.debug(m, f)),
    info: traced((m, f) => logger.info(m, f)),
    warn: traced((m, f) => logger.warn(m, f)),
    error: traced((m, f) => logger.error(m, f)),
  };
}
