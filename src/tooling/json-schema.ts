import type { StandardJSONSchemaV1 } from '@standard-schema/spec';
import type { AnySchema } from '../contracts/event.js';

/** A JSON Schema document, as plain JSON. */
export type JsonSchema = Record<string, unknown>;

/** The JSON Schema dialects Tidings asks converters for. */
export type JsonSchemaTarget = 'draft-2020-12' | 'draft-07';

/**
 * Converts a schema to JSON Schema, or returns `undefined` to let Tidings try its own ways.
 * Given to {@link snapshot} and {@link asyncApi} for schema libraries Tidings does not know.
 */
export type JsonSchemaConverter = (
  schema: AnySchema,
  target: JsonSchemaTarget,
) => JsonSchema | undefined | Promise<JsonSchema | undefined>;

/** Options shared by everything that turns schemas into JSON Schema. */
export interface JsonSchemaOptions {
  /** Tried first for every schema; return `undefined` to fall back to auto-detection. */
  readonly toJsonSchema?: JsonSchemaConverter;
}

/** A converted schema, with a warning when no conversion was possible. */
export interface ConvertedSchema {
  /** The JSON Schema, or `{}` (anything) when the schema could not be converted. */
  readonly schema: JsonSchema;
  readonly warning?: string;
}

/**
 * Turns a Standard Schema into the JSON Schema of its input (what a consumer accepts on the
 * wire), trying in order:
 *
 * 1. the `toJsonSchema` option;
 * 2. the Standard JSON Schema interface (`schema['~standard'].jsonSchema.input`), which zod 4.2+
 *    and other libraries implement;
 * 3. for schemas whose vendor is `zod` (zod 4.0 and 4.1), `toJSONSchema` from `zod/v4/core`,
 *    imported only then, so zod is never a dependency of Tidings;
 * 4. otherwise `{}` with a warning that says how to do better.
 *
 * `where` names the schema in warnings, e.g. `order.v1.submit`.
 */
export async function toJsonSchema(
  schema: AnySchema,
  target: JsonSchemaTarget,
  where: string,
  options: JsonSchemaOptions = {},
): Promise<ConvertedSchema> {
  const failures: string[] = [];
  const attempts: [string, () => JsonSchema | undefined | Promise<JsonSchema | undefined>][] = [
    ['the toJsonSchema option', () => options.toJsonSchema?.(schema, target)],
    ['~standard.jsonSchema', () => fromStandardJsonSchema(schema, target)],
    ['zod toJSONSchema', () => fromZod(schema, target)],
  ];
  for (const [name, attempt] of attempts) {
    try {
      const result = await attempt();
      if (result !== undefined) return { schema: result };
    } catch (error) {
      failures.push(`${name} threw: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
  const vendor = schema['~standard'].vendor;
  const why = failures.length > 0 ? ` (${failures.join('; ')})` : '';
  return {
    schema: {},
    warning:
      `${where}: no JSON Schema for this ${vendor} schema${why}; recorded as {} (any value), so ` +
      'changes to it go unnoticed. Use a library that implements Standard JSON Schema, or pass a ' +
      'toJsonSchema converter.',
  };
}

function fromStandardJsonSchema(
  schema: AnySchema,
  target: JsonSchemaTarget,
): JsonSchema | undefined {
  const props: Partial<StandardJSONSchemaV1.Props> = schema['~standard'];
  const input = props.jsonSchema?.input;
  return typeof input === 'function' ? input({ target }) : undefined;
}

type ZodToJsonSchema = (schema: unknown, options: { target: string; io: 'input' }) => JsonSchema;

let zodConverter: Promise<ZodToJsonSchema | undefined> | undefined;

async function fromZod(
  schema: AnySchema,
  target: JsonSchemaTarget,
): Promise<JsonSchema | undefined> {
  if (schema['~standard'].vendor !== 'zod') return undefined;
  zodConverter ??= loadZodConverter();
  const convert = await zodConverter;
  // zod names draft 2020-12 `draft-2020-12` and draft 7 `draft-7`.
  return convert?.(schema, { target: target === 'draft-07' ? 'draft-7' : target, io: 'input' });
}

async function loadZodConverter(): Promise<ZodToJsonSchema | undefined> {
  // A variable specifier keeps zod out of the compiled dependency graph and the type checker.
  const specifier = 'zod/v4/core';
  try {
    const core: unknown = await import(specifier);
    const convert = (core as { toJSONSchema?: unknown }).toJSONSchema;
    return typeof convert === 'function' ? (convert as ZodToJsonSchema) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Returns a JSON Schema in a canonical form, so that equal schemas serialise identically whatever
 * order a library wrote them in: the keys of every object sorted, and `required` lists (sets of
 * names) sorted. Other arrays keep their order.
 */
export function canonicalSchema<T>(value: T): T {
  if (Array.isArray(value)) return value.map(canonicalSchema) as T;
  if (value === null || typeof value !== 'object') return value;
  const sorted: Record<string, unknown> = {};
  for (const key of Object.keys(value).sort()) {
    const child = (value as Record<string, unknown>)[key];
    sorted[key] =
      key === 'required' && Array.isArray(child) && child.every((x) => typeof x === 'string')
        ? [...child].sort()
        : canonicalSchema(child);
  }
  return sorted as T;
}
