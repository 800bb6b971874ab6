import * as v from 'valibot';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { AnySchema } from '../contracts/event.js';
import { canonicalSchema, toJsonSchema } from './json-schema.js';

const Order = z.object({ id: z.number().int(), note: z.string().optional() });

/** A zod schema as zod 4.0 and 4.1 present it: Standard Schema without Standard JSON Schema. */
function withoutStandardJsonSchema(schema: AnySchema): AnySchema {
  const { version, vendor, validate } = schema['~standard'];
  return Object.create(schema, { '~standard': { value: { version, vendor, validate } } });
}

describe('toJsonSchema', () => {
  it('uses the Standard JSON Schema interface, asking for the input side', async () => {
    const { schema, warning } = await toJsonSchema(Order, 'draft-2020-12', 'order.v1.submit');
    expect(warning).toBeUndefined();
    expect(schema).toMatchObject({
      $schema: 'https://json-schema.org/draft/2020-12/schema',
      type: 'object',
      required: ['id'],
      properties: { id: { type: 'integer' }, note: { type: 'string' } },
    });
    // Input side: zod strips unknown keys rather than rejecting them.
    expect(schema).not.toHaveProperty('additionalProperties');
  });

  it('asks for the requested dialect', async () => {
    const { schema } = await toJsonSchema(Order, 'draft-07', 'order.v1.submit');
    expect(schema.$schema).toBe('http://json-schema.org/draft-07/schema#');
  });

  it("falls back to zod's toJSONSchema for zod schemas without the interface", async () => {
    const { schema, warning } = await toJsonSchema(
      withoutStandardJsonSchema(Order),
      'draft-07',
      'order.v1.submit',
    );
    expect(warning).toBeUndefined();
    expect(schema).toMatchObject({ type: 'object', required: ['id'] });
  });

  it('records {} with a warning when nothing can convert the schema', async () => {
    const result = await toJsonSchema(v.object({ id: v.number() }), 'draft-07', 'order.v1.submit');
    expect(result.schema).toEqual({});
    expect(result.warning).toMatch(/^order\.v1\.submit: no JSON Schema for this valibot schema/);
    expect(result.warning).toContain('toJsonSchema');
  });

  it('tries the toJsonSchema option first, and falls back when it returns undefined', async () => {
    const valibot = v.object({ id: v.number() });
    const custom = await toJsonSchema(valibot, 'draft-07', 'x', {
      toJsonSchema: (s) => (s === valibot ? { type: 'object', title: 'custom' } : undefined),
    });
    expect(custom.schema).toEqual({ type: 'object', title: 'custom' });
    const fallback = await toJsonSchema(Order, 'draft-07', 'x', { toJsonSchema: () => undefined });
    expect(fallback.schema).toMatchObject({ type: 'object' });
  });

  it('says why when a converter throws', async () => {
    const result = await toJsonSchema(v.string(), 'draft-07', 'x', {
      toJsonSchema: () => {
        throw new Error('transforms are not supported');
      },
    });
    expect(result.schema).toEqual({});
    expect(result.warning).toContain('the toJsonSchema option threw: transforms are not supported');
  });
});

describe('canonicalSchema', () => {
  it('sorts object keys at every depth and required lists, and keeps other arrays in order', () => {
    const sorted = canonicalSchema({
      b: 1,
      required: ['b', 'a'],
      a: { d: [3, { z: 1, y: 2 }], c: null },
    });
    expect(JSON.stringify(sorted)).toBe(
      '{"a":{"c":null,"d":[3,{"y":2,"z":1}]},"b":1,"required":["a","b"]}',
    );
  });
});
