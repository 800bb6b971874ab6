import type { StandardSchemaV1 } from '@standard-schema/spec';

/** A test order, as the conformance suite publishes it. */
export interface TestOrder {
  id: number;
  lines: { id: number; quantity: number; price: number }[];
}

function issue(message: string, ...path: PropertyKey[]): StandardSchemaV1.Issue {
  return { message, path };
}

function isInt(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value);
}

/**
 * A hand-written Standard Schema for {@link TestOrder}, so `tidings/testing` needs no schema
 * library. It reports every issue with its path, like real schema libraries do.
 */
export const testOrderSchema: StandardSchemaV1<TestOrder, TestOrder> = {
  '~standard': {
    version: 1,
    vendor: 'tidings-testing',
    validate(value) {
      if (typeof value !== 'object' || value === null || Array.isArray(value)) {
        return { issues: [issue('expected an object')] };
      }
      const v = value as Record<string, unknown>;
      const issues: StandardSchemaV1.Issue[] = [];
      if (!isInt(v.id)) issues.push(issue('expected an integer', 'id'));
      if (!Array.isArray(v.lines)) {
        issues.push(issue('expected an array', 'lines'));
      } else {
        v.lines.forEach((line: unknown, i) => {
          const l = (line ?? {}) as Record<string, unknown>;
          if (!isInt(l.id)) issues.push(issue('expected an integer', 'lines', i, 'id'));
          if (!isInt(l.quantity) || l.quantity <= 0) {
            issues.push(issue('expected a positive integer', 'lines', i, 'quantity'));
          }
          if (typeof l.price !== 'number')
            issues.push(issue('expected a number', 'lines', i, 'price'));
        });
      }
      if (issues.length > 0) return { issues };
      return {
        value: {
          id: v.id as number,
          lines: (v.lines as TestOrder['lines']).map((l) => ({
            id: l.id,
            quantity: l.quantity,
            price: l.price,
          })),
        },
      };
    },
  },
};

/** A Standard Schema for `{ of: number }`, for events caused by a test order. */
export const testFollowUpSchema: StandardSchemaV1<{ of: number }, { of: number }> = {
  '~standard': {
    version: 1,
    vendor: 'tidings-testing',
    validate(value) {
      const of = (value as { of?: unknown } | null)?.of;
      return typeof of === 'number'
        ? { value: { of } }
        : { issues: [issue('expected a number', 'of')] };
    },
  },
};

/** A keyed test event's payload: the n-th message (`seq`) of a customer. */
export interface TestKeyed {
  customer: string;
  seq: number;
}

/** A Standard Schema for {@link TestKeyed}, for partitioned subscriptions. */
export const testKeyedSchema: StandardSchemaV1<TestKeyed, TestKeyed> = {
  '~standard': {
    version: 1,
    vendor: 'tidings-testing',
    validate(value) {
      const v = (value ?? {}) as { customer?: unknown; seq?: unknown };
      const issues: StandardSchemaV1.Issue[] = [];
      if (typeof v.customer !== 'string') issues.push(issue('expected a string', 'customer'));
      if (!isInt(v.seq)) issues.push(issue('expected an integer', 'seq'));
      if (issues.length > 0) return { issues };
      return { value: { customer: v.customer as string, seq: v.seq as number } };
    },
  },
};
