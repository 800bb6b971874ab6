/** Where Tidings writes what it has to say. Plug in pino, winston or console. */
export interface Logger {
  debug(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

/** Warnings and errors to stderr; debug and info are dropped. The default logger. */
export function consoleLogger(prefix = 'tidings'): Logger {
  const write =
    (level: string) =>
    (message: string, fields?: Record<string, unknown>): void => {
      const extra = fields && Object.keys(fields).length > 0 ? ` ${safeJson(fields)}` : '';
      console.error(`[${prefix}] ${level}: ${message}${extra}`);
    };
  return { debug: () => {}, info: () => {}, warn: write('warn'), error: write('error') };
}

/**
 * The logging methods of pino (and bunyan): the fields first, then the message.
 */
export interface FieldsFirstLogger {
  debug(fields: Record<string, unknown>, message: string): void;
  info(fields: Record<string, unknown>, message: string): void;
  warn(fields: Record<string, unknown>, message: string): void;
  error(fields: Record<string, unknown>, message: string): void;
}

/**
 * A {@link Logger} that writes to a pino logger (or any fields-first logger): each line's fields
 * become properties of the JSON line, and an `error` field holding an Error is passed as `err`, so
 * pino's error serializer writes its type, message and stack.
 *
 * ```ts
 * import pino from 'pino';
 * createService({ name: 'billing', transport, logger: pinoLogger(pino()) });
 * ```
 */
export function pinoLogger(logger: FieldsFirstLogger): Logger {
  const fieldsOf = (fields: Record<string, unknown> | undefined): Record<string, unknown> => {
    if (!fields || !(fields.error instanceof Error)) return fields ?? {};
    const { error, ...rest } = fields;
    return { ...rest, err: error };
  };
  return {
    debug: (message, fields) => logger.debug(fieldsOf(fields), message),
    info: (message, fields) => logger.info(fieldsOf(fields), message),
    warn: (message, fields) => logger.warn(fieldsOf(fields), message),
    error: (message, fields) => logger.error(fieldsOf(fields), message),
  };
}

/** A logger that drops everything. */
export const silentLogger: Logger = {
  debug: () => {},
  info: () => {},
  warn: () => {},
  error: () => {},
};

function safeJson(value: unknown): string {
  try {
    return JSON.stringify(value, (_k, v: unknown) =>
      v instanceof Error ? { name: v.name, message: v.message } : v,
    );
  } catch {
    return String(value);
  }
}
