import type { StandardSchemaV1 } from '@standard-schema/spec';
import type { AnySchema } from '../contracts/event.js';
import { ValidationError, type ValidationIssue } from '../errors.js';

function toIssues(issues: readonly StandardSchemaV1.Issue[]): ValidationIssue[] {
  return issues.map((issue) => ({
    message: issue.message,
    path: (issue.path ?? []).map((segment) =>
      typeof segment === 'object' && segment !== null ? segment.key : segment,
    ),
  }));
}

function unwrap(result: StandardSchemaV1.Result<unknown>, routingKey: string): unknown {
  if (result.issues) throw new ValidationError(routingKey, toIssues(result.issues));
  return result.value;
}

/**
 * `schema['~standard']`, read once per schema: some libraries (ArkType) make it a getter that
 * builds a new object on every read, which costs a quarter of a validation on the hot path.
 */
const standard = new WeakMap<AnySchema, StandardSchemaV1.Props>();
function standardOf(schema: AnySchema): StandardSchemaV1.Props {
  let props = standard.get(schema);
  if (!props) {
    props = schema['~standard'];
    standard.set(schema, props);
  }
  return props;
}

/**
 * Validates `value` against a Standard Schema. Returns the schema's output synchronously when the
 * schema is synchronous (the common case, and the fast path), or a promise when it is not.
 * Throws (or rejects with) a {@link ValidationError} listing every issue.
 */
export function validate(schema: AnySchema, value: unknown, routingKey: string): unknown {
  const result = standardOf(schema).validate(value);
  if (result instanceof Promise) return result.then((r) => unwrap(r, routingKey));
  return unwrap(result, routingKey);
}
